#!/bin/sh
# The console's Cloud screen end to end (tmux, 80x24) against a dir cloud
# (OHBACKUP_CLOUD_URL=file://<workspace>/cloud, transfers capped at 1 MiB/s):
#  1. `c` on Home opens it on the gallery: idle, "last sync: never", the
#     simulated mains supply, the local files TO_BE_UPLOADED;
#  2. `s` syncs: DOWNLOADING/UPLOADING; `S` stops it midway (STOPPED), `s`
#     resumes it to COMPLETED; the cloud then holds the device's files, the
#     device the cloud's 4 MiB file; the browser shows UPLOAD_SUCCESS /
#     COMPLETED and a last sync time;
#  3. optimize space (`o`, totalSize 64M, agingDays 1) on files whose atime is
#     old: COMPLETED, every file evicted and listed cloud-only;
#  4. Enter downloads the evicted big.bin: a RUNNING bar with growing bytes,
#     the partial <name>.temp.download exists; `D` stops it: STOPPED, no
#     partial file left; Enter again: COMPLETED, byte-identical to the cloud;
#  5. `/` filters the browser; Tab switches to a bundle's FileSync scope,
#     whose sync uploads its cloud folder; `x` drops a local copy (cleanCache)
#     and Enter brings it back (CloudFileCache);
#     `l` lists the cloud: a file only the cloud has shows as "cloud", Enter
#     pulls it down;
#  6. `O` stops a running optimize space (its scan of 20 000 files gives
#     the key time to land): STOPPED, nothing evicted;
#  7. a battery at 5 % discharging: `s` (and forced `f`) is refused with
#     22400003 on screen;
#  8. no cloud configured: the sync shows 22400001 with its sentence.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

ohb demo >/dev/null || fail "demo"
CLOUD=$WS/cloud
M=$ROOT/media
mkdir -p "$CLOUD/media" "$M/Photo"
printf 'device photo one\n' >"$M/Photo/a.jpg"
printf 'device photo two, longer\n' >"$M/Photo/b.jpg"
head -c 4194304 /dev/urandom >"$CLOUD/media/big.bin"
# a bundle's cloud folder (FileSync): the demo bank's sandbox is mounted at /
BANK=$ROOT/bundles/com.example.bank/sandbox/data/storage/el2/cloud
mkdir -p "$BANK/notes"
printf 'bank note\n' >"$BANK/notes/n1.txt"
# a mains supply online: the machine's own battery must not decide
mkdir -p "$WS/mains/AC"
printf 'Mains\n' >"$WS/mains/AC/type"
printf '1\n' >"$WS/mains/AC/online"

tmux_start 80x24 OHBACKUP_CLOUD_URL="file://$CLOUD" OHBACKUP_CLOUD_RATE=1048576 \
	OHBACKUP_POWER_SUPPLY="$WS/mains" --
tmux_wait_for 'Actions' 10
tmux_wait_for 'c  Cloud ' 5
tmux_keys c
tmux_wait_for 'Scope 1/[0-9]+: gallery \(GallerySync\)' 10
tmux_wait_for 'battery: none \(mains\)|battery: .*charging' 2
tmux_wait_for 'Sync: idle +last sync: never' 2
tmux_wait_for 'Files: 2 \(0 cloud-only\)' 2
tmux_wait_for 'TO_BE_UPLOADED +local +[0-9.]+ B +Photo/a\.jpg' 2

# 2. sync: both ways; S stops it while the 4 MiB file comes down (4 s at the
# rate cap), s resumes it; then COMPLETED
tmux_keys s
tmux_wait_for 'Sync: (starting|DOWNLOADING|UPLOADING)' 5
tmux_wait_for 'files [0-9]+/[0-9]+' 5
tmux_keys S
tmux_wait_for 'Sync: STOPPED' 5
tmux_wait_for 'gallery sync STOPPED' 2
tmux_keys s
tmux_wait_for 'Sync: (starting|DOWNLOADING|UPLOADING)' 5
tmux_wait_for 'Sync: COMPLETED' 30
tmux_wait_for 'gallery sync COMPLETED' 2
tmux_cap | grep -q 'last sync: never' && fail "the last sync time was not updated"
cmp -s "$M/Photo/a.jpg" "$CLOUD/media/Photo/a.jpg" || fail "a.jpg is not in the cloud"
cmp -s "$M/Photo/b.jpg" "$CLOUD/media/Photo/b.jpg" || fail "b.jpg is not in the cloud"
cmp -s "$M/big.bin" "$CLOUD/media/big.bin" || fail "big.bin was not downloaded"
tmux_wait_for 'Files: 3 \(0 cloud-only\)' 3
tmux_wait_for 'UPLOAD_SUCCESS +local +.* Photo/a\.jpg' 2
tmux_wait_for 'COMPLETED +local +4\.0 MiB +big\.bin' 2

# 3. optimize space on old files: every one evicted
touch -a -d '2000-01-01' "$M/big.bin" "$M/Photo/a.jpg" "$M/Photo/b.jpg"
tmux_keys o
tmux_wait_for 'totalSize \[1073741824_\]' 3
tmux_keys BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace 6 4 M Enter
tmux_wait_for 'totalSize 64\.0 MiB +agingDays \[30_\]' 3
tmux_keys BSpace BSpace 1 Enter
tmux_wait_for 'Optimize +COMPLETED' 20
tmux_wait_for 'optimize space COMPLETED: 4\.0 MiB freed, 3 files evicted' 3
tmux_wait_for 'Files: 3 \(3 cloud-only\)' 3
tmux_wait_for 'cloud-only +4\.0 MiB +big\.bin' 2
[ -e "$M/big.bin" ] && fail "big.bin still has a local copy after optimize space"
[ -s "$CLOUD/media/big.bin" ] || fail "the cloud lost big.bin"

# 4. download the evicted big.bin (the last row: paths sort bytewise), stop it, download it again
tmux_keys End
tmux_wait_for '^ COMPLETED +cloud-only +4\.0 MiB +big\.bin' 3
tmux_keys Enter
tmux_wait_for 'Download +RUNNING' 5
tmux_wait_for 'RUNNING .*[0-9.]+ (KiB|MiB)/4\.0 MiB' 5
# the row's own state follows on the tick (the rows on screen, not a relist)
tmux_wait_for '^ DOWNLOADING +cloud-only +4\.0 MiB +big\.bin' 3
wait_for 5 test -e "$M/big.bin.temp.download" || fail "no partial file while downloading"
dl_pct() { tmux_cap | sed -nE 's/^ *Download +RUNNING .*\] *([0-9]+)%.*/\1/p' | head -1; }
dl_grew() { p2=$(dl_pct); [ -n "$p2" ] && [ "$p2" -gt "$p1" ]; }
p1=$(dl_pct)
p2=
[ -n "$p1" ] && wait_for 3 dl_grew || fail "the download's progress did not grow ('$p1' then '$p2')"
tmux_keys D
tmux_wait_for 'Download +STOPPED' 5
tmux_wait_for 'download STOPPED \(partial file removed\)' 2
[ -e "$M/big.bin.temp.download" ] && fail "stop left the partial file"
[ -e "$M/big.bin" ] && fail "a stopped download left big.bin"
tmux_keys Enter
tmux_wait_for 'Download +RUNNING' 5
tmux_wait_for 'Download +COMPLETED .*100%' 20
cmp -s "$M/big.bin" "$CLOUD/media/big.bin" || fail "big.bin differs from the cloud's after the download"
tmux_wait_for 'Files: 3 \(2 cloud-only\)' 3
tmux_wait_for 'COMPLETED +local +4\.0 MiB +big\.bin' 2

# 5. the filter, then a bundle's scope
tmux_keys / b . j p g
tmux_wait_for 'Files: 1 of 3 \(2 cloud-only\) +filter: b\.jpg_' 3
tmux_cap | grep -Eq '(local|cloud-only) +[0-9.]+ [KMG]?i?B +big\.bin' && fail "the filter did not hide big.bin"
tmux_keys Enter Escape
tmux_wait_for 'Actions' 3
tmux_keys c
tmux_wait_for 'filter: b\.jpg' 3
tmux_keys /
tmux_keys Escape
tmux_wait_for 'Files: 3 \(2 cloud-only\)' 3
# scope_to KEY REGEX — presses KEY (Tab, BTab) until the scope line matches,
# each time waiting for the screen to leave the scope it showed
scope_no() { tmux_cap | sed -nE 's/.*Scope ([0-9]+)\/[0-9]+: .*/\1/p' | head -1; }
scope_left() { [ "$(scope_no)" != "$1" ]; }
scope_to() {
	local n
	for _ in 1 2 3 4 5 6 7 8 9; do
		tmux_cap | grep -Eq "$2" && return 0
		n=$(scope_no)
		tmux_keys "$1"
		wait_for 3 scope_left "$n" || return 1
	done
	tmux_cap | grep -Eq "$2"
}
tmux_keys Tab
tmux_wait_for 'Scope 2/[0-9]+: com\.example\.[a-z]+ \(FileSync\)' 5
scope_to Tab 'Scope [0-9]+/[0-9]+: com\.example\.bank ' || fail "Tab never reached com.example.bank's scope"
tmux_wait_for 'Scope [0-9]+/[0-9]+: com\.example\.bank \(FileSync\)' 3
tmux_wait_for 'TO_BE_UPLOADED +local +[0-9]+ B +notes/n1\.txt' 3
tmux_keys s
tmux_wait_for 'com\.example\.bank sync COMPLETED' 10
cmp -s "$BANK/notes/n1.txt" "$CLOUD/apps/com.example.bank/notes/n1.txt" || fail "the bundle's file is not in the cloud"
tmux_wait_for 'UPLOAD_SUCCESS +local +[0-9]+ B +notes/n1\.txt' 3
# x drops the local copy (cleanCache), Enter brings it back (CloudFileCache)
tmux_keys x
tmux_wait_for 'cloud-only +[0-9]+ B +notes/n1\.txt' 3
[ -e "$BANK/notes/n1.txt" ] && fail "cleanCache left the local copy"
tmux_keys Enter
tmux_wait_for 'Download +COMPLETED .*n1\.txt' 10
cmp -s "$BANK/notes/n1.txt" "$CLOUD/apps/com.example.bank/notes/n1.txt" || fail "the bundle's file did not come back"
n=$(scope_no)
tmux_keys BTab
wait_for 3 scope_left "$n" || fail "BTab did not leave scope $n"
tmux_keys Home
scope_to BTab 'Scope 1/' || fail "BTab never came back to the gallery"
tmux_wait_for 'Scope 1/[0-9]+: gallery' 3

# l lists the cloud: a file only the cloud has shows as "cloud"; Enter pulls it down
printf 'only in the cloud\n' >"$CLOUD/media/zz-remote.txt"
tmux_cap | grep -q 'zz-remote' && fail "a cloud-only file showed before the cloud was listed"
tmux_keys l
tmux_wait_for 'the cloud listed for gallery' 5
tmux_wait_for 'Files: 4 \(2 cloud-only, 1 cloud\)' 3
tmux_wait_for '^ - +cloud +[0-9.]+ B +zz-remote\.txt' 3
[ -e "$M/zz-remote.txt" ] && fail "listing the cloud downloaded a file"
tmux_keys End
tmux_keys Enter
tmux_wait_for 'Download +COMPLETED .*zz-remote\.txt' 10
cmp -s "$M/zz-remote.txt" "$CLOUD/media/zz-remote.txt" || fail "zz-remote.txt did not come down"
tmux_wait_for 'COMPLETED +local +[0-9.]+ B +zz-remote\.txt' 3

# help names the keys
tmux_keys '?'
tmux_wait_for 'Keys of Cloud' 3
tmux_wait_for 'optimize space' 2
tmux_keys x
tmux_wait_for 'Scope 1/' 3
tmux_keys q q
[ "$(tmux_wait_exit 10)" = 0 ] || fail "the console did not exit 0"
tmx kill-server 2>/dev/null

# 6. O stops a running optimize space. Its scan (20 000 files that never
# synced, so none is dropped) outlasts the O that follows Enter at once, so
# the stop lands before the first file is dropped: STOPPED, nothing evicted.
mkdir -p "$M/many"
(cd "$M/many" && seq 1 20000 | xargs touch)
touch -a -d '2000-01-01' "$M/big.bin" "$M/zz-remote.txt"
TMUX_SOCK=ohb$$o
tmux_start 80x24 OHBACKUP_CLOUD_URL="file://$CLOUD" OHBACKUP_POWER_SUPPLY="$WS/mains" --
tmux_wait_for 'Actions' 10
tmux_keys c
tmux_wait_for 'Files: 2000[0-9] ' 10
tmux_keys o
tmux_wait_for 'totalSize \[1073741824_\]' 3
tmux_keys Enter
tmux_wait_for 'agingDays \[30_\]' 3
tmux_keys Enter O
tmux_wait_for 'Optimize +STOPPED' 10
tmux_wait_for 'optimize space STOPPED: 0 B freed, 0 files evicted' 3
[ -e "$M/big.bin" ] && [ -e "$M/zz-remote.txt" ] || fail "a stopped optimize space dropped a file"
tmux_keys F10
tmux_wait_exit 10 >/dev/null
tmx kill-server 2>/dev/null
rm -rf "$M/many"

# 7. a battery at 5 %, discharging: start refused with 22400003
mkdir -p "$WS/low/BAT0"
printf 'Battery\n' >"$WS/low/BAT0/type"
printf '5\n' >"$WS/low/BAT0/capacity"
printf 'Discharging\n' >"$WS/low/BAT0/status"
printf 'new on the device\n' >"$M/Photo/c.jpg"
TMUX_SOCK=ohb$$b
tmux_start 80x24 OHBACKUP_CLOUD_URL="file://$CLOUD" OHBACKUP_POWER_SUPPLY="$WS/low" --
tmux_wait_for 'Actions' 10
tmux_keys c
tmux_wait_for 'battery: 5% on battery' 10
tmux_keys s
tmux_wait_for 'start refused: error 22400003: [A-Za-z]' 5
tmux_keys f
tmux_wait_for 'start refused: error 22400003: [A-Za-z]' 5
[ -e "$CLOUD/media/Photo/c.jpg" ] && fail "a sync ran on a 5 % battery"
tmux_keys F10
tmux_wait_exit 10 >/dev/null
tmx kill-server 2>/dev/null

# 8. no cloud configured: the sync ends with 22400001 and its sentence on screen
TMUX_SOCK=ohb$$c
tmux_start 80x24 OHBACKUP_CLOUD_URL= OHBACKUP_POWER_SUPPLY="$WS/mains" --
tmux_wait_for 'Actions' 10
tmux_keys c
tmux_wait_for 'Scope 1/' 10
tmux_keys s
tmux_wait_for 'error 22400001[:( ].*[A-Za-z]' 10
tmux_keys F10
tmux_wait_exit 10 >/dev/null
finish

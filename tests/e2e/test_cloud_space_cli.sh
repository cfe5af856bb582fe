#!/bin/sh
# `ohbackup cloud ...` beyond the gallery sync, against a dir cloud:
#  1. FileSync: `--bundle com.example.notes sync` syncs the demo bundle's cloud folder
#     (sandbox/data/storage/el2/cloud <-> apps/<bundle>/), `last-sync` before/after, `ls`;
#  2. the battery rule with a simulated battery ($OHBACKUP_POWER_SUPPLY): 5 % refused
#     (22400003), 12 % refused unless --force, charging allowed;
#  3. SIGINT during a slow sync: STOPPED, exit 1, nothing lost or changed (the media folder's
#     snapshot, bytes and times, is the one from before), the next sync completes;
#  4. `cache URI` interrupted by SIGINT keeps the partial file; `cache URI` resumes it
#     (its first progress is past where it stopped) and the file matches the cloud;
#  5. `clean URI`: the local copy goes, `ls` says cloud-only, `sync` leaves it in the
#     cloud, `download URI` brings it back byte-identical; a never-synced file is refused
#     with 13900001 and kept;
#     `ls --remote` shows a file only the cloud has; `download` pulls it on demand;
#  6. `optimize --size --days`: old synced files dropped oldest first, the newer and the
#     never-uploaded ones kept; bad parameters 401; `optimize-storage` runs.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

# 0. `demo --cloud DIR` (what `make run` uses): a directory cloud named in config.json with three photos
#    and a note; `ls --remote` sees them before anything is synced, and a sync brings them down.
run ohb demo --cloud "$WS/democloud"
assert_rc 0 "demo --cloud"
py 'import json,sys; assert json.load(open(sys.argv[1]))["url"]==sys.argv[2]' "$ROOT/cloud/config.json" "$WS/democloud" ||
	fail "config.json does not name the demo cloud: $(cat "$ROOT/cloud/config.json")"
[ "$(ls "$WS/democloud/media/Camera" | grep -c '\.jpg$')" = 3 ] || fail "the demo cloud has not three photos"
assert_file "$WS/democloud/apps/com.example.notes/welcome.txt"
run ohb cloud ls --remote
assert_rc 0 "ls --remote of the demo cloud"
[ "$(grep -c ' cloud  *Camera/IMG_.*\.jpg$' "$OUT")" = 3 ] || fail "ls --remote does not show the three photos: $(cat "$OUT")"
run ohb cloud sync
assert_rc 0 "sync with the demo cloud"
for f in "$WS"/democloud/media/Camera/*.jpg; do
	cmp -s "$f" "$ROOT/media/Camera/$(basename "$f")" || fail "$(basename "$f") did not come down"
done
run ohb cloud --bundle com.example.notes sync
assert_rc 0 "FileSync with the demo cloud"
assert_file "$ROOT/bundles/com.example.notes/sandbox/data/storage/el2/cloud/welcome.txt"
rm -rf "$ROOT/media" "$ROOT/cloud" "$ROOT/bundles/com.example.notes/sandbox/data/storage/el2/cloud"

CLOUD=$WS/cloud
M=$ROOT/media
APP=com.example.notes
A=$ROOT/bundles/$APP/sandbox/data/storage/el2/cloud
export OHBACKUP_CLOUD_URL=$CLOUD
export OHBACKUP_POWER_SUPPLY=$WS/power   # empty: no battery
mkdir -p "$OHBACKUP_POWER_SUPPLY" "$A/notes" "$CLOUD/apps/$APP/shared" "$M"

# ---- 1. FileSync of a bundle ---------------------------------------------------
printf 'a note\n' >"$A/notes/n1.txt"
printf 'from the cloud\n' >"$CLOUD/apps/$APP/shared/s1.txt"
run ohb --json cloud --bundle $APP last-sync
assert_rc 0 "last-sync before"
py 'import json,sys; e=json.load(open(sys.argv[1])); assert e["event"]=="lastSync" and e["time"]==0 and e["scope"]=="com.example.notes", e' "$OUT" ||
	fail "last-sync before any sync: $(cat "$OUT")"
before=$(date +%s%3N)
run ohb --json cloud --bundle $APP sync
assert_rc 0 "bundle sync"
py 'import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
assert [e["state"] for e in ev]==["DOWNLOADING","UPLOADING","COMPLETED"], ev
assert all(e["scope"]=="com.example.notes" for e in ev), ev' "$OUT" || fail "bundle sync events: $(cat "$OUT")"
cmp -s "$A/notes/n1.txt" "$CLOUD/apps/$APP/notes/n1.txt" || fail "the note was not uploaded"
cmp -s "$A/shared/s1.txt" "$CLOUD/apps/$APP/shared/s1.txt" || fail "the cloud file was not downloaded"
[ ! -e "$CLOUD/media" ] || [ -z "$(ls -A "$CLOUD/media")" ] || fail "a bundle sync touched the gallery"
run ohb --json cloud --bundle $APP last-sync
py 'import json,sys; e=json.load(open(sys.argv[1])); assert e["time"]>=int(sys.argv[2]), e' "$OUT" "$before" ||
	fail "last-sync after: $(cat "$OUT") (before $before)"
run ohb cloud --bundle $APP ls
assert_rc 0 "bundle ls"
assert_grep "$OUT" '^UPLOAD_SUCCESS .* local +notes/n1.txt$' "ls of the bundle"
assert_grep "$OUT" '^COMPLETED .* local +shared/s1.txt$' "ls of the bundle"
run ohb cloud state "file://$APP/data/storage/el2/cloud/notes/n1.txt"
assert_grep "$OUT" '^UPLOAD_SUCCESS ' "state of a bundle uri"
run ohb cloud --bundle com.example.nothere sync
assert_rc 1 "unknown bundle"
assert_error_code 13900002

# ---- 2. battery ---------------------------------------------------------------
mkdir -p "$OHBACKUP_POWER_SUPPLY/BAT0"
printf 'Battery\n' >"$OHBACKUP_POWER_SUPPLY/BAT0/type"
printf 'Discharging\n' >"$OHBACKUP_POWER_SUPPLY/BAT0/status"
printf '5\n' >"$OHBACKUP_POWER_SUPPLY/BAT0/capacity"
run ohb cloud battery
assert_grep "$OUT" '^battery: 5 %$' "battery output"
run ohb cloud sync --force
assert_rc 1 "sync at 5 %"
assert_error_code 22400003
printf '12\n' >"$OHBACKUP_POWER_SUPPLY/BAT0/capacity"
run ohb cloud sync
assert_rc 1 "sync at 12 %"
assert_error_code 22400003
run ohb cloud sync --force
assert_rc 0 "forced sync at 12 %"
printf '5\n' >"$OHBACKUP_POWER_SUPPLY/BAT0/capacity"
printf 'Charging\n' >"$OHBACKUP_POWER_SUPPLY/BAT0/status"
run ohb cloud sync
assert_rc 0 "sync at 5 % while charging"
rm -rf "$OHBACKUP_POWER_SUPPLY/BAT0"

# ---- 3. SIGINT during a sync -----------------------------------------------------
for i in 1 2 3; do head -c 1500000 /dev/urandom >"$M/clip$i.mp4"; done
snapshot "$M" "$WS/media.before" nsec
OHBACKUP_CLOUD_RATE=1000000 ohb_bg "$WS/sync.out" "$WS/sync.err" --json cloud sync
wait_for 20 grep -q UPLOADING "$WS/sync.out" || fail "the sync did not reach its upload stage"
sleep 0.3
kill -INT "$BG_PID"
wait "$BG_PID"
rc=$?
[ "$rc" = 1 ] || fail "an interrupted sync exited $rc"
grep -q '"state":"STOPPED"' "$WS/sync.out" || fail "no STOPPED event: $(cat "$WS/sync.out")"
for i in 1 2 3; do [ -s "$M/clip$i.mp4" ] || fail "clip$i.mp4 was lost"; done
snapshot "$M" "$WS/media.after" nsec
assert_same_snapshot "$WS/media.before" "$WS/media.after" "the media folder after an interrupted sync"
run ohb cloud sync
assert_rc 0 "sync after the interrupted one"
for i in 1 2 3; do cmp -s "$M/clip$i.mp4" "$CLOUD/media/clip$i.mp4" || fail "clip$i.mp4 not in the cloud"; done

# ---- 4. cache: interrupted, kept, resumed ---------------------------------------------
head -c 6000000 /dev/urandom >"$CLOUD/media/movie.mkv"
OHBACKUP_CLOUD_RATE=1500000 ohb_bg "$WS/cache.out" "$WS/cache.err" --json cloud cache file://media/movie.mkv
wait_for 20 py 'import json,sys
ev=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert any(e["processed"]>=1000000 for e in ev)' "$WS/cache.out" || fail "the cache download made no progress"
kill -INT "$BG_PID"
wait "$BG_PID"
grep -q '"state":"STOPPED"' "$WS/cache.out" || fail "the cache download did not stop: $(cat "$WS/cache.out")"
part=$(stat -c %s "$M/movie.mkv.temp.download" 2>/dev/null || echo 0)
[ "$part" -ge 1000000 ] || fail "the partial file was not kept ($part bytes)"
[ ! -e "$M/movie.mkv" ] || fail "a partial file took the real name"
run ohb cloud state file://media/movie.mkv
assert_grep "$OUT" '^STOPPED ' "state after a stopped cache download"
run ohb --json cloud cache file://media/movie.mkv
assert_rc 0 "resumed cache download"
py 'import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
first=[e["processed"] for e in ev if e["processed"]>0][0]
assert first>=int(sys.argv[2]), (first, sys.argv[2])
assert ev[-1]["state"]=="COMPLETED", ev[-1]' "$OUT" "$part" || fail "not resumed: $(head -3 "$OUT")"
cmp -s "$M/movie.mkv" "$CLOUD/media/movie.mkv" || fail "the resumed file differs from the cloud's"
assert_no_path "$M/movie.mkv.temp.download"

# ---- 5. clean ---------------------------------------------------------------------
run ohb cloud clean file://media/clip1.mp4
assert_rc 0 "clean"
assert_no_path "$M/clip1.mp4"
run ohb cloud ls
assert_grep "$OUT" 'cloud-only +clip1.mp4$' "ls after clean"
run ohb cloud sync
assert_rc 0 "sync after clean"
assert_no_path "$M/clip1.mp4"
run ohb cloud download file://media/clip1.mp4
assert_rc 0 "download back"
cmp -s "$M/clip1.mp4" "$CLOUD/media/clip1.mp4" || fail "clip1.mp4 did not come back identical"
printf 'never synced\n' >"$M/fresh.jpg"
run ohb cloud clean file://media/fresh.jpg
assert_rc 1 "clean of a never-synced file"
assert_error_code 13900001
assert_file "$M/fresh.jpg"

# ---- 5b. ls --remote: a file put in the cloud by another device, pulled on demand ------
mkdir -p "$CLOUD/media/other"
printf 'from another device\n' >"$CLOUD/media/other/o1.txt"
run ohb cloud ls
assert_no_grep "$OUT" 'other/o1.txt' "ls without --remote"
run ohb cloud ls --remote
assert_rc 0 "ls --remote"
assert_grep "$OUT" '^- .* cloud +other/o1.txt$' "ls --remote lists the cloud's file"
assert_no_path "$M/other/o1.txt"
run ohb cloud download file://media/other/o1.txt
assert_rc 0 "download of a cloud-only file"
cmp -s "$M/other/o1.txt" "$CLOUD/media/other/o1.txt" || fail "o1.txt differs"
run ohb --json cloud ls --remote
py 'import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
o=[e for e in ev if e["path"]=="other/o1.txt"][0]
assert o["local"] and not o["remoteOnly"] and o["state"]=="COMPLETED", o' "$OUT" || fail "ls after the download: $(cat "$OUT")"

# ---- 6. optimize ------------------------------------------------------------------
touch -a -d '90 days ago' "$M/clip1.mp4"
touch -a -d '60 days ago' "$M/clip2.mp4"
touch -a -d '10 days ago' "$M/clip3.mp4"
touch -a -d '400 days ago' "$M/fresh.jpg"
run ohb --json cloud optimize --size 1M --days 30
assert_rc 0 "optimize"
py 'import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
assert ev[-1]["state"]=="COMPLETED" and ev[-1]["progress"]==100 and ev[-1]["files"]==1, ev' "$OUT" ||
	fail "optimize events: $(cat "$OUT")"
assert_no_path "$M/clip1.mp4"
assert_file "$M/clip2.mp4"
assert_file "$M/clip3.mp4"
assert_file "$M/fresh.jpg"
run ohb cloud optimize --size 0 --days 30
assert_rc 1 "optimize --size 0"
assert_error_code 401
run ohb cloud optimize --size 1M
assert_rc 1 "optimize without --days"
assert_error_code 401
run ohb cloud optimize-storage
assert_rc 0 "optimize-storage"
finish

#!/bin/sh
# peers.sh — ohbackup against what an operator would use instead (GNU tar,
# bsdtar, restic, cp -r, du -s), on the same machine, in the same run.
#
#   OHBACKUP_BIN=/abs/build/ohbackup bash tests/bench/peers.sh
#
# Data sets are generated from a seed (tests/bench/gen_data.py) in a temp dir:
#   (a) 50 000 files of 200 B - 8 KiB in 1 000 folders   (b) ten 50 MiB files
#   (c) (a) + (b) in one bundle    (d) eight bundles shaped like (c), a quarter
#   the size each    (e) a copy of /usr/share/doc (a real tree of this machine)
# Each job runs every tool once as a warm-up, then BENCH_REPS times (default 5;
# restic's full backups BENCH_SLOW_REPS, default 3), the tools alternating
# within each repetition and the order rotated from one to the next
# (run_rotated). cp -r runs for (b) (its target's peer) and (e) only.
# Rows "...; sync" are references, not targets: the peer followed by sync(1),
# i.e. with its output on disk, as ohbackup's always is (fsync before rename). Caches are never dropped (warm cache); `sync` runs
# before every timed command so that no one pays for another's dirty pages.
# Wall time is taken around the command (bash $EPOCHREALTIME), CPU time and
# peak RSS by /usr/bin/time. The table (medians) goes to stdout and into
# docs/PERFORMANCE.md between the bench:peers markers, with the machine.
#
# ohbackup always runs through its real CLI with --send-rate 800 (the spec's
# maximum) and --json, each data set on its own device root and store.
#
# Environment: BENCH_REPS, BENCH_SLOW_REPS, BENCH_SEED (42), BENCH_SCALE (1:
# full size; 0.1 for a quick look), BENCH_JOBS (space-separated job ids to run,
# default all), BENCH_DOC (file to update; "" = none), BENCH_KEEP=1 (keep the
# temp dir), TMPDIR.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
OHB=${OHBACKUP_BIN:-$repo/build/ohbackup}
REPS=${BENCH_REPS:-5}
SLOW_REPS=${BENCH_SLOW_REPS:-3}
SEED=${BENCH_SEED:-42}
SCALE=${BENCH_SCALE:-1}
JOBS=${BENCH_JOBS:-all}
DOC=${BENCH_DOC-$repo/docs/PERFORMANCE.md}
RATE=800
export RESTIC_PASSWORD=ohbackup-bench RESTIC_CACHE_DIR=
export LC_ALL=C

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ -x "$OHB" ] || die "OHBACKUP_BIN must name the built ohbackup (got '$OHB')"
command -v python3 >/dev/null || die "python3 is needed"

# The peers and /usr/bin/time: installed when we are root on Debian, else the
# rows of a missing tool say "not measured".
need_pkgs=""
[ -x /usr/bin/time ] || need_pkgs="$need_pkgs time"
command -v bsdtar >/dev/null || need_pkgs="$need_pkgs libarchive-tools"
command -v restic >/dev/null || need_pkgs="$need_pkgs restic"
command -v tmux >/dev/null || need_pkgs="$need_pkgs tmux"
if [ -n "$need_pkgs" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	say "installing$need_pkgs"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_pkgs >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_pkgs >/dev/null 2>&1; }
fi
[ -x /usr/bin/time ] || die "/usr/bin/time is needed (apt-get install time)"
have() { command -v "$1" >/dev/null 2>&1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/ohb-bench.XXXXXX")
TMUX_SOCK=ohbbench$$
cleanup() {
	tmux -L "$TMUX_SOCK" kill-server 2>/dev/null
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		say "kept $W"
	else
		say "removing $W"
		rm -rf "$W"
		sync   # see the first sync below
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$W/data" "$W/out" "$W/trash"
: >"$W/jobs.tsv"
: >"$W/results.tsv"
: >"$W/targets.tsv"

# scaled N: a count or size times BENCH_SCALE, at least 1
sc() { python3 -c "import sys; print(max(1, int(round($1 * float(sys.argv[1])))))" "$SCALE"; }
N_SMALL=$(sc 50000); N_DIRS=$(sc 1000); BIG=$(sc 52428800)
N_SMALL_Q=$(sc 12500); N_DIRS_Q=$(sc 250); BIG_Q=$(sc 13107200)

# ---- the machine --------------------------------------------------------------

machine() {
	local fs opts cpu mem
	# how full it is decides how fast files are created (docs/PERFORMANCE.md "This machine")
	fs=$(df -PT "$W" | awk 'NR==2 { print $2 " on " $1 ", " $6 " used" }')
	opts=$(awk -v m="$(df -P "$W" | awk 'NR==2 { print $6 }')" '$2 == m { o = $4 } END { print o }' /proc/mounts)
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	{
		echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') — \`make bench\` (tests/bench/peers.sh), seed $SEED, scale $SCALE,"
		echo "$REPS timed repetitions after one warm-up (restic's full backups: $SLOW_REPS), tools alternating (order rotated each repetition), warm cache."
		echo
		echo "- Machine: $(nproc) cores ($cpu), $mem memory, Linux $(uname -r)"
		echo "- File system of the data, the stores and the outputs: $fs ($opts)"
		echo "- Peers: $(tar --version | head -1); $(bsdtar --version 2>/dev/null | head -1); $(restic version 2>/dev/null | cut -d' ' -f1-2); $(cp --version | head -1)"
		echo "- ohbackup: \`--send-rate $RATE\` (the spec's maximum), \`--json\`, default \`--parallel 3\`"
		echo "- Load average when the run began: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows up in the numbers)"
	} >"$W/machine.txt"
}

# ---- recording ------------------------------------------------------------------

job_begin() { # ID TITLE [NOTE]
	CUR_JOB=$1
	printf '%s\t%s\t%s\n' "$1" "$2" "${3:-}" >>"$W/jobs.tsv"
	say "job $1: $2"
}
target() { printf '%s\t%s\t%s\n' "$CUR_JOB" "$1" "$2" >>"$W/targets.tsv"; }

# timed TOOL REP CMD... — runs CMD (output to $W/last.out), records one row
# unless REP is 0 (the warm-up). Returns CMD's status.
timed() {
	local tool=$1 rep=$2 t0 t1 rc
	shift 2
	# `ohb ROOT STORE ARGS` (the function below) as a command /usr/bin/time can run
	[ "$1" = ohb ] && set -- "$OHB" --root "$2" --store "$3" --send-rate "$RATE" --json "${@:4}"
	sync
	t0=$EPOCHREALTIME
	/usr/bin/time -f '%U %S %M' -o "$W/time.out" "$@" >"$W/last.out" 2>&1
	rc=$?
	t1=$EPOCHREALTIME
	if [ "$rc" != 0 ]; then
		say "  $tool (rep $rep) exited $rc:"
		tail -5 "$W/last.out" | sed 's/^/    /' >&2
	fi
	[ "$rep" = 0 ] && return $rc
	local cpu
	cpu=$(tail -1 "$W/time.out")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$CUR_JOB" "$tool" "$rep" \
		"$(python3 -c "print('%.4f' % ($t1 - $t0))")" $cpu "$rc" >>"$W/results.tsv"
	return $rc
}

# A row recorded from numbers measured another way (the console job).
record() { # TOOL REP WALL USER SYS RSS RC
	[ "$2" = 0 ] && return 0
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$CUR_JOB" "$@" >>"$W/results.tsv"
}

want() { [ "$JOBS" = all ] || case " $JOBS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# Outputs with many files are moved aside and removed only at the end: on ext4
# without a journal, creating files soon after deleting many is slow
# (recently_deleted), which would charge one tool for another's clean-up.
trash() { for p in "$@"; do [ -e "$p" ] && mv "$p" "$W/trash/$(basename "$p").$RANDOM$RANDOM"; done; return 0; }

ohb() { "$OHB" --root "$1" --store "$2" --send-rate "$RATE" --json "${@:3}"; }

# newest complete set of a store
newest_set() { for s in $(ls -r "$1"); do [ -f "$1/$s/set.json" ] && { echo "$s"; return; }; done; }

# ---- data sets --------------------------------------------------------------------

gen() { python3 "$here/gen_data.py" "$@"; }

make_data() {
	say "generating data sets in $W/data (seed $SEED, scale $SCALE)"
	gen small "$W/data/a" "$SEED" "$N_SMALL" "$N_DIRS"
	gen big "$W/data/b" $((SEED + 1)) 10 "$BIG"
	gen small "$W/data/c/small" "$SEED" "$N_SMALL" "$N_DIRS"
	gen big "$W/data/c/big" $((SEED + 1)) 10 "$BIG"
	for i in 1 2 3 4 5 6 7 8; do
		gen small "$W/data/d/b$i/small" $((SEED + 10 + i)) "$N_SMALL_Q" "$N_DIRS_Q"
		gen big "$W/data/d/b$i/big" $((SEED + 20 + i)) 10 "$BIG_Q"
	done
	gen small "$W/data/i" "$SEED" "$N_SMALL" "$N_DIRS"   # a copy of (a), changed by inc1
	if [ -d /usr/share/doc ]; then
		cp -a /usr/share/doc "$W/data/e"
	else
		mkdir -p "$W/data/e"
	fi
	# one device root and store per data set
	for s in a b c e i; do
		"$OHB" --root "$W/R$s" --store "$W/S$s" bundle add "bench.$s" "$W/data/$s" >/dev/null || die "bundle add bench.$s"
	done
	for i in 1 2 3 4 5 6 7 8; do
		"$OHB" --root "$W/Rd" --store "$W/Sd" bundle add "bench.d$i" "$W/data/d/b$i" >/dev/null || die "bundle add bench.d$i"
	done
}

# ---- jobs ---------------------------------------------------------------------------

# run_rotated REP STEP... — runs the steps (functions), starting at step REP
# mod N. Where a tool runs in a repetition changes what ran just before it: on
# a virtual machine, a tool whose predecessor freed its output writes into
# pages the host still backs, one that follows a kept output into pages the
# host must fault in again (2.5 ms per MB measured here); a fixed order would
# hand the same tool the slow case every time.
run_rotated() {
	local r=$1 i
	shift
	local steps=("$@")
	for ((i = 0; i < ${#steps[@]}; i++)); do
		"${steps[$(((i + r) % ${#steps[@]}))]}"
	done
}

# A full backup of one bundle: ohbackup, tar, bsdtar, restic (fresh repository,
# init not timed), cp -r [, cp -r + sync]. The steps see backup_job's locals.
bk_ohb() {
	timed "ohbackup backup" "$rep" ohb "$W/R$s" "$W/S$s" backup "bench.$s"
	rm -rf "$W/S$s"/2*
}
bk_tar() {
	timed "GNU tar -cf" "$rep" tar -cf "$o/x.tar" -C "$src" .
	rm -f "$o/x.tar"
}
# what tar costs when its output must be on disk too, as ohbackup's is
bk_tar_sync() {
	timed "GNU tar -cf; sync" "$rep" sh -c 'tar -cf "$1" -C "$2" . && sync' sh "$o/x.tar" "$src"
	rm -f "$o/x.tar"
}
bk_bsdtar() {
	have bsdtar || return 0
	timed "bsdtar -cf" "$rep" bsdtar -cf "$o/x.bsdtar" -C "$src" .
	rm -f "$o/x.bsdtar"
}
bk_restic() {
	have restic && [ "$rep" -le "$SLOW_REPS" ] || return 0
	restic -q -r "$o/repo" init >/dev/null 2>&1
	timed "restic backup" "$rep" restic -q -r "$o/repo" backup "$src"
	rm -rf "$o/repo"
}
# cp -r, the target's peer for (b): only where it has few files to create
# (copies of 50 000 files would be deleted by the thousand)
bk_cp() {
	[ "$s" = b ] || [ "$s" = e ] || return 0
	timed "cp -r" "$rep" cp -r "$src" "$o/cp"
	trash "$o/cp"
}
bk_cp_sync() {
	[ "$s" = b ] || return 0
	timed "cp -r; sync" "$rep" sh -c 'cp -r "$1" "$2" && sync' sh "$src" "$o/cp"
	trash "$o/cp"
}
backup_job() { # ID TITLE SET TAR_TARGET CP_TARGET
	local id=$1 title=$2 s=$3 tt=$4 ct=$5 rep
	want "$id" || return 0
	job_begin "$id" "$title"
	[ -n "$tt" ] && target "GNU tar -cf" "$tt"
	[ -n "$ct" ] && target "cp -r" "$ct"
	local src=$W/data/$s o=$W/out
	for rep in $(seq 0 "$REPS"); do
		run_rotated "$rep" bk_ohb bk_tar bk_tar_sync bk_bsdtar bk_restic bk_cp bk_cp_sync
	done
}

bm_ohb() {
	timed "ohbackup backup --all" "$rep" ohb "$W/Rd" "$W/Sd" backup --all
	rm -rf "$W/Sd"/2*
}
bm_tar() {
	timed "GNU tar -cf ×8" "$rep" sh -c 'for i in 1 2 3 4 5 6 7 8; do tar -cf "$2/x$i.tar" -C "$1/b$i" . || exit 1; done' sh "$W/data/d" "$o"
	rm -f "$o"/x*.tar
}
bm_tar_sync() {
	timed "GNU tar -cf ×8; sync" "$rep" sh -c 'for i in 1 2 3 4 5 6 7 8; do tar -cf "$2/s$i.tar" -C "$1/b$i" . || exit 1; done; sync' sh "$W/data/d" "$o"
	rm -f "$o"/s*.tar
}
bm_bsdtar() {
	have bsdtar || return 0
	timed "bsdtar -cf ×8" "$rep" sh -c 'for i in 1 2 3 4 5 6 7 8; do bsdtar -cf "$2/x$i.tar" -C "$1/b$i" . || exit 1; done' sh "$W/data/d" "$o"
	rm -f "$o"/x*.tar
}
bm_restic() {
	have restic && [ "$rep" -le "$SLOW_REPS" ] || return 0
	restic -q -r "$o/repo" init >/dev/null 2>&1
	timed "restic backup ×8" "$rep" sh -c 'for i in 1 2 3 4 5 6 7 8; do restic -q -r "$2/repo" backup "$1/b$i" || exit 1; done' sh "$W/data/d" "$o"
	rm -rf "$o/repo"
}
backup_many_job() {
	local id=d rep i
	want "$id" || return 0
	job_begin "$id" "backup (d): 8 bundles of (c)/4" \
		"ohbackup: one backup --all (bundles in parallel, --parallel 3); peers: 8 runs one after another"
	target "GNU tar -cf ×8" 0.6
	target "bsdtar -cf ×8" 0.6
	target "restic backup ×8" 0.6
	local o=$W/out
	for rep in $(seq 0 "$REPS"); do
		run_rotated "$rep" bm_ohb bm_tar bm_tar_sync bm_bsdtar bm_restic
	done
}

# Restore of a set into an empty folder. Every repetition gets new folders (and
# for ohbackup a new device root whose bundle points there).
rs_ohb() {
	mkdir -p "$o/ohb$rep"
	"$OHB" --root "$o/R$rep" --store "$W/S$s" bundle add "bench.$s" "$o/ohb$rep" >/dev/null || die "bundle add for the restore"
	timed "ohbackup restore" "$rep" ohb "$o/R$rep" "$W/S$s" restore "$set" "bench.$s"
}
rs_tar() {
	mkdir -p "$o/tar$rep"
	timed "GNU tar -xf" "$rep" tar -xf "$o/x.tar" -C "$o/tar$rep"
}
rs_tar_sync() {
	mkdir -p "$o/tars$rep"
	timed "GNU tar -xf; sync" "$rep" sh -c 'tar -xf "$1" -C "$2" && sync' sh "$o/x.tar" "$o/tars$rep"
}
rs_bsdtar() {
	have bsdtar || return 0
	mkdir -p "$o/bsd$rep"
	timed "bsdtar -xf" "$rep" bsdtar -xf "$o/x.bsdtar" -C "$o/bsd$rep"
}
rs_restic() {
	have restic || return 0
	timed "restic restore" "$rep" restic -q -r "$o/repo" restore latest --target "$o/restic$rep"
}
restore_job() { # ID TITLE SET
	local id=$1 title=$2 s=$3 rep set
	want "$id" || return 0
	job_begin "$id" "$title"
	target "GNU tar -xf" 1.0
	local src=$W/data/$s o=$W/out/restore-$s
	mkdir -p "$o"
	ohb "$W/R$s" "$W/S$s" backup "bench.$s" >/dev/null || die "backup of bench.$s for the restore"
	set=$(newest_set "$W/S$s")
	tar -cf "$o/x.tar" -C "$src" .
	have bsdtar && bsdtar -cf "$o/x.bsdtar" -C "$src" .
	have restic && { restic -q -r "$o/repo" init >/dev/null 2>&1; restic -q -r "$o/repo" backup "$src" >/dev/null; }
	for rep in $(seq 0 "$REPS"); do
		run_rotated "$rep" rs_ohb rs_tar rs_tar_sync rs_bsdtar rs_restic
	done
	rm -f "$o/x.tar" "$o/x.bsdtar"
	trash "$o"
}

incremental_jobs() {
	local s=i rep
	local src=$W/data/$s o=$W/out
	if want inc0 || want inc1; then
		ohb "$W/R$s" "$W/S$s" backup "bench.$s" >/dev/null || die "full backup of bench.$s"
		if have restic; then
			restic -q -r "$o/irepo" init >/dev/null 2>&1
			restic -q -r "$o/irepo" backup "$src" >/dev/null
		fi
	fi
	if want inc0; then
		job_begin inc0 "incremental (a), nothing changed" "peer: restic's second run on the same repository"
		target "restic backup (again)" 0.1
		for rep in $(seq 0 "$REPS"); do
			timed "ohbackup incremental" "$rep" ohb "$W/R$s" "$W/S$s" incremental "bench.$s"
			have restic && timed "restic backup (again)" "$rep" restic -q -r "$o/irepo" backup "$src"
		done
	fi
	if want inc1; then
		job_begin inc1 "incremental (a), 1 % of files changed" \
			"before each repetition 1 % of the files get new bytes and mtime; both tools see the same change"
		for rep in $(seq 0 "$REPS"); do
			gen touch "$src" $((SEED + 100 + rep)) 1
			timed "ohbackup incremental" "$rep" ohb "$W/R$s" "$W/S$s" incremental "bench.$s"
			have restic && timed "restic backup (again)" "$rep" restic -q -r "$o/irepo" backup "$src"
		done
	fi
	rm -rf "$o/irepo"
}

scan_jobs() {
	local rep
	if want scanp; then
		job_begin scanp "size scan (a), precise" "ohbackup scan --precise (getBackupDataSize, precise)"
		target "du -s" 1.5
		for rep in $(seq 0 "$REPS"); do
			timed "ohbackup scan --precise" "$rep" ohb "$W/Ra" "$W/Sa" scan --precise bench.a
			timed "du -s" "$rep" du -s "$W/data/a"
		done
	fi
	if want scani; then
		job_begin scani "size scan (a), imprecise" "ohbackup scan (getBackupDataSize, imprecise estimate)"
		target "du -s" 0.2
		for rep in $(seq 0 "$REPS"); do
			timed "ohbackup scan" "$rep" ohb "$W/Ra" "$W/Sa" scan bench.a
			timed "du -s" "$rep" du -s "$W/data/a"
		done
	fi
}

# The console's own overhead: the same backup of (a) from the CLI and from the
# console in tmux (80x24). Wall here is the backup itself in both: from the
# time in the set id (the store writer's begin) to set.json's mtime (written
# last); CPU and RSS are the whole process's. Both ask for the capability file
# (a walk of the bundle) just before they begin the set, so that walk is
# outside the window in both; the console's CPU also holds its home screen's
# walks (at start and after the run), which the window does not.
set_seconds() { # STORE SET -> seconds from the id's time to set.json's mtime
	python3 - "$1" "$2" <<'EOF'
import calendar, os, sys, time
store, sid = sys.argv[1], sys.argv[2]
t = time.strptime(sid[:15], "%Y%m%d-%H%M%S")
begin = calendar.timegm(t) + int(sid[16:19]) / 1000
print("%.4f" % (os.stat(os.path.join(store, sid, "set.json")).st_mtime - begin))
EOF
}

console_job() {
	want console || return 0
	job_begin console "backup (a): CLI vs console" \
		"wall = the backup (set begun → set.json written), same for both; CPU and RSS of the whole process"
	target "ohbackup --json backup (CLI)" 1.05
	if ! have tmux; then
		echo "tmux missing" >"$W/console.skip"
		return 0
	fi
	local rep set tm=(tmux -L "$TMUX_SOCK" -f /dev/null)
	for rep in $(seq 0 "$REPS"); do
		rm -rf "$W/Sa"/2*
		sync
		rm -f "$W/console.rc" "$W/time.out"
		"${tm[@]}" new-session -d -s c -x 80 -y 24 \
			"TERM=xterm-256color /usr/bin/time -f '%U %S %M' -o '$W/time.out' '$OHB' --root '$W/Ra' --store '$W/Sa' --send-rate $RATE; echo \$? >'$W/console.rc'; sleep 600"
		wait_screen 'Actions' 20 && wait_screen 'allow backup' 20 || { say "console: home screen did not come"; break; }
		"${tm[@]}" send-keys -t c b
		wait_screen 'Backup: 0 selected of 1' 20 || { say "console: picker did not come"; break; }
		"${tm[@]}" send-keys -t c Space
		wait_screen 'Backup: 1 selected of 1' 5 || { say "console: selection failed"; break; }
		"${tm[@]}" send-keys -t c Enter
		# wait for set.json without looking at the screen (cheap: no capture-pane while it runs)
		local t=0
		while [ -z "$(newest_set "$W/Sa")" ] && [ $t -lt 600 ]; do sleep 0.2; t=$((t + 1)); done
		wait_screen 'Backup finished' 20
		"${tm[@]}" send-keys -t c q
		sleep 0.3
		"${tm[@]}" send-keys -t c q
		t=0
		while [ ! -s "$W/console.rc" ] && [ $t -lt 100 ]; do sleep 0.1; t=$((t + 1)); done
		"${tm[@]}" kill-server 2>/dev/null
		set=$(newest_set "$W/Sa")
		if [ -n "$set" ] && [ -s "$W/time.out" ]; then
			record "ohbackup console (tmux)" "$rep" "$(set_seconds "$W/Sa" "$set")" $(tail -1 "$W/time.out") 0
		else
			say "console: no set or no timing in rep $rep"
		fi
		rm -rf "$W/Sa"/2*
		sync
		/usr/bin/time -f '%U %S %M' -o "$W/time.out" "$OHB" --root "$W/Ra" --store "$W/Sa" --send-rate "$RATE" --json backup bench.a >/dev/null 2>&1
		set=$(newest_set "$W/Sa")
		if [ -n "$set" ]; then
			record "ohbackup --json backup (CLI)" "$rep" "$(set_seconds "$W/Sa" "$set")" $(tail -1 "$W/time.out") 0
		fi
	done
	rm -rf "$W/Sa"/2*
}

wait_screen() { # REGEX SECONDS
	local i=0
	while [ $i -lt $(($2 * 10)) ]; do
		tmux -L "$TMUX_SOCK" -f /dev/null capture-pane -p -t c 2>/dev/null | grep -Eq -- "$1" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# ---- the run --------------------------------------------------------------------------

start=$(date +%s)
# Earlier deletions (an earlier bench's clean-up) leave dirty inode tables:
# ext4 without a journal then skips recently freed inodes for minutes when
# it creates files. Flushing them first shortens that to a minute.
sync
machine
make_data
backup_job a "backup (a): 50 000 small files" a 0.8 ""
backup_job b "backup (b): ten 50 MiB files" b "" 1.0
backup_job c "backup (c): (a) + (b) in one bundle" c "" ""
backup_many_job
backup_job e "backup (e): copy of /usr/share/doc" e "" ""
restore_job ra "restore (a) into an empty folder" a
restore_job rb "restore (b) into an empty folder" b
incremental_jobs
scan_jobs
console_job

say "done in $(($(date +%s) - start)) s"
echo "- Load average when it ended: $(cut -d' ' -f1-3 /proc/loadavg); the run took $(($(date +%s) - start)) s" >>"$W/machine.txt"
if [ -n "$DOC" ]; then
	python3 "$here/table.py" "$W" --markdown "$DOC"
	say "table written to $DOC"
else
	python3 "$here/table.py" "$W"
fi

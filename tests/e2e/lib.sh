# lib.sh — shared helpers of the end-to-end tests (sourced by every test_*.sh).
#
# Each test runs in its own process with a private workspace $WS (removed on
# exit unless OHB_E2E_KEEP=1): $ROOT is its device root, $STORE its backup
# store, HOME and XDG_DATA_HOME point inside it, so a test never touches the
# user's own data. `ohb ARGS` runs the real binary ($OHBACKUP_BIN) with
# --root/--store; `run CMD...` captures stdout/stderr/status into
# $OUT/$ERR/$RC for the assert_* helpers. Waiting is done by polling
# (wait_for), never by fixed long sleeps.
#
# Needs bash, coreutils, findutils, python3 (JSON and tar crafting), tar, bsdtar.

set -u

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEST_NAME=$(basename "$0" .sh)

if [ -z "${OHBACKUP_BIN:-}" ]; then
	echo "FAIL: OHBACKUP_BIN is not set (the absolute path of build/ohbackup)" >&2
	exit 1
fi
case "$OHBACKUP_BIN" in
/*) ;;
*) OHBACKUP_BIN=$(cd "$(dirname "$OHBACKUP_BIN")" && pwd)/$(basename "$OHBACKUP_BIN") ;;
esac
if [ ! -x "$OHBACKUP_BIN" ]; then
	echo "FAIL: OHBACKUP_BIN=$OHBACKUP_BIN is not an executable" >&2
	exit 1
fi
command -v python3 >/dev/null 2>&1 || { echo "FAIL: python3 is required by the e2e tests" >&2; exit 1; }

WS=$(mktemp -d "${TMPDIR:-/tmp}/ohb-e2e-$TEST_NAME.XXXXXX")
WS=$(cd "$WS" && pwd -P)
ROOT=$WS/root
STORE=$WS/store
OUT=$WS/.out
ERR=$WS/.err
RC=0
export HOME=$WS/home XDG_DATA_HOME=$WS/xdg
mkdir -p "$HOME" "$XDG_DATA_HOME"
unset OHBACKUP_ROOT OHBACKUP_STORE OHBACKUP_TEST_CRASH_AFTER_MOVES
export LC_ALL=C

# Cleanup hooks (e.g. umount) run before the workspace is removed.
_CLEANUPS=()
on_cleanup() { _CLEANUPS+=("$*"); }

_BG_PIDS=()
# Remembers a background pid so the workspace is not removed under it.
track_pid() { _BG_PIDS+=("$1"); }

_cleanup() {
	local rc=$? p c
	for p in "${_BG_PIDS[@]+"${_BG_PIDS[@]}"}"; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for ((c = ${#_CLEANUPS[@]} - 1; c >= 0; c--)); do
		eval "${_CLEANUPS[c]}" || true
	done
	if [ "${OHB_E2E_KEEP:-0}" = 1 ]; then
		echo "workspace kept: $WS" >&2
	else
		chmod -R u+rwX "$WS" 2>/dev/null
		rm -rf "$WS"
	fi
	exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT TERM HUP

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }

# Shows what the last `run` printed, then fails the test.
fail() {
	printf 'FAIL [%s]: %s\n' "$TEST_NAME" "$*" >&2
	if [ -n "${LAST_CMD:-}" ]; then
		echo "--- last command (exit $RC): $LAST_CMD" >&2
		echo "--- stdout (head):" >&2
		head -c 4000 "$OUT" >&2 2>/dev/null
		echo "--- stderr (head):" >&2
		head -c 4000 "$ERR" >&2 2>/dev/null
		echo "---" >&2
	fi
	exit 1
}

# A failure that should not hide the checks after it: recorded now, reported by finish.
_DEFERRED=()
defer_fail() {
	printf 'FAIL [%s] (deferred): %s\n' "$TEST_NAME" "$*" >&2
	_DEFERRED+=("$*")
}

# The last line of a test: exit 0, or 1 when a deferred failure was recorded.
finish() {
	if [ "${#_DEFERRED[@]}" -gt 0 ]; then
		printf 'FAIL [%s]: %d deferred failure(s):\n' "$TEST_NAME" "${#_DEFERRED[@]}" >&2
		printf '  - %s\n' "${_DEFERRED[@]}" >&2
		exit 1
	fi
	exit 0
}

skip() {
	echo "SKIP [$TEST_NAME]: $*"
	exit 77
}

ohb() { "$OHBACKUP_BIN" --root "$ROOT" --store "$STORE" "$@"; }

# ohb_bg OUT ERR ARGS... — the binary itself in the background (no wrapping
# subshell, so BG_PID is the ohbackup process a test may kill); tracked for cleanup.
ohb_bg() {
	local out=$1 err=$2
	shift 2
	"$OHBACKUP_BIN" --root "$ROOT" --store "$STORE" "$@" >"$out" 2>"$err" &
	BG_PID=$!
	track_pid "$BG_PID"
}

# run CMD ARGS... — stdout to $OUT, stderr to $ERR, status to $RC. Never fails by itself.
run() {
	LAST_CMD="$*"
	"$@" >"$OUT" 2>"$ERR"
	RC=$?
	return 0
}

# ---- assertions -----------------------------------------------------------

assert_rc() {
	[ "$RC" = "$1" ] || fail "${2:-command} exited $RC, expected $1"
}

assert_rc_nonzero() {
	[ "$RC" != 0 ] || fail "${1:-command} exited 0, expected a failure"
}

# assert_grep FILE ERE [what]
assert_grep() {
	grep -Eq -- "$2" "$1" || fail "${3:-output} does not match /$2/"
}

assert_no_grep() {
	! grep -Eq -- "$2" "$1" || fail "${3:-output} unexpectedly matches /$2/: $(grep -Em3 -- "$2" "$1")"
}

# assert_error_code CODE [FILE...] — the CLI's error line for CODE: "ohbackup: error <code>:
# <sentence>" (or a per-bundle "backup|restore: <bundle>: error <code>: ..." line / the table's
# "error <code>:"), on stderr or in one of the extra FILEs (e.g. "$OUT").
assert_error_code() {
	local code=$1
	shift
	grep -Eq -- "error $code: [^ ]" "$ERR" "$@" ||
		fail "no 'error $code: <sentence>' in stderr${1:+ or $*}"
}

assert_eq() {
	[ "$1" = "$2" ] || fail "${3:-values differ}: got '$1', expected '$2'"
}

assert_file() { [ -f "$1" ] || fail "missing file $1"; }
assert_no_path() { [ ! -e "$1" ] && [ ! -L "$1" ] || fail "unexpected path $1"; }

assert_empty_dir() {
	local n
	n=$(find "$1" -mindepth 1 | wc -l)
	[ "$n" = 0 ] || fail "$1 should be empty but holds: $(find "$1" -mindepth 1 | head -5 | tr '\n' ' ')"
}

# ---- snapshots ------------------------------------------------------------

# snapshot DIR FILE [nsec] — one line per entry below DIR, symlinks ignored
# (skipped by design): path|type|mode|size (files only)|mtime (seconds, or
# seconds.nanoseconds with "nsec"), then "sha256  path" of every regular file.
snapshot() {
	local dir=$1 file=$2 tfmt='%Ts'
	[ "${3:-}" = nsec ] && tfmt='%T@'
	{
		find "$dir" -mindepth 1 ! -type l ! -type d -printf "%P|%y|%m|%s|$tfmt\n"
		find "$dir" -mindepth 1 -type d -printf "%P|%y|%m||$tfmt\n"
	} | sort >"$file"
	(cd "$dir" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) >>"$file"
}

# assert_same_snapshot EXPECTED ACTUAL what
assert_same_snapshot() {
	if ! cmp -s "$1" "$2"; then
		echo "--- snapshot diff (expected vs actual) for ${3:-tree}:" >&2
		diff "$1" "$2" | head -40 >&2
		fail "${3:-tree} differs from the expected snapshot"
	fi
}

assert_different_snapshot() {
	! cmp -s "$1" "$2" || fail "${3:-tree} should differ from the snapshot but is identical"
}

# ---- waiting --------------------------------------------------------------

# wait_for SECONDS CMD... — polls CMD every 0.05 s until it succeeds; 1 on timeout.
wait_for() {
	local limit=$1
	shift
	local deadline=$(($(date +%s%N) + limit * 1000000000))
	while ! "$@" 2>/dev/null; do
		[ "$(date +%s%N)" -lt "$deadline" ] || return 1
		sleep 0.05
	done
	return 0
}

# ---- JSON and the CLI's output -------------------------------------------

# py SCRIPT ARGS... — a python3 one-off (JSON, tar crafting).
py() { python3 -c "$@"; }

# The set id of the --json summary line in FILE.
summary_set() {
	py 'import json,sys
for l in open(sys.argv[1]):
    l=l.strip()
    if l.startswith("{"):
        o=json.loads(l)
        if o.get("event")=="summary" and o.get("set"): print(o["set"])' "$1" | tail -1
}

# backup_set ARGS... — `ohb --json backup ARGS`, asserts exit 0, prints the set id.
backup_set() {
	run ohb --json backup "$@"
	assert_rc 0 "backup $*"
	local id
	id=$(summary_set "$OUT")
	[ -n "$id" ] || fail "backup $* printed no summary with a set id"
	[ -f "$STORE/$id/set.json" ] || fail "set $id has no set.json after a successful backup"
	printf '%s\n' "$id"
}

# Bundles of the capability file: "allowed" (allToBackup true) or "denied".
caps_bundles() {
	local which=$1 capsfile=$WS/.caps.json
	ohb caps >"$capsfile" || fail "caps failed"
	py 'import json,sys
d=json.load(open(sys.argv[1]))
for b in d["bundleInfos"]:
    if (b.get("allToBackup") is True) == (sys.argv[2]=="allowed"): print(b["name"])' "$capsfile" "$which"
}

# set_state SET — "complete"/"interrupted"/"absent" as `list --json` reports it.
set_state() {
	ohb --json list >"$WS/.list.json" 2>/dev/null || { echo "list-failed"; return; }
	py 'import json,sys
for l in open(sys.argv[1]):
    l=l.strip()
    if not l.startswith("["): continue
    for s in json.loads(l):
        if s["id"]==sys.argv[2]: print(s["state"]); sys.exit(0)
print("absent")' "$WS/.list.json" "$1"
}

# manage_set MANAGE_JSON FILE_NAME ASSIGNMENT N — in the entry for FILE_NAME,
# runs the python ASSIGNMENT of the integer v = N to a field of e.
manage_set() {
	py "import json,sys
p,name,v=sys.argv[1],sys.argv[2],int(sys.argv[3])
m=json.load(open(p)); hit=0
for e in m:
    if e['fileName']==name: $3; hit=1
assert hit, 'no entry '+name
json.dump(m,open(p,'w'))" "$1" "$2" "$4" || fail "cannot edit $1"
}
# manage_set_size MANAGE_JSON FILE_NAME SIZE — rewrites a manage.json entry's st_size.
manage_set_size() { manage_set "$1" "$2" 'e["information"]["stat"]["st_size"]=v' "$3"; }
# manage_set_entries MANAGE_JSON NAME N — sets the entry count recorded for
# tar NAME (tarEntries), as a set made around a crafted tar would have it.
manage_set_entries() { manage_set "$1" "$2" 'e["tarEntries"]=v' "$3"; }

# A sandbox path of a bundle registered with `bundle add` (mount point of DIR).
FILES_MOUNT=/data/storage/el2/base/files

# mktar OUT.tar SPEC... — a ustar archive made with python's tarfile, entries in order:
#   file:NAME:SRC    a regular file NAME with SRC's bytes (mode 0644)
#   dir:NAME         a directory
#   link:NAME:TARGET a symlink
#   hard:NAME:TARGET a hard link
mktar() {
	py 'import sys,tarfile,io,time
out=sys.argv[1]
with tarfile.open(out,"w",format=tarfile.GNU_FORMAT) as t:
    for spec in sys.argv[2:]:
        kind,rest=spec.split(":",1)
        ti=tarfile.TarInfo()
        ti.mtime=int(time.time()); ti.mode=0o644
        if kind=="file":
            name,src=rest.split(":",1); data=open(src,"rb").read()
            ti.name=name; ti.size=len(data); t.addfile(ti,io.BytesIO(data))
        elif kind=="dir":
            ti.name=rest; ti.type=tarfile.DIRTYPE; ti.mode=0o755; t.addfile(ti)
        elif kind in ("link","hard"):
            name,target=rest.split(":",1)
            ti.name=name; ti.linkname=target
            ti.type=tarfile.SYMTYPE if kind=="link" else tarfile.LNKTYPE
            t.addfile(ti)
' "$@" || fail "mktar $1 failed"
}

# Files of size >= 2 MiB + 1 are "big" (sent raw); this makes one of SIZE bytes.
mkrand() { head -c "$2" /dev/urandom >"$1"; }

# ---- the console in tmux ----------------------------------------------------
# A private tmux server per test (tmux -L ohb<pid> -f /dev/null), the console
# started in a detached session of a given size; tmux_wait_for polls
# capture-pane until the screen matches (never a fixed long sleep).

TMUX_SOCK=ohb$$
tmx() { tmux -L "$TMUX_SOCK" -f /dev/null "$@"; }

# tmux_start COLSxROWS [ENV=VAL...] -- ARGS... — runs the real binary with
# --root/--store in a tmux session "c"; its exit status lands in $WS/.console.rc.
tmux_start() {
	command -v tmux >/dev/null 2>&1 || skip "tmux is not installed"
	local size=$1 w h envs=()
	shift
	w=${size%x*}
	h=${size#*x}
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ "${1:-}" = -- ] && shift
	local cmd
	cmd=$(printf '%q ' env "${envs[@]+"${envs[@]}"}" "$OHBACKUP_BIN" --root "$ROOT" --store "$STORE" "$@")
	rm -f "$WS/.console.rc"
	tmx new-session -d -s c -x "$w" -y "$h" "$cmd; echo \$? >$WS/.console.rc; sleep 600" ||
		fail "tmux new-session failed"
	on_cleanup "tmux -L $TMUX_SOCK kill-server 2>/dev/null"
}

# The screen as text.
tmux_cap() { tmx capture-pane -p -t c 2>/dev/null; }

# tmux_keys KEY... — tmux send-keys names (Enter, Space, Escape, Up, F10, C-c) or text.
tmux_keys() { tmx send-keys -t c "$@"; }

# tmux_wait_for REGEX TIMEOUT_SECONDS — polls the screen until REGEX (ERE)
# matches; on timeout fails the test and prints the last screen.
tmux_wait_for() {
	local re=$1 limit=${2:-10}
	local deadline=$(($(date +%s%N) + limit * 1000000000))
	while :; do
		if tmux_cap | grep -Eq -- "$re"; then return 0; fi
		if [ "$(date +%s%N)" -ge "$deadline" ]; then
			echo "--- screen when waiting for /$re/ timed out:" >&2
			tmux_cap >&2
			fail "the console never showed /$re/ within ${limit}s"
		fi
		sleep 0.1
	done
}

# tmux_wait_exit TIMEOUT — waits until the console process has exited; prints its status.
tmux_wait_exit() {
	wait_for "${1:-10}" test -s "$WS/.console.rc" || { tmux_cap >&2; fail "the console did not exit"; }
	cat "$WS/.console.rc"
}

tmux_resize() { tmx resize-window -t c -x "$1" -y "$2" 2>/dev/null || tmx resize-pane -t c -x "$1" -y "$2"; }

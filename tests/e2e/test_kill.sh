#!/bin/sh
# Killed runs never damage what was good before:
#  1. a backup killed with SIGKILL mid-run leaves a set that `list` shows as
#     interrupted and `restore` refuses, while the earlier set is untouched,
#     still complete and restorable, and the next backup runs (no stale lock);
#  2. a restore that dies after moving 2 files into place (the test hook
#     OHBACKUP_TEST_CRASH_AFTER_MOVES=2, exit 99) leaves the bundle half
#     applied only until the next command that opens the service (`caps`),
#     which rolls it forward: the bundle is then wholly the backup's state;
#  3. (no hook fires before the journal, so) restores killed with SIGKILL at
#     three points — after handing over a first file, once the stage exists,
#     once the journal exists — leave the bundle wholly old (before publish:
#     old; journal written: new) after the next command, with no stage,
#     journal or received files (restore/incoming) left behind.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

MiB=$((1024 * 1024))

# ---- 1. a killed backup ----------------------------------------------------
SMALL=$WS/apps/small
mkdir -p "$SMALL/docs"
for i in 1 2 3 4 5; do printf 'small file %s\n' "$i" >"$SMALL/docs/f$i.txt"; done
mkrand "$SMALL/big.bin" $((2 * MiB + 4096))
run ohb bundle add org.test.small "$SMALL"
assert_rc 0 "bundle add small"
snapshot "$SMALL" "$WS/small.snap"
SET1=$(backup_set org.test.small) || exit 1
snapshot "$STORE/$SET1" "$WS/set1.snap"

BIGD=$WS/apps/big
mkdir -p "$BIGD"
for i in $(seq 1 40); do mkrand "$BIGD/chunk$i.bin" $((2 * MiB + 512 * 1024)); done
for i in $(seq 1 50); do printf 'x%s\n' "$i" >"$BIGD/small$i.txt"; done
run ohb bundle add org.test.big "$BIGD"
assert_rc 0 "bundle add big"

# the killed run's set folder: any set other than SET1 holding a file of the bundle
new_set_file() { find "$STORE" -mindepth 3 -path "$STORE/$SET1" -prune -o -path '*/org.test.big/*' -type f -print | grep -q .; }

ohb_bg "$WS/killed.out" "$WS/killed.err" --send-rate 1 backup org.test.big
pid=$BG_PID
wait_for 60 new_set_file || fail "the backup wrote no file of org.test.big within 60 s: $(cat "$WS/killed.err")"
kill -0 "$pid" 2>/dev/null || fail "the backup of 160 MiB at --send-rate 1 ended before it could be killed (rate not honoured?)"
kill -9 "$pid"
{ wait "$pid"; } 2>/dev/null
st=$?
[ "$st" = 137 ] || fail "the killed backup exited $st, expected 137 (SIGKILL)"
SET2=$(cd "$STORE" && for d in */; do d=${d%/}; [ "$d" != "$SET1" ] && [ -d "$d/org.test.big" ] && echo "$d"; done | head -1)
[ -n "$SET2" ] || fail "no set folder for the killed backup"
assert_no_path "$STORE/$SET2/set.json"

run ohb list
assert_rc 0 "list after a killed backup"
assert_grep "$OUT" "^$SET2 .*interrupted" "list output (killed set)"
assert_grep "$OUT" "^$SET1 .*complete" "list output (earlier set)"
assert_eq "$(set_state "$SET2")" interrupted "state of the killed set in list --json"
assert_eq "$(set_state "$SET1")" complete "state of the earlier set in list --json"

run ohb restore "$SET2"
[ "$RC" = 1 ] || fail "restore of the interrupted set exited $RC, expected 1"
assert_error_code 13900020

snapshot "$STORE/$SET1" "$WS/set1.after"
assert_same_snapshot "$WS/set1.snap" "$WS/set1.after" "the earlier set's folder"
printf 'changed\n' >"$SMALL/docs/f1.txt"
rm "$SMALL/docs/f2.txt"
mkrand "$SMALL/big.bin" 1000
run ohb restore "$SET1"
assert_rc 0 "restore of the earlier set after the kill"
snapshot "$SMALL" "$WS/small.after"
assert_same_snapshot "$WS/small.snap" "$WS/small.after" "small bundle restored from the earlier set"
SET3=$(backup_set org.test.small) || fail "a backup after the killed one does not run (stale lock?)"
log "killed backup: $SET2 interrupted, $SET1 intact and restored, next backup $SET3 ok"

# ---- 2. a restore that dies after moving 2 files ---------------------------
# Big enough (2000 small files, 20 big ones) that a restore takes a moment to stage and apply.
C=org.test.crash
CD=$WS/apps/crash
mkdir -p "$CD/one" "$CD/two/three" "$CD/many"
for i in 1 2 3 4; do printf 'one %s\n' "$i" >"$CD/one/f$i"; done
for i in 1 2 3 4; do printf 'three %s\n' "$i" >"$CD/two/three/g$i"; done
for i in $(seq 1 2000); do printf 'many %s\n' "$i" >"$CD/many/m$i.txt"; done
for i in $(seq 1 20); do mkrand "$CD/two/big$i.bin" $((2 * MiB + 10 * i)); done
run ohb bundle add "$C" "$CD"
assert_rc 0 "bundle add crash"
snapshot "$CD" "$WS/crash.new"
SETC=$(backup_set "$C") || exit 1
TMPD=$ROOT/bundles/$C/backup/restore

# The "old" state every crash test starts from: every file's content and mtime differ, one is gone.
while IFS= read -r f; do
	printf 'old content of %s, different length\n' "$f" >"$f"
done < <(find "$CD" -type f)
find "$CD" -type f -exec touch -d '@1300000000' {} +
rm -f "$CD/one/f4"
mkdir -p "$WS/crash-old-copy"
cp -a "$CD/." "$WS/crash-old-copy/"
snapshot "$CD" "$WS/crash.old"
reset_old() {
	find "$CD" -mindepth 1 -delete
	cp -a "$WS/crash-old-copy/." "$CD/"
	snapshot "$CD" "$WS/crash.reset"
	assert_same_snapshot "$WS/crash.old" "$WS/crash.reset" "bundle reset to its old state"
}

run env OHBACKUP_TEST_CRASH_AFTER_MOVES=2 "$OHBACKUP_BIN" --root "$ROOT" --store "$STORE" restore "$SETC"
assert_rc 99 "restore with OHBACKUP_TEST_CRASH_AFTER_MOVES=2"
snapshot "$CD" "$WS/crash.mid"
assert_different_snapshot "$WS/crash.new" "$WS/crash.mid" "bundle right after the crash (the hook should fire mid-apply)"
assert_different_snapshot "$WS/crash.old" "$WS/crash.mid" "bundle right after the crash (2 files should have been moved)"
[ -e "$TMPD/stage.commit" ] || fail "no journal ($TMPD/stage.commit) after a crash in the middle of the moves"

run ohb list
assert_rc 0 "list after the crashed restore"
run ohb caps
assert_rc 0 "caps after the crashed restore (opens the service, which recovers)"
snapshot "$CD" "$WS/crash.recovered"
assert_same_snapshot "$WS/crash.new" "$WS/crash.recovered" "bundle after recovery (must be wholly new)"
assert_no_path "$TMPD/stage"
assert_no_path "$TMPD/stage.commit"
run ohb restore "$SETC"
assert_rc 0 "restore after the recovery"
snapshot "$CD" "$WS/crash.again"
assert_same_snapshot "$WS/crash.new" "$WS/crash.again" "bundle after a second restore"
log "crash after 2 moves: rolled forward to the backup's state"

# ---- 3. restores killed with SIGKILL ---------------------------------------
# The product has no hook before the journal, so SIGKILL at three points of a real
# restore: once it hands files over, once its stage exists, once its journal exists.

# wholly_old_or_new LABEL — after the next command, the bundle is one state or the other.
wholly_old_or_new() {
	run ohb caps
	assert_rc 0 "caps after $1"
	snapshot "$CD" "$WS/crash.k"
	if cmp -s "$WS/crash.k" "$WS/crash.old"; then
		KSTATE=old
	elif cmp -s "$WS/crash.k" "$WS/crash.new"; then
		KSTATE=new
	else
		echo "--- diff against the old state:" >&2
		diff "$WS/crash.old" "$WS/crash.k" | head -20 >&2
		fail "after $1 the bundle is neither wholly old nor wholly new"
	fi
	assert_no_path "$TMPD/stage"
	assert_no_path "$TMPD/stage.commit"
	# docs/FORMATS.md: the temp files are "cleaned by the service".
	if [ -e "$TMPD/incoming" ]; then
		defer_fail "after $1 and a service start, $TMPD/incoming is left behind ($(du -sh "$TMPD/incoming" | cut -f1))"
	fi
}

# is_running PID — alive and not a zombie.
is_running() { [ -d "/proc/$1" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]; }

# kill_restore_when LABEL PREDICATE — starts a restore, polls PREDICATE tightly (the windows
# are short) and SIGKILLs the restore as soon as it holds, then checks the outcome.
kill_restore_when() {
	local label=$1 pred=$2 hit=no pid
	reset_old
	ohb_bg "$WS/k.out" "$WS/k.err" --json restore "$SETC"
	pid=$BG_PID
	SECONDS=0
	while [ "$SECONDS" -lt 60 ] && is_running "$pid"; do
		if "$pred"; then
			kill -9 "$pid"
			hit=yes
			break
		fi
	done
	wait "$pid" 2>/dev/null
	local st=$?
	[ "$hit" = no ] || [ "$st" = 137 ] || fail "the restore killed when $label exited $st"
	[ "$hit" = yes ] || [ "$st" = 0 ] || fail "the restore (not killed: it ended first) exited $st"
	wholly_old_or_new "a restore killed when $label"
	log "restore killed when $label: killed=$hit, bundle wholly $KSTATE"
	HIT=$hit
}
p_first_file() { grep -q '"event":"fileReady"' "$WS/k.out"; }
p_stage() { [ -e "$TMPD/stage" ]; }
p_journal() { [ -e "$TMPD/stage.commit" ]; }

kill_restore_when "it handed over its first file" p_first_file
# Before the client handed over manage.json the service cannot have published: wholly old.
if [ "$HIT" = yes ] && ! grep -q '"uri":"manage.json"' "$WS/k.out"; then
	assert_eq "$KSTATE" old "state after a restore killed before it published"
fi
kill_restore_when "its stage existed" p_stage
kill_restore_when "its journal existed" p_journal
# Once the journal is written the restore is rolled forward: wholly new.
[ "$HIT" = no ] || assert_eq "$KSTATE" new "state after a restore killed with its journal written"
finish

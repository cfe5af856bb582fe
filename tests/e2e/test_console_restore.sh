#!/bin/sh
# Restore from the console (tmux, 80x24): an interrupted set is listed but
# cannot be chosen; a good set's bundle is restored into a wiped bundle and
# its data is back, byte for byte.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

ohb demo >/dev/null || fail "demo"
set=$(backup_set com.example.notes com.example.contacts)
data=$ROOT/bundles/com.example.notes/sandbox/data
snapshot "$data" "$WS/before.snap"
# an interrupted set, newer than the good one
mkdir -p "$STORE/29991231-000000-000/com.example.notes"

# wipe the bundle's data (the bundle stays installed)
find "$data" -mindepth 1 -type f -delete
[ -z "$(find "$data" -type f | head -1)" ] || fail "wipe failed"

tmux_start 80x24 LC_ALL=C.UTF-8 --
tmux_wait_for 'Actions' 10
tmux_wait_for '1 interrupted set' 10
tmux_keys r
tmux_wait_for 'Backup sets: 2 \(1 interrupted\)' 5
tmux_wait_for '29991231-000000-000 +unknown +interrupted' 3
tmux_keys Enter
tmux_wait_for 'is interrupted .*not a restore point' 3
tmux_keys Down Enter
tmux_wait_for "Restore from $set \\(full" 5
tmux_wait_for '\[x\] com\.example\.notes' 3
# only notes
tmux_keys n
tmux_wait_for '0 of 2 selected' 3
tmux_keys Home Space
tmux_wait_for '1 of 2 selected' 3
line=$(tmux_cap | grep -E '\[x\]')
case "$line" in *com.example.contacts*) tmux_keys Home Space Space; tmux_wait_for '\[x\] com\.example\.notes' 3 ;; esac
tmux_wait_for '1 of 2 selected' 3
tmux_keys Enter
tmux_wait_for 'Restore from set|Restore finished' 10   # a fast restore may already be on Results
tmux_wait_for 'Restore finished: 1 of 1 bundles done' 30
tmux_wait_for 'com\.example\.notes +done' 2
tmux_keys q
tmux_wait_for 'Actions' 5
tmux_keys q
tmux_wait_exit 10 >/dev/null

snapshot "$data" "$WS/after.snap"
assert_same_snapshot "$WS/before.snap" "$WS/after.snap" "the restored notes data"
finish

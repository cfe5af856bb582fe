#!/bin/sh
# Restore of an incremental set from the console (tmux, 80x24): the console
# walks the chain (full set, then the incremental), one session per set, and
# the bundle ends exactly in its newest state: edits, additions and
# deletions included.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

ohb demo >/dev/null || fail "demo"
full=$(backup_set com.example.notes)
data=$ROOT/bundles/com.example.notes/sandbox/data/storage/el2/base/files
victim=$(find "$data" -type f -name '*.md' | sort | sed -n 3p)
edited=$(find "$data" -type f -name '*.md' | sort | sed -n 7p)
[ -n "$victim" ] && [ -n "$edited" ] || fail "the demo notes bundle has too few notes"
sleep 1.1
rm -f "$victim"
echo "an edit after the full backup" >>"$edited"
echo "added after the full backup" >"$data/added-later.txt"
run ohb --json incremental com.example.notes
assert_rc 0 "incremental"
inc=$(summary_set "$OUT")
[ -n "$inc" ] && [ "$inc" != "$full" ] || fail "no incremental set"
snapshot "$ROOT/bundles/com.example.notes/sandbox/data" "$WS/newest.snap"

# the bundle is wiped but for junk; restoring the incremental set alone could not
# bring back the unchanged files: the console must walk the chain from the full set
find "$data" -mindepth 1 -delete
echo junk >"$data/junk-not-in-any-backup.txt"

tmux_start 80x24 LC_ALL=C.UTF-8 --
tmux_wait_for 'Actions' 10
tmux_keys r
tmux_wait_for "$inc +incremental" 5
tmux_keys Home Enter
tmux_wait_for "Restore from $inc" 5
tmux_wait_for '\[x\] com\.example\.notes' 3
tmux_keys Enter
tmux_wait_for 'Restore finished: 1 of 1 bundles done' 30
tmux_wait_for 'com\.example\.notes +done' 2
tmux_keys q
tmux_wait_for 'Actions' 5
tmux_keys q
tmux_wait_exit 10 >/dev/null

snapshot "$ROOT/bundles/com.example.notes/sandbox/data" "$WS/after.snap"
assert_same_snapshot "$WS/newest.snap" "$WS/after.snap" "the notes bundle after restoring the chain"
assert_no_path "$victim"
assert_no_path "$data/junk-not-in-any-backup.txt"
finish

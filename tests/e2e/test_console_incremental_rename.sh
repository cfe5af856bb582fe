#!/bin/sh
# From the console (tmux, 80x24): an incremental backup of a changed bundle
# sends only the change, and its set restores, chain and all, into another
# installed bundle (a target name: app_mapping_relation).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

ohb demo >/dev/null || fail "demo"
full=$(backup_set com.example.notes)
files=$ROOT/bundles/com.example.notes/sandbox/data/storage/el2/base/files
sleep 1.1
echo "written after the full backup" >"$files/after-full.txt"

# a second notes bundle, installed and empty: the rename target
mkdir -p "$ROOT/bundles/com.example.notes2/sandbox"
sed 's/"com\.example\.notes"/"com.example.notes2"/' "$ROOT/bundles/com.example.notes/bundle.json" \
	>"$ROOT/bundles/com.example.notes2/bundle.json"
ohb bundle list | grep -q 'com.example.notes2' || fail "the target bundle is not installed"

tmux_start 80x24 LC_ALL=C.UTF-8 --
tmux_wait_for 'Actions' 10
tmux_keys i
tmux_wait_for 'Incremental backup: 0 selected of 9' 5
tmux_keys / n o t e s Enter
tmux_keys Home
tmux_wait_for 'com\.example\.notes ' 3
tmux_keys Space
tmux_wait_for '\[x\] com\.example\.notes ' 3
tmux_keys / Escape
tmux_wait_for 'Incremental backup: 1 selected of 9' 3
tmux_keys Enter
tmux_wait_for 'finished: 1 of 1 bundles done' 30
tmux_keys q
tmux_wait_for 'Actions' 5

# the newest set is an incremental one holding only the new file
inc=$(ls "$STORE" | sort | tail -1)
[ "$inc" != "$full" ] || fail "the console wrote no new set"
grep -Eq '"kind":[[:space:]]*"incremental"' "$STORE/$inc/set.json" || fail "set $inc is not incremental"
tars=$(ls "$STORE/$inc/com.example.notes/" | grep '_part\.[0-9]*\.tar$' || true)
[ -n "$tars" ] || fail "the incremental set has no tar"
listing=$(for t in $tars; do tar -tf "$STORE/$inc/com.example.notes/$t" 2>/dev/null; done)
printf '%s\n' "$listing" | grep -q 'after-full\.txt$' || fail "the new file is not in the incremental tar"
n_files=$(printf '%s\n' "$listing" | grep -vc '/$')
[ "$n_files" -eq 1 ] || fail "the incremental tar holds $n_files files, expected only the new one"

# restore that set into com.example.notes2
tmux_keys r
tmux_wait_for "$inc +incremental" 5
tmux_keys Home Enter
tmux_wait_for "Restore from $inc" 5
tmux_wait_for '\[x\] com\.example\.notes' 3
tmux_keys r
tmux_keys c o m . e x a m p l e . n o t e s 2 Enter
tmux_wait_for 'will be restored into com\.example\.notes2' 3
tmux_keys Enter
tmux_wait_for 'finished: 1 of 1 bundles done' 30
tmux_keys q
tmux_wait_for 'Actions' 5
tmux_keys q
tmux_wait_exit 10 >/dev/null

snapshot "$ROOT/bundles/com.example.notes/sandbox/data" "$WS/source.snap"
snapshot "$ROOT/bundles/com.example.notes2/sandbox/data" "$WS/target.snap"
assert_same_snapshot "$WS/source.snap" "$WS/target.snap" "com.example.notes2 after the renamed restore"
finish

#!/bin/sh
# Restore from the console (tmux, 80x24, --parallel 1) when one bundle cannot
# receive its files: its temp folder is a tmpfs with no inode left once
# restore/incoming/ exists, so its getFileHandle is refused with 13900025
# while it still waits for a slot (cancel answers 13500011 then). The console
# cancels it when it begins: the restore ends, that bundle is shown failed and
# keeps its data, the other bundle is restored. Before, the waiting bundle
# waited for files for ever. Needs root (mount); skipped otherwise.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

ohb demo >/dev/null || fail "demo"
set=$(backup_set com.example.contacts com.example.notes)
ok_data=$ROOT/bundles/com.example.contacts/sandbox/data
bad_data=$ROOT/bundles/com.example.notes/sandbox/data
bad_temp=$ROOT/bundles/com.example.notes/backup
[ -d "$bad_temp" ] || fail "no temp folder $bad_temp"
if ! mount -t tmpfs -o size=1m,nr_inodes=3 tmpfs "$bad_temp" 2>"$WS/mount.err"; then
	skip "cannot mount a tmpfs (needs root): $(cat "$WS/mount.err")"
fi
on_cleanup "umount -l '$bad_temp' 2>/dev/null"

snapshot "$ok_data" "$WS/ok.before"
find "$ok_data" -mindepth 1 -type f -delete
f=$(find "$bad_data" -type f | head -1)
[ -n "$f" ] || fail "the notes bundle has no file"
printf 'changed after the backup\n' >"$f"
snapshot "$bad_data" "$WS/bad.before"

tmux_start 80x24 LC_ALL=C.UTF-8 -- --parallel 1
tmux_wait_for 'Actions' 10
tmux_keys r
tmux_wait_for "$set" 5
tmux_keys Enter
tmux_wait_for "Restore from $set \\(full" 5
tmux_wait_for '2 of 2 selected' 3
tmux_keys Enter
tmux_wait_for 'Restore finished: 1 of 2 bundles done' 30
tmux_cap >"$WS/screen.txt"
assert_grep "$WS/screen.txt" 'com\.example\.contacts +done' "the restorable bundle's row"
assert_grep "$WS/screen.txt" 'com\.example\.notes .*13900025' "the refused bundle's row"
tmux_keys q
tmux_wait_for 'Actions' 5
tmux_keys q
tmux_wait_exit 10 >/dev/null

snapshot "$ok_data" "$WS/ok.after"
assert_same_snapshot "$WS/ok.before" "$WS/ok.after" "the restored contacts data"
snapshot "$bad_data" "$WS/bad.after"
assert_same_snapshot "$WS/bad.before" "$WS/bad.after" "the refused bundle's data"
finish

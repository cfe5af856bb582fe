#!/bin/sh
# A full store: with an 8 MiB tmpfs as the store, a small backup succeeds; a
# backup bigger than the space left fails (exit != 0) with 13900025 (many
# small files and 3 MiB files, then one 10 MiB file); the
# first set stays complete, listed and restorable. Needs root (mount); skipped
# with a SKIP line otherwise.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

MiB=$((1024 * 1024))
mkdir -p "$STORE"
if ! mount -t tmpfs -o size=8m tmpfs "$STORE" 2>"$WS/mount.err"; then
	skip "cannot mount a tmpfs as the store (needs root): $(cat "$WS/mount.err")"
fi
on_cleanup "umount -l '$STORE' 2>/dev/null"
mountpoint -q "$STORE" || fail "$STORE is not a mount point after mount"

SMALL=$WS/apps/small
mkdir -p "$SMALL/sub"
for i in $(seq 1 20); do head -c 2000 /dev/urandom >"$SMALL/sub/f$i"; done
printf 'hello\n' >"$SMALL/hello.txt"
run ohb bundle add org.test.small "$SMALL"
assert_rc 0 "bundle add small"
snapshot "$SMALL" "$WS/small.snap"
SET1=$(backup_set org.test.small) || exit 1
snapshot "$STORE/$SET1" "$WS/set1.snap"
log "small set $SET1; store usage $(df -k --output=used "$STORE" | tail -1) KiB"

BIGD=$WS/apps/big
mkdir -p "$BIGD/small"
for i in 1 2 3; do mkrand "$BIGD/chunk$i.bin" $((3 * MiB)); done
for i in $(seq 1 200); do head -c 20000 /dev/urandom >"$BIGD/small/s$i"; done
run ohb bundle add org.test.big "$BIGD"
assert_rc 0 "bundle add big"

run ohb backup org.test.big
assert_rc_nonzero "backup of ~13 MiB into an 8 MiB store"
assert_error_code 13900025 "$OUT"
run ohb --json backup org.test.big
assert_rc_nonzero "--json backup of ~13 MiB into an 8 MiB store"
assert_grep "$OUT" '"code":13900025[,}]' "--json output of the failed backup"

run ohb list
assert_rc 0 "list on a full store"
assert_grep "$OUT" "^$SET1 .*complete" "list output"
assert_eq "$(set_state "$SET1")" complete "state of the first set"
snapshot "$STORE/$SET1" "$WS/set1.after"
assert_same_snapshot "$WS/set1.snap" "$WS/set1.after" "the first set's folder"

printf 'changed\n' >"$SMALL/hello.txt"
rm "$SMALL/sub/f3"
run ohb restore "$SET1"
assert_rc 0 "restore of the first set from the full store"
snapshot "$SMALL" "$WS/small.after"
assert_same_snapshot "$WS/small.snap" "$WS/small.after" "small bundle restored from the full store"
# A single 10 MiB file (copied into the store with direct writes) fails the
# same way and leaves no temp file behind.
HUGE=$WS/apps/huge
mkdir -p "$HUGE"
mkrand "$HUGE/disk.img" $((10 * MiB))
run ohb bundle add org.test.huge "$HUGE"
assert_rc 0 "bundle add huge"
run ohb backup org.test.huge
assert_rc_nonzero "backup of a 10 MiB file into an 8 MiB store"
assert_error_code 13900025 "$OUT"
left=$(find "$STORE" -name '.*.tmp.*' | head -3)
[ -z "$left" ] || fail "temp files left in the store: $left"

# The store stays usable: a small backup still fits in what is left.
SET3=$(backup_set org.test.small) || fail "a small backup fails after the store filled up"
# A bundle that cannot receive its files (its temp folder is full: a tmpfs
# with no inode left once restore/incoming/ exists) fails with 13900025 and
# keeps its data, while the other bundle restores. With --parallel 1 it waits
# for a slot when its first getFileHandle is refused, so cancel answers
# 13500011 then; the client must cancel it when it begins, or it would wait
# for files for ever (the timeout catches that).
WAITS=$WS/apps/waits
mkdir -p "$WAITS"
printf 'keep me\n' >"$WAITS/data.txt"
run ohb bundle add org.test.waits "$WAITS"
assert_rc 0 "bundle add waits"
SET4=$(backup_set org.test.small org.test.waits) || exit 1
WAITS_TEMP=$ROOT/bundles/org.test.waits/backup
[ -d "$WAITS_TEMP" ] || fail "no temp folder $WAITS_TEMP"
mount -t tmpfs -o size=1m,nr_inodes=3 tmpfs "$WAITS_TEMP" || fail "cannot mount a tmpfs on $WAITS_TEMP"
on_cleanup "umount -l '$WAITS_TEMP' 2>/dev/null"
printf 'changed\n' >"$SMALL/hello.txt"
printf 'newer\n' >"$WAITS/data.txt"
snapshot "$WAITS" "$WS/waits.before"
run timeout 60 "$OHBACKUP_BIN" --root "$ROOT" --store "$STORE" --json --parallel 1 restore "$SET4" org.test.small org.test.waits
[ "$RC" != 124 ] || fail "the restore hung: a bundle refused while it waited for a slot was never cancelled"
assert_rc_nonzero "restore with a bundle whose temp folder is full"
assert_grep "$OUT" '"name":"org.test.waits","state":"failed","code":13900025' "the waiting bundle's failure"
assert_grep "$OUT" '"name":"org.test.small","state":"ok"' "the other bundle"
snapshot "$SMALL" "$WS/small.after4"
assert_same_snapshot "$WS/small.snap" "$WS/small.after4" "small bundle restored beside the failing one"
snapshot "$WAITS" "$WS/waits.after"
assert_same_snapshot "$WS/waits.before" "$WS/waits.after" "the failing bundle's data"
umount "$WAITS_TEMP" || fail "umount $WAITS_TEMP"

log "full store: 13900025 reported, $SET1 intact and restored; a full temp folder fails its bundle only"
exit 0

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
log "full store: 13900025 reported, $SET1 intact and restored"
exit 0

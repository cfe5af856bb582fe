#!/bin/sh
# A real directory tree (a copy of /usr/share/doc: thousands of files) backed
# up as a bundle, wiped and restored comes back identical: bytes, modes, file
# and directory mtimes (seconds; nanoseconds for big files, which keep their
# stat in manage.json). Symlinks are skipped by design, so comparisons ignore
# them. Every part.N.tar is a clean tar for GNU tar and bsdtar. Then the same
# round trip for every bundle of the demo device that allows backup.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

# ---- 1. a real tree --------------------------------------------------------
SRC=
for d in /usr/share/doc /usr/share/man /usr/include; do
	if [ -d "$d" ] && [ "$(find "$d" -type f | head -2000 | wc -l)" -ge 1000 ]; then SRC=$d; break; fi
done
[ -n "$SRC" ] || fail "no directory of thousands of files to copy (/usr/share/doc, /usr/share/man, /usr/include)"

DATA=$WS/apps/org.test.docs/files
mkdir -p "$DATA"
cp -a "$SRC/." "$DATA/" 2>/dev/null
# Shapes the system tree may lack.
mkdir -p "$DATA/zz extra/empty dir" "$DATA/zz extra/private"
chmod 0700 "$DATA/zz extra/private"
printf 'secret\n' >"$DATA/zz extra/private/key"
chmod 0600 "$DATA/zz extra/private/key"
: >"$DATA/zz extra/zero-bytes"
printf '#!/bin/sh\necho hi\n' >"$DATA/zz extra/run me.sh"
chmod 0755 "$DATA/zz extra/run me.sh"
printf 'dots\n' >"$DATA/zz extra/test..x"
printf 'utf8\n' >"$DATA/zz extra/ümlaut – ñ.txt"
# a path past ustar's 100 bytes: GNU long-name records (each one entry in manage.json's tarEntries)
long=$(printf 'long-name-%.0s' 1 2 3 4 5 6 7 8 9 10 11 12)
mkdir -p "$DATA/zz extra/$long"
printf 'long\n' >"$DATA/zz extra/$long/$long.txt"
long=$(printf 'l%.0s' $(seq 1 140))
mkdir -p "$DATA/zz extra/$long/deeper"
printf 'long\n' >"$DATA/zz extra/$long/deeper/$long.txt"
# names of exactly 100 bytes in the tar (the ustar name field, no NUL left): a file, and a directory with its '/'
prefix="$FILES_MOUNT/zz extra/"
n100=$((100 - ${#prefix}))
printf 'a hundred\n' >"$DATA/zz extra/$(printf 'f%.0s' $(seq 1 $n100))"
mkdir -p "$DATA/zz extra/$(printf 'd%.0s' $(seq 1 $((n100 - 1))))"
printf 'inside\n' >"$DATA/zz extra/$(printf 'd%.0s' $(seq 1 $((n100 - 1))))/x"
mkrand "$DATA/zz extra/big.bin" $((3 * 1024 * 1024 + 17))
mkrand "$DATA/zz extra/exactly2MiB.dat" $((2 * 1024 * 1024))
mkrand "$DATA/zz extra/noext" $((2 * 1024 * 1024 + 1))
# the application's own tar, big: kept whole (isUserTar), never unpacked by a restore
mkdir -p "$WS/own"
mkrand "$WS/own/inside.bin" $((3 * 1024 * 1024))
tar -cf "$DATA/zz extra/own.tar" -C "$WS/own" inside.bin
# 8 MiB and more go through the direct (O_DIRECT) copies on both sides: one
# ends on a block boundary, one has a tail of 123 bytes after it.
mkrand "$DATA/zz extra/direct-8MiB.img" $((8 * 1024 * 1024))
mkrand "$DATA/zz extra/direct-tail.img" $((9 * 1024 * 1024 + 123))
touch -d '@1650000000.5' "$DATA/zz extra/direct-tail.img"
touch -d '@1600000000.123456789' "$DATA/zz extra/big.bin"
touch -d '@1500000000.987654321' "$DATA/zz extra/noext"
touch -d '@1400000000' "$DATA/zz extra/empty dir" "$DATA/zz extra/private"
ln -s /etc/passwd "$DATA/zz extra/a symlink"
touch -d '@1400000001' "$DATA/zz extra"

nfiles=$(find "$DATA" -type f | wc -l)
nbig=$(find "$DATA" -type f -size +$((2 * 1024 * 1024))c | wc -l)
log "source $SRC: $nfiles files ($nbig over 2 MiB), $(find "$DATA" -type d | wc -l) dirs, $(find "$DATA" -type l | wc -l) symlinks"

run ohb bundle add org.test.docs "$DATA"
assert_rc 0 "bundle add"

snapshot "$DATA" "$WS/before.snap"
(cd "$DATA" && find . -type f -size +$((2 * 1024 * 1024))c -printf '%P|%T@\n' | sort) >"$WS/before.big"

SET=$(backup_set org.test.docs) || exit 1
log "backup set $SET"
BDIR=$STORE/$SET/org.test.docs
assert_file "$STORE/$SET/set.json"
assert_file "$STORE/$SET/capability.json"
assert_file "$BDIR/manage.json"
py 'import json,sys; json.load(open(sys.argv[1])); json.load(open(sys.argv[2])); json.load(open(sys.argv[3]))' \
	"$STORE/$SET/set.json" "$STORE/$SET/capability.json" "$BDIR/manage.json" || fail "set files are not valid JSON"
[ -n "$(find "$BDIR" -maxdepth 1 -name 'part.*.tar' -print -quit)" ] || fail "no part.N.tar in $BDIR"

# A big file that is a tar is marked isUserTar (as OpenHarmony marks it), no other entry is.
py 'import json,sys
m=json.load(open(sys.argv[1]))
user=[e["information"]["path"] for e in m if e["isUserTar"]]
assert user==[sys.argv[2]], user
assert all(e["isBigFile"] for e in m if e["isUserTar"])' "$BDIR/manage.json" "$FILES_MOUNT/zz extra/own.tar" ||
	fail "own.tar should be the one isUserTar entry of manage.json"

# Big files are raw, named <16 hex>[.ext], one per file over 2 MiB.
nraw=$(find "$BDIR" -maxdepth 1 -type f | grep -Ec '/[0-9a-f]{16}(\.[^/]+)?$')
assert_eq "$nraw" "$nbig" "raw big files in the set"

# Each tar lists cleanly with both tars; together they hold every small file.
: >"$WS/tar-entries"
for t in "$BDIR"/part.*.tar; do
	bsdtar -tvf "$t" >/dev/null 2>"$WS/bsdtar.err" || fail "bsdtar -tvf $(basename "$t") exit $?: $(cat "$WS/bsdtar.err")"
	[ ! -s "$WS/bsdtar.err" ] || fail "bsdtar -tvf $(basename "$t") printed: $(head -3 "$WS/bsdtar.err")"
	tar -tvf "$t" >/dev/null 2>"$WS/tar.err" || fail "tar -tvf $(basename "$t") exit $?: $(cat "$WS/tar.err")"
	# GNU tar notes that the (documented) absolute sandbox paths lose their leading '/'; nothing else.
	grep -v "^tar: Removing leading \`/' from member names\$" "$WS/tar.err" >"$WS/tar.err2"
	[ ! -s "$WS/tar.err2" ] || fail "tar -tvf $(basename "$t") printed: $(head -3 "$WS/tar.err2")"
	tar -P -tvf "$t" >/dev/null 2>"$WS/tar.err" || fail "tar -P -tvf $(basename "$t") exit $?"
	[ ! -s "$WS/tar.err" ] || fail "tar -P -tvf $(basename "$t") printed: $(head -3 "$WS/tar.err")"
	bsdtar -tf "$t" >>"$WS/tar-entries" || fail "bsdtar -tf $(basename "$t")"
done
# A name of exactly 100 bytes comes after a GNU long-name record, as GNU tar and
# OpenHarmony write it: OpenHarmony's reader takes a name field up to its first NUL.
py 'import sys
want = {sys.argv[1].encode(), sys.argv[2].encode()}; seen = set()
for t in sys.argv[3:]:
    data = open(t, "rb").read(); off = 0; longname = None
    while off + 512 <= len(data):
        h = data[off:off + 512]
        if h == bytes(512): break
        size = int(h[124:136].split(b"\0")[0].strip() or b"0", 8)
        body = data[off + 512:off + 512 + size]
        if h[156:157] == b"L":
            longname = body.split(b"\0")[0]
        else:
            field = h[0:100]
            name = longname if longname is not None else field.split(b"\0")[0]
            if len(name) == 100:
                assert longname is not None, "%s: %r has no long-name record" % (t, name)
                assert field == name, "%s: the name field of %r differs" % (t, name)
                seen.add(name)
            longname = None
        off += 512 + (size + 511) // 512 * 512
assert want <= seen, "no entry for %r" % (want - seen)' \
	"$prefix$(printf 'f%.0s' $(seq 1 $n100))" "$prefix$(printf 'd%.0s' $(seq 1 $((n100 - 1))))/" "$BDIR"/part.*.tar ||
	fail "a 100-byte name without its long-name record"
bad=$(grep -v "^$FILES_MOUNT/" "$WS/tar-entries" | head -3)
[ -z "$bad" ] || fail "tar entries must be absolute sandbox paths under $FILES_MOUNT/, got: $bad"
nsmall=$(grep -vc '/$' "$WS/tar-entries")
assert_eq "$nsmall" "$((nfiles - nbig))" "file entries in the tars"
grep -q "^$FILES_MOUNT/zz extra/empty dir/\$" "$WS/tar-entries" || fail "the empty directory has no tar entry"
! grep -q 'a symlink' "$WS/tar-entries" || fail "a symlink was backed up"

# Wipe, restore, compare.
find "$DATA" -mindepth 1 -delete
[ -z "$(ls -A "$DATA")" ] || fail "wipe failed"
run ohb restore "$SET"
assert_rc 0 "restore $SET"
[ -z "$(find "$DATA" -type l)" ] || fail "the restore created symlinks: $(find "$DATA" -type l | head -3)"
assert_no_path "$DATA/inside.bin"
assert_no_path "$DATA/zz extra/inside.bin"
sed -i '/a symlink/d' "$WS/before.snap"   # find ! -type l already skips it; keep the intent explicit
snapshot "$DATA" "$WS/after.snap"
assert_same_snapshot "$WS/before.snap" "$WS/after.snap" "restored tree (bytes, modes, mtimes in seconds)"
(cd "$DATA" && find . -type f -size +$((2 * 1024 * 1024))c -printf '%P|%T@\n' | sort) >"$WS/after.big"
assert_same_snapshot "$WS/before.big" "$WS/after.big" "big files' nanosecond mtimes"
log "real tree: $nfiles files identical after the round trip"

# ---- 2. the demo device ----------------------------------------------------
ROOT=$WS/demo-root
STORE=$WS/demo-store
run ohb demo
assert_rc 0 demo
mapfile -t allowed < <(caps_bundles allowed)
[ "${#allowed[@]}" -ge 2 ] || fail "the demo device should have several bundles that allow backup (got ${#allowed[@]})"
for b in "${allowed[@]}"; do
	sb=$ROOT/bundles/$b/sandbox
	[ -d "$sb" ] || fail "demo bundle $b has no sandbox at $sb"
	snapshot "$sb" "$WS/demo-$b.before"
	python3 "$E2E_DIR/expect_filter.py" "$ROOT/bundles/$b/bundle.json" "$WS/demo-$b.before" >"$WS/demo-$b.expected" ||
		fail "expect_filter on $b"
	[ -s "$WS/demo-$b.expected" ] || fail "demo bundle $b has no data its backup should hold"
done

DSET=$(backup_set --all) || exit 1
for b in "${allowed[@]}"; do
	find "$ROOT/bundles/$b/sandbox" -mindepth 1 -delete
done
run ohb restore "$DSET"
assert_rc 0 "restore $DSET"
for b in "${allowed[@]}"; do
	sb=$ROOT/bundles/$b/sandbox
	snapshot "$sb" "$WS/demo-$b.after"
	python3 "$E2E_DIR/expect_filter.py" "$ROOT/bundles/$b/bundle.json" "$WS/demo-$b.after" >"$WS/demo-$b.got"
	assert_same_snapshot "$WS/demo-$b.expected" "$WS/demo-$b.got" "demo bundle $b (included, not excluded data)"
	python3 "$E2E_DIR/expect_filter.py" "$ROOT/bundles/$b/bundle.json" "$WS/demo-$b.after" --outside >"$WS/demo-$b.extra"
	[ ! -s "$WS/demo-$b.extra" ] || fail "restore of $b created files outside its includes: $(head -3 "$WS/demo-$b.extra")"
done
log "demo: ${#allowed[@]} bundles identical after the round trip"
exit 0

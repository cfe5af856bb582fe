#!/bin/sh
# valgrind_roundtrip.sh — `make valgrind`: a demo device, a backup of two of
# its bundles and their restore, the cloud commands against a directory cloud,
# plus a few error paths, every command under
# valgrind (memory errors and definite/indirect leaks fail, exit status 3).
# Skipped (exit 0 with a SKIP line) when valgrind is not installed.
#
#   OHBACKUP_BIN=/abs/path/build/ohbackup sh tests/e2e/valgrind_roundtrip.sh
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

if ! command -v valgrind >/dev/null 2>&1; then
	echo "SKIP [$TEST_NAME]: valgrind is not installed"
	exit 0
fi

VGLOG=$WS/valgrind
mkdir -p "$VGLOG"
n=0
# vg EXPECTED_STATUS ARGS... — one ohbackup command under valgrind.
vg() {
	local want=$1
	shift
	n=$((n + 1))
	run valgrind --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite,indirect \
		--show-leak-kinds=definite,indirect --log-file="$VGLOG/$n.log" \
		"$OHBACKUP_BIN" --root "$ROOT" --store "$STORE" "$@"
	if [ "$RC" = 3 ]; then
		cat "$VGLOG/$n.log" >&2
		fail "valgrind found errors or leaks in: ohbackup $*"
	fi
	[ "$RC" = "$want" ] || fail "ohbackup $* under valgrind exited $RC, expected $want"
	grep -q 'ERROR SUMMARY: 0 errors' "$VGLOG/$n.log" || { cat "$VGLOG/$n.log" >&2; fail "valgrind reported errors in: ohbackup $*"; }
	log "valgrind clean: ohbackup $*"
}

vg 0 demo
vg 0 caps
cp "$OUT" "$WS/caps.json"
# The two smallest bundles that allow backup keep the run short.
mapfile -t pick < <(py 'import json,sys
d=json.load(open(sys.argv[1]))
ok=sorted((b["spaceOccupied"],b["name"]) for b in d["bundleInfos"] if b["allToBackup"] is True)
for _,n in ok[:2]: print(n)' "$WS/caps.json")
[ "${#pick[@]}" = 2 ] || fail "the demo has fewer than two bundles that allow backup"
for b in "${pick[@]}"; do snapshot "$ROOT/bundles/$b/sandbox" "$WS/$b.before"; done

vg 0 --json backup "${pick[@]}"
SET=$(summary_set "$OUT")
[ -n "$SET" ] || fail "no set id in the backup's summary"
vg 0 list
vg 0 version
vg 0 info "${pick[0]}"
vg 0 bundle list

# Change one backed-up file of each bundle, so the restore has work to do.
for b in "${pick[@]}"; do
	f=$(find "$ROOT/bundles/$b/sandbox/data/storage/el2" -type f -path '*/base/files/*' 2>/dev/null | head -1)
	[ -n "$f" ] || fail "bundle $b has no file under data/storage/el2/base/files"
	printf 'changed\n' >"$f"
	snapshot "$ROOT/bundles/$b/sandbox" "$WS/$b.changed"
	assert_different_snapshot "$WS/$b.before" "$WS/$b.changed" "bundle $b after changing $f"
done
vg 0 restore "$SET"
for b in "${pick[@]}"; do
	snapshot "$ROOT/bundles/$b/sandbox" "$WS/$b.after"
	assert_same_snapshot "$WS/$b.before" "$WS/$b.after" "bundle $b after a restore under valgrind"
done

# The cloud engine: a gallery sync with a directory cloud, a FileSync, a cache
# download, cleanCache, a listing of the cloud and an optimize run.
CLOUD=$WS/cloud
mkdir -p "$CLOUD/media/in" "$ROOT/media/Photo"
printf 'device photo\n' >"$ROOT/media/Photo/a.jpg"
printf 'cloud photo\n' >"$CLOUD/media/in/b.jpg"
head -c 300000 /dev/urandom >"$CLOUD/media/in/c.bin"
vg 0 --json cloud --url "$CLOUD" sync
vg 0 cloud --url "$CLOUD" --bundle "${pick[0]}" sync
vg 0 cloud --url "$CLOUD" clean file://media/in/c.bin
vg 0 cloud --url "$CLOUD" cache file://media/in/c.bin
printf 'only in the cloud\n' >"$CLOUD/media/in/d.txt"
vg 0 cloud --url "$CLOUD" ls --remote
touch -a -d '100 days ago' "$ROOT/media/Photo/a.jpg"
vg 0 cloud --url "$CLOUD" optimize --size 1 --days 30
vg 0 cloud state file://media/Photo/a.jpg file://media/in/b.jpg
vg 1 cloud state file://elsewhere/x

# Error paths free what they allocated too.
vg 1 info nope
vg 1 backup nosuch
vg 1 restore 20000101-000000-000
vg 2 frobnicate
echo "valgrind round trip: $n commands clean"
exit 0

#!/bin/sh
# An incremental chain over a real directory tree (`bundle add`):
#  1. full backup of ~300 small files in nested folders and two 3 MiB files;
#  2. changes (edit, add, delete a file and a folder, rename, chmod, grow a
#     small file past 2 MiB, touch without changing content) -> incremental 1;
#  3. more changes -> incremental 2, which must hold ONLY what changed since
#     incremental 1 (tar listings, raw big files and their .rp, checked against
#     an explicit list); a file only touched since incremental 1 is sent too
#     (unlike OpenHarmony: its tar entry is what restores its new mtime);
#  4. every .rp of the store parses (version line, header, rows of 8 fields) and
#     each tar's .rp lists exactly that tar's entries;
#  5. `restore INC2` onto an empty bundle folder, and onto the full set's state,
#     reproduces the final tree exactly (paths, types, modes, sizes, sha256,
#     file and folder mtimes to the second): deleted files and folders go;
#  6. `restore FULL` onto the final tree is an overlay: later files stay.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

MiB=$((1024 * 1024))
B=org.test.chain
D=$WS/apps/chain
P=$FILES_MOUNT     # sandbox prefix of every path in the set

# ---- the tree --------------------------------------------------------------
mkdir -p "$D"
for i in $(seq -w 0 19); do
	mkdir -p "$D/d$i/sub/deeper"
	for j in 1 2 3 4 5 6 7 8; do printf 'dir %s file %s\n%0*d\n' "$i" "$j" $((j * 37)) 0 >"$D/d$i/f$j.txt"; done
	for j in 1 2 3 4; do printf 'sub %s/%s\n' "$i" "$j" >"$D/d$i/sub/s$j.dat"; done
	for j in 1 2 3; do printf 'deeper %s/%s\n' "$i" "$j" >"$D/d$i/sub/deeper/z$j"; done
done
mkdir -p "$D/empty/inner"
mkrand "$D/big1.bin" $((3 * MiB))
mkrand "$D/d12/big2.img" $((3 * MiB + 123))
nfiles=$(find "$D" -type f | wc -l)
[ "$nfiles" -ge 300 ] || fail "test setup: only $nfiles files"

run ohb bundle add "$B" "$D"
assert_rc 0 "bundle add"
snapshot "$D" "$WS/s0.snap"
FULL=$(backup_set "$B") || exit 1
BD=$STORE/$FULL/$B
assert_file "$BD/all.rp"
log "full set $FULL: $nfiles files"

# ---- helpers ---------------------------------------------------------------

# rp_check FILE — a .rp parses: version line, header line, rows of 8 valid fields.
rp_check() {
	py 'import re,sys
p=sys.argv[1]; lines=open(p,encoding="utf-8",newline="").read().split("\n")
if lines and lines[-1]=="": lines.pop()
def bad(m): print(p+": "+m); sys.exit(1)
if len(lines)<2: bad("fewer than 2 lines")
if lines[0]!="version=1.0&attrNum=8": bad("first line %r" % lines[0])
if lines[1]!="path;mode;dir;size;mtime;hash;isIncremental;encodeFlag": bad("header %r" % lines[1])
for n,l in enumerate(lines[2:],3):
    f=l.split(";")
    if len(f)!=8: bad("line %d has %d fields: %r" % (n,len(f),l))
    path,mode,d,size,mt,h,inc,enc=f
    if not path.startswith("/"): bad("line %d: path %r" % (n,path))
    for v in (mode,size,mt):
        if not re.fullmatch(r"[0-9]+",v): bad("line %d: not a number %r" % (n,v))
    if d not in ("0","1") or inc not in ("0","1") or enc not in ("0","1"): bad("line %d: flags %r" % (n,l))
    if h and not re.fullmatch(r"[0-9A-F]{64}",h): bad("line %d: hash %r" % (n,h))
    if d=="0" and int(mode)&0o170000!=0o100000: bad("line %d: file row with mode %s" % (n,mode))
    if d=="1" and int(mode)&0o170000!=0o040000: bad("line %d: dir row with mode %s" % (n,mode))
' "$1" >"$WS/.rp.err" || fail ".rp does not parse: $(cat "$WS/.rp.err")"
}

# rp_paths FILE — the paths of a .rp's rows, folders with a trailing /.
rp_paths() {
	tail -n +3 "$1" | awk -F';' 'NF { print ($3 == "1") ? $1 "/" : $1 }' | sort
}

# rp_field FILE PATH N — field N of PATH's row.
rp_field() { awk -F';' -v p="$2" -v n="$3" '$1 == p { print $n }' "$1"; }

# set_content SETDIR OUT — what an incremental set's bundle folder carries:
#   tar <path>   an entry of a *_part.N.tar (folders end with /)
#   raw <path>   a big file sent raw (path from its one-row .rp)
# and checks each tar against its .rp, each raw file against its .rp and manage.json.
set_content() {
	local sd=$1 out=$2 t rp f n
	: >"$out"
	for t in "$sd"/*_part.*.tar; do
		[ -e "$t" ] || continue
		case "$(basename "$t")" in [0-9]*_part.[0-9]*.tar) ;; *) fail "tar with an unexpected name: $t" ;; esac
		rp=${t%.tar}.rp
		assert_file "$rp"
		rp_check "$rp"
		tar -tf "$t" 2>/dev/null | sed 's|^\([^/]\)|/\1|' | sort >"$WS/.tar.list" || fail "tar -tf $t"
		rp_paths "$rp" >"$WS/.rp.list"
		if ! cmp -s "$WS/.tar.list" "$WS/.rp.list"; then
			diff "$WS/.tar.list" "$WS/.rp.list" | head -20 >&2
			fail "$(basename "$t") and its .rp list different entries"
		fi
		sed 's/^/tar /' "$WS/.tar.list" >>"$out"
	done
	for f in "$sd"/*; do
		n=$(basename "$f")
		case "$n" in
		*_part.*.tar | *_part.*.rp | all.rp | manage.json) continue ;;
		*.rp)
			[ -e "${f%.rp}" ] || fail "$n has no raw file ${n%.rp} beside it"
			continue ;;
		esac
		[[ "$n" =~ ^[0-9a-f]{16}(\.[A-Za-z0-9_]+)?$ ]] || fail "unexpected file $n in $sd"
		assert_file "$f.rp"
		rp_check "$f.rp"
		[ "$(tail -n +3 "$f.rp" | grep -c .)" = 1 ] || fail "$n.rp should have exactly one row"
		local path size
		path=$(tail -n +3 "$f.rp" | head -1 | cut -d';' -f1)
		size=$(tail -n +3 "$f.rp" | head -1 | cut -d';' -f4)
		[ "$size" = "$(stat -c %s "$f")" ] || fail "$n is $(stat -c %s "$f") bytes, its .rp says $size"
		[ "$size" -gt $((2 * MiB)) ] || fail "raw file $n is only $size bytes (should be in a tar)"
		grep -q "\"fileName\":\"$n\"" "$sd/manage.json" || fail "manage.json does not name $n"
		echo "raw $path" >>"$out"
	done
	sort -o "$out" "$out"
}

# expect_content OUT LINE... — the expected listing, sorted.
expect_content() {
	local out=$1
	shift
	printf '%s\n' "$@" | sort >"$out"
}

assert_content() {
	if ! cmp -s "$1" "$2"; then
		echo "--- expected vs actual content of $3:" >&2
		diff "$1" "$2" >&2
		fail "$3 does not hold exactly what changed"
	fi
}

# diff_paths A B — the paths whose snapshot lines differ.
diff_paths() {
	diff "$1" "$2" | sed -n 's/^[<>] \([^|]*\)|.*/\1/p' | sort -u | head -8 | tr '\n' ' '
}

# empty_bundle — removes everything below the bundle folder (kept itself).
empty_bundle() { find "$D" -mindepth 1 -delete || fail "cannot empty $D"; }

# ---- phase 1: changes since the full backup --------------------------------
sleep 1.1
printf 'edited, longer than before\n' >"$D/d00/f1.txt"               # edit (content and size)
printf 'new in d01\n' >"$D/d01/added.txt"                             # add
mkdir -p "$D/newdir" && printf 'n2\n' >"$D/newdir/n2.txt"             # add a folder with a file
printf 'n3\n' >"$D/newdir/n3.txt"
rm "$D/d02/f3.txt"                                                     # delete a file
rm -r "$D/d03"                                                         # delete a folder tree
mv "$D/d04/f1.txt" "$D/d04/renamed.txt"                                # rename
chmod 600 "$D/d05/f2.txt"                                              # chmod
head -c $((2 * MiB + 5000)) /dev/zero >>"$D/d06/f1.txt"               # grow past 2 MiB (in place)
touch "$D/d07/f1.txt"                                                  # touch only
snapshot "$D" "$WS/s1.snap"

run ohb --json incremental "$B"
assert_rc 0 "incremental 1"
INC1=$(summary_set "$OUT")
[ -n "$INC1" ] || fail "incremental 1 printed no set id"
[ "$INC1" != "$FULL" ] || fail "incremental 1 reused the full set's id"
assert_grep "$STORE/$INC1/set.json" '"kind":[[:space:]]*"incremental"' "set.json of incremental 1"
assert_grep "$STORE/$INC1/set.json" "\"base\":[[:space:]]*\"$FULL\"" "set.json of incremental 1 (base)"
I1=$STORE/$INC1/$B
assert_file "$I1/all.rp"
assert_file "$I1/manage.json"
set_content "$I1" "$WS/inc1.content"
# Files: against the full set's all.rp (no hashes) the touched file is sent too.
grep '^tar .*[^/]$' "$WS/inc1.content" >"$WS/inc1.files" || true
grep '^raw ' "$WS/inc1.content" >>"$WS/inc1.files" || true
sort -o "$WS/inc1.files" "$WS/inc1.files"
expect_content "$WS/inc1.files.exp" \
	"tar $P/d00/f1.txt" "tar $P/d01/added.txt" "tar $P/newdir/n2.txt" "tar $P/newdir/n3.txt" \
	"tar $P/d04/renamed.txt" "tar $P/d05/f2.txt" "tar $P/d07/f1.txt" "raw $P/d06/f1.txt"
assert_content "$WS/inc1.files.exp" "$WS/inc1.files" "incremental 1 (files)"
# Folders: the ones created or whose mtime moved (the bundle folder itself included).
grep -q "^tar $P/d01/\$" "$WS/inc1.content" || fail "incremental 1 lacks folder d01 (its mtime moved)"
grep -q "^tar $P/newdir/\$" "$WS/inc1.content" || fail "incremental 1 lacks the new folder newdir"
grep -q "^tar $P/d10/\$" "$WS/inc1.content" && fail "incremental 1 holds the unchanged folder d10"
# all.rp of incremental 1: the deleted paths are gone, the sent files have hashes.
for p in d02/f3.txt d03 d03/f1.txt d04/f1.txt; do
	[ -z "$(rp_field "$I1/all.rp" "$P/$p" 1)" ] || fail "all.rp of incremental 1 still lists deleted $p"
done
for p in d00/f1.txt d07/f1.txt d06/f1.txt; do
	h=$(rp_field "$I1/all.rp" "$P/$p" 6)
	want=$(sha256sum "$D/$p" | cut -c1-64 | tr a-f A-F)
	assert_eq "$h" "$want" "hash of $p in incremental 1's all.rp"
done
log "incremental 1 $INC1: $(wc -l <"$WS/inc1.content") entries"

# ---- phase 2: changes since incremental 1 ----------------------------------
sleep 1.1
printf 'dir 08 file 1\n%0*d\n' 37 1 >"$D/d08/f1.txt"                   # edit, same size
[ "$(stat -c %s "$D/d08/f1.txt")" = "$(grep "^d08/f1.txt|" "$WS/s0.snap" | cut -d'|' -f4)" ] ||
	fail "test setup: d08/f1.txt should keep its size"
printf 'added in phase 2\n' >"$D/d09/added2.txt"                     # add
mkdir -p "$D/newdir2/sub" && printf 'x\n' >"$D/newdir2/sub/x.txt"     # add nested folders
rm "$D/newdir/n2.txt"                                                  # delete a file added in phase 1
rm -r "$D/d10"                                                         # delete a folder tree
mv "$D/d11/f2.txt" "$D/d11/f2-renamed.txt"                             # rename
touch "$D/d00/f1.txt"                                                  # touch only, hash known (incremental 1)
mkrand "$D/d12/big2.img" $((3 * MiB + 123))                            # big file, same size, new content
chmod 640 "$D/d06/f1.txt"                                              # chmod only, big file
snapshot "$D" "$WS/s2.snap"

run ohb --json incremental "$B"
assert_rc 0 "incremental 2"
INC2=$(summary_set "$OUT")
[ -n "$INC2" ] && [ "$INC2" != "$INC1" ] || fail "incremental 2 printed no new set id"
assert_grep "$STORE/$INC2/set.json" "\"base\":[[:space:]]*\"$INC1\"" "set.json of incremental 2 (base)"
I2=$STORE/$INC2/$B
set_content "$I2" "$WS/inc2.content"
expect_content "$WS/inc2.exp" \
	"tar $P/" \
	"tar $P/d08/f1.txt" \
	"tar $P/d09/" "tar $P/d09/added2.txt" \
	"tar $P/newdir2/" "tar $P/newdir2/sub/" "tar $P/newdir2/sub/x.txt" \
	"tar $P/newdir/" \
	"tar $P/d11/" "tar $P/d11/f2-renamed.txt" \
	"raw $P/d12/big2.img" "raw $P/d06/f1.txt" \
	"tar $P/d00/f1.txt"
assert_content "$WS/inc2.exp" "$WS/inc2.content" "incremental 2 ($INC2)"
# The touched file is sent (its mtime must restore) and all.rp carries its new mtime.
assert_eq "$(rp_field "$I2/all.rp" "$P/d00/f1.txt" 5)" "$(stat -c %Y "$D/d00/f1.txt")" \
	"mtime of the touched d00/f1.txt in incremental 2's all.rp"
assert_eq "$(rp_field "$I2/all.rp" "$P/d06/f1.txt" 2)" "$((0x$(stat -c %f "$D/d06/f1.txt")))" \
	"mode of the chmod-ed d06/f1.txt in incremental 2's all.rp"
# all.rp of incremental 2 lists exactly the current tree.
(cd "$D" && find . -mindepth 1 \( -type d -printf "$P/%P/\n" \) -o \( -type f -printf "$P/%P\n" \)) |
	{ cat; echo "$P/"; } | sort >"$WS/tree.paths"
rp_paths "$I2/all.rp" >"$WS/all2.paths"
if ! cmp -s "$WS/tree.paths" "$WS/all2.paths"; then
	diff "$WS/tree.paths" "$WS/all2.paths" | head -20 >&2
	fail "incremental 2's all.rp does not list exactly the current tree"
fi
log "incremental 2 $INC2: exactly the $(wc -l <"$WS/inc2.content") expected entries"

# ---- every .rp of the store parses ---------------------------------------------
nrp=0
while IFS= read -r f; do rp_check "$f"; nrp=$((nrp + 1)); done < <(find "$STORE" -name '*.rp' -type f)
[ "$nrp" -ge 6 ] || fail "only $nrp .rp files in the store"
for s in "$FULL" "$INC1" "$INC2"; do assert_file "$STORE/$s/$B/all.rp"; done
# The full set's all.rp lists the first tree, no hashes, no incremental flag.
[ "$(tail -n +3 "$BD/all.rp" | grep -c .)" = "$(($(grep -c '|' "$WS/s0.snap") + 1))" ] ||
	fail "the full set's all.rp has $(tail -n +3 "$BD/all.rp" | grep -c .) rows for $(($(grep -c '|' "$WS/s0.snap") + 1)) entries"

# ---- restore INC2 onto an empty bundle folder ----------------------------------
snapshot "$D" "$WS/final.snap"
assert_same_snapshot "$WS/s2.snap" "$WS/final.snap" "the tree after incremental 2 (a backup must not change it)"
empty_bundle
run ohb --json restore "$INC2"
assert_rc 0 "restore $INC2 onto an empty folder"
snapshot "$D" "$WS/r1.snap"
if ! cmp -s "$WS/final.snap" "$WS/r1.snap"; then
	echo "--- restore of the chain onto an empty folder, expected vs actual:" >&2
	diff "$WS/final.snap" "$WS/r1.snap" | head -20 >&2
	defer_fail "restore $INC2 onto an empty folder does not reproduce the final tree (differs: $(diff_paths "$WS/final.snap" "$WS/r1.snap"))"
fi

# ---- restore FULL (overlay) onto an empty folder: the first tree --------------
empty_bundle
run ohb restore "$FULL"
assert_rc 0 "restore $FULL onto an empty folder"
snapshot "$D" "$WS/r0.snap"
assert_same_snapshot "$WS/s0.snap" "$WS/r0.snap" "full set restored onto an empty folder"

# ---- restore INC2 onto the full set's state: deletions happen ----------------
run ohb restore "$INC2"
assert_rc 0 "restore $INC2 onto the full set's state"
snapshot "$D" "$WS/r2.snap"
if ! cmp -s "$WS/final.snap" "$WS/r2.snap"; then
	echo "--- restore of the chain onto the full state, expected vs actual:" >&2
	diff "$WS/final.snap" "$WS/r2.snap" | head -20 >&2
	defer_fail "restore $INC2 onto the full set's state does not reproduce the final tree (differs: $(diff_paths "$WS/final.snap" "$WS/r2.snap"))"
fi
for p in d03 d10 d02/f3.txt d04/f1.txt d11/f2.txt newdir/n2.txt; do
	assert_no_path "$D/$p"
done
assert_file "$D/newdir2/sub/x.txt"

# ---- restore FULL onto the final tree: an overlay, later files stay ----------
# (bring the tree to exactly its final state first, whatever the chain restore did)
empty_bundle
run ohb restore "$INC2"
assert_rc 0 "restore $INC2 once more"
run ohb restore "$FULL"
assert_rc 0 "restore $FULL onto the final tree"
for p in d09/added2.txt newdir2/sub/x.txt d11/f2-renamed.txt newdir/n3.txt d04/renamed.txt d01/added.txt; do
	assert_file "$D/$p"
done
[ "$(cat "$D/d09/added2.txt")" = "added in phase 2" ] || fail "overlay changed d09/added2.txt"
# and what the full set holds is back as it was then
for p in d00/f1.txt d03/f1.txt d10/sub/deeper/z1 d02/f3.txt d04/f1.txt d08/f1.txt d12/big2.img d06/f1.txt; do
	want=$(grep "  ./$p\$" "$WS/s0.snap" | cut -c1-64)
	[ -n "$want" ] || fail "test bug: $p not in the first snapshot"
	[ -f "$D/$p" ] || fail "restore $FULL did not bring back $p"
	assert_eq "$(sha256sum "$D/$p" | cut -c1-64)" "$want" "sha256 of $p after restoring the full set"
done
assert_eq "$(stat -c %a "$D/d05/f2.txt")" 644 "mode of d05/f2.txt after restoring the full set"
log "chain restores: empty folder and full state -> final tree; full set overlays"

# ---- 7. type changes along a chain: a folder became a file, a file a folder -------
# The chain's step is an exact restore (its all.rp says what the bundle holds), so
# a path whose kind changed is replaced: the bundle ends exactly at the final tree.
# A plain (overlay) restore of the same set into a bundle holding the old kinds is
# still refused with 13500008 and changes nothing.
T=org.test.types
TD=$WS/apps/types
mkdir -p "$TD/wasdir/inner"
printf 'k\n' >"$TD/wasdir/inner/k"
printf 'f\n' >"$TD/wasfile"
printf 'stays\n' >"$TD/stays.txt"
run ohb bundle add "$T" "$TD"
assert_rc 0 "bundle add $T"
TFULL=$(backup_set "$T") || exit 1
snapshot "$TD" "$WS/types.full"
sleep 1.1
rm -r "$TD/wasdir" && printf 'now a file\n' >"$TD/wasdir"
rm "$TD/wasfile" && mkdir "$TD/wasfile" && printf 'inside\n' >"$TD/wasfile/in.txt"
snapshot "$TD" "$WS/types.final"
run ohb --json incremental "$T"
assert_rc 0 "incremental of $T"
TINC=$(summary_set "$OUT")
[ -n "$TINC" ] && [ "$TINC" != "$TFULL" ] || fail "incremental of $T made no set"
find "$TD" -mindepth 1 -delete
run ohb restore "$TINC"
assert_rc 0 "restore $TINC across a type change"
snapshot "$TD" "$WS/types.restored"
assert_same_snapshot "$WS/types.final" "$WS/types.restored" "$T after the chain restore (the final tree)"
# restore the full set (overlay) over the final tree: its kinds differ, so it is refused, nothing changes
run ohb restore "$TFULL"
assert_rc_nonzero "overlay restore of $TFULL over changed kinds"
assert_grep "$ERR" "error 13500008: .*refusing to replace" "the refusal of the overlay"
snapshot "$TD" "$WS/types.after_refusal"
assert_same_snapshot "$WS/types.final" "$WS/types.after_refusal" "$T after the refused overlay"

# ---- 8. an all.rp row that cannot be read ---------------------------------------
# Its path would be missing from the list of what the bundle holds, and the
# step would delete that file (d00/f2.txt is unchanged along the chain, so
# incremental 2 does not carry it). The step is refused instead, with nothing
# of it applied: the file the earlier steps restored is still there.
cp -a "$STORE" "$WS/store-badrp"
py 'import sys
p, path = sys.argv[1], sys.argv[2]
lines = open(p, encoding="utf-8").read().split("\n"); hit = 0
for i, l in enumerate(lines):
    f = l.split(";")
    if f[0] == path: f[1] = "x"; lines[i] = ";".join(f); hit = 1
assert hit, "no row for " + path
open(p, "w", encoding="utf-8").write("\n".join(lines))' "$WS/store-badrp/$INC2/$B/all.rp" "$P/d00/f2.txt" ||
	fail "cannot damage the row of d00/f2.txt"
empty_bundle
run "$OHBACKUP_BIN" --root "$ROOT" --store "$WS/store-badrp" restore "$INC2"
assert_rc_nonzero "restore of $INC2 whose all.rp has a damaged row"
assert_grep "$ERR" "error 13500008: .*all.rp with rows that cannot be read" "the refusal of the damaged all.rp"
assert_file "$D/d00/f2.txt"
log "an all.rp row that cannot be read: the step is refused, no file is taken for deleted"

# A newer writer's all.rp with a column past encodeFlag (header and rows alike)
# reads as OpenHarmony reads it, by position: the chain restores the final tree.
cp -a "$STORE" "$WS/store-9col"
for s in "$INC1" "$INC2"; do
	py 'import sys
p = sys.argv[1]
lines = open(p, encoding="utf-8").read().split("\n")
out = [lines[0]] + [l + ";extra" if l else l for l in lines[1:]]
open(p, "w", encoding="utf-8").write("\n".join(out))' "$WS/store-9col/$s/$B/all.rp" || fail "cannot add a column to $s's all.rp"
done
empty_bundle
run "$OHBACKUP_BIN" --root "$ROOT" --store "$WS/store-9col" restore "$INC2"
assert_rc 0 "restore of $INC2 whose all.rp has a ninth column"
snapshot "$D" "$WS/r9.snap"
assert_same_snapshot "$WS/final.snap" "$WS/r9.snap" "the tree restored from all.rp files with a ninth column"
log "an all.rp with a column past encodeFlag: read by position, the chain restores the final tree"
finish

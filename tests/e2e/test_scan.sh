#!/bin/sh
# `ohbackup scan` (getBackupDataSize / onBackupSizeReport) on the demo device plus
# two `bundle add` folders (one of 12 000 files, so a scan spans several reports):
#  1. `--json scan --interval 100`: stdout is only report lines
#     {"scaned":[{bundleName,dataSize,incDataSize}...],"scanning":"..."}; every
#     bundle of the device appears exactly once over all reports; only the last
#     report has "scanning":""; imprecise: incDataSize is -1 everywhere;
#  2. `scan --precise` before any backup: incDataSize -1 (no base time), and
#     dataSize of a `bundle add` folder is the sum of its regular files' sizes;
#  3. after `backup --all` and a change to one bundle, `scan --precise` gives that
#     bundle incDataSize > 0 (the bytes of the files changed), the others 0, and
#     -1 for the bundle that does not allow backup (it has no set);
#  4. the human output: a header, one row per bundle, and a total line.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

run ohb demo
assert_rc 0 "demo"
A=$WS/apps/plain
mkdir -p "$A/x/y" "$A/empty"
printf 'hello\n' >"$A/a.txt"
head -c 70000 /dev/zero >"$A/x/zeros.bin"
head -c 3000000 /dev/zero >"$A/x/y/big.bin"
ln -s a.txt "$A/link"         # symlinks are never backed up, nor counted
run ohb bundle add org.test.plain "$A"
assert_rc 0 "bundle add plain"
M=$WS/apps/many
py 'import os,sys
root=sys.argv[1]
for d in range(120):
    p=os.path.join(root,"d%03d"%d); os.makedirs(p)
    for f in range(100):
        with open(os.path.join(p,"f%03d"%f),"w") as o: o.write("x"*(d+f))' "$M" || fail "cannot make $M"
run ohb bundle add org.test.many "$M"
assert_rc 0 "bundle add many"

ohb bundle list | awk 'NR > 1 { print $1 }' | sort >"$WS/bundles"
[ "$(wc -l <"$WS/bundles")" -ge 9 ] || fail "bundle list shows $(wc -l <"$WS/bundles") bundles"

# check_reports FILE MODE — the --json scan output in FILE. MODE "imprecise" (every
# incDataSize -1) or "any". Writes "name dataSize incDataSize" rows to $WS/rows.
check_reports() {
	py 'import json,sys
out,bundles_file,mode,rows_file=sys.argv[1:5]
want=[l.strip() for l in open(bundles_file) if l.strip()]
reps=[]
for n,l in enumerate(open(out),1):
    l=l.strip()
    if not l: continue
    try: o=json.loads(l)
    except Exception as e: sys.exit("line %d is not JSON: %r" % (n,l[:200]))
    if not isinstance(o,dict) or set(o)!={"scaned","scanning"}:
        sys.exit("line %d is not a size report: %r" % (n,l[:200]))
    if not isinstance(o["scaned"],list) or not isinstance(o["scanning"],str):
        sys.exit("line %d: wrong types: %r" % (n,l[:200]))
    reps.append(o)
if not reps: sys.exit("no report")
for i,o in enumerate(reps):
    last=(i==len(reps)-1)
    if last and o["scanning"]!="": sys.exit("the last report has scanning=%r" % o["scanning"])
    if not last and o["scanning"]=="": sys.exit("report %d of %d (not the last) has scanning=\"\"" % (i+1,len(reps)))
    if not last and o["scanning"] not in want: sys.exit("report %d: scanning=%r is no bundle" % (i+1,o["scanning"]))
seen={}
for o in reps:
    for e in o["scaned"]:
        if not isinstance(e,dict) or set(e)!={"bundleName","dataSize","incDataSize"}:
            sys.exit("entry with wrong keys: %r" % e)
        if not all(isinstance(e[k],int) for k in ("dataSize","incDataSize")):
            sys.exit("entry with non-integer sizes: %r" % e)
        b=e["bundleName"]
        if b in seen: sys.exit("%s appears twice" % b)
        seen[b]=e
missing=[b for b in want if b not in seen]
extra=[b for b in seen if b not in want]
if missing or extra: sys.exit("bundles missing %s, unexpected %s" % (missing,extra))
with open(rows_file,"w") as f:
    for b in want:
        e=seen[b]
        if e["dataSize"]<0: sys.exit("%s: dataSize %d" % (b,e["dataSize"]))
        if mode=="imprecise" and e["incDataSize"]!=-1: sys.exit("%s: incDataSize %d in an imprecise scan" % (b,e["incDataSize"]))
        f.write("%s %d %d\n" % (b,e["dataSize"],e["incDataSize"]))
print(len(reps))' "$1" "$WS/bundles" "$2" "$WS/rows" >"$WS/.nrep" 2>"$WS/.check.err" ||
		fail "scan reports: $(cat "$WS/.check.err")"
	NREP=$(cat "$WS/.nrep")
}

# row NAME FIELD(2=dataSize,3=incDataSize)
row() { awk -v b="$1" -v f="$2" '$1 == b { print $f }' "$WS/rows"; }

sum_files() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

# ---- 1. imprecise ---------------------------------------------------------------
run ohb --json scan --interval 100
assert_rc 0 "scan --json"
check_reports "$OUT" imprecise
log "imprecise scan: $NREP report(s)"
# small bundles come out exact even in an estimate (docs: "exact for small bundles")
assert_eq "$(row org.test.plain 2)" "$(sum_files "$A")" "imprecise dataSize of org.test.plain"

# A short interval on the big bundle: more than one report, still each bundle once.
run ohb --json scan --precise --interval 1 org.test.many org.test.plain com.example.notes
assert_rc 0 "scan --precise --interval 1 (three bundles)"
printf '%s\n' com.example.notes org.test.many org.test.plain >"$WS/bundles.3"
cp "$WS/bundles" "$WS/bundles.all"
cp "$WS/bundles.3" "$WS/bundles"
check_reports "$OUT" any
cp "$WS/bundles.all" "$WS/bundles"
log "precise scan of three bundles, interval 1 ms: $NREP report(s)"

# ---- 2. precise, before any backup ---------------------------------------------
run ohb --json scan --precise --interval 100
assert_rc 0 "scan --precise before any backup"
check_reports "$OUT" any
while read -r b _ i; do
	[ "$i" = -1 ] || fail "$b: incDataSize $i before any backup (no base time: -1)"
done <"$WS/rows"
assert_eq "$(row org.test.plain 2)" "$(sum_files "$A")" "precise dataSize of org.test.plain"
assert_eq "$(row org.test.many 2)" "$(sum_files "$M")" "precise dataSize of org.test.many"
NOTES_SB=$ROOT/bundles/com.example.notes/sandbox
[ -d "$NOTES_SB" ] || fail "demo bundle com.example.notes has no sandbox folder"

# ---- 3. precise, after a backup and a change -----------------------------------
run ohb --json backup --all
assert_rc 0 "backup --all"
SET=$(summary_set "$OUT")
[ -n "$SET" ] || fail "backup --all printed no set"
sleep 1.1
printf 'one more line\n' >>"$A/a.txt"
head -c 5000 /dev/urandom >"$A/x/new.bin"
changed=$(( $(stat -c %s "$A/a.txt") + 5000 ))
run ohb --json scan --precise --interval 100
assert_rc 0 "scan --precise after a backup"
check_reports "$OUT" any
allowed=$(caps_bundles allowed)
while read -r b _ i; do
	if [ "$b" = org.test.plain ]; then
		[ "$i" -gt 0 ] || fail "$b: incDataSize $i after a change"
		assert_eq "$i" "$changed" "incDataSize of $b (bytes of the two changed files)"
	elif grep -qx "$b" <<<"$allowed"; then
		[ "$i" = 0 ] || fail "$b: incDataSize $i, unchanged since the backup"
	else
		[ "$i" = -1 ] || fail "$b (no backup allowed, so no set): incDataSize $i, expected -1"
	fi
done <"$WS/rows"
grep -qx com.example.bank <<<"$allowed" && fail "test setup: com.example.bank is expected to refuse backup"
assert_eq "$(row org.test.plain 2)" "$(sum_files "$A")" "precise dataSize of org.test.plain after the change"

# ---- 4. human output -------------------------------------------------------------
run ohb scan --precise --interval 100
assert_rc 0 "scan (human)"
assert_grep "$OUT" '^BUNDLE +SIZE +CHANGED SINCE' "scan table header"
while read -r b; do
	assert_grep "$OUT" "^$b +[0-9.]+ (B|KiB|MiB|GiB) +([0-9.]+ (B|KiB|MiB|GiB)|unknown)\$" "scan table row of $b"
done <"$WS/bundles"
assert_grep "$OUT" '^total +[0-9.]+ (B|KiB|MiB|GiB)$' "scan table total line"
assert_eq "$(grep -c . "$OUT")" "$(($(wc -l <"$WS/bundles") + 2))" "lines of the scan table"
assert_grep "$OUT" '^com.example.bank .* unknown$' "scan table: bank has no base, changed size unknown"
log "precise scans: sizes, incDataSize after a change, table with total"
finish

#!/bin/sh
# Backup extensions (docs/EXTENSIONS.md) through the CLI, with bundles whose
# bundle.json is written by hand (sandbox mounted on "/", "extension" an absolute path):
#  1. an extension that prints a progress line and a result line: the backup
#     succeeds, --json shows a process event whose processResult.resultInfo is
#     the script's progress line and a resultReport that is the script's result,
#     the script ran in the sandbox with OHB_BUNDLE/OHB_SANDBOX/OHB_ACTION, and
#     its restore step runs after a restore;
#  2. one run with every failing kind beside the good one: exit 3 -> 13500007
#     (message quotes its stderr), `kill -9 $$` -> 13500004, a missing and a
#     non-executable extension -> 13500009; the good bundle still succeeds, the
#     command exits 1, and set.json records each outcome;
#  3. the demo's com.example.ledger: backup, wipe its database, restore: the
#     database is back, loaded by its extension from the dump (which it removes);
#     `info com.example.ledger` shows appInfo {"ledgerRows":N}.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

run ohb demo
assert_rc 0 "demo"
EXT=$WS/ext
mkdir -p "$EXT"

# mkbundle NAME EXTENSION_PATH — a descriptor written directly, one small file in the sandbox.
mkbundle() {
	local name=$1 ext=$2 bd=$ROOT/bundles/$1
	mkdir -p "$bd/sandbox/data/storage/el2/base/files/docs"
	printf 'data of %s\n' "$name" >"$bd/sandbox/data/storage/el2/base/files/docs/a.txt"
	py 'import json,sys
name,ext,path=sys.argv[1:4]
json.dump({"name":name,"appIndex":0,"versionCode":1,"versionName":"1.0.0","extension":ext,
  "mounts":[{"sandbox":"/","dir":"sandbox"}],
  "backup":{"allowToBackupRestore":True,"includes":[],"excludes":[],"fullBackupOnly":False,
            "restoreDeps":"","supportScene":"","extraInfo":{},"requireCompatibility":False}},open(path,"w"))' \
		"$name" "$ext" "$bd/bundle.json" || fail "cannot write $bd/bundle.json"
}

# (a) a well-behaved extension: records how it was run, prints progress and a result
cat >"$EXT/good.sh" <<EOF
#!/bin/sh
printf '%s|%s|%s|%s|%s\n' "\$1" "\$OHB_BUNDLE" "\$OHB_ACTION" "\$OHB_SANDBOX" "\$(pwd -P)" >>"$WS/good.calls"
case "\$1" in
backup|restore)
	echo 'not json, ignored'
	printf '{"progressInfo":[{"name":"%s","processed":7,"total":9,"isPercentage":false}]}\n' "\$OHB_BUNDLE"
	echo '{"resultInfo":"first result, replaced by the last"}'
	printf '{"resultInfo":[{"type":"CountInfo","infos":[{"backupInfo":"ext-%s-marker","successCount":41,"duplicateCount":0,"failedCount":2,"details":[]}]}]}\n' "\$1"
	;;
info) echo '{"goodRows":5}' ;;
esac
exit 0
EOF
# (b) exits 3 after printing on stderr
cat >"$EXT/exit3.sh" <<'EOF'
#!/bin/sh
echo '{"progressInfo":[]}'
echo "exit3-stderr-marker: the database is locked" >&2
exit 3
EOF
# (c) kills itself
cat >"$EXT/kill9.sh" <<'EOF'
#!/bin/sh
echo '{"progressInfo":[]}'
echo "about to die" >&2
kill -9 $$
sleep 5
EOF
# (d) not executable
printf '#!/bin/sh\nexit 0\n' >"$EXT/noexec.sh"
chmod 755 "$EXT/good.sh" "$EXT/exit3.sh" "$EXT/kill9.sh"
chmod 644 "$EXT/noexec.sh"

mkbundle org.ext.good "$EXT/good.sh"
mkbundle org.ext.exit3 "$EXT/exit3.sh"
mkbundle org.ext.kill9 "$EXT/kill9.sh"
mkbundle org.ext.noexec "$EXT/noexec.sh"
mkbundle org.ext.missing "$EXT/does-not-exist.sh"
run ohb bundle list
assert_rc 0 "bundle list"
for b in good exit3 kill9 noexec missing; do assert_grep "$OUT" "^org\.ext\.$b " "bundle list (org.ext.$b)"; done

# events BUNDLE EVENT — the --json lines of $OUT for BUNDLE and EVENT
events() { grep -F "\"bundle\":\"$1\"" "$OUT" | grep -F "\"event\":\"$2\""; }

# ---- 1. a good extension ----------------------------------------------------------
run ohb --json backup org.ext.good
assert_rc 0 "backup org.ext.good"
SET1=$(summary_set "$OUT")
py 'import json,sys
want_prog={"progressInfo":[{"name":"org.ext.good","processed":7,"total":9,"isPercentage":False}]}
want_res={"resultInfo":[{"type":"CountInfo","infos":[{"backupInfo":"ext-backup-marker","successCount":41,"duplicateCount":0,"failedCount":2,"details":[]}]}]}
prog=res=0
for l in open(sys.argv[1]):
    o=json.loads(l)
    if o.get("bundle")!="org.ext.good": continue
    if o["event"]=="process":
        pr=o["process"]["processResult"]
        ri=pr.get("resultInfo")
        if isinstance(ri,str) and json.loads(ri)==want_prog: prog+=1
    if o["event"]=="resultReport":
        res+=1
        if o["result"]!=want_res: sys.exit("resultReport is %r, not the script'"'"'s last result line" % o["result"])
if prog!=1: sys.exit("%d process events carry the script'"'"'s progress line (expected 1)" % prog)
if res!=1: sys.exit("%d resultReport events (expected 1)" % res)' "$OUT" 2>"$WS/.py.err" ||
	fail "events of org.ext.good: $(cat "$WS/.py.err")"
SB=$ROOT/bundles/org.ext.good/sandbox
SBREAL=$(cd "$SB" && pwd -P)
assert_eq "$(cat "$WS/good.calls")" "backup|org.ext.good|backup|$SBREAL|$SBREAL" "how the extension was run"
assert_file "$STORE/$SET1/org.ext.good/part.0.tar"
tar -tf "$STORE/$SET1/org.ext.good/part.0.tar" 2>/dev/null | grep -q 'base/files/docs/a.txt$' ||
	fail "the good bundle's tar lacks docs/a.txt"
rm -f "$WS/good.calls"
run ohb --json restore "$SET1" org.ext.good
assert_rc 0 "restore org.ext.good"
assert_eq "$(cat "$WS/good.calls" 2>/dev/null)" "restore|org.ext.good|restore|$SBREAL|$SBREAL" "the extension's restore step"
events org.ext.good resultReport | grep -q 'ext-restore-marker' || fail "restore's resultReport is not the script's result"
run ohb --json info org.ext.good
assert_rc 0 "info org.ext.good"
assert_grep "$OUT" '"appInfo":\{"goodRows":5\}' "info of org.ext.good"
log "good extension: progress, result, environment, restore step, info"

# ---- 2. failing extensions beside a good one --------------------------------------
FAILING="org.ext.exit3 org.ext.kill9 org.ext.noexec org.ext.missing"
t0=$(date +%s)
# shellcheck disable=SC2086
run ohb --json backup org.ext.good $FAILING
assert_rc 1 "backup with failing extensions"
[ $(($(date +%s) - t0)) -le 20 ] || fail "the backup with failing extensions took $(($(date +%s) - t0)) s"
SET2=$(summary_set "$OUT")
[ -n "$SET2" ] || fail "no set for the run with failing extensions"
# end_code BUNDLE — the code of its bundleEnd event
end_code() { events "$1" bundleEnd | sed -n 's/.*"code":\([0-9-]*\).*/\1/p' | head -1; }
# error_info BUNDLE — the errorInfo of its ErrorInfo resultReport
error_info() {
	events "$1" resultReport | py 'import json,sys
for l in sys.stdin:
    r=json.loads(l)["result"]["resultInfo"]
    if isinstance(r,dict) and r.get("type")=="ErrorInfo": print(r["errorCode"], r["errorInfo"])'
}
assert_eq "$(end_code org.ext.good)" 0 "bundleEnd code of org.ext.good"
assert_eq "$(end_code org.ext.exit3)" 13500007 "bundleEnd code of org.ext.exit3 (exit 3)"
assert_eq "$(end_code org.ext.kill9)" 13500004 "bundleEnd code of org.ext.kill9 (kill -9)"
assert_eq "$(end_code org.ext.noexec)" 13500009 "bundleEnd code of org.ext.noexec"
assert_eq "$(end_code org.ext.missing)" 13500009 "bundleEnd code of org.ext.missing"
info=$(error_info org.ext.exit3)
grep -q '^13500007 .*status 3.*exit3-stderr-marker' <<<"$info" || fail "exit3's ErrorInfo: '$info'"
info=$(error_info org.ext.kill9)
grep -q '^13500004 .*signal 9' <<<"$info" || fail "kill9's ErrorInfo: '$info'"
info=$(error_info org.ext.noexec)
grep -q "^13500009 .*noexec.sh" <<<"$info" || fail "noexec's ErrorInfo: '$info'"
info=$(error_info org.ext.missing)
grep -q "^13500009 .*does-not-exist.sh" <<<"$info" || fail "missing's ErrorInfo: '$info'"
py 'import json,sys
s=json.load(open(sys.argv[1]))
got={b["name"]:b["code"] for b in s["bundles"]}
want={"org.ext.good":0,"org.ext.exit3":13500007,"org.ext.kill9":13500004,"org.ext.noexec":13500009,"org.ext.missing":13500009}
if got!=want: sys.exit("set.json codes %r, expected %r" % (got,want))' "$STORE/$SET2/set.json" 2>"$WS/.py.err" ||
	fail "$(cat "$WS/.py.err")"
assert_file "$STORE/$SET2/org.ext.good/manage.json"
for b in $FAILING; do
	# A failed backup step means nothing of the bundle is packed.
	if find "$STORE/$SET2/$b" -name '*.tar' 2>/dev/null | grep -q .; then
		fail "$b failed in its extension but the set holds tars of it"
	fi
done
# The same run for people: a line per failure on stderr, exit 1.
# shellcheck disable=SC2086
run ohb backup org.ext.good $FAILING
assert_rc 1 "backup with failing extensions (human output)"
assert_grep "$ERR" 'org\.ext\.exit3: error 13500007: .*exit3-stderr-marker' "stderr line of exit3"
assert_grep "$ERR" 'org\.ext\.kill9: error 13500004: ' "stderr line of kill9"
assert_grep "$ERR" 'org\.ext\.noexec: error 13500009: ' "stderr line of noexec"
assert_grep "$ERR" 'org\.ext\.missing: error 13500009: ' "stderr line of missing"
assert_no_grep "$ERR" 'org\.ext\.good: error' "stderr (good bundle)"
log "failing extensions: 13500007, 13500004, 13500009 x2; the good bundle succeeded"

# ---- 3. the demo ledger ---------------------------------------------------------
L=com.example.ledger
LSB=$ROOT/bundles/$L/sandbox
DB=$LSB/data/storage/el2/database/ledger.db
DUMP=$LSB/data/storage/el2/base/files/ledger.dump
assert_file "$DB"
rows=$(grep -c '^[0-9]' "$DB")
[ "$rows" -gt 10 ] || fail "the demo ledger has only $rows rows"
sha_db=$(sha256sum <"$DB")
snapshot "$LSB" "$WS/ledger.before"
run ohb --json backup "$L"
assert_rc 0 "backup $L"
LSET=$(summary_set "$OUT")
events "$L" process | grep -q "\"processed\\\\\":$rows,\\\\\"total\\\\\":$rows" ||
	fail "no process event carries the ledger extension's final progress ($rows/$rows)"
events "$L" resultReport | grep -q "\"successCount\":$rows" || fail "the ledger's resultReport is not its extension's"
assert_file "$DUMP"
grep -q '^INSERT INTO entries' "$DUMP" || fail "the ledger's dump holds no INSERT"
# the dump travelled in the set
tar -tf "$STORE/$LSET/$L/part.0.tar" 2>/dev/null | grep -q 'base/files/ledger.dump$' || fail "the set lacks ledger.dump"

# wipe the database and the dump; the restore brings the dump; the extension loads it
rm -f "$DB" "$DUMP"
run ohb --json restore "$LSET" "$L"
assert_rc 0 "restore $L"
assert_file "$DB"
assert_eq "$(sha256sum <"$DB")" "$sha_db" "the ledger database after restore"
assert_no_path "$DUMP"   # the extension loaded it and removed it: its restore step ran
events "$L" resultReport | grep -q "\"backupInfo\":\"restore\",\"successCount\":$rows" ||
	fail "the restore's resultReport does not carry the extension's restore count"
run ohb info "$L"
assert_rc 0 "info $L"
assert_grep "$OUT" "\"appInfo\":\\{\"ledgerRows\":$rows\\}" "info $L (appInfo)"
run ohb --json info "$L"
assert_rc 0 "info --json $L"
assert_grep "$OUT" "\"appInfo\":\\{\"ledgerRows\":$rows\\}" "info of $L (appInfo)"
log "ledger: database back after wipe + restore ($rows rows), info shows appInfo"
finish

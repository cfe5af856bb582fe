#!/bin/sh
# The command-line surface (tui/main.c's command table): help, exit statuses,
# error lines with the spec's codes, --json events and their order, and the
# restore options.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

ERRLINE='^ohbackup: error [0-9]+: [^ ]'

# ---- help and usage ---------------------------------------------------------
for h in --help -h; do
	run ohb "$h"
	assert_rc 0 "ohbackup $h"
	assert_grep "$OUT" '^usage: ohbackup ' "ohbackup $h"
	for c in demo bundle caps version info backup restore list; do
		assert_grep "$OUT" "^  $c( |\$)" "ohbackup $h (command $c listed)"
	done
done
for c in demo bundle caps version info backup restore list; do
	run ohb "$c" --help
	assert_rc 0 "ohbackup $c --help"
	assert_grep "$OUT" "^usage: ohbackup $c" "ohbackup $c --help"
done
[ ! -e "$ROOT" ] || [ -z "$(ls -A "$ROOT/bundles" 2>/dev/null)" ] || fail "--help created bundles"

run ohb frobnicate
assert_rc 2 "unknown command"
assert_grep "$ERR" 'frobnicate' "stderr of an unknown command"
run ohb --bogus-option list
assert_rc 2 "unknown global option"
run ohb --parallel abc list
assert_rc 2 "--parallel abc"
run ohb --send-rate 801 list
assert_rc 2 "--send-rate 801"
run ohb backup
assert_rc 2 "backup without bundles"
run ohb backup --all org.x
assert_rc 2 "backup --all with names"
run ohb restore
assert_rc 2 "restore without a set"
run ohb info
assert_rc 2 "info without a bundle"

# ---- the device --------------------------------------------------------------
run ohb demo
assert_rc 0 demo

run ohb version
assert_rc 0 version
py 'import json,sys
o=json.loads(open(sys.argv[1]).read())
assert list(o)==["backupVersion"] and isinstance(o["backupVersion"],str) and o["backupVersion"], o' "$OUT" ||
	fail "version does not print {\"backupVersion\":\"…\"}: $(cat "$OUT")"

run ohb caps
assert_rc 0 caps
cp "$OUT" "$WS/caps.stdout"
py 'import json,sys
d=json.load(open(sys.argv[1]))
infos=d["bundleInfos"]
assert len(infos)>=6, len(infos)
for b in infos:
    for k,t in (("name",str),("versionCode",int),("versionName",str),("spaceOccupied",int),("allToBackup",bool),("extensionName",str)):
        assert isinstance(b[k],t) and not (t is int and isinstance(b[k],bool)), (b.get("name"),k,b.get(k))
assert any(b["allToBackup"] is False for b in infos), "no demo bundle disallows backup"
assert any(b["name"]=="com.example.notes" for b in infos)' "$OUT" || fail "caps is not a valid capability file: $(head -c 600 "$OUT")"

run ohb caps --out "$WS/caps-file.json"
assert_rc 0 "caps --out"
assert_file "$WS/caps-file.json"
py 'import json,sys
a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))
assert a==b' "$WS/caps-file.json" "$WS/caps.stdout" || fail "caps --out wrote something else than caps prints"
run ohb caps --out "$WS/no/such/dir/caps.json"
assert_rc 1 "caps --out into a missing directory"
assert_grep "$ERR" "$ERRLINE" "stderr of caps --out into a missing directory"

run ohb info com.example.notes
assert_rc 0 "info com.example.notes"
py 'import json,sys; json.loads(open(sys.argv[1]).read())' "$OUT" || fail "info does not print JSON: $(cat "$OUT")"
assert_grep "$OUT" 'com\.example\.notes' "info output"
run ohb info nope
assert_rc 1 "info nope"
assert_grep "$ERR" '^ohbackup: error 401: [^ ]' "stderr of info nope"
run ohb --json info nope
assert_rc 1 "--json info nope"
assert_grep "$OUT" '"event":"error"' "--json info nope"
assert_grep "$OUT" '"code":401[,}]' "--json info nope"

# bundle add / list
A=$WS/apps/a
Bd=$WS/apps/b
mkdir -p "$A/docs" "$Bd"
printf 'data of a\n' >"$A/docs/a.txt"
mkrand "$A/a-big.bin" $((2 * 1024 * 1024 + 3))
printf 'data of b\n' >"$Bd/b-own.txt"
run ohb bundle add org.test.missing "$WS/apps/does-not-exist"
assert_rc 1 "bundle add of a missing directory"
assert_grep "$ERR" "$ERRLINE" "stderr of bundle add of a missing directory"
run ohb bundle add "bad/name" "$A"
assert_rc_nonzero "bundle add with an invalid name"
run ohb bundle add org.test.a "$A"
assert_rc 0 "bundle add a"
run ohb bundle add org.test.b "$Bd"
assert_rc 0 "bundle add b"
run ohb bundle add org.test.a "$Bd"
assert_rc_nonzero "bundle add of an already registered name"
run ohb bundle list
assert_rc 0 "bundle list"
assert_grep "$OUT" "^org\.test\.a .*$A\$" "bundle list (org.test.a)"
assert_grep "$OUT" "^org\.test\.b .*$Bd\$" "bundle list (org.test.b)"
assert_grep "$OUT" '^com\.example\.notes ' "bundle list (demo bundle)"
assert_no_grep "$OUT" 'org\.test\.missing' "bundle list (failed add)"
run ohb --json bundle list
assert_rc 0 "--json bundle list"
py 'import json,sys
arr=json.loads(open(sys.argv[1]).read())
names={b["name"]:b for b in arr}
assert names["org.test.a"]["dir"]==sys.argv[2], names["org.test.a"]' "$OUT" "$A" || fail "--json bundle list: $(head -c 400 "$OUT")"

# ---- backup -------------------------------------------------------------------
run ohb backup nosuch
assert_rc 1 "backup nosuch"
assert_grep "$ERR" 'error 13500005: [^ ]' "stderr of backup nosuch"

mapfile -t denied < <(caps_bundles denied)
mapfile -t allowed < <(caps_bundles allowed)
[ "${#denied[@]}" -ge 1 ] || fail "caps lists no bundle with allToBackup false"
D=${denied[0]}
run ohb backup "$D"
assert_rc 1 "backup of $D (allToBackup false)"
assert_grep "$ERR" 'error 13500001: [^ ]' "stderr of backup $D"

# backup --all: skips D, exits 0, piped stderr carries no progress line
run ohb backup --all
assert_rc 0 "backup --all"
assert_grep "$ERR" "$D.*skipped" "stderr of backup --all (skipping $D)"
if grep -q $'\r' "$ERR" "$OUT"; then fail "backup --all piped printed a progress line (\\r)"; fi
SETALL=$(sed -n 's/^backup complete: set \([^ ,]*\),.*/\1/p' "$OUT")
[ -n "$SETALL" ] || fail "backup --all did not print 'backup complete: set ID, …'"
assert_file "$STORE/$SETALL/set.json"
py 'import json,sys
s=json.load(open(sys.argv[1]))
names=[b["name"] for b in s["bundles"]]
assert sys.argv[2] not in names, names
assert s["complete"] is True and all(b["code"]==0 for b in s["bundles"]), s
assert set(sys.argv[3:]) <= set(names), (names, sys.argv[3:])' "$STORE/$SETALL/set.json" "$D" "${allowed[@]}" ||
	fail "set.json of backup --all: $(cat "$STORE/$SETALL/set.json")"
assert_no_path "$STORE/$SETALL/$D"

# --json backup: per bundle bundleBegin < fileReady < bundleEnd, one allBundlesEnd, summary last
run ohb --json backup org.test.a org.test.b
assert_rc 0 "--json backup a b"
if grep -q $'\r' "$ERR" "$OUT"; then fail "--json backup printed a progress line"; fi
py 'import json,sys
ev=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
kinds=[e["event"] for e in ev]
assert kinds[-1]=="summary", kinds[-3:]
assert kinds.count("allBundlesEnd")==1, kinds
assert kinds.index("allBundlesEnd") < len(kinds)-1
last_bundle_event=max(i for i,e in enumerate(ev) if e.get("bundle"))
assert kinds.index("allBundlesEnd") > last_bundle_event, "allBundlesEnd before a bundle event"
s=ev[-1]
assert s["ok"] is True and s["set"], s
for b in ("org.test.a","org.test.b"):
    mine=[(i,e) for i,e in enumerate(ev) if e.get("bundle")==b]
    k=[e["event"] for i,e in mine]
    assert k.count("bundleBegin")==1 and k.count("bundleEnd")==1, (b,k)
    ib=k.index("bundleBegin"); ie=k.index("bundleEnd")
    files=[j for j,x in enumerate(k) if x=="fileReady"]
    assert files, (b,"no fileReady")
    assert ib < min(files) and max(files) < ie, (b,k)
    uris=[e["uri"] for i,e in mine if e["event"]=="fileReady"]
    assert uris[-1]=="manage.json", (b,uris)
    assert mine[ie][1]["code"]==0 and mine[ib][1]["code"]==0, (b,mine[ie][1])
    assert "resultReport" in k[ib:ie+1], (b,k)
    sb=[x for x in s["bundles"] if x["name"]==b][0]
    assert sb["state"]=="ok" and sb["code"]==0 and sb["files"]==len(uris), sb
print(s["set"])' "$OUT" >"$WS/json-set" || fail "--json backup event order is wrong (see stdout)"
SETAB=$(cat "$WS/json-set")
[ -f "$STORE/$SETAB/set.json" ] || fail "summary names set $SETAB which has no set.json"

# --json backup of a denied bundle: bundleBegin carries 13500001, summary ok:false
run ohb --json backup "$D"
assert_rc 1 "--json backup $D"
assert_grep "$OUT" '"event":"bundleBegin".*"code":13500001' "--json backup $D"
assert_grep "$OUT" '"event":"summary".*"ok":false' "--json backup $D"

# ---- list -----------------------------------------------------------------------
run ohb list
assert_rc 0 list
assert_grep "$OUT" "^$SETAB .*complete" "list output"
assert_grep "$OUT" "^$SETALL .*complete" "list output"
run ohb --json list
assert_rc 0 "--json list"
py 'import json,sys
lines=[l for l in open(sys.argv[1]) if l.strip()]
assert len(lines)==1, len(lines)
arr=json.loads(lines[0])
ids=[s["id"] for s in arr]
assert ids==sorted(ids,reverse=True), ("not newest first", ids)
for want in sys.argv[2:]:
    s=[x for x in arr if x["id"]==want][0]
    assert s["state"]=="complete" and s["kind"]=="full", s' "$OUT" "$SETAB" "$SETALL" ||
	fail "--json list: $(head -c 600 "$OUT")"
run ohb list extra
assert_rc 2 "list with an argument"

# ---- restore ---------------------------------------------------------------------
run ohb restore 20000101-000000-000
assert_rc 1 "restore of an unknown set"
assert_grep "$ERR" "$ERRLINE" "stderr of restore of an unknown set"
run ohb restore "$SETAB" org.test.notinset
assert_rc 1 "restore of a bundle the set does not hold"
assert_grep "$ERR" 'error 13500005: [^ ]' "stderr of restore of a bundle the set lacks"
run ohb restore "$SETAB" --bogus
assert_rc 2 "restore with an unknown option"

# Selective restore: only the named bundle is touched.
snapshot "$A" "$WS/a.backup"
printf 'a changed\n' >"$A/docs/a.txt"
printf 'b changed\n' >"$Bd/b-own.txt"
run ohb restore "$SETAB" org.test.a
assert_rc 0 "restore SET org.test.a"
snapshot "$A" "$WS/a.now"
assert_same_snapshot "$WS/a.backup" "$WS/a.now" "org.test.a after restoring it"
assert_eq "$(cat "$Bd/b-own.txt")" "b changed" "org.test.b after restoring only org.test.a"

# --rename: a backup of A restored into B puts A's data into B, leaves A alone.
run ohb --json backup org.test.a
assert_rc 0 "backup org.test.a"
SETA=$(summary_set "$OUT")
printf 'a changed again\n' >"$A/docs/a.txt"
snapshot "$A" "$WS/a.before-rename"
run ohb restore "$SETA" --rename org.test.a=org.test.b
assert_rc 0 "restore --rename org.test.a=org.test.b"
assert_eq "$(cat "$Bd/docs/a.txt" 2>/dev/null)" "data of a" "org.test.b's docs/a.txt after the renamed restore"
cmp -s "$A/a-big.bin" "$Bd/a-big.bin" || fail "org.test.b lacks A's big file after the renamed restore"
assert_eq "$(cat "$Bd/b-own.txt")" "b changed" "org.test.b's own file after the renamed restore"
snapshot "$A" "$WS/a.after-rename"
assert_same_snapshot "$WS/a.before-rename" "$WS/a.after-rename" "org.test.a after a restore renamed into org.test.b"
run ohb restore "$SETA" --rename org.test.a=org.test.nosuch
assert_rc 1 "restore --rename into a bundle that is not installed"
assert_grep "$ERR" 'error 13500005: [^ ]' "stderr of restore --rename into a missing bundle"
exit 0

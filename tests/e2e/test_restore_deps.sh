#!/bin/sh
# restoreDeps (a bundle starts restoring only after the bundles it names, in the
# same session, have ended), set in each bundle.json's "backup" object, carried
# by the set's capability file:
#  1. chain: C depends on B, B on A; names chosen so that neither name order nor
#     call order is the dependency order (A=org.dep.zulu, B=org.dep.mike,
#     C=org.dep.alpha). `--parallel 3 --json restore SET` -> bundleBegin in the
#     order A, B, C, each begin after the end of the bundle it depends on; all ok.
#     The same bundles without restoreDeps start A.. in parallel (the control).
#  2. cycle: X depends on Y, Y on X, plus an independent Z: X and Y end with
#     13900020 and a message saying "cycle", Z is restored, the command exits 1
#     within a few seconds (no hang). W, depending on X only (not in the cycle),
#     is then restored too: a dependency's outcome does not matter, only its end.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

MiB=$((1024 * 1024))

# mkb NAME FILES — a `bundle add` folder of FILES small files and one big file.
mkb() {
	local d=$WS/apps/$1 i
	mkdir -p "$d/sub"
	for i in $(seq 1 "$2"); do printf '%s file %s\n' "$1" "$i" >"$d/sub/f$i.txt"; done
	mkrand "$d/big.bin" $((2 * MiB + 1000))
	run ohb bundle add "$1" "$d"
	assert_rc 0 "bundle add $1"
}

# set_deps NAME DEPS — restoreDeps in the bundle's descriptor.
set_deps() {
	py 'import json,sys
p=sys.argv[1]; d=json.load(open(p)); d["backup"]["restoreDeps"]=sys.argv[2]; json.dump(d,open(p,"w"))' \
		"$ROOT/bundles/$1/bundle.json" "$2" || fail "cannot set restoreDeps of $1"
}

# event_order FILE — "begin NAME" / "end NAME CODE" lines in event order.
event_order() {
	py 'import json,sys
for l in open(sys.argv[1]):
    l=l.strip()
    if not l.startswith("{"): continue
    o=json.loads(l)
    if o.get("event")=="bundleBegin": print("begin",o["bundle"],o.get("code",0))
    elif o.get("event")=="bundleEnd": print("end",o["bundle"],o.get("code",0))' "$1"
}

# pos FILE LINE — the line number of LINE in FILE (0 when absent).
pos() { grep -nxF -- "$2" "$1" | head -1 | cut -d: -f1 | grep . || echo 0; }

A=org.dep.zulu
Bn=org.dep.mike
C=org.dep.alpha
mkb "$A" 400
mkb "$Bn" 200
mkb "$C" 200

# ---- control: without restoreDeps the three start together ----------------------
SET0=$(backup_set "$A" "$Bn" "$C") || exit 1
run ohb --parallel 3 --json restore "$SET0"
assert_rc 0 "restore without restoreDeps"
event_order "$OUT" >"$WS/order0"
[ "$(head -3 "$WS/order0" | grep -c '^begin ')" = 3 ] ||
	log "note: without restoreDeps the three did not all begin before the first end: $(tr '\n' ' ' <"$WS/order0")"

# ---- 1. a dependency chain -------------------------------------------------------
set_deps "$C" "$Bn"
set_deps "$Bn" " $A , "      # white space and an empty item are allowed in the list
SET1=$(backup_set "$A" "$Bn" "$C") || exit 1
py 'import json,sys
c=json.load(open(sys.argv[1]))
got={b["name"]:b.get("restoreDeps") for b in c["bundleInfos"]}
want={sys.argv[2]:"",sys.argv[3]:sys.argv[4],sys.argv[5]:sys.argv[3]}
bad={k:(got.get(k),v) for k,v in want.items() if (got.get(k) or "").replace(" ","").strip(",")!=v}
if bad: sys.exit("restoreDeps in the capability file (got, want): %r" % bad)' \
	"$STORE/$SET1/capability.json" "$A" "$Bn" "$A" "$C" 2>"$WS/.py.err" || fail "$(cat "$WS/.py.err")"

# the bundles' data differ from the set now, so each restore has work to do
for n in "$A" "$Bn" "$C"; do rm -rf "$WS/apps/$n/sub"; done
run ohb --parallel 3 --json restore "$SET1"
assert_rc 0 "restore of the chain"
event_order "$OUT" >"$WS/order1"
for n in "$A" "$Bn" "$C"; do
	grep -qxF "end $n 0" "$WS/order1" || fail "$n did not end with code 0: $(tr '\n' ' ' <"$WS/order1")"
	[ "$(find "$WS/apps/$n/sub" -type f | wc -l)" -gt 0 ] || fail "$n was not restored"
done
assert_eq "$(grep '^begin ' "$WS/order1" | cut -d' ' -f2 | tr '\n' ' ')" "$A $Bn $C " "order of bundleBegin"
bA=$(pos "$WS/order1" "end $A 0")
bB=$(pos "$WS/order1" "begin $Bn 0")
eB=$(pos "$WS/order1" "end $Bn 0")
bC=$(pos "$WS/order1" "begin $C 0")
[ "$bA" -lt "$bB" ] || fail "$Bn began before $A ended: $(tr '\n' ' ' <"$WS/order1")"
[ "$eB" -lt "$bC" ] || fail "$C began before $Bn ended: $(tr '\n' ' ' <"$WS/order1")"
log "chain: $(tr '\n' ' ' <"$WS/order1")"

# ---- 2. a cycle, an independent bundle, a dependent of the cycle ------------------
X=org.cyc.x
Y=org.cyc.y
Z=org.cyc.z
W=org.cyc.w
for n in "$X" "$Y" "$Z" "$W"; do mkb "$n" 20; done
set_deps "$X" "$Y"
set_deps "$Y" "$X"
set_deps "$W" "$X"
SET2=$(backup_set "$X" "$Y" "$Z" "$W") || exit 1
for n in "$X" "$Y" "$Z" "$W"; do rm -rf "$WS/apps/$n/sub"; done
t0=$(date +%s%N)
run timeout 30 "$OHBACKUP_BIN" --root "$ROOT" --store "$STORE" --parallel 3 --json restore "$SET2"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$RC" != 124 ] || fail "restore with a restoreDeps cycle hung (killed after 30 s)"
assert_rc 1 "restore with a restoreDeps cycle"
[ "$ms" -le 5000 ] || fail "restore with a restoreDeps cycle took $ms ms"
event_order "$OUT" >"$WS/order2"
for n in "$X" "$Y"; do
	grep -qxF "end $n 13900020" "$WS/order2" || fail "$n did not end with 13900020: $(tr '\n' ' ' <"$WS/order2")"
	grep -F "\"event\":\"bundleEnd\",\"bundle\":\"$n\"" "$OUT" | grep -qi 'cycle' ||
		fail "the bundleEnd of $n does not say \"cycle\""
	[ ! -d "$WS/apps/$n/sub" ] || fail "$n, refused for a cycle, was restored anyway"
done
grep -qxF "end $Z 0" "$WS/order2" || fail "the independent $Z did not succeed: $(tr '\n' ' ' <"$WS/order2")"
[ "$(find "$WS/apps/$Z/sub" -type f 2>/dev/null | wc -l)" = 20 ] || fail "$Z was not restored"
py 'import json,sys
for l in open(sys.argv[1]):
    l=l.strip()
    if l.startswith("{"):
        o=json.loads(l)
        if o.get("event")=="summary":
            st={b["name"]:(b["state"],b["code"]) for b in o["bundles"]}
            print(st)
            assert st[sys.argv[2]][1]==13900020 and st[sys.argv[3]][1]==13900020 and st[sys.argv[4]]==("ok",0), st
            sys.exit(0)
sys.exit("no summary")' "$OUT" "$X" "$Y" "$Z" >/dev/null 2>"$WS/.py.err" || fail "summary of the cycle restore: $(cat "$WS/.py.err")"
log "cycle: $(tr '\n' ' ' <"$WS/order2") (${ms} ms)"
# W waits on X only; once X has ended (refused), W may run, as any dependent of a failed bundle does.
if ! grep -qxF "end $W 0" "$WS/order2"; then
	defer_fail "$W (restoreDeps $X, itself not in a cycle) was not restored once $X ended: $(grep -F "\"bundle\":\"$W\"" "$OUT" | grep bundleEnd)"
fi
finish

#!/bin/sh
# incremental.sh — a benchmark, not a test: what an incremental backup of an
# unchanged bundle costs next to a full one.
#
#   OHBACKUP_BIN=/abs/path/build/ohbackup sh tests/bench/incremental.sh
#
# Generates 50 000 files of 200 B – 8 KiB in 1 000 folders (deterministic:
# python's random.Random(SEED), so every run and machine gets the same tree,
# ~210 MB), registers it with `bundle add`, then runs a full backup and an
# incremental with no change in between, once each as a warm-up and then
# BENCH_RUNS (5) times each, alternating. Every run uses --send-rate 800 (the
# spec's maximum, so the fd window is not what is measured). Prints the median
# wall time, user+sys CPU, peak RSS (GNU /usr/bin/time) and the
# incremental/full ratio, and each kind's set size on disk. Everything lives
# in one temp dir, removed on exit; older sets are deleted as it goes.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export LC_ALL=C

BIN=${OHBACKUP_BIN:-}
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
	echo "incremental.sh: OHBACKUP_BIN must name the built ohbackup binary" >&2
	exit 1
fi
command -v python3 >/dev/null 2>&1 || { echo "incremental.sh: python3 is required" >&2; exit 1; }
RUNS=${BENCH_RUNS:-5}
FILES=50000
DIRS=1000
SEED=20240601
RATE=800

W=$(mktemp -d "${TMPDIR:-/tmp}/ohb-bench-inc.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM HUP
export HOME=$W/home XDG_DATA_HOME=$W/xdg
mkdir -p "$HOME" "$XDG_DATA_HOME"
unset OHBACKUP_ROOT OHBACKUP_STORE
DATA=$W/data
ROOT=$W/root
STORE=$W/store

TIMEBIN=
if [ -x /usr/bin/time ] && /usr/bin/time -f '%e' -o /dev/null true 2>/dev/null; then
	TIMEBIN=/usr/bin/time
fi

t0=$(date +%s)
python3 - "$DATA" "$SEED" "$FILES" "$DIRS" <<'EOF' || { echo "incremental.sh: cannot generate the data" >&2; exit 1; }
import os, random, sys
root, seed, n_files, n_dirs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = random.Random(seed)
dirs = []
for d in range(n_dirs):
    p = os.path.join(root, "t%02d" % (d % 20), "d%04d" % d)
    os.makedirs(p, exist_ok=True)
    dirs.append(p)
for i in range(n_files):
    with open(os.path.join(dirs[i % n_dirs], "f%05d.dat" % i), "wb") as f:
        f.write(r.randbytes(r.randint(200, 8192)))
EOF
data_bytes=$(find "$DATA" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
"$BIN" --root "$ROOT" --store "$STORE" bundle add org.bench.files "$DATA" >/dev/null ||
	{ echo "incremental.sh: bundle add failed" >&2; exit 1; }
echo "data: $FILES files in $DIRS folders, $data_bytes bytes (generated in $(($(date +%s) - t0)) s, seed $SEED)"
echo "each run: ohbackup --send-rate $RATE --json {backup|incremental} org.bench.files; $RUNS runs each after a warm-up, alternating"
[ -n "$TIMEBIN" ] || echo "note: /usr/bin/time (GNU time) is missing: CPU from bash's times, no peak RSS"

# one KIND -> appends "wall cpu rss_kib set_bytes" to $W/KIND.txt; keeps only the newest set.
one() {
	local kind=$1 out=$W/out.json tf=$W/time.txt wall cpu rss set
	if [ -n "$TIMEBIN" ]; then
		"$TIMEBIN" -f '%e %U %S %M' -o "$tf" "$BIN" --root "$ROOT" --store "$STORE" --send-rate "$RATE" --json \
			"$kind" org.bench.files >"$out" 2>"$W/err.txt"
		local rc=$?
		read -r wall u s rss <"$tf"
		cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
	else
		local a b c0 c1
		c0=$(times | awk 'NR == 2 { print }')
		a=$(date +%s%N)
		"$BIN" --root "$ROOT" --store "$STORE" --send-rate "$RATE" --json "$kind" org.bench.files >"$out" 2>"$W/err.txt"
		local rc=$?
		b=$(date +%s%N)
		c1=$(times | awk 'NR == 2 { print }')
		wall=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
		cpu=$(awk -v x="$c0" -v y="$c1" 'function s(t, v, m, n) { n = split(t, v, " "); m = 0
			for (i = 1; i <= n; i++) { split(v[i], p, "m"); m += p[1] * 60 + p[2] } return m }
			BEGIN { printf "%.2f", s(y) - s(x) }')
		rss=-
	fi
	if [ "$rc" != 0 ]; then
		echo "incremental.sh: $kind failed (exit $rc): $(head -c 500 "$W/err.txt")" >&2
		exit 1
	fi
	set=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    if l.startswith("{"):
        o=json.loads(l)
        if o.get("event")=="summary": print(o["set"])' "$out")
	[ -n "$set" ] && [ -d "$STORE/$set" ] || { echo "incremental.sh: $kind made no set" >&2; exit 1; }
	local bytes files
	bytes=$(du -sb "$STORE/$set" | cut -f1)
	files=$(find "$STORE/$set" -type f | wc -l)
	echo "$wall $cpu $rss $bytes $files" >>"$W/$kind.txt"
	# keep only this set (the next incremental's base is the newest good set)
	for d in "$STORE"/*/; do
		d=${d%/}
		[ "$(basename "$d")" = "$set" ] || rm -rf "$d"
	done
}

one backup
one incremental
: >"$W/backup.txt"
: >"$W/incremental.txt"
for _ in $(seq 1 "$RUNS"); do
	one backup
	one incremental
done

# median FILE COLUMN
median() { cut -d' ' -f"$2" "$1" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '\n%-12s %10s %12s %12s %14s %8s\n' kind "wall (s)" "user+sys (s)" "peak RSS" "set on disk" files
for k in backup incremental; do
	w=$(median "$W/$k.txt" 1)
	c=$(median "$W/$k.txt" 2)
	if [ -n "$TIMEBIN" ]; then r="$(median "$W/$k.txt" 3) KiB"; else r=n/a; fi
	b=$(median "$W/$k.txt" 4)
	f=$(median "$W/$k.txt" 5)
	printf '%-12s %10s %12s %12s %14s %8s\n' "$k" "$w" "$c" "$r" "$(numfmt --to=iec-i --suffix=B "$b")" "$f"
done
awk -v fw="$(median "$W/backup.txt" 1)" -v iw="$(median "$W/incremental.txt" 1)" \
	-v fc="$(median "$W/backup.txt" 2)" -v ic="$(median "$W/incremental.txt" 2)" \
	-v fr="$(median "$W/backup.txt" 3)" -v ir="$(median "$W/incremental.txt" 3)" 'BEGIN {
	printf "%-12s %10s %12s %12s\n", "incr/full", (fw > 0 ? sprintf("%.3f", iw / fw) : "-"),
	    (fc > 0 ? sprintf("%.3f", ic / fc) : "-"), (fr + 0 > 0 ? sprintf("%.3f", ir / fr) : "-") }'
echo "(medians of $RUNS runs; wall/CPU/RSS from ${TIMEBIN:-bash times}; total $(($(date +%s) - t0)) s)"

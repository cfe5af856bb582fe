#!/bin/sh
# smoke.sh — a test (part of `make check`), not a benchmark: that `make bench`
# still works and reports what it measured truthfully.
#
#   OHBACKUP_BIN=/abs/path/build/ohbackup sh tests/bench/smoke.sh
#
# 1. table.py on recorded results made up here, so every verdict is known:
#    the ratio is ohbackup's median wall over the peer's, a ratio over its
#    bound and an RSS over 32 MiB read "missed" and are listed under "Targets
#    missed", failed runs are counted apart, a job without runs says "not
#    measured", and --markdown replaces only what lies between the markers.
# 2. peers.sh itself, every job, at a tiny scale (BENCH_SCALE, one repetition)
#    with the real binary and the peers this machine has: it must exit 0, give
#    every job an ohbackup row with its numbers, write the table into a copy of
#    docs/PERFORMANCE.md between the markers and leave the rest of it alone,
#    and remove its temp directory. The numbers themselves mean nothing at this
#    scale and are not checked.
# Prints "ok: ..." per check; exits 1 at the first failure.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BIN=${OHBACKUP_BIN:-}
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "smoke.sh: OHBACKUP_BIN must name the built ohbackup" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/ohb-bench-smoke.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
has() { grep -qF -- "$2" "$1" || fail "$3: no \"$2\" in $1:$(printf '\n'; sed 's/^/  | /' "$1")"; }
hasnt() { ! grep -qF -- "$2" "$1" || fail "$3: \"$2\" in $1"; }

# ---- 1. the table from known results ----------------------------------------------

R=$T/rec
mkdir -p "$R"
tab=$(printf '\t')
{
	echo "j1${tab}job one${tab}"
	echo "j2${tab}job two${tab}a note"
	echo "j3${tab}job three${tab}why it did not run"
} >"$R/jobs.tsv"
{
	# j1: ohbackup 1.0 s median (0.9, 1.0, 3.0), peer A 2.0 s (met at 0.6), peer B 1.0 s (missed at 0.8)
	for v in 0.9 1.0 3.0; do echo "j1${tab}ohbackup backup${tab}1${tab}$v${tab}0.1${tab}0.2${tab}10240${tab}0"; done
	for v in 2.0 2.0 2.0; do echo "j1${tab}peer A${tab}1${tab}$v${tab}0.5${tab}0.5${tab}2048${tab}0"; done
	for v in 1.0 1.0 9.0; do echo "j1${tab}peer B${tab}1${tab}$v${tab}0.5${tab}0.5${tab}2048${tab}0"; done
	# j2: ohbackup over the RSS bound; one of its runs failed; peer C failed every time
	echo "j2${tab}ohbackup restore${tab}1${tab}1.0${tab}0.1${tab}0.1${tab}40960${tab}0"
	echo "j2${tab}ohbackup restore${tab}2${tab}5.0${tab}0.1${tab}0.1${tab}40960${tab}1"
	echo "j2${tab}peer C${tab}1${tab}1.0${tab}0.1${tab}0.1${tab}1024${tab}2"
} >"$R/results.tsv"
{
	echo "j1${tab}peer A${tab}0.6"
	echo "j1${tab}peer B${tab}0.8"
} >"$R/targets.tsv"
echo "- Machine: made up" >"$R/machine.txt"
printf '# Doc\n\nbefore\n\n<!-- bench:peers:begin -->\nold table\n<!-- bench:peers:end -->\n\nafter\n' >"$T/doc.md"
python3 "$here/table.py" "$R" --markdown "$T/doc.md" >"$T/table.txt" || fail "table.py exited $?"
has "$T/table.txt" "| job one | **ohbackup backup** | 3 | 1.00 | 0.300 | 10.0 |  | RSS < 32 MiB | met |" "medians of ohbackup's runs"
has "$T/table.txt" "|  | peer A | 3 | 2.00 | 1.00 | 2.0 | 0.50× | ≤ 0.60× | met |" "a ratio under its bound"
has "$T/table.txt" "|  | peer B | 3 | 1.00 | 1.00 | 2.0 | 1.00× | ≤ 0.80× | **missed** |" "a ratio over its bound"
has "$T/table.txt" "| job two | **ohbackup restore** | 1 (+1 failed) | 1.00 |" "failed runs are left out of the medians"
has "$T/table.txt" "| 40.0 |  | RSS < 32 MiB | **missed** |" "peak RSS over 32 MiB"
has "$T/table.txt" "|  | peer C | 0 | | | | | | every run failed |" "a peer that always failed"
has "$T/table.txt" "| | *a note* |" "a job's note"
has "$T/table.txt" "| job three | — | 0 | | | | | | not measured: why it did not run |" "a job without runs"
has "$T/table.txt" "- job one: 1.00× peer B (target ≤ 0.80×)" "the list of misses"
has "$T/table.txt" "- job two: peak RSS 40.0 MiB" "the list of misses"
has "$T/table.txt" "- job two: peer C failed" "the list of misses"
hasnt "$T/table.txt" "peer A (target" "a met target in the list of misses"
hasnt "$T/table.txt" "Every target was met" "a run with misses"
has "$T/doc.md" "before" "text above the markers"
has "$T/doc.md" "after" "text below the markers"
has "$T/doc.md" "- Machine: made up" "the machine, in the doc"
has "$T/doc.md" "| job one | **ohbackup backup** |" "the table, in the doc"
hasnt "$T/doc.md" "old table" "the previous table"
[ "$(grep -c 'bench:peers:begin' "$T/doc.md")" = 1 ] || fail "the begin marker is not there once"
ok "table.py: medians, ratios, verdicts, misses listed, the doc's table replaced"

# every target met: said so, and a doc without markers gets them appended
sed -i '/peer B/d' "$R/targets.tsv"
sed -i 's/40960/20480/' "$R/results.tsv"
awk -F'\t' '$2 != "peer C"' "$R/results.tsv" >"$R/r" && mv "$R/r" "$R/results.tsv"
printf '# Doc without markers\n' >"$T/doc2.md"
python3 "$here/table.py" "$R" --markdown "$T/doc2.md" >"$T/table2.txt" || fail "table.py exited $?"
has "$T/table2.txt" "Every target was met in this run." "a run without misses"
has "$T/doc2.md" "# Doc without markers" "a doc without markers keeps its text"
has "$T/doc2.md" "<!-- bench:peers:end -->" "a doc without markers gets them"
ok "table.py: a run without misses, a doc without markers"

# ---- 2. peers.sh at a tiny scale ----------------------------------------------------

mkdir -p "$T/tmp"
cp "$repo/docs/PERFORMANCE.md" "$T/perf.md"
sed -n '/bench:peers:end/,$p' "$T/perf.md" >"$T/perf.after"
sed -n '1,/bench:peers:begin/p' "$T/perf.md" >"$T/perf.before"
TMPDIR=$T/tmp OHBACKUP_BIN=$BIN BENCH_SCALE=0.002 BENCH_REPS=1 BENCH_SLOW_REPS=1 BENCH_DOC=$T/perf.md \
	bash "$here/peers.sh" >"$T/peers.out" 2>"$T/peers.err" || fail "peers.sh exited $?:$(printf '\n'; tail -20 "$T/peers.err")"
for title in "backup (a)" "backup (b)" "backup (c)" "backup (d)" "backup (e)" "restore (a)" "restore (b)" \
	"incremental (a), nothing changed" "incremental (a), 1 % of files changed" "size scan (a), precise" \
	"size scan (a), imprecise" "backup (a): CLI vs console"; do
	row=$(grep -F "| $title" "$T/peers.out" | head -1)
	[ -n "$row" ] || fail "peers.sh: no row for $title"
	# the job's first row is ohbackup's, with a wall time and a verdict on its RSS
	echo "$row" | grep -Eq '\| \*\*ohbackup[^|]*\*\* \| 1 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|  \| RSS < 32 MiB \| (met|\*\*missed\*\*) \|' ||
		fail "peers.sh: $title has no measured ohbackup row: $row"
done
has "$T/peers.out" "|  | GNU tar -xf | 1 |" "peers.sh: the restore's GNU tar peer"
has "$T/peers.out" "|  | du -s | 1 |" "peers.sh: the scan's peer"
has "$T/peers.out" "- Machine: $(nproc) cores" "peers.sh: the machine"
grep -Eq '^(Targets missed in this run:|Every target was met in this run\.)$' "$T/peers.out" || fail "peers.sh: no verdict line"
has "$T/perf.md" "scale 0.002" "the doc gets this run's table"
sed -n '/bench:peers:end/,$p' "$T/perf.md" | cmp -s - "$T/perf.after" || fail "peers.sh changed the doc below its table"
sed -n '1,/bench:peers:begin/p' "$T/perf.md" | cmp -s - "$T/perf.before" || fail "peers.sh changed the doc above its table"
[ -z "$(ls -A "$T/tmp")" ] || fail "peers.sh left $(ls "$T/tmp") in its TMPDIR"
ok "peers.sh: every job measured at scale 0.002, the doc's table replaced, nothing left behind"

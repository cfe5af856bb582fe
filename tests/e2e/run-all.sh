#!/bin/sh
# run-all.sh — runs every tests/e2e/test_*.sh against the real binary.
#
#   OHBACKUP_BIN=/abs/path/build/ohbackup sh tests/e2e/run-all.sh [NAME_FILTER]
#
# Each test runs in its own process (bash) under `timeout` (E2E_TIMEOUT,
# default 300 s), in its own temporary workspace. Prints PASS/FAIL/SKIP per
# test, the log of every failure, and ends with the line "N passed, N failed".
# Exit status is non-zero when any test failed. A test exits 77 to be skipped
# (e.g. no permission to mount a tmpfs); skips count as neither.

dir=$(cd "$(dirname "$0")" && pwd)
filter=${1:-}
limit=${E2E_TIMEOUT:-300}

if [ -z "${OHBACKUP_BIN:-}" ] || [ ! -x "$OHBACKUP_BIN" ]; then
	echo "run-all: OHBACKUP_BIN must name the built ohbackup binary (got '${OHBACKUP_BIN:-}')" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
export OHBACKUP_BIN

logdir=$(mktemp -d "${TMPDIR:-/tmp}/ohb-e2e-logs.XXXXXX")
trap 'rm -rf "$logdir"' EXIT
passed=0
failed=0
skipped=0
start=$(date +%s)

for t in "$dir"/test_*.sh; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .sh)
	case "$name" in *"$filter"*) ;; *) continue ;; esac
	log=$logdir/$name.log
	t0=$(date +%s)
	timeout -k 10 "$limit" bash "$t" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - t0))
	if [ "$rc" = 0 ]; then
		echo "PASS $name (${secs}s)"
		passed=$((passed + 1))
	elif [ "$rc" = 77 ]; then
		echo "SKIP $name: $(grep -m1 '^SKIP' "$log" | sed 's/^SKIP \[[^]]*\]: //')"
		skipped=$((skipped + 1))
	else
		[ "$rc" = 124 ] && echo "     ($name timed out after ${limit}s)"
		echo "FAIL $name (exit $rc, ${secs}s)"
		sed 's/^/    | /' "$log"
		failed=$((failed + 1))
	fi
done

[ "$skipped" -gt 0 ] && echo "$skipped skipped"
echo "e2e total time: $(($(date +%s) - start))s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$((passed + skipped))" -gt 0 ]

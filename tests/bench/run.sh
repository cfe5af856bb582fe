#!/bin/sh
# run.sh — runs every benchmark tests/bench/*.sh (but itself and smoke.sh, the
# test of the benchmarks that `make check` runs), one after the other.
#
#   OHBACKUP_BIN=/abs/path/build/ohbackup sh tests/bench/run.sh     (or: make bench)
#
# Benchmarks print tables, not verdicts; the exit status is non-zero only when
# one of them could not run.
dir=$(cd "$(dirname "$0")" && pwd)
if [ -z "${OHBACKUP_BIN:-}" ] || [ ! -x "$OHBACKUP_BIN" ]; then
	echo "bench: OHBACKUP_BIN must name the built ohbackup binary (got '${OHBACKUP_BIN:-}')" >&2
	exit 1
fi
export OHBACKUP_BIN
status=0
for b in "$dir"/*.sh; do
	[ -f "$b" ] || continue
	case "$(basename "$b")" in run.sh | smoke.sh) continue ;; esac
	echo "=== $(basename "$b" .sh)"
	bash "$b" || { echo "bench: $(basename "$b") failed" >&2; status=1; }
	echo
done
exit $status

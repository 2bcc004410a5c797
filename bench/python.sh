#!/usr/bin/env bash
# Side-by-side benchmark of the Python package (python/) against the standard
# library's asyncore: echo servers in Python, driven by bench's loadgen. Writes
# (or replaces) the "Python package" section of ../BENCHMARKS.md.
#
#   cd bench && ./python.sh                          # REPS=3 DURATION=3 WARMUP=1
#   cd bench && REPS=1 DURATION=2 OUT=/dev/null ./python.sh   # quick look
#
# Environment: REPS, DURATION, WARMUP, OUT (default ../BENCHMARKS.md),
# PYTHON (default python3; must be <= 3.11 for the stdlib's asyncore),
# VENV (reuse a venv that has the package, e.g. ../python/.venv; default: a fresh one),
# COUNT=0 to skip the callgrind instruction counts (py/pycount.py; run when valgrind is
# installed, before the timed runs), COUNTS_JSON=file to keep them (or to reuse them if
# the file exists).
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
REPS=${REPS:-3}
DURATION=${DURATION:-3}
WARMUP=${WARMUP:-1}
OUT=${OUT:-$ROOT/BENCHMARKS.md}
PYTHON=${PYTHON:-python3}
log() { printf '[python.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
command -v taskset >/dev/null || { log "taskset (util-linux) is required"; exit 1; }

log "building loadgen (release)"
(cd "$BENCH" && env -u CARGO_TARGET_DIR cargo build --release --quiet --bin loadgen)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [[ -z ${VENV:-} ]]; then
    VENV=$WORK/venv
    log "fresh venv with $($PYTHON --version 2>&1); pip install the package (release build)"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$ROOT/python"
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
CMD="cd bench && REPS=$REPS DURATION=$DURATION WARMUP=$WARMUP ./python.sh"
COUNTS=()
if [[ -n ${COUNTS_JSON:-} && -s $COUNTS_JSON ]]; then
    log "instruction counts from $COUNTS_JSON"
    COUNTS=(--counts "$COUNTS_JSON")
elif [[ ${COUNT:-1} != 0 ]] && command -v valgrind >/dev/null; then
    log "counting user-space instructions per message (callgrind, py/pycount.py)"
    COUNTS_JSON=${COUNTS_JSON:-$WORK/counts.json}
    "$VENV/bin/python" "$BENCH/py/pycount.py" --python "$VENV/bin/python" --json "$COUNTS_JSON" >&2
    COUNTS=(--counts "$COUNTS_JSON")
fi
"$VENV/bin/python" "$BENCH/py/pybench.py" --python "$VENV/bin/python" \
    --loadgen "$BENCH/target/release/loadgen" --reps "$REPS" --duration "$DURATION" \
    --warmup "$WARMUP" --out "$OUT" --command "$CMD" "${COUNTS[@]}"

#!/usr/bin/env bash
# Builds the Python package from scratch and runs all its tests: CPython's own
# test_asyncore/test_asynchat (only the import changed), the package's own tests,
# and CPython's smtpd with concurrent smtplib clients. Ends with the line
# "N passed, N failed, N skipped"; exits non-zero on any failure.
#
#   python/test.sh                       # fresh venv in a temporary directory
#   VENV=python/.venv python/test.sh     # keep (and reuse) a venv
#   PYTHON=python3.11 python/test.sh     # pick the interpreter (3.8+; smtpd needs <= 3.11)
#
# Needs python3 with venv + pip, cargo, and PyPI (maturin is pulled by pip as the
# build backend). Build outputs stay in python/target (git-ignored).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
VENV=${VENV:-$WORK/venv}
log() { printf '[python/test.sh] %s\n' "$*" >&2; }

if [[ ! -x $VENV/bin/python ]]; then
    log "creating venv $VENV with $($PYTHON --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi
log "pip install maturin, then the package (release build)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.5,<2"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$HERE"

ARGS=()
if ! "$VENV/bin/python" -c "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('test.test_asyncore') and importlib.util.find_spec('test.test_asynchat') else 1)" 2>/dev/null; then
    log "this Python has no test_asyncore/test_asynchat: taking them from the pyasyncore/pyasynchat sdists"
    mkdir -p "$WORK/cpython"
    (cd "$WORK/cpython" &&
        "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: pyasyncore pyasynchat &&
        for f in *.tar.gz; do tar xzf "$f"; done)
    ARGS=(--cpython-tests "$WORK/cpython")
fi
log "running the tests"
cd "$WORK"
timeout 900 "$VENV/bin/python" "$HERE/tests/run_all.py" "${ARGS[@]}"

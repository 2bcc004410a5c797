#!/usr/bin/env bash
# Every test the project has, in one command (the README's test command; CI runs it too):
#  1. the Rust suite, every loop test on select, poll and epoll, including the tests that
#     need python3 (the differential test against CPython's asynchat, smtplib clients),
#     which plain `cargo test` leaves out as #[ignore];
#  2. the Python package's tests (python/test.sh: builds the wheel in a fresh virtual
#     environment, then runs its own tests and CPython's test_asyncore / test_asynchat).
# SOCKLOOP_STRICT_TESTS=1 makes a test that cannot run here (no IPv6, ...) fail instead of
# printing SKIPPED; CI sets it.
set -euo pipefail
cd "$(dirname "$0")"

echo "== Rust: cargo test -- --include-ignored"
cargo test -- --include-ignored

if [ -f python/test.sh ]; then
  echo "== Python package: python/test.sh"
  bash python/test.sh
fi

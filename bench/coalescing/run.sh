#!/bin/bash
# Output coalescing, counted in system calls (no timing, so machine noise does not
# matter): examples/line_echo (the chat layer answers every line with its own push)
# serves 10 writes of 10,000 pipelined lines each; strace -c counts the server's
# system calls. Built twice, side by side: BEFORE (default: the commit just before
# coalescing landed) and this tree.
#
# usage: bench/coalescing/run.sh [BEFORE_COMMIT]     (needs strace, python3, git)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BEFORE=${1:-eb9d1f2}
N=${N:-10000}
REPS=${REPS:-10}
WORK=$(mktemp -d)
trap 'git -C "$ROOT" worktree remove --force "$WORK/before" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

git -C "$ROOT" worktree add -q --detach "$WORK/before" "$BEFORE"
(cd "$WORK/before" && CARGO_TARGET_DIR="$WORK/target-before" cargo build -q --release --example line_echo)
(cd "$ROOT" && cargo build -q --release --example line_echo)

count() { # NAME BINARY
  local out="$WORK/$1.strace" log="$WORK/$1.log"
  strace -f -c -o "$out" -e trace=sendto,write,recvfrom,read,epoll_ctl,epoll_wait,epoll_pwait \
    "$2" --addr 127.0.0.1:0 >"$log" 2>/dev/null &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
  local port; port=$(grep -o "listening on .*" "$log" | awk '{print $3}'); port=${port##*:}
  python3 "$HERE/pipelined.py" "$port" "$N" "$REPS"
  pkill -INT -P "$pid"; wait "$pid" || true   # the traced server, not strace
  awk -v name="$1" '$NF ~ /^(sendto|write|read|recvfrom|epoll_ctl|epoll_wait|epoll_pwait|total)$/ {
      print name, $NF, $4 }' "$out"
}

echo "line_echo, $REPS writes of $N pipelined lines ($((N * REPS)) replies); server system calls:"
{ count before "$WORK/target-before/release/examples/line_echo"
  count after "$ROOT/target/release/examples/line_echo"; } | python3 "$HERE/table.py"

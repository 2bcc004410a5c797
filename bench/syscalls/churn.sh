#!/bin/bash
# System calls per connection for connect / 64 B echo / close, side by side: each server
# runs under `strace -f -c` while one client makes N sequential cycles; prints each
# server's calls per connection, by call. Counts, not times: load does not move them
# (only how often the client's close and its next connect land in one wait).
#
# usage: bench/syscalls/churn.sh [N]        (default 2000)
# Needs strace and the release binaries:
#   (cd bench && cargo build --release --features sockloop --bin sockloop_echo --bin mio_echo)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$HERE/../target/release
N=${1:-2000}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

run() { # name, server command...
  local name=$1; shift
  strace -f -c -o "$OUT/$name.strace" "$@" --addr 127.0.0.1:0 > "$OUT/$name.log" 2>&1 &
  local spid=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$OUT/$name.log" && break; sleep 0.1; done
  local port
  port=$(grep -o "listening on [^ ]*" "$OUT/$name.log" | awk '{print $3}' | sed 's/.*://')
  python3 - "$port" "$N" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"x" * 64)
    got = b""
    while len(got) < 64:
        chunk = s.recv(64)
        assert chunk, "server closed early"
        got += chunk
    s.close()
PY
  sleep 0.3
  pkill -TERM -P "$spid" || true  # the traced server, not strace
  wait "$spid" || true
}

run sockloop "$BIN/sockloop_echo" --backend epoll
run mio "$BIN/mio_echo"

python3 - "$OUT" "$N" <<'PY'
import sys, re, os
out, n = sys.argv[1], int(sys.argv[2])
tables = {}
for name in ("sockloop", "mio"):
    calls = {}
    for line in open(os.path.join(out, name + ".strace")):
        f = line.split()
        if len(f) >= 5 and f[-1] not in ("syscall", "total") and re.match(r"^[\d.]+$", f[0]):
            calls[f[-1]] = int(f[3])
    tables[name] = calls
names = sorted(set(tables["sockloop"]) | set(tables["mio"]), key=lambda c: -max(t.get(c, 0) for t in tables.values()))
print(f"{'call':<16}{'sockloop':>10}{'mio':>10}   (per connection, {n} connections)")
for c in names:
    a, b = tables["sockloop"].get(c, 0) / n, tables["mio"].get(c, 0) / n
    if a >= 0.01 or b >= 0.01:
        print(f"{c:<16}{a:>10.2f}{b:>10.2f}")
ta, tb = (sum(t.values()) / n for t in (tables["sockloop"], tables["mio"]))
print(f"{'total':<16}{ta:>10.2f}{tb:>10.2f}")
PY

#!/bin/bash
# System calls side by side, sockloop's echo server and mio's, each under `strace -f -c`:
#  * churn: one client makes N sequential connect / 64 B echo / close cycles; calls per
#    connection;
#  * ping-pong: loadgen, 100 connections, 64 B depth 1, 3 s; calls per echoed message.
# Counts, not times: load does not move them (only how often events land in one wait).
#
# usage: bench/syscalls/run.sh [N]        (default 2000)
# Needs strace and the release binaries:
#   (cd bench && cargo build --release --features sockloop --bin sockloop_echo --bin mio_echo --bin loadgen)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$HERE/../target/release
N=${1:-2000}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

start() { # name, server command...: starts it under strace, sets PORT and SPID
  local name=$1; shift
  strace -f -c -o "$OUT/$name.strace" "$@" --addr 127.0.0.1:0 > "$OUT/$name.log" 2>&1 &
  SPID=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$OUT/$name.log" && break; sleep 0.1; done
  PORT=$(grep -o "listening on [^ ]*" "$OUT/$name.log" | awk '{print $3}' | sed 's/.*://')
}

stop() {
  sleep 0.3
  pkill -TERM -P "$SPID" || true  # the traced server, not strace
  wait "$SPID" || true
}

churn() { # name, server command...
  local name=$1; shift
  start "churn-$name" "$@"
  python3 - "$PORT" "$N" <<'PY'
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
  stop
  echo "$N" > "$OUT/churn-$name.count"
}

pingpong() { # name, server command...
  local name=$1; shift
  start "pp-$name" "$@"
  "$BIN/loadgen" --addr "127.0.0.1:$PORT" --mode pingpong --conns 100 --size 64 --depth 1 \
    --warmup 0 --duration 3 > "$OUT/pp-$name.json"
  stop
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["msgs"])' "$OUT/pp-$name.json" \
    > "$OUT/pp-$name.count"
}

churn sockloop "$BIN/sockloop_echo" --backend epoll
churn mio "$BIN/mio_echo"
pingpong sockloop "$BIN/sockloop_echo" --backend epoll
pingpong mio "$BIN/mio_echo"

python3 - "$OUT" <<'PY'
import sys, re, os
out = sys.argv[1]
def table(scenario, unit):
    tables, counts = {}, {}
    for name in ("sockloop", "mio"):
        calls = {}
        for line in open(os.path.join(out, f"{scenario}-{name}.strace")):
            f = line.split()
            if len(f) >= 5 and f[-1] not in ("syscall", "total") and re.match(r"^[\d.]+$", f[0]):
                calls[f[-1]] = int(f[3])
        tables[name] = calls
        counts[name] = int(open(os.path.join(out, f"{scenario}-{name}.count")).read())
    n_s, n_m = counts["sockloop"], counts["mio"]
    print(f"\n{scenario}: calls per {unit} (sockloop: {n_s:,} {unit}s, mio: {n_m:,})")
    print(f"{'call':<16}{'sockloop':>10}{'mio':>10}")
    names = sorted(set(tables["sockloop"]) | set(tables["mio"]),
                   key=lambda c: -max(tables["sockloop"].get(c, 0) / n_s, tables["mio"].get(c, 0) / n_m))
    for c in names:
        a, b = tables["sockloop"].get(c, 0) / n_s, tables["mio"].get(c, 0) / n_m
        if a >= 0.005 or b >= 0.005:
            print(f"{c:<16}{a:>10.3f}{b:>10.3f}")
    print(f"{'total':<16}{sum(tables['sockloop'].values()) / n_s:>10.3f}{sum(tables['mio'].values()) / n_m:>10.3f}")
table("churn", "connection")
table("pp", "message")
PY

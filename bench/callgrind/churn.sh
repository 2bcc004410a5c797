#!/bin/bash
# Callgrind instruction counts per connection: starts SERVER under callgrind while
# loadgen runs its churn mode (10 clients, each connect / 64 B echo / close, for MEAS
# seconds), then prints the count per connection. Connections are counted by the echo
# server's `send` (mio) or by `handle_read` calls, two per connection (the data, then
# the end of file) for sockloop_echo.
#
# usage: bench/callgrind/churn.sh NAME SERVER_BIN [server args...]
#   env: MEAS (seconds, default 5), OUT_DIR (default bench/results/callgrind)
# Needs valgrind and bench/target/release/loadgen (cd bench && cargo build --release).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
NAME=$1; shift
MEAS=${MEAS:-5}
OUT_DIR=${OUT_DIR:-$HERE/../results/callgrind}
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/$NAME
rm -f "$OUT".out* "$OUT".log "$OUT".json
valgrind --tool=callgrind --callgrind-out-file="$OUT".out "$@" --addr 127.0.0.1:0 \
  > "$OUT".log 2>&1 &
VPID=$!
for _ in $(seq 1 600); do grep -q "listening on" "$OUT".log && break; sleep 0.2; done
ADDR=$(grep -o "listening on [^ ]*" "$OUT".log | awk '{print $3}')
"$HERE/../target/release/loadgen" --addr "$ADDR" --mode churn --conns 10 --size 64 \
  --warmup 1 --duration "$MEAS" > "$OUT".json 2>/dev/null
kill -INT $VPID; sleep 1; kill $VPID 2>/dev/null; wait $VPID 2>/dev/null
python3 - "$OUT".out "$HERE/cgparse.py" <<'PY'
import re, subprocess, sys
out = subprocess.run([sys.executable, sys.argv[2], sys.argv[1], "--norm", "1", "--top", "0"],
                     capture_output=True, text=True).stdout
total = int(re.search(r"total Ir ([\d,]+)", out).group(1).replace(",", ""))
def calls(pat):
    m = re.search(r"calls (?:%s): ([\d,]+)" % pat, out)
    return int(m.group(1).replace(",", "")) if m else 0
conns = calls(r"[^\n]*handle_read") // 2 or calls(r"send")
print(f"{total:,} Ir over {conns:,} connections: {total / max(conns, 1):,.0f} Ir per connection")
PY

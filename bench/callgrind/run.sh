#!/bin/bash
# Callgrind instruction counts per echoed message: starts SERVER under
# callgrind, drives it with loadgen (64 B ping-pong, depth 1, CONNS connections), zeroes
# the counters once every connection is up plus 3 s, dumps after MEAS seconds, so the
# profile covers only steady-state ping-pong. Then: python3 cgparse.py OUT_DIR/NAME.out.1
#
# usage: bench/callgrind/run.sh NAME CONNS SERVER_BIN [server args...]
#   env: MEAS (seconds measured, default 8), OUT_DIR (default bench/results/callgrind)
# Needs valgrind (callgrind_control), ss, and bench/target/release/loadgen
# (cd bench && cargo build --release).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
NAME=$1; CONNS=$2; shift 2
MEAS=${MEAS:-8}
LG=$HERE/../target/release/loadgen
OUT_DIR=${OUT_DIR:-$HERE/../results/callgrind}
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/$NAME
rm -f "$OUT".out* "$OUT".log "$OUT".json
valgrind --tool=callgrind --dump-instr=${DUMP_INSTR:-no} --collect-atstart=yes \
  --callgrind-out-file="$OUT".out "$@" --addr 127.0.0.1:0 > "$OUT".log 2>&1 &
VPID=$!
for _ in $(seq 1 600); do grep -q "listening on" "$OUT".log && break; sleep 0.2; done
ADDR=$(grep -o "listening on .*" "$OUT".log | awk '{print $3}')
PORT=${ADDR##*:}
echo "server pid $VPID addr $ADDR"
"$LG" --addr "$ADDR" --mode pingpong --conns "$CONNS" --size 64 --depth 1 \
   --warmup 5 --duration $((MEAS+5)) --server-pid $VPID > "$OUT".json 2>"$OUT".lgerr &
LPID=$!
n=0
for _ in $(seq 1 1200); do
  n=$(ss -Htn state established "( sport = :$PORT )" | wc -l)
  [ "$n" -ge "$CONNS" ] && break; sleep 0.5
done
echo "established $n connections"
sleep 3
callgrind_control -z $VPID >/dev/null
sleep "$MEAS"
callgrind_control -d $VPID >/dev/null
wait $LPID
kill -INT $VPID; sleep 1; kill $VPID 2>/dev/null; wait $VPID 2>/dev/null
echo "profile: $OUT.out.1 (python3 $HERE/cgparse.py $OUT.out.1)"

#!/usr/bin/env bash
# Side-by-side echo-server benchmark for sockloop.
#
#   cd bench && ./run.sh                    # REPS=3 DURATION=5, writes ../BENCHMARKS.md
#   cd bench && REPS=1 DURATION=2 ./run.sh  # quick check
#
# Every (scenario, server) pair gets a freshly started server pinned to
# SERVER_CPU, a load generator pinned to CLIENT_CPU, WARMUP s of unmeasured
# load and DURATION s of measured load. Repetitions are interleaved (rep 1 of
# everything, then rep 2, ...) with the server order rotated each rep, and the
# report shows medians.
#
# Environment (all optional):
#   REPS=3 DURATION=5 WARMUP=1     repetitions, measured and warm-up seconds
#   SERVERS="mio tokio ..."        subset of servers (default: all eight)
#   SCENARIOS="pp1 pp100 ..."      subset of scenarios (default: all seven)
#   SERVER_CPU=1 CLIENT_CPU=0      taskset pinning
#   SOCKLOOP=auto|skip             auto: build the sockloop example, skip its
#                                  servers (with a note) if that fails
#   SOCKLOOP_DIR=<bench/..>        the sockloop crate
#   BUILD_SIZE=1                   also run build_size.sh (0 to skip)
#   OUT=<SOCKLOOP_DIR>/BENCHMARKS.md
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "${SOCKLOOP_DIR:-$BENCH/..}" && pwd)
REPS=${REPS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
SOCKLOOP=${SOCKLOOP:-auto}
BUILD_SIZE=${BUILD_SIZE:-1}
OUT=${OUT:-$ROOT/BENCHMARKS.md}
ALL_SERVERS="mio tokio sockloop-select sockloop-poll sockloop-epoll asyncore-select asyncore-poll asyncio"
ALL_SCENARIOS="pp1 pp100 pp1000 bulk pp10 pp10_idle10k churn"
SERVERS=${SERVERS:-$ALL_SERVERS}
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}

RESULTS=$BENCH/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS/raw"
log() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The reproduce line shown in the report: every knob that differs from the default.
CMD="cd bench &&"
for v in REPS DURATION WARMUP; do CMD+=" $v=${!v}"; done
[[ $SERVERS != "$ALL_SERVERS" ]] && CMD+=" SERVERS=\"$SERVERS\""
[[ $SCENARIOS != "$ALL_SCENARIOS" ]] && CMD+=" SCENARIOS=\"$SCENARIOS\""
[[ $SOCKLOOP != auto ]] && CMD+=" SOCKLOOP=$SOCKLOOP"
[[ $BUILD_SIZE != 1 ]] && CMD+=" BUILD_SIZE=$BUILD_SIZE"
CMD+=" ./run.sh"

# ---------------------------------------------------------------- build
command -v taskset >/dev/null || { log "taskset (util-linux) is required"; exit 1; }
(( $(nproc) > SERVER_CPU && $(nproc) > CLIENT_CPU )) || { log "need CPUs $SERVER_CPU and $CLIENT_CPU"; exit 1; }

log "building bench (release)"
(cd "$BENCH" && env -u CARGO_TARGET_DIR cargo build --release --quiet)
BIN=$BENCH/target/release
LOADGEN=$BIN/loadgen

SOCKLOOP_BIN=$ROOT/target/release/examples/echo_server
SOCKLOOP_NOTE=""
have_sockloop=0
if [[ $SERVERS == *sockloop* ]]; then
    if [[ $SOCKLOOP == skip ]]; then
        SOCKLOOP_NOTE="sockloop servers skipped on request (SOCKLOOP=skip)."
    else
        log "building sockloop echo_server example in $ROOT"
        if (cd "$ROOT" && env -u CARGO_TARGET_DIR cargo build --release --example echo_server) \
            >"$RESULTS/sockloop-build.log" 2>&1 && [[ -x $SOCKLOOP_BIN ]]; then
            have_sockloop=1
        else
            SOCKLOOP_NOTE="sockloop servers skipped: \`cargo build --release --example echo_server\` failed in the sockloop crate (the example does not build yet)."
            log "$SOCKLOOP_NOTE (log: $RESULTS/sockloop-build.log)"
        fi
    fi
fi

# The shell's limits are inherited by every server; 10,000 idle connections
# need more than the usual 1024 descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------- tables
scenario_args() {
    case $1 in
        pp1)          echo "--mode pingpong --conns 1 --size 64 --depth 1" ;;
        pp100)        echo "--mode pingpong --conns 100 --size 64 --depth 1" ;;
        pp1000)       echo "--mode pingpong --conns 1000 --size 64 --depth 1" ;;
        bulk)         echo "--mode bulk --conns 1 --size 65536 --depth 16" ;;
        pp10)         echo "--mode pingpong --conns 10 --size 64 --depth 1" ;;
        pp10_idle10k) echo "--mode pingpong --conns 10 --size 64 --depth 1 --idle 10000" ;;
        churn)        echo "--mode churn --conns 10 --size 64" ;;
        *) log "unknown scenario $1"; exit 1 ;;
    esac
}

# Client connections a scenario holds open at once (select can't go past ~1000).
scenario_fds() {
    case $1 in
        pp1 | bulk) echo 1 ;;
        pp10 | churn) echo 10 ;;
        pp100) echo 100 ;;
        pp1000) echo 1000 ;;
        pp10_idle10k) echo 10010 ;;
    esac
}

# Sets CMDV to the server command line, or returns 1 if it is unavailable.
server_cmd() {
    local addr=127.0.0.1:0
    case $1 in
        mio) CMDV=("$BIN/mio_echo" --addr "$addr") ;;
        tokio) CMDV=("$BIN/tokio_echo" --addr "$addr") ;;
        sockloop-select | sockloop-poll | sockloop-epoll)
            ((have_sockloop)) || return 1
            CMDV=("$SOCKLOOP_BIN" --addr "$addr" --backend "${1#sockloop-}") ;;
        asyncore-select | asyncore-poll)
            CMDV=(python3 -W ignore "$BENCH/py/asyncore_echo.py" --addr "$addr" --backend "${1#asyncore-}") ;;
        asyncio) CMDV=(python3 "$BENCH/py/asyncio_echo.py" --addr "$addr") ;;
        *) log "unknown server $1"; exit 1 ;;
    esac
}

# ---------------------------------------------------------------- servers
SPID=""
SADDR=""

start_server() { # name logprefix
    server_cmd "$1" || return 1
    taskset -c "$SERVER_CPU" "${CMDV[@]}" >"$2.out" 2>"$2.err" &
    SPID=$!
    local i line
    for ((i = 0; i < 400; i++)); do # up to 20 s
        line=$(head -n1 "$2.out" 2>/dev/null || true)
        if [[ $line == "listening on "* ]]; then
            SADDR=${line#listening on }
            return 0
        fi
        if ! kill -0 "$SPID" 2>/dev/null; then
            log "server $1 exited before listening (see $2.err)"
            wait "$SPID" 2>/dev/null || true
            SPID=""
            return 2
        fi
        sleep 0.05
    done
    log "server $1 printed no 'listening on' line within 20 s"
    stop_server
    return 2
}

stop_server() {
    [[ -n $SPID ]] || return 0
    kill -TERM "$SPID" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

# ---------------------------------------------------------------- runs
{
    echo "command=$CMD"
    echo "reps=$REPS"
    echo "duration=$DURATION"
    echo "warmup=$WARMUP"
    echo "server_cpu=$SERVER_CPU"
    echo "client_cpu=$CLIENT_CPU"
    echo "servers=$SERVERS"
    echo "scenarios=$SCENARIOS"
    echo "sockloop_note=$SOCKLOOP_NOTE"
    echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/meta.txt"

read -r -a server_list <<<"$SERVERS"
nserv=${#server_list[@]}
for ((rep = 1; rep <= REPS; rep++)); do
    for sc in $SCENARIOS; do
        read -r -a largs <<<"$(scenario_args "$sc")"
        for ((k = 0; k < nserv; k++)); do
            srv=${server_list[$(((k + rep - 1) % nserv))]}
            base=$RESULTS/raw/${sc}__${srv}__rep${rep}
            if [[ $srv == *select && $(scenario_fds "$sc") -gt 1000 ]]; then
                echo "skipped: select cannot watch more than ~1000 descriptors (FD_SETSIZE 1024)" >"$base.status"
                continue
            fi
            if [[ $srv == sockloop-* ]] && ((!have_sockloop)); then
                echo "skipped: sockloop echo_server not available" >"$base.status"
                continue
            fi
            log "rep $rep/$REPS  $sc  $srv"
            if ! start_server "$srv" "$base.server"; then
                echo "failed: server did not start" >"$base.status"
                continue
            fi
            rc=0
            timeout --signal=KILL $((${DURATION%.*} + ${WARMUP%.*} + 700)) \
                taskset -c "$CLIENT_CPU" "$LOADGEN" --addr "$SADDR" "${largs[@]}" \
                --duration "$DURATION" --warmup "$WARMUP" --server-pid "$SPID" \
                --server-cpu "$SERVER_CPU" --client-cpu "$CLIENT_CPU" \
                >"$base.json" 2>"$base.loadgen.err" || rc=$?
            status=ok
            kill -0 "$SPID" 2>/dev/null || status="failed: server died during the run"
            ((rc == 0)) || status="failed: loadgen exit $rc"
            echo "$status" >"$base.status"
            [[ $status == ok ]] || log "$sc $srv: $status"
            stop_server
        done
    done
done
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/meta.txt"
echo "finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$RESULTS/meta.txt"

if [[ $BUILD_SIZE == 1 ]]; then
    log "measuring clean build time and binary size (build_size.sh)"
    SOCKLOOP=$SOCKLOOP SOCKLOOP_DIR=$ROOT "$BENCH/build_size.sh" "$RESULTS/build_size.json" ||
        log "build_size.sh failed; the report will say so"
fi

python3 "$BENCH/report.py" "$RESULTS" --out "$OUT" --svg "$BENCH/plot.svg"
log "raw results: $RESULTS"
log "report: $OUT"

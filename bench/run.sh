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
#   SCENARIOS="pp1 pp100 ..."      subset of scenarios (default: all seven).
#                                  "default" stands for the seven, "scaling" for
#                                  the optional multi-core scenarios scale100 and
#                                  scale1000 (e.g. SCENARIOS="default scaling")
#   SCALING_SERVERS="mio tokio sockloop-epoll sockloop-epoll-t2"
#                                  servers for the scaling scenarios; -tN runs
#                                  sockloop_echo --threads N (LoopGroup, SO_REUSEPORT)
#   SERVER_CPU=1 CLIENT_CPU=0      taskset pinning
#   SOCKLOOP=auto|skip             auto: build sockloop's tuned echo server
#                                  (src/bin/sockloop_echo.rs, feature "sockloop"),
#                                  skip its servers (with a note) if that fails
#   SOCKLOOP_DIR=<bench/..>        the sockloop crate for OUT and build_size.sh
#                                  (sockloop_echo always builds against bench/..)
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
SCALING_SCENARIOS="scale100 scale1000"
DEFAULT_SCALING_SERVERS="mio tokio sockloop-epoll sockloop-epoll-t2"
SERVERS=${SERVERS:-$ALL_SERVERS}
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
SCALING_SERVERS=${SCALING_SERVERS:-$DEFAULT_SCALING_SERVERS}
SCENARIOS_ARG=$SCENARIOS
SCENARIOS=${SCENARIOS//default/$ALL_SCENARIOS}
SCENARIOS=${SCENARIOS//scaling/$SCALING_SCENARIOS}
is_scaling() { [[ $1 == scale* ]]; }

RESULTS=$BENCH/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS/raw"
log() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The reproduce line shown in the report: every knob that differs from the default.
CMD="cd bench &&"
for v in REPS DURATION WARMUP; do CMD+=" $v=${!v}"; done
[[ $SERVERS != "$ALL_SERVERS" ]] && CMD+=" SERVERS=\"$SERVERS\""
[[ $SCENARIOS != "$ALL_SCENARIOS" ]] && CMD+=" SCENARIOS=\"$SCENARIOS_ARG\""
[[ $SCENARIOS == *scale* && $SCALING_SERVERS != "$DEFAULT_SCALING_SERVERS" ]] &&
    CMD+=" SCALING_SERVERS=\"$SCALING_SERVERS\""
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

SOCKLOOP_BIN=$BIN/sockloop_echo
SOCKLOOP_NOTE=""
have_sockloop=0
if [[ $SERVERS == *sockloop* || ($SCENARIOS == *scale* && $SCALING_SERVERS == *sockloop*) ]]; then
    if [[ $SOCKLOOP == skip ]]; then
        SOCKLOOP_NOTE="sockloop servers skipped on request (SOCKLOOP=skip)."
    else
        log "building sockloop_echo (sockloop at $ROOT)"
        if (cd "$BENCH" && env -u CARGO_TARGET_DIR cargo build --release --features sockloop --bin sockloop_echo) \
            >"$RESULTS/sockloop-build.log" 2>&1 && [[ -x $SOCKLOOP_BIN ]]; then
            have_sockloop=1
        else
            SOCKLOOP_NOTE="sockloop servers skipped: \`cargo build --release --features sockloop --bin sockloop_echo\` failed in bench/ (sockloop does not build yet)."
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
        # Scaling: each of the TWO load generators gets these arguments, so
        # scale100 is 2 x 50 connections and scale1000 is 2 x 500.
        scale100)     echo "--mode pingpong --conns 50 --size 64 --depth 1" ;;
        scale1000)    echo "--mode pingpong --conns 500 --size 64 --depth 1" ;;
        *) log "unknown scenario $1"; exit 1 ;;
    esac
}

# Client connections a scenario holds open at once (select can't go past ~1000).
scenario_fds() {
    case $1 in
        pp1 | bulk) echo 1 ;;
        pp10 | churn) echo 10 ;;
        pp100) echo 100 ;;
        pp1000 | scale1000) echo 1000 ;;
        scale100) echo 100 ;;
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
        sockloop-*-t[0-9]*) # sockloop-BACKEND-tN: sockloop_echo --threads N
            ((have_sockloop)) || return 1
            local b=${1#sockloop-}
            CMDV=("$SOCKLOOP_BIN" --addr "$addr" --backend "${b%-t*}" --threads "${1##*-t}") ;;
        asyncore-select | asyncore-poll)
            CMDV=(python3 -W ignore "$BENCH/py/asyncore_echo.py" --addr "$addr" --backend "${1#asyncore-}") ;;
        asyncio) CMDV=(python3 "$BENCH/py/asyncio_echo.py" --addr "$addr") ;;
        *) log "unknown server $1"; exit 1 ;;
    esac
}

# ---------------------------------------------------------------- servers
SPID=""
SADDR=""

start_server() { # name logprefix [pin=1]
    server_cmd "$1" || return 1
    if [[ ${3:-1} == 1 ]]; then
        taskset -c "$SERVER_CPU" "${CMDV[@]}" >"$2.out" 2>"$2.err" &
    else
        "${CMDV[@]}" >"$2.out" 2>"$2.err" &
    fi
    SPID=$!
    local i line
    for ((i = 0; i < 400; i++)); do # up to 20 s
        line=$(head -n1 "$2.out" 2>/dev/null || true)
        if [[ $line == "listening on "* ]]; then
            SADDR=${line#listening on }
            SADDR=${SADDR%% *} # "ADDR (N threads)" from sockloop_echo --threads
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
    echo "scaling_servers=$SCALING_SERVERS"
    echo "scenarios=$SCENARIOS"
    echo "sockloop_note=$SOCKLOOP_NOTE"
    echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/meta.txt"

# Per-thread CPU ticks (utime + stime) of a process: "TID:TICKS ..." .
thread_ticks() {
    local f rest
    for f in /proc/"$1"/task/*/stat; do
        rest=$(cat "$f" 2>/dev/null) || continue
        rest=${rest##*) } # after the comm field
        read -r -a fl <<<"$rest"
        # fields after comm: state=0 ... utime=11 stime=12
        printf '%s:%s ' "$(basename "$(dirname "$f")")" $((fl[11] + fl[12]))
    done
}

# The scaling scenarios: the server is NOT pinned and two load generators, each
# with half the connections, run at the same time, also unpinned (two cores
# cannot keep servers and clients apart once the server has two loops). Their
# JSON goes to BASE.c1.json / BASE.c2.json; merge_scaling writes BASE.json.
run_scaling() { # scenario server base
    local base=$3 rc1=0 rc2=0 t0 t1 s0 s1 p1 p2 to
    to=$((${DURATION%.*} + ${WARMUP%.*} + 700))
    read -r -a largs <<<"$(scenario_args "$1")"
    # --server-cpu/--client-cpu only make loadgen report how busy cores 1 and 0
    # were; nothing is pinned.
    timeout --signal=KILL "$to" "$LOADGEN" --addr "$SADDR" "${largs[@]}" \
        --duration "$DURATION" --warmup "$WARMUP" --server-pid "$SPID" \
        --server-cpu 1 --client-cpu 0 >"$base.c1.json" 2>"$base.c1.err" &
    p1=$!
    timeout --signal=KILL "$to" "$LOADGEN" --addr "$SADDR" "${largs[@]}" \
        --duration "$DURATION" --warmup "$WARMUP" --server-pid "$SPID" \
        >"$base.c2.json" 2>"$base.c2.err" &
    p2=$!
    sleep "$WARMUP"
    t0=$(thread_ticks "$SPID")
    s0=$(date +%s.%N)
    wait "$p1" || rc1=$?
    t1=$(thread_ticks "$SPID")
    s1=$(date +%s.%N)
    wait "$p2" || rc2=$?
    status=ok
    kill -0 "$SPID" 2>/dev/null || status="failed: server died during the run"
    ((rc1 == 0 && rc2 == 0)) || status="failed: loadgen exit $rc1/$rc2"
    if [[ $status == ok ]]; then
        python3 - "$base" "$t0" "$t1" "$s0" "$s1" <<'PY' || status="failed: could not merge the two loadgen results"
import json, sys
base, t0, t1 = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
a, b = (json.loads(open(f"{base}.c{i}.json").read().strip().splitlines()[-1]) for i in (1, 2))
if a.get("setup_failed") or b.get("setup_failed"):
    sys.exit(1)
m = dict(a)
m["clients"] = [a, b]
for k in ("msgs", "msgs_per_sec", "mb_per_sec", "conns", "latency_samples", "errors", "mismatched_bytes"):
    m[k] = (a.get(k) or 0) + (b.get(k) or 0)
# Both loadgens sample the same server over nearly the same window.
m["server_cpu_util"] = (a["server_cpu_util"] + b["server_cpu_util"]) / 2
m["server_user_util"] = (a["server_user_s"] / a["window_s"] + b["server_user_s"] / b["window_s"]) / 2
m["server_cpu_us_per_msg"] = m["server_cpu_util"] * 1e6 / m["msgs_per_sec"]
m["server_user_us_per_msg"] = m["server_user_util"] * 1e6 / m["msgs_per_sec"]
for k in ("p50_us", "p99_us", "p999_us"):
    m[k] = max(a[k], b[k])
m["client_cpu_util"] = a["client_cpu_util"] + b["client_cpu_util"]
# Nothing is pinned: loadgen 1's core figures are simply CPU 1 and CPU 0.
m["machine_busy"] = (a["server_core_busy"] + a["client_core_busy"])
m["server_core_busy"] = m["client_core_busy"] = None
# Each loadgen counts the other one as "other" load; take it out.
m["other_cpu_util"] = max(0.0, ((a["other_cpu_util"] - b["client_cpu_util"])
                                + (b["other_cpu_util"] - a["client_cpu_util"])) / 2)
before = dict(x.split(":") for x in t0)
after = dict(x.split(":") for x in t1)
secs = float(sys.argv[5]) - float(sys.argv[4])  # from end of warm-up sleep to loadgen 1's end
tt = sorted(((int(v) - int(before.get(t, 0))) for t, v in after.items()), reverse=True)
m["thread_cpu_util"] = [round(t / a["clk_tck"] / secs, 3) for t in tt if t > 0]
open(f"{base}.json", "w").write(json.dumps(m) + "\n")
PY
    fi
    echo "$status" >"$base.status"
    [[ $status == ok ]] || log "$1 $2: $status"
}

read -r -a main_servers <<<"$SERVERS"
read -r -a scaling_servers <<<"$SCALING_SERVERS"
for ((rep = 1; rep <= REPS; rep++)); do
    for sc in $SCENARIOS; do
        read -r -a largs <<<"$(scenario_args "$sc")"
        if is_scaling "$sc"; then
            server_list=("${scaling_servers[@]}")
        else
            server_list=("${main_servers[@]}")
        fi
        nserv=${#server_list[@]}
        for ((k = 0; k < nserv; k++)); do
            srv=${server_list[$(((k + rep - 1) % nserv))]}
            base=$RESULTS/raw/${sc}__${srv}__rep${rep}
            if [[ $srv == *select && $(scenario_fds "$sc") -gt 1000 ]]; then
                echo "skipped: select cannot watch more than ~1000 descriptors (FD_SETSIZE 1024)" >"$base.status"
                continue
            fi
            if [[ $srv == sockloop-* ]] && ((!have_sockloop)); then
                echo "skipped: sockloop_echo not available" >"$base.status"
                continue
            fi
            log "rep $rep/$REPS  $sc  $srv"
            if ! start_server "$srv" "$base.server" "$(is_scaling "$sc" && echo 0 || echo 1)"; then
                echo "failed: server did not start" >"$base.status"
                continue
            fi
            if is_scaling "$sc"; then
                run_scaling "$sc" "$srv" "$base"
                stop_server
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

#!/usr/bin/env bash
# Soak test for sockloop's example servers. See soak/README.md.
#
#   soak/run.sh            full run: per backend, 10 min of echo load, then 2 min of chat
#   soak/run.sh --ci       about 15 s of load in total (~25 s wall), smaller counts, same checks
#   SOAK_SECS=120 soak/run.sh       shorter echo runs (CHAT_SECS for the chat runs)
#
# For each backend (select, poll, epoll) it starts examples/echo_server (release build),
# records its open descriptors, drives it with bench/src/bin/soak.rs (long-lived verified
# echo connections plus connection churn), waits for its descriptors to return to the
# baseline, and judges the run. Then the same with examples/chat_server, slow-loris
# clients and normal clients. It prints a PASS/FAIL table and exits 1 if any check
# failed. Results (client JSON, per-second server fd/RSS CSV, logs) go to
# soak/results/<timestamp>/ (git-ignored).
#
# Environment (all optional; defaults for the full run, then --ci):
#   SOAK_BACKENDS="select poll epoll"
#   SOAK_KINDS="echo chat"     which servers to soak
#   SOAK_SECS=600 | 3          echo load per backend, seconds (first 20% is warm-up)
#   SOAK_CONNS=1000 | 200      long-lived echo connections
#   SOAK_CHURN=100000 | 1500   churn connections in total per echo run
#   SOAK_MAX_MSG=65536         largest echo message (lengths are log-uniform from 1)
#   SOAK_THINK_MS=100          each long-lived connection pauses 0..2x this between
#                              messages (0: flat-out ping-pong)
#   SOAK_RSS_GROWTH_PCT=10     allowed echo_server RSS growth, end of warm-up -> end
#   CHAT_SECS=120 | 2          chat load per backend, seconds
#   CHAT_SLOW=1000 | 200       slow-loris clients (1 byte/s, never a line end)
#   CHAT_TALKERS=5 | 3         normal clients exchanging numbered, checked lines
#   CHAT_CHURN=2000 | 100      normal short clients (welcome, /who, /quit)
#   CHAT_IDLE_TIMEOUT=5        passed as --idle-timeout if `chat_server --help` lists it
#   CHAT_RSS_BASE_MB=32 CHAT_RSS_PER_CONN_KB=128
#                              chat_server RSS limit: base + per-conn x connections held
#   SOAK_DRAIN_SECS=120 | 30   how long outstanding echoes / chat lines / churn may take
#   SOAK_FD_SETTLE_SECS=20     how long the server may take to close its side
#   SOAK_SAMPLE_MS=1000 | 250  server fd/RSS sampling interval
#   SOAK_BUILD=1               0: use the binaries already built (target/, bench/target/)
set -euo pipefail

SOAK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SOAK/.." && pwd)

CI=0
for arg in "$@"; do
    case $arg in
        --ci) CI=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

if ((CI)); then
    d_secs=3 d_conns=200 d_churn=1500 d_chat_secs=2 d_slow=200 d_talkers=3 d_chat_churn=100
    d_drain=30 d_sample=250
else
    d_secs=600 d_conns=1000 d_churn=100000 d_chat_secs=120 d_slow=1000 d_talkers=5
    d_chat_churn=2000 d_drain=120 d_sample=1000
fi
BACKENDS=${SOAK_BACKENDS:-select poll epoll}
KINDS=${SOAK_KINDS:-echo chat}
SECS=${SOAK_SECS:-$d_secs}
CONNS=${SOAK_CONNS:-$d_conns}
CHURN=${SOAK_CHURN:-$d_churn}
MAX_MSG=${SOAK_MAX_MSG:-65536}
THINK_MS=${SOAK_THINK_MS:-100}
RSS_GROWTH_PCT=${SOAK_RSS_GROWTH_PCT:-10}
CHAT_SECS=${CHAT_SECS:-$d_chat_secs}
CHAT_SLOW=${CHAT_SLOW:-$d_slow}
CHAT_TALKERS=${CHAT_TALKERS:-$d_talkers}
CHAT_CHURN=${CHAT_CHURN:-$d_chat_churn}
CHAT_IDLE_TIMEOUT=${CHAT_IDLE_TIMEOUT:-5}
CHAT_RSS_BASE_MB=${CHAT_RSS_BASE_MB:-32}
CHAT_RSS_PER_CONN_KB=${CHAT_RSS_PER_CONN_KB:-128}
DRAIN=${SOAK_DRAIN_SECS:-$d_drain}
FD_SETTLE=${SOAK_FD_SETTLE_SECS:-20}
SAMPLE_MS=${SOAK_SAMPLE_MS:-$d_sample}
CHURN_CONC=64

log() { printf '[soak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- build
if [[ ${SOAK_BUILD:-1} != 0 ]]; then
    log "building echo_server and chat_server (release) in $ROOT"
    (cd "$ROOT" && env -u CARGO_TARGET_DIR cargo build --release --quiet \
        --example echo_server --example chat_server)
    log "building the soak client (release) in $ROOT/bench"
    (cd "$ROOT/bench" && env -u CARGO_TARGET_DIR cargo build --release --quiet --bin soak)
fi
ECHO=$ROOT/target/release/examples/echo_server
CHAT=$ROOT/target/release/examples/chat_server
CLIENT=$ROOT/bench/target/release/soak
for bin in "$ECHO" "$CHAT" "$CLIENT"; do
    [[ -x $bin ]] || { log "missing $bin"; exit 2; }
done

RESULTS=$SOAK/results/$(date +%Y%m%d-%H%M%S)
if ((CI)); then RESULTS+=-ci; fi
mkdir -p "$RESULTS"
CHECKS=$RESULTS/checks.tsv
: >"$CHECKS"
# 1,000+ connections: the servers and the client inherit this limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --idle-timeout, if this chat_server has it (an unknown flag prints the usage line).
CHAT_EXTRA=()
IDLE_DESC=none
help_text=$({ timeout 5 "$CHAT" --help; timeout 5 "$CHAT" --help --help; } 2>&1 </dev/null || true)
if grep -q -- '--idle-timeout' <<<"$help_text"; then
    CHAT_EXTRA=(--idle-timeout "$CHAT_IDLE_TIMEOUT")
    IDLE_DESC=$CHAT_IDLE_TIMEOUT
fi

SPID=""
cleanup() { [[ -n $SPID ]] && kill "$SPID" 2>/dev/null || true; }
trap cleanup EXIT

fd_count() { local n; n=$(ls "/proc/$1/fd" 2>/dev/null | wc -l) || true; echo "$n"; }

# after_row NAME FDS: a CSV row for the server after the client has gone.
after_row() {
    local rss anon
    rss=$(awk '/^VmRSS:/{print $2}' "/proc/$SPID/status" 2>/dev/null) || true
    anon=$(awk '/^RssAnon:/{print $2}' "/proc/$SPID/status" 2>/dev/null) || true
    printf '%s,,after,%s,%s,%s,,,,,\n' "$(date +%s.%3N)" "$2" "$rss" "$anon" >>"$RESULTS/$1.csv"
}

# start_server NAME BIN ARGS...: sets SPID and SADDR, or returns 1.
start_server() {
    local name=$1 bin=$2
    shift 2
    "$bin" --addr 127.0.0.1:0 "$@" >"$RESULTS/$name.out" 2>"$RESULTS/$name.err" </dev/null &
    SPID=$!
    SADDR=""
    for _ in $(seq 200); do
        SADDR=$(sed -n 's/^listening on //p' "$RESULTS/$name.out")
        [[ -n $SADDR ]] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    log "$name: server did not print 'listening on' (see $RESULTS/$name.err)"
    return 1
}

# run_one KIND BACKEND: one server, one client run, one set of checks.
run_one() {
    local kind=$1 backend=$2 name="$1-$2" bin client_args server_args=()
    if [[ $kind == echo ]]; then
        bin=$ECHO
        client_args=(--mode echo --duration "$SECS" --conns "$CONNS" --churn "$CHURN"
            --max-msg "$MAX_MSG" --think-ms "$THINK_MS")
    else
        bin=$CHAT
        server_args=("${CHAT_EXTRA[@]}")
        client_args=(--mode chat --duration "$CHAT_SECS" --slow "$CHAT_SLOW"
            --talkers "$CHAT_TALKERS" --churn "$CHAT_CHURN")
    fi
    local kv=()
    if ! start_server "$name" "$bin" --backend "$backend" "${server_args[@]}"; then
        kill "$SPID" 2>/dev/null || true
        wait "$SPID" 2>/dev/null || true
        SPID=""
        printf '%s\t%s\t%s\t%s\n' "$name" "server started" FAIL \
            "no 'listening on' line; see $name.err" >>"$CHECKS"
        return
    fi
    # Let the server finish starting up, then take the baseline before any client.
    sleep 0.2
    local base
    base=$(fd_count "$SPID")
    log "$name: server pid $SPID on $SADDR, $base fds at baseline; load ${client_args[*]}"
    local rc=0
    "$CLIENT" "${client_args[@]}" --addr "$SADDR" --server-pid "$SPID" \
        --churn-concurrency "$CHURN_CONC" --drain-timeout "$DRAIN" --sample-ms "$SAMPLE_MS" \
        --csv "$RESULTS/$name.csv" >"$RESULTS/$name.json" 2>"$RESULTS/$name.client.err" || rc=$?
    # Every client socket is closed now: wait for the server to close its side.
    local t0=$SECONDS after waited=0 start_ns
    start_ns=$(date +%s%N)
    while :; do
        after=$(fd_count "$SPID")
        [[ $after == "$base" ]] && break
        ((SECONDS - t0 < FD_SETTLE)) || break
        after_row "$name" "$after"
        sleep 0.1
    done
    waited=$(python3 -c "print(f'{($(date +%s%N) - $start_ns) / 1e9:.1f}')")
    after_row "$name" "$after"
    local alive=0
    kill -0 "$SPID" 2>/dev/null && alive=1
    kill "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
    kv=(client_rc="$rc" server_alive="$alive" fd_baseline="$base" fd_after="$after"
        fd_settle_s="$waited" rss_growth_pct="$RSS_GROWTH_PCT" idle_timeout="$IDLE_DESC")
    if [[ $kind == chat ]]; then
        local held=$((CHAT_SLOW + CHAT_TALKERS + CHURN_CONC))
        kv+=(rss_limit_kb=$((CHAT_RSS_BASE_MB * 1024 + CHAT_RSS_PER_CONN_KB * held)))
    fi
    python3 "$SOAK/check.py" judge "$kind" "$name" "$RESULTS/$name.json" "$CHECKS" "${kv[@]}"
    grep -q "	FAIL	" <(grep "^$name	" "$CHECKS") && log "$name: FAIL" || log "$name: pass"
}

log "results in $RESULTS"
[[ " $KINDS " == *" echo "* ]] &&
    log "echo: $CONNS long-lived + $CHURN churn connections, ${SECS}s per backend ($BACKENDS)"
[[ " $KINDS " == *" chat "* ]] &&
    log "chat: $CHAT_SLOW slow-loris + $CHAT_TALKERS talkers + $CHAT_CHURN churn, ${CHAT_SECS}s per backend ($BACKENDS); --idle-timeout: $IDLE_DESC"
for kind in $KINDS; do
    case $kind in
        echo | chat) ;;
        *) log "unknown SOAK_KINDS entry $kind (echo, chat)"; exit 2 ;;
    esac
    for backend in $BACKENDS; do
        run_one "$kind" "$backend"
    done
done

echo
python3 "$SOAK/check.py" table "$CHECKS" | tee "$RESULTS/summary.txt"
status=${PIPESTATUS[0]}
echo "(results: $RESULTS)"
exit "$status"

#!/usr/bin/env bash
# Clean release build time and binary size: sockloop's echo example vs the
# tokio and mio echo servers and a std-only hello world.
#
#   bench/build_size.sh [OUT_JSON]     (default bench/results/build_size.json)
#
# Environment: SOCKLOOP_DIR (default bench/..), SOCKLOOP=skip to leave sockloop out.
#
# Each program is built as its own one-binary crate in a fresh temporary
# directory with a fresh CARGO_TARGET_DIR under /tmp, so its time covers
# exactly its own dependency tree (the bench package itself depends on mio,
# tokio and rustix at once, which would inflate every bin). Versions are pinned
# by copying the relevant Cargo.lock. Sizes are of the release binary and of a
# `strip`ped copy. The registry must already be in cargo's cache or reachable.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "${SOCKLOOP_DIR:-$BENCH/..}" && pwd)
OUT=${1:-$BENCH/results/build_size.json}
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d /tmp/sockloop-buildsize.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR

log() { printf '[build_size.sh] %s\n' "$*" >&2; }

# The dependency line for a crate, exactly as bench/Cargo.toml declares it.
dep_line() { grep -E "^$1 *=" "$BENCH/Cargo.toml"; }

ENTRIES=()

# record NAME BUILD_SECONDS BINARY NOTE
record() {
    local name=$1 secs=$2 bin=$3 note=$4 size=null stripped=null
    if [[ -n $bin && -f $bin ]]; then
        size=$(stat -c %s "$bin")
        cp "$bin" "$WORK/$name.stripped"
        strip "$WORK/$name.stripped"
        stripped=$(stat -c %s "$WORK/$name.stripped")
    fi
    note=${note//\\/\\\\}
    note=${note//\"/\\\"}
    ENTRIES+=("{\"name\": \"$name\", \"build_s\": $secs, \"size_bytes\": $size, \"stripped_bytes\": $stripped, \"note\": \"$note\"}")
    log "$name: build ${secs} s, size $size, stripped $stripped ${note:+($note)}"
}

# timed_build DIR TARGET_DIR [cargo args...]: sets SECS, returns cargo's status.
timed_build() {
    local dir=$1 tdir=$2
    shift 2
    local t0 t1 rc=0
    t0=$(date +%s.%N)
    (cd "$dir" && CARGO_TARGET_DIR=$tdir cargo build --release --quiet "$@") >"$tdir.log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    SECS=$(python3 -c "print(round($t1 - $t0, 2))")
    return $rc
}

# one_bin_crate NAME SRC LOCKFILE DEPLINES...
one_bin_crate() {
    local name=$1 src=$2 lock=$3
    shift 3
    local dir=$WORK/$name
    mkdir -p "$dir/src"
    {
        printf '[package]\nname = "%s"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n[workspace]\n\n[dependencies]\n' "$name"
        printf '%s\n' "$@"
    } >"$dir/Cargo.toml"
    cp "$src" "$dir/src/main.rs"
    [[ -n $lock && -f $lock ]] && cp "$lock" "$dir/Cargo.lock"
    echo "$dir"
}

# Rust peers and the floor.
for spec in "hello:" "mio_echo:mio" "tokio_echo:tokio"; do
    name=${spec%%:*}
    deps=()
    [[ -n ${spec#*:} ]] && deps+=("$(dep_line "${spec#*:}")")
    dir=$(one_bin_crate "$name" "$BENCH/src/bin/$name.rs" "$BENCH/Cargo.lock" "${deps[@]}")
    if timed_build "$dir" "$WORK/$name-target"; then
        record "$name" "$SECS" "$WORK/$name-target/release/$name" ""
    else
        record "$name" null "" "build failed"
    fi
done

# sockloop's example, as a binary crate that depends on sockloop by path (so
# sockloop's dev-dependencies are not built). If the example needs
# dev-dependencies, fall back to building it as an example and say so.
EX=$ROOT/examples/echo_server.rs
if [[ ${SOCKLOOP:-auto} == skip ]]; then
    record sockloop_echo null "" "skipped on request (SOCKLOOP=skip)"
elif [[ ! -f $EX ]]; then
    record sockloop_echo null "" "examples/echo_server.rs does not exist yet"
else
    deps=("sockloop = { path = \"$ROOT\" }")
    note="example built as a bin crate depending on sockloop by path"
    # The examples install env_logger (a dev-dependency of sockloop): the bin crate gets
    # the same dependency line, so the example builds as it is and its logger is counted.
    if grep -q env_logger "$EX"; then
        deps+=("$(grep -E '^env_logger *=' "$ROOT/Cargo.toml")")
        note="$note, with its env_logger logger"
    fi
    dir=$(one_bin_crate sockloop_echo "$EX" "$ROOT/Cargo.lock" "${deps[@]}")
    if timed_build "$dir" "$WORK/sockloop_echo-target"; then
        record sockloop_echo "$SECS" "$WORK/sockloop_echo-target/release/sockloop_echo" "$note"
    elif timed_build "$ROOT" "$WORK/sockloop_ex-target" --example echo_server; then
        record sockloop_echo "$SECS" "$WORK/sockloop_ex-target/release/examples/echo_server" \
            "built with cargo build --example, which also compiles sockloop's dev-dependencies"
    else
        record sockloop_echo null "" "sockloop echo_server example does not build yet"
    fi
fi

{
    echo "{\"rustc\": \"$(rustc --version)\", \"jobs\": $(nproc), \"entries\": ["
    for ((i = 0; i < ${#ENTRIES[@]}; i++)); do
        sep=","
        ((i == ${#ENTRIES[@]} - 1)) && sep=""
        echo "  ${ENTRIES[$i]}$sep"
    done
    echo "]}"
} >"$OUT"
log "wrote $OUT"

#!/usr/bin/env bash
# S3 chain bench: `bash benches/s3_chain.sh`.
# Two master PFSes of SIZE_MB MiB (default 1024) of random 1 MiB files
# each (`hammer import`); in paired rounds (ROUNDS, default 3; the
# baseline runs first in every other round), medians:
#   upload:  `hammer mirror-copy <master> s3://bench/pN`
#            vs `hammer mirror-read <other master> > file` + `s3_copy put`;
#   restore: `hammer -y mirror-copy s3://bench/pN <new slave>`
#            vs `s3_copy get` to a file + `hammer -y mirror-write <new slave> < file`,
# where s3_copy (examples/s3_copy.rs) moves a file with the very client
# hammer uses. Printed: wall seconds, the ratio hammer / baseline (< 1 is
# faster), MiB/s of the stream, CPU seconds and peak RSS (/usr/bin/time).
# The baseline is the sum of its two commands, each also shown; only its
# first starts after a sync, so its second pays for the file's dirty pages
# as a user's would; its RSS is the larger of the two.
# Each round gets a fresh 3-node Garage cluster (tests/garage/cluster.sh,
# first port PORT, default 39200) and the two sides read different
# masters: Garage stores blocks by hash, so bytes it has seen before
# would cost it no disk write. The first round checks each slave against
# its master with mirror-verify (untimed).
# GARAGE names the garage 2.5.0 binary (default the CI cache); BENCH_DIR
# (default /var/tmp) the filesystem used. Installs time and bc with
# apt-get where missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-39200}
GARAGE=${GARAGE:-$HOME/.cache/hammer-mirror-ci/garage-2.5.0/bin/garage}
if [ ! -x "$GARAGE" ]; then
    echo "no garage binary at $GARAGE; build it with (or set GARAGE):" >&2
    echo "  cargo install garage --version 2.5.0 --locked --no-default-features --features bundled-libs,lmdb --root ~/.cache/hammer-mirror-ci/garage-2.5.0" >&2
    exit 1
fi
export GARAGE

need() {
    if ! command -v "$1" >/dev/null; then
        apt-get install -y "$2" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
    fi
}
need /usr/bin/time time
need bc bc

cargo build --release --quiet --bin hammer --example s3_copy
H=${CARGO_TARGET_DIR:-$PWD/target}/release/hammer
COPY=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/s3_copy
T=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" s3chain.XXXXXX)
G=$T/garage
cleanup() {
    tests/garage/cluster.sh stop "$G" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
. benches/lib/timing.sh

# One step timed: "<wall> <CPU> <RSS MB>", with no dirty pages left by
# the previous step to throttle it.
step() {
    sync
    measure "$@"
}

# A fresh cluster with bucket `bench`, its settings in the environment,
# answering before anything is timed.
cluster_up() {
    tests/garage/cluster.sh start "$G" "$PORT" >/dev/null
    set -a
    . "$G/env"
    set +a
    tests/garage/cluster.sh bucket "$G" bench
    head -c 4096 /dev/urandom >"$T/warm"
    "$COPY" put "$T/warm" bench warm >/dev/null
    "$COPY" get bench warm "$T/warm" >/dev/null
}

cluster_down() {
    tests/garage/cluster.sh stop "$G"
    rm -rf "$G"
}

# master <store>: a master PFS <store>/m of SIZE_MB random 1 MiB files.
master() {
    "$H" store-create "$1" >/dev/null
    "$H" pfs-master "$1/m" >/dev/null
    mkdir "$T/tree"
    head -c $((SIZE_MB << 20)) /dev/urandom | split -a 5 -b 1M - "$T/tree/f"
    "$H" -q import "$T/tree" "$1/m"
    rm -rf "$T/tree"
}

# Wall, CPU and RSS per round: H* of hammer, B* of the baseline (both
# commands: wall and CPU summed, the larger RSS), B1/B2 its two walls.
declare -A HW HC HR BW BC BR B1 B2

hammer_side() {
    local name=$1 out w c m
    shift
    out=$(step "$@")
    read -r w c m <<<"$out"
    HW[$name]+=" $w"; HC[$name]+=" $c"; HR[$name]+=" $m"
}

# baseline_side <name> <first command> -- <second command>
baseline_side() {
    local name=$1 first=() out w1 c1 m1 w2 c2 m2
    shift
    while [ "$1" != -- ]; do first+=("$1"); shift; done
    shift
    out=$(step "${first[@]}")
    read -r w1 c1 m1 <<<"$out"
    out=$(measure "$@")
    read -r w2 c2 m2 <<<"$out"
    BW[$name]+=" $(sum "$w1" "$w2")"; BC[$name]+=" $(sum "$c1" "$c2")"
    BR[$name]+=" $((m1 > m2 ? m1 : m2))"; B1[$name]+=" $w1"; B2[$name]+=" $w2"
}

# pair <name> <round> <hammer command> -- <baseline first> -- <baseline second>:
# the baseline first in even rounds.
pair() {
    local name=$1 r=$2 h=()
    shift 2
    while [ "$1" != -- ]; do h+=("$1"); shift; done
    shift
    if [ $((r % 2)) = 0 ]; then
        baseline_side "$name" "$@"
        hammer_side "$name" "${h[@]}"
    else
        hammer_side "$name" "${h[@]}"
        baseline_side "$name" "$@"
    fi
}

sum() { printf '%.2f' "$(echo "$1 + $2" | bc -l)"; }
max() { printf '%s\n' "$@" | sort -g | tail -1; }
rate() { printf '%.0f' "$(echo "$STREAM_MB / $1" | bc -l)"; }

report() {
    local name=$1 i
    read -r -a hw <<<"${HW[$name]}"; read -r -a hcpu <<<"${HC[$name]}"; read -r -a hr <<<"${HR[$name]}"
    read -r -a bw <<<"${BW[$name]}"; read -r -a bcpu <<<"${BC[$name]}"; read -r -a br <<<"${BR[$name]}"
    read -r -a b1 <<<"${B1[$name]}"; read -r -a b2 <<<"${B2[$name]}"
    local ratios=()
    for i in "${!hw[@]}"; do ratios+=("$(ratio "${hw[$i]}" "${bw[$i]}")"); done
    local mh mb
    mh=$(median "${hw[@]}") mb=$(median "${bw[@]}")
    printf '  %-8s %7s %6s %6s %6s | %7s %-17s %6s %6s %6s | %5sx (%s)\n' "$name" \
        "$mh" "$(rate "$mh")" "$(median "${hcpu[@]}")" "$(max "${hr[@]}")" \
        "$mb" "($(median "${b1[@]}") + $(median "${b2[@]}"))" "$(rate "$mb")" \
        "$(median "${bcpu[@]}")" "$(max "${br[@]}")" "$(median "${ratios[@]}")" "${ratios[*]}"
}

master "$T/ma"
master "$T/mb"

for r in $(seq 1 "$ROUNDS"); do
    # The sides swap masters each round.
    if [ $((r % 2)) = 1 ]; then hm=$T/ma/m bm=$T/mb/m; else hm=$T/mb/m bm=$T/ma/m; fi
    cluster_up
    "$H" store-create "$T/s" >/dev/null
    pair upload "$r" "$H" -q mirror-copy "$hm" "s3://bench/p$r" -- \
        bash -c 'exec "$1" -q mirror-read "$2" >"$3"' _ "$H" "$bm" "$T/stream" -- \
        "$COPY" put "$T/stream" bench "f$r"
    # Both masters' streams are this size, give or take their headers.
    STREAM_MB=$(echo "scale=1; $(stat -c %s "$T/stream") / 1048576" | bc)
    rm -f "$T/stream"
    pair restore "$r" "$H" -q -y mirror-copy "s3://bench/p$r" "$T/s/h" -- \
        "$COPY" get bench "f$r" "$T/stream" -- \
        bash -c 'exec "$1" -q -y mirror-write "$2" <"$3"' _ "$H" "$T/s/b" "$T/stream"
    if [ "$r" = 1 ]; then
        "$H" -q mirror-verify "$hm" "$T/s/h" >/dev/null
        "$H" -q mirror-verify "$bm" "$T/s/b" >/dev/null
    fi
    rm -rf "$T/s" "$T/stream"
    cluster_down
done

echo "== S3 chain: masters of $SIZE_MB MiB (random 1 MiB files), a $STREAM_MB MiB stream;" \
    "Garage 2.5.0, 3 nodes on 127.0.0.1 (3 replicas); $ROUNDS rounds, medians"
echo "  upload:  hammer mirror-copy <pfs> s3://bench/pN | hammer mirror-read <pfs> > file, then s3_copy put"
echo "  restore: hammer -y mirror-copy s3://bench/pN <slave> | s3_copy get to a file, then hammer -y mirror-write <slave> < file"
printf '  %-8s %7s %6s %6s %6s | %7s %-17s %6s %6s %6s | %s\n' "" "hammer" "MiB/s" "CPU s" "RSS MB" \
    "base" "(parts)" "MiB/s" "CPU s" "RSS MB" "hammer/baseline (per round)"
report upload
report restore

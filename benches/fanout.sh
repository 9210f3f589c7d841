#!/usr/bin/env bash
# Bench of mirror-copy to several targets: one source read
# once for three targets against a copy to one target, in paired rounds
# (medians), to local targets and to targets over real ssh to 127.0.0.1
# (its own sshd, as benches/ssh_copy.sh). Size: BENCH_FAN_MB (default
# 512) of random 512 KiB files; BENCH_FAN_ROUNDS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
H=$PWD/target/release/hammer
MB=${BENCH_FAN_MB:-512}
ROUNDS=${BENCH_FAN_ROUNDS:-3}
T=$(mktemp -d)
. benches/lib/sshd.sh
cleanup() {
    stop_sshd
    rm -rf "$T"
}
trap cleanup EXIT
start_sshd "$T"

mkdir "$T/tree"
for i in $(seq 1 $((MB * 2))); do
    head -c 524288 /dev/urandom >"$T/tree/f$i"
done
"$H" store-create "$T/src" >/dev/null
"$H" pfs-master "$T/src/m" >/dev/null
"$H" -q import "$T/tree" "$T/src/m" >/dev/null
rm -rf "$T/tree"

# CPU seconds used on the machine so far (all processes: the remote
# sides run under sshd).
cpu() { awk '/^cpu / {printf "%.2f", ($2 + $3 + $4 + $6 + $7 + $8) / 100}' /proc/stat; }

# copy <n targets> <local|ssh> <round>: seconds for one mirror-copy of the
# master to n new slaves, each in a store of its own.
copy() {
    local n=$1 how=$2 r=$3 targets=() i
    for i in $(seq 1 "$n"); do
        "$H" store-create "$T/d$r$how$n$i" >/dev/null
        if [ "$how" = local ]; then
            targets+=("$T/d$r$how$n$i/s")
        else
            targets+=("localhost:$T/d$r$how$n$i/s")
        fi
    done
    sync
    # Wall and CPU seconds (this process's and its children's: the local
    # sides, or ssh and through sshd the remote hammers).
    local t0 t1 c0 c1
    c0=$(cpu)
    t0=$(date +%s.%N)
    HAMMER_RSH="$T/rsh" "$H" -y -B mirror-copy "$T/src/m" "${targets[@]}" >/dev/null 2>"$T/err" ||
        { cat "$T/err" >&2; exit 1; }
    t1=$(date +%s.%N)
    c1=$(cpu)
    printf '%.2f %.2f\n' "$(echo "$t1 - $t0" | bc -l)" "$(echo "$c1 - $c0" | bc -l)"
    for i in $(seq 1 "$n"); do
        status=$("$H" pfs-status "$T/d$r$how$n$i/s")
        grep -q 'operating as a SLAVE' <<<"$status"
        rm -rf "$T/d$r$how$n$i"
    done
}

for how in local ssh; do
    ratios=()
    ones=()
    threes=()
    cpu1=()
    cpu3=()
    for r in $(seq 1 "$ROUNDS"); do
        read -r one c1 <<<"$(copy 1 $how $r)"
        read -r three c3 <<<"$(copy 3 $how $r)"
        ones+=("$one")
        threes+=("$three")
        cpu1+=("$c1")
        cpu3+=("$c3")
        ratios+=("$(ratio "$three" "$one")")
    done
    goal=1.3
    [ $how = ssh ] && goal=1.5
    echo "== mirror-copy of $MB MiB to $how targets, $ROUNDS rounds (medians)"
    echo "   one target:    $(median "${ones[@]}") s wall, $(median "${cpu1[@]}") CPU s"
    echo "   three targets: $(median "${threes[@]}") s wall, $(median "${cpu3[@]}") CPU s"
    echo "   three vs one: ${ratios[*]}; median $(median "${ratios[@]}")x (goal <= ${goal}x)"
done

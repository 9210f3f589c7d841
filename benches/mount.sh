#!/usr/bin/env bash
# Bench of hammer mount, as root with /dev/fuse: `cat` of a
# 1 GiB file (BENCH_MOUNT_MB) through the mount against `cat` of the same
# file exported to a plain directory, and `find | wc -l` over 50,000
# entries (BENCH_MOUNT_FILES) through the mount against the exported copy,
# in paired rounds (BENCH_MOUNT_ROUNDS, default 3; medians). Each round
# first drops the kernel's caches of both (the mount's by remounting, the
# export's with drop_caches) so neither reads what the other warmed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
H=${CARGO_TARGET_DIR:-$PWD/target}/release/hammer
MB=${BENCH_MOUNT_MB:-1024}
FILES=${BENCH_MOUNT_FILES:-50000}
ROUNDS=${BENCH_MOUNT_ROUNDS:-3}
T=$(mktemp -d)
. benches/lib/sshd.sh
cleanup() {
    "$H" umount "$T/mnt" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

mkdir -p "$T/tree" "$T/mnt"
head -c $((MB << 20)) /dev/urandom >"$T/tree/big"
python3 benches/lib/gentree.py small "$T/tree/files" 1 "$FILES" --per-dir 500 --size 2-6
"$H" store-create "$T/st" >/dev/null
"$H" pfs-master "$T/st/m" >/dev/null
"$H" -q import "$T/tree" "$T/st/m" >/dev/null
rm -rf "$T/tree"
"$H" -q export "$T/st/m" "$T/ex"

# mounted: a fresh mount (nothing cached by the kernel) in the background.
mounted() {
    "$H" mount "$T/st/m" "$T/mnt" &
    for _ in $(seq 100); do
        mountpoint -q "$T/mnt" && return
        sleep 0.1
    done
    echo "the mount did not come up" >&2
    exit 1
}

cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }

cat_ratios=() find_ratios=()
for r in $(seq 1 "$ROUNDS"); do
    cold
    mounted
    m_cat=$(secs cat "$T/mnt/big")
    m_find=$(secs sh -c "find '$T/mnt/files' | wc -l")
    "$H" umount "$T/mnt"
    wait
    cold
    e_cat=$(secs cat "$T/ex/big")
    e_find=$(secs sh -c "find '$T/ex/files' | wc -l")
    printf '   round %d: cat %.2f s mount, %.2f s export; find %.2f s mount, %.2f s export\n' \
        "$r" "$m_cat" "$e_cat" "$m_find" "$e_find"
    cat_ratios+=("$(ratio "$e_cat" "$m_cat")")
    find_ratios+=("$(ratio "$e_find" "$m_find")")
done
echo "== cat of a $MB MiB file: mount's speed / export's: ${cat_ratios[*]}; median $(median "${cat_ratios[@]}") (goal >= 0.5)"
echo "== find | wc -l over $FILES files: mount's speed / export's: ${find_ratios[*]}; median $(median "${find_ratios[@]}") (goal >= 0.3)"

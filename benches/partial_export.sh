#!/usr/bin/env bash
# Partial export bench: on a PFS of FILES small files (default 250,000;
# benches/lib/gentree.py, 250 a directory), the export of one file
# (`hammer export <pfs> <dir> <path>`) against the export of the whole
# PFS, in paired rounds (ROUNDS, default 3; medians). Goal: one file in
# <= 0.02x the time of the whole. Works under BENCH_DIR (default
# /var/tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
H=${CARGO_TARGET_DIR:-$PWD/target}/release/hammer
FILES=${FILES:-250000}
ROUNDS=${ROUNDS:-3}
T=$(mktemp -d "${BENCH_DIR:-/var/tmp}/partial.XXXXXX")
trap 'rm -rf "$T"' EXIT

python3 benches/lib/gentree.py small "$T/tree" 1 "$FILES"
"$H" store-create "$T/st" >/dev/null
"$H" pfs-master "$T/st/m" >/dev/null
"$H" -q import "$T/tree" "$T/st/m"
# A file in the middle of the tree, by its path inside.
one=$(cd "$T/tree" && find . -type f | sort | sed -n "$((FILES / 2))p")
rm -rf "$T/tree"

. benches/lib/timing.sh

whole=() part=()
for r in $(seq "$ROUNDS"); do
    rm -rf "$T/w" "$T/p"
    sync
    whole+=("$(secs "$H" -q export "$T/st/m" "$T/w")")
    part+=("$(secs "$H" -q export "$T/st/m" "$T/p" "$one")")
    cmp "$T/w/$one" "$T/p/$one"
    [ "$(find "$T/p" -type f | wc -l)" -eq 1 ]
done
w=$(printf '%s\n' "${whole[@]}" | median)
p=$(printf '%s\n' "${part[@]}" | median)
printf 'partial export of 1 of %d files: %.3f s, whole export %.3f s: ratio %.4f (goal <= 0.02)\n' \
    "$FILES" "$p" "$w" "$(echo "$p / $w" | bc -l)"

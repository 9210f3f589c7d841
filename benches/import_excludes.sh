#!/usr/bin/env bash
# import with 20 --exclude patterns against the same import without them
# of the files it keeps: TREE (default /usr/share, else a generated
# system-like tree) imported with the patterns; what that import kept,
# exported, is the tree the baseline imports without patterns. Each round
# imports into a new store; paired rounds (ROUNDS, default 3, the
# baseline first in every other one), medians. Goal: >= 0.95x the speed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
H=${CARGO_TARGET_DIR:-$PWD/target}/release/hammer
ROUNDS=${ROUNDS:-3}
T=$(mktemp -d "${BENCH_DIR:-/var/tmp}/excludes.XXXXXX")
trap 'rm -rf "$T"' EXIT
src=${TREE:-/usr/share}
if [ ! -d "$src" ]; then
    python3 benches/lib/gentree.py system "$T/gen" 1 60000
    src=$T/gen
fi

pats=(--exclude '*.tmp' --exclude '*.bak' --exclude '*~' --exclude '.cache/'
    --exclude 'node_modules/' --exclude '__pycache__/' --exclude '*.pyc'
    --exclude '*.o' --exclude '*.swp' --exclude '/doc/*/changelog*'
    --exclude 'locale/*/LC_MESSAGES/*.mo' --exclude 'man/??/' --exclude 'man/*.UTF-8/'
    --exclude '**/test/' --exclude '**/tests/' --exclude '*.orig'
    --exclude '*.rej' --exclude '#*#' --exclude '.git/' --exclude 'Thumbs.db')

# The tree the patterns leave: imported once with them, exported.
"$H" store-create "$T/k" >/dev/null
"$H" pfs-master "$T/k/m" >/dev/null
"$H" -q import "${pats[@]}" "$src" "$T/k/m"
"$H" -q export "$T/k/m" "$T/kept"
rm -rf "$T/k"
echo "tree $src: $(find "$src" | wc -l) entries, $(find "$T/kept" | wc -l) kept by the patterns"

. benches/lib/timing.sh
fresh() {
    rm -rf "$T/s"
    "$H" store-create "$T/s" >/dev/null
    "$H" pfs-master "$T/s/m" >/dev/null
}
with=() without=()
for r in $(seq "$ROUNDS"); do
    for which in $([ $((r % 2)) -eq 1 ] && echo "b w" || echo "w b"); do
        fresh
        sync
        if [ "$which" = w ]; then
            with+=("$(secs "$H" -q import "${pats[@]}" "$src" "$T/s/m")")
        else
            without+=("$(secs "$H" -q import "$T/kept" "$T/s/m")")
        fi
    done
done
w=$(printf '%s\n' "${with[@]}" | median)
b=$(printf '%s\n' "${without[@]}" | median)
printf 'import with 20 excludes %.2f s, without them of the files kept %.2f s: speed ratio %.3f (goal >= 0.95)\n' \
    "$w" "$b" "$(echo "$b / $w" | bc -l)"

#!/usr/bin/env bash
# Restore bench. On a generated tree shaped like a system tree
# (benches/lib/gentree.py, seed SEED, TREE_FILES entries) and on a copy
# of /usr/share when present, in paired rounds (ROUNDS, default 3; the
# baseline runs first in every other round) with medians:
#   import vs `cp -a` of the tree;
#   mirror-copy to a new slave vs the write ceiling (the master's store
#     files written once to a new file: `cat ... > new; sync`);
#   export of the slave vs `cp -a` of the tree;
#   after 1% of the files changed: re-import + incremental mirror-copy
#     vs `rsync -a` onto the earlier `cp -a` copy.
# Then the scale table: import, mirror-copy and export of trees of small
# files (250 a directory) at 62,500 and 250,000 files, 1,000,000 with
# SCALE=full (SIZES overrides the list): wall seconds, time per file against the smallest size and
# peak RSS (`cp -a` alongside). SHARE names the real tree (empty: none).
# It works under BENCH_DIR (default
# /var/tmp), the filesystem measured; installs rsync, time, bc and
# python3 with apt-get where missing. As root (with losetup and
# mkfs.ext4), every round of a tree and every scale size runs on a new
# ext4 filesystem of its own in an image file under BENCH_DIR (a loop
# device with direct I/O, so the image's pages are not cached twice),
# dropped after: each starts on an empty filesystem, as a restore does.
# On a filesystem that has just deleted many files, ext4 looks at every
# freed inode it could reuse before making a new one: `cp -a` of
# /usr/share took 31 s there against 3.0-3.2 s on a fresh one, and a
# million files take over half an hour to delete. SCALE_FS=dir keeps
# everything in BENCH_DIR itself. PARTS (default "trees scale") picks
# the parts to run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SEED=${SEED:-1}
TREE_FILES=${TREE_FILES:-40000}
SIZES=${SIZES:-62500 250000}
[ "${SCALE:-}" = full ] && SIZES="$SIZES 1000000"
SHARE=${SHARE-/usr/share}
PARTS=${PARTS:-trees scale}

need() {
    if ! command -v "$1" >/dev/null; then
        apt-get install -y "$2" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
    fi
}
need rsync rsync
need /usr/bin/time time
need bc bc
need python3 python3

cargo build --release --quiet
H=${CARGO_TARGET_DIR:-$PWD/target}/release/hammer
GEN=$PWD/benches/lib/gentree.py
T=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" restore.XXXXXX)
LOOP=
trap 'drop_fs; rm -rf "$T"' EXIT

# fresh_fs <bytes> <inodes>: sets S, the directory the next steps write
# in: a new ext4 filesystem of that size (sparse) as root, else $T/w.
fresh_fs() {
    if [ "${SCALE_FS:-loop}" = dir ] || [ "$(id -u)" != 0 ] ||
        ! command -v losetup >/dev/null || ! command -v mkfs.ext4 >/dev/null; then
        S=$T/w
        mkdir -p "$S"
        return
    fi
    truncate -s "$1" "$T/fs.img"
    mkfs.ext4 -q -F -N "$2" "$T/fs.img"
    LOOP=$(losetup --find --show --direct-io=on "$T/fs.img")
    mkdir -p "$T/fs"
    mount "$LOOP" "$T/fs"
    S=$T/fs
}

# drop_fs: the end of what fresh_fs made.
drop_fs() {
    if [ -n "$LOOP" ]; then
        umount "$T/fs"
        losetup -d "$LOOP"
        LOOP=
        rm -f "$T/fs.img"
    else
        rm -rf "$T/w"
    fi
}

. benches/lib/timing.sh

# One step timed: "<wall> <CPU> <RSS MB>", with no dirty pages left by
# the previous step to throttle it.
step() {
    sync
    measure "$@"
}

# The master's store files: what a copy to a new slave has to write.
store_files() { find "$1" -maxdepth 1 -type f -name '.hammer-store*'; }

ceiling() {
    # shellcheck disable=SC2046
    cat $(store_files "$1") >"$2"
    sync
}

update() {
    "$H" -q import "$1" "$2/m"
    "$H" -q -y mirror-copy "$2/m" "$3/s"
}
export -f ceiling update store_files
export H

# pair <name> <round> <hammer command> -- <baseline command>: both timed,
# the baseline first in even rounds; appends to the results of <name>.
declare -A HW HC BW BC
pair() {
    local name=$1 r=$2 h=() b=() x
    shift 2
    while [ "$1" != -- ]; do h+=("$1"); shift; done
    shift
    b=("$@")
    local hr br
    if [ $((r % 2)) = 0 ]; then
        br=$(step "${b[@]}")
        hr=$(step "${h[@]}")
    else
        hr=$(step "${h[@]}")
        br=$(step "${b[@]}")
    fi
    read -r hw hc _ <<<"$hr"
    read -r bw bc _ <<<"$br"
    HW[$name]+=" $hw"; HC[$name]+=" $hc"; BW[$name]+=" $bw"; BC[$name]+=" $bc"
}

# report <name> <label> <speed|time> <goal>: medians of the rounds, and
# the ratios per round: speed = baseline wall / hammer wall (>= 1 is
# faster), time = hammer wall / baseline wall; CPU = hammer / baseline.
report() {
    local name=$1 label=$2 kind=$3 goal=$4 i
    read -r -a hw <<<"${HW[$name]}"; read -r -a hc <<<"${HC[$name]}"
    read -r -a bw <<<"${BW[$name]}"; read -r -a bc <<<"${BC[$name]}"
    local ratios=() cpus=()
    for i in "${!hw[@]}"; do
        if [ "$kind" = speed ]; then
            ratios+=("$(ratio "${bw[$i]}" "${hw[$i]}")")
        else
            ratios+=("$(ratio "${hw[$i]}" "${bw[$i]}")")
        fi
        cpus+=("$(ratio "${hc[$i]}" "${bc[$i]}")")
    done
    printf '  %-44s %6s s %6s CPU s | %6s s %6s CPU s | %s %5sx (%s) CPU %5sx | %s\n' \
        "$label" "$(median "${hw[@]}")" "$(median "${hc[@]}")" \
        "$(median "${bw[@]}")" "$(median "${bc[@]}")" "$kind" \
        "$(median "${ratios[@]}")" "${ratios[*]}" "$(median "${cpus[@]}")" "$goal"
}

bench_tree() {
    local src=$1 what=$2 r entries mb
    entries=$(find "$src" | wc -l)
    mb=$(du -sm "$src" | cut -f1)
    echo "== $what: $entries entries, $mb MB; $ROUNDS rounds, medians"
    echo "  step (hammer | baseline)                     hammer wall, CPU  | baseline wall, CPU | ratio (per round)        | goal"
    for r in $(seq 1 "$ROUNDS"); do
        # Two stores, three copies and the ceiling's file, with room.
        fresh_fs $(((mb * 8 + 1024) << 20)) $((entries * 4 + 100000))
        "$H" store-create "$S/a" >/dev/null
        "$H" pfs-master "$S/a/m" >/dev/null
        "$H" store-create "$S/b" >/dev/null
        pair import "$r" "$H" -q import "$src" "$S/a/m" -- cp -a "$src" "$S/cp"
        pair copy "$r" "$H" -q -y mirror-copy "$S/a/m" "$S/b/s" -- bash -c 'ceiling "$1" "$2"' _ "$S/a" "$S/ceil"
        pair export "$r" "$H" -q export "$S/b/s" "$S/x" -- cp -a "$src" "$S/y"
        python3 "$GEN" change "$src" "$((SEED * 100 + r))" 1
        pair update "$r" bash -c 'update "$1" "$2" "$3"' _ "$src" "$S/a" "$S/b" -- rsync -a "$src/" "$S/cp/"
        drop_fs
    done
    report import "import vs cp -a" speed "reported"
    report copy "mirror-copy vs write ceiling" speed ">= 0.9x, CPU <= 1.5x"
    report export "export vs cp -a" speed ">= 1.0x"
    report update "1% changed: re-import + copy vs rsync -a" time "<= 0.7x"
    unset HW HC BW BC
    declare -gA HW HC BW BC
}

if [[ " $PARTS " == *" trees "* ]]; then
    python3 "$GEN" system "$T/tree" "$SEED" "$TREE_FILES"
    bench_tree "$T/tree" "generated system tree (seed $SEED)"
    rm -rf "$T/tree"
    if [ -n "$SHARE" ] && [ -d "$SHARE" ]; then
        cp -a "$SHARE" "$T/share"
        bench_tree "$T/share" "copy of /usr/share"
        rm -rf "$T/share"
    fi
fi
[[ " $PARTS " == *" scale "* ]] || exit 0

echo "== scale: small files (100-4000 bytes, 250 a directory), one run per size"
printf '  %-9s %-26s %-26s %-26s %s\n' files "import s (us/file, MB)" "mirror-copy s (us/file, MB)" "export s (us/file, MB)" "cp -a s (us/file)"
declare -A FIRST LAST
for n in $SIZES; do
    # The tree, its two copies and the two stores: a block and an inode
    # a file each, with room.
    fresh_fs $((n * 24 * 1024 + (1 << 30))) $((n * 4 + 100000))
    python3 "$GEN" small "$S/small" "$SEED" "$n"
    "$H" store-create "$S/sa" >/dev/null
    "$H" pfs-master "$S/sa/m" >/dev/null
    "$H" store-create "$S/sb" >/dev/null
    row=()
    for s in import copy export cp; do
        case $s in
        import) out=$(step "$H" -q import "$S/small" "$S/sa/m") ;;
        copy) out=$(step "$H" -q -y mirror-copy "$S/sa/m" "$S/sb/s") ;;
        export) out=$(step "$H" -q export "$S/sb/s" "$S/sx") ;;
        cp) out=$(step cp -a "$S/small" "$S/sc") ;;
        esac
        read -r w _ rss <<<"$out"
        per=$(printf '%.1f' "$(echo "$w * 1000000 / $n" | bc -l)")
        [ -z "${FIRST[$s]:-}" ] && FIRST[$s]=$per
        LAST[$s]=$per
        if [ $s = cp ]; then row+=("$w ($per)"); else row+=("$w ($per, $rss)"); fi
    done
    printf '  %-9s %-26s %-26s %-26s %s\n' "$n" "${row[@]}"
    drop_fs
done
printf '  per file, largest vs smallest: import %sx, mirror-copy %sx, export %sx, cp -a %sx (goal <= 1.3x; RSS <= 256 MB)\n' \
    "$(ratio "${LAST[import]}" "${FIRST[import]}")" "$(ratio "${LAST[copy]}" "${FIRST[copy]}")" \
    "$(ratio "${LAST[export]}" "${FIRST[export]}")" "$(ratio "${LAST[cp]}" "${FIRST[cp]}")"

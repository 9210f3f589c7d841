#!/usr/bin/env bash
# Restore bench (issue 16). On a generated tree shaped like a system tree
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
# mkfs.ext4), each scale size runs on a new ext4 filesystem of its own in
# an image file under BENCH_DIR (a loop device with direct I/O, so the
# image's pages are not cached twice), unmounted after: every size starts
# on an empty filesystem, and a million files need no `rm -rf` (over half
# an hour here). SCALE_FS=dir keeps them in BENCH_DIR itself. PARTS
# (default "trees scale") picks the parts to run.
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
cleanup() {
    unmount_scale_fs
    rm -rf "$T"
}
trap cleanup EXIT
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
    local src=$1 what=$2 r
    echo "== $what: $(find "$src" | wc -l) entries, $(du -sm "$src" | cut -f1) MB; $ROUNDS rounds, medians"
    echo "  step (hammer | baseline)                     hammer wall, CPU  | baseline wall, CPU | ratio (per round)        | goal"
    for r in $(seq 1 "$ROUNDS"); do
        "$H" store-create "$T/a$r" >/dev/null
        "$H" pfs-master "$T/a$r/m" >/dev/null
        "$H" store-create "$T/b$r" >/dev/null
        pair import "$r" "$H" -q import "$src" "$T/a$r/m" -- cp -a "$src" "$T/cp$r"
        pair copy "$r" "$H" -q -y mirror-copy "$T/a$r/m" "$T/b$r/s" -- bash -c 'ceiling "$1" "$2"' _ "$T/a$r" "$T/ceil$r"
        pair export "$r" "$H" -q export "$T/b$r/s" "$T/x$r" -- cp -a "$src" "$T/y$r"
        rm -rf "$T/x$r" "$T/y$r" "$T/ceil$r"
        python3 "$GEN" change "$src" "$((SEED * 100 + r))" 1
        pair update "$r" bash -c 'update "$1" "$2" "$3"' _ "$src" "$T/a$r" "$T/b$r" -- rsync -a "$src/" "$T/cp$r/"
        rm -rf "$T/a$r" "$T/b$r" "$T/cp$r"
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

# scale_fs <files>: sets S, the directory a scale size runs in. As
# root, a new ext4 filesystem big enough for the tree, its `cp -a` and
# export copies (a 4 KiB block and an inode each) and the two stores.
scale_fs() {
    if [ "${SCALE_FS:-loop}" = dir ] || [ "$(id -u)" != 0 ] ||
        ! command -v losetup >/dev/null || ! command -v mkfs.ext4 >/dev/null; then
        S=$T
        return
    fi
    local files=$1
    truncate -s $((files * 24 * 1024 + (1 << 30))) "$T/fs.img"
    mkfs.ext4 -q -F -N $((files * 4 + 100000)) "$T/fs.img"
    LOOP=$(losetup --find --show --direct-io=on "$T/fs.img")
    mkdir -p "$T/fs"
    mount "$LOOP" "$T/fs"
    S=$T/fs
}

unmount_scale_fs() {
    [ -n "$LOOP" ] || return 0
    umount "$T/fs"
    losetup -d "$LOOP"
    LOOP=
    rm -f "$T/fs.img"
}

echo "== scale: small files (100-4000 bytes, 250 a directory), one run per size"
[ "${SCALE_FS:-loop}" = dir ] || [ "$(id -u)" != 0 ] || echo "  (each size on a new ext4 filesystem in an image file on a loop device)"
printf '  %-9s %-26s %-26s %-26s %s\n' files "import s (us/file, MB)" "mirror-copy s (us/file, MB)" "export s (us/file, MB)" "cp -a s (us/file)"
declare -A FIRST LAST
for n in $SIZES; do
    scale_fs "$n"
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
    if [ -n "$LOOP" ]; then
        unmount_scale_fs
    else
        rm -rf "$S/small" "$S/sa" "$S/sb" "$S/sx" "$S/sc"
    fi
done
printf '  per file, largest vs smallest: import %sx, mirror-copy %sx, export %sx, cp -a %sx (goal <= 1.3x; RSS <= 256 MB)\n' \
    "$(ratio "${LAST[import]}" "${FIRST[import]}")" "$(ratio "${LAST[copy]}" "${FIRST[copy]}")" \
    "$(ratio "${LAST[export]}" "${FIRST[export]}")" "$(ratio "${LAST[cp]}" "${FIRST[cp]}")"

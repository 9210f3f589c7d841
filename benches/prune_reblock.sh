#!/usr/bin/env bash
# Prune + reblock bench: `hammer prune` then `hammer reblock` of a master
# PFS of about 1,000,000 records, half of them prunable, against a full
# `hammer mirror-read <pfs> > /dev/null` of the same PFS before pruning,
# each round on a fresh copy of the generated store (ROUNDS, default 3;
# medians; the read into a file on the same disk is timed too, and
# reported). Goals: (prune + reblock) <= 2x the read into /dev/null; peak
# RSS of prune and of reblock <= 256 MB. The PFS: FILES (default 333,000)
# small files (benches/lib/gentree.py, 250 a directory, 100-4000 bytes:
# an inode, a directory entry and a data record each) imported, every
# other file deleted and the tree imported again. Both imports record a
# snapshot (cli.md §13.4); the first one's is removed and one taken on
# the empty PFS kept, so that every record the second import deleted
# lived inside one bucket, between the empty PFS and the second import
# (kernel-semantics.md §6.1), and goes. Each round also times the floor
# of the store's layout (one SQLite row per record, store-format.md §3):
# the sqlite3 shell's own DELETE of exactly the rows the prune destroyed,
# with the prune's settings and a final checkpoint, on another fresh
# copy, plus a sequential copy of as many payload bytes as the reblock
# kept, synced: what any prune + reblock on this layout must at least do.
# Works under BENCH_DIR (default /var/tmp); installs time, bc, python3
# and sqlite3 with apt-get where missing.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-333000}
ROUNDS=${ROUNDS:-3}

need() {
    if ! command -v "$1" >/dev/null; then
        apt-get install -y "$2" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
    fi
}
need /usr/bin/time time
need bc bc
need python3 python3
need sqlite3 sqlite3

cargo build --release --quiet
H=${CARGO_TARGET_DIR:-$PWD/target}/release/hammer
T=$(mktemp -d "${BENCH_DIR:-/var/tmp}/prune.XXXXXX")
trap 'rm -rf "$T"' EXIT

# The generated store, $T/gen; nothing below times its making.
t0=$(date +%s)
python3 benches/lib/gentree.py small "$T/tree" 1 "$FILES"
"$H" store-create "$T/gen" >/dev/null
"$H" pfs-master "$T/gen/m" >/dev/null
"$H" -q snapq "$T/gen/m" >/dev/null
"$H" -q import "$T/tree" "$T/gen/m"
first=$("$H" snapls "$T/gen/m" | awk '/\timport / {t = $1} END {print t}')
# Names end in 3 digits (f000-f249): an even last digit is half of them.
find "$T/tree" -type f -name 'f*[02468]' -delete
"$H" -q import "$T/tree" "$T/gen/m"
"$H" -q snaprm "$T/gen/m" "$first"
echo "generated in $(($(date +%s) - t0)) s: $FILES files imported, half deleted, imported again;" \
    "snapshots kept: $("$H" snapls "$T/gen/m" | awk '/^0x/ {printf " %s", $1}')"

. benches/lib/timing.sh

# into <out> <command...>: runs it with stdout in <out> and stderr in
# $T/err, shown if it fails (which ends the bench).
into() {
    local out=$1
    shift
    "$@" >"$out" 2>"$T/err" || { cat "$T/err" >&2; exit 1; }
}

# timed <name> <out> <command...>: runs it (into <out>), appending its
# seconds to $T/<name>.s and its peak RSS in MB to $T/<name>.mb.
timed() {
    local name=$1 out=$2
    shift 2
    sync
    secs into "$out" /usr/bin/time -f %M -o "$T/rss" "$@" >>"$T/$name.s"
    awk '{printf "%.1f\n", $1 * 1024 / 1e6}' "$T/rss" >>"$T/$name.mb"
}

# floor: the two parts of the layout's floor, appended to $T/floor.s, on
# a fresh copy of the generated store; $T/st is the round's pruned and
# reblocked store. The keys to delete are listed once, untimed.
floor() {
    if [ ! -e "$T/doomed.db" ]; then
        sqlite3 "$T/doomed.db" "ATTACH '$T/gen/.hammer-store.db' AS g; ATTACH '$T/st/.hammer-store.db' AS p;
            CREATE TABLE doomed(k BLOB PRIMARY KEY) WITHOUT ROWID;
            INSERT INTO doomed SELECT k FROM g.rec EXCEPT SELECT k FROM p.rec;"
    fi
    rm -rf "$T/fl"
    cp -a "$T/gen" "$T/fl"
    sync
    local del copy kept
    del=$(secs sqlite3 "$T/fl/.hammer-store.db" "ATTACH '$T/doomed.db' AS d;
        PRAGMA cache_size=-32768; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=16384;
        DELETE FROM rec WHERE k IN (SELECT k FROM d.doomed); PRAGMA main.wal_checkpoint(TRUNCATE);")
    kept=$(stat -c %s "$T/st"/.hammer-store.pfs* | awk '{s += $1} END {print s}')
    copy=$(secs sh -c "head -c $kept '$T/gen'/.hammer-store.pfs* > '$T/fl/copy' && sync '$T/fl/copy'")
    echo "$del $copy" >>"$T/floor.s"
    rm -rf "$T/fl"
}

for r in $(seq "$ROUNDS"); do
    rm -rf "$T/st"
    cp -a "$T/gen" "$T/st"
    timed read /dev/null "$H" mirror-read "$T/st/m"
    timed readf "$T/stream" "$H" mirror-read "$T/st/m"
    rm "$T/stream"
    timed prune "$T/prune.out" "$H" prune "$T/st/m"
    timed reblock "$T/reblock.out" "$H" reblock "$T/st/m"
    rd=$(tail -n1 "$T/read.s") rf=$(tail -n1 "$T/readf.s") pr=$(tail -n1 "$T/prune.s") rb=$(tail -n1 "$T/reblock.s")
    echo "$pr + $rb" | bc -l >>"$T/both.s"
    floor
    read -r fd fc < <(tail -n1 "$T/floor.s")
    printf 'round %d: mirror-read > /dev/null %.2f s, > file %.2f s; prune %.2f s, reblock %.2f s: %.2fx, %.2fx; %s\n' \
        "$r" "$rd" "$rf" "$pr" "$rb" "$(echo "($pr + $rb) / $rd" | bc -l)" "$(echo "($pr + $rb) / $rf" | bc -l)" \
        "$(grep '^Pruned' "$T/prune.out")"
    printf '         floor of the layout: sqlite3 DELETE + checkpoint %.2f s, payload copy %.2f s: %.2fx\n' \
        "$fd" "$fc" "$(echo "($fd + $fc) / $rd" | bc -l)"
done

# Correctness first: the pruned, reblocked PFS still holds the tree.
"$H" -q export "$T/st/m" "$T/out"
diff -r "$T/tree" "$T/out" >/dev/null || { echo "export after prune + reblock differs from the tree" >&2; exit 1; }

# Pruned <raw>/<scanned> records (<directory entries>) and <bytes> bytes:
# directory entries are counted apart from the raw records.
read -r raw scanned dirs < <(sed -n 's|^Pruned \([0-9]*\)/\([0-9]*\) records (\([0-9]*\) .*|\1 \2 \3|p' "$T/prune.out")
med() { median <"$T/$1"; }
rd=$(med read.s) rf=$(med readf.s) pr=$(med prune.s) rb=$(med reblock.s) both=$(med both.s)
ratio=$(echo "$both / $rd" | bc -l)
rss=$(cat "$T/prune.mb" "$T/reblock.mb" | sort -g | tail -n1)
fd=$(awk '{print $1}' "$T/floor.s" | median) fc=$(awk '{print $2}' "$T/floor.s" | median)
fl=$(awk '{print $1 + $2}' "$T/floor.s" | median)
verdict() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo met; else echo "not met"; fi; }
printf 'PFS of %d records, %d pruned (%d directory entries); payload file %s MB before, %s MB after\n' \
    "$scanned" "$((raw + dirs))" "$dirs" \
    "$(du -m "$T/gen"/.hammer-store.pfs* | awk '{s += $1} END {print s}')" \
    "$(du -m "$T/st"/.hammer-store.pfs* | awk '{s += $1} END {print s}')"
printf 'medians of %d rounds: mirror-read > /dev/null %.2f s, > file %.2f s; prune %.2f s, reblock %.2f s, prune + reblock %.2f s\n' \
    "$ROUNDS" "$rd" "$rf" "$pr" "$rb" "$both"
printf 'prune + reblock vs mirror-read > /dev/null: %.2fx (goal <= 2x): %s; vs mirror-read > file: %.2fx\n' \
    "$ratio" "$(verdict "$ratio <= 2")" "$(echo "$both / $rf" | bc -l)"
printf 'floor of the layout (the same rows deleted by sqlite3 itself, the kept payloads copied in one run): %.2f + %.2f s, %.2fx the read; prune + reblock is %.2fx that floor\n' \
    "$fd" "$fc" "$(echo "$fl / $rd" | bc -l)" "$(echo "$both / $fl" | bc -l)"
printf 'peak RSS: mirror-read %s MB, prune %s MB, reblock %s MB (largest of the rounds; goal <= 256 MB): %s\n' \
    "$(sort -g "$T/read.mb" | tail -n1)" "$(sort -g "$T/prune.mb" | tail -n1)" \
    "$(sort -g "$T/reblock.mb" | tail -n1)" "$(verdict "$rss <= 256")"

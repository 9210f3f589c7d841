#!/usr/bin/env bash
# Bench of mirror-verify. Part 1: two identical PFSes of
# 1,000,000 records (BENCH_MV_FILES small files, default 333,334: an
# inode, an entry and a data record each), then the same with 10 records
# deleted from the slave behind the store's back: bytes exchanged with
# both sides (what crosses the wire when both are remote; one side's share
# when one is local) and the differing records found. Part 2: two
# identical PFSes of BENCH_MV_MB MiB (default 1024) of random 1 MiB files:
# mirror-verify's time against a full mirror-read of one of them (to a
# file and to /dev/null), in paired rounds (BENCH_MV_ROUNDS, default 3;
# medians). Needs python3 and sqlite3 (installed with apt-get if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
cargo build --release --quiet
H=${CARGO_TARGET_DIR:-$PWD/target}/release/hammer
FILES=${BENCH_MV_FILES:-333334}
MB=${BENCH_MV_MB:-1024}
ROUNDS=${BENCH_MV_ROUNDS:-3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. benches/lib/sshd.sh

# pair <name>: a master imported from $T/tree in store $T/<name>-m and
# its slave in store $T/<name>-s; the tree is removed.
pair() {
    "$H" store-create "$T/$1-m" >/dev/null
    "$H" store-create "$T/$1-s" >/dev/null
    "$H" pfs-master "$T/$1-m/m" >/dev/null
    "$H" -q import "$T/tree" "$T/$1-m/m" >/dev/null
    "$H" -q -y mirror-copy "$T/$1-m/m" "$T/$1-s/s" >/dev/null
    rm -rf "$T/tree"
}

# verify_bytes <name>: mirror-verify -v of the pair; prints its exit
# status, the bytes exchanged with both sides and the records it named
# (not the problems a side's checks found, which a deleted inode makes).
verify_bytes() {
    local rc=0
    "$H" -v mirror-verify "$T/$1-m/m" "$T/$1-s/s" >"$T/out" 2>"$T/err" || rc=$?
    local bytes
    bytes=$(awk '/side: / {n += $4 + $7} END {print n}' "$T/err")
    echo "$rc $bytes $(grep -c '^lo=' "$T/out")"
}

echo "== mirror-verify of two identical PFSes of $FILES small files"
python3 benches/lib/gentree.py small "$T/tree" 1 "$FILES" --size 7-12
pair small
records=$(sqlite3 "$T/small-s/.hammer-store.db" 'SELECT count(*) FROM rec WHERE pfs = 1')
read -r rc bytes named < <(verify_bytes small)
[ "$rc" = 0 ] || { cat "$T/out" "$T/err"; exit 1; }
echo "   $records records: identical, $bytes bytes exchanged (goal <= 1,000,000)"
sqlite3 "$T/small-s/.hammer-store.db" \
    'DELETE FROM rec WHERE k IN (SELECT k FROM rec WHERE pfs = 1 ORDER BY random() LIMIT 10)'
read -r rc bytes named < <(verify_bytes small)
[ "$rc" = 1 ] || { cat "$T/out" "$T/err"; exit 1; }
echo "   10 records deleted from the slave: $named records named, $bytes bytes exchanged (goal <= 2,000,000)"
rm -rf "$T/small-m" "$T/small-s"

echo "== mirror-verify of two identical PFSes of $MB MiB vs a full mirror-read, $ROUNDS rounds"
mkdir "$T/tree"
for i in $(seq 1 "$MB"); do
    head -c 1048576 /dev/urandom >"$T/tree/f$i"
done
pair big
ratios_file=() ratios_null=()
for r in $(seq 1 "$ROUNDS"); do
    read_file=$(secs sh -c "'$H' -q mirror-read '$T/big-m/m' >'$T/stream'")
    rm -f "$T/stream"
    read_null=$(secs "$H" -q mirror-read "$T/big-m/m")
    verify=$(secs "$H" mirror-verify "$T/big-m/m" "$T/big-s/s")
    printf '   round %d: mirror-read > file %.2f s, > /dev/null %.2f s, mirror-verify %.2f s\n' \
        "$r" "$read_file" "$read_null" "$verify"
    ratios_file+=("$(ratio "$verify" "$read_file")")
    ratios_null+=("$(ratio "$verify" "$read_null")")
done
echo "   mirror-verify / mirror-read > file: ${ratios_file[*]}; median $(median "${ratios_file[@]}") (goal <= 0.5)"
echo "   mirror-verify / mirror-read > /dev/null: ${ratios_null[*]}; median $(median "${ratios_null[@]}")"

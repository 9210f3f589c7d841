#!/usr/bin/env bash
# A simulated year of nightly maintenance (issue 27): a generated tree of
# FILES files (default 20,000; benches/lib/gentree.py mixed, seed 1: 5.3
# KiB on average, about 110 MB of file data), 1% of them rewritten each
# day (gentree.py change, seed = the day), DAYS (default 365) daily
# `hammer -q import` at 02:00 and `hammer -q cleanup` at 03:00 with the
# clock faked by libfaketime (preloaded into hammer, TZ=UTC, from
# 2027-01-01), under the PFS configuration `snapshots 1d 30d monthly=12`,
# `prune 1d 5m`, `reblock 1d 5m`. Goals: the store's files after the last
# cleanup <= 1.2x the bytes `hammer space` counts (live records + history
# the retained snapshots hold); a cleanup's time does not grow with the
# history kept (median of cleanups 357-365 <= 1.5x the median of cleanups
# 26-34 around the 30th, medians to ride out a shared machine's noise;
# also printed: the 365th against the 30th alone, and against cleanups
# 31-39, the first nights a snapshot of 30 days before expires); peak RSS
# of import and cleanup <= 256 MB. Also checks the retained snapshots
# against the rule (cli.md §23.3), that no history is left that no snapshot holds,
# that no prune or reblock was cut short by its max-runtime, `hammer
# verify`, and that the final state and the end-of-January snapshot export
# to the trees they were taken of. Works under BENCH_DIR (default
# /var/tmp); KEEP=1 keeps the work directory (its days.tsv has a line per
# day). Needs python3, bc, /usr/bin/time and libfaketime (package faketime).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
H=${CARGO_TARGET_DIR:-$PWD/target}/release/hammer
FILES=${FILES:-20000}
DAYS=${DAYS:-365}
START=${START:-2027-01-01}
began=$EPOCHREALTIME
FT=
for f in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1; do
    if [ -f "$f" ]; then FT=$f; break; fi
done
[ -n "$FT" ] || { echo "libfaketime not found (apt-get install faketime)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time not found (apt-get install time)" >&2; exit 1; }
T=$(mktemp -d "${BENCH_DIR:-/var/tmp}/year.XXXXXX")
if [ -n "${KEEP:-}" ]; then
    trap 'echo "kept $T"' EXIT
else
    trap 'rm -rf "$T"' EXIT
fi
. benches/lib/timing.sh

# at <date time> <hammer args...>: hammer with the clock at that UTC time
# (running on from it), under /usr/bin/time; sets WALL (seconds) and RSS
# (peak, KiB). Its output goes to "$T/out", its stderr to "$T/err"; a
# failure ends the bench.
at() {
    local when=$1 t0
    shift
    t0=$EPOCHREALTIME
    if ! /usr/bin/time -f %M -o "$T/rss" \
        env LD_PRELOAD="$FT" FAKETIME="@$when" TZ=UTC "$H" "$@" >"$T/out" 2>"$T/err"; then
        echo "hammer $* at $when failed:" >&2
        cat "$T/out" "$T/err" >&2
        exit 1
    fi
    WALL=$(echo "$EPOCHREALTIME - $t0" | bc -l)
    RSS=$(tail -n 1 "$T/rss")
}

# The apparent size of the store's files (database, WAL, shared memory,
# payload files): bytes.
store_bytes() {
    find "$T/st" -maxdepth 1 -type f -name '.hammer-store*' -printf '%s\n' |
        awk '{s += $1} END {print s + 0}'
}

python3 benches/lib/gentree.py mixed "$T/tree" 1 "$FILES"
data=$(find "$T/tree" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
printf 'tree: %d files, %d bytes of file data (%.1f KiB a file)\n' \
    "$FILES" "$data" "$(echo "$data / $FILES / 1024" | bc -l)"
"$H" store-create "$T/st" >/dev/null
"$H" pfs-master "$T/st/m" >/dev/null
P=$T/st/m
printf 'snapshots 1d 30d monthly=12\nprune 1d 5m\nreblock 1d 5m\n' >"$T/config"
"$H" config "$P" "$T/config"
snapdir=$("$H" pfs-status "$P" | sed -n 's/^ *snapshots directory defaults to //p')
[ -n "$snapdir" ] || { echo "no snapshots directory in pfs-status" >&2; exit 1; }

printf 'day\tdate\tchanged_s\timport_s\timport_kib\tcleanup_s\tcleanup_kib\tstore_bytes\tsnapshots\tpayload_file\n' \
    >"$T/days.tsv"
imax=0 cmax=0 copies=0 cut=0 file=
declare -a ctime
for d in $(seq 0 $((DAYS - 1))); do
    day=$(date -u -d "$START + $d days" +%F)
    c0=$EPOCHREALTIME
    if [ "$d" -gt 0 ]; then
        python3 benches/lib/gentree.py change "$T/tree" "$d" 1
    fi
    changed=$(echo "$EPOCHREALTIME - $c0" | bc -l)
    at "$day 02:00:00" -q import "$T/tree" "$P"
    iw=$WALL ir=$RSS
    # The tree the end-of-January snapshot holds, for the export at the end.
    if [ "${day#*-}" = 01-31 ] && [ ! -d "$T/jan31" ]; then
        cp -a "$T/tree" "$T/jan31"
    fi
    at "$day 03:00:00" -q cleanup "$P"
    cw=$WALL cr=$RSS
    ctime[d + 1]=$cw
    [ "$ir" -gt "$imax" ] && imax=$ir
    [ "$cr" -gt "$cmax" ] && cmax=$cr
    # A reblock that copied the payload file gave it a new name; a prune
    # or reblock its max-runtime cut short left its cycle file.
    now=$(cd "$T/st" && echo .hammer-store.pfs00001.*)
    [ -n "$file" ] && [ "$now" != "$file" ] && copies=$((copies + 1))
    file=$now
    for c in "$snapdir"/.prune.cycle "$snapdir"/.reblock-*.cycle; do
        if [ -e "$c" ]; then
            cut=$((cut + 1))
            echo "day $d: $(basename "$c") left: a step cut short by its max-runtime"
        fi
    done
    at "$day 03:30:00" snapls "$P"
    snaps=$(($(wc -l <"$T/out") - 2))
    size=$(store_bytes)
    printf '%d\t%s\t%.3f\t%.3f\t%d\t%.3f\t%d\t%d\t%d\t%s\n' "$d" "$day" "$changed" \
        "$iw" "$ir" "$cw" "$cr" "$size" "$snaps" "$now" >>"$T/days.tsv"
    if [ $(((d + 1) % 30)) = 0 ] || [ "$d" = $((DAYS - 1)) ]; then
        printf 'day %3d %s: import %.2f s, cleanup %.2f s, store %d MB, %d snapshots, %d payload copies\n' \
            $((d + 1)) "$day" "$iw" "$cw" $((size / 1000000)) "$snaps" "$copies"
    fi
done
last=$(date -u -d "$START + $((DAYS - 1)) days" +%F)

# What space counts: live and history bytes, and what no snapshot holds.
at "$last 04:00:00" space "$P"
cat "$T/out"
read -r live_b hist_b < <(sed -n \
    's/.*: live [0-9]* records, \([0-9]*\) bytes; history [0-9]* records, \([0-9]*\) bytes$/\1 \2/p' "$T/out")
unheld=$(sed -n 's/^ *held by no snapshot: [0-9]* records, \([0-9]*\) bytes.*/\1/p' "$T/out")
size=$(store_bytes)
need=$((live_b + hist_b))
echo "store files after the last cleanup:"
find "$T/st" -maxdepth 1 -type f -name '.hammer-store*' -printf '  %f %s\n'
printf 'store %d bytes vs live %d + history %d = %d bytes: %.3fx (goal <= 1.2x); history held by no snapshot: %d bytes (want 0)\n' \
    "$size" "$live_b" "$hist_b" "$need" "$(echo "$size / $need" | bc -l)" "$unheld"

# The retained snapshots against the rule: those of the last 30 days
# (less than 30 days before the last cleanup) and the newest of each of
# the 12 newest months.
at "$last 04:00:00" snapls "$P"
got=$(tail -n +3 "$T/out" | cut -f2 | cut -c1-10 | sort)
cutoff=$(($(date -u -d "$last 03:00:00" +%s) - 30 * 86400))
want=$(for d in $(seq 0 $((DAYS - 1))); do date -u -d "$START + $d days" +'%F %s'; done |
    awk -v cutoff="$cutoff" '
        { day[NR] = $1; month[NR] = substr($1, 1, 7); t[NR] = $2 + 7200 }
        END {
            for (i = NR; i >= 1; i--) {
                keep = t[i] >= cutoff
                if (month[i] != seen && months < 12) { seen = month[i]; months++; keep = 1 }
                if (keep) print day[i]
            }
        }' | sort)
kept=$(echo "$got" | grep -c .)
monthly=$(echo "$got" | awk -v c="$(date -u -d "$last - 29 days" +%F)" '$0 < c' | grep -c . || true)
echo "retained snapshots: $kept ($((kept - monthly)) of the last 30 days, $monthly older ones kept by monthly=12)"
if [ "$got" != "$want" ]; then
    echo "retained snapshots differ from the rule's:" >&2
    diff <(echo "$want") <(echo "$got") >&2 || true
    exit 1
fi

# The data: verify, the last state and the end-of-January snapshot exported.
at "$last 04:00:00" verify "$P"
tail -n 1 "$T/out"
at "$last 04:00:00" export "$P" "$T/x-last"
diff -r "$T/tree" "$T/x-last" >/dev/null || { echo "final export differs from the tree" >&2; exit 1; }
if [ -d "$T/jan31" ]; then
    at "$last 04:00:00" snapls "$P"
    tid=$(awk -F'\t' -v d="$(date -u -d "$START" +%Y)-01-31" 'index($2, d) == 1 {print $1}' "$T/out" | tail -n 1)
    [ -n "$tid" ] || { echo "no end-of-January snapshot" >&2; exit 1; }
    at "$last 04:00:00" export "$P@@$tid" "$T/x-jan"
    diff -r "$T/jan31" "$T/x-jan" >/dev/null || { echo "January snapshot export differs" >&2; exit 1; }
    echo "exports of the last state and of the snapshot of $(date -u -d "$START" +%Y)-01-31 ($tid) match their trees"
fi

if [ "$DAYS" -ge 365 ]; then
    around30=$(median "${ctime[@]:26:9}")
    first=$(median "${ctime[@]:31:9}")
    late=$(median "${ctime[@]:357:9}")
    printf 'cleanup wall time (medians of 9 nights, to ride out noise): cleanups 357-365 %.3f s; against cleanups 26-34 around the 30th, before and after the first expiry, %.3f s: %.2fx (goal <= 1.5x); against cleanups 31-39, the first nights a snapshot expires, %.3f s: %.2fx; single runs: 30th %.3f s, 31st %.3f s, 365th %.3f s: 365th vs 30th %.2fx\n' \
        "$late" "$around30" "$(echo "$late / $around30" | bc -l)" "$first" "$(echo "$late / $first" | bc -l)" \
        "${ctime[30]}" "${ctime[31]}" "${ctime[365]}" "$(echo "${ctime[365]} / ${ctime[30]}" | bc -l)"
fi
printf 'peak RSS: import %d MB, cleanup %d MB (goal <= 256 MB)\n' $((imax / 1024)) $((cmax / 1024))
echo "payload file copied by reblock $copies times; steps cut short by their max-runtime: $cut"
printf 'total wall time %.0f s\n' "$(echo "$EPOCHREALTIME - $began" | bc -l)"

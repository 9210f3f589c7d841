#!/usr/bin/env bash
# Bench of -z: mirror-copy over real ssh to 127.0.0.1 through
# a link held to BENCH_Z_RATE bytes/s each way (default 12500000, 100
# Mbit/s; a token-bucket relay as ssh's ProxyCommand, so ssh -C compresses
# before the link as it would before a real one), plain vs -X (ssh -C) vs
# -z, on a text-heavy tree (BENCH_Z_TREE, default /usr/share) and on
# random data (BENCH_Z_RANDOM_MB, default 128); then random data over the
# unthrottled loopback, where only CPU counts. Prints times, rates and
# ratios measured in this run. Needs sshd, ssh, ssh-keygen, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
H=$PWD/target/release/hammer
RATE=${BENCH_Z_RATE:-12500000}
TREE=${BENCH_Z_TREE:-/usr/share}
RANDOM_MB=${BENCH_Z_RANDOM_MB:-128}
T=$(mktemp -d)
. benches/lib/sshd.sh
cleanup() {
    stop_sshd
    rm -rf "$T"
}
trap cleanup EXIT

start_sshd "$T"
# The link: a token bucket of RATE bytes/s (64 KiB burst) each way.
cat >"$T/link.py" <<'EOF'
import os, socket, sys, threading, time
host, port, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((host, port))
def pump(read, write, done):
    allowance, last, burst = 0.0, time.monotonic(), 65536.0
    while True:
        data = read(16384)
        if not data:
            break
        while True:
            now = time.monotonic()
            allowance = min(burst, allowance + (now - last) * rate)
            last = now
            if allowance >= len(data):
                allowance -= len(data)
                break
            time.sleep((len(data) - allowance) / rate)
        write(data)
    done()
def out(d):
    v = memoryview(d)
    while v:
        v = v[os.write(1, v):]
up = threading.Thread(target=pump, daemon=True, args=(
    lambda n: os.read(0, n), s.sendall, lambda: s.shutdown(socket.SHUT_WR)))
up.start()
pump(s.recv, out, lambda: None)
EOF
link_rsh slow "python3 $T/link.py 127.0.0.1 $PORT $RATE"
link_rsh fast ""

"$H" store-create "$T/src" >/dev/null
"$H" pfs-master "$T/src/text" >/dev/null
"$H" pfs-master "$T/src/random" >/dev/null
"$H" -q import "$TREE" "$T/src/text" >/dev/null
mkdir "$T/rtree"
for i in $(seq 1 $((RANDOM_MB / 8))); do
    head -c 8388608 /dev/urandom >"$T/rtree/f$i"
done
"$H" -q import "$T/rtree" "$T/src/random" >/dev/null
rm -rf "$T/rtree"
"$H" store-create "$T/dst" >/dev/null

# copy_secs <slave> <link> <pfs> [options]: one mirror-copy to the new
# slave <slave>, in seconds.
copy_secs() {
    local slave=$T/dst/$1 link=$2 pfs=$3 t0 t1 status
    shift 3
    t0=$(date +%s.%N)
    HAMMER_RSH="$T/rsh.$link" "$H" -y -B "$@" mirror-copy "$T/src/$pfs" "localhost:$slave" \
        >/dev/null 2>"$T/err" || { cat "$T/err" >&2; exit 1; }
    t1=$(date +%s.%N)
    # It must have arrived (not `| grep -q`: pfs-status would meet EPIPE).
    status=$("$H" pfs-status "$slave")
    grep -q 'operating as a SLAVE' <<<"$status"
    echo "$t1 - $t0" | bc -l
}
stream_mb() { "$H" -B mirror-read "$T/src/$1" 2>/dev/null | wc -c | awk '{printf "%.0f", $1 / 1000000}'; }
row() { printf '   %-28s %7.1f s  %6.1f MB/s\n' "$1" "$2" "$(echo "$3 / $2" | bc -l)"; }

for pfs in text random; do
    mb=$(stream_mb $pfs)
    plain=$(copy_secs $pfs-plain slow $pfs)
    x=$(copy_secs $pfs-X slow $pfs -X)
    z=$(copy_secs $pfs-z slow $pfs -z)
    echo "== $pfs PFS ($mb MB of stream) over ssh through a $((RATE * 8 / 1000000)) Mbit/s link"
    row "plain" "$plain" "$mb"
    row "-X (ssh -C)" "$x" "$mb"
    row "-z" "$z" "$mb"
    echo "   -z vs plain: $(ratio "$plain" "$z")x   -z vs -X: $(ratio "$x" "$z")x"
done
echo "   goals: text -z >= 2.5x plain and >= 1.5x -X; random -z >= 0.9x plain"

mb=$(stream_mb random)
ratios=()
for round in 1 2 3 4 5; do
    plain=$(copy_secs fast-plain$round fast random)
    z=$(copy_secs fast-z$round fast random -z)
    ratios+=("$(ratio "$plain" "$z")")
done
med=$(median "${ratios[@]}")
echo "== random PFS ($mb MB) over ssh on the unthrottled loopback (CPU-bound), 5 pairs"
echo "   -z vs plain: ${ratios[*]}; median ${med}x (goal >= 0.9x: incompressible data costs <= 10%)"

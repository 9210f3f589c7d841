#!/usr/bin/env bash
# Bench: mirror-copy of a store PFS over real ssh to 127.0.0.1 against the
# same copy between two local sides, timed in one run, printing
# rates and their ratio. Needs sshd, ssh and ssh-keygen (openssh-server,
# openssh-client); starts its own sshd on a free loopback port with
# throwaway keys. Size: BENCH_SSH_MB (default 512).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
H=$PWD/target/release/hammer
MB=${BENCH_SSH_MB:-512}
T=$(mktemp -d)
. benches/lib/sshd.sh
cleanup() {
    stop_sshd
    rm -rf "$T"
}
trap cleanup EXIT

start_sshd "$T"

# A master holding MB MiB of 512 KiB files (16 KiB data records).
mkdir "$T/tree"
for i in $(seq 1 $((MB * 2))); do
    head -c 524288 /dev/urandom >"$T/tree/f$i"
done
"$H" store-create "$T/src" >/dev/null
"$H" pfs-master "$T/src/m" >/dev/null
"$H" import "$T/tree" "$T/src/m" >/dev/null
"$H" store-create "$T/dst" >/dev/null

read_s=$(secs "$H" -B mirror-read "$T/src/m")
local_s=$(secs "$H" -y -B mirror-copy "$T/src/m" "$T/dst/local")
ssh_s=$(HAMMER_RSH="$T/rsh" secs "$H" -y -B mirror-copy "$T/src/m" "localhost:$T/dst/remote")
# The copy over ssh must have arrived. (Not `| grep -q`: grep leaves at
# the first match, and pfs-status then fails writing the rest, EPIPE.)
status=$("$H" pfs-status "$T/dst/remote")
grep -q 'operating as a SLAVE' <<<"$status"

rate() { printf '%.0f' "$(echo "$MB * 1.048576 / $1" | bc -l)"; }
echo "== mirror-copy of a $MB MiB PFS, over a socketpair and over ssh to 127.0.0.1"
echo "   mirror-read > /dev/null:     $(rate "$read_s") MB/s"
echo "   mirror-copy, local:          $(rate "$local_s") MB/s"
echo "   mirror-copy, over ssh:       $(rate "$ssh_s") MB/s, $(printf '%.2f' "$(echo "$local_s / $ssh_s" | bc -l)") of the local copy"

#!/usr/bin/env bash
# A throwaway 3-node Garage cluster on 127.0.0.1 for the object-storage
# tests: each node its own directory, RPC and S3 port; replication factor
# 3, so one node may be down and every write still finds a quorum.
#
#   cluster.sh start <dir> [first-port]   start it; writes <dir>/env
#   cluster.sh stop <dir>                 stop every node
#   cluster.sh stop-node <dir> <n>        stop node n (1-3)
#   cluster.sh start-node <dir> <n>       start node n again
#   cluster.sh bucket <dir> <name>        create a bucket the test key owns
#
# GARAGE names the garage binary (default: garage on PATH).
set -euo pipefail
GARAGE=${GARAGE:-garage}
cmd=$1 dir=$2

node_start() {
    local n=$1
    "$GARAGE" -c "$dir/n$n.toml" server >"$dir/n$n.log" 2>&1 &
    echo $! >"$dir/n$n.pid"
}

node_stop() {
    local n=$1 pid
    pid=$(cat "$dir/n$n.pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/n$n.pid"
}

g() { "$GARAGE" -c "$dir/n1.toml" "$@"; }

case $cmd in
start)
    port=${3:-39000}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    for n in 1 2 3; do
        rpc=$((port + 10 * n + 1)) s3=$((port + 10 * n))
        mkdir -p "$dir/n$n/meta" "$dir/n$n/data"
        cat >"$dir/n$n.toml" <<TOML
metadata_dir = "$dir/n$n/meta"
data_dir = "$dir/n$n/data"
db_engine = "lmdb"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$secret"
metadata_fsync = false
data_fsync = false

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"
TOML
        chmod 600 "$dir/n$n.toml"
        node_start "$n"
    done
    for _ in $(seq 100); do g status >/dev/null 2>&1 && break; sleep 0.2; done
    for n in 2 3; do
        id=$("$GARAGE" -c "$dir/n$n.toml" node id -q 2>/dev/null)
        g node connect "$id" >/dev/null
    done
    for n in 1 2 3; do
        id=$("$GARAGE" -c "$dir/n$n.toml" node id -q 2>/dev/null | cut -d@ -f1)
        g layout assign -z dc1 -c 1G "$id" >/dev/null
    done
    g layout apply --version 1 >/dev/null
    key_id=GK$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
    key_secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    for _ in $(seq 100); do
        g key import --yes -n hammer-test "$key_id" "$key_secret" >/dev/null 2>&1 && break
        sleep 0.2
    done
    cat >"$dir/env" <<ENV
HAMMER_S3_ENDPOINT=http://127.0.0.1:$((port + 10))
HAMMER_S3_ENDPOINT_2=http://127.0.0.1:$((port + 20))
AWS_ACCESS_KEY_ID=$key_id
AWS_SECRET_ACCESS_KEY=$key_secret
AWS_REGION=garage
GARAGE=$(command -v "$GARAGE")
ENV
    echo "garage cluster up in $dir (S3 on 127.0.0.1:$((port + 10)), :$((port + 20)), :$((port + 30)))"
    ;;
stop)
    for n in 1 2 3; do node_stop "$n"; done
    ;;
stop-node) node_stop "$3" ;;
start-node) node_start "$3" ;;
bucket)
    g bucket create "$3" >/dev/null
    key_id=$(sed -n 's/^AWS_ACCESS_KEY_ID=//p' "$dir/env")
    g bucket allow --read --write --owner "$3" --key "$key_id" >/dev/null
    ;;
*)
    echo "usage: cluster.sh start|stop|stop-node|start-node|bucket <dir> ..." >&2
    exit 2
    ;;
esac

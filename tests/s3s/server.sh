#!/usr/bin/env bash
# s3s-fs (the s3s project's S3 server on a directory) on 127.0.0.1 for the
# object-storage tests that need a server honouring conditional writes
# (If-None-Match / If-Match on PUT, as AWS S3 does; Garage ignores them).
#
#   server.sh start <dir> [port]   start it; writes <dir>/env
#   server.sh stop <dir>           stop it
#   server.sh bucket <dir> <name>  create a bucket (a directory of its root)
#
# S3S_FS names the s3s-fs binary (default: s3s-fs on PATH).
set -euo pipefail
S3S_FS=${S3S_FS:-s3s-fs}
cmd=$1 dir=$2

case $cmd in
start)
    port=${3:-39100}
    mkdir -p "$dir/data"
    dir=$(cd "$dir" && pwd)
    key_id=S3S$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
    key_secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    "$S3S_FS" --host 127.0.0.1 --port "$port" --access-key "$key_id" \
        --secret-key "$key_secret" "$dir/data" >"$dir/server.log" 2>&1 &
    echo $! >"$dir/server.pid"
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    cat >"$dir/env" <<ENV
HAMMER_S3_ENDPOINT=http://127.0.0.1:$port
AWS_ACCESS_KEY_ID=$key_id
AWS_SECRET_ACCESS_KEY=$key_secret
AWS_REGION=us-east-1
S3S_FS=$(command -v "$S3S_FS")
ENV
    echo "s3s-fs up in $dir (S3 on 127.0.0.1:$port)"
    ;;
stop)
    pid=$(cat "$dir/server.pid" 2>/dev/null) || exit 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/server.pid"
    ;;
bucket) mkdir "$dir/data/$3" ;;
*)
    echo "usage: server.sh start|stop|bucket <dir> ..." >&2
    exit 2
    ;;
esac

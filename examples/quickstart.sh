#!/usr/bin/env bash
# The whole job on the embedded store, printing each command it runs:
# build hammer, create two stores, import this project's source tree into a
# master, mirror-copy it to a slave, change files, re-import, copy
# incrementally, show the incremental stream with mirror-dump, and export
# the slave as of both TIDs, checking each export against what was imported
# then (contents with diff -r, and modes and mtimes). Exits non-zero on any
# difference. Needs only a Rust toolchain; leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."

run() {
    printf '+ %s\n' "$*" >&2
    "$@"
}

# Type, mode and mtime (to the microsecond HAMMER keeps) of every path.
attrs() {
    (cd "$1" && find . -printf '%p %y %m %T@\n' | sed -E 's/(\.[0-9]{6})[0-9]*$/\1/' | sort)
}

# An export must equal the tree as it was imported.
check() {
    run diff -r --no-dereference "$1" "$2"
    run diff <(attrs "$1") <(attrs "$2")
    echo "== $2 matches $1"
}

run cargo build --release
hammer=${CARGO_TARGET_DIR:-$PWD/target}/release/hammer
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A copy of the sources to change, so the project itself stays untouched.
run cp -a src "$work/tree"
run "$hammer" store-create "$work/store-a"
run "$hammer" store-create "$work/store-b"
run "$hammer" pfs-master "$work/store-a/master"

out=$(run "$hammer" import "$work/tree" "$work/store-a/master")
echo "$out"
tid1=${out##* }
run cp -a "$work/tree" "$work/tree-at-1"
run "$hammer" -y mirror-copy "$work/store-a/master" "$work/store-b/slave"

# Change some files: edit, add, remove, chmod, a symlink.
run sed -i '$a // changed by the quickstart' "$work/tree/lib.rs"
run cp "$work/tree/main.rs" "$work/tree/added.rs"
run rm "$work/tree/errno.rs"
run chmod 600 "$work/tree/fsio.rs"
run ln -s ../lib.rs "$work/tree/wire/lib-link"

out=$(run "$hammer" import "$work/tree" "$work/store-a/master")
echo "$out"
tid2=${out##* }
run cp -a "$work/tree" "$work/tree-at-2"
run "$hammer" mirror-copy "$work/store-a/master" "$work/store-b/slave"

# The changes as a stream: only what the second import wrote.
printf '+ %s | %s\n' "$hammer mirror-read $work/store-a/master $tid2" "$hammer mirror-dump" >&2
"$hammer" mirror-read "$work/store-a/master" "$tid2" | "$hammer" mirror-dump

run "$hammer" pfs-status "$work/store-b/slave"
run "$hammer" export "$work/store-b/slave@@$tid1" "$work/export-1"
check "$work/tree-at-1" "$work/export-1"
run "$hammer" export "$work/store-b/slave@@$tid2" "$work/export-2"
check "$work/tree-at-2" "$work/export-2"
echo "quickstart: both exports of the slave match what was imported"

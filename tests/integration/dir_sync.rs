//! Directory entries the store depends on are durable: a PFS link (made
//! or removed) and a new payload file are followed by an fsync of the
//! directory holding them, seen in the system calls the binary makes.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// The system calls `hammer args...` makes (answering "y" to questions),
/// one per line, descriptors shown with their paths (`-y`); strace must
/// be installed.
fn traced(args: &[&str]) -> Vec<String> {
    let log = tempfile::NamedTempFile::new().unwrap();
    let out = run_with_input(
        Command::new("strace")
            .args(["-f", "-y", "-qq", "-o"])
            .arg(log.path())
            .args([
                "-e",
                "trace=symlink,symlinkat,unlink,unlinkat,openat,fsync,fdatasync",
            ])
            .arg(env!("CARGO_BIN_EXE_hammer"))
            .args(args),
        b"y\ny\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The first sync after the first call containing `made` is an fsync
/// of directory `dir`: nothing else (the database's commit) comes first.
#[track_caller]
fn synced_after(calls: &[String], made: &str, dir: &Path) {
    let at = calls
        .iter()
        .position(|l| l.contains(made))
        .unwrap_or_else(|| panic!("no {made:?} in\n{}", calls.join("\n")));
    let dir = format!("<{}>)", dir.display());
    let first = calls[at..].iter().find(|l| l.contains("sync("));
    assert!(
        first.is_some_and(|l| l.contains(" fsync(") && l.contains(&dir)),
        "the first sync after {made:?} is not {dir}:\n{}",
        calls[at..].join("\n")
    );
}

#[test]
#[ignore = "needs strace: cargo test -- --include-ignored, as .ci/run does"]
fn a_pfs_link_and_a_new_payload_file_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap().join("s");
    ok(&["store-create", root.to_str().unwrap()]);
    let m = root.join("master");
    let calls = traced(&["pfs-master", m.to_str().unwrap()]);
    synced_after(&calls, "symlink(\"@@PFS00001\"", &root);

    let t = dir.path().join("t");
    fs::create_dir(&t).unwrap();
    fs::write(t.join("f"), vec![7u8; 100_000]).unwrap();
    let calls = traced(&["import", t.to_str().unwrap(), m.to_str().unwrap()]);
    synced_after(&calls, ".hammer-store.pfs00001.0\", O_RDWR|O_CREAT", &root);

    let calls = traced(&["pfs-destroy", m.to_str().unwrap()]);
    synced_after(&calls, &format!("unlink(\"{}\")", m.display()), &root);
}

//! A full filesystem, on a small tmpfs the test mounts: an import or a
//! mirror-write that fails with ENOSPC gives its uncommitted payload bytes
//! back before it exits, so pfs-destroy works on the still crowded
//! filesystem and a rerun after freeing space converges.

use std::fs;
use std::path::Path;

use crate::common::*;

fn free_bytes(dir: &Path) -> u64 {
    let s = nix::sys::statvfs::statvfs(dir).unwrap();
    s.blocks_available() as u64 * s.fragment_size() as u64
}

/// ENOSPC as the store reports it, or (MIRROR_WRITE through the kernel
/// double) as HAMMER's HEAD_ERROR in the original's words.
fn no_space(stderr: &[u8]) -> bool {
    let e = text(stderr);
    [
        "No space left on device",
        "database or disk is full",
        "fatal error 28",
    ]
    .iter()
    .any(|m| e.contains(m))
}

#[test]
#[ignore = "needs root: mounts a tmpfs"]
fn import_out_of_space_gives_its_tail_back() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = Tmpfs::mount(&dir.path().join("mnt"), 32);
    let root = store_with_master(&mnt.0, "s");
    let master = root.join("master");
    // Random bytes: nothing in them repeats.
    let tree = tree(
        dir.path(),
        (0..3).map(|i| (format!("f{i}"), Rng(i + 1).bytes(8 << 20))),
    );
    let filler = mnt.0.join("filler");
    fs::write(&filler, Rng(99).bytes(16 << 20)).unwrap();
    let free = free_bytes(&mnt.0);

    let out = run(&["import", tree.to_str().unwrap(), master.to_str().unwrap()]);
    assert!(!out.status.success() && no_space(&out.stderr), "{out:?}");
    assert_no_payload_tail(&root, 1);
    assert!(
        free_bytes(&mnt.0) + (1 << 20) >= free,
        "space not given back"
    );

    // Still crowded by the filler: destroy works.
    destroy(&master);
    // With space freed, a new master takes the whole tree.
    fs::remove_file(&filler).unwrap();
    ok(&["pfs-master", master.to_str().unwrap()]);
    ok(&["import", tree.to_str().unwrap(), master.to_str().unwrap()]);
    let got = dir.path().join("out");
    ok(&["export", master.to_str().unwrap(), got.to_str().unwrap()]);
    for i in 0..3 {
        let f = format!("f{i}");
        assert!(fs::read(got.join(&f)).unwrap() == fs::read(tree.join(&f)).unwrap());
    }
}

#[test]
#[ignore = "needs root: mounts a tmpfs"]
fn mirror_write_out_of_space_gives_its_tail_back() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    // About 24 MB of payloads.
    make_history(&src, 600, 1, 40_000);
    let mnt = Tmpfs::mount(&dir.path().join("mnt"), 32);
    let root = new_store(&mnt.0, "s");
    let slave = root.join("slave");
    let filler = mnt.0.join("filler");
    fs::write(&filler, Rng(7).bytes(16 << 20)).unwrap();
    let m = src.join("master");
    let copy = || {
        pipe(
            &["mirror-read", m.to_str().unwrap()],
            &["-y", "mirror-write", slave.to_str().unwrap()],
        )
    };

    let (_, w) = copy();
    assert!(!w.status.success() && no_space(&w.stderr), "{w:?}");
    assert_no_payload_tail(&root, 1);

    // A rerun after freeing space converges.
    fs::remove_file(&filler).unwrap();
    let (r, w) = copy();
    assert!(
        r.status.success() && w.status.success(),
        "{}",
        text(&w.stderr)
    );
    assert_mirrored((&src, 1), (&root, 1));
    destroy(&slave);
}

#[test]
#[ignore = "needs root: mounts a tmpfs"]
fn a_fanned_out_target_on_a_full_disk_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    // About 24 MB of payloads.
    make_history(&src, 600, 1, 40_000);
    let mnt = Tmpfs::mount(&dir.path().join("mnt"), 16);
    let small = new_store(&mnt.0, "s");
    let m = src.join("master");
    let big = src.join("roomy");
    let out = run(&[
        "-y",
        "mirror-copy",
        m.to_str().unwrap(),
        big.to_str().unwrap(),
        small.join("slave").to_str().unwrap(),
    ]);
    // Target 2 failed: 16 + bit 1.
    assert_eq!(out.status.code(), Some(18), "{}", text(&out.stderr));
    assert!(no_space(&out.stderr), "{}", text(&out.stderr));
    assert_no_payload_tail(&small, 1);
    assert_mirrored((&src, 1), (&src, 2));
}

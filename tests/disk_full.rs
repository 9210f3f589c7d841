//! A full filesystem, on a small tmpfs the test mounts: an import or a
//! mirror-write that fails with ENOSPC gives its uncommitted payload bytes
//! back before it exits, so pfs-destroy works on the still crowded
//! filesystem and a rerun after freeing space converges.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// A tmpfs of `mib` MiB at `dir`, unmounted when dropped; None (with the
/// reason printed) where mounting is refused.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u32) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            Ok(o) => {
                eprintln!(
                    "not run: mount -t tmpfs failed (needs root): {}",
                    text(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("not run: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `n` bytes no two runs of which repeat.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn free_bytes(dir: &Path) -> u64 {
    let s = nix::sys::statvfs::statvfs(dir).unwrap();
    s.blocks_available() as u64 * s.fragment_size() as u64
}

fn destroy(pfs: &Path) -> std::process::Output {
    let mut c = hammer()
        .args(["-d", "pfs-destroy", pfs.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b"y\ny\n").unwrap();
    c.wait_with_output().unwrap()
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
    let Some(mnt) = Tmpfs::mount(&dir.path().join("mnt"), 32) else {
        return;
    };
    let root = store_with_master(&mnt.0, "s");
    let master = root.join("master");
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    for i in 0..3 {
        fs::write(tree.join(format!("f{i}")), noise(8 << 20, i + 1)).unwrap();
    }
    let filler = mnt.0.join("filler");
    fs::write(&filler, noise(16 << 20, 99)).unwrap();
    let free = free_bytes(&mnt.0);

    let out = run(&["import", tree.to_str().unwrap(), master.to_str().unwrap()]);
    assert!(!out.status.success() && no_space(&out.stderr), "{out:?}");
    assert_no_payload_tail(&root, 1);
    assert!(
        free_bytes(&mnt.0) + (1 << 20) >= free,
        "space not given back"
    );

    // Still crowded by the filler: destroy works.
    let out = destroy(&master);
    assert!(out.status.success(), "{}", text(&out.stdout));
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
    let Some(mnt) = Tmpfs::mount(&dir.path().join("mnt"), 32) else {
        return;
    };
    let root = mnt.0.join("s");
    ok(&["store-create", root.to_str().unwrap()]);
    let slave = root.join("slave");
    let filler = mnt.0.join("filler");
    fs::write(&filler, noise(16 << 20, 7)).unwrap();
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
    let out = destroy(&slave);
    assert!(out.status.success(), "{}", text(&out.stdout));
}

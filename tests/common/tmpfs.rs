//! A small tmpfs the root-only tests mount (a full disk, a mount point
//! inside a tree): mounted or the test fails saying why, unmounted when
//! dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::text;

/// A tmpfs mounted at its path, which `.0` is.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    /// A tmpfs of `mib` MiB at `dir` (made if missing). The tests that
    /// call it are ignored but for `--include-ignored` as root, so a
    /// refused mount fails them rather than passing them unseen.
    pub fn mount(dir: &Path, mib: u32) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount(8) runs");
        assert!(
            out.status.success(),
            "mount -t tmpfs failed (needs root): {}",
            text(&out.stderr).trim()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

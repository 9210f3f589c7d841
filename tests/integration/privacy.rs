//! A store keeps what it holds from other local users: it is made private
//! (directory 0700, files 0600) whatever the umask, files made later take
//! the database file's mode, a store others may read is reported once,
//! and a user given read access only (a group, on purpose) can run every
//! read-only command while a change says what needs write access.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

const NEEDS: &str = "needs root (runuser): cargo test -- --include-ignored, as .ci/run does";

/// `hammer args...` as the user nobody (group nogroup): a copy of the
/// binary in `dir`, as nobody may not reach the build directory (a fresh
/// clone's is under a private temporary directory).
pub(crate) fn as_nobody(dir: &Path, args: &[&str]) -> Output {
    let bin = dir.join("hammer");
    if !bin.exists() {
        fs::copy(env!("CARGO_BIN_EXE_hammer"), &bin).unwrap();
    }
    Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&bin)
        .args(args)
        .output()
        .expect(NEEDS)
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// A store under umask 0 holding a root-only file with a secret, its
/// directory open to everyone so that nobody can reach the store's.
fn store_with_secret(dir: &Path) -> std::path::PathBuf {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.join("store");
    let t = tree(dir, [("secret", b"SECRET-1234\n".repeat(1000))]);
    fs::set_permissions(t.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 0; h='{}'; \"$h\" store-create '{r}' && \"$h\" pfs-master '{r}/master' && \"$h\" -q import '{t}' '{r}/master'",
            env!("CARGO_BIN_EXE_hammer"),
            r = root.display(),
            t = t.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    root
}

#[test]
#[ignore = "needs root (runuser): cargo test -- --include-ignored, as .ci/run does"]
fn a_store_is_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_secret(dir.path());
    assert_eq!(mode(&root), 0o700);
    let mut files = 0;
    for e in fs::read_dir(&root).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_file() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
            files += 1;
        }
    }
    // The database, its WAL files and the payload file.
    assert!(files >= 4, "{files} files");
    // Before: 0755 and 0644, and nobody found the secret in the payload file.
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", "grep", "-rc", "SECRET"])
        .arg(&root)
        .output()
        .expect(NEEDS);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
}

#[test]
#[ignore = "needs root (runuser): cargo test -- --include-ignored, as .ci/run does"]
fn a_group_given_read_access_reads_and_a_change_says_what_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_secret(dir.path());
    let master = root.join("master");
    let m = master.to_str().unwrap();
    // Shared with nobody's group on purpose, as README's store-create says.
    let st = Command::new("chgrp")
        .args(["-R", "nogroup"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("chmod")
        .args(["-R", "g+rX"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success());
    // Read-only commands work, and say nothing of the store's modes.
    for args in [
        vec!["pfs-status", m],
        vec!["snapls", m],
        vec!["verify", m],
        vec!["mirror-read", m],
    ] {
        let out = as_nobody(dir.path(), &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(
            !text(&out.stderr).contains("warning"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let restored = dir.path().join("restored");
    fs::create_dir(&restored).unwrap();
    std::os::unix::fs::chown(&restored, Some(65534), Some(65534)).unwrap();
    let out = as_nobody(
        dir.path(),
        &["-F", "-q", "export", m, restored.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read(restored.join("secret")).unwrap(),
        b"SECRET-1234\n".repeat(1000)
    );
    // A change names what needs write access.
    let t = tree(dir.path(), [("other", b"x".to_vec())]);
    let out = as_nobody(dir.path(), &["import", t.to_str().unwrap(), m]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_has(
        &out,
        &format!(
            "{}: write access needed: this command changes the store",
            root.join(".hammer-store.db").display()
        ),
    );
    // The owner's store is as it was and still the owner's to change.
    ok(&["-q", "import", t.to_str().unwrap(), m]);
}

#[test]
#[ignore = "needs root (runuser): cargo test -- --include-ignored, as .ci/run does"]
fn a_store_others_may_read_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_secret(dir.path());
    let st = Command::new("chmod")
        .args(["-R", "o+rX"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success());
    let m = root.join("master");
    let out = ok(&["pfs-status", m.to_str().unwrap(), m.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(
        err.matches("can be read by other users").count(),
        1,
        "{err}"
    );
    assert!(
        err.contains(&format!("chmod -R o-rwx {}", root.display())),
        "{err}"
    );
}

//! `hammer mount` as a user who is not root (nobody, who may read the
//! store): it mounts through fuse3's setuid fusermount3, read-only, reads
//! as the user, and `hammer umount` as the user unmounts and ends it; a
//! mount point the user may not write is refused in fusermount3's words;
//! without fusermount3 in PATH it refuses with one line naming it. Needs
//! root (runuser), and for the mount fuse3 installed and /dev/fuse open
//! to users (mode 0666, as udev makes it; .ci/run sets it in a container).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::*;

/// Where nobody finds fusermount3.
const PATH: &str = "PATH=/usr/bin:/bin";

const NEEDS: &str = "needs root (runuser), fuse3 and /dev/fuse mode 0666: cargo test -- --include-ignored, as .ci/run does";

/// `hammer args...` as nobody, with `env` (`KEY=value` words) only: a
/// copy of the binary in `dir`, which nobody may reach (the build
/// directory may be private).
fn as_nobody(dir: &Path, env: &[&str], args: &[&str]) -> Command {
    let bin = dir.join("hammer");
    if !bin.exists() {
        fs::copy(env!("CARGO_BIN_EXE_hammer"), &bin).unwrap();
    }
    let mut c = Command::new("runuser");
    c.args(["-u", "nobody", "--", "/usr/bin/env", "-i"])
        .args(env)
        .arg(&bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null());
    c
}

/// A store nobody may read holding a master PFS with one file, and a
/// mount point of nobody's, in `dir` (opened to nobody).
fn nobodys_store(dir: &Path) -> (PathBuf, PathBuf) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let store = store_with_master(dir, "store");
    let t = tree(dir, [("notes", b"hello\n".to_vec())]);
    ok(&[
        "-q",
        "import",
        t.to_str().unwrap(),
        store.join("master").to_str().unwrap(),
    ]);
    let mnt = dir.join("mnt");
    fs::create_dir(&mnt).unwrap();
    // The store stays root's, shared with nobody's group for reading (as
    // README's store-create tells); the mount point is nobody's.
    for args in [
        &["chgrp", "-R", "nogroup"][..],
        &["chmod", "-R", "g+rX"],
        &["chown", "nobody:nogroup"],
    ] {
        let target = if args[0] == "chown" { &mnt } else { &store };
        let st = Command::new(args[0])
            .args(&args[1..])
            .arg(target)
            .status()
            .expect(NEEDS);
        assert!(st.success(), "{args:?}");
    }
    (store, mnt)
}

/// The mountinfo line of a mount on `at`.
fn mount_line(at: &Path) -> Option<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(at.to_str().unwrap()))
        .map(str::to_string)
}

fn said(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

#[test]
#[ignore = "needs root (runuser), fuse3 and /dev/fuse mode 0666: cargo test -- --include-ignored, as .ci/run does"]
fn a_user_without_fusermount3_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mnt) = nobodys_store(dir.path());
    let master = store.join("master");
    for (args, command) in [
        (vec!["mount", master.to_str().unwrap(), "mnt"], "mount"),
        (vec!["umount", "mnt"], "umount"),
    ] {
        let out = as_nobody(dir.path(), &["PATH=/nonexistent"], &args)
            .output()
            .expect(NEEDS);
        assert_eq!(
            (text(&out.stderr), out.status.code()),
            (
                format!("hammer: {command}: not root, and no fusermount3 in PATH, through which a user mounts and unmounts FUSE (install fuse3, as sshfs needs it; or run as root)\n"),
                Some(1)
            ),
            "{args:?}"
        );
    }
    assert_eq!(mount_line(&mnt), None);
}

/// A user's `hammer mount`, run by runuser (hammer is its child); when
/// dropped, one still running is killed and its mount detached, so that a
/// failed test leaves nothing behind.
struct Mounted {
    runuser: Child,
    mnt: PathBuf,
}

impl Mounted {
    /// The hammer runuser runs.
    fn hammer(&self) -> Option<Pid> {
        let id = self.runuser.id();
        let children = fs::read_to_string(format!("/proc/{id}/task/{id}/children")).ok()?;
        let pid = children.split_whitespace().next()?.parse().ok()?;
        Some(Pid::from_raw(pid))
    }

    fn signal(&self, sig: Signal) {
        kill(self.hammer().expect("runuser runs hammer"), sig).unwrap();
    }

    /// How it ended, within 10 seconds.
    fn wait(&mut self) -> Option<i32> {
        wait_for(
            "the mount to end",
            10,
            || self.runuser.try_wait().unwrap().is_some(),
            || "still running".into(),
        );
        self.runuser.wait().unwrap().code()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.runuser.try_wait().is_ok_and(|s| s.is_none()) {
            if let Some(pid) = self.hammer() {
                let _ = kill(pid, Signal::SIGKILL);
            }
            let _ = self.runuser.wait();
            let _ = Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.mnt)
                .output();
        }
    }
}

/// What nobody reads of `mnt/notes` in `dir`.
fn nobody_reads(dir: &Path) -> String {
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", "cat", "mnt/notes"])
        .current_dir(dir)
        .output()
        .unwrap();
    text(&out.stdout)
}

/// `hammer mount <master> mnt` as nobody in `dir`, its stderr in `log`,
/// once nobody reads the file through it.
fn mount_as_nobody(dir: &Path, master: &Path, log: &Path) -> Mounted {
    let mode = fs::metadata("/dev/fuse").expect(NEEDS).permissions().mode();
    assert_eq!(mode & 0o666, 0o666, "/dev/fuse is {mode:o}: {NEEDS}");
    let runuser = as_nobody(dir, &[PATH], &["mount", master.to_str().unwrap(), "mnt"])
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .expect(NEEDS);
    let mounted = Mounted {
        runuser,
        mnt: dir.join("mnt"),
    };
    wait_for(
        "the mount",
        10,
        || nobody_reads(dir) == "hello\n",
        || fs::read_to_string(log).unwrap_or_default(),
    );
    mounted
}

/// A user's mount ends on SIGTERM with status 0, unmounted; one whose
/// hammer was killed is cleared by the user's next mount, which says so.
#[test]
#[ignore = "needs root (runuser), fuse3 and /dev/fuse mode 0666: cargo test -- --include-ignored, as .ci/run does"]
fn a_users_mount_ends_on_sigterm_and_a_killed_one_is_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mnt) = nobodys_store(dir.path());
    let master = store.join("master");
    let log = dir.path().join("mount.log");
    let mut m = mount_as_nobody(dir.path(), &master, &log);
    m.signal(Signal::SIGTERM);
    assert_eq!(m.wait(), Some(0), "{}", fs::read_to_string(&log).unwrap());
    assert_eq!(mount_line(&mnt), None);
    let mut m = mount_as_nobody(dir.path(), &master, &log);
    m.signal(Signal::SIGKILL);
    m.wait();
    assert!(mount_line(&mnt).is_some(), "a killed mount stays");
    let mut m = mount_as_nobody(dir.path(), &master, &log);
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "hammer: mount: mnt: cleared a mount whose server was gone\n"
    );
    let out = as_nobody(dir.path(), &[PATH], &["umount", "mnt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(m.wait(), Some(0));
    assert_eq!(mount_line(&mnt), None);
}

#[test]
#[ignore = "needs root (runuser), fuse3 and /dev/fuse mode 0666: cargo test -- --include-ignored, as .ci/run does"]
fn a_user_mounts_read_only_through_fusermount3() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mnt) = nobodys_store(dir.path());
    let master = store.join("master");
    // A mount point the user may not write: fusermount3's refusal, in
    // one line.
    let roots = dir.path().join("roots");
    fs::create_dir(&roots).unwrap();
    let out = as_nobody(
        dir.path(),
        &[PATH],
        &["mount", master.to_str().unwrap(), "roots"],
    )
    .output()
    .expect(NEEDS);
    assert_eq!(
        (text(&out.stderr), out.status.code()),
        (
            format!(
                "hammer: mount: roots: fusermount3: user has no write access to mountpoint {}\n",
                roots.display()
            ),
            Some(1)
        )
    );
    let log = dir.path().join("mount.log");
    let mut m = mount_as_nobody(dir.path(), &master, &log);
    // Read-only and nobody's (the kernel lets no other user in); nobody
    // read through it already.
    let line = mount_line(&mnt).unwrap();
    assert!(
        line.contains(" ro,") && line.contains("user_id=65534"),
        "{line}"
    );
    let nobody = |code: &str| {
        Command::new("runuser")
            .args(["-u", "nobody", "--", "sh", "-c", code])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = nobody("echo x > mnt/new");
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "{}",
        said(&out)
    );
    // Unmounted by the user, which ends the mount with status 0.
    let out = as_nobody(dir.path(), &[PATH], &["umount", "mnt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(
        m.wait(),
        Some(0),
        "{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(mount_line(&mnt), None);
}

//! The pidfiles of running cleanups, from both ends (cli.md §25; the
//! original's cmd_abort.c and the pidfile of cmd_cleanup.c): the one a
//! cleanup holds, locked, while it runs, where it goes, and `hammer
//! abort-cleanup`, which sends SIGTERM to each cleanup still holding its
//! lock and removes every pidfile, live or stale.

use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{geteuid, Pid};

use super::Failure;
use crate::errno::strerror;

/// A pidfile's name: this, then the pid in decimal.
const PREFIX: &str = "hammer.cleanup.";

/// A directory a cleanup's pidfile may go to.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RunDir {
    path: PathBuf,
    /// `/tmp/hammer-<uid>`: made by the user (mode 0700) and used only
    /// while it is theirs, as nobody else may plant a pidfile there.
    private: bool,
}

/// Where cleanups put their pidfiles, in the order a cleanup tries them;
/// abort-cleanup looks in each.
fn rundirs() -> Vec<RunDir> {
    candidates(
        std::env::var_os("HAMMER_RUNDIR"),
        std::env::var_os("XDG_RUNTIME_DIR"),
        geteuid().as_raw(),
    )
}

/// `$HAMMER_RUNDIR` alone when it is set; else the original's /var/run
/// (which only root may write to on Linux), the user's runtime directory,
/// and `/tmp/hammer-<uid>`, which every user can have, so that a user's
/// cleanup under cron (where XDG_RUNTIME_DIR is mostly unset) finds a
/// place without a warning every night.
fn candidates(rundir: Option<OsString>, xdg: Option<OsString>, uid: u32) -> Vec<RunDir> {
    let shared = |path: PathBuf| RunDir {
        path,
        private: false,
    };
    if let Some(dir) = rundir.filter(|d| !d.is_empty()) {
        return vec![shared(PathBuf::from(dir))];
    }
    let mut dirs = vec![shared(PathBuf::from("/var/run"))];
    // A relative XDG_RUNTIME_DIR is invalid (the XDG spec says to ignore
    // it).
    if let Some(xdg) = xdg.map(PathBuf::from).filter(|p| p.is_absolute()) {
        dirs.push(shared(xdg));
    }
    dirs.push(RunDir {
        path: PathBuf::from(format!("/tmp/hammer-{uid}")),
        private: true,
    });
    dirs
}

/// Checks that a private directory is the user's own and closed to
/// others, making it first when `make`.
fn check_private(dir: &Path, make: bool) -> io::Result<()> {
    if make {
        match DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    let m = fs::symlink_metadata(dir)?;
    if !m.is_dir() || m.uid() != geteuid().as_raw() || m.mode() & 0o077 != 0 {
        return Err(Errno::EPERM.into());
    }
    Ok(())
}

/// The pid a pidfile's name gives: its whole rest after the prefix, in
/// decimal, above 0. Anything else is no cleanup's (the original's
/// strtol made 0 of it, and kill(0) signals the whole process group).
fn pid_of(name: &OsStr) -> Option<i32> {
    let digits = name.to_str()?.strip_prefix(PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&pid| pid > 0)
}

/// The pidfile a cleanup holds while it runs: locked (flock) so that
/// abort-cleanup tells it from a stale one; removed when dropped, before
/// its closing lets the lock go.
#[derive(Debug)]
pub(super) struct Pidfile {
    path: PathBuf,
    _file: File,
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// This process's pidfile in the first directory that takes it; when none
/// does, the original's warning (`Unable to open or create <path>: <why>`
/// on stderr, of the last one tried), and the cleanup goes on without.
pub(super) fn hold() -> Option<Pidfile> {
    let pid = std::process::id();
    let mut failed = None;
    for dir in rundirs() {
        let path = dir.path.join(format!("{PREFIX}{pid}"));
        match make(&dir, &path, pid) {
            Ok(file) => return Some(Pidfile { path, _file: file }),
            Err(e) => failed = Some((path, e)),
        }
    }
    if let Some((path, e)) = failed {
        let _ = writeln!(
            io::stderr().lock(),
            "hammer: Unable to open or create {}: {}",
            path.display(),
            strerror(&e)
        );
    }
    None
}

/// `path`, holding `pid`, locked. It is made under a name abort-cleanup
/// passes over and renamed into place once locked, so that it is never
/// seen unlocked (BSD's pidfile_open opens and locks in one call).
fn make(dir: &RunDir, path: &Path, pid: u32) -> io::Result<File> {
    if dir.private {
        check_private(&dir.path, true)?;
    }
    let tmp = dir.path.join(format!(".{PREFIX}{pid}"));
    let made = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    let placed = (|| {
        let mut file = made;
        file.try_lock().map_err(io::Error::from)?;
        file.write_all(pid.to_string().as_bytes())?;
        fs::rename(&tmp, path)?;
        Ok(file)
    })();
    if placed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    placed
}

/// `hammer abort-cleanup` (cli.md §25): in each directory a cleanup's
/// pidfile may be in (none there: nothing to do), every
/// `hammer.cleanup.<pid>` whose lock is held gets its cleanup SIGTERM,
/// said on stdout when the signal went; every one it can open, live or
/// stale, is removed. Exit 0.
pub(crate) fn abort_cleanup() -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    for dir in rundirs() {
        if dir.private && check_private(&dir.path, false).is_err() {
            continue;
        }
        let Ok(entries) = fs::read_dir(&dir.path) else {
            continue;
        };
        for entry in entries.flatten() {
            let Some(pid) = pid_of(&entry.file_name()) else {
                continue;
            };
            let path = entry.path();
            let Ok(file) = File::open(&path) else {
                continue;
            };
            // The lock taken: the cleanup is gone (it goes with the file's
            // closing, just below).
            if let Err(TryLockError::WouldBlock) = file.try_lock() {
                if kill(Pid::from_raw(pid), Signal::SIGTERM).is_ok() {
                    writeln!(out, "Terminated cleanup process {pid}")
                        .and_then(|()| out.flush())
                        .map_err(|e| Failure::errx(strerror(&e)))?;
                }
            }
            drop(file);
            let _ = fs::remove_file(&path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dirs: &[RunDir]) -> Vec<(&str, bool)> {
        dirs.iter()
            .map(|d| (d.path.to_str().unwrap(), d.private))
            .collect()
    }

    #[test]
    fn hammer_rundir_alone_else_var_run_the_runtime_dir_and_a_private_tmp_dir() {
        let set = |s: &str| Some(OsString::from(s));
        assert_eq!(
            paths(&candidates(set("/t/run"), set("/run/user/7"), 7)),
            [("/t/run", false)]
        );
        assert_eq!(
            paths(&candidates(None, set("/run/user/7"), 7)),
            [
                ("/var/run", false),
                ("/run/user/7", false),
                ("/tmp/hammer-7", true)
            ]
        );
        // Unset, empty or relative: not used.
        for xdg in [None, set(""), set("run/user/7")] {
            assert_eq!(
                paths(&candidates(set(""), xdg, 0)),
                [("/var/run", false), ("/tmp/hammer-0", true)]
            );
        }
    }

    #[test]
    fn only_a_whole_positive_decimal_pid_is_a_cleanups() {
        let pid = |s: &str| pid_of(OsStr::new(s));
        assert_eq!(pid("hammer.cleanup.4242"), Some(4242));
        for name in [
            "hammer.cleanup.",
            "hammer.cleanup.0",
            "hammer.cleanup.-1",
            "hammer.cleanup.+5",
            "hammer.cleanup.12abc",
            "hammer.cleanup.99999999999",
            ".hammer.cleanup.12",
            "hammer.cleanup.foo",
        ] {
            assert_eq!(pid(name), None, "{name}");
        }
    }

    #[test]
    fn a_private_dir_must_be_the_users_and_closed() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("run");
        assert!(check_private(&dir, false).is_err());
        check_private(&dir, true).unwrap();
        check_private(&dir, false).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            check_private(&dir, true).unwrap_err().raw_os_error(),
            Some(libc::EPERM)
        );
    }
}

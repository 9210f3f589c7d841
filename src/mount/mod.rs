//! `hammer mount <pfs>[@@<tid>] <mountpoint>` and `hammer umount
//! <mountpoint>`: a store PFS shown read-only through FUSE, in the
//! foreground until it is unmounted or the command gets SIGINT, SIGTERM
//! or SIGHUP (then it unmounts and exits 0). Both clear a mount left by a
//! killed `hammer mount`. Root mounts with mount(2); any other user
//! through fuse3's setuid fusermount3, as sshfs does.

mod fs;
mod inotable;

use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use fuser::{MountOption, Session};
use nix::errno::Errno;
use nix::mount::MntFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::AccessFlags;

use crate::bridge::export::parse_source;
use crate::bridge::{as_of, open_pfs, point_tid, BridgeError};
use crate::errno::strerror;
use crate::patharg::PathArg;

use fs::HammerFs;

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount: {0}")]
    Bridge(#[from] BridgeError),
    /// fusermount3's words, which fuser passes on, end in a newline.
    #[error("mount: {}: {}", .0.display(), crate::errno::strerror(.1).trim_end())]
    Mount(std::path::PathBuf, #[source] io::Error),
    #[error("umount: {}: {}", .0.display(), .1)]
    Umount(std::path::PathBuf, Unmounted),
    #[error(
        "mount: {dir}: a mount whose server is gone is in the way and could not be cleared ({}): hammer umount {dir}",
        .1,
        dir = .0.display()
    )]
    Stale(std::path::PathBuf, Unmounted),
    #[error("{0}: not root, and no fusermount3 in PATH, through which a user mounts and unmounts FUSE (install fuse3, as sshfs needs it; or run as root)")]
    NoHelper(&'static str),
    #[error("mount: /dev/fuse: {} (a user mounts FUSE only with read and write access to it: mode 0666, as udev makes it; or run as root)", .0.desc())]
    Device(Errno),
}

/// Why an unmount failed: umount(2)'s errno, or what fusermount3 said.
#[derive(Debug)]
pub enum Unmounted {
    Errno(Errno),
    Helper(String),
}

impl std::fmt::Display for Unmounted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unmounted::Errno(e) => f.write_str(e.desc()),
            Unmounted::Helper(said) => f.write_str(said),
        }
    }
}

/// How this process mounts and unmounts: root with mount(2) and
/// umount(2), which need CAP_SYS_ADMIN; another user through the setuid
/// fusermount3, which checks that the mount point is the user's to use
/// (fuser runs it for the mount; the unmounts here run it).
enum Mounter {
    Root,
    User(PathBuf),
}

/// The helper's name: fuse3's, which sshfs and the other libfuse file
/// systems run when not root.
const FUSERMOUNT: &str = "fusermount3";

/// How this process mounts, or why it cannot: `command` names the
/// command in the refusal.
fn mounter(command: &'static str) -> Result<Mounter, MountError> {
    if nix::unistd::geteuid().is_root() {
        return Ok(Mounter::Root);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(FUSERMOUNT))
        .find(|p| nix::unistd::access(p, AccessFlags::X_OK).is_ok())
        .map(Mounter::User)
        .ok_or(MountError::NoHelper(command))
}

impl Mounter {
    /// Unmounts `mountpoint`; `lazy`: detached even while in use.
    fn unmount(&self, mountpoint: &Path, lazy: bool) -> Result<(), Unmounted> {
        let helper = match self {
            Mounter::Root if lazy => {
                return nix::mount::umount2(mountpoint, MntFlags::MNT_DETACH)
                    .map_err(Unmounted::Errno)
            }
            Mounter::Root => return nix::mount::umount(mountpoint).map_err(Unmounted::Errno),
            Mounter::User(helper) => helper,
        };
        let mut command = Command::new(helper);
        command.arg("-u");
        if lazy {
            command.arg("-z");
        }
        let out = command
            .arg("--")
            .arg(mountpoint)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Unmounted::Helper(format!("{}: {}", helper.display(), strerror(&e))))?;
        match out.status.success() {
            true => Ok(()),
            false => Err(Unmounted::Helper(helper_said(helper.as_os_str(), &out))),
        }
    }
}

/// What a failed fusermount3 said: its stderr's last line, else its status.
fn helper_said(helper: &OsStr, out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    match stderr.lines().rfind(|l| !l.trim().is_empty()) {
        Some(line) => line.trim().to_string(),
        None => format!("{} failed: {}", helper.to_string_lossy(), out.status),
    }
}

/// Whether `mountpoint` is a FUSE mount whose server is gone (a killed
/// `hammer mount`): the kernel answers ENOTCONN. Opened, as the kernel may
/// still answer a stat from the attributes it keeps for a second.
fn is_stale(mountpoint: &Path) -> bool {
    std::fs::File::open(mountpoint).is_err_and(|e| e.raw_os_error() == Some(libc::ENOTCONN))
}

/// Detaches a mount whose server is gone: nothing serves it, so nothing
/// is lost, and a process still inside it does not keep it in the way.
fn clear_stale(mounter: &Mounter, mountpoint: &Path) -> Result<(), Unmounted> {
    mounter.unmount(mountpoint, true)
}

/// How long a signal's unmount waits for the mount to be free: a file
/// closed just before the signal is released by the kernel a moment
/// after, and until then the mount is busy.
const UNMOUNT_WAIT: Duration = Duration::from_secs(2);

fn unmount_when_free(mounter: &Mounter, mountpoint: &Path) -> Result<(), Unmounted> {
    let deadline = Instant::now() + UNMOUNT_WAIT;
    loop {
        // fusermount3 says why in words: any failure is tried again.
        match mounter.unmount(mountpoint, false) {
            Err(Unmounted::Errno(Errno::EBUSY) | Unmounted::Helper(_))
                if Instant::now() < deadline =>
            {
                thread::sleep(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

/// The signals that end a mount.
fn ending_signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        s.add(sig);
    }
    s
}

/// How the mount shows the PFS.
#[derive(Clone, Debug, Default)]
pub struct MountOptions {
    /// `@@` is listed in the root, not only reached by name.
    pub show_history: bool,
}

/// Mounts the PFS `source` (`<pfs-path>[@@<tid>]`) read-only on
/// `mountpoint` and serves it until it is unmounted.
pub fn mount(
    source: &PathArg,
    mountpoint: &Path,
    options: &MountOptions,
) -> Result<(), MountError> {
    let mounter = mounter("mount")?;
    if matches!(mounter, Mounter::User(_)) {
        // fuser opens it before it runs fusermount3.
        nix::unistd::access("/dev/fuse", AccessFlags::R_OK | AccessFlags::W_OK)
            .map_err(MountError::Device)?;
    }
    let (path, point) = parse_source(source)?;
    let (store, pfsd) = open_pfs(path.as_ref())?;
    let name = path.to_string();
    let asked = point_tid(point, &name, &store, Some(&store), &pfsd, &mut io::stderr())?;
    // A TID given must be one the PFS can be read as of (as export's).
    let fixed = asked.map(|t| as_of(&pfsd, Some(t))).transpose()?;
    if is_stale(mountpoint) {
        clear_stale(&mounter, mountpoint).map_err(|e| MountError::Stale(mountpoint.into(), e))?;
        let _ = writeln!(
            io::stderr(),
            "hammer: mount: {}: cleared a mount whose server was gone",
            mountpoint.display()
        );
    }
    // Blocked before the FUSE threads start, so that only the waiting
    // thread below takes them.
    let signals = ending_signals();
    signals
        .thread_block()
        .map_err(|e| MountError::Mount(mountpoint.into(), e.into()))?;
    let mount_options = [
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::FSName(format!("hammer:{path}")),
        MountOption::Subtype("hammer".into()),
        MountOption::DefaultPermissions,
    ];
    let fs = HammerFs::new(store, fixed, options.show_history);
    let mut session = Session::new(fs, mountpoint, &mount_options)
        .map_err(|e| MountError::Mount(mountpoint.into(), e))?;
    let at = mountpoint.to_path_buf();
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            // Unmounting ends the session. One that cannot be (a process
            // is inside) is told, and the next signal tries again.
            while signals.wait().is_ok() {
                match unmount_when_free(&mounter, &at) {
                    Ok(()) => return,
                    Err(e) => {
                        let _ = writeln!(
                            io::stderr(),
                            "hammer: mount: {}: still mounted: {} (a process is using it)",
                            at.display(),
                            e
                        );
                    }
                }
            }
        })
        .map_err(|e| MountError::Mount(mountpoint.into(), e))?;
    session
        .run()
        .map_err(|e| MountError::Mount(mountpoint.into(), e))
}

/// Unmounts what is mounted on `mountpoint`; a mount whose server is gone
/// is detached even if a process is still inside it (a live one is then
/// busy, as umount(8) says).
pub fn umount(mountpoint: &Path) -> Result<(), MountError> {
    let mounter = mounter("umount")?;
    match is_stale(mountpoint) {
        true => clear_stale(&mounter, mountpoint),
        false => mounter.unmount(mountpoint, false),
    }
    .map_err(|e| MountError::Umount(mountpoint.into(), e))
}

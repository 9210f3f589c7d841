//! `hammer mount <pfs>[@@<tid>] <mountpoint>` and `hammer umount
//! <mountpoint>`: a store PFS shown read-only through FUSE, in the
//! foreground until it is unmounted or the command gets SIGINT, SIGTERM
//! or SIGHUP (then it unmounts and exits 0). Both clear a mount left by a
//! killed `hammer mount`.

mod fs;
mod inotable;

use std::io::{self, Write};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use fuser::{MountOption, Session};
use nix::errno::Errno;
use nix::mount::MntFlags;
use nix::sys::signal::{SigSet, Signal};

use crate::bridge::export::parse_source;
use crate::bridge::{as_of, open_pfs, point_tid, BridgeError};
use crate::patharg::PathArg;

use fs::HammerFs;

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount: {0}")]
    Bridge(#[from] BridgeError),
    #[error("mount: {}: {}", .0.display(), crate::errno::strerror(.1))]
    Mount(std::path::PathBuf, #[source] io::Error),
    #[error("umount: {}: {}", .0.display(), .1.desc())]
    Umount(std::path::PathBuf, Errno),
    #[error(
        "mount: {dir}: a mount whose server is gone is in the way and could not be cleared ({}): hammer umount {dir}",
        .1.desc(),
        dir = .0.display()
    )]
    Stale(std::path::PathBuf, Errno),
}

/// Whether `mountpoint` is a FUSE mount whose server is gone (a killed
/// `hammer mount`): the kernel answers ENOTCONN. Opened, as the kernel may
/// still answer a stat from the attributes it keeps for a second.
fn is_stale(mountpoint: &Path) -> bool {
    std::fs::File::open(mountpoint).is_err_and(|e| e.raw_os_error() == Some(libc::ENOTCONN))
}

/// Detaches a mount whose server is gone: nothing serves it, so nothing
/// is lost, and a process still inside it does not keep it in the way.
fn clear_stale(mountpoint: &Path) -> nix::Result<()> {
    nix::mount::umount2(mountpoint, MntFlags::MNT_DETACH)
}

/// How long a signal's unmount waits for the mount to be free: a file
/// closed just before the signal is released by the kernel a moment
/// after, and until then the mount is busy.
const UNMOUNT_WAIT: Duration = Duration::from_secs(2);

fn unmount_when_free(mountpoint: &Path) -> nix::Result<()> {
    let deadline = Instant::now() + UNMOUNT_WAIT;
    loop {
        match nix::mount::umount(mountpoint) {
            Err(Errno::EBUSY) if Instant::now() < deadline => {
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
    let (path, point) = parse_source(source)?;
    let (store, pfsd) = open_pfs(path.as_ref())?;
    let name = path.to_string();
    let asked = point_tid(point, &name, &store, Some(&store), &pfsd, &mut io::stderr())?;
    // A TID given must be one the PFS can be read as of (as export's).
    let fixed = asked.map(|t| as_of(&pfsd, Some(t))).transpose()?;
    if is_stale(mountpoint) {
        clear_stale(mountpoint).map_err(|e| MountError::Stale(mountpoint.into(), e))?;
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
                match unmount_when_free(&at) {
                    Ok(()) => return,
                    Err(e) => {
                        let _ = writeln!(
                            io::stderr(),
                            "hammer: mount: {}: still mounted: {} (a process is using it)",
                            at.display(),
                            e.desc()
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
    match is_stale(mountpoint) {
        true => clear_stale(mountpoint),
        false => nix::mount::umount(mountpoint),
    }
    .map_err(|e| MountError::Umount(mountpoint.into(), e))
}

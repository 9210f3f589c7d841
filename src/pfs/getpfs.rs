//! From a path to an open PFS: the original's `getpfs`/`scanpfsid`
//! (spec: ioctl-abi.md §8), the choice of backend, and where the PFS a
//! path opens is named (for ssh-remote's `-T`).

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;

use std::os::fd::OwnedFd;

use super::kernel::{KernelPfs, SysIoctl};
#[cfg(feature = "kernel-double")]
use super::kernel_double::KernelDouble;
use super::store::{self, Store, StoreError};
use super::{Pfs, PfsError};
use crate::cparse::{basename, dirname, scan_decimal, scan_hex, strip_trailing_slashes};
use crate::errno::strerror;
use crate::ondisk::PseudofsData;

/// Why a path could not be opened as a HAMMER descriptor.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// open(2) itself failed.
    #[error("{}", strerror(.0))]
    Io(#[from] io::Error),
    /// GET_PSEUDOFS failed on the descriptor (ENOTTY off HAMMER) and the
    /// path is in no store: the errno every PFS ioctl on it reports.
    #[error("{}", crate::errno::errno_desc(*.0 as i32))]
    NotHammer(Errno),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `getpfs` failures with the original's texts (without `hammer: `).
#[derive(Debug, thiserror::Error)]
pub enum GetpfsError {
    #[error("Failed to open {}: {}", path.display(), strerror(.source))]
    Open { path: PathBuf, source: io::Error },
    #[error("Cannot access {}: {source}", path.display())]
    Access { path: PathBuf, source: PfsError },
}

/// What `scanpfsid` made of a path: the path to open and, for a PFS
/// reference (`@@<tid>:<id>` or a link to one), the PFS id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PfsPath {
    pub open_path: PathBuf,
    pub pfs_id: Option<u32>,
}

impl PfsPath {
    /// Opens `open_path`, addressing the PFS the reference names. Besides
    /// getpfs, the commands that open the filesystem a path lies in
    /// (synctid, pfs-master's directory) use it: on HAMMER the kernel
    /// resolves a PFS link or `@@` name when the path is opened, while on
    /// a store the link dangles and the name is no directory.
    pub fn open(&self) -> Result<Box<dyn Pfs>, OpenError> {
        let mut pfs = open_fs(&self.open_path)?;
        if let Some(id) = self.pfs_id {
            pfs.set_pfs_id(id);
        }
        Ok(pfs)
    }
}

/// Opens `path` as the original's `open(path, O_RDONLY)` and picks the
/// backend by probing (ARCHITECTURE.md §4): GET_PSEUDOFS succeeds on the
/// descriptor -> the kernel; the path is in a store -> the store; else the
/// probe's errno. The handle addresses the PFS the path lies in (pfs_id −1
/// resolved).
pub fn open_fs(path: &Path) -> Result<Box<dyn Pfs>, OpenError> {
    match probe(path)? {
        Probed::Kernel(kernel) => Ok(Box::new(kernel)),
        Probed::Store { root, fd, .. } => open_store(&root, fd),
    }
}

/// What the backend probe found behind a path.
enum Probed {
    /// GET_PSEUDOFS succeeded: HAMMER, with the descriptor's PFS resolved.
    Kernel(KernelPfs<SysIoctl>),
    /// In the store at `root`, from `dir` (the canonical directory the
    /// path opened); the descriptor is kept for the double.
    Store {
        root: PathBuf,
        dir: PathBuf,
        fd: OwnedFd,
    },
}

/// `open(path, O_RDONLY)` and the probe of `open_fs`.
fn probe(p: &Path) -> Result<Probed, OpenError> {
    let file = fs::File::open(p)?;
    let is_dir = file.metadata()?.is_dir();
    let (probe_errno, fd) = match KernelPfs::open(OwnedFd::from(file), SysIoctl) {
        Ok(kernel) => return Ok(Probed::Kernel(kernel)),
        Err(failed) => failed,
    };
    let dir = match p.parent() {
        _ if is_dir => p,
        // A file named without a slash lies in ".", not in "".
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = fs::canonicalize(dir)?;
    match store::find_root(&dir) {
        Some(root) => Ok(Probed::Store { root, dir, fd }),
        None => Err(OpenError::NotHammer(probe_errno)),
    }
}

/// The store backend for a path in the store at `root`.
#[cfg(not(feature = "kernel-double"))]
fn open_store(root: &Path, _fd: OwnedFd) -> Result<Box<dyn Pfs>, OpenError> {
    Ok(Box::new(Store::open(root)?))
}

/// Under `kernel-double` a store is reached through the kernel backend and
/// its test double, on the descriptor already open, so every command of
/// the binary runs through the raw ioctl structures.
#[cfg(feature = "kernel-double")]
fn open_store(root: &Path, fd: OwnedFd) -> Result<Box<dyn Pfs>, OpenError> {
    let double = KernelDouble::new(Store::open(root)?).map_err(OpenError::NotHammer)?;
    match KernelPfs::open(fd, double) {
        Ok(kernel) => Ok(Box::new(kernel)),
        Err((errno, _)) => Err(OpenError::NotHammer(errno)),
    }
}

/// `getpfs`: resolves `path`, opens it and reads the PFS data.
pub fn getpfs(path: &Path) -> Result<(Box<dyn Pfs>, PseudofsData), GetpfsError> {
    let pp = scanpfsid(path);
    let pfs = pp.open().map_err(|e| pp.open_failed(e))?;
    let pfsd = pfs.get_pseudofs().map_err(|e| pp.access_failed(e))?;
    Ok((pfs, pfsd))
}

/// A descriptor inside a PFS, for the requests that act on the PFS of the
/// descriptor's own inode (the snapshot, config and prune ioctls,
/// ioctl-abi.md §9-11).
pub struct Inside {
    /// Its handle addresses that PFS, which under the kernel backend is
    /// also the descriptor's own.
    pub pfs: Box<dyn Pfs>,
    /// The path lies in a store, where a PFS link dangles: it is no
    /// directory to make a softlink in, nor one a softlink could lead
    /// into.
    pub on_store: bool,
}

/// The original's `open(path, O_RDONLY)` before a snapshot, config or
/// prune request: on HAMMER the kernel follows a PFS link (or resolves an
/// `@@` name) into the PFS, and the descriptor lies there. On a store the
/// link dangles and the name is no directory, so the PFS they name is
/// opened through the directory holding them, as getpfs does; any other
/// path of a store lies in PFS#0. Under `kernel-double` the double's
/// descriptors then lie in that PFS.
pub fn open_inside(path: &Path) -> Result<Inside, OpenError> {
    let pp = scanpfsid(path);
    let first = match probe(path) {
        Ok(Probed::Kernel(kernel)) => {
            return Ok(Inside {
                pfs: Box::new(kernel),
                on_store: false,
            })
        }
        Ok(Probed::Store { root, fd, .. }) if pp.pfs_id.is_none() => {
            return Ok(Inside {
                pfs: open_store_in(&root, fd, 0)?,
                on_store: true,
            })
        }
        Ok(Probed::Store { .. }) => None,
        Err(e) => Some(e),
    };
    match (probe(&pp.open_path), pp.pfs_id) {
        (Ok(Probed::Store { root, fd, .. }), Some(id)) => Ok(Inside {
            pfs: open_store_in(&root, fd, id)?,
            on_store: true,
        }),
        (Err(e), _) => Err(first.unwrap_or(e)),
        // The path itself could not be opened, and is no PFS of a store.
        (Ok(_), _) => Err(first.unwrap_or(OpenError::NotHammer(Errno::ENOENT))),
    }
}

/// The store at `root` addressing PFS `id`, as a descriptor inside it sees
/// it.
#[cfg(not(feature = "kernel-double"))]
fn open_store_in(root: &Path, _fd: OwnedFd, id: u32) -> Result<Box<dyn Pfs>, OpenError> {
    let mut store = Store::open(root)?;
    store.set_pfs_id(id);
    Ok(Box::new(store))
}

/// Under `kernel-double`: the kernel backend over a double whose
/// descriptors lie in PFS `id` (a PFS that does not exist fails as
/// GET_PSEUDOFS does).
#[cfg(feature = "kernel-double")]
fn open_store_in(root: &Path, fd: OwnedFd, id: u32) -> Result<Box<dyn Pfs>, OpenError> {
    let mut store = Store::open(root)?;
    store.set_pfs_id(id);
    let double = KernelDouble::new(store).map_err(OpenError::NotHammer)?;
    match KernelPfs::open(fd, double) {
        Ok(kernel) => Ok(Box::new(kernel)),
        Err((errno, _)) => Err(OpenError::NotHammer(errno)),
    }
}

/// The filesystem a directory lies in, as the original's `getmntdir()`
/// finds it for `snapshot` and `snap`: the store root for a path in a
/// store (a store plays the filesystem), else the mount point, the
/// highest directory above the path on its device. `None` when the path
/// does not resolve.
pub fn filesystem_of(path: &Path) -> Option<PathBuf> {
    let real = fs::canonicalize(strip_trailing_slashes(path)).ok()?;
    if let Some(root) = store::find_root(&real) {
        return Some(root);
    }
    mount_point(&real)
}

/// A PFS of a store, as `getpfs_store` opened it.
pub struct StorePfs {
    /// Addressing the PFS, and pinned to it.
    pub store: Store,
    pub pfsd: PseudofsData,
    /// The canonical directory the path opened.
    pub dir: PathBuf,
    /// Whether the path named the PFS by a reference (an `@@` name or a
    /// link to one) rather than by a directory it lies in.
    pub by_ref: bool,
}

/// `getpfs` for the commands that work on the store itself (import,
/// export, snapls): the same resolution, probe and messages, but a path in
/// a store opens its `Store` directly, once. `None` for a PFS on HAMMER.
pub fn getpfs_store(path: &Path) -> Result<Option<StorePfs>, GetpfsError> {
    let pp = scanpfsid(path);
    let (root, dir) = match probe(&pp.open_path) {
        Ok(Probed::Store { root, dir, .. }) => (root, dir),
        Ok(Probed::Kernel(mut kernel)) => {
            // A PFS that is not there fails as getpfs fails.
            if let Some(id) = pp.pfs_id {
                kernel.set_pfs_id(id);
            }
            kernel.get_pseudofs().map_err(|e| pp.access_failed(e))?;
            return Ok(None);
        }
        Err(e) => return Err(pp.open_failed(e)),
    };
    let mut store = Store::open(&root).map_err(|e| pp.open_failed(e.into()))?;
    if let Some(id) = pp.pfs_id {
        store.set_pfs_id(id);
    }
    let pfsd = store.get_pseudofs().map_err(|e| pp.access_failed(e))?;
    Ok(Some(StorePfs {
        store,
        pfsd,
        dir,
        by_ref: pp.pfs_id.is_some(),
    }))
}

impl PfsPath {
    /// getpfs's message for a failed open of `open_path`.
    fn open_failed(&self, e: OpenError) -> GetpfsError {
        match e {
            OpenError::Io(source) => GetpfsError::Open {
                path: self.open_path.clone(),
                source,
            },
            OpenError::NotHammer(errno) => self.access_failed(PfsError::Sys(errno)),
            OpenError::Store(e) => self.access_failed(PfsError::Store(e)),
        }
    }

    /// getpfs's message for a failed GET_PSEUDOFS on `open_path`.
    fn access_failed(&self, source: PfsError) -> GetpfsError {
        GetpfsError::Access {
            path: self.open_path.clone(),
            source,
        }
    }
}

/// `scanpfsid` plus the choice of the path to open (ioctl-abi.md §8 steps
/// 2-3).
pub fn scanpfsid(path: &Path) -> PfsPath {
    let not_ref = || PfsPath {
        open_path: path.to_path_buf(),
        pfs_id: None,
    };
    let text = match fs::metadata(path) {
        Ok(m) if !m.is_dir() => return not_ref(),
        _ => match link_text(path) {
            LinkText::Link(t) => t,
            LinkText::Path => path.into(),
            LinkText::Unreadable => return not_ref(),
        },
    };
    match parse_pfs_ref(basename(&text).as_bytes()) {
        // D18 fixed: an id of 0 names PFS#0 instead of aborting.
        Some(id) => PfsPath {
            open_path: dirname(path).to_path_buf(),
            pfs_id: Some(id),
        },
        None => not_ref(),
    }
}

/// Where the PFS that a path opens is named, for ssh-remote's `-T`
/// (protocol.md §11, D11): a client is confined to the PFSes named inside
/// its prefix, whatever the text of its path says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PfsPlace {
    /// A PFS link (its text a PFS reference) in a directory of PFS#0: the
    /// canonical directory joined with the link's name.
    Link(PathBuf),
    /// An existing path that is no PFS link: the root directory of the PFS
    /// holding it (a store's root, a mount point, or on HAMMER the `@@`
    /// directory its canonical path went through).
    Root(PathBuf),
    /// Nothing there yet: the canonical directory joined with the name,
    /// where pfs-master or mirror-write's auto-create would make the link.
    Missing(PathBuf),
}

/// Where the PFS that `path` opens is named (trailing slashes ignored).
/// `None` when it cannot be told: a `..` or `@@` component (a reference in
/// the path's own text names a PFS by number, from anywhere), a PFS link
/// in a directory of another PFS (on HAMMER that is the other PFS's data:
/// a slave's is written by whoever feeds it, so pfs-master refuses such
/// places too), or a path that resolves to no PFS.
pub fn pfs_place(path: &Path) -> Option<PfsPlace> {
    let path = strip_trailing_slashes(path);
    let named_by_text = path.components().any(|c| match c {
        Component::ParentDir => true,
        Component::Normal(n) => n.as_bytes().starts_with(b"@@"),
        _ => false,
    });
    if named_by_text {
        return None;
    }
    let in_dir = || Some(fs::canonicalize(dirname(path)).ok()?.join(basename(path)));
    if fs::symlink_metadata(path).is_err() {
        return in_dir().map(PfsPlace::Missing);
    }
    if scanpfsid(path).pfs_id.is_some() {
        return match probe(dirname(path)).ok()? {
            Probed::Store { .. } => in_dir().map(PfsPlace::Link),
            Probed::Kernel(k) if k.pfs_id() == 0 => in_dir().map(PfsPlace::Link),
            Probed::Kernel(_) => None,
        };
    }
    let real = fs::canonicalize(path).ok()?;
    match probe(&real).ok()? {
        // A store's directories all belong to PFS#0.
        Probed::Store { root, .. } => Some(root),
        Probed::Kernel(k) => kernel_pfs_root(&real, &mount_point(&real)?, k.pfs_id()),
    }
    .map(PfsPlace::Root)
}

/// The root directory of the PFS holding `real`, a canonical path on
/// HAMMER under `mount`, where the kernel resolved PFS `resolved`. The
/// kernel resolves PFS links textually, so a canonical path keeps the
/// `@@-1:00001` component through which it entered another PFS; its root
/// is the path up to there. Without one below the mount point the PFS is
/// the mount's own (PFS#0, or a PFS null-mounted there), rooted at it.
/// Two of them (a link inside a PFS followed), or one naming another PFS
/// than the kernel resolved, place nothing.
fn kernel_pfs_root(real: &Path, mount: &Path, resolved: u32) -> Option<PathBuf> {
    let below = real.strip_prefix(mount).ok()?;
    let mut root = None;
    let mut at = mount.to_path_buf();
    for c in below.components() {
        at.push(c);
        let Some(id) = parse_pfs_ref(c.as_os_str().as_bytes()) else {
            continue;
        };
        if root.is_some() || id != resolved {
            return None;
        }
        root = Some(at.clone());
    }
    Some(root.unwrap_or_else(|| mount.to_path_buf()))
}

/// The mount point `real` (canonical) lies under: the highest directory
/// above it on the same device.
fn mount_point(real: &Path) -> Option<PathBuf> {
    let dev = fs::metadata(real).ok()?.dev();
    let mut top = real;
    while let Some(up) = top.parent() {
        if fs::metadata(up).ok()?.dev() != dev {
            break;
        }
        top = up;
    }
    Some(top.to_path_buf())
}

enum LinkText {
    Link(PathBuf),
    Path,
    Unreadable,
}

/// Step 2b: the link text if `path` (trailing slashes stripped) is a
/// symlink. On Linux every store PFS link dangles, so the slashes are also
/// stripped when the first lstat fails, which a kernel never needs.
fn link_text(path: &Path) -> LinkText {
    let stripped = strip_trailing_slashes(path);
    let name = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => stripped,
        Ok(_) => path,
        Err(_) if stripped.as_os_str() != path.as_os_str() => stripped,
        Err(_) => return LinkText::Path,
    };
    match fs::symlink_metadata(name) {
        Ok(m) if m.file_type().is_symlink() => match fs::read_link(name) {
            // readlink into a 64-byte buffer: at most 63 bytes are kept.
            Ok(t) => {
                let b = t.as_os_str().as_bytes();
                LinkText::Link(OsStr::from_bytes(&b[..b.len().min(63)]).into())
            }
            Err(_) => LinkText::Unreadable,
        },
        _ => LinkText::Path,
    }
}

/// The PFS id of a link text or path component: the kernel's readlink
/// forms `@@-1:%05d` / `@@0x%016x:%05d` as scanned by `@@%jx:%d`, and the
/// raw stored form `@@PFS%05d` that a Linux readlink returns for a store
/// link (the kernel would substitute one of the former).
pub fn parse_pfs_ref(name: &[u8]) -> Option<u32> {
    let rest = name.strip_prefix(b"@@")?;
    if let Some(digits) = rest.strip_prefix(b"PFS") {
        if digits.len() == 5 && digits.iter().all(u8::is_ascii_digit) {
            return scan_decimal(digits).and_then(|id| u32::try_from(id).ok());
        }
        return None;
    }
    let rest = scan_hex(rest)?;
    let rest = rest.strip_prefix(b":")?;
    let id = scan_decimal(rest)?;
    u32::try_from(id).ok().filter(|&id| id <= 0xFFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfs_reference_forms() {
        assert_eq!(parse_pfs_ref(b"@@-1:00003"), Some(3));
        assert_eq!(parse_pfs_ref(b"@@0x00000001061a8ba0:00003"), Some(3));
        assert_eq!(parse_pfs_ref(b"@@PFS00007"), Some(7));
        assert_eq!(parse_pfs_ref(b"@@-1:00000"), Some(0));
        assert_eq!(parse_pfs_ref(b"@@PFS0007"), None);
        assert_eq!(parse_pfs_ref(b"@@-1"), None);
        assert_eq!(parse_pfs_ref(b"backup"), None);
        assert_eq!(parse_pfs_ref(b"@@-1:70000"), None);
        assert_eq!(parse_pfs_ref(b"@@PFS0000\xff"), None);
    }

    #[test]
    fn scan_of_missing_direct_reference() {
        let pp = scanpfsid(Path::new("/nonexistent-dir/@@-1:00004"));
        assert_eq!(pp.pfs_id, Some(4));
        assert_eq!(pp.open_path, Path::new("/nonexistent-dir"));
    }

    /// ARCHITECTURE.md §4: off HAMMER the probe fails harmlessly and a
    /// path in a store selects the store (through the double under
    /// `kernel-double`); anything else gets the original's error text.
    #[cfg(target_os = "linux")]
    #[test]
    fn backend_selection_by_probing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        Store::create(&root).unwrap();
        let sub = root.join("sub");
        fs::create_dir(&sub).unwrap();
        for p in [&root, &sub] {
            let pfs = open_fs(p).unwrap();
            assert_eq!(pfs.pfs_id(), 0);
            assert_eq!(pfs.get_pseudofs().unwrap().sync_low_tid, 1);
        }
        let outside = dir.path();
        match open_fs(outside) {
            Err(OpenError::NotHammer(e)) => assert_eq!(e, Errno::ENOTTY),
            other => panic!("{:?}", other.map(|p| p.pfs_id())),
        }
        let e = getpfs(outside).err().unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "Cannot access {}: Inappropriate ioctl for device",
                outside.display()
            )
        );
        let missing = outside.join("nope");
        let e = getpfs(&missing).err().unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "Failed to open {}: No such file or directory",
                missing.display()
            )
        );
    }

    /// On HAMMER the `@@` component a canonical path went through is its
    /// PFS's root; a mount point below it starts another.
    #[test]
    fn kernel_pfs_roots() {
        let root = |real: &str, mount: &str, resolved| {
            kernel_pfs_root(Path::new(real), Path::new(mount), resolved)
                .map(|p| p.display().to_string())
        };
        let at = "/fs/backup/clientA/@@-1:00001";
        assert_eq!(root(&format!("{at}/d/f"), "/fs", 1).as_deref(), Some(at));
        assert_eq!(root(at, "/fs", 1).as_deref(), Some(at));
        let slave = "/fs/b/@@0x00000001061a8ba0:00003";
        assert_eq!(root(slave, "/fs", 3).as_deref(), Some(slave));
        // A snapshot name (no PFS part) stays in its PFS.
        let snap = format!("{at}/@@0x0000000100000000");
        assert_eq!(root(&snap, "/fs", 1).as_deref(), Some(at));
        // PFS#0 or a null-mounted PFS: the mount point.
        assert_eq!(root("/fs/backup/clientA", "/fs", 0).as_deref(), Some("/fs"));
        assert_eq!(
            root("/clientA/d", "/clientA", 4).as_deref(),
            Some("/clientA")
        );
        let below = format!("{at}/mnt");
        assert_eq!(
            root(&format!("{below}/x"), &below, 2).as_deref(),
            Some(below.as_str())
        );
        // A link inside a PFS followed, or a name the kernel did not take.
        assert_eq!(root(&format!("{at}/@@-1:00002"), "/fs", 2), None);
        assert_eq!(root(at, "/fs", 2), None);
        assert_eq!(root("/elsewhere", "/fs", 0), None);
    }

    #[test]
    fn mount_point_is_the_top_of_the_device() {
        let dir = tempfile::tempdir().unwrap();
        let real = fs::canonicalize(dir.path()).unwrap();
        let top = mount_point(&real).unwrap();
        assert!(real.starts_with(&top));
        let dev = |p: &Path| fs::metadata(p).unwrap().dev();
        assert_eq!(dev(&top), dev(&real));
        if let Some(up) = top.parent() {
            assert_ne!(dev(up), dev(&top));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn places_on_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap().join("s");
        Store::create(&root).unwrap();
        fs::create_dir(root.join("d")).unwrap();
        std::os::unix::fs::symlink("@@PFS00001", root.join("d/pfs")).unwrap();
        std::os::unix::fs::symlink("elsewhere", root.join("d/other")).unwrap();
        let place = |p: &str| pfs_place(&root.join(p));
        assert_eq!(place("d/pfs/"), Some(PfsPlace::Link(root.join("d/pfs"))));
        assert_eq!(place("d"), Some(PfsPlace::Root(root.clone())));
        assert_eq!(place("d/new"), Some(PfsPlace::Missing(root.join("d/new"))));
        for none in [
            "d/@@-1:00001",
            "d/@@PFS00001/",
            "d/other",
            "d/../d/pfs",
            "x/y",
        ] {
            assert_eq!(place(none), None, "{none}");
        }
        assert_eq!(pfs_place(dir.path()), None);
    }
}

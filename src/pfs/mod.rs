//! The PFS endpoint of every command: `trait Pfs`, the operations of
//! HAMMER's PFS and mirror ioctls, and `getpfs`, which turns a path into an
//! open PFS (spec: ioctl-abi.md §3-8, kernel-semantics.md §3-5).

pub mod getpfs;
#[allow(unsafe_code)]
pub mod kernel;
/// The kernel's stand-in behind the ioctl seam: built for the tests and
/// for the `kernel-double` feature only, never into a release binary.
#[cfg(any(test, feature = "kernel-double"))]
#[allow(unsafe_code)]
pub mod kernel_double;
pub mod reblock;
pub mod retain;
pub mod store;

use nix::errno::Errno;

use crate::ondisk::{BaseElm, ConfigData, PseudofsData};

pub use getpfs::{getpfs, open_fs, GetpfsError, OpenError, PfsPath};
pub use reblock::{ReblockReq, ReblockStats};
pub use retain::{PruneElm, PruneReq, PruneStats, SnapshotReq};

/// Why a PFS operation failed. `Display` is what the original's `err()`
/// prints after the colon: the strerror text for an errno.
#[derive(Debug, thiserror::Error)]
pub enum PfsError {
    /// The errno an ioctl would fail with.
    #[error("{}", crate::errno::errno_desc(*.0 as i32))]
    Sys(Errno),
    /// The store itself failed (I/O, corruption, format).
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl PfsError {
    /// The errno the kernel would report for this failure.
    pub fn errno(&self) -> Errno {
        match self {
            PfsError::Sys(e) => *e,
            PfsError::Store(e) => e.errno(),
        }
    }
}

impl From<Errno> for PfsError {
    fn from(e: Errno) -> Self {
        PfsError::Sys(e)
    }
}

pub type Result<T> = std::result::Result<T, PfsError>;

/// `HAMMERIOC_SYNCTID` operations (ioctl-abi.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynctidOp {
    None,
    Async,
    /// Flush once (`synctid quick`).
    Sync1,
    /// Flush twice: everything up to the returned TID is crash-safe.
    Sync2,
}

/// The in/out fields of `hammer_ioc_mirror_rw` that MIRROR_READ uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MirrorReadReq {
    pub key_beg: BaseElm,
    pub key_end: BaseElm,
    /// Out: where the next call starts (localization masked to 16 bits).
    pub key_cur: BaseElm,
    pub tid_beg: u64,
    pub tid_end: u64,
    /// `HAMMER_IOC_MIRROR_NODATA`: RECs carry no payload.
    pub nodata: bool,
    /// Out: `HAMMER_IOC_HEAD_INTR`, the scan stopped early on a signal.
    pub interrupted: bool,
}

impl MirrorReadReq {
    /// A whole-PFS scan of `[tid_beg, tid_end]`, as the tool starts one.
    pub fn new(tid_beg: u64, tid_end: u64) -> Self {
        MirrorReadReq {
            key_beg: BaseElm::KEY_BEG_INIT,
            key_end: BaseElm::KEY_END_INIT,
            key_cur: BaseElm::default(),
            tid_beg,
            tid_end,
            nodata: false,
            interrupted: false,
        }
    }
}

/// The in/out fields of `hammer_ioc_mirror_rw` that MIRROR_WRITE uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MirrorWriteReq {
    pub key_beg: BaseElm,
    pub key_end: BaseElm,
    /// In/out: the sweep position; pass it back unchanged on the next call.
    pub key_cur: BaseElm,
    pub tid_beg: u64,
    pub tid_end: u64,
    /// Out: `HAMMER_IOC_HEAD_ERROR` with `head.error`; the returned count
    /// then points at the failing record.
    pub head_error: Option<Errno>,
}

impl MirrorWriteReq {
    /// A batch as the tool starts one (ioctl-abi.md §4.3): key_end is a copy
    /// of key_beg and key_cur all zero.
    pub fn new(tid_beg: u64, tid_end: u64) -> Self {
        MirrorWriteReq {
            key_beg: BaseElm::KEY_BEG_INIT,
            key_end: BaseElm::KEY_BEG_INIT,
            key_cur: BaseElm::default(),
            tid_beg,
            tid_end,
            head_error: None,
        }
    }
}

/// HAMMER's PFS ioctls on one open descriptor. The handle addresses one
/// PFS at a time, like the `pfs_id` field of the ioctl structures.
pub trait Pfs {
    /// The PFS the next operation addresses.
    fn pfs_id(&self) -> u32;
    /// Addresses another PFS of the same filesystem.
    fn set_pfs_id(&mut self, pfs_id: u32);
    /// `HAMMERIOC_GET_VERSION`: the filesystem's HAMMER version.
    fn version(&self) -> Result<u32>;
    /// `HAMMERIOC_GET_PSEUDOFS`; a master reports the live sync point.
    fn get_pseudofs(&self) -> Result<PseudofsData>;
    /// `HAMMERIOC_SET_PSEUDOFS`: overwrites the PFS data (creating the PFS,
    /// and a master's root directory, when missing).
    fn set_pseudofs(&mut self, pfsd: &PseudofsData) -> Result<()>;
    /// Creates the PFS with `pfsd`, EEXIST if it exists. HAMMER has no
    /// such ioctl: there it is GET then SET, and two creators can pick
    /// one id (the original's race); the store does both in one write
    /// transaction.
    fn create_pseudofs(&mut self, pfsd: &PseudofsData) -> Result<()> {
        match self.get_pseudofs() {
            Ok(_) => Err(nix::errno::Errno::EEXIST.into()),
            Err(e) if e.errno() == nix::errno::Errno::ENOENT => self.set_pseudofs(pfsd),
            Err(e) => Err(e),
        }
    }
    /// `HAMMERIOC_UPG_PSEUDOFS`: slave to master, rolled back to its sync
    /// point. An interrupted rollback (`HEAD_INTR`) is an error (EINTR),
    /// not a success (D8).
    fn upgrade(&mut self) -> Result<()>;
    /// `HAMMERIOC_DGD_PSEUDOFS`: master to slave.
    fn downgrade(&mut self) -> Result<()>;
    /// `HAMMERIOC_RMR_PSEUDOFS`: destroys every record, marks it deleted.
    /// Interrupted (`HEAD_INTR`): EINTR, as for `upgrade` (D8).
    fn destroy(&mut self) -> Result<()>;
    /// `HAMMERIOC_WAI_PSEUDOFS`: returns once the sync point is beyond
    /// `tid`, or after its next change.
    fn wait(&self, tid: u64) -> Result<()>;
    /// `HAMMERIOC_SYNCTID`: the TID up to which everything is committed.
    fn synctid(&mut self, op: SynctidOp) -> Result<u64>;
    /// `HAMMERIOC_MIRROR_READ`: fills `buf` with framed REC/PASS/SKIP
    /// records from `req.key_beg`; returns the bytes produced (`count`).
    fn mirror_read(&mut self, req: &mut MirrorReadReq, buf: &mut [u8]) -> Result<usize>;
    /// `HAMMERIOC_MIRROR_WRITE`: applies framed records; returns the bytes
    /// consumed (`count`). A record error is reported in `req.head_error`,
    /// not as `Err`.
    fn mirror_write(&mut self, req: &mut MirrorWriteReq, records: &[u8]) -> Result<usize>;

    // The PFS's snapshot and config records and its pruning
    // (kernel-semantics.md §2.6, §6; ioctl-abi.md §9-11). On HAMMER these
    // act on the PFS of the descriptor's own inode, not on `pfs_id`: the
    // kernel backend refuses them (EXDEV) on a handle addressing another
    // PFS, and a caller opens the PFS itself, as the original opens the
    // path it is given. A backend without them answers EOPNOTSUPP, as a
    // kernel does for a request it does not know.

    /// `HAMMERIOC_ADD_SNAPSHOT`: a SNAPSHOT record per `snaps[index..count]`,
    /// all at one new TID, each payload as given; stops at a snapshot
    /// that exists (`req.error` EEXIST, `req.index` on it).
    fn add_snapshots(&mut self, req: &mut SnapshotReq) -> Result<()> {
        let _ = req;
        Err(Errno::EOPNOTSUPP.into())
    }
    /// `HAMMERIOC_DEL_SNAPSHOT`: destroys the live SNAPSHOT record of each
    /// of `snaps[index..count]` (no history kept); stops at one that does
    /// not exist (`req.error` ENOENT, `req.index` on it).
    fn del_snapshots(&mut self, req: &mut SnapshotReq) -> Result<()> {
        let _ = req;
        Err(Errno::EOPNOTSUPP.into())
    }
    /// `HAMMERIOC_GET_SNAPSHOT`: the next live snapshots after those
    /// `req` holds, in signed key order (see `SnapshotReq`).
    fn get_snapshots(&self, req: &mut SnapshotReq) -> Result<()> {
        let _ = req;
        Err(Errno::EOPNOTSUPP.into())
    }
    /// `HAMMERIOC_GET_CONFIG`: the live CONFIG record's text, `None` when
    /// there is none (the kernel's ENOENT in `head.error`).
    fn get_config(&self) -> Result<Option<ConfigData>> {
        Err(Errno::EOPNOTSUPP.into())
    }
    /// `HAMMERIOC_SET_CONFIG`: destroys the live CONFIG record, if any,
    /// and writes `config` as a new one at a new TID.
    fn set_config(&mut self, config: &ConfigData) -> Result<()> {
        let _ = config;
        Err(Errno::EOPNOTSUPP.into())
    }
    /// `HAMMERIOC_PRUNE`: destroys the deleted records `req`'s rule picks,
    /// scanning backwards from `req.key_end` (see `PruneReq`); adds to
    /// `req.stats`.
    fn prune(&mut self, req: &mut PruneReq) -> Result<()> {
        let _ = req;
        Err(Errno::EOPNOTSUPP.into())
    }
    /// `HAMMERIOC_REBLOCK`: packs what `req.what` names of the PFS into
    /// fewer blocks, giving the free space back (see `ReblockReq`); adds
    /// to `req.stats`.
    fn reblock(&mut self, req: &mut ReblockReq) -> Result<()> {
        let _ = req;
        Err(Errno::EOPNOTSUPP.into())
    }
    /// The store behind the handle, for what this tool does that HAMMER
    /// has no ioctl for (a dry-run prune, `View::prune_dry_run`); `None`
    /// through the kernel backend, the test double's included.
    fn store(&self) -> Option<&store::Store> {
        None
    }
}

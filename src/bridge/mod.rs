//! Bridging plain files and PFS history on the embedded store: `import` a
//! directory tree as one new TID, `export` a PFS as of any TID.

pub mod exclude;
pub(crate) mod export;
pub mod import;
pub(crate) mod listing;
pub mod point;
pub(crate) mod snapls;

use std::io::{self, Write};
use std::path::Path;

use self::point::{Point, PointError};

use crate::ondisk::PseudofsData;
use crate::pfs::getpfs::getpfs_store;
use crate::pfs::store::Store;
use crate::pfs::{GetpfsError, Pfs, PfsError};

/// Why an import or export failed; `Display` is the message after
/// `hammer: `.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(transparent)]
    Getpfs(#[from] GetpfsError),
    #[error("store: {0}")]
    Store(#[from] PfsError),
    #[error("{0}: not a PFS of a hammer store (import and export work on the embedded store)")]
    NotStore(String),
    #[error(
        "{path}: a plain directory of the store {root}, not a PFS: make one with \
         `hammer pfs-master <store>/<name>` and use that link, or give the store root \
         {root} for its PFS#0"
    )]
    PlainDir { path: String, root: String },
    #[error("{0}: PFS is a slave; import needs a master")]
    Slave(String),
    #[error("{0}: not a directory")]
    NotDir(String),
    #[error("{0}: PFS has no root directory")]
    NoRoot(String),
    #[error("{path}: changed while being read ({tries} tries); nothing was imported")]
    Unstable { path: String, tries: u32 },
    #[error("{0}: no free directory key for this name")]
    KeySpace(String),
    #[error("bad exclude pattern '{pattern}': {why}")]
    BadPattern { pattern: String, why: String },
    #[error("bad TID '{0}': expected a hexadecimal TID such as 0x0000000100000000")]
    BadTid(String),
    #[error(transparent)]
    Point(#[from] PointError),
    #[error("{path}: {why}")]
    BadInside { path: String, why: &'static str },
    #[error("{path}: {why} in {pfs} as of {tid:#018x}")]
    NotInside {
        path: String,
        pfs: String,
        tid: u64,
        why: &'static str,
    },
    #[error("TID {tid:#018x} is beyond the slave's sync point {sync:#018x}: the copy is only complete up to it")]
    BeyondSync { tid: u64, sync: u64 },
    #[error("{0}: target is not empty (use hammer -F export to write into it)")]
    NotEmpty(String),
    #[error("TID {tid:#018x} is beyond the master's newest {newest:#018x}: nothing is written as of it yet")]
    BeyondNewest { tid: u64, newest: u64 },
    #[error("{0}: its parent directory does not exist (export makes only the target directory)")]
    NoParent(String),
    #[error("{0}: target is not a directory")]
    TargetNotDir(String),
    #[error("export's file writers stopped")]
    WritersStopped,
    #[error("{count} record(s) or entries could not be exported (see above)")]
    Incomplete { count: usize },
}

impl BridgeError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        BridgeError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// An open store addressing the PFS `path` names, and that PFS's data.
/// The handle is pinned to that PFS: should it be destroyed meanwhile,
/// the import or export fails instead of working on its successor.
pub(crate) fn open_pfs(path: &Path) -> Result<(Store, PseudofsData), BridgeError> {
    open_store_pfs(path)?.ok_or_else(|| BridgeError::NotStore(path.display().to_string()))
}

/// `open_pfs` for a path that may also be on HAMMER: `None` there.
pub(crate) fn open_store_pfs(path: &Path) -> Result<Option<(Store, PseudofsData)>, BridgeError> {
    // getpfs's resolution, once, with the original's errors for paths
    // that are no PFS at all.
    let Some(pfs) = getpfs_store(path)? else {
        return Ok(None);
    };
    // A newcomer's mistake, refused: a directory inside a store silently
    // meant PFS#0, so a second import "into" another directory replaced the
    // first one's tree. PFS#0 is reached only by naming the store root.
    if !pfs.by_ref && pfs.dir != pfs.store.root() {
        return Err(BridgeError::PlainDir {
            path: path.display().to_string(),
            root: pfs.store.root().display().to_string(),
        });
    }
    Ok(Some((pfs.store, pfs.pfsd)))
}

/// The TID `point` names in the PFS `pfs` (named `name`): a TID as
/// given; a date, the newest snapshot or change at or before it, told on
/// `tell`. Changes are known on the store (`store`); on HAMMER a date
/// chooses among snapshots, listed through `pfs`.
pub(crate) fn point_tid(
    point: Option<Point>,
    name: &str,
    pfs: &dyn Pfs,
    store: Option<&Store>,
    pfsd: &PseudofsData,
    tell: &mut dyn Write,
) -> Result<Option<u64>, BridgeError> {
    let moment = match point {
        None => return Ok(None),
        Some(Point::Tid(tid)) => return Ok(Some(tid)),
        Some(Point::Date(moment)) => moment,
    };
    // The store's own handle where there is one: a kernel handle on a
    // store (the test double) addresses the PFS from its root, where the
    // snapshot ioctls refuse it (EXDEV); on HAMMER `pfs` lies in the PFS.
    let snapshots = crate::retention::snapshot_records(store.map_or(pfs, |s| s as &dyn Pfs))?;
    let changes = store.map(Store::history).transpose()?.unwrap_or_default();
    let all = point::candidates(&snapshots, &changes, pfsd.sync_end_tid);
    let chosen = point::choose(&moment, &all, name)?;
    let told = point::Chosen {
        moment: &moment,
        point: &chosen,
    };
    writeln!(tell, "hammer: {name}{told}").map_err(|e| BridgeError::io(Path::new("stderr"), e))?;
    Ok(Some(chosen.tid))
}

/// The TID a PFS is read as of: `asked`, or by default its sync point (a
/// slave's sync_end_tid, a master's newest). A slave refuses a TID beyond
/// its sync point, a master one beyond its newest: later changes would
/// get TIDs up to it, so what it shows could change.
pub(crate) fn as_of(pfsd: &PseudofsData, asked: Option<u64>) -> Result<u64, BridgeError> {
    let sync = pfsd.sync_end_tid;
    match asked {
        Some(tid) if tid > sync && pfsd.is_slave() => Err(BridgeError::BeyondSync { tid, sync }),
        Some(tid) if tid > sync => Err(BridgeError::BeyondNewest { tid, newest: sync }),
        Some(tid) => Ok(tid),
        None => Ok(sync),
    }
}

/// Microseconds since the epoch as HAMMER stores times (kernel-semantics.md
/// §1.8); times before 1970 wrap like the kernel's unsigned field.
pub(crate) fn micros(secs: i64, nsec: i64) -> u64 {
    secs.wrapping_mul(1_000_000).wrapping_add(nsec / 1000) as u64
}

//! `hammer verify <pfs>[@@<tid>]`: reads a PFS through the same trait and
//! record decoder as mirror-read and reports, without writing, every record
//! and every part of its tree as of a TID that HAMMER would not hold; on a
//! store also what SQLite and the payload files say; `hammer mirror-verify`
//! compares a master and its slave through the same scan.

mod checks;
mod digest;
mod pair;
pub mod proto;
mod scan;
mod serve;

use std::fmt;
use std::io::{self, BufWriter, Write};

use crate::bridge::export::parse_source;
use crate::bridge::{as_of, open_store_pfs, point_tid, BridgeError};
use crate::errno::errno_desc;
use crate::ondisk::BaseElm;
use crate::patharg::PathArg;
use crate::pfs::{getpfs, GetpfsError, PfsError};
use checks::{Checker, Record};
use scan::{Scan, Stopped};

pub use pair::{mirror_verify, MirrorVerifyError, Outcome};
pub use serve::{serve, ServeError};

/// What a verify run read, and how many problems it found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Record versions read, up to the PFS's sync point.
    pub records: u64,
    /// Inodes and directory entries visible as of the TID.
    pub inodes: u64,
    pub entries: u64,
    /// Payload bytes read and checked.
    pub bytes: u64,
    pub problems: u64,
}

/// Why a PFS could not be verified (all or part of it could not be read);
/// `Display` is the message after `hammer: `.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    #[error(transparent)]
    Getpfs(#[from] GetpfsError),
    /// The store's own files, read directly (not through the ioctls).
    #[error("verify: {0}")]
    Store(#[from] PfsError),
    /// Shown by its errno, as the kernel backend reports it.
    #[error(
        "verify: cannot read the records from {} on: {}; they were not checked",
        Key(.key), errno_desc(.error.errno() as i32)
    )]
    Stopped { key: BaseElm, error: PfsError },
    #[error("verify: MIRROR_READ returned a record of type {0:#010x}, not a REC")]
    Unexpected(u32),
    #[error("verify: output: {}", crate::errno::strerror(.0))]
    Output(#[source] io::Error),
}

impl From<Stopped> for VerifyError {
    fn from(s: Stopped) -> Self {
        VerifyError::Stopped {
            key: s.key,
            error: s.error,
        }
    }
}

/// A record's key as mirror-dump prints it, with its TIDs (also in
/// `prune -n -v`'s lines).
pub(crate) struct Key<'a>(pub(crate) &'a BaseElm);

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = self.0;
        write!(
            f,
            "lo={:08x} obj={:016x} key={:016x} rt={:02x} tids={:016x}:{:016x}",
            k.localization, k.obj_id as u64, k.key as u64, k.rec_type, k.create_tid, k.delete_tid
        )
    }
}

/// Verifies the PFS `source` (`<pfs-path>[@@<tid>]`) as of its TID,
/// default its sync point: a heading line, one line per problem and a
/// summary line on `out`. A PFS that could not be read in full is an
/// error (the problems found until then are printed), never a summary.
pub fn verify(source: &PathArg, out: &mut dyn Write) -> Result<Summary, VerifyError> {
    let (path, point) = parse_source(source)?;
    let (mut pfs, pfsd) = getpfs(path.as_ref())?;
    // Under the kernel backend's test double the store is reached twice:
    // records through the ioctls, its own files directly, as on Linux.
    let store = open_store_pfs(path.as_ref())?.map(|(s, _)| s);
    let name = path.to_string();
    let asked = point_tid(
        point,
        &name,
        &*pfs,
        store.as_ref(),
        &pfsd,
        &mut io::stderr(),
    )?;
    let tid = as_of(&pfsd, asked)?;
    let mut out = BufWriter::new(out);
    writeln!(
        out,
        "Verifying {path} (PFS#{}) as of {tid:#018x}",
        pfs.pfs_id()
    )
    .map_err(VerifyError::Output)?;
    let pfs_id = pfs.pfs_id();
    let mut checker = Checker::new(tid, store.as_ref(), &mut out);
    checker.database()?;
    checker.prune_memo()?;
    // Every version up to the sync point: later ones are a slave's batch
    // not yet synced, or a master's flush not yet complete.
    let scanned =
        Scan::new(pfs.as_mut(), pfsd.sync_end_tid).run(|item| checker.take(&Record::of(item)?));
    if let Err(e) = scanned {
        checker.abandon()?;
        return Err(e);
    }
    let s = checker.finish(pfs_id)?;
    writeln!(
        out,
        "{} records, {} inodes, {} entries, {} bytes, {} problems",
        s.records, s.inodes, s.entries, s.bytes, s.problems
    )
    .and_then(|()| out.flush())
    .map_err(VerifyError::Output)?;
    Ok(s)
}

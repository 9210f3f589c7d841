//! Bridging plain files and PFS history on the embedded store: `import` a
//! directory tree as one new TID, `export` a PFS as of any TID.

pub mod export;
pub mod format;
pub mod import;
pub mod tree;

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::ondisk::PseudofsData;
use crate::pfs::getpfs::scanpfsid;
use crate::pfs::store::{find_root, Store};
use crate::pfs::{getpfs, GetpfsError, Pfs, PfsError};

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
    #[error("bad TID '{0}': expected a hexadecimal TID such as 0x0000000100000000")]
    BadTid(String),
    #[error("TID {tid:#018x} is beyond the slave's sync point {sync:#018x}: the copy is only complete up to it")]
    BeyondSync { tid: u64, sync: u64 },
    #[error("{0}: target is not empty (use hammer -F export to write into it)")]
    NotEmpty(String),
    #[error("{0}: target is not a directory")]
    TargetNotDir(String),
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
pub(crate) fn open_pfs(path: &str) -> Result<(Store, PseudofsData), BridgeError> {
    // getpfs gives the original's errors for paths that are no PFS at all.
    let (_, pfsd) = getpfs(path)?;
    let pp = scanpfsid(path);
    let dir = Path::new(&pp.open_path);
    let dir = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        dir.parent().unwrap_or(Path::new(".")).to_path_buf()
    };
    let canon = std::fs::canonicalize(&dir).map_err(|e| BridgeError::io(&dir, e))?;
    let root = find_root(&canon).ok_or_else(|| BridgeError::NotStore(path.to_string()))?;
    let mut store = Store::open(&root).map_err(PfsError::from)?;
    store.set_pfs_id(pp.pfs_id.unwrap_or(0));
    Ok((store, pfsd))
}

/// A one-line progress report on stderr, only when it is a terminal.
pub(crate) struct Progress {
    tty: bool,
    shown: bool,
    last: Instant,
    what: &'static str,
}

impl Progress {
    pub(crate) fn new(what: &'static str, quiet: bool) -> Self {
        Progress {
            tty: !quiet && nix::unistd::isatty(2).unwrap_or(false),
            shown: false,
            last: Instant::now(),
            what,
        }
    }

    pub(crate) fn tick(&mut self, files: u64, bytes: u64) {
        if self.tty && self.last.elapsed() >= Duration::from_millis(200) {
            self.last = Instant::now();
            self.shown = true;
            eprint!("\r{}: {files} files, {} MiB ", self.what, bytes >> 20);
        }
    }

    pub(crate) fn done(&mut self) {
        if self.shown {
            eprintln!();
            self.shown = false;
        }
    }
}

/// Microseconds since the epoch as HAMMER stores times (§1.8); times
/// before 1970 wrap like the kernel's unsigned field.
pub(crate) fn micros(secs: i64, nsec: i64) -> u64 {
    secs.wrapping_mul(1_000_000).wrapping_add(nsec / 1000) as u64
}

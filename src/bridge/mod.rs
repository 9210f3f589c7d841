//! Bridging plain files and PFS history on the embedded store: `import` a
//! directory tree as one new TID, `export` a PFS as of any TID.

pub mod export;
pub mod format;
pub mod import;
pub mod snapls;
pub mod tree;

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::ondisk::PseudofsData;
use crate::pfs::getpfs::getpfs_store;
use crate::pfs::store::Store;
use crate::pfs::{GetpfsError, PfsError};

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
    #[error("bad TID '{0}': expected a hexadecimal TID such as 0x0000000100000000")]
    BadTid(String),
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
    // Issue 12.2: a directory inside a store silently meant PFS#0, so a
    // second import "into" another directory replaced the first one's
    // tree. PFS#0 is reached only by naming the store root.
    if !pfs.by_ref && pfs.dir != pfs.store.root() {
        return Err(BridgeError::PlainDir {
            path: path.display().to_string(),
            root: pfs.store.root().display().to_string(),
        });
    }
    Ok(Some((pfs.store, pfs.pfsd)))
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

/// A one-line progress report on stderr, only when it is a terminal.
pub(crate) struct Progress {
    /// Where the line goes: stderr when it is a terminal, else nowhere.
    out: Option<Box<dyn io::Write>>,
    every: Duration,
    shown: bool,
    last: Instant,
    what: &'static str,
}

impl Progress {
    pub(crate) fn new(what: &'static str, quiet: bool) -> Self {
        let tty = !quiet && nix::unistd::isatty(2).unwrap_or(false);
        let out: Option<Box<dyn io::Write>> = if tty {
            Some(Box::new(io::stderr()))
        } else {
            None
        };
        Progress::to(out, Duration::from_millis(200), what)
    }

    fn to(out: Option<Box<dyn io::Write>>, every: Duration, what: &'static str) -> Self {
        Progress {
            out,
            every,
            shown: false,
            last: Instant::now(),
            what,
        }
    }

    /// Rewrites the line, at most once per interval.
    pub(crate) fn tick(&mut self, files: u64, bytes: u64) {
        let Some(out) = &mut self.out else {
            return;
        };
        if self.last.elapsed() >= self.every {
            self.last = Instant::now();
            self.shown = true;
            let _ = write!(out, "\r{}: {files} files, {} MiB ", self.what, bytes >> 20);
            let _ = out.flush();
        }
    }

    /// Ends a line that was shown.
    pub(crate) fn done(&mut self) {
        if let (true, Some(out)) = (self.shown, &mut self.out) {
            let _ = writeln!(out);
            self.shown = false;
        }
    }
}

/// Microseconds since the epoch as HAMMER stores times (§1.8); times
/// before 1970 wrap like the kernel's unsigned field.
pub(crate) fn micros(secs: i64, nsec: i64) -> u64 {
    secs.wrapping_mul(1_000_000).wrapping_add(nsec / 1000) as u64
}

#[cfg(test)]
mod progress_tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test can read afterwards.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_line_is_rewritten_in_place_and_ended_once() {
        let buf = Shared::default();
        let mut p = Progress::to(Some(Box::new(buf.clone())), Duration::ZERO, "hammer import");
        p.tick(3, 5 << 20);
        p.tick(7, 12 << 20);
        p.done();
        p.done();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "\rhammer import: 3 files, 5 MiB \rhammer import: 7 files, 12 MiB \n"
        );
    }

    #[test]
    fn nothing_between_intervals_or_off_a_terminal() {
        let buf = Shared::default();
        let mut p = Progress::to(Some(Box::new(buf.clone())), Duration::from_secs(3600), "x");
        p.tick(1, 1);
        p.done();
        assert!(buf.0.lock().unwrap().is_empty());
        let mut off = Progress::to(None, Duration::ZERO, "x");
        off.tick(1, 1);
        off.done();
    }
}

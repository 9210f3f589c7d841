//! The store's own failures, beside the errnos of the ioctls it emulates,
//! and the errno a kernel would report for each.

use nix::errno::Errno;
use rusqlite::ErrorCode;

use super::schema::FORMAT_VERSION;
use crate::pfs::PfsError;

/// Store failures other than the errnos of the emulated ioctls.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store database: {0}")]
    Value(#[from] rusqlite::types::FromSqlError),
    #[error("{0}: not a hammer store")]
    NotAStore(String),
    #[error("store format version {0} is newer than this hammer supports ({FORMAT_VERSION})")]
    NewerFormat(i64),
    #[error(
        "store format version {0} predates this hammer's ({FORMAT_VERSION}): \
         create a new store and mirror into it"
    )]
    OlderFormat(i64),
    #[error("{0}: directory exists and is not empty")]
    NotEmpty(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("store is corrupt: {0}")]
    Corrupt(&'static str),
    /// A change asked of a store opened read-only.
    #[error("{0}: write access needed: this command changes the store (reading it needs none)")]
    ReadOnly(String),
    #[error(
        "{0}: cannot be read without write access until a command with write access has opened \
         it once (it makes the store's .hammer-store.db-shm file)"
    )]
    NoShm(String),
}

impl StoreError {
    /// The errno a kernel would report for this failure: the I/O error's
    /// own (ENOSPC, ...), ENOSPC for a full database, else EIO.
    pub fn errno(&self) -> Errno {
        match self {
            StoreError::Io { source, .. } => {
                source.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
            }
            StoreError::Sqlite(e) if e.sqlite_error_code() == Some(ErrorCode::DiskFull) => {
                Errno::ENOSPC
            }
            StoreError::ReadOnly(_) | StoreError::NoShm(_) => Errno::EACCES,
            _ => Errno::EIO,
        }
    }
}

impl From<rusqlite::Error> for PfsError {
    fn from(e: rusqlite::Error) -> Self {
        PfsError::Store(StoreError::Sqlite(e))
    }
}

impl From<rusqlite::types::FromSqlError> for PfsError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        PfsError::Store(StoreError::Value(e))
    }
}

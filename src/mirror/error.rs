//! Failures of the mirror commands, each with the original's text; every
//! one ends the command with exit status 1.

use std::io;

use nix::errno::Errno;

use crate::errno::strerror;
use crate::pfs::{GetpfsError, Pfs, PfsError};
use crate::wire::{BatchError, ReadError};

/// The header and terminator checks of protocol.md §3-4.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("validate_mrec_header: short read")]
    ShortRead,
    #[error("validate_mrec_header: did not get expected PFSD record type")]
    NotPfsd,
    #[error("validate_mrec_header: unexpected payload size")]
    PayloadSize,
    #[error("validate_mrec_header: Version mismatch")]
    Version,
    #[error("mirror-write: source and target have different shared-uuid's!")]
    SharedUuid,
    #[error("mirror-write: target must be in slave mode")]
    TargetMaster,
    #[error("mirror-write: HAMMER PFS version mismatch!")]
    PfsVersion,
    #[error(
        "Mirror-write {fs}: Did not get termination sync record, or rec_size is wrong rt={rt}"
    )]
    NoSync { fs: String, rt: i32 },
    #[error("mirror_read: Did not get final acknowledgement packet from target")]
    NoAck,
    #[error("Aborting operation")]
    Aborted,
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(transparent)]
    Getpfs(#[from] GetpfsError),
    /// The single-record reader's message, printed verbatim.
    #[error(transparent)]
    Reader(#[from] ReadError),
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// An ioctl failed: `<what>: <strerror>`.
    #[error("{what}: {source}")]
    Pfs { what: String, source: PfsError },
    /// MIRROR_READ / MIRROR_WRITE reported HEAD_ERROR.
    #[error("{what} fatal error {errno}")]
    Fatal { what: String, errno: i32 },
    /// The PFS the command works on was destroyed under it (its id may
    /// name a new PFS by now).
    #[error("{what}: PFS#{pfs_id} was destroyed")]
    Destroyed { what: String, pfs_id: u32 },
    /// Writing a record to the peer failed.
    #[error("write_mrecord: {}", strerror(.0))]
    Write(io::Error),
    /// Writing bulk records failed.
    #[error("Mirror-read {fs} failed: short write")]
    ShortWrite { fs: String },
    /// Printing a status line on stdout failed.
    #[error("stdout: {}", strerror(.0))]
    Stdout(io::Error),
}

impl MirrorError {
    /// Whether the message is printed verbatim (the original's "say")
    /// rather than as `hammer: <message>`.
    pub fn is_plain(&self) -> bool {
        matches!(self, MirrorError::Reader(_))
    }

    /// This error, or `Destroyed` (`what` describing the command) when it
    /// is an ENOENT from the PFS of `pfs` and a GET_PSEUDOFS on the handle
    /// confirms that PFS is gone. Whether ENOENT came as the error of an
    /// ioctl or in HEAD_ERROR, the message is the same on every backend.
    pub fn or_destroyed(self, pfs: &dyn Pfs, what: impl Into<String>) -> MirrorError {
        let enoent = match &self {
            MirrorError::Pfs { source, .. } => source.errno() == Errno::ENOENT,
            MirrorError::Fatal { errno, .. } => *errno == Errno::ENOENT as i32,
            _ => false,
        };
        if enoent
            && pfs
                .get_pseudofs()
                .is_err_and(|e| e.errno() == Errno::ENOENT)
        {
            MirrorError::Destroyed {
                what: what.into(),
                pfs_id: pfs.pfs_id(),
            }
        } else {
            self
        }
    }
}

pub fn pfs_err(what: impl Into<String>) -> impl FnOnce(PfsError) -> MirrorError {
    let what = what.into();
    move |source| MirrorError::Pfs { what, source }
}

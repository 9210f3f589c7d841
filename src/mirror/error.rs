//! Failures of the mirror commands, each with the original's text; every
//! one ends the command with exit status 1.

use std::io;

use nix::errno::Errno;

use crate::commands::pfs::PfsCmdError;
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
    /// Writing bulk records failed `offset` bytes into the stream; the
    /// message is the original's, the cause stays attached as the source.
    #[error("Mirror-read {fs} failed: short write")]
    ShortWrite {
        fs: String,
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// Printing a status line on stdout failed.
    #[error("stdout: {}", strerror(.0))]
    Stdout(io::Error),
    /// The missing slave could not be created (the original went on); its
    /// own failure is told first.
    #[error("Failed to create PFS")]
    SlaveNotCreated(#[source] PfsCmdError),
}

impl MirrorError {
    /// The class the events of `-j` give this failure.
    pub fn class(&self) -> &'static str {
        match self {
            _ if self.is_peer_gone() => "peer-gone",
            MirrorError::Getpfs(_) | MirrorError::Pfs { .. } | MirrorError::Fatal { .. } => "pfs",
            MirrorError::SlaveNotCreated(_) => "pfs",
            MirrorError::Reader(_) | MirrorError::Batch(_) | MirrorError::Protocol(_) => "protocol",
            MirrorError::Destroyed { .. } => "destroyed",
            MirrorError::Write(_) | MirrorError::ShortWrite { .. } | MirrorError::Stdout(_) => "io",
        }
    }

    /// The errno behind this failure, when there is one.
    pub fn errno(&self) -> Option<i32> {
        use crate::wire::{BatchErrorKind as B, ReadErrorKind as R};
        match self {
            MirrorError::Getpfs(GetpfsError::Open { source, .. }) => source.raw_os_error(),
            MirrorError::Getpfs(GetpfsError::Access { source, .. }) => Some(source.errno() as i32),
            MirrorError::Pfs { source, .. } => Some(source.errno() as i32),
            MirrorError::Fatal { errno, .. } => Some(*errno),
            MirrorError::Write(e) | MirrorError::Stdout(e) => e.raw_os_error(),
            MirrorError::ShortWrite { source, .. } => source.raw_os_error(),
            MirrorError::Reader(r) => match &r.kind {
                R::Io(e) => e.raw_os_error(),
                _ => None,
            },
            MirrorError::Batch(b) => match &b.kind {
                B::Io(e) => e.raw_os_error(),
                _ => None,
            },
            _ => None,
        }
    }

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

    /// Whether this failure says only that the peer went away: the channel
    /// ended or broke in the middle of the protocol. mirror-copy does not
    /// count such a side as failed when the other side failed first.
    pub fn is_peer_gone(&self) -> bool {
        use crate::wire::{BatchErrorKind as B, ReadErrorKind as R};
        let broken = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::UnexpectedEof
            )
        };
        match self {
            MirrorError::Protocol(p) => matches!(
                p,
                ProtocolError::ShortRead
                    | ProtocolError::NoAck
                    | ProtocolError::NoSync { rt: -1, .. }
            ),
            MirrorError::Reader(e) => match &e.kind {
                R::ShortHeader | R::ShortPayload => true,
                R::Io(e) => broken(e),
                _ => false,
            },
            MirrorError::Batch(e) => match &e.kind {
                B::ShortRead => true,
                B::Io(e) => broken(e),
                _ => false,
            },
            MirrorError::Write(e) | MirrorError::ShortWrite { source: e, .. } => broken(e),
            _ => false,
        }
    }
}

impl MirrorError {
    /// Whether trying again cannot help: the paths or the pair of PFSes
    /// are wrong (a side's path does not open, a shared-uuid differs, the
    /// target is a master or of another version, a slave cannot be
    /// created). mirror-stream stops on such a failure instead of
    /// reconnecting for ever.
    pub fn is_permanent(&self) -> bool {
        match self {
            MirrorError::Getpfs(_) | MirrorError::SlaveNotCreated(_) => true,
            MirrorError::Protocol(p) => matches!(
                p,
                ProtocolError::SharedUuid
                    | ProtocolError::TargetMaster
                    | ProtocolError::PfsVersion
                    | ProtocolError::Version
                    | ProtocolError::Aborted
            ),
            _ => false,
        }
    }
}

/// `MirrorError::is_permanent` for a remote side's last stderr line.
pub fn is_permanent_line(line: &str) -> bool {
    const LINES: &[&str] = &[
        "hammer: mirror-write: source and target have different shared-uuid's!",
        "hammer: mirror-write: target must be in slave mode",
        "hammer: mirror-write: HAMMER PFS version mismatch!",
        "hammer: validate_mrec_header: Version mismatch",
        "hammer: Aborting operation",
        "hammer: Failed to create PFS",
    ];
    let line = line.trim_end_matches(['\r', '\n']);
    LINES.contains(&line)
        || line.starts_with("hammer: Failed to open ")
        || line.starts_with("hammer: Cannot access ")
}

/// Whether a line a remote side printed on stderr is the message of a
/// failure that only says its peer went away (`MirrorError::is_peer_gone`
/// as text: a remote side's errors arrive as its stderr).
pub fn is_peer_gone_line(line: &str) -> bool {
    const LINES: &[&str] = &[
        "hammer: validate_mrec_header: short read",
        "hammer: mirror_read: Did not get final acknowledgement packet from target",
        "short read of mrecord header",
        "read_mrecord: short read on payload",
        "read_mrecord: Broken pipe",
        "read_mrecord: Connection reset by peer",
        "hammer: read_mrecords: short read on pipe",
        "hammer: read_mrecords: Broken pipe",
        "hammer: read_mrecords: Connection reset by peer",
        "hammer: write_mrecord: Broken pipe",
        "hammer: write_mrecord: Connection reset by peer",
    ];
    let line = line.trim_end_matches(['\r', '\n']);
    LINES.contains(&line)
        || (line.starts_with("hammer: Mirror-read ") && line.ends_with(" failed: short write"))
        || (line.starts_with("hammer: Mirror-write ")
            && line.ends_with(": Did not get termination sync record, or rec_size is wrong rt=-1"))
}

pub fn pfs_err(what: impl Into<String>) -> impl FnOnce(PfsError) -> MirrorError {
    let what = what.into();
    move |source| MirrorError::Pfs { what, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{BatchErrorKind, ReadErrorKind};

    /// The last line a failure prints on stderr, as `main` renders it.
    fn line(e: &MirrorError) -> String {
        if e.is_plain() {
            e.to_string()
        } else {
            format!("hammer: {e}")
        }
    }

    fn gone_errors() -> Vec<MirrorError> {
        let io = |k: io::ErrorKind| {
            let errno = match k {
                io::ErrorKind::BrokenPipe => libc::EPIPE,
                _ => libc::ECONNRESET,
            };
            io::Error::from_raw_os_error(errno)
        };
        vec![
            ProtocolError::ShortRead.into(),
            ProtocolError::NoAck.into(),
            ProtocolError::NoSync {
                fs: "/b/s".into(),
                rt: -1,
            }
            .into(),
            ReadError {
                kind: ReadErrorKind::ShortHeader,
                offset: 0,
            }
            .into(),
            ReadError {
                kind: ReadErrorKind::ShortPayload,
                offset: 16,
            }
            .into(),
            ReadError {
                kind: ReadErrorKind::Io(io(io::ErrorKind::ConnectionReset)),
                offset: 0,
            }
            .into(),
            BatchError {
                kind: BatchErrorKind::ShortRead,
                offset: 0,
            }
            .into(),
            BatchError {
                kind: BatchErrorKind::Io(io(io::ErrorKind::BrokenPipe)),
                offset: 0,
            }
            .into(),
            MirrorError::Write(io(io::ErrorKind::BrokenPipe)),
            MirrorError::ShortWrite {
                fs: "/a/m".into(),
                offset: 320,
                source: io(io::ErrorKind::BrokenPipe),
            },
        ]
    }

    /// A remote side's peer-gone failures are recognised by their text
    /// exactly where a local side's are by their type.
    #[test]
    fn peer_gone_by_type_and_by_text_agree() {
        for e in gone_errors() {
            assert!(e.is_peer_gone(), "{e:?}");
            assert!(
                is_peer_gone_line(&format!("{}\n", line(&e))),
                "{}",
                line(&e)
            );
        }
        let own: Vec<MirrorError> = vec![
            ProtocolError::SharedUuid.into(),
            ProtocolError::TargetMaster.into(),
            ProtocolError::Aborted.into(),
            ProtocolError::NoSync {
                fs: "/b/s".into(),
                rt: 9,
            }
            .into(),
            BatchError {
                kind: BatchErrorKind::BadCrc,
                offset: 0,
            }
            .into(),
            MirrorError::Write(io::Error::from_raw_os_error(libc::ENOSPC)),
        ];
        for e in own {
            assert!(!e.is_peer_gone(), "{e:?}");
            assert!(!is_peer_gone_line(&line(&e)), "{}", line(&e));
        }
        assert!(!is_peer_gone_line(
            "ssh: Could not resolve hostname nohost: Name or service not known"
        ));
    }

    #[test]
    fn permanent_by_type_and_by_text_agree() {
        let open = GetpfsError::Open {
            path: "/b/x".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        let access = GetpfsError::Access {
            path: "/tmp".into(),
            source: PfsError::Sys(nix::errno::Errno::ENOTTY),
        };
        let permanent: Vec<MirrorError> = vec![
            open.into(),
            access.into(),
            ProtocolError::SharedUuid.into(),
            ProtocolError::TargetMaster.into(),
            ProtocolError::PfsVersion.into(),
            ProtocolError::Version.into(),
            ProtocolError::Aborted.into(),
            MirrorError::SlaveNotCreated(PfsCmdError::Reported),
        ];
        for e in permanent {
            assert!(e.is_permanent(), "{e:?}");
            assert!(is_permanent_line(&line(&e)), "{}", line(&e));
        }
        for e in gone_errors() {
            assert!(!e.is_permanent(), "{e:?}");
            assert!(!is_permanent_line(&line(&e)), "{}", line(&e));
        }
        assert!(!is_permanent_line(
            "ssh: connect to host backup port 22: Connection refused"
        ));
    }
}

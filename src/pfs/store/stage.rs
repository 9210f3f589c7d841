//! A held batch: the MIRROR_WRITE calls of a batch that would change a
//! slave's history at or below its sync point, kept aside in an unlinked
//! file of the store's directory until the SET or SYNCTID at the batch's
//! SYNC applies them all in one transaction (`write.rs`). The store's
//! write lock is taken only then, for as long as applying takes: a client
//! that stalls before its SYNC holds no other writer of the store.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::error::StoreError;
use crate::pfs::{MirrorWriteReq, Result};

pub(super) struct Held {
    pub(super) pfs_id: u32,
    /// Each call's request as sent and the length of its records.
    calls: Vec<(MirrorWriteReq, u64)>,
    /// The calls' records, one after the other; gone with the handle
    /// (or a killed process) as it has no name.
    file: File,
    len: u64,
}

impl Held {
    pub(super) fn new(root: &Path, pfs_id: u32) -> Result<Held> {
        let file = tempfile::tempfile_in(root).map_err(|e| io(root, e))?;
        Ok(Held {
            pfs_id,
            calls: Vec::new(),
            file,
            len: 0,
        })
    }

    /// Keeps a call for the batch's SYNC.
    pub(super) fn push(&mut self, sent: &MirrorWriteReq, records: &[u8]) -> Result<()> {
        self.file
            .write_all_at(records, self.len)
            .map_err(|e| io(Path::new("held batch"), e))?;
        self.len += records.len() as u64;
        self.calls.push((*sent, records.len() as u64));
        Ok(())
    }

    /// Calls `f` with each kept call, in order.
    pub(super) fn replay(
        &self,
        mut f: impl FnMut(MirrorWriteReq, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut buf = Vec::new();
        let mut at = 0;
        for (req, len) in &self.calls {
            let len = usize::try_from(*len).map_err(|_| nix::errno::Errno::EFBIG)?;
            buf.resize(len, 0);
            self.file
                .read_exact_at(&mut buf, at)
                .map_err(|e| io(Path::new("held batch"), e))?;
            at += len as u64;
            f(*req, &buf)?;
        }
        Ok(())
    }
}

fn io(path: &Path, source: std::io::Error) -> crate::pfs::PfsError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_come_back_in_order_with_their_requests() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = Held::new(dir.path(), 2).unwrap();
        let calls: Vec<(MirrorWriteReq, Vec<u8>)> = (0..5u64)
            .map(|i| {
                (
                    MirrorWriteReq::new(i, 100 + i),
                    vec![i as u8; 1000 * i as usize],
                )
            })
            .collect();
        for (req, bytes) in &calls {
            h.push(req, bytes).unwrap();
        }
        let mut got = Vec::new();
        h.replay(|req, bytes| {
            got.push((req.tid_beg, req.tid_end, bytes.to_vec()));
            Ok(())
        })
        .unwrap();
        let want: Vec<_> = calls
            .iter()
            .map(|(r, b)| (r.tid_beg, r.tid_end, b.clone()))
            .collect();
        assert_eq!(got, want);
        // Nothing of it is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

//! The record stream `hammer verify` checks: MIRROR_READ over a whole PFS
//! as mirror-read's bulk loop reads it, stepping over a record whose
//! payload cannot be read instead of stopping there.

use std::cell::Cell;

use nix::errno::Errno;

use crate::ondisk::{BaseElm, LeafElm, LOCALIZE_MASK};
use crate::pfs::store::{encode_key, RecKey};
use crate::pfs::{MirrorReadReq, Pfs, PfsError};
use crate::wire::reader::BatchIter;
use crate::wire::{Mrecord, RawRecord, SERIALBUF_SIZE};

/// One record of the scan, in key order.
pub(super) enum Item<'a> {
    /// As MIRROR_READ returned it, payload included.
    Read(RawRecord<'a>),
    /// Its leaf, from a read without payloads; reading its payload failed.
    Unreadable { leaf: LeafElm, error: PfsError },
}

/// The scan could not go on at `key`: not even the keys from there on
/// could be read.
#[derive(Debug)]
pub(super) struct Stopped {
    pub key: BaseElm,
    pub error: PfsError,
}

pub(super) struct Scan<'p> {
    pfs: &'p mut dyn Pfs,
    tid_end: u64,
    /// The last key of the scan under way.
    key_end: BaseElm,
    buf: Vec<u8>,
}

impl<'p> Scan<'p> {
    /// A scan of the records of `pfs` created up to `tid_end`.
    pub(super) fn new(pfs: &'p mut dyn Pfs, tid_end: u64) -> Self {
        Scan {
            pfs,
            tid_end,
            key_end: BaseElm::KEY_END_INIT,
            buf: vec![0; SERIALBUF_SIZE],
        }
    }

    /// Calls `f` for every record, all versions, in key order.
    pub(super) fn run<E: From<Stopped>>(
        &mut self,
        f: impl FnMut(Item<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.run_between(BaseElm::KEY_BEG_INIT, BaseElm::KEY_END_INIT, f)
    }

    /// Calls `f` for every record from `key_beg` to `key_end` (keys
    /// without the PFS bits, both included), all versions, in key order.
    pub(super) fn run_between<E: From<Stopped>>(
        &mut self,
        mut key_beg: BaseElm,
        key_end: BaseElm,
        mut f: impl FnMut(Item<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.key_end = key_end;
        // A scan that passes key_end returns key_cur = key_end, as does one
        // whose buffer filled at a record there: the read from key_end
        // that follows may bring the record handed over last again.
        // (Only then: verify reports records out of key order.)
        let mut handed: Option<RecKey> = None;
        let at_end = Cell::new(false);
        let mut f = |item: Item<'_>| -> Result<(), E> {
            let leaf = match &item {
                Item::Read(rec) => rec.leaf(),
                Item::Unreadable { leaf, .. } => Some(*leaf),
            };
            if let Some(l) = leaf {
                let k = encode_key(&scan_key(&l.base));
                if at_end.get() && handed == Some(k) {
                    return Ok(());
                }
                handed = Some(k);
            }
            f(item)
        };
        loop {
            // A read of [key_end, key_end] always fits the buffer: the last.
            let last = key_beg == key_end;
            at_end.set(last);
            let mut req = self.request(key_beg, key_end, false);
            match self.read(&mut req) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    for rec in BatchIter::new(&self.buf[..n]) {
                        f(Item::Read(rec))?;
                    }
                    key_beg = req.key_cur;
                }
                Err(error) if error.errno() == Errno::EINTR => {
                    return Err(Stopped {
                        key: key_beg,
                        error,
                    }
                    .into())
                }
                Err(error) => key_beg = self.step_over(key_beg, error, &mut f)?,
            }
            if last {
                return Ok(());
            }
        }
    }

    /// After a read from `key_beg` failed with `error` (MIRROR_READ fails
    /// as a whole at a payload it cannot read): lists the records from
    /// there by a read that loads no payload, reads them one at a time up
    /// to the one that fails, hands that one over as unreadable and
    /// returns the key after it, where bulk reads go on. The reads of
    /// single records are only for the records before a failing one.
    fn step_over<E: From<Stopped>>(
        &mut self,
        key_beg: BaseElm,
        error: PfsError,
        f: &mut impl FnMut(Item<'_>) -> Result<(), E>,
    ) -> Result<BaseElm, E> {
        let mut keys = self.request(key_beg, self.key_end, true);
        let n = self.read(&mut keys).map_err(|error| Stopped {
            key: key_beg,
            error,
        })?;
        let leaves: Vec<LeafElm> = BatchIter::new(&self.buf[..n])
            .filter_map(|rec| match rec.decode() {
                Some(Mrecord::Rec { leaf, .. }) => Some(leaf),
                _ => None,
            })
            .collect();
        if leaves.is_empty() {
            // The failure is not a record's: nothing to step over.
            return Err(Stopped {
                key: key_beg,
                error,
            }
            .into());
        }
        for (i, leaf) in leaves.iter().enumerate() {
            let at = scan_key(&leaf.base);
            let mut one = self.request(at, at, false);
            match self.read(&mut one) {
                Ok(n) => {
                    for rec in BatchIter::new(&self.buf[..n]) {
                        f(Item::Read(rec))?;
                    }
                }
                Err(error) => {
                    f(Item::Unreadable { leaf: *leaf, error })?;
                    return Ok(leaves
                        .get(i + 1)
                        .map_or(keys.key_cur, |l| scan_key(&l.base)));
                }
            }
        }
        // Each read alone: the failure did not come back.
        Ok(keys.key_cur)
    }

    /// A read of `[beg, end]`. tid_beg 0: no record is older than it and
    /// no subtree unchanged since it, so every record comes as a REC, none
    /// as a PASS or inside a SKIP (kernel-semantics.md §3.2-3.3).
    fn request(&self, beg: BaseElm, end: BaseElm, nodata: bool) -> MirrorReadReq {
        let mut req = MirrorReadReq::new(0, self.tid_end);
        req.key_beg = beg;
        req.key_end = end;
        req.nodata = nodata;
        req
    }

    /// One MIRROR_READ into the buffer; an interrupted one is an error,
    /// not a short result.
    fn read(&mut self, req: &mut MirrorReadReq) -> Result<usize, PfsError> {
        let n = self.pfs.mirror_read(req, &mut self.buf)?;
        if req.interrupted {
            return Err(Errno::EINTR.into());
        }
        Ok(n)
    }
}

/// A record's key as a scan bound: without the PFS bits, which the caller
/// may not pass (kernel-semantics.md §3.1).
fn scan_key(key: &BaseElm) -> BaseElm {
    BaseElm {
        localization: key.localization & LOCALIZE_MASK,
        ..*key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ondisk::{rectype, PseudofsData, LOCALIZE_MISC};
    use crate::pfs::store::{RecordId, Store};
    use crate::pfs::{MirrorWriteReq, Result, SynctidOp};

    /// A store whose MIRROR_READs are counted: past `limit` the test fails
    /// at once instead of spinning in a scan that never ends.
    struct Bounded {
        store: Store,
        reads: usize,
        limit: usize,
    }

    impl Pfs for Bounded {
        fn pfs_id(&self) -> u32 {
            self.store.pfs_id()
        }
        fn set_pfs_id(&mut self, pfs_id: u32) {
            self.store.set_pfs_id(pfs_id)
        }
        fn version(&self) -> Result<u32> {
            self.store.version()
        }
        fn get_pseudofs(&self) -> Result<PseudofsData> {
            self.store.get_pseudofs()
        }
        fn set_pseudofs(&mut self, pfsd: &PseudofsData) -> Result<()> {
            self.store.set_pseudofs(pfsd)
        }
        fn upgrade(&mut self) -> Result<()> {
            self.store.upgrade()
        }
        fn downgrade(&mut self) -> Result<()> {
            self.store.downgrade()
        }
        fn destroy(&mut self) -> Result<()> {
            self.store.destroy()
        }
        fn wait(&self, tid: u64) -> Result<()> {
            self.store.wait(tid)
        }
        fn synctid(&mut self, op: SynctidOp) -> Result<u64> {
            self.store.synctid(op)
        }
        fn mirror_read(&mut self, req: &mut MirrorReadReq, buf: &mut [u8]) -> Result<usize> {
            self.reads += 1;
            assert!(
                self.reads <= self.limit,
                "{} MIRROR_READs for a few records: the scan loops",
                self.reads
            );
            self.store.mirror_read(req, buf)
        }
        fn mirror_write(&mut self, req: &mut MirrorWriteReq, records: &[u8]) -> Result<usize> {
            self.store.mirror_write(req, records)
        }
    }

    /// A range scan ending exactly at a record's key hands over every
    /// record up to it once and stops: MIRROR_READ returns key_cur =
    /// key_end both when it passed the end and when its buffer filled
    /// there, and reading on from key_end used to bring that record back
    /// forever.
    #[test]
    fn a_range_ending_at_a_records_key_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(&dir.path().join("s")).unwrap();
        store.set_pfs_id(1);
        store
            .set_pseudofs(&PseudofsData {
                sync_beg_tid: 1,
                sync_end_tid: 1,
                ..Default::default()
            })
            .unwrap();
        let mut tx = store.begin().unwrap();
        for key in 1..=6 {
            let id = RecordId {
                localization: LOCALIZE_MISC,
                obj_id: 0x100,
                rec_type: rectype::DATA,
                key: key * 0x4000,
            };
            tx.put(&id, 2, &[key as u8; 100]).unwrap();
        }
        let tid_end = tx.commit().unwrap();
        let mut all = Vec::new();
        store
            .for_each_record(|leaf, _| all.push(scan_key(&leaf.base)))
            .unwrap();
        // Records lie on both sides of the end.
        let key_end = *all
            .iter()
            .find(|b| b.rec_type == rectype::DATA && b.key == 4 * 0x4000)
            .unwrap();
        let want: Vec<RecKey> = all
            .iter()
            .map(encode_key)
            .filter(|k| *k <= encode_key(&key_end))
            .collect();

        let mut pfs = Bounded {
            store,
            reads: 0,
            limit: 8,
        };
        let mut got = Vec::new();
        Scan::new(&mut pfs, tid_end)
            .run_between(BaseElm::KEY_BEG_INIT, key_end, |item| {
                if let Item::Read(rec) = item {
                    got.extend(rec.leaf().map(|l| encode_key(&scan_key(&l.base))));
                }
                Ok::<_, Stopped>(())
            })
            .unwrap();
        assert_eq!(got, want);
    }
}

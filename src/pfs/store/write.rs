//! MIRROR_WRITE on the store: framing checks, re-localization, the sweep
//! and the per-record rules (spec: kernel-semantics.md §4), one SQLite
//! transaction per call, or a held batch.
//!
//! A slave publishes its history up to its sync point S; a batch moves S
//! only at SYNC, and one cut before must leave that history as it was. A
//! normal batch creates and deletes only above S, so each of its calls
//! commits at once and the store's write lock is free between calls (one
//! store serves many PFSes). A call that would change the history at or
//! below S (S read in its transaction) starts a held batch instead: one
//! that inserts a record created at or before S, or gives a record
//! created at or before S a delete_tid that differs from its old one at
//! or before S (either deleted by S and not before, or not and now so,
//! or deleted at another TID by S), as a sweep with tid_end at or before
//! S does, or a REC or PASS carrying such a delete_tid. Its transaction
//! stays open across calls until the next SET_PSEUDOFS or SYNCTID on the
//! same handle, which mirror-write issues at SYNC (SET moves S inside it,
//! so the changes and the new S become durable together). Dropping the
//! handle, a record or store error, or any other write operation rolls it
//! back: a batch that never reached its SYNC changes nothing at or below
//! S, while a complete stream still does what the kernel does (an older
//! one may move S back).

use nix::errno::Errno;
use rusqlite::Connection;

use super::blob::Blobs;
use super::key::{self, RecKey};
use super::payload::{payload_into, stash, Stored, DATA_OFFSET, INLINE_MAX};
use super::records::{insert_rec, key_from, leaf_from, mtid_of, relocalize, update_leaf};
use super::tid::{now_secs, raise_next_tid};
use super::txn::{known_localization, known_rec_type};
use super::Store;
use crate::ondisk::{rectype, BaseElm, DirentryHeadLe, LeafElm};
use crate::pfs::{MirrorWriteReq, PfsError, Result};
use crate::wire::crc::{crc32c, data_crc_matches};
use crate::wire::record::{Head, RawRecord};
use crate::wire::{
    doalign, mrec_type, HEAD_SIZE, MAX_REC_SIZE, PASS_REC_SIZE, REC_HEAD_SIZE, SIGNATURE,
    SKIP_REC_SIZE, XBUF_SIZE,
};

/// The largest `size` the ioctl accepts.
const MAX_WRITE_SIZE: usize = 0x7000_0000;

/// The sweep position P: the last key handled, and whether a record
/// exactly there is still to be examined (after a SKIP) or not.
struct Position {
    key: RecKey,
    included: bool,
}

struct Batch<'c> {
    tx: &'c Connection,
    pfs_id: u32,
    tid_beg: u64,
    tid_end: u64,
    now: u32,
    pos: Position,
    /// Live records to mark deleted, collected before rewriting them.
    doomed: Vec<LeafElm>,
    /// The largest TID stored by this call: the allocator is raised above
    /// it once, at the end (§1.8).
    max_tid: u64,
    /// What the last sweep saw beyond its end: (that end, the first target
    /// record after it). Records arrive in ascending order and are only
    /// inserted at the current one, so while the next record's key is
    /// before that first record, there is nothing to sweep or find and no
    /// query is needed: an initial copy into an empty PFS only inserts.
    ahead: Option<(RecKey, Option<RecKey>)>,
    blobs: Blobs,
    /// The slave's sync point S (None for a master, whose history no
    /// sync point publishes).
    sync: Option<u64>,
    /// Whether this call may change history at or below S; if not, such a
    /// change ends it with nothing kept.
    may_hold: bool,
    /// This call changed history at or below S.
    below_sync: bool,
}

/// Applies `records`; on a record error nothing of this call (or of the
/// batch it held) is kept, the payload file is cut back, `head_error` is
/// set and the returned count points at the failing record. `None` when
/// the call would change history at or below the sync point and may not
/// hold (nothing kept, `req` to be reset by the caller).
pub(super) fn mirror_write(
    store: &Store,
    pfs_id: u32,
    req: &mut MirrorWriteReq,
    records: &[u8],
    may_hold: bool,
) -> Result<Option<usize>> {
    if records.len() > MAX_WRITE_SIZE {
        return Err(Errno::EINVAL.into());
    }
    for k in [&mut req.key_beg, &mut req.key_end, &mut req.key_cur] {
        k.localization = relocalize(k.localization, pfs_id);
    }
    req.head_error = None;
    let (mut tx, held) = store.write_tx_on(pfs_id)?;
    let pfsd = store.live(&tx, pfs_id)?.pfsd;
    let blobs = Blobs::open_writer(&tx, &store.root, pfs_id)?;
    tx.guard_tail(&blobs);
    let mut b = Batch {
        tx: &tx,
        pfs_id,
        tid_beg: req.tid_beg,
        tid_end: req.tid_end,
        now: now_secs(),
        pos: Position {
            key: key::encode(&req.key_cur),
            included: false,
        },
        doomed: Vec::new(),
        max_tid: 0,
        ahead: None,
        blobs,
        sync: pfsd.is_slave().then_some(pfsd.sync_end_tid),
        may_hold: may_hold || held,
        below_sync: false,
    };
    let mut count = 0;
    while count + HEAD_SIZE <= records.len() {
        match b.apply(&records[count..]) {
            Ok(used) => count += used,
            Err(StepError::Record(errno)) => {
                req.head_error = Some(errno);
                return Ok(Some(count));
            }
            Err(StepError::BelowSync) => return Ok(None),
            Err(StepError::Store(e)) => return Err(e),
        }
    }
    req.key_cur = key::decode(&b.pos.key);
    req.key_cur.localization = relocalize(req.key_cur.localization, pfs_id);
    raise_next_tid(&tx, b.max_tid)?;
    b.blobs.finish(&tx, pfs_id, false)?;
    if held || b.below_sync {
        store.held.replace(Some(tx.hold(pfs_id)));
    } else {
        tx.commit()?;
    }
    Ok(Some(count))
}

/// Why a record was not applied: the record is bad (reported in the head,
/// the ioctl itself succeeds), it would change history at or below the
/// sync point in a call that may not hold, or the store failed.
enum StepError {
    Record(Errno),
    BelowSync,
    Store(PfsError),
}

impl<E: Into<PfsError>> From<E> for StepError {
    fn from(e: E) -> Self {
        StepError::Store(e.into())
    }
}

type Step<T> = std::result::Result<T, StepError>;

fn bad<T>() -> Step<T> {
    Err(StepError::Record(Errno::EINVAL))
}

impl Batch<'_> {
    /// Applies the record at the start of `rest`; returns the bytes it
    /// occupies.
    fn apply(&mut self, rest: &[u8]) -> Step<usize> {
        let Some(head) = Head::from_slice(rest) else {
            return bad();
        };
        let rec_size = head.rec_size();
        if head.signature() != SIGNATURE
            || rec_size < HEAD_SIZE as u32
            || rec_size > MAX_REC_SIZE
            || rec_size as usize > rest.len()
        {
            return bad();
        }
        let Some(raw) = RawRecord::new(&rest[..rec_size as usize]) else {
            return bad();
        };
        match head.rec_type() & mrec_type::MASK {
            mrec_type::SKIP if rec_size == SKIP_REC_SIZE => self.skip(&raw)?,
            mrec_type::REC if rec_size >= REC_HEAD_SIZE => self.rec(&raw)?,
            mrec_type::REC_BADCRC if rec_size >= REC_HEAD_SIZE => {}
            mrec_type::PASS if rec_size == PASS_REC_SIZE => self.pass(&raw)?,
            _ => return bad(),
        }
        Ok(doalign(rec_size).min(rest.len()))
    }

    fn skip(&mut self, raw: &RawRecord<'_>) -> Step<()> {
        let (Some(beg), Some(end)) = (
            raw.array::<{ BaseElm::SIZE }>(HEAD_SIZE),
            raw.array::<{ BaseElm::SIZE }>(HEAD_SIZE + BaseElm::SIZE),
        ) else {
            return bad();
        };
        let beg = self.local_key(&BaseElm::decode(beg));
        let end = self.local_key(&BaseElm::decode(end));
        self.sweep_to(&beg)?;
        self.pos = Position {
            key: end,
            included: true,
        };
        // What lies after skip_beg says nothing about what follows skip_end.
        self.ahead = None;
        Ok(())
    }

    fn rec(&mut self, raw: &RawRecord<'_>) -> Step<()> {
        let Some(leaf) = raw.leaf() else {
            return bad();
        };
        let data_len = leaf.data_len;
        if data_len < 0
            || data_len as u32 > XBUF_SIZE
            || REC_HEAD_SIZE as usize + data_len as usize > raw.bytes().len()
        {
            return bad();
        }
        let Some((leaf, found)) = self.reach(leaf)? else {
            return Ok(());
        };
        let start = REC_HEAD_SIZE as usize;
        let data = &raw.bytes()[start..start + data_len as usize];
        match found {
            Some(target) => {
                self.repair_payload(&target, data)?;
                self.update_delete_tid(target, &leaf)?
            }
            None if leaf.base.create_tid >= self.tid_beg => self.create(leaf, data)?,
            None => {}
        }
        self.pos = Position {
            key: key::encode(&leaf.base),
            included: false,
        };
        Ok(())
    }

    fn pass(&mut self, raw: &RawRecord<'_>) -> Step<()> {
        let Some(leaf) = raw.leaf() else {
            return bad();
        };
        let Some((leaf, found)) = self.reach(leaf)? else {
            return Ok(());
        };
        if let Some(target) = found {
            self.update_delete_tid(target, &leaf)?;
        }
        self.pos = Position {
            key: key::encode(&leaf.base),
            included: false,
        };
        Ok(())
    }

    /// What REC and PASS share: re-localize, sweep up to the record and
    /// find the target's copy. `None` for a CONFIG record, which is never
    /// mirrored (§4.7) and leaves the position where it was.
    fn reach(&mut self, mut leaf: LeafElm) -> Step<Option<(LeafElm, Option<LeafElm>)>> {
        self.relocalize_leaf(&mut leaf)?;
        let found = self.sweep_to(&key::encode(&leaf.base))?;
        Ok((leaf.base.rec_type != rectype::CONFIG).then_some((leaf, found)))
    }

    /// Moves a leaf into the target PFS (§4.2); refuses what no PFS can
    /// hold: an unknown record type or localization type.
    fn relocalize_leaf(&self, leaf: &mut LeafElm) -> Step<()> {
        if !known_rec_type(leaf.base.rec_type) || !known_localization(leaf.base.localization) {
            return bad();
        }
        leaf.base.localization = relocalize(leaf.base.localization, self.pfs_id);
        Ok(())
    }

    fn local_key(&self, e: &BaseElm) -> RecKey {
        key::encode(&BaseElm {
            localization: relocalize(e.localization, self.pfs_id),
            ..*e
        })
    }

    /// The sweep of §4.3 over `(P, k)` (P included after a SKIP): live,
    /// non-CONFIG records created before tid_end are marked deleted at
    /// tid_end. Returns the target record exactly at `k`, if any.
    fn sweep_to(&mut self, k: &RecKey) -> Step<Option<LeafElm>> {
        if let Some((end, first_after)) = &self.ahead {
            let clear = match first_after {
                Some(n) => n > k,
                None => true,
            };
            if end < k && clear {
                return Ok(None);
            }
        }
        let mut from = self.pos.key.to_vec();
        if !self.pos.included {
            // The smallest blob above P.
            from.push(0);
        }
        if from.as_slice() > &k[..] {
            // Resuming exactly at `k` (a call boundary): nothing to sweep,
            // but the record there must still be found.
            from = k.to_vec();
        }
        let mut found = None;
        {
            // Read one record past `k` to know what lies ahead.
            let mut stmt = self
                .tx
                .prepare_cached("SELECT k, leaf FROM rec WHERE k >= ?1 ORDER BY k")?;
            let mut rows = stmt.query([&from[..]])?;
            let mut first_after = None;
            while let Some(row) = rows.next()? {
                let rk = key_from(row.get_ref(0)?.as_blob()?)?;
                if rk > *k {
                    first_after = Some(rk);
                    break;
                }
                let leaf = leaf_from(row.get_ref(1)?.as_blob()?)?;
                if rk == *k {
                    found = Some(leaf);
                } else if leaf.base.rec_type != rectype::CONFIG
                    && leaf.base.delete_tid == 0
                    && leaf.base.create_tid < self.tid_end
                {
                    self.doomed.push(leaf);
                }
            }
            self.ahead = Some((*k, first_after));
        }
        let doomed = std::mem::take(&mut self.doomed);
        for mut leaf in doomed {
            self.deleting(&leaf, self.tid_end)?;
            leaf.base.delete_tid = self.tid_end;
            leaf.delete_ts = self.now;
            self.max_tid = self.max_tid.max(self.tid_end);
            update_leaf(self.tx, &leaf, mtid_of(&leaf))?;
        }
        Ok(found)
    }

    /// Before `target`'s delete_tid becomes `d`: whether that changes what
    /// the PFS shows at some TID at or below S.
    fn deleting(&mut self, target: &LeafElm, d: u64) -> Step<()> {
        let Some(s) = self.sync else {
            return Ok(());
        };
        // As of S and before, a delete_tid of 0 or above S is "not deleted".
        let by_s = |d: u64| (d != 0 && d <= s).then_some(d);
        if target.base.create_tid <= s && by_s(target.base.delete_tid) != by_s(d) {
            self.below_sync()?;
        }
        Ok(())
    }

    /// A change of the history at or below S: the call holds its batch if
    /// it may, else it ends with nothing kept.
    fn below_sync(&mut self) -> Step<()> {
        if !self.may_hold {
            return Err(StepError::BelowSync);
        }
        self.below_sync = true;
        Ok(())
    }

    /// §4.5: a non-zero source delete_tid that differs replaces the
    /// target's; 0 never un-deletes.
    fn update_delete_tid(&mut self, mut target: LeafElm, src: &LeafElm) -> Step<()> {
        let d = src.base.delete_tid;
        if d != 0 && d != target.base.delete_tid {
            self.deleting(&target, d)?;
            target.base.delete_tid = d;
            target.delete_ts = src.delete_ts;
            self.max_tid = self.max_tid.max(d);
            update_leaf(self.tx, &target, mtid_of(&target))?;
        }
        Ok(())
    }

    /// A record a rerun sends again may lie past the slave's sync point
    /// with a payload a power loss took back (batches do not sync the
    /// payload file, see `blob.rs`): when its stored payload no longer
    /// matches its CRC, the payload sent now replaces it. Inline payloads
    /// are as durable as the record and need no look.
    fn repair_payload(&mut self, target: &LeafElm, data: &[u8]) -> Step<()> {
        if data.len() <= INLINE_MAX || target.data_len as usize != data.len() {
            return Ok(());
        }
        let k = key::encode(&target.base);
        let boff: Option<i64> = self
            .tx
            .prepare_cached("SELECT boff FROM rec WHERE k = ?1")?
            .query_row([&k[..]], |r| r.get(0))?;
        let Some(boff) = boff else {
            return Ok(());
        };
        let mut stored = Vec::new();
        let intact = payload_into(None, Some(boff), target, &self.blobs, &mut stored).is_ok()
            && data_crc_matches(target.base.rec_type, &stored, target.data_crc);
        if intact || !data_crc_matches(target.base.rec_type, data, target.data_crc) {
            return Ok(());
        }
        let Stored::Blob(off) = stash(&mut self.blobs, data)? else {
            return Ok(());
        };
        self.tx
            .prepare_cached("UPDATE rec SET boff = ?2 WHERE k = ?1")?
            .execute(rusqlite::params![&k[..], off])?;
        Ok(())
    }

    /// §4.6: inserts the leaf as sent, after checking the payload CRC;
    /// directory entries are re-localized into the target PFS.
    fn create(&mut self, mut leaf: LeafElm, data: &[u8]) -> Step<()> {
        let mut relocated;
        let mut data = data;
        if !data.is_empty() {
            if !data_crc_matches(leaf.base.rec_type, data, leaf.data_crc) {
                return bad();
            }
            let lo = (self.pfs_id << 16).to_le_bytes();
            let field = DirentryHeadLe::LOCALIZATION;
            if leaf.base.rec_type == rectype::DIRENTRY
                && data.get(field.clone()).is_some_and(|old| old != lo)
            {
                relocated = data.to_vec();
                relocated[field].copy_from_slice(&lo);
                leaf.data_crc = crc32c(&relocated);
                data = &relocated;
            }
        }
        if self.sync.is_some_and(|s| leaf.base.create_tid <= s) {
            self.below_sync()?;
        }
        leaf.data_offset = if data.is_empty() { 0 } else { DATA_OFFSET };
        let stored = stash(&mut self.blobs, data)?;
        insert_rec(self.tx, &leaf, stored)?;
        self.max_tid = self.max_tid.max(mtid_of(&leaf));
        Ok(())
    }
}

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
//! S does, or a REC or PASS carrying such a delete_tid. That call and the
//! batch's later ones are checked (`validate`) and kept aside
//! (`stage.rs`) until the next SET_PSEUDOFS or SYNCTID on the same
//! handle, which mirror-write issues at SYNC: it applies them in its own
//! transaction (SET moves S inside it, so the changes and the new S become
//! durable together). Dropping the handle, a refused record or any other
//! write operation discards them: a batch that never reached its SYNC
//! changes nothing at or below S, and the write lock is never held while
//! its client's stream is awaited, while a complete stream still does
//! what the kernel does (an older one may move S back).

use nix::errno::Errno;
use rusqlite::Connection;

use super::blob::Blobs;
use super::key::{self, RecKey};
use super::memo;
use super::payload::{payload_into, stash, Stored, DATA_OFFSET, INLINE_MAX};
use super::records::{insert_rec, key_from, leaf_from, mtid_of, relocalize, update_leaf};
use super::tid::{now_secs, raise_next_tid};
use super::txn::{known_localization, known_rec_type};
use super::writetx::WriteTx;
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
    /// it once, at the end (kernel-semantics.md §1.8).
    max_tid: u64,
    /// The lowest `mtid` this call stored: a prune's memo vouching for
    /// records below it no longer holds (`memo.rs`).
    min_mtid: u64,
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
}

/// What one call of `apply` did.
pub(super) enum Applied {
    /// Every record was applied; `count` bytes.
    Done(usize),
    /// A record was refused (`req.head_error`, `count` points at it):
    /// nothing of the call may be kept.
    Refused(usize),
    /// The call would change history at or below the sync point and may
    /// not: nothing of it may be kept.
    BelowSync,
}

/// Refuses a call larger than the ioctl accepts.
pub(super) fn check_size(records: &[u8]) -> Result<()> {
    if records.len() > MAX_WRITE_SIZE {
        return Err(Errno::EINVAL.into());
    }
    Ok(())
}

/// Applies `records` in `tx`, which the caller commits on `Done` and
/// drops (rolls back, giving back the payload bytes) otherwise. With
/// `may_hold` (a held batch applied at its SYNC) changes at or below the
/// sync point are made like any other.
pub(super) fn apply(
    store: &Store,
    tx: &mut WriteTx<'_>,
    pfs_id: u32,
    req: &mut MirrorWriteReq,
    records: &[u8],
    may_hold: bool,
) -> Result<Applied> {
    check_size(records)?;
    relocalize_req(req, pfs_id);
    let pfsd = store.live(tx, pfs_id)?.pfsd;
    let blobs = Blobs::open_writer(tx, &store.root, pfs_id)?;
    tx.guard_tail(&blobs);
    let tx: &Connection = tx;
    let mut b = Batch {
        tx,
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
        min_mtid: u64::MAX,
        ahead: None,
        blobs,
        sync: pfsd.is_slave().then_some(pfsd.sync_end_tid),
        may_hold,
    };
    let mut count = 0;
    while count + HEAD_SIZE <= records.len() {
        match b.apply(&records[count..]) {
            Ok(used) => count += used,
            Err(StepError::Record(errno)) => {
                req.head_error = Some(errno);
                return Ok(Applied::Refused(count));
            }
            Err(StepError::BelowSync) => return Ok(Applied::BelowSync),
            Err(StepError::Store(e)) => return Err(e),
        }
    }
    set_key_cur(req, &b.pos, pfs_id);
    raise_next_tid(b.tx, b.max_tid)?;
    if b.min_mtid != u64::MAX {
        memo::forget_below(b.tx, pfs_id, b.min_mtid)?;
    }
    b.blobs.finish(b.tx, pfs_id, false)?;
    Ok(Applied::Done(count))
}

/// A call of a held batch, checked without the store: the framing and the
/// per-record checks `apply` makes whatever the PFS holds, and the CRC of
/// every REC's payload (`apply` checks it only for a record it inserts;
/// stricter here, as the records are applied only at SYNC). Sets `req` as
/// `apply` would (keys re-localized, key_cur at the last record,
/// head_error) and returns the bytes checked.
pub(super) fn validate(pfs_id: u32, req: &mut MirrorWriteReq, records: &[u8]) -> Result<usize> {
    check_size(records)?;
    relocalize_req(req, pfs_id);
    let mut pos = Position {
        key: key::encode(&req.key_cur),
        included: false,
    };
    let mut count = 0;
    while count + HEAD_SIZE <= records.len() {
        let checked = parse(&records[count..]).and_then(|(used, p)| {
            let to = match p {
                Parsed::Skip(_, end) => Some(local_key(&end, pfs_id)),
                Parsed::Rec(mut leaf, data) => {
                    relocalize_leaf(&mut leaf, pfs_id)?;
                    if !data.is_empty()
                        && !data_crc_matches(leaf.base.rec_type, data, leaf.data_crc)
                    {
                        return bad();
                    }
                    (leaf.base.rec_type != rectype::CONFIG).then(|| key::encode(&leaf.base))
                }
                Parsed::Pass(mut leaf) => {
                    relocalize_leaf(&mut leaf, pfs_id)?;
                    (leaf.base.rec_type != rectype::CONFIG).then(|| key::encode(&leaf.base))
                }
                Parsed::BadCrc => None,
            };
            if let Some(key) = to {
                pos = Position {
                    key,
                    included: matches!(p, Parsed::Skip(..)),
                };
            }
            Ok(used)
        });
        match checked {
            Ok(used) => count += used,
            Err(StepError::Record(errno)) => {
                req.head_error = Some(errno);
                return Ok(count);
            }
            Err(StepError::BelowSync) => unreachable!("parsing changes nothing"),
            Err(StepError::Store(e)) => return Err(e),
        }
    }
    set_key_cur(req, &pos, pfs_id);
    Ok(count)
}

fn relocalize_req(req: &mut MirrorWriteReq, pfs_id: u32) {
    for k in [&mut req.key_beg, &mut req.key_end, &mut req.key_cur] {
        k.localization = relocalize(k.localization, pfs_id);
    }
    req.head_error = None;
}

fn set_key_cur(req: &mut MirrorWriteReq, pos: &Position, pfs_id: u32) {
    req.key_cur = key::decode(&pos.key);
    req.key_cur.localization = relocalize(req.key_cur.localization, pfs_id);
}

/// One record as framed: what `Batch::apply` acts on.
enum Parsed<'r> {
    Skip(BaseElm, BaseElm),
    Rec(LeafElm, &'r [u8]),
    BadCrc,
    Pass(LeafElm),
}

/// Frames the record at the start of `rest`; returns the bytes it
/// occupies and what it is.
fn parse(rest: &[u8]) -> Step<(usize, Parsed<'_>)> {
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
    let bytes = &rest[..rec_size as usize];
    let Some(raw) = RawRecord::new(bytes) else {
        return bad();
    };
    let parsed = match head.rec_type() & mrec_type::MASK {
        mrec_type::SKIP if rec_size == SKIP_REC_SIZE => {
            let (Some(beg), Some(end)) = (
                raw.array::<{ BaseElm::SIZE }>(HEAD_SIZE),
                raw.array::<{ BaseElm::SIZE }>(HEAD_SIZE + BaseElm::SIZE),
            ) else {
                return bad();
            };
            Parsed::Skip(BaseElm::decode(beg), BaseElm::decode(end))
        }
        mrec_type::REC if rec_size >= REC_HEAD_SIZE => {
            let Some(leaf) = raw.leaf() else {
                return bad();
            };
            let data_len = leaf.data_len;
            if data_len < 0
                || data_len as u32 > XBUF_SIZE
                || REC_HEAD_SIZE as usize + data_len as usize > bytes.len()
            {
                return bad();
            }
            let start = REC_HEAD_SIZE as usize;
            Parsed::Rec(leaf, &bytes[start..start + data_len as usize])
        }
        mrec_type::REC_BADCRC if rec_size >= REC_HEAD_SIZE => Parsed::BadCrc,
        mrec_type::PASS if rec_size == PASS_REC_SIZE => {
            let Some(leaf) = raw.leaf() else {
                return bad();
            };
            Parsed::Pass(leaf)
        }
        _ => return bad(),
    };
    Ok((doalign(rec_size).min(rest.len()), parsed))
}

/// Moves a leaf into the target PFS (kernel-semantics.md §4.2); refuses what no
/// PFS can hold: an unknown record type or localization type.
fn relocalize_leaf(leaf: &mut LeafElm, pfs_id: u32) -> Step<()> {
    if !known_rec_type(leaf.base.rec_type) || !known_localization(leaf.base.localization) {
        return bad();
    }
    leaf.base.localization = relocalize(leaf.base.localization, pfs_id);
    Ok(())
}

fn local_key(e: &BaseElm, pfs_id: u32) -> RecKey {
    key::encode(&BaseElm {
        localization: relocalize(e.localization, pfs_id),
        ..*e
    })
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
        let (used, parsed) = parse(rest)?;
        match parsed {
            Parsed::Skip(beg, end) => self.skip(&beg, &end)?,
            Parsed::Rec(leaf, data) => self.rec(leaf, data)?,
            Parsed::BadCrc => {}
            Parsed::Pass(leaf) => self.pass(leaf)?,
        }
        Ok(used)
    }

    fn skip(&mut self, beg: &BaseElm, end: &BaseElm) -> Step<()> {
        let beg = local_key(beg, self.pfs_id);
        let end = local_key(end, self.pfs_id);
        self.sweep_to(&beg)?;
        self.pos = Position {
            key: end,
            included: true,
        };
        // What lies after skip_beg says nothing about what follows skip_end.
        self.ahead = None;
        Ok(())
    }

    fn rec(&mut self, leaf: LeafElm, data: &[u8]) -> Step<()> {
        let Some((leaf, found)) = self.reach(leaf)? else {
            return Ok(());
        };
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

    fn pass(&mut self, leaf: LeafElm) -> Step<()> {
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
    /// mirrored (kernel-semantics.md §4.7) and leaves the position where it
    /// was.
    fn reach(&mut self, mut leaf: LeafElm) -> Step<Option<(LeafElm, Option<LeafElm>)>> {
        relocalize_leaf(&mut leaf, self.pfs_id)?;
        let found = self.sweep_to(&key::encode(&leaf.base))?;
        Ok((leaf.base.rec_type != rectype::CONFIG).then_some((leaf, found)))
    }

    /// The sweep of kernel-semantics.md §4.3 over `(P, k)` (P included after a
    /// SKIP): live, non-CONFIG records created before tid_end are marked
    /// deleted at tid_end. Returns the target record exactly at `k`, if any.
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
            self.min_mtid = self.min_mtid.min(mtid_of(&leaf));
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

    /// A change of the history at or below S: made in a held batch
    /// applied at its SYNC, else the call ends with nothing kept.
    fn below_sync(&mut self) -> Step<()> {
        if !self.may_hold {
            return Err(StepError::BelowSync);
        }
        Ok(())
    }

    /// kernel-semantics.md §4.5: a non-zero source delete_tid that differs
    /// replaces the target's; 0 never un-deletes.
    fn update_delete_tid(&mut self, mut target: LeafElm, src: &LeafElm) -> Step<()> {
        let d = src.base.delete_tid;
        if d != 0 && d != target.base.delete_tid {
            self.deleting(&target, d)?;
            target.base.delete_tid = d;
            target.delete_ts = src.delete_ts;
            self.max_tid = self.max_tid.max(d);
            self.min_mtid = self.min_mtid.min(mtid_of(&target));
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
        // The damaged copy stays in the file, named by no row.
        memo::idle_add(self.tx, self.pfs_id, target.data_len as u64)?;
        Ok(())
    }

    /// kernel-semantics.md §4.6: inserts the leaf as sent, after checking the
    /// payload CRC; directory entries are re-localized into the target PFS.
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
        self.min_mtid = self.min_mtid.min(mtid_of(&leaf));
        Ok(())
    }
}

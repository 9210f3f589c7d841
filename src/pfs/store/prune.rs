//! HAMMERIOC_PRUNE on the store (kernel-semantics.md §6; store-format.md
//! §7): the PFS scanned backwards, the deleted records `retain::prunes`
//! picks destroyed, in short write transactions.
//!
//! Each transaction reads at most `rows_per_txn` records (below where the
//! previous one stopped; up to 8 times as many while no writer waits),
//! destroys those that go and commits, so the write lock is held for a few
//! milliseconds at a time and mirror-write, import and the other writers
//! go on between them: after each transaction the prune lets in the
//! writers waiting for the lock, if any (`waiting::Job`), and goes
//! straight on when none waits. A transaction's deletions are one
//! statement, and so are its `mtid` raises (`batch.rs`).
//! Readers keep their snapshot
//! (WAL), and the payload bytes of destroyed records stay in the payload
//! file, so a reader that found a record before the commit still reads
//! its payload. A kill between transactions leaves a store in which some
//! records that go are gone and the others are not, which is what a
//! prune cut short is anyway; running it again finishes it.
//!
//! A destroyed record's change TID is handed to the record before it
//! (`records::fold_before`), within the transaction that destroys it.
//!
//! One call stops once it has visited `rows_per_call` records, at the
//! first record of the next object (localization, obj_id), and says so as
//! the kernel says it was interrupted: HEAD_INTR with `key_cur` on that
//! record. The kernel resumes a prune at the end of `key_end`'s object,
//! whatever the rest of the key, so stopping between objects makes every
//! call progress; an object with more records than the bound is finished
//! in the same call (in many transactions).
//!
//! A whole prune of a master with softprune's buckets leaves a memo
//! (`memo.rs`): the next one with such buckets visits only the records
//! changed since or whose bucket changed, found through the change index,
//! as long as they are at most one call's worth; else it scans as above.
//!
//! `prune -n` runs the same scan and the same rule (`judge`) on one read
//! transaction instead, destroying nothing (`View::prune_dry_run`,
//! cli.md §24).

use std::time::Instant;

use rusqlite::{params, Connection, OptionalExtension};

use super::error::StoreError;
use super::key::{self, RecKey};
use super::memo::{self, Memo};
use super::records::{fold_before, key_from, leaf_from, relocalize};
use super::snapshots::root_key;
use super::tid::next_tid;
use super::waiting::Job;
use super::{batch, blob, schema};
use super::{Store, View};
use crate::ondisk::{rectype, BaseElm, LeafElm, LOCALIZE_INODE, LOCALIZE_MASK};
use crate::pfs::retain::{whole_pfs, PruneElm, MAX_TID};
use crate::pfs::{PfsError, PruneReq, Result};

/// Records one prune transaction reads at most while writers wait for
/// the lock; twice as many as the last one while none waits, up to
/// `TXN_GROWTH` times as many, in which fewer pages (the B-Tree's upper
/// levels and the change index's) are written again by each.
pub(super) const ROWS_PER_TXN: usize = 2048;
const TXN_GROWTH: usize = 8;
/// Records one PRUNE call visits before it stops between two objects.
pub(super) const ROWS_PER_CALL: usize = 1 << 16;

/// A whole prune of a master under way on this handle, call by call: the
/// memo it wrote as it began, which its end completes.
pub(super) struct Pass {
    id: u32,
    elms: Vec<PruneElm>,
    memo: Memo,
    /// The key_end (localization type, obj_id) the next call goes on from.
    resume: (u32, i64),
}

/// The fields of a key a prune reads: localization type and obj_id.
fn object(b: &BaseElm) -> (u32, i64) {
    (b.localization & LOCALIZE_MASK, b.obj_id)
}

/// A record as the scan reads it.
struct Row {
    k: RecKey,
    leaf: LeafElm,
    /// Its change TID.
    mtid: Vec<u8>,
    /// Its payload lies in the payload file (not in the row).
    in_file: bool,
}

/// Where the next transaction's records lie: at or below `high` (below
/// it once a record there was handled), down to `low`.
struct Window {
    low: RecKey,
    high: RecKey,
    inclusive: bool,
}

impl Window {
    /// The next `n` records, highest first.
    fn rows(&self, conn: &Connection, n: usize) -> Result<Vec<Row>> {
        let sql = if self.inclusive {
            "SELECT k, leaf, mtid, boff IS NOT NULL FROM rec \
             WHERE k >= ?1 AND k <= ?2 ORDER BY k DESC LIMIT ?3"
        } else {
            "SELECT k, leaf, mtid, boff IS NOT NULL FROM rec \
             WHERE k >= ?1 AND k < ?2 ORDER BY k DESC LIMIT ?3"
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![&self.low[..], &self.high[..], n as i64])?;
        let mut out = Vec::with_capacity(n.min(ROWS_PER_TXN));
        while let Some(r) = rows.next()? {
            out.push(Row {
                k: key_from(r.get_ref(0)?.as_blob()?)?,
                leaf: leaf_from(r.get_ref(1)?.as_blob()?)?,
                mtid: r.get(2)?,
                in_file: r.get(3)?,
            });
        }
        Ok(out)
    }

    /// The window of a call's first transaction: from the end of
    /// `key_end`'s object, where `req.key_cur` starts, as the kernel
    /// starts, down to the start of `key_beg`'s.
    fn first(req: &mut PruneReq, id: u32) -> Window {
        let lo = |l: u32| relocalize(l & LOCALIZE_MASK, id);
        req.key_cur.localization = lo(req.key_end.localization);
        req.key_cur.obj_id = req.key_end.obj_id;
        req.key_cur.key = i64::MAX;
        req.interrupted = false;
        Window {
            low: key::encode(&BaseElm {
                localization: lo(req.key_beg.localization),
                obj_id: req.key_beg.obj_id,
                key: i64::MIN,
                create_tid: 1,
                rec_type: 0,
                ..BaseElm::default()
            }),
            high: key::encode(&BaseElm {
                localization: req.key_cur.localization,
                obj_id: req.key_cur.obj_id,
                key: i64::MAX,
                create_tid: MAX_TID - 1,
                rec_type: 0xFFFF,
                ..BaseElm::default()
            }),
            inclusive: true,
        }
    }

    /// Whether the window holds the record of key `k`.
    fn holds(&self, k: &RecKey) -> bool {
        self.low <= *k && (*k < self.high || self.inclusive && *k == self.high)
    }

    /// After a transaction that read `rows` records up to `last`: the
    /// window of the next one, `None` when the range is done.
    fn next(mut self, last: Option<RecKey>, rows: usize, per_txn: usize) -> Option<Window> {
        let k = last.filter(|_| rows == per_txn)?;
        self.high = k;
        self.inclusive = false;
        Some(self)
    }
}

/// Whether the record `leaf` goes, counted in `req.stats` as PRUNE counts
/// it: the one judgement of the prune and of its dry run.
fn judge(req: &mut PruneReq, leaf: &LeafElm) -> bool {
    let b = &leaf.base;
    let goes = req.prunes(b.create_tid, b.delete_tid);
    let s = &mut req.stats;
    s.scan_records += 1;
    s.oldest_tid = s.oldest_tid.min(b.create_tid);
    if goes {
        if b.rec_type == rectype::DIRENTRY {
            s.dir_records += 1;
        } else {
            s.raw_records += 1;
        }
        s.bytes += i64::from(leaf.data_len.max(0));
    }
    goes
}

/// Deletes the rows `doomed` names and raises the `mtid` of those `raised`
/// names, both highest key first, each a statement that walks their range
/// once (`batch.rs`).
fn destroy(tx: &Connection, doomed: &[RecKey], raised: &[(RecKey, Vec<u8>)]) -> Result<()> {
    let mut gone = batch::Doomed::new();
    for k in doomed.iter().rev() {
        gone.push(k, [])?;
    }
    batch::delete(tx, &gone)?;
    let mut up = batch::Raised::new();
    for (k, mtid) in raised.iter().rev() {
        let m: [u8; 8] = mtid[..]
            .try_into()
            .map_err(|_| StoreError::Corrupt("change TID is not 8 bytes"))?;
        up.push(k, m)?;
    }
    batch::raise(tx, &up)
}

/// What a reblock after a prune would give back of a PFS's payload file
/// (store-format.md §5.1: it keeps exactly the payloads rows name).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Freed {
    /// The payload file's committed size now.
    pub file_bytes: u64,
    /// The bytes of it no record names now.
    pub idle: u64,
    /// The payloads in it of the records the prune would destroy (none
    /// from `payload_idle`).
    pub pruned: u64,
}

impl Freed {
    /// What a reblock after the prune gives back.
    pub fn bytes(&self) -> u64 {
        self.idle + self.pruned
    }
}

impl View<'_> {
    /// HAMMERIOC_PRUNE without its changes, for `prune -n` (cli.md §24):
    /// the records of `req`'s range visited in the order the prune visits
    /// them, in this view's one read transaction, each judged and counted
    /// in `req.stats` as the prune does; `dropped` is told of each that
    /// would go. `gone_first` are the TIDs of the live snapshot records
    /// deleted before the PRUNE (by prune-everything, or by a cleanup's
    /// expiry), which is then not told of them; `written` the root records
    /// (type, key) a cleanup writes before it (cli.md §23.5), live, so
    /// counted as scanned where the range holds them. No work bound: the
    /// whole range in one call.
    pub fn prune_dry_run<E: From<PfsError>>(
        &self,
        req: &mut PruneReq,
        gone_first: &[u64],
        written: &[(u16, i64)],
        mut dropped: impl FnMut(&LeafElm) -> std::result::Result<(), E>,
    ) -> std::result::Result<Freed, E> {
        req.check().map_err(PfsError::from)?;
        let id = self.pfs_id;
        let deleted_first = |b: &BaseElm| {
            b.rec_type == rectype::SNAPSHOT
                && b.delete_tid == 0
                && b.obj_id == 1
                && b.localization & LOCALIZE_MASK == LOCALIZE_INODE
                && gone_first.contains(&(b.key as u64))
        };
        let first = Window::first(req, id);
        // At the TID they would be written at; live, they never go.
        let at = next_tid(&self.tx)?;
        let written: Vec<LeafElm> = written
            .iter()
            .map(|&(rec_type, key)| LeafElm {
                base: root_key(id, rec_type, key, at),
                ..LeafElm::default()
            })
            .filter(|l| first.holds(&key::encode(&l.base)))
            .collect();
        let mut pruned_in_file = 0u64;
        let mut window = Some(first);
        while let Some(w) = window {
            let rows = w.rows(&self.tx, ROWS_PER_TXN)?;
            let (read, last) = (rows.len(), rows.last().map(|r| r.k));
            for r in rows {
                if deleted_first(&r.leaf.base) {
                    continue;
                }
                req.key_cur = r.leaf.base;
                if judge(req, &r.leaf) {
                    if r.in_file {
                        pruned_in_file += u64::try_from(r.leaf.data_len).unwrap_or(0);
                    }
                    dropped(&r.leaf)?;
                }
            }
            window = w.next(last, read, ROWS_PER_TXN);
        }
        for leaf in &written {
            judge(req, leaf);
        }
        req.key_cur.localization &= LOCALIZE_MASK;
        Ok(Freed {
            pruned: pruned_in_file,
            ..self.payload_idle()?
        })
    }

    /// The PFS's payload file now: its committed size, and the bytes of it
    /// no record names (what a reblock gives back, store-format.md §5.1).
    pub fn payload_idle(&self) -> Result<Freed> {
        let file_bytes = blob::state(&self.tx, self.pfs_id)?.1;
        let named = named_bytes(&self.tx, self.pfs_id)?;
        Ok(Freed {
            file_bytes,
            idle: file_bytes.saturating_sub(named),
            pruned: 0,
        })
    }
}

/// The payload bytes PFS `id`'s rows name in its payload file: what a
/// reblock keeps of it.
fn named_bytes(conn: &Connection, id: u32) -> Result<u64> {
    let mut stmt = conn.prepare("SELECT leaf FROM rec WHERE pfs = ?1 AND boff IS NOT NULL")?;
    let mut rows = stmt.query(params![id])?;
    let mut named = 0u64;
    while let Some(r) = rows.next()? {
        let leaf = leaf_from(r.get_ref(0)?.as_blob()?)?;
        named += u64::try_from(leaf.data_len).unwrap_or(0);
    }
    Ok(named)
}

impl Store {
    /// Sets how many records one prune transaction reads and one PRUNE
    /// call visits (at least 1 each); the defaults keep a transaction to
    /// milliseconds and a call under a second.
    pub fn set_prune_bounds(&mut self, rows_per_txn: usize, rows_per_call: usize) {
        self.prune_bounds = (rows_per_txn.max(1), rows_per_call.max(1));
    }

    pub(super) fn prune_pfs(&mut self, req: &mut PruneReq) -> Result<()> {
        req.check()?;
        let id = self.check_id()?;
        // A whole prune (its first call, or the next of one under way)
        // may leave a memo; with one, the first call may only need the
        // records changed since.
        let (bottom, top) = whole_pfs();
        let from_bottom = object(&req.key_beg) == object(&bottom);
        let first = from_bottom && object(&req.key_end) == object(&top);
        let bounds = if req.all {
            None
        } else {
            memo::bounds(&req.elms)
        };
        let going_on = self.prune_pass.take().filter(|p| {
            p.id == id && p.elms == req.elms && from_bottom && object(&req.key_end) == p.resume
        });
        let window = Window::first(req, id);
        // Nothing pruned needs to be durable by itself: it allocates no
        // TID, and a prune lost to a power cut is done again by the next.
        schema::begin_bulk(&self.conn)?;
        let done = (|| -> Result<Option<Pass>> {
            let pass = match (going_on, &bounds) {
                (Some(p), _) => Some(p),
                (None, Some(b)) if first => {
                    if self.prune_changed(req, id, b)? {
                        return Ok(None);
                    }
                    self.begin_pass(id, req, b)?
                }
                _ => None,
            };
            self.prune_calls(req, id, window)?;
            Ok(pass)
        })();
        schema::end_bulk(&self.conn)?;
        let pass = done?;
        if !req.interrupted {
            // Its commits synced nothing: the prune becomes durable here,
            // in one checkpoint, where a writer of the store commits next.
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        }
        req.key_cur.localization &= LOCALIZE_MASK;
        if let Some(mut p) = pass {
            if req.interrupted {
                p.resume = object(&req.key_cur);
                self.prune_pass = Some(p);
            } else {
                self.end_pass(p)?;
            }
        }
        Ok(())
    }

    /// Starts a whole prune of a master with softprune's buckets: its memo,
    /// not yet complete, vouching for the records there are now.
    fn begin_pass(&mut self, id: u32, req: &PruneReq, bounds: &[u64]) -> Result<Option<Pass>> {
        let tx = self.write_tx()?;
        let live = self.live(&tx, id)?;
        if live.pfsd.is_slave() {
            return Ok(None);
        }
        let memo = Memo {
            generation: live.generation,
            version: live.record.base.create_tid,
            w: next_tid(&tx)?,
            complete: false,
            bounds: bounds.to_vec(),
        };
        memo.save(&tx, id)?;
        // The scan lists anew every row it finds raised (`prune_calls`).
        memo::raised_forget(&tx, id)?;
        tx.commit()?;
        Ok(Some(Pass {
            id,
            elms: req.elms.clone(),
            memo,
            resume: (0, 0),
        }))
    }

    /// The end of a whole prune: its memo completed, unless something
    /// dropped or replaced it meanwhile.
    fn end_pass(&mut self, p: Pass) -> Result<()> {
        let tx = self.write_tx()?;
        self.live(&tx, p.id)?;
        if Memo::load(&tx, p.id)?.as_ref() == Some(&p.memo) {
            Memo {
                complete: true,
                ..p.memo
            }
            .save(&tx, p.id)?;
        }
        tx.commit()
    }

    /// The first call of a whole prune of a master whose memo is complete
    /// and still its own: the records whose `mtid` is at or above the
    /// memo's floor for these buckets judged in one read transaction,
    /// those the rule picks then destroyed, highest key first, in short
    /// write transactions as a scan destroys them; then the memo moved on.
    /// False, having done nothing, when there is no such memo or more
    /// records than a call visits.
    fn prune_changed(&mut self, req: &mut PruneReq, id: u32, bounds: &[u64]) -> Result<bool> {
        let (per_txn, per_call) = self.prune_bounds;
        let (memo, w, mut doomed, listed) = {
            let tx = self.read_tx()?;
            let live = self.live(&tx, id)?;
            let Some(memo) = Memo::load(&tx, id)? else {
                return Ok(false);
            };
            if !memo.complete
                || live.pfsd.is_slave()
                || memo.generation != live.generation
                || memo.version != live.record.base.create_tid
            {
                return Ok(false);
            }
            let visit = memo.visit(bounds);
            let Some(found) = memo::to_visit(&tx, id, &visit, per_call)? else {
                return Ok(false);
            };
            // A record that stays now stays until it changes, and then
            // its `mtid` is at least the `w` below.
            let mut doomed = Vec::new();
            for (k, leaf) in found.rows {
                let b = &leaf.base;
                let s = &mut req.stats;
                s.scan_records += 1;
                s.oldest_tid = s.oldest_tid.min(b.create_tid);
                if req.prunes(b.create_tid, b.delete_tid) {
                    doomed.push(k);
                }
            }
            (memo, next_tid(&tx)?, doomed, found.listed)
        };
        doomed.sort_unstable_by(|a, b| b.cmp(a));
        let mut job = Job::new(&self.root);
        let mut chunks = doomed.chunks(per_txn).peekable();
        while let Some(chunk) = chunks.next() {
            let tx = self.write_tx()?;
            let began = Instant::now();
            self.live(&tx, id)?;
            let mut idle = 0u64;
            for k in chunk {
                let row = tx
                    .prepare_cached("SELECT leaf, mtid, boff IS NOT NULL FROM rec WHERE k = ?1")?
                    .query_row([&k[..]], |r| {
                        Ok((
                            r.get::<_, Vec<u8>>(0)?,
                            r.get::<_, Vec<u8>>(1)?,
                            r.get::<_, bool>(2)?,
                        ))
                    })
                    .optional()?;
                // Gone since (another prune).
                let Some((leaf, mtid, in_file)) = row else {
                    continue;
                };
                let leaf = leaf_from(&leaf)?;
                let b = &leaf.base;
                if !req.prunes(b.create_tid, b.delete_tid) {
                    continue;
                }
                tx.prepare_cached("DELETE FROM rec WHERE k = ?1")?
                    .execute([&k[..]])?;
                memo::raised_drop(&tx, id, k, b.delete_tid)?;
                let s = &mut req.stats;
                if b.rec_type == rectype::DIRENTRY {
                    s.dir_records += 1;
                } else {
                    s.raw_records += 1;
                }
                s.bytes += i64::from(leaf.data_len.max(0));
                if in_file {
                    idle += u64::try_from(leaf.data_len).unwrap_or(0);
                }
                fold_before(&tx, id, k, &mtid)?;
            }
            memo::idle_add(&tx, id, idle)?;
            tx.commit()?;
            if chunks.peek().is_some() {
                job.give_way(began.elapsed());
            }
        }
        let tx = self.write_tx()?;
        self.live(&tx, id)?;
        memo::raised_tidy(&tx, id, &listed)?;
        if Memo::load(&tx, id)?.as_ref() == Some(&memo) {
            Memo {
                w,
                bounds: bounds.to_vec(),
                ..memo
            }
            .save(&tx, id)?;
        }
        tx.commit()?;
        req.key_cur = req.key_beg;
        req.interrupted = false;
        Ok(true)
    }

    /// The transactions of one call.
    fn prune_calls(&mut self, req: &mut PruneReq, id: u32, first: Window) -> Result<()> {
        let (per_txn, per_call) = self.prune_bounds;
        let mut visited = 0usize;
        let mut object: Option<(u32, i64)> = None;
        let mut job = Job::new(&self.root);
        let mut window = Some(first);
        // Rows this transaction reads: more while no writer waits.
        let mut take = per_txn;
        while let Some(w) = window {
            let tx = self.write_tx()?;
            let began = Instant::now();
            self.live(&tx, id)?;
            let rows = w.rows(&tx, take)?;
            let read = rows.len();
            // The change TID destroyed records hand to the next record
            // below them that stays.
            let mut fold: Option<Vec<u8>> = None;
            let mut last: Option<RecKey> = None;
            let mut idle = 0u64;
            // Highest key first, as visited.
            let mut doomed = Vec::new();
            let mut raised = Vec::new();
            // Deleted rows that stay with an `mtid` above their delete
            // TID, raised now or before: `raised` lists them (memo.rs);
            // those that go are listed no longer.
            let mut listed = Vec::new();
            let mut unlisted = Vec::new();
            for Row {
                k,
                leaf,
                mtid,
                in_file,
            } in rows
            {
                let this = (leaf.base.localization, leaf.base.obj_id);
                if visited >= per_call && object.is_some_and(|o| o != this) {
                    req.key_cur = leaf.base;
                    req.interrupted = true;
                    break;
                }
                object = Some(this);
                visited += 1;
                req.key_cur = leaf.base;
                if judge(req, &leaf) {
                    doomed.push(k);
                    if in_file {
                        idle += u64::try_from(leaf.data_len).unwrap_or(0);
                    }
                    let d = leaf.base.delete_tid;
                    if memo::is_raised(d, &mtid) {
                        unlisted.push((k, d));
                    }
                    if fold.as_ref().is_none_or(|f| *f < mtid) {
                        fold = Some(mtid);
                    }
                } else {
                    let mut mtid = mtid;
                    if let Some(f) = fold.take() {
                        if f > mtid {
                            raised.push((k, f.clone()));
                            mtid = f;
                        }
                    }
                    let d = leaf.base.delete_tid;
                    if memo::is_raised(d, &mtid) {
                        listed.push((k, d));
                    }
                }
                last = Some(k);
            }
            destroy(&tx, &doomed, &raised)?;
            for (k, d) in &listed {
                memo::raised_add(&tx, id, k, *d)?;
            }
            for (k, d) in &unlisted {
                memo::raised_drop(&tx, id, k, *d)?;
            }
            if let (Some(f), Some(k)) = (&fold, &last) {
                fold_before(&tx, id, k, f)?;
            }
            memo::idle_add(&tx, id, idle)?;
            tx.commit()?;
            if req.interrupted {
                return Ok(());
            }
            window = w.next(last, read, take);
            if window.is_some() {
                take = if job.give_way(began.elapsed()) {
                    take.saturating_mul(2)
                        .min(per_txn.saturating_mul(TXN_GROWTH))
                } else {
                    per_txn
                };
            }
        }
        Ok(())
    }
}

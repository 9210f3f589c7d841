//! HAMMERIOC_PRUNE on the store (kernel-semantics.md §6; store-format.md
//! §7): the PFS scanned backwards, the deleted records `retain::prunes`
//! picks destroyed, in short write transactions.
//!
//! Each transaction reads at most `rows_per_txn` records (below where the
//! previous one stopped), destroys those that go and commits, so the write
//! lock is held for a few milliseconds at a time and mirror-write, import
//! and the other writers go on between them: after each transaction the
//! prune lets in the writers waiting for the lock, if any
//! (`waiting::Job`), and goes straight on when none waits.
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

use std::time::Instant;

use rusqlite::{params, Connection};

use super::key::{self, RecKey};
use super::records::{fold_before, key_from, leaf_from, relocalize};
use super::waiting::Job;
use super::Store;
use crate::ondisk::{rectype, BaseElm, LeafElm, LOCALIZE_MASK};
use crate::pfs::retain::MAX_TID;
use crate::pfs::{PruneReq, Result};

/// Records one prune transaction reads at most.
pub(super) const ROWS_PER_TXN: usize = 2048;
/// Records one PRUNE call visits before it stops between two objects.
pub(super) const ROWS_PER_CALL: usize = 1 << 16;

/// A record as the scan reads it: key, leaf, change TID.
type Row = (RecKey, LeafElm, Vec<u8>);

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
            "SELECT k, leaf, mtid FROM rec WHERE k >= ?1 AND k <= ?2 ORDER BY k DESC LIMIT ?3"
        } else {
            "SELECT k, leaf, mtid FROM rec WHERE k >= ?1 AND k < ?2 ORDER BY k DESC LIMIT ?3"
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![&self.low[..], &self.high[..], n as i64])?;
        let mut out = Vec::with_capacity(n.min(ROWS_PER_TXN));
        while let Some(r) = rows.next()? {
            out.push((
                key_from(r.get_ref(0)?.as_blob()?)?,
                leaf_from(r.get_ref(1)?.as_blob()?)?,
                r.get(2)?,
            ));
        }
        Ok(out)
    }
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
        let lo = |l: u32| relocalize(l & LOCALIZE_MASK, id);
        // As the kernel starts: key_cur at the end of key_end's object.
        req.key_cur.localization = lo(req.key_end.localization);
        req.key_cur.obj_id = req.key_end.obj_id;
        req.key_cur.key = i64::MAX;
        req.interrupted = false;
        let mut window = Window {
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
        };
        // Nothing pruned needs to be durable by itself: it allocates no
        // TID, and a prune lost to a power cut is done again by the next.
        self.conn.execute_batch("PRAGMA synchronous=NORMAL")?;
        let done = self.prune_calls(req, id, &mut window);
        self.conn.execute_batch("PRAGMA synchronous=FULL")?;
        done?;
        req.key_cur.localization &= LOCALIZE_MASK;
        Ok(())
    }

    /// The transactions of one call.
    fn prune_calls(&mut self, req: &mut PruneReq, id: u32, window: &mut Window) -> Result<()> {
        let (per_txn, per_call) = self.prune_bounds;
        let mut visited = 0usize;
        let mut object: Option<(u32, i64)> = None;
        let mut job = Job::new(&self.root);
        loop {
            let tx = self.write_tx()?;
            let began = Instant::now();
            self.live(&tx, id)?;
            let rows = window.rows(&tx, per_txn)?;
            let full = rows.len() == per_txn;
            // The change TID destroyed records hand to the next record
            // below them that stays.
            let mut fold: Option<Vec<u8>> = None;
            let mut last: Option<RecKey> = None;
            for (k, leaf, mtid) in rows {
                let this = (leaf.base.localization, leaf.base.obj_id);
                if visited >= per_call && object.is_some_and(|o| o != this) {
                    req.key_cur = leaf.base;
                    req.interrupted = true;
                    break;
                }
                object = Some(this);
                visited += 1;
                req.key_cur = leaf.base;
                let b = &leaf.base;
                let goes = req.prunes(b.create_tid, b.delete_tid);
                let s = &mut req.stats;
                s.scan_records += 1;
                s.oldest_tid = s.oldest_tid.min(b.create_tid);
                if goes {
                    tx.prepare_cached("DELETE FROM rec WHERE k = ?1")?
                        .execute([&k[..]])?;
                    if b.rec_type == rectype::DIRENTRY {
                        s.dir_records += 1;
                    } else {
                        s.raw_records += 1;
                    }
                    s.bytes += i64::from(leaf.data_len.max(0));
                    if fold.as_ref().is_none_or(|f| *f < mtid) {
                        fold = Some(mtid);
                    }
                } else if let Some(f) = fold.take() {
                    if f > mtid {
                        tx.prepare_cached("UPDATE rec SET mtid = ?2 WHERE k = ?1")?
                            .execute(params![&k[..], &f[..]])?;
                    }
                }
                last = Some(k);
            }
            if let (Some(f), Some(k)) = (&fold, &last) {
                fold_before(&tx, id, k, f)?;
            }
            tx.commit()?;
            match last {
                Some(k) if !req.interrupted && full => {
                    window.high = k;
                    window.inclusive = false;
                }
                _ => return Ok(()),
            }
            job.give_way(began.elapsed());
        }
    }
}

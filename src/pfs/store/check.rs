//! Read-only checks of what only the store holds and no ioctl reaches, for
//! `hammer verify`: SQLite's own `quick_check`, why a record's payload
//! cannot be read from its payload file, and what a prune memo vouches
//! for that is not so.

use rusqlite::{params, OptionalExtension};

use super::blob::PayloadFault;
use super::memo::{self, Memo};
use super::{key, leaf_from, relocalize, Result, Store};
use crate::ondisk::BaseElm;
use crate::pfs::retain::prunes;

const UNPRUNED: &str = "its buckets destroy it, yet it lies below the TID the memo vouches \
                        for: the next prune would keep it";
const UNLISTED: &str = "deleted, its change TID raised above its delete TID, and not listed \
                        in `raised`: a prune after a snapshot expires could keep it";

impl Store {
    /// `PRAGMA quick_check`: what SQLite finds wrong in the database file
    /// (its B-Tree pages, records, NOT NULL columns); empty when sound.
    pub fn quick_check(&self) -> Result<Vec<String>> {
        // Every page is read about once, as in a mirror-read's scan: a
        // larger cache would only fill.
        self.conn.execute_batch(super::read::SCAN_CACHE)?;
        let mut stmt = self.conn.prepare("PRAGMA quick_check")?;
        let mut rows = stmt.query([])?;
        let mut problems = Vec::new();
        while let Some(row) = rows.next()? {
            let line: String = row.get(0)?;
            if line != "ok" {
                problems.push(line);
            }
        }
        Ok(problems)
    }

    /// What the addressed PFS's complete prune memo (store-format.md §7)
    /// vouches for that is not so, a record and why each: one whose
    /// `mtid` lies below the memo's `w` that its buckets destroy, or a
    /// deleted one whose `mtid` lies above its delete TID that `raised`
    /// does not list (store-format.md §3). Either would make the next
    /// prune keep history its buckets let go. None without such a memo.
    pub fn prune_memo_faults(&self) -> Result<Vec<(BaseElm, &'static str)>> {
        let id = self.check_id()?;
        let tx = self.read_tx()?;
        let live = self.live(&tx, id)?;
        let Some(memo) = Memo::load(&tx, id)? else {
            return Ok(Vec::new());
        };
        if !memo.complete
            || memo.generation != live.generation
            || memo.version != live.record.base.create_tid
        {
            return Ok(Vec::new());
        }
        let elms = memo::elms(&memo.bounds);
        let w = key::tid_bytes(memo.w);
        // A store of format 2 read as it is has no such list (schema.rs).
        let has_list: bool = tx.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'raised'",
            [],
            |r| r.get(0),
        )?;
        let mut listed = has_list
            .then(|| tx.prepare("SELECT 1 FROM raised WHERE pfs = ?1 AND dtid = ?2 AND k = ?3"))
            .transpose()?;
        let mut stmt = tx.prepare("SELECT k, mtid, leaf FROM rec WHERE pfs = ?1")?;
        let mut rows = stmt.query([id])?;
        let mut faults = Vec::new();
        while let Some(r) = rows.next()? {
            let mtid = r.get_ref(1)?.as_blob()?;
            let b = leaf_from(r.get_ref(2)?.as_blob()?)?.base;
            if mtid < &w[..] && prunes(false, &elms, b.create_tid, b.delete_tid) {
                faults.push((b, UNPRUNED));
                continue;
            }
            if !memo::is_raised(b.delete_tid, mtid) {
                continue;
            }
            if let Some(listed) = listed.as_mut() {
                let d = key::tid_bytes(b.delete_tid);
                let k = r.get_ref(0)?.as_blob()?;
                if listed
                    .query_row(params![id, &d[..], k], |_| Ok(()))
                    .optional()?
                    .is_none()
                {
                    faults.push((b, UNLISTED));
                }
            }
        }
        Ok(faults)
    }

    /// Why the payload of the addressed PFS's record `key` (as MIRROR_READ
    /// returned it) cannot be read from the payload file, if the store can
    /// tell; `None` for a record kept in its row or no longer there, and
    /// for a payload that reads fine now.
    pub fn payload_fault(&self, key: &BaseElm) -> Result<Option<PayloadFault>> {
        let id = self.check_id()?;
        let (tx, blobs, ()) = self.read_blobs(id, |_| Ok(()))?;
        let k = key::encode(&BaseElm {
            localization: relocalize(key.localization, id),
            ..*key
        });
        let row: Option<(Vec<u8>, Option<i64>)> = tx
            .prepare_cached("SELECT leaf, boff FROM rec WHERE k = ?1")?
            .query_row([&k[..]], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((leaf, Some(boff))) = row else {
            return Ok(None);
        };
        let len = leaf_from(&leaf)?.data_len;
        let (Ok(off), Ok(n)) = (u64::try_from(boff), usize::try_from(len)) else {
            return Ok(Some(PayloadFault::BadPlace { boff, len }));
        };
        Ok(blobs.fault(off, n))
    }
}

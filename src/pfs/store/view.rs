//! A PFS's records read as of one TID, object by object, for `hammer
//! mount` and `prune -n`: a `View` is one read transaction (a consistent
//! snapshot: a writer's batch is in it whole or not at all), and each read
//! takes only the records of one object and record type through the key
//! index.

use std::ops::RangeInclusive;

use rusqlite::{params, Transaction};

use super::blob::Blobs;
use super::key;
use super::payload::{load_payload, PAYLOAD};
use super::pfsdata::sync_end;
use super::records::{leaf_from, relocalize};
use super::Store;
use crate::ondisk::{BaseElm, LeafElm, PseudofsData};
use crate::pfs::Result;

/// The addressed PFS as of one TID.
pub struct View<'s> {
    pub(super) tx: Transaction<'s>,
    blobs: Blobs,
    pub(super) pfs_id: u32,
    tid: u64,
    pfsd: PseudofsData,
}

impl Store {
    /// A view of the addressed PFS as of `tid`, or without one as of its
    /// sync point now (a slave's sync_end_tid, a master's newest).
    pub fn view(&self, tid: Option<u64>) -> Result<View<'_>> {
        let id = self.check_id()?;
        let (tx, blobs, (live, now)) = self.read_blobs(id, |tx| {
            let live = self.live(tx, id)?;
            let now = sync_end(tx, &live.pfsd)?;
            Ok((live, now))
        })?;
        Ok(View {
            tx,
            blobs,
            pfs_id: id,
            tid: tid.unwrap_or(now),
            pfsd: live.pfsd,
        })
    }
}

impl View<'_> {
    /// The TID this view shows.
    pub fn tid(&self) -> u64 {
        self.tid
    }

    /// The PFS's data as the view found it.
    pub fn pfsd(&self) -> &PseudofsData {
        &self.pfsd
    }

    /// Calls `f`, in key order, for each record of `obj_id` with
    /// localization type `lo_type`, record type `rec_type` and a key in
    /// `keys` that is visible as of the view's TID, with a loader for its
    /// payload, until `f` returns false.
    pub fn records(
        &self,
        lo_type: u32,
        obj_id: i64,
        rec_type: u16,
        keys: RangeInclusive<i64>,
        f: impl FnMut(&LeafElm, &dyn Fn() -> Result<Vec<u8>>) -> Result<bool>,
    ) -> Result<()> {
        self.records_as_of(self.tid, lo_type, obj_id, rec_type, keys, f)
    }

    /// `records` as of `tid` instead of the view's TID, in the same
    /// snapshot of the store (`prune -n` names each record's path as of
    /// its own creation).
    pub fn records_as_of(
        &self,
        tid: u64,
        lo_type: u32,
        obj_id: i64,
        rec_type: u16,
        keys: RangeInclusive<i64>,
        mut f: impl FnMut(&LeafElm, &dyn Fn() -> Result<Vec<u8>>) -> Result<bool>,
    ) -> Result<()> {
        let at = |key: i64, create_tid: u64| {
            key::encode(&BaseElm {
                localization: relocalize(lo_type, self.pfs_id),
                obj_id,
                rec_type,
                key,
                create_tid,
                ..Default::default()
            })
        };
        // create_tid is stored minus one: 1 sorts first, 0 last.
        let (first, last) = (at(*keys.start(), 1), at(*keys.end(), 0));
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT leaf, {PAYLOAD} FROM rec WHERE k >= ?1 AND k <= ?2"
        ))?;
        let mut rows = stmt.query(params![&first[..], &last[..]])?;
        while let Some(row) = rows.next()? {
            let leaf = leaf_from(row.get_ref(0)?.as_blob()?)?;
            let b = &leaf.base;
            if b.create_tid > tid || (b.delete_tid != 0 && b.delete_tid <= tid) {
                continue;
            }
            let go = f(&leaf, &|| {
                let mut data = Vec::new();
                load_payload(row, 1, &leaf, &self.blobs, &mut data)?;
                Ok(data)
            })?;
            if !go {
                break;
            }
        }
        Ok(())
    }
}

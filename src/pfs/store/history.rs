//! The TIDs at which a PFS changed, for `snapls`: each TID that created or
//! deleted records (an import, or a master's change a slave received), and
//! each sync point a slave reached, with their times and sizes.

use std::collections::BTreeMap;

use rusqlite::params;

use super::key;
use super::pfsdata::pfs_record_key;
use super::records::leaf_from;
use super::Store;
use crate::ondisk::{rectype, PseudofsData};
use crate::pfs::Result;

/// What happened at one TID of a PFS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub tid: u64,
    /// Seconds since the epoch: when the records were created (or deleted),
    /// or when the slave reached the sync point.
    pub time: u32,
    pub created: u64,
    pub deleted: u64,
    /// Payload bytes of the records created.
    pub bytes: u64,
    /// A slave's sync point moved to this TID.
    pub sync_point: bool,
}

impl Store {
    /// Every TID at which the addressed PFS changed, oldest first; a
    /// slave's only up to its sync point (what it holds beyond is not yet
    /// a copy of anything).
    pub fn history(&self) -> Result<Vec<Change>> {
        let id = self.check_id()?;
        let tx = self.conn.unchecked_transaction()?;
        let mut at: BTreeMap<u64, Change> = BTreeMap::new();
        {
            let mut stmt = tx.prepare_cached("SELECT leaf FROM rec WHERE pfs = ?1")?;
            let mut rows = stmt.query([id])?;
            while let Some(row) = rows.next()? {
                let leaf = leaf_from(row.get_ref(0)?.as_blob()?)?;
                // PFS#0's key space also holds every PFS's own record.
                if leaf.base.rec_type == rectype::PFS {
                    continue;
                }
                let c = at.entry(leaf.base.create_tid).or_default();
                c.created += 1;
                c.bytes += u64::try_from(leaf.data_len).unwrap_or(0);
                c.time = c.time.max(leaf.create_ts);
                if leaf.base.delete_tid != 0 {
                    let d = at.entry(leaf.base.delete_tid).or_default();
                    d.deleted += 1;
                    d.time = d.time.max(leaf.delete_ts);
                }
            }
        }
        // Every version of the PFS's record: the sync points it went through.
        let first = key::encode(&pfs_record_key(id, 1));
        let last = key::encode(&pfs_record_key(id, 0));
        let mut stmt =
            tx.prepare_cached("SELECT leaf, data FROM rec WHERE k >= ?1 AND k <= ?2 ORDER BY k")?;
        let mut rows = stmt.query(params![&first[..], &last[..]])?;
        let mut live = None;
        while let Some(row) = rows.next()? {
            let leaf = leaf_from(row.get_ref(0)?.as_blob()?)?;
            let Some(Ok(bytes)) = row
                .get_ref(1)?
                .as_blob_or_null()?
                .map(<&[u8; PseudofsData::SIZE]>::try_from)
            else {
                continue;
            };
            let pfsd = PseudofsData::decode(bytes);
            if pfsd.is_slave() && pfsd.sync_end_tid > 1 {
                let c = at.entry(pfsd.sync_end_tid).or_default();
                if !c.sync_point {
                    c.sync_point = true;
                    c.time = c.time.max(leaf.create_ts);
                }
            }
            if leaf.base.delete_tid == 0 {
                live = Some(pfsd);
            }
        }
        let upto = match live {
            Some(p) if p.is_slave() => p.sync_end_tid,
            _ => u64::MAX,
        };
        Ok(at
            .into_iter()
            .filter(|(tid, _)| *tid != 0 && *tid <= upto)
            .map(|(tid, c)| Change { tid, ..c })
            .collect())
    }
}

//! Writing history into a PFS from outside the mirror protocol (import):
//! one transaction, one new TID for every record it puts or deletes.

use nix::errno::Errno;
use rusqlite::{params, Transaction};

use super::key;
use super::{
    alloc_tid, insert_rec, leaf_from, load_live_pfs, now_secs, update_leaf, Result, Store,
    DATA_OFFSET, PAYLOAD,
};
use crate::ondisk::{rectype, BaseElm, LeafElm, BTREE_TYPE_RECORD, LOCALIZE_INODE, LOCALIZE_MISC};
use crate::wire::crc::{leaf_data_crc, DataCrcKind};
use crate::wire::XBUF_SIZE;

/// What identifies a record across its versions: the compared key fields
/// without create_tid. `localization` is the type only (INODE or MISC);
/// the PFS bits come from the transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordId {
    pub localization: u32,
    pub obj_id: i64,
    pub rec_type: u16,
    pub key: i64,
}

/// An open write transaction on one PFS; dropped without `commit`, it
/// leaves the store unchanged.
pub struct Txn<'a> {
    tx: Transaction<'a>,
    tid: u64,
    pfs_id: u32,
    now: u32,
}

/// Record types a PFS may hold (§1.6).
pub(super) fn known_rec_type(rt: u16) -> bool {
    rt == rectype::INODE || (rectype::DATA..=rectype::CONFIG).contains(&rt)
}

/// Localization types a stored record may carry (§1.4).
pub(super) fn known_localization(lo: u32) -> bool {
    matches!(lo & 0xFFFF, LOCALIZE_INODE | LOCALIZE_MISC)
}

impl<'a> Txn<'a> {
    pub(super) fn begin(store: &'a mut Store) -> Result<Txn<'a>> {
        let pfs_id = store.check_id()?;
        let tx = store.write_tx()?;
        load_live_pfs(&tx, pfs_id)?;
        let tid = alloc_tid(&tx)?;
        Ok(Txn {
            tx,
            tid,
            pfs_id,
            now: now_secs(),
        })
    }

    /// The TID every change of this transaction carries.
    pub fn tid(&self) -> u64 {
        self.tid
    }

    fn base(&self, id: &RecordId, create_tid: u64) -> Result<BaseElm> {
        if !known_localization(id.localization) || !known_rec_type(id.rec_type) {
            return Err(Errno::EINVAL.into());
        }
        Ok(BaseElm {
            obj_id: id.obj_id,
            key: id.key,
            create_tid,
            delete_tid: 0,
            rec_type: id.rec_type,
            obj_type: 0,
            btype: BTREE_TYPE_RECORD,
            localization: (self.pfs_id << 16) | (id.localization & 0xFFFF),
        })
    }

    /// The live version of `id`, if any.
    fn live(&self, id: &RecordId) -> Result<Option<LeafElm>> {
        let first = key::encode(&self.base(id, 1)?);
        let last = key::encode(&self.base(id, 0)?);
        let mut stmt = self
            .tx
            .prepare_cached("SELECT leaf FROM rec WHERE k >= ?1 AND k <= ?2 ORDER BY k DESC")?;
        let mut rows = stmt.query(params![&first[..], &last[..]])?;
        while let Some(row) = rows.next()? {
            let leaf = leaf_from(row.get_ref(0)?.as_blob()?)?;
            if leaf.base.delete_tid == 0 {
                return Ok(Some(leaf));
            }
        }
        Ok(None)
    }

    /// The live version of `id` with its payload (what import compares
    /// against to leave an unchanged file alone).
    pub fn get(&self, id: &RecordId) -> Result<Option<(LeafElm, Vec<u8>)>> {
        let Some(leaf) = self.live(id)? else {
            return Ok(None);
        };
        let data: Option<Vec<u8>> = self
            .tx
            .prepare_cached(&format!("SELECT {PAYLOAD} FROM rec WHERE k = ?1"))?
            .query_row([&key::encode(&leaf.base)[..]], |r| r.get(0))?;
        Ok(Some((leaf, data.unwrap_or_default())))
    }

    /// Writes a new version of `id` with this payload; the previous live
    /// version, if any, is deleted at this TID. `obj_type` goes into the
    /// leaf as HAMMER puts it there (§1.7).
    pub fn put(&mut self, id: &RecordId, obj_type: u8, data: &[u8]) -> Result<()> {
        if data.len() > XBUF_SIZE as usize {
            return Err(Errno::EINVAL.into());
        }
        if let Some(old) = self.live(id)? {
            if old.base.create_tid == self.tid {
                // Put twice in one transaction: the later payload wins.
                self.tx
                    .prepare_cached("DELETE FROM rec WHERE k = ?1")?
                    .execute([&key::encode(&old.base)[..]])?;
            } else {
                self.mark_deleted(old)?;
            }
        }
        let mut base = self.base(id, self.tid)?;
        base.obj_type = obj_type;
        let leaf = LeafElm {
            base,
            create_ts: self.now,
            delete_ts: 0,
            data_offset: if data.is_empty() { 0 } else { DATA_OFFSET },
            data_len: data.len() as i32,
            data_crc: leaf_data_crc(DataCrcKind::Crc32c, id.rec_type, data),
        };
        insert_rec(&self.tx, &leaf, data)
    }

    /// Deletes the live version of `id` at this TID; false if there is none.
    pub fn delete(&mut self, id: &RecordId) -> Result<bool> {
        match self.live(id)? {
            Some(old) if old.base.create_tid == self.tid => {
                // Created and deleted by the same flush: it never existed.
                self.tx
                    .prepare_cached("DELETE FROM rec WHERE k = ?1")?
                    .execute([&key::encode(&old.base)[..]])?;
                Ok(true)
            }
            Some(old) => {
                self.mark_deleted(old)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn mark_deleted(&self, mut leaf: LeafElm) -> Result<()> {
        leaf.base.delete_tid = self.tid;
        leaf.delete_ts = self.now;
        update_leaf(&self.tx, &leaf, self.tid)
    }

    /// Makes every change durable and visible at once; returns the TID.
    pub fn commit(self) -> Result<u64> {
        self.tx.commit()?;
        Ok(self.tid)
    }
}

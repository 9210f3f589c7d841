//! SNAPSHOT and CONFIG records on the store: ADD/DEL/GET_SNAPSHOT and
//! GET/SET_CONFIG as the kernel does them (kernel-semantics.md §2.6;
//! store-format.md §4). Both kinds are records of the PFS root (obj_id 1,
//! INODE localization), each ioctl one SQLite transaction.

use nix::errno::Errno;
use rusqlite::{params, Connection};

use super::blob::Blobs;
use super::key;
use super::payload::{load_payload, stash, Stored, DATA_OFFSET, PAYLOAD};
use super::records::{destroy_rec, insert_rec, leaf_from, live_between, relocalize};
use super::tid::alloc_tid;
use super::Store;
use crate::ondisk::{
    rectype, BaseElm, ConfigData, LeafElm, SnapshotData, BTREE_TYPE_RECORD, LOCALIZE_INODE,
};
use crate::pfs::{retain::SNAPS_PER_CALL, Result, SnapshotReq};
use crate::wire::crc::{leaf_data_crc, DataCrcKind};

/// The key of a record of PFS `id`'s root with this type and key.
pub(super) fn root_key(id: u32, rec_type: u16, key: i64, create_tid: u64) -> BaseElm {
    BaseElm {
        obj_id: 1,
        key,
        create_tid,
        delete_tid: 0,
        rec_type,
        obj_type: 0,
        btype: BTREE_TYPE_RECORD,
        localization: relocalize(LOCALIZE_INODE, id),
    }
}

/// The live record of PFS `id`'s root with this type and key, if any (the
/// kernel's lookup as of HAMMER_MAX_TID).
fn live_root(conn: &Connection, id: u32, rec_type: u16, key: i64) -> Result<Option<LeafElm>> {
    // create_tid is stored minus one: 1 sorts first, 0 last.
    let first = key::encode(&root_key(id, rec_type, key, 1));
    let last = key::encode(&root_key(id, rec_type, key, 0));
    live_between(conn, &first, &last)
}

/// A new record of PFS `id`'s root at `tid` as the kernel's
/// `hammer_create_at_cursor` writes one for ADD_SNAPSHOT and SET_CONFIG:
/// the leaf zeroed but for its key, length, payload place and CRC
/// (create_ts and obj_type 0).
fn root_leaf(id: u32, rec_type: u16, key: i64, tid: u64, data: &[u8]) -> LeafElm {
    LeafElm {
        base: root_key(id, rec_type, key, tid),
        create_ts: 0,
        delete_ts: 0,
        data_offset: DATA_OFFSET,
        data_len: data.len() as i32,
        data_crc: leaf_data_crc(DataCrcKind::Crc32c, rec_type, data),
    }
}

/// The end of an ADD or DEL: the errno that stopped it in `req.error`, or,
/// when the transaction failed (nothing of it kept), `index` back where it
/// started and the failure.
fn settle(req: &mut SnapshotReq, start: u32, done: Result<Option<Errno>>) -> Result<()> {
    match done {
        Ok(error) => {
            req.error = error;
            Ok(())
        }
        Err(e) => {
            req.index = start;
            Err(e)
        }
    }
}

/// Adds the snapshot `snap` to PFS `id` at `tid`, unless a live one has
/// its TID already.
pub(super) fn add_at(tx: &Connection, id: u32, tid: u64, snap: &SnapshotData) -> Result<()> {
    let key = snap.tid as i64;
    if live_root(tx, id, rectype::SNAPSHOT, key)?.is_none() {
        let data = snap.to_bytes();
        let leaf = root_leaf(id, rectype::SNAPSHOT, key, tid, &data);
        insert_rec(tx, &leaf, Stored::Inline(&data))?;
    }
    Ok(())
}

impl Store {
    /// ADD_SNAPSHOT: one new TID for the call; each snapshot a record
    /// keyed by its TID holding its 128 bytes as given.
    pub(super) fn snapshots_add(&mut self, req: &mut SnapshotReq) -> Result<()> {
        req.check_change()?;
        let id = self.check_id()?;
        let tx = self.write_tx()?;
        self.live(&tx, id)?;
        let tid = alloc_tid(&tx)?;
        let start = req.index;
        let added = (|| {
            while req.index < req.count {
                let snap = req.snaps[req.index as usize];
                let key = snap.tid as i64;
                if live_root(&tx, id, rectype::SNAPSHOT, key)?.is_some() {
                    return Ok(Some(Errno::EEXIST));
                }
                let data = snap.to_bytes();
                let leaf = root_leaf(id, rectype::SNAPSHOT, key, tid, &data);
                insert_rec(&tx, &leaf, Stored::Inline(&data))?;
                req.index += 1;
            }
            Ok(None)
        })()
        .and_then(|error| tx.commit().map(|()| error));
        settle(req, start, added)
    }

    /// DEL_SNAPSHOT: each live snapshot record named destroyed outright.
    pub(super) fn snapshots_del(&mut self, req: &mut SnapshotReq) -> Result<()> {
        req.check_change()?;
        let id = self.check_id()?;
        let tx = self.write_tx()?;
        self.live(&tx, id)?;
        let start = req.index;
        let deleted = (|| {
            while req.index < req.count {
                let key = req.snaps[req.index as usize].tid as i64;
                let Some(leaf) = live_root(&tx, id, rectype::SNAPSHOT, key)? else {
                    return Ok(Some(Errno::ENOENT));
                };
                destroy_rec(&tx, id, &key::encode(&leaf.base))?;
                req.index += 1;
            }
            Ok(None)
        })()
        .and_then(|error| tx.commit().map(|()| error));
        settle(req, start, deleted)
    }

    /// GET_SNAPSHOT: up to 16 live snapshot records from the key after the
    /// last one `req` holds. Each comes back as the kernel hands it out:
    /// the payload's first 128 bytes (zeros past a shorter one), its `tid`
    /// forced to the record's key when they differ (a record from a
    /// stream is never trusted to agree).
    pub(super) fn snapshots_get(&self, req: &mut SnapshotReq) -> Result<()> {
        req.check_get()?;
        let id = self.check_id()?;
        let (tx, blobs, _) = self.read_blobs(id, |tx| self.live(tx, id))?;
        let from = req.get_from();
        req.count = 0;
        req.error = None;
        let mut more = false;
        if let Some(from) = from {
            let first = key::encode(&root_key(id, rectype::SNAPSHOT, from, 1));
            let last = key::encode(&root_key(id, rectype::SNAPSHOT, i64::MAX, 0));
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT leaf, {PAYLOAD} FROM rec WHERE k >= ?1 AND k <= ?2 ORDER BY k"
            ))?;
            let mut rows = stmt.query(params![&first[..], &last[..]])?;
            let mut data = Vec::new();
            while let Some(row) = rows.next()? {
                let leaf = leaf_from(row.get_ref(0)?.as_blob()?)?;
                if leaf.base.delete_tid != 0 {
                    continue;
                }
                if req.count as usize == SNAPS_PER_CALL {
                    more = true;
                    break;
                }
                load_payload(row, 1, &leaf, &blobs, &mut data)?;
                let mut snap = SnapshotData::from_payload(&data);
                snap.tid = leaf.base.key as u64;
                req.snaps[req.count as usize] = snap;
                req.count += 1;
            }
        }
        if !more {
            req.eof = true;
        }
        Ok(())
    }

    /// GET_CONFIG: the live config record's first 1024 bytes.
    pub(super) fn config_get(&self) -> Result<Option<ConfigData>> {
        let id = self.check_id()?;
        let (tx, blobs, leaf) = self.read_blobs(id, |tx| {
            self.live(tx, id)?;
            live_root(tx, id, rectype::CONFIG, 0)
        })?;
        let Some(leaf) = leaf else {
            return Ok(None);
        };
        let k = key::encode(&leaf.base);
        let mut stmt = tx.prepare_cached(&format!("SELECT {PAYLOAD} FROM rec WHERE k = ?1"))?;
        let mut rows = stmt.query([&k[..]])?;
        let mut data = Vec::new();
        if let Some(row) = rows.next()? {
            load_payload(row, 0, &leaf, &blobs, &mut data)?;
        }
        Ok(Some(ConfigData::from_payload(&data)))
    }

    /// SET_CONFIG: the live config record destroyed, the new one written
    /// at a new TID, in one transaction.
    pub(super) fn config_set(&mut self, config: &ConfigData) -> Result<()> {
        let id = self.check_id()?;
        let mut tx = self.write_tx()?;
        self.live(&tx, id)?;
        let mut blobs = Blobs::open_writer(&tx, &self.root, id)?;
        tx.guard_tail(&blobs);
        let tid = alloc_tid(&tx)?;
        if let Some(old) = live_root(&tx, id, rectype::CONFIG, 0)? {
            destroy_rec(&tx, id, &key::encode(&old.base))?;
        }
        let data = &config.text[..];
        let leaf = root_leaf(id, rectype::CONFIG, 0, tid, data);
        let stored = stash(&mut blobs, data)?;
        insert_rec(&tx, &leaf, stored)?;
        blobs.finish(&tx, id, true)?;
        tx.commit()
    }
}

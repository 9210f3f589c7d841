//! Writing history into a PFS from outside the mirror protocol (import):
//! one transaction, one new TID for every record it puts or deletes.

use std::ops::RangeInclusive;

use nix::errno::Errno;
use rusqlite::{params, Connection};

use super::blob::Blobs;
use super::error::StoreError;
use super::key;
use super::payload::{load_payload, stash, DATA_OFFSET, PAYLOAD};
use super::records::{insert_rec, leaf_from, live_between, relocalize, remove_row, update_leaf};
use super::tid::{alloc_tid, now_secs};
use super::writetx::WriteTx;
use super::Store;
use crate::idhash::IdMap;
use crate::ondisk::{
    rectype, BaseElm, LeafElm, SnapshotData, BTREE_TYPE_RECORD, LOCALIZE_INODE, LOCALIZE_MISC,
};
use crate::pfs::{PfsError, Result};
use crate::wire::crc::{leaf_data_crc, DataCrcKind};
use crate::wire::XBUF_SIZE;

/// An import writes one large transaction: a page cache of 64 MiB keeps
/// the B-Tree's upper levels from being re-read from the WAL.
const IMPORT_CACHE: &str = "PRAGMA cache_size = -65536";

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
/// leaves the store unchanged and the payload file as long as it was.
pub struct Txn<'a> {
    tx: WriteTx<'a>,
    blobs: Blobs,
    /// The payload file's end at `mark`.
    mark_at: u64,
    tid: u64,
    pfs_id: u32,
    now: u32,
}

/// Record types a PFS may hold (kernel-semantics.md §1.6).
pub(super) fn known_rec_type(rt: u16) -> bool {
    rt == rectype::INODE || (rectype::DATA..=rectype::CONFIG).contains(&rt)
}

/// Localization types a stored record may carry (kernel-semantics.md §1.4).
pub(super) fn known_localization(lo: u32) -> bool {
    matches!(lo & 0xFFFF, LOCALIZE_INODE | LOCALIZE_MISC)
}

impl<'a> Txn<'a> {
    pub(super) fn begin(store: &'a mut Store) -> Result<Txn<'a>> {
        let pfs_id = store.check_id()?;
        store.conn.execute_batch(IMPORT_CACHE)?;
        let store: &'a Store = store;
        let mut tx = store.write_tx()?;
        store.live(&tx, pfs_id)?;
        let tid = alloc_tid(&tx)?;
        let blobs = Blobs::open_writer(&tx, &store.root, pfs_id)?;
        tx.guard_tail(&blobs);
        Ok(Txn {
            tx,
            blobs,
            mark_at: 0,
            tid,
            pfs_id,
            now: now_secs(),
        })
    }

    /// The TID every change of this transaction carries.
    pub fn tid(&self) -> u64 {
        self.tid
    }

    /// A new object id from the TID counter, unique across all PFSes
    /// (kernel-semantics.md §1.8).
    pub fn alloc_obj_id(&mut self) -> Result<i64> {
        let id = alloc_tid(&self.tx)?;
        i64::try_from(id).map_err(|_| StoreError::Corrupt("TID counter beyond obj_id range").into())
    }

    /// Calls `f` for every record (all versions, this transaction's
    /// changes included) whose localization type is in `types`, in key
    /// order; `f` gets the leaf and a loader for its payload.
    pub fn scan<E: From<PfsError>>(
        &self,
        types: RangeInclusive<u32>,
        f: impl FnMut(&LeafElm, &dyn Fn() -> Result<Vec<u8>>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        scan(&self.tx, &self.blobs, self.pfs_id, types, f)
    }

    /// `scan` of the records (all versions) of one object's type
    /// `rec_type` in one localization type.
    pub fn scan_of<E: From<PfsError>>(
        &self,
        localization: u32,
        obj_id: i64,
        rec_type: u16,
        f: impl FnMut(&LeafElm, &dyn Fn() -> Result<Vec<u8>>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let (first, last) = self.object_keys(localization, obj_id, rec_type..=rec_type);
        scan_keys(
            &self.tx,
            &self.blobs,
            &format!("SELECT leaf, {PAYLOAD} FROM rec WHERE k >= ?1 AND k <= ?2"),
            (&first, &last),
            f,
        )
    }

    /// The live records of one object in one localization type, in key
    /// order.
    pub fn live_of(&self, localization: u32, obj_id: i64) -> Result<Vec<LeafElm>> {
        let (first, last) = self.object_keys(localization, obj_id, 0..=u16::MAX);
        let mut stmt = self
            .tx
            .prepare_cached("SELECT leaf FROM rec WHERE k >= ?1 AND k <= ?2")?;
        let mut rows = stmt.query(params![&first[..], &last[..]])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let leaf = leaf_from(row.get_ref(0)?.as_blob()?)?;
            if leaf.base.delete_tid == 0 {
                out.push(leaf);
            }
        }
        Ok(out)
    }

    /// The first and last keys of one object's records whose type is in
    /// `rec_types`, in one localization type: every key, every version.
    fn object_keys(
        &self,
        localization: u32,
        obj_id: i64,
        rec_types: RangeInclusive<u16>,
    ) -> (key::RecKey, key::RecKey) {
        let at = |rec_type, key, create_tid| {
            key::encode(&BaseElm {
                localization: relocalize(localization, self.pfs_id),
                obj_id,
                rec_type,
                key,
                create_tid,
                ..Default::default()
            })
        };
        (
            at(*rec_types.start(), i64::MIN, 1),
            at(*rec_types.end(), i64::MAX, 0),
        )
    }

    /// The payload of a record this transaction sees.
    pub fn payload(&self, leaf: &LeafElm) -> Result<Vec<u8>> {
        payload(&self.tx, &self.blobs, leaf)
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
            localization: relocalize(id.localization, self.pfs_id),
        })
    }

    /// The live version of `id`, if any.
    fn live(&self, id: &RecordId) -> Result<Option<LeafElm>> {
        let first = key::encode(&self.base(id, 1)?);
        let last = key::encode(&self.base(id, 0)?);
        live_between(&self.tx, &first, &last)
    }

    /// The live version of `id` with its payload (what import compares
    /// against to leave an unchanged file alone).
    pub fn get(&self, id: &RecordId) -> Result<Option<(LeafElm, Vec<u8>)>> {
        let Some(leaf) = self.live(id)? else {
            return Ok(None);
        };
        let data = self.payload(&leaf)?;
        Ok(Some((leaf, data)))
    }

    /// Writes a new version of `id` with this payload; the previous live
    /// version, if any, is deleted at this TID. `obj_type` goes into the
    /// leaf as HAMMER puts it there (kernel-semantics.md §1.7).
    pub fn put(&mut self, id: &RecordId, obj_type: u8, data: &[u8]) -> Result<()> {
        if let Some(old) = self.live(id)? {
            if old.base.create_tid == self.tid {
                // Put twice in one transaction: the later payload wins.
                remove_row(&self.tx, self.pfs_id, &key::encode(&old.base))?;
            } else {
                self.mark_deleted(old)?;
            }
        }
        self.put_new(id, obj_type, data)
    }

    /// Writes the first version of a record the caller knows has no live
    /// version (a new object's): `put` without looking for one, which
    /// saves a B-Tree descent per record.
    pub fn put_new(&mut self, id: &RecordId, obj_type: u8, data: &[u8]) -> Result<()> {
        if data.len() > XBUF_SIZE as usize {
            return Err(Errno::EINVAL.into());
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
        let stored = stash(&mut self.blobs, data)?;
        insert_rec(&self.tx, &leaf, stored)
    }

    /// Marks the point `undo_to_mark` goes back to: import's writes of one
    /// source file, undone when the file cannot be read whole.
    pub fn mark(&mut self) -> Result<()> {
        self.mark_at = self.blobs.end();
        Ok(self.tx.execute_batch("SAVEPOINT import_file")?)
    }

    /// Keeps what was written since the mark.
    pub fn keep_since_mark(&mut self) -> Result<()> {
        Ok(self.tx.execute_batch("RELEASE import_file")?)
    }

    /// Undoes every record written since the mark, and takes back the
    /// payload bytes appended for them.
    pub fn undo_to_mark(&mut self) -> Result<()> {
        self.tx
            .execute_batch("ROLLBACK TO import_file; RELEASE import_file")?;
        self.blobs.rewind(self.mark_at)
    }

    /// Deletes the live version of `id` at this TID; false if there is none.
    pub fn delete(&mut self, id: &RecordId) -> Result<bool> {
        match self.live(id)? {
            Some(old) if old.base.create_tid == self.tid => {
                // Created and deleted by the same flush: it never existed.
                remove_row(&self.tx, self.pfs_id, &key::encode(&old.base))?;
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

    /// The host file (device, inode) each object was last imported from.
    pub fn origins(&self) -> Result<IdMap<(u64, u64), i64>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT dev, ino, obj_id FROM origin WHERE pfs = ?1")?;
        let mut rows = stmt.query([self.pfs_id])?;
        let mut m = IdMap::default();
        while let Some(r) = rows.next()? {
            let (dev, ino): (i64, i64) = (r.get(0)?, r.get(1)?);
            m.insert((dev as u64, ino as u64), r.get(2)?);
        }
        Ok(m)
    }

    /// Brings the origins of this PFS's objects from `old` (what
    /// `origins` gave) to `now` (device and inode numbers are stored as
    /// their 64-bit patterns), touching only the rows that differ: an
    /// import that changed 1% of a tree rewrote every row before.
    pub fn update_origins(
        &mut self,
        old: &IdMap<(u64, u64), i64>,
        now: &[((u64, u64), i64)],
    ) -> Result<()> {
        let now: IdMap<(u64, u64), i64> = now.iter().copied().collect();
        let mut delete = self
            .tx
            .prepare_cached("DELETE FROM origin WHERE pfs = ?1 AND dev = ?2 AND ino = ?3")?;
        for &(dev, ino) in old.keys().filter(|k| !now.contains_key(k)) {
            delete.execute(params![self.pfs_id, dev as i64, ino as i64])?;
        }
        let mut put = self.tx.prepare_cached(
            "INSERT OR REPLACE INTO origin(pfs, dev, ino, obj_id) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (&(dev, ino), &obj_id) in &now {
            if old.get(&(dev, ino)) != Some(&obj_id) {
                put.execute(params![self.pfs_id, dev as i64, ino as i64, obj_id])?;
            }
        }
        Ok(())
    }

    /// Records a snapshot at the sync point this transaction leaves its
    /// master (one past the newest TID handed out, pfsdata.rs), as `hammer
    /// snap` right after it would take one (kernel-semantics.md §2.6,
    /// §6): no record carries that TID (the allocator skips it, tid.rs),
    /// so the view as of it is this transaction's and prune keeps it
    /// whole. Called last, after every object id the transaction takes.
    /// Its record carries this transaction's TID, so the snapshot and what
    /// it names commit together; one already recorded there stays.
    pub fn add_snapshot(&mut self, ts: u64, note: &[u8]) -> Result<()> {
        let at = super::tid::next_tid(&self.tx)?.saturating_sub(1);
        let snap = SnapshotData::new(at, ts, note);
        super::snapshots::add_at(&self.tx, self.pfs_id, self.tid, &snap)
    }

    /// Makes every change durable and visible at once; returns the TID.
    pub fn commit(mut self) -> Result<u64> {
        self.blobs.finish(&self.tx, self.pfs_id, true)?;
        self.tx.commit()?;
        Ok(self.tid)
    }
}

/// Calls `f` for every record (all versions) of PFS `pfs_id` whose
/// localization type is in `types`, in key order, with a loader for its
/// payload.
pub(super) fn scan<E: From<PfsError>>(
    conn: &Connection,
    blobs: &Blobs,
    pfs_id: u32,
    types: RangeInclusive<u32>,
    f: impl FnMut(&LeafElm, &dyn Fn() -> Result<Vec<u8>>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let lo = |t: u32| relocalize(t, pfs_id);
    let (first, end) = key::localization_range(lo(*types.start())..=lo(*types.end()));
    scan_keys(
        conn,
        blobs,
        &format!("SELECT leaf, {PAYLOAD} FROM rec WHERE k >= ?1 AND k < ?2"),
        (&first, &end),
        f,
    )
}

/// `scan` of the records whose keys `sql` bounds by `keys`.
fn scan_keys<E: From<PfsError>>(
    conn: &Connection,
    blobs: &Blobs,
    sql: &str,
    keys: (&[u8], &[u8]),
    mut f: impl FnMut(&LeafElm, &dyn Fn() -> Result<Vec<u8>>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let mut stmt = conn.prepare_cached(sql).map_err(PfsError::from)?;
    let mut rows = stmt
        .query(params![keys.0, keys.1])
        .map_err(PfsError::from)?;
    while let Some(row) = rows.next().map_err(PfsError::from)? {
        let blob = row.get_ref(0).map_err(PfsError::from)?;
        let leaf = leaf_from(blob.as_blob().map_err(PfsError::from)?)?;
        f(&leaf, &|| {
            let mut data = Vec::new();
            load_payload(row, 1, &leaf, blobs, &mut data)?;
            Ok(data)
        })?;
    }
    Ok(())
}

fn payload(conn: &Connection, blobs: &Blobs, leaf: &LeafElm) -> Result<Vec<u8>> {
    let k = key::encode(&leaf.base);
    let mut stmt = conn.prepare_cached(&format!("SELECT leaf, {PAYLOAD} FROM rec WHERE k = ?1"))?;
    let mut rows = stmt.query([&k[..]])?;
    let Some(row) = rows.next()? else {
        return Err(StoreError::Corrupt("record vanished during a scan").into());
    };
    let mut data = Vec::new();
    load_payload(row, 1, leaf, blobs, &mut data)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(lo: u32, obj_id: i64, rec_type: u16, key: i64) -> RecordId {
        RecordId {
            localization: lo,
            obj_id,
            rec_type,
            key,
        }
    }

    #[test]
    fn import_reads_live_state_and_allocates_ids_from_the_tid_counter() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(&dir.path().join("s")).unwrap();
        let mut tx = store.begin().unwrap();
        let tid = tx.tid();
        let a = tx.alloc_obj_id().unwrap();
        let b = tx.alloc_obj_id().unwrap();
        // From the TID counter: above this transaction's TID, increasing.
        assert!(a as u64 > tid && b > a);
        tx.put(&id(LOCALIZE_MISC, a, rectype::DATA, 16), 2, b"one")
            .unwrap();
        tx.put(&id(LOCALIZE_MISC, a, rectype::DATA, 32), 2, b"two")
            .unwrap();
        tx.put_new(&id(LOCALIZE_MISC, b, rectype::DATA, 16), 2, b"other")
            .unwrap();
        tx.commit().unwrap();
        assert!(store.flush_tid().unwrap() >= b as u64);

        let mut tx = store.begin().unwrap();
        assert!(tx.delete(&id(LOCALIZE_MISC, a, rectype::DATA, 16)).unwrap());
        let live = tx.live_of(LOCALIZE_MISC, a).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].base.key, 32);
        assert_eq!(tx.payload(&live[0]).unwrap(), b"two");
        let mut seen = Vec::new();
        tx.scan(LOCALIZE_MISC..=LOCALIZE_MISC, |leaf, load| {
            // PFS#0's MISC space may hold PFS records too.
            if leaf.base.rec_type == rectype::DATA {
                seen.push((leaf.base.obj_id, leaf.base.delete_tid != 0, load()?));
            }
            Ok::<_, PfsError>(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (a, true, b"one".to_vec()),
                (a, false, b"two".to_vec()),
                (b, false, b"other".to_vec())
            ]
        );
        tx.commit().unwrap();
        // After the commit the store sees the same bytes, every version's.
        let mut after = Vec::new();
        store
            .scan(LOCALIZE_MISC..=LOCALIZE_MISC, |leaf, load| {
                if leaf.base.rec_type == rectype::DATA {
                    after.push((leaf.base.obj_id, leaf.base.delete_tid != 0, load()?));
                }
                Ok::<_, PfsError>(())
            })
            .unwrap();
        assert_eq!(after, seen);
        // The store-level scan covers only the requested types.
        let mut n = 0;
        store
            .scan(LOCALIZE_INODE..=LOCALIZE_INODE, |leaf, _| {
                assert_eq!(leaf.base.localization & 0xFFFF, LOCALIZE_INODE);
                n += usize::from(leaf.base.rec_type == rectype::INODE);
                Ok::<_, PfsError>(())
            })
            .unwrap();
        assert_eq!(n, 1, "PFS#0 root inode only");
    }
}

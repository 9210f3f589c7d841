//! A PFS as the store keeps it: its data as PFS records in PFS#0, a new
//! version per change (kernel-semantics.md §2.5), the root inode a master
//! gets, and the PFS a handle pinned (`Pin`).

use nix::errno::Errno;
use rusqlite::{params, Connection};
use zerocopy::{FromZeros, IntoBytes};

use super::error::StoreError;
use super::key;
use super::payload::{Stored, DATA_OFFSET};
use super::records::{insert_rec, leaf_from, relocalize, remove_row, update_leaf};
use super::tid::{next_tid, now_micros, now_secs};
use super::{blob, Store};
use crate::ondisk::{
    objtype, rectype, BaseElm, InodeDataLe, LeafElm, PseudofsData, BTREE_TYPE_RECORD,
    CAP_DIRHASH_ALG1, CAP_DIR_LOCAL_INO, LOCALIZE_INODE, LOCALIZE_MISC, PFSD_DELETED,
};
use crate::pfs::Result;
use crate::wire::crc::crc32c;

/// The identity of a PFS: its id and generation (how many times that id
/// was destroyed). A handle that pinned one fails every later operation
/// on a PFS that is gone or is a later one under the same id with ENOENT,
/// HAMMER's errno for a PFS that does not exist, instead of working on
/// whatever the id now names: a mirror-write never writes into a
/// destroyed PFS (nor into its successor), a mirror-read never reads one
/// and takes the missing records for the end of the PFS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pin {
    pub(super) pfs_id: u32,
    pub(super) generation: i64,
}

/// A live PFS as a transaction sees it.
pub(super) struct Live {
    pub(super) pfsd: PseudofsData,
    /// The PFS record's leaf: its create_tid is the data's version.
    pub(super) record: LeafElm,
    pub(super) generation: i64,
}

impl Store {
    /// PFS `id` as `conn`'s transaction sees it, if it is live and, when
    /// this handle pinned it, still the same PFS; pins it otherwise.
    pub(super) fn live(&self, conn: &Connection, id: u32) -> Result<Live> {
        let (pfsd, record) = load_live_pfs(conn, id)?;
        let generation = blob::generation(conn, id)?;
        match self.pin.get() {
            Some(p) if p.pfs_id == id => {
                if p.generation != generation {
                    return Err(Errno::ENOENT.into());
                }
            }
            _ => self.pin.set(Some(Pin {
                pfs_id: id,
                generation,
            })),
        }
        Ok(Live {
            pfsd,
            record,
            generation,
        })
    }

    /// Whether this handle pinned PFS `id`.
    pub(super) fn pinned(&self, id: u32) -> bool {
        self.pin.get().is_some_and(|p| p.pfs_id == id)
    }

    /// For reads that also work on a PFS that is gone (the records of a
    /// destroyed PFS are simply none): ENOENT only when the handle pinned
    /// a PFS that is gone.
    pub(super) fn check_pinned(&self, conn: &Connection, id: u32) -> Result<()> {
        if self.pinned(id) {
            self.live(conn, id)?;
        }
        Ok(())
    }
}

/// The key of PFS `id`'s PFS record (in PFS#0) at `create_tid`.
pub(super) fn pfs_record_key(id: u32, create_tid: u64) -> BaseElm {
    BaseElm {
        obj_id: 1,
        key: i64::from(id << 16),
        create_tid,
        delete_tid: 0,
        rec_type: rectype::PFS,
        obj_type: objtype::DIRECTORY,
        btype: BTREE_TYPE_RECORD,
        localization: LOCALIZE_MISC,
    }
}

/// The live version of `id`'s PFS record, if the PFS was ever set.
fn load_pfs(conn: &Connection, id: u32) -> Result<Option<(PseudofsData, LeafElm)>> {
    let first = key::encode(&pfs_record_key(id, 1));
    let last = key::encode(&pfs_record_key(id, 0));
    // A PFS record's payload is always small enough to be inline.
    let mut stmt = conn
        .prepare_cached("SELECT leaf, data FROM rec WHERE k >= ?1 AND k <= ?2 ORDER BY k DESC")?;
    let mut rows = stmt.query(params![&first[..], &last[..]])?;
    while let Some(row) = rows.next()? {
        let leaf = leaf_from(row.get_ref(0)?.as_blob()?)?;
        if leaf.base.delete_tid != 0 {
            continue;
        }
        let data = row.get_ref(1)?.as_blob_or_null()?.unwrap_or_default();
        let bytes: &[u8; PseudofsData::SIZE] = data
            .try_into()
            .map_err(|_| StoreError::Corrupt("PFS record is not 292 bytes"))?;
        return Ok(Some((PseudofsData::decode(bytes), leaf)));
    }
    Ok(None)
}

/// The ids of the PFSes that exist (a live PFS record without DELETED),
/// lowest first.
pub(super) fn live_ids(conn: &Connection) -> Result<Vec<u32>> {
    let first = key::encode(&pfs_record_key(0, 1));
    let last = key::encode(&pfs_record_key(0xFFFF, 0));
    let mut stmt =
        conn.prepare_cached("SELECT leaf, data FROM rec WHERE k >= ?1 AND k <= ?2 ORDER BY k")?;
    let mut rows = stmt.query(params![&first[..], &last[..]])?;
    let mut ids = Vec::new();
    while let Some(row) = rows.next()? {
        let leaf = leaf_from(row.get_ref(0)?.as_blob()?)?;
        let data = row.get_ref(1)?.as_blob_or_null()?.unwrap_or_default();
        let Ok(bytes) = <&[u8; PseudofsData::SIZE]>::try_from(data) else {
            return Err(StoreError::Corrupt("PFS record is not 292 bytes").into());
        };
        if leaf.base.delete_tid == 0 && PseudofsData::decode(bytes).mirror_flags & PFSD_DELETED == 0
        {
            ids.push(u32::try_from(leaf.base.key >> 16).unwrap_or(u32::MAX));
        }
    }
    Ok(ids)
}

/// The PFS data and its record, or ENOENT when the PFS does not exist or
/// is marked deleted.
pub(super) fn load_live_pfs(conn: &Connection, id: u32) -> Result<(PseudofsData, LeafElm)> {
    match load_pfs(conn, id)? {
        Some((p, leaf)) if p.mirror_flags & PFSD_DELETED == 0 => Ok((p, leaf)),
        _ => Err(Errno::ENOENT.into()),
    }
}

/// The sync point of a PFS with data `pfsd` as `conn`'s transaction sees
/// it: a slave's sync_end_tid, a master's newest TID (every change up to
/// it is committed).
pub(super) fn sync_end(conn: &Connection, pfsd: &PseudofsData) -> Result<u64> {
    if pfsd.is_slave() {
        Ok(pfsd.sync_end_tid)
    } else {
        Ok(next_tid(conn)? - 1)
    }
}

/// Writes a new version of `id`'s PFS record at `tid`; the change of its
/// create_tid is what wakes waiters.
pub(super) fn save_pfs(tx: &Connection, id: u32, pfsd: &PseudofsData, tid: u64) -> Result<()> {
    if let Some((_, mut old)) = load_pfs(tx, id)? {
        if old.base.create_tid == tid {
            remove_row(tx, 0, &key::encode(&old.base))?;
        } else {
            old.base.delete_tid = tid;
            old.delete_ts = now_secs();
            update_leaf(tx, &old, tid)?;
        }
    }
    let data = pfsd.to_bytes();
    let leaf = LeafElm {
        base: pfs_record_key(id, tid),
        create_ts: now_secs(),
        delete_ts: 0,
        data_offset: DATA_OFFSET,
        data_len: PseudofsData::SIZE as i32,
        data_crc: crc32c(&data),
    };
    insert_rec(tx, &leaf, Stored::Inline(&data))
}

/// Whether PFS `id` has a live root inode (obj_id 1).
pub(super) fn has_root(conn: &Connection, id: u32) -> Result<bool> {
    let lo = relocalize(LOCALIZE_INODE, id);
    let first = BaseElm {
        localization: lo,
        obj_id: 1,
        rec_type: rectype::INODE,
        key: 0,
        create_tid: 1,
        ..Default::default()
    };
    let last = BaseElm {
        create_tid: 0,
        ..first
    };
    let mut stmt = conn.prepare_cached("SELECT leaf FROM rec WHERE k >= ?1 AND k <= ?2")?;
    let mut rows = stmt.query(params![&key::encode(&first)[..], &key::encode(&last)[..]])?;
    while let Some(row) = rows.next()? {
        if leaf_from(row.get_ref(0)?.as_blob()?)?.base.delete_tid == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A new PFS root as SET_PSEUDOFS makes it for a master: a directory, mode
/// 0755, one link, uid/gid 0, DIR_LOCAL_INO and ALG1 hashing
/// (kernel-semantics.md §2.1).
pub(super) fn create_root(tx: &Connection, id: u32, tid: u64) -> Result<()> {
    let micros = now_micros();
    let inode = InodeDataLe {
        version: InodeDataLe::VERSION.into(),
        mode: 0o755.into(),
        ctime: micros.into(),
        obj_type: objtype::DIRECTORY,
        cap_flags: CAP_DIR_LOCAL_INO | CAP_DIRHASH_ALG1,
        nlinks: 1.into(),
        mtime: micros.into(),
        atime: micros.into(),
        ..InodeDataLe::new_zeroed()
    };
    let d = inode.as_bytes();
    let leaf = LeafElm {
        base: BaseElm {
            obj_id: 1,
            key: 0,
            create_tid: tid,
            delete_tid: 0,
            rec_type: rectype::INODE,
            obj_type: objtype::DIRECTORY,
            btype: BTREE_TYPE_RECORD,
            localization: relocalize(LOCALIZE_INODE, id),
        },
        create_ts: now_secs(),
        delete_ts: 0,
        data_offset: DATA_OFFSET,
        data_len: InodeDataLe::SIZE as i32,
        data_crc: crc32c(&d[..InodeDataLe::CRC_LEN]),
    };
    insert_rec(tx, &leaf, Stored::Inline(d))
}

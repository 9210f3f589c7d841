//! Rows of `rec`, one per record version: inserting one, rewriting its
//! leaf, removing one (its change TID kept by the record before it),
//! decoding leaves and keys, the change index (`mtid`), and UPG's
//! rollback, which that index makes cost O(changes).

use rusqlite::{params, Connection, OptionalExtension};

use super::error::StoreError;
use super::key::{self, RecKey};
use super::memo;
use super::payload::Stored;
use crate::ondisk::{LeafElm, LOCALIZE_MASK};
use crate::pfs::Result;

/// The localization of PFS `id` with the type bits of `lo`.
pub(super) fn relocalize(lo: u32, id: u32) -> u32 {
    (id << 16) | (lo & LOCALIZE_MASK)
}

/// The index value of a record: the last TID at which it was created,
/// deleted or otherwise changed; a SKIP may only cover records whose
/// value is below the reader's tid_beg.
pub(super) fn mtid_of(leaf: &LeafElm) -> u64 {
    leaf.base.create_tid.max(leaf.base.delete_tid)
}

/// Inserts a record; the caller keeps the allocator above its TIDs.
pub(super) fn insert_rec(tx: &Connection, leaf: &LeafElm, data: Stored<'_>) -> Result<()> {
    let k = key::encode(&leaf.base);
    let mut l = [0u8; LeafElm::SIZE];
    leaf.encode(&mut l);
    let (inline, boff) = match data {
        Stored::Nothing => (None, None),
        Stored::Inline(d) => (Some(d), None),
        Stored::Blob(off) => (None, Some(off)),
    };
    tx.prepare_cached(
        "INSERT INTO rec(k, pfs, mtid, leaf, data, boff) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        &k[..],
        leaf.base.localization >> 16,
        &key::tid_bytes(mtid_of(leaf))[..],
        &l[..],
        inline,
        boff,
    ])?;
    Ok(())
}

/// Rewrites the leaf of an existing record (delete_tid changes) with the
/// change TID `mtid`; the caller keeps the allocator above it.
pub(super) fn update_leaf(tx: &Connection, leaf: &LeafElm, mtid: u64) -> Result<()> {
    let k = key::encode(&leaf.base);
    let mut l = [0u8; LeafElm::SIZE];
    leaf.encode(&mut l);
    tx.prepare_cached("UPDATE rec SET leaf = ?2, mtid = ?3 WHERE k = ?1")?
        .execute(params![&k[..], &l[..], &key::tid_bytes(mtid)[..]])?;
    Ok(())
}

/// Physically removes the record at `k` of PFS `id` (no history kept),
/// folding its change TID into the record before it (`fold_before`).
pub(super) fn destroy_rec(tx: &Connection, id: u32, k: &RecKey) -> Result<()> {
    let mtid = remove_row(tx, id, k)?;
    fold_before(tx, id, k, &mtid)
}

/// Deletes the row at `k` of PFS `id`, its payload's bytes in the payload
/// file, if it has some there, counted as named by no row (`memo::Idle`),
/// and its `raised` entry, if it has one; its change TID.
pub(super) fn remove_row(tx: &Connection, id: u32, k: &RecKey) -> Result<Vec<u8>> {
    let (mtid, leaf, boff): (Vec<u8>, Vec<u8>, Option<i64>) = tx
        .prepare_cached("SELECT mtid, leaf, boff FROM rec WHERE k = ?1")?
        .query_row([&k[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    tx.prepare_cached("DELETE FROM rec WHERE k = ?1")?
        .execute([&k[..]])?;
    let leaf = leaf_from(&leaf)?;
    if boff.is_some() {
        memo::idle_add(tx, id, u64::try_from(leaf.data_len).unwrap_or(0))?;
    }
    let d = leaf.base.delete_tid;
    if memo::is_raised(d, &mtid) {
        memo::raised_drop(tx, id, k, d)?;
    }
    Ok(mtid)
}

/// Raises the change TID (`mtid`) of the record of PFS `id` just before
/// the key `k` to `mtid`, when lower. A record physically removed hands
/// its change TID on so: HAMMER keeps a removed element's mirror_tid in
/// its subtree's aggregate (kernel-semantics.md §1.9), and a MIRROR_READ
/// from a TID at or before it must not skip the place where it was, or a
/// target holding a copy is never swept there (store-format.md §3). The
/// record before it is then sent instead of skipped, and the SKIP after it
/// starts past the removed key. Nothing before `k` in the PFS: nothing to
/// do, a target sweeps from the PFS's start up to the first record sent.
pub(super) fn fold_before(tx: &Connection, id: u32, k: &[u8], mtid: &[u8]) -> Result<()> {
    let start = relocalize(0, id).to_be_bytes();
    let before: Option<(Vec<u8>, Vec<u8>, Vec<u8>)> = tx
        .prepare_cached(
            "SELECT k, mtid, leaf FROM rec WHERE k < ?1 AND k >= ?2 ORDER BY k DESC LIMIT 1",
        )?
        .query_row(params![k, &start[..]], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((before, old, leaf)) = before else {
        return Ok(());
    };
    if old[..] >= *mtid {
        return Ok(());
    }
    tx.prepare_cached("UPDATE rec SET mtid = ?2 WHERE k = ?1")?
        .execute(params![&before[..], mtid])?;
    // A deleted record raised so is listed for later prunes (memo.rs).
    let d = leaf_from(&leaf)?.base.delete_tid;
    if d != 0 {
        memo::raised_add(tx, id, &before, d)?;
    }
    Ok(())
}

/// The leaf a `leaf` column holds.
/// The live version of the record whose versions lie between the keys
/// `first` and `last` (one key with create_tid 1 and 0: all its versions),
/// if any: the newest version not deleted.
pub(super) fn live_between(
    conn: &Connection,
    first: &RecKey,
    last: &RecKey,
) -> Result<Option<LeafElm>> {
    let mut stmt =
        conn.prepare_cached("SELECT leaf FROM rec WHERE k >= ?1 AND k <= ?2 ORDER BY k DESC")?;
    let mut rows = stmt.query(rusqlite::params![&first[..], &last[..]])?;
    while let Some(row) = rows.next()? {
        let leaf = leaf_from(row.get_ref(0)?.as_blob()?)?;
        if leaf.base.delete_tid == 0 {
            return Ok(Some(leaf));
        }
    }
    Ok(None)
}

pub(super) fn leaf_from(blob: &[u8]) -> Result<LeafElm> {
    let b: &[u8; LeafElm::SIZE] = blob
        .try_into()
        .map_err(|_| StoreError::Corrupt("leaf is not 64 bytes"))?;
    Ok(LeafElm::decode(b))
}

/// The key a `k` column holds.
pub(super) fn key_from(blob: &[u8]) -> Result<RecKey> {
    Ok(blob
        .try_into()
        .map_err(|_| StoreError::Corrupt("record key is not 30 bytes"))?)
}

/// UPG's rollback to T − 1: records created at or after T are destroyed,
/// deletions at or after T undone (kernel-semantics.md §5.4), as a change at
/// `tid`. Only records changed at or after T can qualify, which the change
/// index finds directly.
pub(super) fn rollback(tx: &Connection, id: u32, t: u64, tid: u64) -> Result<()> {
    let mut doomed = Vec::new();
    let mut revived = Vec::new();
    {
        let mut stmt =
            tx.prepare_cached("SELECT k, leaf FROM rec WHERE pfs = ?1 AND mtid >= ?2")?;
        let mut rows = stmt.query(params![id, &key::tid_bytes(t)[..]])?;
        while let Some(row) = rows.next()? {
            let k = key_from(row.get_ref(0)?.as_blob()?)?;
            let mut leaf = leaf_from(row.get_ref(1)?.as_blob()?)?;
            if leaf.base.create_tid >= t {
                doomed.push(k);
            } else if leaf.base.delete_tid >= t {
                leaf.base.delete_tid = 0;
                leaf.delete_ts = 0;
                revived.push(leaf);
            }
        }
    }
    for k in doomed {
        remove_row(tx, id, &k)?;
    }
    // Un-deleting is a change a downstream reader must not skip.
    for leaf in revived {
        update_leaf(tx, &leaf, tid)?;
    }
    Ok(())
}

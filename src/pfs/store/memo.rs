//! What the last whole prune of a master left (store-format.md §7): a
//! `meta` row per PFS saying that no record whose `mtid` lies below a TID
//! `w` is one the buckets of that prune would destroy. A later prune need
//! only visit the records changed since and those whose bucket changed
//! (kernel-semantics.md §6). When its buckets are the old ones with some
//! bounds gone and newer ones above them (`Memo::visit`), those are the
//! records deleted just after a bound that went, found by their `mtid`
//! (their delete TID) or, when a removal raised that, in the `raised`
//! table, which lists every such deleted record; otherwise, every record
//! whose `mtid` (at least its create and delete TIDs) is at or above the
//! lowest bound that differs (`Memo::floor`). A nightly prune after a
//! snapshot of a month ago expired thus visits the day's changes and
//! those of the day after that snapshot, not the month between nor the
//! years of history the PFS keeps.
//!
//! Only a master's records are covered: every record written into it
//! carries a TID the allocator handed out after `w` (import, snapshots,
//! the configuration), while a slave's carry its master's TIDs. A
//! MIRROR_WRITE that stores an `mtid` below a PFS's `w` (possible only
//! through the ioctl on a master) drops the row (`forget_below`), and so
//! does a change of the PFS record (its version is kept) or of the PFS's
//! generation. Only buckets of softprune's shape count (contiguous, each
//! `mod_tid` its length): any other prune visits every record, as HAMMER's
//! does.
//!
//! A second row per PFS (`Idle`) counts the bytes of its payload file no
//! row names, so that a reblock at a fill percentage below 100 can tell
//! there is too little to give back without listing every row: a reblock
//! that listed them sets it, every removal of a row with a payload in the
//! file adds its length (`idle_add`), a reblock's switch to a new file
//! starts it at 0. A reblock trusts it for at most `RECOUNT` decisions in
//! a row, then counts anew.

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension};

use super::error::StoreError;
use super::{key, records};
use crate::ondisk::LeafElm;
use crate::pfs::retain::PruneElm;
use crate::pfs::Result;

/// What a prune of PFS `pfs` with these buckets proved, or, while
/// `complete` is false, set out to prove: the PFS's generation and PFS
/// record version then, `w`, and the buckets' bounds, ascending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Memo {
    pub(super) generation: i64,
    pub(super) version: u64,
    pub(super) w: u64,
    pub(super) complete: bool,
    pub(super) bounds: Vec<u64>,
}

/// The `meta` name of PFS `id`'s row.
fn name(id: u32) -> String {
    format!("prune {id}")
}

impl Memo {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(25 + 8 * self.bounds.len());
        v.extend_from_slice(&self.generation.to_be_bytes());
        v.extend_from_slice(&self.version.to_be_bytes());
        v.extend_from_slice(&self.w.to_be_bytes());
        v.push(u8::from(self.complete));
        for b in &self.bounds {
            v.extend_from_slice(&b.to_be_bytes());
        }
        v
    }

    fn decode(v: &[u8]) -> Option<Memo> {
        let u = |i: usize| Some(u64::from_be_bytes(v.get(i..i + 8)?.try_into().ok()?));
        if v.len() < 25 || !(v.len() - 25).is_multiple_of(8) {
            return None;
        }
        Some(Memo {
            generation: u(0)? as i64,
            version: u(8)?,
            w: u(16)?,
            complete: v[24] == 1,
            bounds: (25..v.len()).step_by(8).map(u).collect::<Option<_>>()?,
        })
    }

    /// PFS `id`'s row, if it has one that reads.
    pub(super) fn load(conn: &Connection, id: u32) -> Result<Option<Memo>> {
        let v: Option<Vec<u8>> = conn
            .prepare_cached("SELECT value FROM meta WHERE name = ?1")?
            .query_row([name(id)], |r| r.get(0))
            .optional()?;
        Ok(v.as_deref().and_then(Memo::decode))
    }

    pub(super) fn save(&self, tx: &Connection, id: u32) -> Result<()> {
        tx.prepare_cached("INSERT OR REPLACE INTO meta(name, value) VALUES (?1, ?2)")?
            .execute(params![name(id), self.encode()])?;
        Ok(())
    }

    /// The lowest `mtid` a prune with `bounds` (ascending) must visit for
    /// what this memo proved to stay true: below it, every record is one
    /// both sets of buckets keep.
    pub(super) fn floor(&self, bounds: &[u64]) -> u64 {
        let (old, new) = (&self.bounds, bounds);
        let same = old.iter().zip(new).take_while(|(a, b)| a == b).count();
        let d = match (old.get(same), new.get(same)) {
            // The same buckets.
            (None, None) => u64::MAX,
            // The lowest bound one set has and the other lacks.
            (Some(&a), Some(&b)) => a.min(b),
            // One set is the other's start: above its last bound, where
            // it prunes nothing, the other may.
            _ => same.checked_sub(1).map_or(0, |i| old[i]),
        };
        self.w.min(d)
    }

    /// What a prune with `bounds` (ascending) must visit for what this
    /// memo proved to stay true. When every new bound below the old top
    /// bound `t` is an old one (snapshots expired, newer ones taken), the
    /// new buckets below `t` are unions of old ones, and a record no old
    /// bucket held that a new one holds spans an old bound `x` the new
    /// set lacks: created before `x`, deleted at `x` or after but before
    /// the next new bound `s`. Its `mtid` is then its delete TID, in [x,
    /// s), unless a removal raised it (`raised` lists it so); or at least
    /// `t`, or `w` when changed since. Otherwise every record from
    /// `floor` on.
    pub(super) fn visit(&self, bounds: &[u64]) -> Visit {
        let (old, new) = (&self.bounds, bounds);
        let fallback = Visit {
            top: self.floor(bounds),
            windows: Vec::new(),
        };
        let Some(&t) = old.last() else {
            return fallback;
        };
        if new.iter().any(|b| *b < t && old.binary_search(b).is_err()) {
            return fallback;
        }
        let top = self.w.min(t);
        let windows = old
            .iter()
            .filter(|x| new.binary_search(x).is_err())
            .filter_map(|&x| {
                let s = new[new.partition_point(|&b| b <= x)..].first()?;
                (x < top).then_some((x, (*s).min(top)))
            })
            .collect();
        Visit { top, windows }
    }
}

/// The bounds of softprune's buckets, ascending, or None for buckets of
/// another shape: newest first, each beginning where the one before it
/// ends, each `mod_tid` its length (so that a record goes when `beg_tid <=
/// create_tid` and `delete_tid < end_tid` for one of them, and each bound
/// splits TIDs apart).
pub(super) fn bounds(elms: &[PruneElm]) -> Option<Vec<u64>> {
    let first = elms.first()?;
    let mut out = vec![first.end_tid];
    for (i, e) in elms.iter().enumerate() {
        let contiguous = i == 0 || elms[i - 1].beg_tid == e.end_tid;
        if !contiguous || e.beg_tid >= e.end_tid || e.mod_tid != e.end_tid - e.beg_tid {
            return None;
        }
        out.push(e.beg_tid);
    }
    out.reverse();
    Some(out)
}

/// Softprune's buckets with these bounds (ascending), newest first: the
/// inverse of `bounds`.
pub(super) fn elms(bounds: &[u64]) -> Vec<PruneElm> {
    bounds
        .windows(2)
        .rev()
        .map(|w| PruneElm {
            beg_tid: w[0],
            end_tid: w[1],
            mod_tid: w[1].saturating_sub(w[0]),
        })
        .collect()
}

/// Drops PFS `id`'s row when a record was stored with an `mtid` as low as
/// `mtid`, below the TID it vouches for.
pub(super) fn forget_below(tx: &Connection, id: u32, mtid: u64) -> Result<()> {
    if let Some(m) = Memo::load(tx, id)? {
        if mtid < m.w {
            forget(tx, id)?;
        }
    }
    Ok(())
}

/// Drops PFS `id`'s row.
pub(super) fn forget(tx: &Connection, id: u32) -> Result<()> {
    tx.prepare_cached("DELETE FROM meta WHERE name = ?1")?
        .execute([name(id)])?;
    Ok(())
}

/// What a prune must visit (`Memo::visit`): the records whose `mtid` is
/// at or above `top`, and, for each window [lo, hi), those whose `mtid`
/// lies in it and those `raised` lists with a delete TID in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Visit {
    pub(super) top: u64,
    pub(super) windows: Vec<(u64, u64)>,
}

/// The records of PFS `id` that `visit` names, in key order, or None when
/// there are more than `limit` (the caller scans instead): their keys and
/// leaves, and the `raised` entries read (for `raised_tidy`).
pub(super) fn to_visit(
    conn: &Connection,
    id: u32,
    visit: &Visit,
    limit: usize,
) -> Result<Option<VisitRows>> {
    let cap = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let mut keys = BTreeSet::new();
    // The change index alone (it holds the keys) finds them.
    let mut top =
        conn.prepare_cached("SELECT k FROM rec WHERE pfs = ?1 AND mtid >= ?2 LIMIT ?3")?;
    let mut rows = top.query(params![id, &key::tid_bytes(visit.top)[..], cap])?;
    while let Some(r) = rows.next()? {
        keys.insert(records::key_from(r.get_ref(0)?.as_blob()?)?);
    }
    let mut changed = conn
        .prepare_cached("SELECT k FROM rec WHERE pfs = ?1 AND mtid >= ?2 AND mtid < ?3 LIMIT ?4")?;
    let mut raised = conn.prepare_cached(
        "SELECT dtid, k FROM raised WHERE pfs = ?1 AND dtid >= ?2 AND dtid < ?3 LIMIT ?4",
    )?;
    let mut listed = Vec::new();
    for &(lo, hi) in &visit.windows {
        if keys.len() > limit {
            return Ok(None);
        }
        let (lo, hi) = (key::tid_bytes(lo), key::tid_bytes(hi));
        let mut rows = changed.query(params![id, &lo[..], &hi[..], cap])?;
        while let Some(r) = rows.next()? {
            keys.insert(records::key_from(r.get_ref(0)?.as_blob()?)?);
        }
        let mut rows = raised.query(params![id, &lo[..], &hi[..], cap])?;
        while let Some(r) = rows.next()? {
            let dtid: [u8; 8] = r
                .get_ref(0)?
                .as_blob()?
                .try_into()
                .map_err(|_| StoreError::Corrupt("raised delete TID is not 8 bytes"))?;
            let k = records::key_from(r.get_ref(1)?.as_blob()?)?;
            keys.insert(k);
            listed.push((u64::from_be_bytes(dtid), k));
        }
    }
    if keys.len() > limit {
        return Ok(None);
    }
    let mut leaf_of = conn.prepare_cached("SELECT leaf FROM rec WHERE k = ?1")?;
    let mut rows = Vec::with_capacity(keys.len());
    for k in keys {
        let leaf: Option<Vec<u8>> = leaf_of.query_row([&k[..]], |r| r.get(0)).optional()?;
        if let Some(leaf) = leaf {
            rows.push((k, records::leaf_from(&leaf)?));
        }
    }
    Ok(Some(VisitRows { rows, listed }))
}

/// What `to_visit` found.
pub(super) struct VisitRows {
    pub(super) rows: Vec<(key::RecKey, LeafElm)>,
    /// The `raised` entries (delete TID, key) it read.
    pub(super) listed: Vec<(u64, key::RecKey)>,
}

/// Drops those of PFS `id`'s `raised` entries `listed` (delete TID, key)
/// whose row is gone, or deleted at another TID, or no longer raised.
pub(super) fn raised_tidy(tx: &Connection, id: u32, listed: &[(u64, key::RecKey)]) -> Result<()> {
    let mut row = tx.prepare_cached("SELECT leaf, mtid FROM rec WHERE k = ?1")?;
    for (dtid, k) in listed {
        let found: Option<(Vec<u8>, Vec<u8>)> = row
            .query_row([&k[..]], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let still = match found {
            Some((leaf, mtid)) => {
                let d = records::leaf_from(&leaf)?.base.delete_tid;
                d == *dtid && is_raised(d, &mtid)
            }
            None => false,
        };
        if !still {
            raised_drop(tx, id, k, *dtid)?;
        }
    }
    Ok(())
}

/// Whether a row deleted at `delete_tid` (0: live) with the change TID
/// `mtid` (as the column holds it) is one a removal raised, which
/// `raised` lists (store-format.md §3).
pub(super) fn is_raised(delete_tid: u64, mtid: &[u8]) -> bool {
    delete_tid != 0 && mtid > &key::tid_bytes(delete_tid)[..]
}

/// Lists the row at `k` of PFS `id`, deleted at `dtid`, as one whose
/// `mtid` a removal raised above `dtid` (store-format.md §3).
pub(super) fn raised_add(tx: &Connection, id: u32, k: &[u8], dtid: u64) -> Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO raised(pfs, dtid, k) VALUES (?1, ?2, ?3)")?
        .execute(params![id, &key::tid_bytes(dtid)[..], k])?;
    Ok(())
}

/// Drops the `raised` entry of the row at `k` of PFS `id`, deleted at
/// `dtid`, if any.
pub(super) fn raised_drop(tx: &Connection, id: u32, k: &[u8], dtid: u64) -> Result<()> {
    tx.prepare_cached("DELETE FROM raised WHERE pfs = ?1 AND dtid = ?2 AND k = ?3")?
        .execute(params![id, &key::tid_bytes(dtid)[..], k])?;
    Ok(())
}

/// Drops every `raised` entry of PFS `id`.
pub(super) fn raised_forget(tx: &Connection, id: u32) -> Result<()> {
    tx.prepare_cached("DELETE FROM raised WHERE pfs = ?1")?
        .execute([id])?;
    Ok(())
}

/// How many reblocks in a row may decide from an `Idle` row before one
/// lists the rows again (a store written by a hammer that predates the
/// row does not add to it).
pub(super) const RECOUNT: u32 = 32;

/// PFS `id`'s payload file (generation `gen` of `blob`): `bytes` of it no
/// row names, or, while `counting`, the bytes rows stopped naming since a
/// reblock began to count; `uses`, the reblocks that decided from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Idle {
    pub(super) gen: i64,
    pub(super) bytes: u64,
    pub(super) uses: u32,
    pub(super) counting: bool,
}

fn idle_name(id: u32) -> String {
    format!("idle {id}")
}

impl Idle {
    pub(super) fn load(conn: &Connection, id: u32) -> Result<Option<Idle>> {
        let v: Option<Vec<u8>> = conn
            .prepare_cached("SELECT value FROM meta WHERE name = ?1")?
            .query_row([idle_name(id)], |r| r.get(0))
            .optional()?;
        Ok(v.and_then(|v| {
            let b: &[u8; 21] = v.as_slice().try_into().ok()?;
            Some(Idle {
                gen: i64::from_be_bytes(b[0..8].try_into().ok()?),
                bytes: u64::from_be_bytes(b[8..16].try_into().ok()?),
                uses: u32::from_be_bytes(b[16..20].try_into().ok()?),
                counting: b[20] == 1,
            })
        }))
    }

    pub(super) fn save(&self, tx: &Connection, id: u32) -> Result<()> {
        let mut v = Vec::with_capacity(21);
        v.extend_from_slice(&self.gen.to_be_bytes());
        v.extend_from_slice(&self.bytes.to_be_bytes());
        v.extend_from_slice(&self.uses.to_be_bytes());
        v.push(u8::from(self.counting));
        tx.prepare_cached("INSERT OR REPLACE INTO meta(name, value) VALUES (?1, ?2)")?
            .execute(params![idle_name(id), v])?;
        Ok(())
    }
}

/// Drops PFS `id`'s `Idle` row.
pub(super) fn forget_idle(tx: &Connection, id: u32) -> Result<()> {
    tx.prepare_cached("DELETE FROM meta WHERE name = ?1")?
        .execute([idle_name(id)])?;
    Ok(())
}

/// Rows of PFS `id` naming `bytes` of its payload file are gone, or name
/// other bytes now.
pub(super) fn idle_add(tx: &Connection, id: u32, bytes: u64) -> Result<()> {
    if bytes == 0 {
        return Ok(());
    }
    if let Some(mut i) = Idle::load(tx, id)? {
        i.bytes = i.bytes.saturating_add(bytes);
        i.save(tx, id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfs::retain::prunes;

    fn memo(bounds: &[u64], w: u64) -> Memo {
        Memo {
            generation: 0,
            version: 0,
            w,
            complete: true,
            bounds: bounds.to_vec(),
        }
    }

    #[test]
    fn softprune_buckets_have_bounds_others_none() {
        assert_eq!(bounds(&elms(&[1, 10, 20, 30])), Some(vec![1, 10, 20, 30]));
        assert_eq!(bounds(&[]), None);
        let mut gap = elms(&[1, 10, 20]);
        gap[0].beg_tid = 11;
        gap[0].mod_tid = 9;
        assert_eq!(bounds(&gap), None);
        let mut fine = elms(&[1, 10, 20]);
        fine[1].mod_tid = 3;
        assert_eq!(bounds(&fine), None);
        // softprune's element when the oldest snapshot is TID 1.
        let empty = [PruneElm {
            beg_tid: 1,
            end_tid: 1,
            mod_tid: 0,
        }];
        assert_eq!(bounds(&empty), None);
        let m = memo(&[1, 10, 20], 7);
        assert_eq!(Memo::decode(&m.encode()), Some(m));
    }

    /// Changes of buckets (old bounds, new bounds) the rule tests go
    /// through: snapshots expired and newer ones taken, the same ones,
    /// one more, the newest gone, and new bounds below the old top.
    const CHANGES: [(&[u64], &[u64]); 10] = [
        (&[1, 10, 20, 30], &[1, 20, 30, 40]),
        (&[1, 10, 20, 30], &[1, 10, 30, 40]),
        (&[1, 10, 20, 30], &[1, 10, 20, 30]),
        (&[1, 10, 20], &[1, 10, 20, 30]),
        (&[1, 10, 20, 30], &[1, 10, 20]),
        (&[1, 10, 20, 30], &[1, 30]),
        (&[1, 5, 9, 13, 17], &[1, 13, 17, 21, 25]),
        (&[1, 5, 9, 13, 17], &[1, 5, 13, 17, 21, 25]),
        (&[1, 10], &[1, 40, 50]),
        (&[1, 5, 9, 13, 17], &[1, 5, 13, 15, 17, 21]),
    ];

    /// Below the floor, both sets of buckets decide alike: checked on every
    /// record of a small TID space for a set of snapshot changes.
    #[test]
    fn below_the_floor_both_sets_decide_alike() {
        for (old, new) in CHANGES {
            for w in [0, 12, 25, 60] {
                let floor = memo(old, w).floor(new);
                let (eo, en) = (elms(old), elms(new));
                for c in 1..60 {
                    for d in (c..60).chain([0]) {
                        if c.max(d) < floor {
                            assert_eq!(
                                prunes(false, &eo, c, d),
                                prunes(false, &en, c, d),
                                "{old:?} -> {new:?}, floor {floor}: ({c}, {d})"
                            );
                        }
                    }
                }
            }
        }
        assert_eq!(memo(&[1, 10, 20, 30], 99).floor(&[1, 20, 30, 40]), 10);
        assert_eq!(memo(&[1, 10, 20, 30], 99).floor(&[1, 10, 20, 30]), 99);
        assert_eq!(memo(&[1, 10, 20], 99).floor(&[1, 10, 20, 30]), 20);
        assert_eq!(memo(&[1, 10, 20, 30], 25).floor(&[1, 10, 20, 30]), 25);
    }

    /// A record `visit` leaves out (its `mtid` below the top, in no
    /// window, and not raised from a delete TID in one) is one both sets
    /// of buckets decide alike, as long as the old prune left it (it was
    /// there, its `mtid` below `w`, and the old buckets keep it): checked
    /// on every record (create, delete, `mtid`) of a small TID space,
    /// raised or not, for snapshot changes of both kinds.
    #[test]
    fn what_a_visit_leaves_out_both_sets_decide_alike() {
        for (old, new) in CHANGES {
            for w in [0, 12, 25, 60] {
                let v = memo(old, w).visit(new);
                let (eo, en) = (elms(old), elms(new));
                let windowed = |t: u64| v.windows.iter().any(|&(lo, hi)| lo <= t && t < hi);
                for c in 1..60 {
                    for d in (c..60).chain([0]) {
                        for m in c.max(d)..61 {
                            if m >= v.top || windowed(m) || d != 0 && m > d && windowed(d) {
                                continue;
                            }
                            let at = format!("{old:?} -> {new:?}, w {w}, {v:?}: ({c}, {d}, {m})");
                            assert!(m < w, "changed since, not visited: {at}");
                            if !prunes(false, &eo, c, d) {
                                assert!(!prunes(false, &en, c, d), "{at}");
                            }
                        }
                    }
                }
            }
        }
        let v = memo(&[1, 10, 20, 30], 99).visit(&[1, 20, 30, 40]);
        assert_eq!((v.top, v.windows), (30, vec![(10, 20)]));
        let v = memo(&[1, 10, 20, 30], 25).visit(&[1, 30, 40]);
        assert_eq!((v.top, v.windows), (25, vec![(10, 25), (20, 25)]));
        let v = memo(&[1, 10], 99).visit(&[1, 40, 50]);
        assert_eq!((v.top, v.windows), (10, vec![]));
    }
}

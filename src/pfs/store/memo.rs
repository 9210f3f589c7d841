//! What the last whole prune of a master left (store-format.md §7): a
//! `meta` row per PFS saying that no record whose `mtid` lies below a TID
//! `w` is one the buckets of that prune would destroy. A later prune whose
//! buckets differ from those only at and above a TID `d` decides as that
//! one did for every record whose create and delete TIDs lie below `d`
//! (kernel-semantics.md §6), so it need only visit the records whose
//! `mtid` (at least both TIDs) is at or above min(w, d): those changed
//! since, and those whose bucket changed. A nightly prune after a snapshot
//! of a month ago expired thus visits the month's changes, not the years
//! of history the PFS keeps.
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

use rusqlite::{params, Connection, OptionalExtension};

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

/// The records of PFS `id` whose `mtid` is at or above `floor`, in key
/// order (read so, the table's pages are each read once), or None when
/// there are more than `limit` (the caller scans instead): their keys and
/// leaves.
pub(super) fn changed_since(
    conn: &Connection,
    id: u32,
    floor: u64,
    limit: usize,
) -> Result<Option<Vec<(key::RecKey, LeafElm)>>> {
    let floor = key::tid_bytes(floor);
    // The change index alone (it holds the keys) counts them.
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM rec WHERE pfs = ?1 AND mtid >= ?2 LIMIT ?3)",
        )?
        .query_row(
            params![
                id,
                &floor[..],
                i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
            ],
            |r| r.get(0),
        )?;
    if usize::try_from(n).map_or(true, |n| n > limit) {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT k, leaf FROM rec WHERE k IN \
         (SELECT k FROM rec WHERE pfs = ?1 AND mtid >= ?2) ORDER BY k",
    )?;
    let mut rows = stmt.query(params![id, &floor[..]])?;
    let mut out = Vec::with_capacity(n as usize);
    while let Some(r) = rows.next()? {
        out.push((
            records::key_from(r.get_ref(0)?.as_blob()?)?,
            records::leaf_from(r.get_ref(1)?.as_blob()?)?,
        ));
    }
    Ok(Some(out))
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

    fn elms(bounds: &[u64]) -> Vec<PruneElm> {
        bounds
            .windows(2)
            .rev()
            .map(|w| PruneElm {
                beg_tid: w[0],
                end_tid: w[1],
                mod_tid: w[1] - w[0],
            })
            .collect()
    }

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

    /// Below the floor, both sets of buckets decide alike: checked on every
    /// record of a small TID space for a set of snapshot changes.
    #[test]
    fn below_the_floor_both_sets_decide_alike() {
        let cases: [(&[u64], &[u64]); 7] = [
            // A snapshot expired, a newer one taken.
            (&[1, 10, 20, 30], &[1, 20, 30, 40]),
            (&[1, 10, 20, 30], &[1, 10, 30, 40]),
            // The same snapshots.
            (&[1, 10, 20, 30], &[1, 10, 20, 30]),
            // One more, none gone; the newest gone.
            (&[1, 10, 20], &[1, 10, 20, 30]),
            (&[1, 10, 20, 30], &[1, 10, 20]),
            // Everything new.
            (&[1, 10], &[1, 40, 50]),
            (&[1, 5, 9, 13, 17], &[1, 5, 13, 17, 21, 25]),
        ];
        for (old, new) in cases {
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
}

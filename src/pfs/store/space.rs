//! How a PFS's bytes divide, for `hammer space`: live records, history,
//! the history each snapshot alone holds and the history none holds
//! (what prune gives back), and the payload file's bytes no record names
//! (what reblock gives back).

use rusqlite::{params, OptionalExtension};

use super::records::leaf_from;
use super::Store;
use crate::ondisk::rectype;
use crate::pfs::Result;

/// Records and their payload bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub records: u64,
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, bytes: u64) {
        self.records += 1;
        self.bytes += bytes;
    }
}

/// A PFS's space, by what holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Space {
    /// Record versions not deleted.
    pub live: Tally,
    /// Deleted versions: the PFS's history.
    pub history: Tally,
    /// History prune keeps whatever it sees: created after the newest
    /// snapshot, or all of it with fewer than two snapshots (prune's
    /// newest bucket is kept whole, kernel-semantics.md §6.1).
    pub kept: Tally,
    /// History no snapshot sees from before the newest one: prune removes
    /// it (prune-min aside).
    pub unheld: Tally,
    /// History more than one snapshot sees.
    pub shared: Tally,
    /// Each live snapshot's TID, oldest first, with the history it alone
    /// sees: deleting that snapshot and pruning removes it, but for the
    /// newest one's, created after the snapshot before it, which prune
    /// then keeps as created after the newest.
    pub snapshots: Vec<(u64, Tally)>,
    /// The payload file's committed size.
    pub file_bytes: u64,
    /// Of those, the bytes records name.
    pub named_bytes: u64,
}

impl Store {
    /// The space of the addressed PFS: two passes over its rows' leaves
    /// in one read transaction (payloads are not read).
    pub fn space(&self) -> Result<Space> {
        let id = self.check_id()?;
        let tx = self.read_tx()?;
        self.check_pinned(&tx, id)?;
        let mut stmt = tx.prepare("SELECT leaf, boff FROM rec WHERE pfs = ?1")?;
        let mut snaps = Vec::new();
        {
            let mut rows = stmt.query(params![id])?;
            while let Some(row) = rows.next()? {
                let leaf = leaf_from(row.get_ref(0)?.as_blob()?)?;
                let b = &leaf.base;
                if b.rec_type == rectype::SNAPSHOT && b.delete_tid == 0 {
                    snaps.push(b.key as u64);
                }
            }
        }
        snaps.sort_unstable();
        let mut space = Space {
            snapshots: snaps.iter().map(|&t| (t, Tally::default())).collect(),
            ..Space::default()
        };
        let mut rows = stmt.query(params![id])?;
        while let Some(row) = rows.next()? {
            let leaf = leaf_from(row.get_ref(0)?.as_blob()?)?;
            let bytes = u64::try_from(leaf.data_len).unwrap_or(0);
            if row.get::<_, Option<i64>>(1)?.is_some() {
                space.named_bytes += bytes;
            }
            let b = &leaf.base;
            if b.delete_tid == 0 {
                space.live.add(bytes);
                continue;
            }
            space.history.add(bytes);
            if snaps.len() < 2 || snaps.last().is_some_and(|&newest| b.create_tid > newest) {
                space.kept.add(bytes);
                continue;
            }
            // The snapshots that see it: create_tid <= S < delete_tid.
            let from = snaps.partition_point(|&s| s < b.create_tid);
            let to = snaps.partition_point(|&s| s < b.delete_tid);
            match to.saturating_sub(from) {
                0 => space.unheld.add(bytes),
                1 => space.snapshots[from].1.add(bytes),
                _ => space.shared.add(bytes),
            }
        }
        let size: Option<i64> = tx
            .query_row("SELECT size FROM blob WHERE pfs = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()?;
        space.file_bytes = size.map_or(0, |s| u64::try_from(s).unwrap_or(0));
        Ok(space)
    }
}

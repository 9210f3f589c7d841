//! When a change happened: the TID allocator (one counter in `meta`,
//! moved inside write transactions) and the wall-clock stamps records
//! carry.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::pfs::Result;

/// newfs_hammer's first TID.
pub const FIRST_TID: u64 = 0x0000_0001_0000_0000;

/// The next TID the allocator hands out.
pub(super) fn next_tid(conn: &Connection) -> Result<u64> {
    let v: i64 = conn.query_row("SELECT value FROM meta WHERE name = 'next_tid'", [], |r| {
        r.get(0)
    })?;
    Ok(v as u64)
}

/// Allocates one TID inside a write transaction, so concurrent processes
/// never get the same one and the value is durable with the commit.
///
/// The TID after it is skipped: HAMMER's flusher keeps moving the master's
/// sync point past every committed record (kernel-semantics.md §5.10),
/// while here it moves only at commits. Reporting one past the last
/// record's TID keeps a source from seeing the one-TID range
/// `[T.sync_end + 1, S.sync_end]` as empty (the tool's "No work" rule) and
/// then waiting for a change that never comes.
pub(super) fn alloc_tid(tx: &Connection) -> Result<u64> {
    let tid = next_tid(tx)?;
    set_next_tid(tx, tid.saturating_add(2))?;
    Ok(tid)
}

/// Keeps the allocator above a TID the store now holds (kernel-semantics.md
/// §1.8).
pub(super) fn raise_next_tid(tx: &Connection, tid: u64) -> Result<()> {
    if tid >= next_tid(tx)? {
        set_next_tid(tx, tid.saturating_add(1))?;
    }
    Ok(())
}

fn set_next_tid(tx: &Connection, v: u64) -> Result<()> {
    tx.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'next_tid'")?
        .execute([v as i64])?;
    Ok(())
}

/// Seconds since the epoch, as a leaf's create_ts and delete_ts hold them.
pub(super) fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// Microseconds since the epoch, as inode times hold them.
pub(super) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

//! The store's write transactions: BEGIN IMMEDIATE on the connection, then
//! COMMIT, or a rollback that first gives the payload file's uncommitted
//! tail back (`blob::Tail`), while the write lock still keeps every other
//! writer from appending. A writer that finds the lock taken says that it
//! waits (`waiting.rs`) until it has it.

use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};

use super::blob::{Blobs, Tail};
use super::schema::BUSY_TIMEOUT;
use super::waiting;
use crate::pfs::Result;

/// An open write transaction; dropped without `commit` or `hold`, it rolls
/// back.
pub(super) struct WriteTx<'c> {
    conn: &'c Connection,
    /// Where the payload file this transaction appends to ended before.
    tail: Option<Tail>,
    open: bool,
}

impl<'c> WriteTx<'c> {
    /// Takes the write lock of the store at `root` at once, or, when
    /// another writer holds it, waits for it up to the busy timeout, seen
    /// by the jobs that give way to waiting writers.
    pub(super) fn begin(conn: &'c Connection, root: &Path) -> Result<Self> {
        conn.busy_timeout(Duration::ZERO)?;
        let first = conn.execute_batch("BEGIN IMMEDIATE");
        conn.busy_timeout(BUSY_TIMEOUT)?;
        match first {
            Ok(()) => {}
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::DatabaseBusy => {
                let _seen = waiting::waiting(root);
                conn.execute_batch("BEGIN IMMEDIATE")?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(WriteTx {
            conn,
            tail: None,
            open: true,
        })
    }

    /// Called with a payload writer before it appends: what it appends is
    /// given back unless this transaction commits.
    pub(super) fn guard_tail(&mut self, blobs: &Blobs) {
        self.tail.get_or_insert_with(|| blobs.tail());
    }

    pub(super) fn commit(mut self) -> Result<()> {
        // On failure `self` drops still open: tail cut, then rollback.
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}

impl Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        // The tail first: ROLLBACK releases the write lock. A tail that
        // cannot be cut stays, as a killed writer's does, and is
        // overwritten by the next writer.
        if let Some(t) = &self.tail {
            let _ = t.cut();
        }
        // A failed COMMIT may have ended the transaction already.
        let _ = self.conn.execute_batch("ROLLBACK");
    }
}

//! Read-only checks of what only the store holds and no ioctl reaches, for
//! `hammer verify`: SQLite's own `quick_check`, and why a record's payload
//! cannot be read from its payload file.

use rusqlite::OptionalExtension;

use super::blob::PayloadFault;
use super::{key, leaf_from, relocalize, Result, Store};
use crate::ondisk::BaseElm;

impl Store {
    /// `PRAGMA quick_check`: what SQLite finds wrong in the database file
    /// (its B-Tree pages, records, NOT NULL columns); empty when sound.
    pub fn quick_check(&self) -> Result<Vec<String>> {
        // Every page is read about once, as in a mirror-read's scan: a
        // larger cache would only fill.
        self.conn.execute_batch(super::read::SCAN_CACHE)?;
        let mut stmt = self.conn.prepare("PRAGMA quick_check")?;
        let mut rows = stmt.query([])?;
        let mut problems = Vec::new();
        while let Some(row) = rows.next()? {
            let line: String = row.get(0)?;
            if line != "ok" {
                problems.push(line);
            }
        }
        Ok(problems)
    }

    /// Why the payload of the addressed PFS's record `key` (as MIRROR_READ
    /// returned it) cannot be read from the payload file, if the store can
    /// tell; `None` for a record kept in its row or no longer there, and
    /// for a payload that reads fine now.
    pub fn payload_fault(&self, key: &BaseElm) -> Result<Option<PayloadFault>> {
        let id = self.check_id()?;
        let (tx, blobs, ()) = self.read_blobs(id, |_| Ok(()))?;
        let k = key::encode(&BaseElm {
            localization: relocalize(key.localization, id),
            ..*key
        });
        let row: Option<(Vec<u8>, Option<i64>)> = tx
            .prepare_cached("SELECT leaf, boff FROM rec WHERE k = ?1")?
            .query_row([&k[..]], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((leaf, Some(boff))) = row else {
            return Ok(None);
        };
        let len = leaf_from(&leaf)?.data_len;
        let (Ok(off), Ok(n)) = (u64::try_from(boff), usize::try_from(len)) else {
            return Ok(Some(PayloadFault::BadPlace { boff, len }));
        };
        Ok(blobs.fault(off, n))
    }
}

//! Rows of `rec` changed a batch at a time: one statement walks a key
//! range once and changes the rows that a sorted list, bound as one blob
//! parameter, names — instead of one statement, and one search of the
//! B-Tree from its root, per row. Prune's deletions and `mtid` raises and
//! reblock's new offsets go so (store-format.md §7, §5.1).
//!
//! The lists are looked up by SQL functions this module registers on
//! every connection (`register`); a list names keys in ascending order,
//! each key followed by a fixed number of value bytes.

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, Connection};

use super::error::StoreError;
use super::key::{RecKey, KEY_LEN};
use crate::pfs::Result;

/// Keys, each followed by `VALUE` bytes, ascending, for one statement.
pub(super) struct List<const VALUE: usize> {
    bytes: Vec<u8>,
    /// The last key pushed, which the next must exceed.
    last: Option<RecKey>,
}

impl<const VALUE: usize> List<VALUE> {
    const ENTRY: usize = KEY_LEN + VALUE;

    pub(super) fn new() -> Self {
        List {
            bytes: Vec::new(),
            last: None,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.bytes.len() / Self::ENTRY
    }

    /// Adds `k` with `value`; keys must come in ascending order.
    pub(super) fn push(&mut self, k: &RecKey, value: [u8; VALUE]) -> Result<()> {
        if self.last.is_some_and(|l| l >= *k) {
            return Err(StoreError::Corrupt("batch keys out of order").into());
        }
        self.bytes.extend_from_slice(k);
        self.bytes.extend_from_slice(&value);
        self.last = Some(*k);
        Ok(())
    }

    /// The first key and the last: the range the statement walks.
    fn bounds(&self) -> Option<(&[u8], &[u8])> {
        let first = self.bytes.get(..KEY_LEN)?;
        let at = self.bytes.len().checked_sub(Self::ENTRY)?;
        Some((first, &self.bytes[at..at + KEY_LEN]))
    }

    /// Runs `sql` (?1, ?2: the first and last key; ?3: the list) and
    /// checks that it changed one row per entry.
    fn run(&self, conn: &Connection, sql: &str) -> Result<()> {
        let Some((first, last)) = self.bounds() else {
            return Ok(());
        };
        let n = conn
            .prepare_cached(sql)?
            .execute(params![first, last, &self.bytes[..]])?;
        if n != self.len() {
            return Err(StoreError::Corrupt("a batch changed other rows than it listed").into());
        }
        Ok(())
    }
}

/// Keys of rows to delete.
pub(super) type Doomed = List<0>;
/// Keys of rows with their new `mtid` (8 bytes, as the column holds it).
pub(super) type Raised = List<8>;
/// Keys of rows with their new `boff` (big-endian).
pub(super) type Offsets = List<8>;

/// Deletes the rows `list` names.
pub(super) fn delete(conn: &Connection, list: &Doomed) -> Result<()> {
    list.run(
        conn,
        "DELETE FROM rec WHERE k >= ?1 AND k <= ?2 AND hammer_listed(k, ?3, 0)",
    )
}

/// Sets the `mtid` of the rows `list` names to their values.
pub(super) fn raise(conn: &Connection, list: &Raised) -> Result<()> {
    list.run(
        conn,
        "UPDATE rec SET mtid = hammer_value(k, ?3, 0) \
         WHERE k >= ?1 AND k <= ?2 AND hammer_listed(k, ?3, 8)",
    )
}

/// Sets the `boff` of the rows `list` names to their values.
pub(super) fn set_offsets(conn: &Connection, list: &Offsets) -> Result<()> {
    list.run(
        conn,
        "UPDATE rec SET boff = hammer_value(k, ?3, 1) \
         WHERE k >= ?1 AND k <= ?2 AND hammer_listed(k, ?3, 8)",
    )
}

/// The value bytes the list `list` of entries `KEY_LEN + value` wide
/// holds for `k`, if it names `k`.
fn find<'a>(list: &'a [u8], value: usize, k: &[u8]) -> Option<&'a [u8]> {
    let entry = KEY_LEN + value;
    let (mut lo, mut hi) = (0, list.len() / entry);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let at = &list[mid * entry..(mid + 1) * entry];
        match at[..KEY_LEN].cmp(k) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Some(&at[KEY_LEN..]),
        }
    }
    None
}

/// The blob argument `i` of a call.
fn blob<'a>(ctx: &'a Context<'_>, i: usize) -> rusqlite::Result<&'a [u8]> {
    match ctx.get_raw(i) {
        ValueRef::Blob(b) => Ok(b),
        _ => Err(misuse("a key or list that is not a blob")),
    }
}

fn misuse(what: &'static str) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(Box::new(StoreError::Corrupt(what)))
}

/// Registers `hammer_listed(k, list, value_len)` (whether the list names
/// `k`) and `hammer_value(k, list, as_int)` (the 8 value bytes the list
/// has for `k`, as a blob, or as a big-endian integer with `as_int`).
pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_DIRECTONLY;
    conn.create_scalar_function("hammer_listed", 3, flags, |ctx| {
        let value = usize::try_from(ctx.get::<i64>(2)?).map_err(|_| misuse("negative width"))?;
        Ok(find(blob(ctx, 1)?, value, blob(ctx, 0)?).is_some())
    })?;
    conn.create_scalar_function("hammer_value", 3, flags, |ctx| {
        let Some(v) = find(blob(ctx, 1)?, 8, blob(ctx, 0)?) else {
            return Ok(Value::Null);
        };
        let bytes: [u8; 8] = v.try_into().map_err(|_| misuse("a short list"))?;
        Ok(if ctx.get::<bool>(2)? {
            let n = i64::try_from(u64::from_be_bytes(bytes))
                .map_err(|_| misuse("offset beyond 2^63"))?;
            Value::Integer(n)
        } else {
            Value::Blob(bytes.to_vec())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> RecKey {
        let mut k = [0u8; KEY_LEN];
        k[KEY_LEN - 1] = i;
        k
    }

    #[test]
    fn lists_find_what_they_name_and_refuse_disorder() {
        let mut l = Offsets::new();
        for i in [2u8, 5, 9] {
            l.push(&key(i), u64::from(i).to_be_bytes()).unwrap();
        }
        assert!(l.push(&key(9), [0; 8]).is_err());
        assert_eq!(l.len(), 3);
        for i in 0..12u8 {
            let want = [2, 5, 9].contains(&i).then(|| u64::from(i).to_be_bytes());
            assert_eq!(
                find(&l.bytes, 8, &key(i)).map(|v| v.to_vec()),
                want.map(|w| w.to_vec()),
                "{i}"
            );
        }
        assert!(find(&[], 0, &key(1)).is_none());
    }

    #[test]
    fn statements_change_exactly_the_rows_listed() {
        let c = Connection::open_in_memory().unwrap();
        register(&c).unwrap();
        c.execute_batch(
            "CREATE TABLE rec(k BLOB PRIMARY KEY, mtid BLOB, boff INTEGER) WITHOUT ROWID",
        )
        .unwrap();
        for i in 0..10u8 {
            c.execute("INSERT INTO rec VALUES (?1, x'00', 0)", [&key(i)[..]])
                .unwrap();
        }
        let mut gone = Doomed::new();
        gone.push(&key(3), []).unwrap();
        gone.push(&key(7), []).unwrap();
        delete(&c, &gone).unwrap();
        let mut up = Raised::new();
        up.push(&key(4), *b"\0\0\0\0\0\0\0\x09").unwrap();
        raise(&c, &up).unwrap();
        let mut offs = Offsets::new();
        offs.push(&key(1), 77u64.to_be_bytes()).unwrap();
        offs.push(&key(8), 88u64.to_be_bytes()).unwrap();
        set_offsets(&c, &offs).unwrap();
        let rows: Vec<(u8, Vec<u8>, i64)> = c
            .prepare("SELECT k, mtid, boff FROM rec ORDER BY k")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?[KEY_LEN - 1], r.get(1)?, r.get(2)?))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let ids: Vec<u8> = rows.iter().map(|r| r.0).collect();
        assert_eq!(ids, [0, 1, 2, 4, 5, 6, 8, 9]);
        assert_eq!(rows[3].1, vec![0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(rows[1].2, 77);
        assert_eq!(rows[6].2, 88);
        assert!(rows
            .iter()
            .filter(|r| ![1, 4, 8].contains(&r.0))
            .all(|r| r.1 == [0] && r.2 == 0));
        // A listed row that is not there is an error, not a silent no-op.
        assert!(delete(&c, &gone).is_err());
    }
}

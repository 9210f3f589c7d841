//! `hammer snapls <pfs> ...` on the store: every TID a PFS can be exported
//! as of (each import's TID, each change a slave received, each sync point
//! it reached), with its time and size, newest last.

use std::io::Write;

use super::{open_pfs, BridgeError};
use crate::patharg::PathArg;
use crate::pfs::store::Change;
use crate::pfs::Pfs;

/// Lists the history of the PFS `path` names on `out`.
pub fn snapls(path: &PathArg, out: &mut dyn Write) -> Result<(), BridgeError> {
    let (store, _) = open_pfs(path)?;
    let changes = store.history()?;
    let mut text = format!(
        "Snapshots on {path}\tPFS #{}\nTransaction ID\t\tTimestamp\t\tNote\n",
        store.pfs_id()
    );
    for c in &changes {
        text.push_str(&format!("0x{:016x}\t{}\t{}\n", c.tid, utc(c.time), note(c)));
    }
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| BridgeError::io(std::path::Path::new("stdout"), e))
}

/// What a row says about its TID.
fn note(c: &Change) -> String {
    let mut parts = Vec::new();
    if c.sync_point {
        parts.push("sync point".to_string());
    }
    if c.created > 0 {
        let s = if c.created == 1 { "" } else { "s" };
        parts.push(format!("{} record{s}, {} bytes", c.created, c.bytes));
    }
    if c.deleted > 0 {
        parts.push(format!("{} deleted", c.deleted));
    }
    parts.join(", ")
}

/// `YYYY-MM-DD hh:mm:ss UTC` of seconds since the epoch (the proleptic
/// Gregorian calendar, days to civil date as in H. Hinnant's algorithm).
fn utc(secs: u32) -> String {
    let days = i64::from(secs / 86_400);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_886_222), "2026-11-28 17:17:02 UTC");
        assert_eq!(utc(u32::MAX), "2106-02-07 06:28:15 UTC");
    }

    #[test]
    fn notes() {
        let c = Change {
            tid: 5,
            created: 3,
            bytes: 100,
            deleted: 1,
            ..Default::default()
        };
        assert_eq!(note(&c), "3 records, 100 bytes, 1 deleted");
        let s = Change {
            sync_point: true,
            ..Default::default()
        };
        assert_eq!(note(&s), "sync point");
    }
}

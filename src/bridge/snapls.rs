//! `hammer snapls --changes <pfs> ...` on the store: every TID a PFS can
//! be exported as of (each import's TID, each change a slave received,
//! each sync point it reached), with its time and size, newest last, in
//! the columns of snapls's list of snapshots (cli.md §13.4).

use std::io::Write;

use super::{open_pfs, BridgeError};
use crate::ctime::strftime_local;
use crate::patharg::PathArg;
use crate::pfs::store::Change;
use crate::pfs::Pfs;

/// Lists the history of the PFS `path` names on `out`.
pub fn snapls(path: &PathArg, out: &mut dyn Write) -> Result<(), BridgeError> {
    let (store, _) = open_pfs(path)?;
    let changes = store.history()?;
    let mut text = format!(
        "Snapshots on {path}\tPFS#{}\nTransaction ID\t\tTimestamp\t\tNote\n",
        store.pfs_id()
    );
    for c in &changes {
        let when =
            strftime_local(b"%Y-%m-%d %H:%M:%S %Z", i64::from(c.time), 64).unwrap_or_default();
        text.push_str(&format!(
            "0x{:016x}\t{}\t{}\n",
            c.tid,
            String::from_utf8_lossy(&when),
            note(c)
        ));
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

#[cfg(test)]
mod tests {
    use super::*;

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

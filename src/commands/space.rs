//! `hammer space <pfs-path> ...`: how each PFS's bytes divide on the
//! store — live, history, what each snapshot alone holds, what prune and
//! reblock would give back (cli.md §22).

use std::io::{self, Write};

use super::Failure;
use crate::bridge::open_pfs;
use crate::patharg::PathArg;
use crate::pfs::store::Tally;
use crate::pfs::Pfs;

fn tally(t: Tally) -> String {
    format!("{} records, {} bytes", t.records, t.bytes)
}

/// One report per PFS, on stdout.
pub(crate) fn space(paths: &[PathArg]) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    for path in paths {
        let (store, _) = open_pfs(path.as_ref()).map_err(Failure::errx)?;
        let s = store
            .space()
            .map_err(|e| Failure::errx(format_args!("{path}: {e}")))?;
        let mut text = format!(
            "{path} (PFS#{}): live {}; history {}\n",
            store.pfs_id(),
            tally(s.live),
            tally(s.history)
        );
        text.push_str(&format!(
            "  kept by prune: {} (since the newest snapshot, or all with fewer than two)\n",
            tally(s.kept)
        ));
        text.push_str(&format!(
            "  held by no snapshot: {} (prune gives them back)\n",
            tally(s.unheld)
        ));
        text.push_str(&format!(
            "  held by several snapshots: {}\n",
            tally(s.shared)
        ));
        for (tid, only) in &s.snapshots {
            text.push_str(&format!(
                "  snapshot {tid:#018x} alone holds {}\n",
                tally(*only)
            ));
        }
        text.push_str(&format!(
            "  payload file: {} bytes, {} of them in no record (reblock gives them back)\n",
            s.file_bytes,
            s.file_bytes.saturating_sub(s.named_bytes)
        ));
        out.write_all(text.as_bytes())
            .map_err(|e| Failure::errx(format_args!("stdout: {e}")))?;
    }
    Ok(())
}

//! import and export as the command line runs them: the library's
//! calls, and the closing line each prints unless `-q`.

use std::io;
use std::path::{Path, PathBuf};

use super::{chain, print_out, Context, Failure};
use crate::bridge;
use crate::bridge::exclude::ExcludeOptions;
use crate::patharg::{PathArg, Place};

pub(crate) fn import(
    cx: &Context<'_>,
    dir: &Path,
    pfs: &PathArg,
    excludes: &ExcludeOptions,
) -> Result<(), Failure> {
    let opts = cx.import_options(excludes);
    let s = bridge::import::import(dir, pfs, opts, &mut io::stderr()).map_err(Failure::errx)?;
    let skipped = match s.skipped {
        0 => String::new(),
        n => format!("{n} skipped, "),
    };
    summary(
        cx,
        format_args!(
            "Imported {} into {pfs}: {} objects, {} changed, {} removed, {} bytes read, {skipped}TID {:#018x}",
            dir.display(),
            s.objects,
            s.changed,
            s.removed,
            s.bytes,
            s.tid
        ),
    )?;
    // Committed, with what could not be read left as it was: not a
    // failure, not a clean run either (as rsync's 23 and restic's 3).
    match s.skipped {
        0 => Ok(()),
        _ => Err(Failure::status(IMPORT_PARTIAL)),
    }
}

/// import's exit status when it committed the tree but skipped files or
/// directories it could not read (cli.md §19).
pub(crate) const IMPORT_PARTIAL: u8 = 3;

/// export of a PFS, or of a chain's restore point.
pub(crate) fn export(
    cx: &Context<'_>,
    source: &Place,
    dir: &Path,
    inside: &[PathBuf],
) -> Result<(), Failure> {
    let s = match source {
        Place::Chain(url) => chain::export(cx, url, dir, inside)?,
        Place::Pfs(pfs) => {
            let eo = cx.export_options(inside);
            bridge::export::export(pfs, dir, eo, &mut io::stderr()).map_err(Failure::errx)?
        }
    };
    summary(
        cx,
        format_args!(
            "Exported {} as of TID {:#018x} into {}: {} objects, {} bytes",
            source.as_os_str().to_string_lossy(),
            s.tid,
            dir.display(),
            s.objects,
            s.bytes
        ),
    )
}

/// import's and export's closing line, unless `-q`.
fn summary(cx: &Context<'_>, line: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    if cx.opts.quiet > 0 {
        return Ok(());
    }
    print_out(&format!("{line}\n"))
}

//! import and export as the command line runs them: the library's
//! calls, and the closing line each prints unless `-q`.

use std::io;
use std::path::{Path, PathBuf};

use super::{chain, print_out, Context, Failure};
use crate::bridge;
use crate::patharg::{PathArg, Place};

pub(crate) fn import(cx: &Context<'_>, dir: &Path, pfs: &PathArg) -> Result<(), Failure> {
    let s = bridge::import::import(dir, pfs, cx.import_options(), &mut io::stderr())
        .map_err(Failure::errx)?;
    summary(
        cx,
        format_args!(
            "Imported {} into {pfs}: {} objects, {} changed, {} removed, {} bytes read, TID {:#018x}",
            dir.display(),
            s.objects,
            s.changed,
            s.removed,
            s.bytes,
            s.tid
        ),
    )
}

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

//! verify, mirror-verify and mirror-verify-serve as the command line runs
//! them: exit 0 clean (identical), 1 problems found (different), 2 cannot
//! read or compare.

use std::ffi::OsStr;
use std::io;

use super::{chain, Context, Failure};
use crate::mirror::remote::{parse_side, SshOptions};
use crate::patharg::{PathArg, Place};
use crate::verify;

/// What stops a check: exit 2, as 1 says problems were found.
fn error(e: impl std::fmt::Display) -> Failure {
    Failure::errx(e).exit(2)
}

/// verify of a PFS, or of a chain's objects.
pub(crate) fn verify(source: &Place) -> Result<(), Failure> {
    let pfs = match source {
        Place::Chain(url) => return chain::verify(url),
        Place::Pfs(pfs) => pfs,
    };
    match verify::verify(pfs, &mut io::stdout().lock()) {
        Ok(s) if s.problems == 0 => Ok(()),
        Ok(_) => Err(Failure::status(1)),
        Err(e) => Err(error(e)),
    }
}

pub(crate) fn mirror_verify(
    cx: &Context<'_>,
    master: &OsStr,
    slave: &OsStr,
) -> Result<(), Failure> {
    let master = parse_side(master).map_err(error)?;
    let slave = parse_side(slave).map_err(error)?;
    // A side's own command line takes no -S.
    let ssh = SshOptions {
        splitup_text: None,
        ..cx.ssh_options()
    };
    let outcome =
        verify::mirror_verify(&master, &slave, &ssh, &mut io::stdout().lock()).map_err(error)?;
    if cx.opts.verbose > 0 && cx.opts.quiet == 0 {
        for (role, (read, written)) in ["master", "slave"].iter().zip(outcome.bytes) {
            eprintln!("mirror-verify: {role}'s side: {read} bytes received, {written} bytes sent");
        }
    }
    match (outcome.differences, outcome.problems) {
        (0, [0, 0]) => Ok(()),
        _ => Err(Failure::status(1)),
    }
}

/// One side of a mirror-verify, on stdin and stdout.
pub(crate) fn serve(fs: &PathArg) -> Result<(), Failure> {
    match verify::serve(fs, &mut io::stdin().lock(), &mut io::stdout().lock()) {
        Ok(()) => Ok(()),
        // What stopped the side was told to mirror-verify, which says it.
        Err(verify::ServeError::Told(_)) => Err(Failure::status(2)),
        Err(e) => Err(error(e)),
    }
}

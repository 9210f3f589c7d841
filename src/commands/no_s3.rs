//! The chain commands of a hammer built without the `s3` feature: each
//! refuses its chain, with the exit status its arguments' refusal has
//! when S3 is built in.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::mirror::copy_exit;
use super::{Context, Failure};
use crate::bridge::export::ExportSummary;
use crate::patharg::Place;
use crate::retention::grid::Retain;

const WITHOUT_S3: &str = "this hammer was built without S3 support (feature s3)";

fn refused(status: u8) -> Failure {
    Failure::errx(WITHOUT_S3).exit(status)
}

pub(crate) fn copy(_: &Context<'_>, _: &Place, _: &Place, _: bool) -> Result<(), Failure> {
    Err(refused(copy_exit::SETUP))
}

pub(crate) fn export(
    _: &Context<'_>,
    _: &OsStr,
    _: &Path,
    _: &[PathBuf],
) -> Result<ExportSummary, Failure> {
    Err(refused(1))
}

pub(crate) fn dump(_: &OsStr, _: bool) -> Result<(), Failure> {
    Err(refused(1))
}

/// verify's status for what it cannot read.
pub(crate) fn verify(_: &OsStr) -> Result<(), Failure> {
    Err(refused(2))
}

pub(crate) fn prune(_: &Context<'_>, _: &OsStr, _: &Retain) -> Result<(), Failure> {
    Err(refused(1))
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;
    use crate::commands::{run, Line};
    use crate::events::Events;

    /// Whatever the command, a chain is refused before anything is done,
    /// with the status of a refused argument (verify's is 2).
    #[test]
    fn every_chain_is_refused_with_its_commands_status() {
        for (args, status) in [
            (&["mirror-copy", "/x", "s3://b/c"][..], 1),
            (&["mirror-copy", "s3://b/c", "/x"], 1),
            (&["mirror-stream", "/x", "s3://b/c"], 1),
            (&["export", "s3://b/c@@0x0000000000000001", "/x"], 1),
            (&["mirror-dump", "header", "s3://b/c"], 1),
            (&["verify", "s3://b/c"], 2),
            (&["s3-prune", "s3://b/c", "keep=1"], 1),
        ] {
            let argv = std::iter::once("hammer").chain(args.iter().copied());
            let inv = crate::cli::parse(argv.map(OsString::from)).unwrap();
            let f = run(&inv, &Events::default()).unwrap_err();
            assert_eq!(
                (f.lines, f.status),
                (vec![Line::Errx(WITHOUT_S3.into())], status),
                "{args:?}"
            );
        }
    }
}

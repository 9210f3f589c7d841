//! The chain commands as the command line runs them: which side a
//! failure belongs to (mirror-copy's exit statuses), and the lines a run
//! prints.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::push::{push, push_stream};
use super::restore::{apply, dump_chain, export_chain, verify_chain};
use super::url::{is_chain_url, ChainUrl};
use super::{prune, Chain, ChainError};
use crate::bridge::export::{ExportOptions, ExportSummary};
use crate::mirror::error::MirrorError;
use crate::mirror::read::ReadOptions;
use crate::mirror::remote::{parse_side, Side};
use crate::mirror::write::WriteOptions;
use crate::patharg::PathArg;

/// mirror-copy's exit statuses, as for two PFSes.
pub mod status {
    pub const SETUP: u8 = 1;
    pub const SOURCE_FAILED: u8 = 2;
    pub const TARGET_FAILED: u8 = 3;
}

/// A failed chain command: its error and exit status.
#[derive(Debug)]
pub struct ChainFailure {
    pub status: u8,
    pub error: ChainError,
}

fn fail(status: u8) -> impl Fn(ChainError) -> ChainFailure {
    move |error| ChainFailure { status, error }
}

/// Whether mirror-copy would take `side` for a local PFS (a `host:path`
/// or a malformed one is not): by mirror-copy's own rule, which knows
/// `<store>/@@-1:00001` and `@@...:...` for local names.
fn is_local(side: &OsStr) -> bool {
    matches!(parse_side(side), Ok(Side::Local(_)))
}

/// Parses the URL and sets up the client (no request yet): a failure is
/// one of the arguments or the settings, with exit status `status`.
fn open(word: &OsStr, status: u8) -> Result<(Chain, Option<u64>), ChainFailure> {
    let url = ChainUrl::parse(word).map_err(|e| fail(status)(e.into()))?;
    let chain = Chain::open(&url).map_err(fail(status))?;
    Ok((chain, url.tid))
}

/// `mirror-copy` / `mirror-stream` with a chain on one side; new objects
/// compressed at `level` (-z).
pub fn copy(
    source: &OsStr,
    target: &OsStr,
    ro: &ReadOptions,
    wo: &WriteOptions,
    stream: bool,
    level: Option<i32>,
    diag: &mut dyn Write,
) -> Result<(), ChainFailure> {
    let setup = |why: &str| ChainFailure {
        status: status::SETUP,
        error: ChainError::Local(format!("mirror-copy: {why}")),
    };
    match (is_chain_url(source), is_chain_url(target)) {
        (true, true) => Err(setup("both sides are chains; one must be a PFS")),
        (false, true) => {
            if !is_local(source) {
                return Err(setup("the PFS a chain is made from must be local"));
            }
            let (chain, tid) = open(target, status::SETUP)?;
            if tid.is_some() {
                return Err(setup(
                    "a chain is written at its end: no @@<tid> on the target",
                ));
            }
            let fs = PathArg::from(source.to_os_string());
            // A failure reading the PFS is the source's; the rest the chain's.
            let side = |e: ChainError| {
                let status = match e {
                    ChainError::Mirror(_) | ChainError::Local(_) => status::SOURCE_FAILED,
                    _ => status::TARGET_FAILED,
                };
                fail(status)(e)
            };
            if stream {
                return push_stream(&fs, &chain, ro, level, diag).map_err(side);
            }
            match push(&fs, &chain, ro, level, diag).map_err(side)? {
                Some(p) if !ro.quiet => p.tell(&fs, &chain, diag),
                None if !ro.quiet => {
                    let _ = writeln!(diag, "{}: up to date with {fs}", chain.url);
                }
                _ => {}
            }
            Ok(())
        }
        (true, false) if stream => Err(setup("mirror-stream reads a PFS, not a chain")),
        (true, false) => {
            if !is_local(target) {
                return Err(setup("a chain is applied to a local slave only"));
            }
            let (chain, tid) = open(source, status::SETUP)?;
            let slave = PathArg::from(target.to_os_string());
            let side = |e: ChainError| {
                let status = match &e {
                    ChainError::Slave(_) => status::TARGET_FAILED,
                    ChainError::Mirror(
                        MirrorError::Reader(_) | MirrorError::Batch(_) | MirrorError::Protocol(_),
                    ) => status::SOURCE_FAILED,
                    ChainError::Mirror(_) => status::TARGET_FAILED,
                    _ => status::SOURCE_FAILED,
                };
                fail(status)(e)
            };
            let done = apply(&chain, tid, &slave, wo, diag).map_err(side)?;
            if !wo.quiet {
                let _ = writeln!(
                    diag,
                    "Applied {} object(s) of {} to {slave} ({} bytes): sync point {:#018x}",
                    done.objects, chain.url, done.bytes, done.tid
                );
            }
            Ok(())
        }
        (false, false) => Err(setup("no chain named")),
    }
}

/// `hammer export s3://...[@@tid] <dir>`.
pub fn export(
    url: &OsStr,
    dir: &Path,
    eo: ExportOptions,
    diag: &mut dyn Write,
) -> Result<ExportSummary, ChainFailure> {
    let (chain, tid) = open(url, 1)?;
    export_chain(&chain, tid, dir, eo, diag).map_err(fail(1))
}

/// `hammer mirror-dump [header] s3://...[@@tid]`.
pub fn dump(
    url: &OsStr,
    header: bool,
    out: &mut dyn Write,
    diag: &mut dyn Write,
) -> Result<(), ChainFailure> {
    let (chain, tid) = open(url, 1)?;
    dump_chain(&chain, tid, header, out, diag).map_err(fail(1))
}

/// `hammer verify s3://...`: the count of damaged objects; failures
/// that stop it have status 2, as verify's.
pub fn verify(url: &OsStr, out: &mut dyn Write) -> Result<usize, ChainFailure> {
    let (chain, _) = open(url, 2)?;
    let report = verify_chain(&chain, out).map_err(fail(2))?;
    Ok(report.problems)
}

/// Where s3-prune makes its temporary store: one place whatever the
/// current directory (`$XDG_CACHE_HOME/hammer-mirror`, else
/// `~/.cache/hammer-mirror`), so that the next prune finds and removes the
/// store of one that was killed.
fn scratch_place() -> Result<PathBuf, ChainError> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let Some(cache) = var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))
    else {
        return Ok(PathBuf::from("."));
    };
    let dir = cache.join("hammer-mirror");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| ChainError::Local(format!("{}: {e}", dir.display())))?;
    Ok(dir)
}

/// `hammer s3-prune s3://... keep=<N>`.
pub fn prune(
    url: &OsStr,
    keep: usize,
    ro: &ReadOptions,
    level: Option<i32>,
    diag: &mut dyn Write,
) -> Result<(), ChainFailure> {
    let quiet = ro.quiet;
    let (chain, tid) = open(url, 1)?;
    if tid.is_some() {
        return Err(fail(1)(ChainError::Local(
            "s3-prune: no @@<tid>: keep=<N> says what stays".into(),
        )));
    }
    let scratch = scratch_place().map_err(fail(1))?;
    let done = prune::prune(&chain, keep, &scratch, ro, level, diag).map_err(fail(1))?;
    if !quiet {
        let _ = match done {
            Some(p) => writeln!(
                diag,
                "{}: merged {} objects into {} ({} bytes); deleted {}",
                chain.url,
                p.removed.len(),
                p.base.name,
                p.base.size,
                p.removed.join(", ")
            ),
            None => writeln!(diag, "{}: nothing to prune (keep={keep})", chain.url),
        };
    }
    Ok(())
}

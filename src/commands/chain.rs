//! The chain commands as the command line runs them (chain-format.md):
//! mirror-copy and mirror-stream with a chain on one side, export,
//! mirror-dump, verify and s3-prune of a chain; which side a failure
//! belongs to (mirror-copy's exit statuses), and the lines a run prints.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::mirror::{copy_exit, stop_on_signals};
use super::{Context, Failure};
use crate::bridge::export::ExportSummary;
use crate::chain::push::{push, push_stream};
use crate::chain::restore::{apply, dump_chain, export_chain, verify_chain};
use crate::chain::url::ChainUrl;
use crate::chain::{prune as pruning, Chain, ChainError};
use crate::mirror::error::MirrorError;
use crate::mirror::remote::{parse_side, Side};
use crate::patharg::Place;
use crate::retention::grid::Retain;

fn fail(status: u8) -> impl Fn(ChainError) -> Failure {
    move |error| Failure::errx(error).exit(status)
}

/// Whether mirror-copy would take `side` for a local PFS (a `host:path`
/// or a malformed one is not): by mirror-copy's own rule, which knows
/// `<store>/@@-1:00001` and `@@...:...` for local names.
fn is_local(side: &OsStr) -> bool {
    matches!(parse_side(side), Ok(Side::Local(_)))
}

/// Parses the URL and sets up the client (no request yet): a failure is
/// one of the arguments or the settings, with exit status `status`.
fn open(word: &OsStr, status: u8) -> Result<(Chain, Option<u64>), Failure> {
    let url = ChainUrl::parse(word).map_err(|e| fail(status)(e.into()))?;
    let chain = Chain::open(&url).map_err(fail(status))?;
    let Some(date) = &url.date else {
        return Ok((chain, url.tid));
    };
    // A date: the newest restore point stored by then, told first.
    let m = chain.existing().map_err(fail(status))?;
    let (tid, secs) = chain.point_at(&m, date).map_err(fail(status))?;
    let when = crate::bridge::point::date_of(secs);
    let _ = writeln!(
        io::stderr(),
        "hammer: {url} is {tid:#018x}: the object stored at {when}"
    );
    Ok((chain, Some(tid)))
}

/// `mirror-copy` / `mirror-stream` with a chain on one side; new objects
/// compressed as `-z` says.
pub(crate) fn copy(
    cx: &Context<'_>,
    source: &Place,
    target: &Place,
    stream: bool,
) -> Result<(), Failure> {
    let co = cx.copy_options();
    if stream {
        stop_on_signals(
            co.read.progress.clone(),
            "the chain keeps the objects its manifest names; the next run \
             aborts the upload under way",
            &cx.events,
        );
    }
    let (ro, wo) = (&co.read, &co.write);
    let level = cx.opts.zstd_level();
    let diag = &mut io::stderr();
    let setup = |why: &str| Failure::errx(format_args!("mirror-copy: {why}"));
    match (source, target) {
        (Place::Chain(_), Place::Chain(_)) => {
            Err(setup("both sides are chains; one must be a PFS"))
        }
        (Place::Pfs(fs), Place::Chain(url)) => {
            if !is_local(fs.as_os_str()) {
                return Err(setup("the PFS a chain is made from must be local"));
            }
            let dated = ChainUrl::parse(url).is_ok_and(|u| u.date.is_some());
            let (chain, tid) = match dated {
                true => (None, None),
                false => {
                    let (chain, tid) = open(url, copy_exit::SETUP)?;
                    (Some(chain), tid)
                }
            };
            let (Some(chain), None) = (chain, tid) else {
                return Err(setup(
                    "a chain is written at its end: no @@<tid> or @@<date> on the target",
                ));
            };
            // A failure reading the PFS is the source's; the rest the chain's.
            let side = |e: ChainError| {
                let status = match e {
                    ChainError::Mirror(_) | ChainError::Local(_) => copy_exit::SOURCE_FAILED,
                    _ => copy_exit::TARGET_FAILED,
                };
                fail(status)(e)
            };
            if stream {
                return push_stream(fs, &chain, ro, level, diag).map_err(side);
            }
            match push(fs, &chain, ro, level, diag).map_err(side)? {
                Some(p) if !ro.quiet => p.tell(fs, &chain, diag),
                None if !ro.quiet => {
                    let _ = writeln!(diag, "{}: up to date with {fs}", chain.url);
                }
                _ => {}
            }
            Ok(())
        }
        (Place::Chain(_), Place::Pfs(_)) if stream => {
            Err(setup("mirror-stream reads a PFS, not a chain"))
        }
        (Place::Chain(url), Place::Pfs(slave)) => {
            if !is_local(slave.as_os_str()) {
                return Err(setup("a chain is applied to a local slave only"));
            }
            let (chain, tid) = open(url, copy_exit::SETUP)?;
            let side = |e: ChainError| {
                let status = match &e {
                    ChainError::Slave(_) => copy_exit::TARGET_FAILED,
                    ChainError::Mirror(
                        MirrorError::Reader(_) | MirrorError::Batch(_) | MirrorError::Protocol(_),
                    ) => copy_exit::SOURCE_FAILED,
                    ChainError::Mirror(_) => copy_exit::TARGET_FAILED,
                    _ => copy_exit::SOURCE_FAILED,
                };
                fail(status)(e)
            };
            let done = apply(&chain, tid, slave, wo, diag).map_err(side)?;
            if !wo.quiet {
                let _ = writeln!(
                    diag,
                    "Applied {} object(s) of {} to {slave} ({} bytes): sync point {:#018x}",
                    done.objects, chain.url, done.bytes, done.tid
                );
            }
            Ok(())
        }
        (Place::Pfs(_), Place::Pfs(_)) => Err(setup("no chain named")),
    }
}

/// `hammer export s3://...[@@tid] <dir>`.
pub(crate) fn export(
    cx: &Context<'_>,
    url: &OsStr,
    dir: &Path,
    inside: &[PathBuf],
) -> Result<ExportSummary, Failure> {
    let (chain, tid) = open(url, 1)?;
    let eo = cx.export_options(inside);
    export_chain(&chain, tid, dir, eo, &mut io::stderr()).map_err(fail(1))
}

/// `hammer mirror-dump [header] s3://...[@@tid]`.
pub(crate) fn dump(url: &OsStr, header: bool) -> Result<(), Failure> {
    let (chain, tid) = open(url, 1)?;
    dump_chain(
        &chain,
        tid,
        header,
        &mut io::stdout().lock(),
        &mut io::stderr(),
    )
    .map_err(fail(1))
}

/// `hammer verify s3://...`: exit 1 for damaged objects; failures that
/// stop it have status 2, as verify's.
pub(crate) fn verify(url: &OsStr) -> Result<(), Failure> {
    let (chain, _) = open(url, 2)?;
    let report = verify_chain(&chain, &mut io::stdout().lock()).map_err(fail(2))?;
    match report.problems {
        0 => Ok(()),
        _ => Err(Failure::status(1)),
    }
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

/// `hammer s3-prune s3://... [keep=<N>] [<unit>=<N> ...]`.
pub(crate) fn prune(cx: &Context<'_>, url: &OsStr, retain: &Retain) -> Result<(), Failure> {
    let ro = cx.read_options(false, None);
    let diag = &mut io::stderr();
    let (chain, tid) = open(url, 1)?;
    if tid.is_some() {
        return Err(fail(1)(ChainError::Local(
            "s3-prune: no @@<tid>: keep=<N> and the grid say what stays".into(),
        )));
    }
    let scratch = scratch_place().map_err(fail(1))?;
    let done = pruning::prune(&chain, retain, &scratch, &ro, cx.opts.zstd_level(), diag)
        .map_err(fail(1))?;
    if !ro.quiet {
        if done.is_empty() {
            let _ = writeln!(diag, "{}: nothing to prune ({})", chain.url, retain.text());
        }
        for m in &done {
            let _ = writeln!(
                diag,
                "{}: merged {} objects into {} ({} bytes); deleted {}",
                chain.url,
                m.removed.len(),
                m.object.name,
                m.object.size,
                m.removed.join(", ")
            );
        }
    }
    Ok(())
}

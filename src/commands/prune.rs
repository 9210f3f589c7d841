//! `prune <softlink-dir>` and `prune-everything <filesystem>` with
//! hammer(8)'s output, messages and exit statuses (cli.md §15): the
//! snapshots to keep, from the softlinks of a directory and the PFS's
//! snapshot records, turned into HAMMERIOC_PRUNE's elements by
//! `retention` (kernel-semantics.md §6.1), and the prune driven call by
//! call with `-t`'s deadline and `-c`'s resume point (ioctl-abi.md §11);
//! with `-n`, on a store, what it would do instead (cli.md §24).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::pfs::Cause;
use super::{Context, Failure, Line};
use crate::cli::{check_path, PRUNE_USAGE};
use crate::ctime::now_secs;
use crate::errno::strerror;
use crate::mirror::cycle::{
    peek_cycle_file, read_cycle_file, usable_key, write_cycle_file, CyclePoint, CycleRead,
};
use crate::ondisk::{BaseElm, HammerUuid, SnapshotData};
use crate::pfs::getpfs::{open_inside, scanpfsid};
use crate::pfs::retain::SNAPS_PER_CALL;
use crate::pfs::store::{Freed, Store};
use crate::pfs::{OpenError, Pfs, PfsError, PruneReq, SnapshotReq};
use crate::retention::{
    prune_until, scan_snapshot_links, snapshot_records, softprune_elms, DryRun, PruneEnd, SnapTime,
};
use crate::verify::Key;

/// How a prune failed before pruning (cli.md §15): the original's `err`,
/// `errx` and `warn` texts, each exit 1.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("usage")]
    Usage,
    #[error("Cannot open directory {}: {}", dir.display(), strerror(source))]
    OpenDir { dir: PathBuf, source: io::Error },
    #[error("Currently only one HAMMER filesystem may be specified in the softlink scan")]
    SeveralFilesystems,
    #[error("Unable to open {}: {source}", fs.display())]
    Open { fs: PathBuf, source: OpenError },
    #[error("Filesystem {} is not HAMMER: {source}", fs.display())]
    NotHammer { fs: PathBuf, source: Cause },
    #[error("Filesystem {} could not scan meta-data snaps: {source}", fs.display())]
    Snaps { fs: PathBuf, source: PfsError },
    /// `-T` does not admit the PFS the softlinks lead to.
    #[error(transparent)]
    Restricted(crate::cli::RestrictError),
    /// `-n` through the kernel backend.
    #[error("{word}: -n is not available on HAMMER: the kernel has no dry-run prune")]
    NoDryRun { word: &'static str },
    /// The dry run's scan failed (told as a failed PRUNE is).
    #[error("{0}")]
    DryRun(#[from] PfsError),
    /// A cleanup's prune found another PFS at its path.
    #[error("{}", Replaced(fs))]
    Replaced { fs: PathBuf },
    /// Writing stdout failed.
    #[error("{}", strerror(.0))]
    Output(#[from] io::Error),
}

/// A cleanup step's refusal of a PFS that is not the one the cleanup
/// began with (cli.md §23).
pub(super) struct Replaced<'a>(pub &'a Path);

impl std::fmt::Display for Replaced<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: not the PFS this cleanup began with (destroyed and made again meanwhile)",
            self.0.display()
        )
    }
}

fn failure(e: PruneError) -> Failure {
    match e {
        PruneError::Usage => Failure::of(Line::Usage(PRUNE_USAGE)),
        e => Failure::errx(e),
    }
    .class("prune", None)
}

/// Where the softlinks of a directory lead: one PFS (by its unique uuid),
/// or, for a path that opens as no PFS, that path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Ident {
    Pfs(HammerUuid),
    Other(PathBuf),
}

/// What a link's filesystem path opens, `None` when it opens nothing
/// (the original's statfs fails: the link is passed over).
fn ident(fs: &Path) -> Option<Ident> {
    match open_inside(fs) {
        Err(OpenError::Io(_)) => None,
        Err(_) => Some(Ident::Other(fs.to_path_buf())),
        Ok(inside) => Some(match inside.pfs.get_pseudofs() {
            Ok(pfsd) => Ident::Pfs(pfsd.unique_uuid),
            Err(_) => Ident::Other(fs.to_path_buf()),
        }),
    }
}

/// `<path>/`: the filesystem the original names when a directory holds no
/// snapshot softlink, or for prune-everything.
fn with_slash(p: &Path) -> PathBuf {
    let mut b = p.as_os_str().as_bytes().to_vec();
    b.push(b'/');
    PathBuf::from(OsString::from_vec(b))
}

/// The filesystem to prune and the snapshots its softlinks keep, but
/// those named in `gone`.
fn from_softlinks(dir: &Path, gone: &[OsString]) -> Result<(PathBuf, Vec<SnapTime>), PruneError> {
    let links = match scan_snapshot_links(dir) {
        Ok(mut links) => {
            links.retain(|l| !gone.contains(&l.name));
            links
        }
        // A store's PFS link dangles: a directory without softlinks, as
        // a PFS's root usually is on HAMMER.
        Err(_) if scanpfsid(dir).pfs_id.is_some() => Vec::new(),
        Err(source) => {
            return Err(PruneError::OpenDir {
                dir: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut seen: HashMap<PathBuf, Option<Ident>> = HashMap::new();
    let mut first: Option<(Ident, PathBuf)> = None;
    let mut snaps = Vec::new();
    for link in links {
        let id = seen
            .entry(link.fs.clone())
            .or_insert_with(|| ident(&link.fs))
            .clone();
        let Some(id) = id else { continue };
        match &first {
            None => first = Some((id, link.fs.clone())),
            Some((f, _)) if *f != id => return Err(PruneError::SeveralFilesystems),
            Some(_) => {}
        }
        snaps.push(SnapTime {
            tid: link.tid,
            time: link.time,
        });
    }
    match first {
        Some((_, fs)) => Ok((fs, snaps)),
        None => Ok((with_slash(dir), Vec::new())),
    }
}

/// The original's `hammer_meta_flushdelete`: DEL_SNAPSHOT of up to 16
/// snapshots, a refused one (`head.error`) stepped over, a failed call
/// ending it.
fn delete_records(pfs: &mut dyn Pfs, snaps: &[SnapshotData]) {
    for chunk in snaps.chunks(SNAPS_PER_CALL) {
        let mut req = SnapshotReq {
            count: chunk.len() as u32,
            ..SnapshotReq::default()
        };
        req.snaps[..chunk.len()].copy_from_slice(chunk);
        while req.index < req.count {
            if pfs.del_snapshots(&mut req).is_err() || req.error.is_none() {
                break;
            }
            req.index += 1;
        }
    }
}

/// What a cleanup knows before its prune: the PFS it began with, and, in a
/// dry run, what its steps before the prune would have changed by then
/// (cli.md §23.5), which `-n` takes into account; nothing for `hammer
/// prune`.
#[derive(Clone, Debug, Default)]
pub(super) struct Foreseen {
    /// The unique uuid of the PFS the cleanup began with: a prune that
    /// finds another at its path (destroyed and made again meanwhile)
    /// refuses it (cli.md §23).
    pub pfs: Option<HammerUuid>,
    /// The softlinks (names in the directory) the expiry deletes.
    pub links_gone: Vec<OsString>,
    /// The snapshot records (TIDs) the expiry deletes.
    pub records_gone: Vec<u64>,
    /// The snapshot the run takes.
    pub taken: Option<SnapTime>,
    /// The root records (type, key) the run writes: the configuration, the
    /// new snapshot's record.
    pub written: Vec<(u16, i64)>,
}

/// How a prune ended.
pub(super) struct Ended {
    /// 0, or 2: the prune failed.
    pub status: u8,
    /// A dry run's scan: what a reblock after the prune would give back.
    pub freed: Option<Freed>,
}

impl Ended {
    fn status(status: u8) -> Self {
        Ended {
            status,
            freed: None,
        }
    }
}

/// `hammer prune <softlink-dir>`, `hammer prune-everything <filesystem>`
/// (cli.md §15).
pub(crate) fn prune(cx: &Context<'_>, path: &Path, everything: bool) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    let nothing = Foreseen::default();
    let r = prune_on(cx, path, everything, &nothing, &mut out, &mut io::stderr());
    let _ = out.flush();
    match r.map(|e| e.status) {
        Ok(0) => Ok(()),
        Ok(status) => Err(Failure::status(status).class("prune", None)),
        Err(e) => Err(failure(e)),
    }
}

/// The prune, its lines on `out` and its warnings on `err`; with `-n`, as
/// it would be after what `ahead` foresees.
pub(super) fn prune_on(
    cx: &Context<'_>,
    path: &Path,
    everything: bool,
    ahead: &Foreseen,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Ended, PruneError> {
    let deadline = cx.opts.timeout.map(|t| Instant::now() + t);
    let mut req = PruneReq::new(everything, Vec::new());
    if let Some(cycle) = &cx.opts.cycle_file {
        // Only the key is read (the original passes no TID to fill).
        let mut said = Vec::new();
        let read = if cx.opts.dry_run {
            peek_cycle_file
        } else {
            read_cycle_file
        };
        match read(cycle, &mut |m| said.push(m)) {
            CycleRead::Loaded(p) => req.key_end = p.key,
            CycleRead::Malformed(key) => {
                req.key_end = key;
                said.clear();
            }
            CycleRead::Absent | CycleRead::Cleared => {}
        }
        let fresh = PruneReq::new(everything, Vec::new());
        let refused = |key_end| {
            PruneReq {
                key_end,
                ..fresh.clone()
            }
            .check()
            .is_err()
        };
        req.key_end = usable_key(cycle, req.key_end, fresh.key_end, refused, &mut |m| {
            said.push(m)
        });
        for m in said {
            writeln!(err, "{m}")?;
        }
    }
    let (filesystem, mut snaps) = if everything {
        (with_slash(path), Vec::new())
    } else {
        from_softlinks(path, &ahead.links_gone)?
    };
    if let Some(prefix) = &cx.opts.restrict_path {
        check_path(prefix, &filesystem, false).map_err(PruneError::Restricted)?;
    }
    let fs_bytes = filesystem.as_os_str().as_bytes();
    let mut pfs = match open_inside(&filesystem) {
        Ok(inside) => inside.pfs,
        // The original's statfs of a filesystem it cannot reach fails
        // first, with the usage.
        Err(OpenError::Io(_)) if snaps.is_empty() => return Err(PruneError::Usage),
        Err(source @ OpenError::Io(_)) => {
            return Err(PruneError::Open {
                fs: filesystem,
                source,
            })
        }
        Err(e) => {
            return Err(PruneError::NotHammer {
                fs: filesystem,
                source: e.into(),
            })
        }
    };
    let pfsd = pfs.get_pseudofs().map_err(|e| PruneError::NotHammer {
        fs: filesystem.clone(),
        source: e.into(),
    })?;
    // The handle keeps to this PFS from here on (a store's pins it).
    if ahead.pfs.is_some_and(|u| u != pfsd.unique_uuid) {
        return Err(PruneError::Replaced { fs: filesystem });
    }
    if cx.opts.dry_run {
        dry_store(cx, pfs.as_ref())?;
    }
    // The snapshot records deleted before the PRUNE: by prune-everything
    // (kept by a dry run), by a cleanup's expiry.
    let mut gone_first = ahead.records_gone.clone();
    // The snapshot records: kept, or for prune-everything deleted.
    let version = pfs.version().map_err(|source| PruneError::Snaps {
        fs: filesystem.clone(),
        source,
    })?;
    if version >= 3 {
        let records = match snapshot_records(pfs.as_ref()) {
            Ok(r) => r,
            Err(source) => {
                writeln!(
                    out,
                    "hammer prune: Unable to access meta-data snaps: {source}"
                )?;
                return Err(PruneError::Snaps {
                    fs: filesystem,
                    source,
                });
            }
        };
        if everything && cx.opts.dry_run {
            gone_first.extend(records.iter().map(|r| r.tid));
        } else if everything {
            delete_records(pfs.as_mut(), &records);
        } else {
            let kept = records.iter().filter(|r| !gone_first.contains(&r.tid));
            snaps.extend(kept.map(SnapTime::from));
        }
    }
    // After the records: of two of one TID, the first keeps its time.
    snaps.extend(ahead.taken);
    let line = |out: &mut dyn Write, what: std::fmt::Arguments<'_>| -> io::Result<()> {
        out.write_all(b"Prune ")?;
        out.write_all(fs_bytes)?;
        writeln!(out, "{what}")
    };
    if !everything {
        let soft = softprune_elms(&snaps, pfsd.prune_min, now_secs());
        if soft.held_by_prune_min > 0 {
            line(
                out,
                format_args!(
                    ": prune_min: Will not clean between the teeth of the first {} snapshots",
                    soft.held_by_prune_min
                ),
            )?;
        }
        for e in &soft.elms {
            writeln!(out, "TID {:016x} - {:016x}", e.beg_tid, e.end_tid)?;
        }
        req.elms = soft.elms;
    }
    if everything {
        line(out, format_args!(": EVERYTHING"))?;
    } else {
        line(out, format_args!(": {} snapshots", req.elms.len()))?;
    }
    if req.elms.is_empty() && !everything {
        out.flush()?;
        writeln!(err, "No snapshots found")?;
        return Ok(Ended::status(0));
    }
    line(
        out,
        format_args!(
            ": objspace {:016x}:{:04x} {:016x}:{:04x} pfs_id {}",
            req.key_beg.obj_id,
            req.key_beg.localization,
            req.key_end.obj_id,
            req.key_end.localization,
            pfs.pfs_id()
        ),
    )?;
    let p = pfsd.prune_min;
    line(
        out,
        format_args!(
            ": prune_min is {}d/{:02}:{:02}:{:02}",
            p / 86400,
            p / 3600 % 24,
            p / 60 % 60,
            p % 60
        ),
    )?;
    out.flush()?;
    if cx.opts.dry_run {
        let written = &ahead.written;
        return dry_run(cx, pfs.as_ref(), &mut req, &gone_first, written, out, &line);
    }
    let mut status = 0;
    let go_on = |_: &PruneReq| deadline.is_none_or(|d| Instant::now() < d);
    match prune_until(pfs.as_mut(), &mut req, go_on) {
        Err(e) => {
            line(out, format_args!(" failed: {e}"))?;
            status = 2;
        }
        Ok(PruneEnd::Stopped) => {
            line(
                out,
                format_args!(
                    " interrupted by timer at {:016x} {:04x}",
                    req.key_cur.obj_id, req.key_cur.localization
                ),
            )?;
            save_cycle(cx, req.key_cur, out)?;
        }
        Ok(PruneEnd::Finished) => {
            end_cycle(cx);
            line(out, format_args!(" succeeded"))?;
        }
    }
    let s = &req.stats;
    writeln!(
        out,
        "Pruned {}/{} records ({} directory entries) and {} bytes",
        s.raw_records, s.scan_records, s.dir_records, s.bytes
    )?;
    Ok(Ended::status(status))
}

/// The store `-n` runs on; the kernel has no dry-run prune.
fn dry_store<'p>(cx: &Context<'_>, pfs: &'p dyn Pfs) -> Result<&'p Store, PruneError> {
    pfs.store().ok_or(PruneError::NoDryRun { word: cx.word })
}

/// `-n` (cli.md §24): the prune's scan and rule on one read transaction
/// of the store, with `-v` a line per record that would go, then what the
/// prune would remove and a reblock after it give back, in place of its
/// result; the store and the cycle file are left as they are. Its exit
/// status: 0, or 2 when the scan failed, as a failed prune. The snapshot
/// records `gone_first` are left out of the scan, and the root records
/// `written` (see `Foreseen`) counted in.
fn dry_run(
    cx: &Context<'_>,
    pfs: &dyn Pfs,
    req: &mut PruneReq,
    gone_first: &[u64],
    written: &[(u16, i64)],
    out: &mut dyn Write,
    line: &dyn Fn(&mut dyn Write, std::fmt::Arguments<'_>) -> io::Result<()>,
) -> Result<Ended, PruneError> {
    let store = dry_store(cx, pfs)?;
    let verbose = cx.opts.verbose > 0;
    let done = DryRun::of(store)
        .map_err(PruneError::DryRun)
        .and_then(|dry| {
            dry.scan(req, gone_first, written, |leaf| -> Result<(), PruneError> {
                if verbose {
                    let place = dry.place(leaf)?;
                    writeln!(out, "Would prune {} {place}", Key(&leaf.base))?;
                }
                Ok(())
            })
        });
    let freed = match done {
        Ok(freed) => freed,
        Err(PruneError::DryRun(e)) => {
            line(out, format_args!(" failed: {e}"))?;
            return Ok(Ended::status(2));
        }
        Err(e) => return Err(e),
    };
    let s = &req.stats;
    line(
        out,
        format_args!(
            ": dry run: would prune {}/{} records ({} directory entries) and {} bytes",
            s.raw_records, s.scan_records, s.dir_records, s.bytes
        ),
    )?;
    writeln!(
        out,
        "Reblock would then free {} bytes of the payload file ({} bytes now)",
        freed.bytes(),
        freed.file_bytes
    )?;
    Ok(Ended {
        status: 0,
        freed: Some(freed),
    })
}

/// After a prune or reblock `-t` stopped: where it stopped into `-c`'s
/// cycle file, key_cur with TID 0, or the original's warning when it
/// cannot be written.
pub(super) fn save_cycle(cx: &Context<'_>, key: BaseElm, out: &mut dyn Write) -> io::Result<()> {
    let Some(cycle) = &cx.opts.cycle_file else {
        return Ok(());
    };
    let point = CyclePoint {
        key,
        tid: 0,
        tid_end: None,
    };
    if let Err(e) = write_cycle_file(cycle, &point) {
        out.flush()?;
        writeln!(
            io::stderr().lock(),
            "Warning: Unable to write to {}: {}",
            cycle.display(),
            strerror(&e)
        )?;
    }
    Ok(())
}

/// After a finished prune or reblock: no cycle file is left to resume.
pub(super) fn end_cycle(cx: &Context<'_>) {
    if let Some(cycle) = &cx.opts.cycle_file {
        let _ = fs::remove_file(cycle);
    }
}

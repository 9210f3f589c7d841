//! The pfs-*, synctid and store-create commands with the original's texts
//! and exit codes (spec: cli.md §5-10), the defects of protocol.md §15
//! fixed: every failure exits non-zero. mirror-write creates a missing
//! slave with pfs-slave's own code (mirror/autoslave.rs).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, BufRead, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;

use super::pfsd_fmt::{write_pfs_block, SnapshotsHint};
use super::{Context, Failure, Line, NO_STORE_HINT};
use crate::cparse::{dirname, strip_trailing_slashes};
use crate::cparse::{strtoull, time_to_secs};
use crate::errno::strerror;
use crate::ondisk::{HammerUuid, PseudofsData, PFSD_SLAVE};
use crate::patharg::PathArg;
use crate::pfs::getpfs::scanpfsid;
use crate::pfs::store::{self, Store};
use crate::pfs::{getpfs, GetpfsError, OpenError, Pfs, PfsError, SynctidOp};

/// How a command failed, each with the original's text (cli.md §5-10);
/// every one ends the command with exit status 1.
#[derive(Debug, thiserror::Error)]
pub enum PfsCmdError {
    #[error(transparent)]
    Getpfs(#[from] GetpfsError),
    #[error("Cannot create {0}, file exists!")]
    Exists(PathArg),
    #[error("Invalid PFS path {0} with trailing /")]
    TrailingSlash(PathArg),
    #[error("Cannot open directory {}: {source}", dir.display())]
    OpenDir { dir: PathBuf, source: OpenError },
    /// Printed verbatim (the original's `fprintf`).
    #[error(
        "You are attempting to access a PFS softlink from a PFS.  It may not represent the PFS\n\
         on the main filesystem mount that you expect!  You may only access PFS softlinks\n\
         via the main filesystem mount!"
    )]
    NotMainMount,
    /// The same words for a directory on no HAMMER filesystem and in no
    /// store, where `main` adds how to make a store.
    #[error(
        "You are attempting to access a PFS softlink from a PFS.  It may not represent the PFS\n\
         on the main filesystem mount that you expect!  You may only access PFS softlinks\n\
         via the main filesystem mount!"
    )]
    NoStore(PathBuf),
    #[error("Fatal error: PFS#0 must exist")]
    NoPfs0,
    #[error("Cannot create {path}: {source}")]
    Create { path: PathArg, source: PfsError },
    #[error("Cannot create {0}, all PFSs in use")]
    AllInUse(PathArg),
    /// The failure is told on stdout already (`failed: ...`); only the exit
    /// status is left (D20: the original's was 0).
    #[error("failed")]
    Reported,
    #[error("option {0} requires an assignment")]
    NoAssignment(String),
    #[error("option {name}: error parsing uuid {value}")]
    BadUuid { name: &'static str, value: String },
    #[error("option label: malformed string")]
    MalformedLabel,
    /// Printed verbatim, with a hint for an empty value.
    #[error("option snapshots: '{0}' must be an absolute path{hint}", hint = clear_hint(.0))]
    SnapshotsNotAbsolute(String),
    #[error("option snapshots: path too long, {0} character limit")]
    SnapshotsTooLong(usize),
    /// D17 fixed: the original names the value, not the option.
    #[error("option prune-min: illegal time spec, use Nd or [Nd/]hh[:mm[:ss]]")]
    BadTimeSpec,
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error("The real mount point cannot be made a PFS slave, only PFS sub-directories can be made slaves")]
    SlaveRoot,
    #[error("Unable to adjust PFS configuration: {0}")]
    Adjust(PfsError),
    #[error("Unable to retrieve PFS configuration after successful update: {0}")]
    Retrieve(PfsError),
    #[error("You cannot upgrade PFS#0 (It should already be a master)")]
    UpgradeRoot,
    #[error("It is already a master")]
    AlreadyMaster,
    #[error("You cannot downgrade PFS#0")]
    DowngradeRoot,
    #[error("It is already a slave")]
    AlreadySlave,
    /// pfs-upgrade or pfs-downgrade (`op`) failed.
    #[error("pfs-{op} of PFS#{id} ({label}) failed: {source}")]
    RoleChange {
        op: &'static str,
        id: u32,
        label: String,
        source: PfsError,
    },
    /// Followed by the hint that PFS#0 can be pruned to nothing instead.
    #[error("You cannot destroy PFS#0")]
    DestroyRoot(PathBuf),
    #[error("No action taken on PFS#{0}")]
    NoAction(u32),
    #[error("Unable to remove softlink {}: {}", link.display(), strerror(.source))]
    RemoveLink { link: PathBuf, source: io::Error },
    #[error("Unable to open {fs}: {source}")]
    SynctidOpen { fs: PathArg, source: Cause },
    #[error("Synctid {fs} failed: {source}")]
    Synctid { fs: PathArg, source: Cause },
    #[error("store-create: {0}")]
    StoreCreate(PfsError),
    /// Writing stdout failed.
    #[error("{}", strerror(.0))]
    Output(#[from] io::Error),
}

impl PfsCmdError {
    /// Whether the original prints the message verbatim ("say") rather
    /// than as `hammer: <message>`.
    pub fn is_plain(&self) -> bool {
        matches!(
            self,
            PfsCmdError::NotMainMount
                | PfsCmdError::NoStore(_)
                | PfsCmdError::SnapshotsNotAbsolute(_)
        )
    }
}

/// What failed beneath an `err(3)` message: opening the path, or a PFS
/// operation on it.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Pfs(#[from] PfsError),
}

fn clear_hint(value: &str) -> &'static str {
    if value.is_empty() {
        "\nuse 'snapshots-clear' to unset snapshots dir"
    } else {
        ""
    }
}

type CmdResult = Result<(), PfsCmdError>;

/// The line of the PFS block that needs a descriptor (cli.md §4.2).
/// On a store, the snapshots directory `cleanup` uses for the PFS `path`
/// names; on HAMMER the original's line by version.
fn hint(path: &Path, pfs: &dyn Pfs) -> SnapshotsHint {
    let root = fs::canonicalize(scanpfsid(path).open_path)
        .ok()
        .and_then(|p| store::find_root(&p));
    match root {
        Some(root) => SnapshotsHint::Store(store::cleanup_dir(&root, pfs.pfs_id())),
        None => pfs
            .version()
            .map_or(SnapshotsHint::None, SnapshotsHint::Version),
    }
}

fn print_block(
    out: &mut dyn Write,
    path: &Path,
    pfsd: &PseudofsData,
    pfs: &dyn Pfs,
) -> io::Result<()> {
    let mut b = Vec::new();
    write_pfs_block(&mut b, pfsd, hint(path, pfs));
    out.write_all(&b)
}

fn label(pfsd: &PseudofsData) -> String {
    String::from_utf8_lossy(pfsd.label_bytes()).into_owned()
}

/// `hammer pfs-status <dirpath> ...` (cli.md §5).
pub fn pfs_status(paths: &[PathArg], out: &mut dyn Write) -> CmdResult {
    for path in paths {
        out.flush()?;
        let (pfs, _) = getpfs(path)?;
        // Paths on stdout are written as they were given, bytes and all.
        out.write_all(path.as_os_str().as_bytes())?;
        out.write_all(b"\t")?;
        match pfs.get_pseudofs() {
            Err(_) => {
                out.write_all(b"Invalid PFS path ")?;
                out.write_all(path.as_os_str().as_bytes())?;
                out.write_all(b"\n")?;
            }
            Ok(pfsd) => {
                writeln!(out, "PFS#{} {{", pfs.pfs_id())?;
                print_block(out, path, &pfsd, pfs.as_ref())?;
                writeln!(out, "}}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// What pfs-master and pfs-slave create.
#[derive(Clone, Copy, Debug, Default)]
pub struct PfsCreate<'a> {
    pub slave: bool,
    /// The new PFS's shared uuid; a fresh one if `None`.
    pub shared_uuid: Option<HammerUuid>,
    /// pfs-update's `name=value` options, applied once it exists.
    pub options: &'a [OsString],
}

/// `hammer pfs-master|pfs-slave <dirpath> [options]` (cli.md §6).
pub fn pfs_create(path: &PathArg, new: &PfsCreate<'_>, out: &mut dyn Write) -> CmdResult {
    if fs::symlink_metadata(path).is_ok() {
        return Err(PfsCmdError::Exists(path.clone()));
    }
    if path.as_os_str().as_bytes().ends_with(b"/") {
        return Err(PfsCmdError::TrailingSlash(path.clone()));
    }
    let dir = dirname(path);
    let open_dir = |source| PfsCmdError::OpenDir {
        dir: dir.to_path_buf(),
        source,
    };
    // A PFS link or `@@` name opens that PFS, as on HAMMER, and is refused
    // below as not PFS#0.
    let mut pfs = match scanpfsid(dir).open() {
        Ok(pfs) => pfs,
        // GET_PSEUDOFS fails: pfs_id stays -1.
        Err(OpenError::NotHammer(_)) => return Err(PfsCmdError::NoStore(dir.to_path_buf())),
        Err(e) => return Err(open_dir(e)),
    };
    if pfs.get_pseudofs().is_err() || pfs.pfs_id() != 0 {
        return Err(PfsCmdError::NotMainMount);
    }
    // The link is made in `dir` itself, which a store's `@@-1:00000` is
    // not: refused before a PFS is created for nothing.
    fs::metadata(dir).map_err(|e| open_dir(OpenError::Io(e)))?;
    let pfsd = PseudofsData {
        sync_beg_tid: 1,
        sync_end_tid: 1,
        shared_uuid: new.shared_uuid.unwrap_or_else(HammerUuid::new_random),
        unique_uuid: HammerUuid::new_random(),
        mirror_flags: if new.slave { PFSD_SLAVE } else { 0 },
        ..Default::default()
    };
    // Another creator may take the id found free before this one does:
    // the store refuses the second (EEXIST) and the next free id is tried.
    let id = loop {
        let id = free_pfs_id(pfs.as_mut(), path)?;
        pfs.set_pfs_id(id);
        match pfs.create_pseudofs(&pfsd) {
            Err(e) if e.errno() == Errno::EEXIST => continue,
            r => {
                write!(out, "Creating PFS#{id}\t")?;
                out.flush()?;
                if let Err(e) = r {
                    // D20 fixed: the original exits 0 here.
                    writeln!(out, "failed: {e}")?;
                    out.flush()?;
                    return Err(PfsCmdError::Reported);
                }
                break id;
            }
        }
    };
    // The link is how the PFS is found again: durable before "succeeded".
    let linked = std::os::unix::fs::symlink(format!("@@PFS{id:05}"), path.as_path())
        .and_then(|()| crate::fsio::sync_parent(path.as_path()));
    if let Err(e) = linked {
        writeln!(out, "failed: cannot create symlink: {}", strerror(&e))?;
        out.flush()?;
        return Err(PfsCmdError::Reported);
    }
    writeln!(out, "succeeded!")?;
    drop(pfs);
    pfs_update(path, new.options, out)
}

/// The lowest id whose GET fails with ENOENT.
fn free_pfs_id(pfs: &mut dyn Pfs, path: &PathArg) -> Result<u32, PfsCmdError> {
    for id in 0..=0xFFFF {
        pfs.set_pfs_id(id);
        match pfs.get_pseudofs() {
            Ok(_) => continue,
            Err(PfsError::Sys(Errno::ENOENT)) if id == 0 => return Err(PfsCmdError::NoPfs0),
            Err(PfsError::Sys(Errno::ENOENT)) => return Ok(id),
            Err(source) => {
                return Err(PfsCmdError::Create {
                    path: path.clone(),
                    source,
                })
            }
        }
    }
    Err(PfsCmdError::AllInUse(path.clone()))
}

/// `hammer pfs-update <dirpath> [options]` (cli.md §7).
pub fn pfs_update(path: &PathArg, options: &[OsString], out: &mut dyn Write) -> CmdResult {
    let (mut pfs, _) = getpfs(path)?;
    out.write_all(path.as_os_str().as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    let Ok(mut pfsd) = pfs.get_pseudofs() else {
        return Ok(());
    };
    for opt in options {
        apply_option(&mut pfsd, opt)?;
    }
    if pfsd.is_slave() && pfs.pfs_id() == 0 {
        return Err(PfsCmdError::SlaveRoot);
    }
    pfs.set_pseudofs(&pfsd).map_err(PfsCmdError::Adjust)?;
    let pfsd = pfs.get_pseudofs().map_err(PfsCmdError::Retrieve)?;
    print_block(out, path, &pfsd, pfs.as_ref())?;
    out.flush()?;
    Ok(())
}

/// One `name=value` option of pfs-update (cli.md §7.1), its value taken
/// as bytes, as the original does.
pub fn apply_option(pfsd: &mut PseudofsData, opt: &OsStr) -> CmdResult {
    let opt = opt.as_bytes();
    let (name, value) = match opt.iter().position(|&c| c == b'=') {
        Some(i) => (&opt[..i], &opt[i + 1..]),
        // D17 fixed: the bare form the usage text shows is accepted.
        None if opt == b"snapshots-clear" => (opt, &b""[..]),
        None => return Err(PfsCmdError::NoAssignment(lossy(opt))),
    };
    match name {
        b"sync-beg-tid" => pfsd.sync_beg_tid = strtoull(value, 16).0,
        b"sync-end-tid" => pfsd.sync_end_tid = strtoull(value, 16).0,
        b"shared-uuid" => pfsd.shared_uuid = uuid("shared-uuid", value)?,
        b"unique-uuid" => pfsd.unique_uuid = uuid("unique-uuid", value)?,
        b"label" => {
            let text = match value {
                // A lone `"` is both quotes: the label is empty.
                [b'"'] => &[][..],
                [b'"', text @ .., b'"'] => text,
                [b'"', ..] => return Err(PfsCmdError::MalformedLabel),
                text => text,
            };
            pfsd.set_label(text);
        }
        b"snapshots" => {
            if !value.starts_with(b"/") {
                return Err(PfsCmdError::SnapshotsNotAbsolute(lossy(value)));
            }
            if value.len() >= 64 {
                return Err(PfsCmdError::SnapshotsTooLong(value.len()));
            }
            pfsd.set_snapshots(value);
        }
        b"snapshots-clear" => pfsd.set_snapshots(b""),
        b"prune-min" => {
            pfsd.prune_min = time_to_secs(value).ok_or(PfsCmdError::BadTimeSpec)?;
        }
        _ => return Err(PfsCmdError::InvalidOption(lossy(name))),
    }
    Ok(())
}

/// Bytes of an argument as a message shows them.
fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn uuid(name: &'static str, value: &[u8]) -> Result<HammerUuid, PfsCmdError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(HammerUuid::parse)
        .ok_or_else(|| PfsCmdError::BadUuid {
            name,
            value: lossy(value),
        })
}

/// `hammer pfs-upgrade <dirpath>` (cli.md §8): a slave becomes a master.
pub fn pfs_upgrade(path: &Path, out: &mut dyn Write) -> CmdResult {
    change_role(path, true, out)
}

/// `hammer pfs-downgrade <dirpath>` (cli.md §8): a master becomes a slave.
pub fn pfs_downgrade(path: &Path, out: &mut dyn Write) -> CmdResult {
    change_role(path, false, out)
}

fn change_role(path: &Path, upgrade: bool, out: &mut dyn Write) -> CmdResult {
    let (mut pfs, pfsd) = getpfs(path)?;
    let id = pfs.pfs_id();
    match (upgrade, id, pfsd.is_slave()) {
        (true, 0, _) => return Err(PfsCmdError::UpgradeRoot),
        (false, 0, _) => return Err(PfsCmdError::DowngradeRoot),
        (true, _, false) => return Err(PfsCmdError::AlreadyMaster),
        (false, _, true) => return Err(PfsCmdError::AlreadySlave),
        _ => {}
    }
    let op = if upgrade { "upgrade" } else { "downgrade" };
    let label = label(&pfsd);
    let r = if upgrade {
        pfs.upgrade()
    } else {
        pfs.downgrade()
    };
    if let Err(source) = r {
        return Err(PfsCmdError::RoleChange {
            op,
            id,
            label,
            source,
        });
    }
    writeln!(out, "pfs-{op} of PFS#{id} ({label}) succeeded")?;
    Ok(())
}

/// Reads one answer: only y, yes, Y and YES (trailing CR/LF removed) say
/// yes; EOF says no.
fn confirmed(input: &mut dyn BufRead) -> io::Result<bool> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(false);
    }
    let answer = line.trim_end_matches(['\r', '\n']);
    Ok(matches!(answer, "y" | "yes" | "Y" | "YES"))
}

/// What pfs-destroy is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestroyOptions {
    /// Each of the countdown's five steps; `None` (`-d`) skips it.
    pub countdown_step: Option<Duration>,
}

/// The original's countdown step.
pub const COUNTDOWN_STEP: Duration = Duration::from_secs(1);

/// `hammer pfs-destroy <dirpath>` (cli.md §9).
pub fn pfs_destroy(
    path: &Path,
    opts: &DestroyOptions,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> CmdResult {
    let (mut pfs, pfsd) = getpfs(path)?;
    let id = pfs.pfs_id();
    if id == 0 {
        return Err(PfsCmdError::DestroyRoot(path.to_path_buf()));
    }
    let label = label(&pfsd);
    let refuse = || PfsCmdError::NoAction(id);
    write!(
        out,
        "You have requested that PFS#{id} ({label}) be destroyed\n\
         This will irrevocably destroy all data on this PFS!!!!!\n\
         Do you really want to do this? [y/n] "
    )?;
    out.flush()?;
    if !confirmed(input)? {
        return Err(refuse());
    }
    if !pfsd.is_slave() {
        write!(
            out,
            "This PFS is currently setup as a MASTER!\n\
             Are you absolutely sure you want to destroy it? [y/n] "
        )?;
        out.flush()?;
        if !confirmed(input)? {
            return Err(refuse());
        }
    }
    write!(out, "Destroying PFS#{id} ({label})")?;
    match opts.countdown_step {
        None => writeln!(out)?,
        Some(step) => {
            write!(out, " in")?;
            for i in (1..=5).rev() {
                write!(out, " {i}")?;
                out.flush()?;
                thread::sleep(step);
            }
            writeln!(out, ".. starting destruction pass")?;
        }
    }
    out.flush()?;
    if let Err(e) = pfs.destroy() {
        writeln!(out, "pfs-destroy of PFS#{id} failed: {e}")?;
        out.flush()?;
        return Err(PfsCmdError::Reported);
    }
    writeln!(out, "pfs-destroy of PFS#{id} succeeded!")?;
    out.flush()?;
    // A later PFS of this id must not inherit cleanup's last-run times
    // and cycle files.
    if let SnapshotsHint::Store(dir) = hint(path, pfs.as_ref()) {
        let _ = fs::remove_dir_all(dir);
    }
    // The original strips the slashes only when the path resolves to a
    // directory; a store's links always dangle, so they are stripped
    // whenever the path itself is not a symlink.
    let link = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => path,
        _ => strip_trailing_slashes(path),
    };
    if fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink()) {
        fs::remove_file(link)
            .and_then(|()| crate::fsio::sync_parent(link))
            .map_err(|source| PfsCmdError::RemoveLink {
                link: link.to_path_buf(),
                source,
            })?;
    }
    Ok(())
}

/// `hammer synctid <filesystem> [quick]` (cli.md §10).
pub fn synctid(fs_path: &PathArg, quick: bool, out: &mut dyn Write) -> CmdResult {
    let op = if quick {
        SynctidOp::Sync1
    } else {
        SynctidOp::Sync2
    };
    let failed = |source: Cause| PfsCmdError::Synctid {
        fs: fs_path.clone(),
        source,
    };
    let unable = |source: Cause| PfsCmdError::SynctidOpen {
        fs: fs_path.clone(),
        source,
    };
    // The TID is filesystem-wide: any path of the filesystem will do, a
    // PFS link or `@@` name included, as getpfs resolves it.
    let pp = scanpfsid(fs_path);
    let mut pfs = match pp.open() {
        Ok(pfs) => pfs,
        Err(e @ OpenError::Io(_)) => return Err(unable(e.into())),
        // The ioctl fails, not the open.
        Err(e) => return Err(failed(e.into())),
    };
    // HAMMER's open fails on a reference to a PFS that does not exist.
    if pp.pfs_id.is_some() {
        pfs.get_pseudofs().map_err(|e| unable(e.into()))?;
    }
    let tid = pfs.synctid(op).map_err(|e| failed(e.into()))?;
    writeln!(out, "0x{tid:016x}")?;
    Ok(())
}

/// `hammer store-create <dir>`: a new store holding PFS#0.
pub fn store_create(dir: &Path) -> CmdResult {
    Store::create(dir)
        .map(drop)
        .map_err(PfsCmdError::StoreCreate)
}

/// Runs a pfs-* command on stdout, flushed before a failure is told.
pub(crate) fn on_stdout(
    command: impl FnOnce(&mut dyn Write) -> Result<(), PfsCmdError>,
) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    let r = command(&mut out);
    let _ = out.flush();
    r.map_err(failure)
}

/// pfs-master, or pfs-slave with `slave`.
pub(crate) fn create(path: &PathArg, options: &[OsString], slave: bool) -> Result<(), Failure> {
    let new = PfsCreate {
        slave,
        options,
        ..PfsCreate::default()
    };
    on_stdout(|out| pfs_create(path, &new, out))
}

/// pfs-destroy, its questions answered on stdin.
pub(crate) fn destroy(cx: &Context<'_>, path: &Path) -> Result<(), Failure> {
    on_stdout(|out| pfs_destroy(path, &cx.destroy_options(), &mut io::stdin().lock(), out))
}

/// A pfs-* command's failure, with the original's text.
pub(crate) fn failure(e: PfsCmdError) -> Failure {
    match e {
        PfsCmdError::Reported => Failure::status(1),
        e @ PfsCmdError::NoStore(_) => Failure {
            lines: vec![Line::Say(e.to_string()), Line::Say(NO_STORE_HINT.into())],
            ..Failure::status(1)
        },
        PfsCmdError::DestroyRoot(path) => Failure {
            lines: vec![
                Line::Errx(PfsCmdError::DestroyRoot(PathBuf::new()).to_string()),
                Line::Say(format!(
                    "hint: PFS#0 is the filesystem itself, but it can be pruned to nothing: \
                     remove its files, then `hammer prune-everything {}` destroys all its history",
                    path.display()
                )),
            ],
            ..Failure::status(1)
        },
        e if e.is_plain() => Failure::of(Line::Say(e.to_string())),
        e => Failure::errx(e),
    }
    .class("pfs", None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(p: &mut PseudofsData, opt: &str) -> CmdResult {
        apply_option(p, OsStr::new(opt))
    }

    #[test]
    fn options() {
        let mut p = PseudofsData::default();
        apply(&mut p, "sync-beg-tid=0x10").unwrap();
        apply(&mut p, "sync-end-tid=ff").unwrap();
        apply(&mut p, "label=\"my label\"").unwrap();
        apply(&mut p, "snapshots=/snaps").unwrap();
        apply(&mut p, "prune-min=1d").unwrap();
        assert_eq!((p.sync_beg_tid, p.sync_end_tid), (0x10, 0xff));
        assert_eq!(p.label_bytes(), b"my label");
        assert_eq!(p.snapshots_bytes(), b"/snaps");
        assert_eq!(p.prune_min, 86400);
        apply(&mut p, "snapshots-clear").unwrap();
        assert_eq!(p.snapshots_bytes(), b"");
        apply(&mut p, "label=\"").unwrap();
        assert_eq!(p.label_bytes(), b"");
        let e = apply(&mut p, "label=\"abc").unwrap_err();
        assert_eq!(e.to_string(), "option label: malformed string");
        let e = apply(&mut p, "bogus=1").unwrap_err();
        assert_eq!(e.to_string(), "invalid option: bogus");
        let e = apply(&mut p, "label").unwrap_err();
        assert_eq!(e.to_string(), "option label requires an assignment");
    }

    #[test]
    fn option_values_are_bytes() {
        let mut p = PseudofsData::default();
        apply_option(&mut p, OsStr::from_bytes(b"label=\"caf\xe9\"")).unwrap();
        assert_eq!(p.label_bytes(), b"caf\xe9");
        apply_option(&mut p, OsStr::from_bytes(b"snapshots=/s\xff")).unwrap();
        assert_eq!(p.snapshots_bytes(), b"/s\xff");
        let e = apply_option(&mut p, OsStr::from_bytes(b"shared-uuid=\xff")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "option shared-uuid: error parsing uuid \u{fffd}"
        );
    }
}

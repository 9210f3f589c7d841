//! The snapshot commands with hammer(8)'s syntax, output and exit statuses
//! (cli.md §13): `snap`, `snaplo` and `snapq` record a snapshot of the PFS
//! holding a path, `snapshot` (the older form) makes a softlink to one in
//! a directory, `snaprm` deletes snapshots, `snapls` lists a PFS's
//! snapshots with their notes, and `snapls --changes` every TID a store
//! PFS changed at. The snapshot requests act on the PFS of the descriptor
//! they are given (ioctl-abi.md §9), which `getpfs::open_inside` opens as
//! the original opens its path.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::pfs::Cause;
use super::{Context, Failure, Line};
use crate::bridge;
use crate::cli::{SnapKind, SNAPSHOT_USAGE};
use crate::cparse::{dirpart, strtoull};
use crate::ctime::{now_secs, strftime_local};
use crate::errno::strerror;
use crate::ondisk::{HammerUuid, SnapshotData};
use crate::patharg::PathArg;
use crate::pfs::getpfs::{filesystem_of, open_inside, scanpfsid, Inside};
use crate::pfs::{OpenError, Pfs, PfsError, SnapshotReq, SynctidOp};

/// What a softlink `snap` makes is named after, in a directory it is
/// given (the original's DEFAULT_SNAPSHOT_NAME).
const DEFAULT_NAME: &[u8] = b"snap-%Y%m%d-%H%M";

/// snapls's time format.
const LS_TIME: &[u8] = b"%Y-%m-%d %H:%M:%S %Z";

/// The original reads a softlink into a buffer of 1024 bytes, one kept
/// for its NUL.
const LINK_MAX: usize = 1023;

/// How a snapshot command failed, with the original's texts (cli.md §13).
/// All but `Usage` exit 2.
#[derive(Debug, thiserror::Error)]
pub enum SnapError {
    /// The snapshot commands' usage, exit 1.
    #[error("usage")]
    Usage,
    #[error("hammer snap: File {0} exists and is not a directory")]
    NotDirectory(PathBuf),
    #[error("hammer snap: Cannot open directory {}: {source}", dir.display())]
    OpenDir { dir: PathBuf, source: OpenError },
    #[error("Unable to create snapshot: {0}")]
    Create(Cause),
    #[error(
        "Unable to create snapshot: This directive requires you to upgrade\n\
         the filesystem to version 3.  Use 'hammer snapshot' for legacy operation."
    )]
    OldVersion,
    #[error("hammer snap: Synctid {} failed: {source}", dir.display())]
    SnapSynctid { dir: PathBuf, source: PfsError },
    #[error("hammer snap: Cannot determine mount for {}", .0.display())]
    NoMount(PathBuf),
    #[error("Unable to create symlink {}: {}", path.display(), strerror(source))]
    Symlink { path: PathBuf, source: io::Error },
    #[error("File {} already exists", .0.display())]
    FileExists(PathBuf),
    /// A store's PFS link dangles, so it reads as no file: not a softlink
    /// to replace.
    #[error(
        "File {} already exists: it is a PFS link, which a snapshot softlink may not replace",
        .0.display()
    )]
    PfsLink(PathBuf),
    /// A cleanup's snapshot found another PFS at its path.
    #[error("{}", super::prune::Replaced(.0))]
    Replaced(PathBuf),
    #[error("Unable to determine filesystem of {}", .0.display())]
    NoFilesystem(PathBuf),
    #[error("Unable to determine softlink dir {}", .0.display())]
    NoSoftlinkDir(PathBuf),
    #[error("Unable to open {}: {source}", fs.display())]
    Open { fs: PathBuf, source: OpenError },
    #[error("Synctid {} failed: {source}", fs.display())]
    Synctid { fs: PathBuf, source: Cause },
    #[error("String buffer too small")]
    BufferTooSmall,
    #[error("hammer snaprm: not a file or tid: {}: {}", arg.display(), strerror(source))]
    NotFileOrTid { arg: PathBuf, source: io::Error },
    #[error("hammer snaprm: cannot open dir {}: {}", dir.display(), strerror(source))]
    CannotOpenDir { dir: PathBuf, source: io::Error },
    #[error("hammer snaprm: cannot read softlink: {}: {}", path.display(), strerror(source))]
    CannotReadLink { path: PathBuf, source: io::Error },
    #[error("hammer snaprm: not directory or snapshot softlink: {}", .0.display())]
    NotDirOrLink(PathBuf),
    #[error("hammer snaprm 0x{tid:016x}: {source}")]
    Delete { tid: u64, source: Cause },
    #[error("hammer snaprm 0x{0:016x}: You must upgrade to version  3 to use this directive")]
    DeleteOldVersion(u64),
    #[error("hammer snapls: cannot open {}: {source}", path.display())]
    LsOpen { path: PathBuf, source: OpenError },
    #[error("hammer snapls: cannot retrieve PFS info on {}: {source}", path.display())]
    LsPfsInfo { path: PathBuf, source: Cause },
    #[error("hammer snapls: {}: not HAMMER fs or version < 3: {source}", path.display())]
    LsGet { path: PathBuf, source: PfsError },
    /// Writing stdout or stderr failed.
    #[error("{}", strerror(.0))]
    Output(#[from] io::Error),
}

type SnapResult = Result<(), SnapError>;

/// A snapshot command's failure as told: its message and exit status 2,
/// or the snapshot usage and exit 1.
fn failure(e: SnapError) -> Failure {
    match e {
        SnapError::Usage => Failure::of(Line::Usage(SNAPSHOT_USAGE)),
        e => Failure::errx(e).exit(2),
    }
    .class("snapshot", None)
}

/// Runs a snapshot command on stdout, flushed before a failure is told.
fn on_stdout(command: impl FnOnce(&mut dyn Write) -> SnapResult) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    let r = command(&mut out);
    let _ = out.flush();
    r.map_err(failure)
}

fn bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

fn path_of(b: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(b))
}

/// `dir/name`, as the original's `"%s/%s"` makes it.
fn in_dir(dir: &Path, name: &[u8]) -> PathBuf {
    let mut b = bytes(dir).to_vec();
    b.push(b'/');
    b.extend_from_slice(name);
    path_of(b)
}

/// `<dir>@@0x<tid>` (`<dir>/@@0x<tid>` for `.` and `..`): the path of a
/// directory as of a snapshot, as `snapq` prints it and `snaplo` links to.
fn as_of(dir: &Path, tid: u64) -> PathBuf {
    let mut b = bytes(dir).to_vec();
    if b == b"." || b == b".." {
        b.push(b'/');
    }
    b.extend_from_slice(format!("@@0x{tid:016x}").as_bytes());
    path_of(b)
}

/// The TID a snapshot is taken at: SYNCTID first, as the original does,
/// then the PFS's sync point, which a master's SYNCTID has moved past
/// everything it committed and up to which a slave is a complete copy
/// (a later TID would name a state it may not hold; export refuses it).
fn snapshot_tid(pfs: &mut dyn Pfs) -> Result<u64, PfsError> {
    pfs.synctid(SynctidOp::Sync2)?;
    Ok(pfs.get_pseudofs()?.sync_end_tid)
}

/// The original's `snapshot_add`: on HAMMER version 3 and later a
/// snapshot record (its time in µs of a whole second, the note cut to 63
/// bytes), a snapshot already there being no error; then the softlink
/// `tsym` → `fsym`, replacing whatever `tsym` was.
fn add_snapshot(
    pfs: &mut dyn Pfs,
    tid: u64,
    note: &[u8],
    link: Option<(&Path, &Path)>,
) -> SnapResult {
    if pfs.version().is_ok_and(|v| v >= 3) {
        let secs = u64::try_from(now_secs()).unwrap_or(0);
        let mut req = SnapshotReq {
            count: 1,
            ..SnapshotReq::default()
        };
        req.snaps[0] = SnapshotData::new(tid, secs.saturating_mul(1_000_000), note);
        pfs.add_snapshots(&mut req)
            .map_err(|e| SnapError::Create(e.into()))?;
        match req.error {
            Some(e) if e != Errno::EEXIST => {
                return Err(SnapError::Create(PfsError::from(e).into()))
            }
            _ => {}
        }
    }
    if let Some((fsym, tsym)) = link {
        let _ = fs::remove_file(tsym);
        std::os::unix::fs::symlink(fsym, tsym).map_err(|source| SnapError::Symlink {
            path: tsym.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// `hammer snap|snaplo|snapq <path> [<note>]` (cli.md §13.1).
pub(crate) fn snap(
    cx: &Context<'_>,
    path: &PathArg,
    note: Option<&OsStr>,
    kind: SnapKind,
) -> Result<(), Failure> {
    on_stdout(|out| snap_on(cx, path, note, kind, out))
}

fn snap_on(
    cx: &Context<'_>,
    path: &Path,
    note: Option<&OsStr>,
    kind: SnapKind,
    out: &mut dyn Write,
) -> SnapResult {
    let note = note.map_or(&b""[..], OsStrExt::as_bytes);
    // A directory gets a softlink of the default name in it; a path that
    // does not exist names the softlink, in the directory before it. A
    // store's PFS link, which dangles, is the PFS's own directory, as the
    // link is on HAMMER.
    let (dirpath, tsym) = match fs::metadata(path) {
        Ok(m) if !m.is_dir() => return Err(SnapError::NotDirectory(path.to_path_buf())),
        Err(_) if scanpfsid(path).pfs_id.is_none() => (dirpart(path).to_path_buf(), path.into()),
        _ => {
            let name = strftime_local(DEFAULT_NAME, now_secs(), 64).unwrap_or_default();
            (path.to_path_buf(), in_dir(path, &name))
        }
    };
    let Inside { mut pfs, on_store } = open_inside(&dirpath).map_err(|e| match e {
        OpenError::Io(_) => SnapError::OpenDir {
            dir: dirpath.clone(),
            source: e,
        },
        e => SnapError::Create(e.into()),
    })?;
    match pfs.version() {
        Err(e) => return Err(SnapError::Create(e.into())),
        Ok(v) if v < 3 => return Err(SnapError::OldVersion),
        Ok(_) => {}
    }
    let tid = snapshot_tid(pfs.as_mut()).map_err(|source| SnapError::SnapSynctid {
        dir: dirpath.clone(),
        source,
    })?;
    if kind == SnapKind::Query {
        out.write_all(bytes(&as_of(&dirpath, tid)))?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    // A store's PFS is no directory to hold a softlink, nor one a
    // softlink could lead into: there the snapshot is recorded only.
    let fsym = match kind {
        SnapKind::Query => None,
        _ if on_store => None,
        SnapKind::Base => {
            let mnt = filesystem_of(&dirpath).ok_or_else(|| SnapError::NoMount(dirpath.clone()))?;
            Some(in_dir(&mnt, format!("@@0x{tid:016x}").as_bytes()))
        }
        SnapKind::Local => Some(as_of(&dirpath, tid)),
    };
    let link = fsym.as_deref().map(|f| (f, tsym.as_path()));
    add_snapshot(pfs.as_mut(), tid, note, link)?;
    if on_store && kind != SnapKind::Query && cx.opts.quiet == 0 {
        let mut err = io::stderr().lock();
        writeln!(
            err,
            "hammer {}: a store keeps no snapshot softlinks: snapshot 0x{tid:016x} of PFS#{} \
             recorded in its meta-data only (hammer snapls lists it)",
            cx.word,
            pfs.pfs_id()
        )?;
    }
    Ok(())
}

/// `hammer snapshot [<filesystem>] <snapshot-dir>` and `hammer snapshot
/// <filesystem> <snapshot-dir> [<note>]` (cli.md §13.2).
pub(crate) fn snapshot(
    filesystem: Option<&Path>,
    dir: &Path,
    note: Option<&OsStr>,
) -> Result<(), Failure> {
    on_stdout(|out| snapshot_on(filesystem, dir, note, out))
}

fn snapshot_on(
    filesystem: Option<&Path>,
    dir: &Path,
    note: Option<&OsStr>,
    out: &mut dyn Write,
) -> SnapResult {
    let note = note.map_or(&b""[..], OsStrExt::as_bytes);
    let (fs_path, fmt) = match fs::metadata(dir) {
        Ok(m) => {
            if !m.is_dir() {
                return Err(SnapError::FileExists(dir.to_path_buf()));
            }
            let fs_path = match filesystem {
                Some(f) => f.to_path_buf(),
                None => filesystem_of(dir).ok_or_else(|| SnapError::NoFilesystem(dir.into()))?,
            };
            let mut fmt = bytes(dir).to_vec();
            if fmt.last() != Some(&b'/') {
                fmt.push(b'/');
            }
            fmt.extend_from_slice(DEFAULT_NAME);
            (fs_path, fmt)
        }
        Err(_) => {
            let fmt = bytes(dir).to_vec();
            let fs_path = match filesystem {
                Some(f) => f.to_path_buf(),
                None => {
                    // The directory the softlink goes in: the format
                    // without its last `/component`.
                    let parent = match fmt.iter().rposition(|&c| c == b'/') {
                        Some(i) => path_of(fmt[..i].to_vec()),
                        None => path_of(fmt.clone()),
                    };
                    if !fs::metadata(&parent).is_ok_and(|m| m.is_dir()) {
                        return Err(SnapError::NoSoftlinkDir(parent));
                    }
                    filesystem_of(&parent).ok_or(SnapError::NoFilesystem(parent))?
                }
            };
            (fs_path, fmt)
        }
    };
    let Inside { mut pfs, .. } = open_inside(&fs_path).map_err(|e| match e {
        OpenError::Io(_) => SnapError::Open {
            fs: fs_path.clone(),
            source: e,
        },
        e => SnapError::Synctid {
            fs: fs_path.clone(),
            source: e.into(),
        },
    })?;
    let tid = snapshot_tid(pfs.as_mut()).map_err(|e| SnapError::Synctid {
        fs: fs_path.clone(),
        source: e.into(),
    })?;
    let from = in_dir(&fs_path, format!("@@0x{tid:016x}").as_bytes());
    let to = strftime_local(&fmt, now_secs(), fmt.len() + 50)
        .map(path_of)
        .ok_or(SnapError::BufferTooSmall)?;
    // A store's PFS link (it dangles) or one the name came to: the
    // softlink would take its place, and the PFS its name.
    if scanpfsid(&to).pfs_id.is_some() {
        return Err(SnapError::PfsLink(to));
    }
    add_snapshot(pfs.as_mut(), tid, note, Some((&from, &to)))?;
    out.write_all(bytes(&to))?;
    out.write_all(b"\n")?;
    Ok(())
}

/// cleanup's snapshot of the PFS at `path` (cli.md §23): on HAMMER what
/// `hammer snapshot <path> <dir>` makes, a record and its softlink in
/// `dir` (the softlink's name printed on `out`); on a store the record
/// only, as snap makes it there.
/// `pin` is the PFS the cleanup began with (its unique uuid), which the
/// one at `path` must still be: on a store checked on the handle that
/// makes the snapshot (which then keeps to it), on HAMMER just before.
pub(super) fn cleanup_snapshot(
    path: &Path,
    dir: &Path,
    on_store: bool,
    pin: Option<HammerUuid>,
    out: &mut dyn Write,
) -> SnapResult {
    let Inside { mut pfs, .. } = open_inside(path).map_err(|source| SnapError::Open {
        fs: path.to_path_buf(),
        source,
    })?;
    let pfsd = pfs
        .get_pseudofs()
        .map_err(|e| SnapError::Create(e.into()))?;
    if pin.is_some_and(|u| u != pfsd.unique_uuid) {
        return Err(SnapError::Replaced(path.to_path_buf()));
    }
    if !on_store {
        return snapshot_on(Some(path), dir, None, out);
    }
    let tid = snapshot_tid(pfs.as_mut()).map_err(|e| SnapError::Synctid {
        fs: path.to_path_buf(),
        source: e.into(),
    })?;
    add_snapshot(pfs.as_mut(), tid, b"", None)
}

/// A TID as snaprm reads one: `strtoull(word, 16)` that takes the whole
/// word (an optional `0x`; an empty word is 0, as there).
fn whole_hex(word: &[u8]) -> Option<u64> {
    let (tid, rest) = strtoull(word, 16);
    rest.is_empty().then_some(tid)
}

/// The TID of a snapshot softlink's text: after the `@@` of its last `@`,
/// read in hex to its end.
fn link_tid(target: &[u8]) -> Option<u64> {
    let at = target.iter().rposition(|&c| c == b'@')?;
    if at == 0 || target[at - 1] != b'@' || at + 1 == target.len() {
        return None;
    }
    whole_hex(&target[at + 1..])
}

/// What snaprm's arguments have been so far.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RmMode {
    None,
    Paths,
    Tids,
}

/// The filesystem snaprm deletes from: opened, or why not (told at the
/// first deletion, where the original's ioctl on a bad descriptor fails).
type RmFs = Option<Result<Box<dyn Pfs>, OpenError>>;

/// `hammer snaprm <path> ...`, `snaprm <transaction_id> ...`, `snaprm
/// <filesystem> <transaction_id> ...` (cli.md §13.3): each argument in
/// turn; a softlink is removed with its snapshot.
pub(crate) fn snaprm(args: &[OsString]) -> Result<(), Failure> {
    on_stdout(|_| snaprm_on(args, &mut io::stderr().lock()))
}

fn snaprm_on(args: &[OsString], err: &mut dyn Write) -> SnapResult {
    let mut fs: RmFs = None;
    let mut mode = RmMode::None;
    for (i, word) in args.iter().enumerate() {
        let p = Path::new(word);
        let meta = fs::symlink_metadata(p);
        // A PFS link (a store's dangles; HAMMER's leads into the PFS) is
        // the PFS's directory, not a snapshot softlink.
        let pfs_link = meta.as_ref().is_ok_and(|m| m.file_type().is_symlink())
            && scanpfsid(p).pfs_id.is_some();
        match meta {
            Err(source) => {
                let tid = whole_hex(word.as_bytes()).ok_or_else(|| SnapError::NotFileOrTid {
                    arg: p.to_path_buf(),
                    source,
                })?;
                if mode == RmMode::Paths {
                    return Err(SnapError::Usage);
                }
                mode = RmMode::Tids;
                let fs = fs.get_or_insert_with(|| open_inside(Path::new(".")).map(|i| i.pfs));
                delete_snapshot(fs, tid, err)?;
            }
            Ok(m) if m.is_dir() || pfs_link => {
                if i != 0 || args.len() < 2 {
                    return Err(SnapError::Usage);
                }
                fs = Some(open_dir(p)?);
                mode = RmMode::Tids;
            }
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(p).map_err(|source| SnapError::CannotReadLink {
                    path: p.to_path_buf(),
                    source,
                })?;
                let target = &bytes(&target)[..bytes(&target).len().min(LINK_MAX)];
                let dirpath = if target.first() == Some(&b'/') {
                    dirpart(Path::new(OsStr::from_bytes(target))).to_path_buf()
                } else {
                    dirpart(&in_dir(dirpart(p), target)).to_path_buf()
                };
                fs = Some(open_dir(&dirpath)?);
                let mut delete = true;
                if i == 0 && args.len() > 1 {
                    mode = RmMode::Paths;
                    let next = &args[1];
                    if fs::symlink_metadata(next).is_err() && whole_hex(next.as_bytes()).is_some() {
                        delete = false;
                        mode = RmMode::Tids;
                    }
                } else {
                    if mode == RmMode::Tids {
                        return Err(SnapError::Usage);
                    }
                    mode = RmMode::Paths;
                }
                if let (true, Some(tid), Some(fs)) = (delete, link_tid(target), fs.as_mut()) {
                    delete_snapshot(fs, tid, err)?;
                    let _ = fs::remove_file(p);
                }
            }
            Ok(_) => return Err(SnapError::NotDirOrLink(p.to_path_buf())),
        }
    }
    Ok(())
}

/// snaprm's `open(dir)`: a failure to open ends it; a directory on no
/// HAMMER filesystem fails at its first deletion.
fn open_dir(dir: &Path) -> Result<Result<Box<dyn Pfs>, OpenError>, SnapError> {
    match open_inside(dir) {
        Ok(inside) => Ok(Ok(inside.pfs)),
        Err(OpenError::Io(source)) => Err(SnapError::CannotOpenDir {
            dir: dir.to_path_buf(),
            source,
        }),
        Err(e) => Ok(Err(e)),
    }
}

/// The original's `snapshot_del`: DEL_SNAPSHOT of one TID; a snapshot not
/// there, or another refusal in `head.error`, is a warning only.
fn delete_snapshot(
    fs: &mut Result<Box<dyn Pfs>, OpenError>,
    tid: u64,
    err: &mut dyn Write,
) -> SnapResult {
    let pfs = match fs {
        Ok(pfs) => pfs,
        Err(e) => {
            let source = Cause::Open(std::mem::replace(e, OpenError::NotHammer(Errno::EBADF)));
            return Err(SnapError::Delete { tid, source });
        }
    };
    match pfs.version() {
        Err(e) => {
            return Err(SnapError::Delete {
                tid,
                source: e.into(),
            })
        }
        Ok(v) if v < 3 => return Err(SnapError::DeleteOldVersion(tid)),
        Ok(_) => {}
    }
    let mut req = SnapshotReq {
        count: 1,
        ..SnapshotReq::default()
    };
    req.snaps[0].tid = tid;
    pfs.del_snapshots(&mut req).map_err(|e| SnapError::Delete {
        tid,
        source: e.into(),
    })?;
    match req.error {
        None => {}
        Some(Errno::ENOENT) => writeln!(
            err,
            "Warning: hammer snaprm 0x{tid:016x}: meta-data not found"
        )?,
        Some(e) => writeln!(
            err,
            "Warning: hammer snaprm 0x{tid:016x}: {}",
            crate::errno::errno_desc(e as i32)
        )?,
    }
    Ok(())
}

/// `hammer snapls [<path> ...]` (cli.md §13.4), or with `changes` every
/// TID each store PFS changed at.
pub(crate) fn snapls(paths: &[PathArg], changes: bool) -> Result<(), Failure> {
    let dot = [PathArg::from(".")];
    let paths = if paths.is_empty() { &dot[..] } else { paths };
    if changes {
        let mut out = io::stdout().lock();
        for path in paths {
            bridge::snapls::snapls(path, &mut out).map_err(Failure::errx)?;
        }
        return Ok(());
    }
    on_stdout(|out| {
        for path in paths {
            snapls_on(path, out)?;
        }
        Ok(())
    })
}

fn snapls_on(path: &Path, out: &mut dyn Write) -> SnapResult {
    let Inside { pfs, .. } = open_inside(path).map_err(|e| match e {
        OpenError::Io(_) => SnapError::LsOpen {
            path: path.to_path_buf(),
            source: e,
        },
        e => SnapError::LsPfsInfo {
            path: path.to_path_buf(),
            source: e.into(),
        },
    })?;
    pfs.get_pseudofs().map_err(|e| SnapError::LsPfsInfo {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    out.write_all(b"Snapshots on ")?;
    out.write_all(bytes(path))?;
    write!(
        out,
        "\tPFS#{}\nTransaction ID\t\tTimestamp\t\tNote\n",
        pfs.pfs_id()
    )?;
    // Each call continues after the last snapshot the one before
    // returned, until one returns none (ioctl-abi.md §9).
    let mut req = SnapshotReq::default();
    loop {
        pfs.get_snapshots(&mut req)
            .map_err(|source| SnapError::LsGet {
                path: path.to_path_buf(),
                source,
            })?;
        for s in req.held() {
            let secs = i64::try_from(s.ts / 1_000_000).unwrap_or(i64::MAX);
            let when = strftime_local(LS_TIME, secs, 64).unwrap_or_default();
            let note = match s.label_bytes() {
                b"" => &b"-"[..],
                l => l,
            };
            write!(out, "0x{:016x}\t", s.tid)?;
            out.write_all(&when)?;
            out.write_all(b"\t")?;
            out.write_all(note)?;
            out.write_all(b"\n")?;
        }
        if req.error.is_some() || req.count == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_paths_as_the_original_writes_them() {
        assert_eq!(
            as_of(Path::new("/a/b"), 0x10),
            Path::new("/a/b@@0x0000000000000010")
        );
        assert_eq!(
            as_of(Path::new("."), 1),
            Path::new("./@@0x0000000000000001")
        );
        assert_eq!(
            as_of(Path::new(".."), 1),
            Path::new("../@@0x0000000000000001")
        );
        assert_eq!(in_dir(Path::new("/s/"), b"x"), Path::new("/s//x"));
    }

    #[test]
    fn snaprm_reads_tids_in_hex_whole() {
        assert_eq!(whole_hex(b"0x0000000100000005"), Some(0x1_0000_0005));
        assert_eq!(whole_hex(b"100000005"), Some(0x1_0000_0005));
        assert_eq!(whole_hex(b""), Some(0));
        assert_eq!(whole_hex(b"0x10z"), None);
        assert_eq!(whole_hex(b"snapdir"), None);
        assert_eq!(link_tid(b"/fs/@@0x0000000100000005"), Some(0x1_0000_0005));
        assert_eq!(link_tid(b"dir@@0x10"), Some(0x10));
        // A PFS link names no snapshot.
        assert_eq!(link_tid(b"@@PFS00001"), None);
        assert_eq!(link_tid(b"@@-1:00001"), None);
        assert_eq!(link_tid(b"/fs/@@"), None);
        assert_eq!(link_tid(b"/fs/@0x10"), None);
    }
}

//! `hammer export`: a PFS as of any TID materialised into a new directory
//! (contents, modes, times, symlinks), never writing outside it whatever
//! the records say: a walk of the tree makes the directories, then one
//! pass over the file data creates each file with its data.

mod files;
mod part;
mod plan;

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{utimensat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{getegid, geteuid, mkfifo};

use self::files::{FileOut, Finish, Job, Pool, Problems, WRITE_WINDOW};
use self::plan::{Ino, Plan};
use super::point::{self, Point};
use super::{as_of, open_pfs, point_tid, BridgeError};
use crate::events::{self, Events, Start};
use crate::model::format::{objtype, FIXKEY_SYMLINK, INLINE_SYMLINK_MAX};
use crate::model::tree::{decode, visible, TREE_TYPES};
use crate::ondisk::{rectype, LeafElm, PseudofsData, LOCALIZE_MISC};
use crate::patharg::PathArg;
use crate::pfs::store::{Store, View};
use crate::pfs::Pfs;
use crate::pfs::PfsError;
use crate::progress::Progress;
use crate::wire::crc::data_crc_matches;

/// Longest file name a directory entry may carry (NAME_MAX).
const NAME_MAX: usize = 255;
/// Longest symlink target (PATH_MAX without the NUL).
const TARGET_MAX: usize = 4095;
const ROOT_OBJ: i64 = 1;

#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Write into a non-empty target, replacing entries in the way.
    pub force: bool,
    /// The progress line: file bytes written of the tree's sizes.
    pub progress: Progress,
    /// `-j`: the JSON-lines events.
    pub events: Events,
    /// Paths inside the PFS to export, with the directories leading to
    /// them; empty: the whole tree.
    pub inside: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// The TID the export shows the PFS as of.
    pub tid: u64,
    /// Objects created, the root included.
    pub objects: u64,
    /// File bytes written.
    pub bytes: u64,
}

/// Splits `<pfs-path>@@<tid>` into the path and the TID. A PFS reference
/// `@@0x<tid>:<id>` names its TID the same way; `@@-1:<id>` names none.
pub fn parse_source(arg: &PathArg) -> Result<(PathArg, Option<Point>), BridgeError> {
    let bytes = arg.as_os_str().as_bytes();
    let end = bytes.iter().rposition(|&c| c != b'/').map_or(0, |i| i + 1);
    let trimmed = &bytes[..end];
    let base = trimmed
        .iter()
        .rposition(|&c| c == b'/')
        .map_or(0, |i| i + 1);
    let Some(at) = trimmed[base..]
        .windows(2)
        .rposition(|w| w == b"@@")
        .map(|i| base + i)
    else {
        return Ok((arg.clone(), None));
    };
    if at > base {
        let path = Path::new(OsStr::from_bytes(&trimmed[..at]));
        let text = &trimmed[at + 2..];
        let point = if point::is_date(text) {
            Point::Date(point::parse_date(text)?)
        } else {
            Point::Tid(parse_tid(text)?)
        };
        return Ok((path.into(), Some(point)));
    }
    let mut parts = trimmed[at + 2..].split(|&c| c == b':');
    let tid = parts.next().unwrap_or(b"");
    if tid == b"-1" || !tid.starts_with(b"0x") {
        return Ok((arg.clone(), None));
    }
    let tid = parse_tid(tid)?;
    // `<dir>/@@0x<tid>`, HAMMER's path of a directory as of a snapshot,
    // which `hammer snapshot`'s softlinks hold: the PFS `<dir>` names.
    if parts.next().is_none() && base > 0 {
        let dir = &trimmed[..base];
        let end = dir.iter().rposition(|&c| c != b'/').map_or(1, |i| i + 1);
        return Ok((
            Path::new(OsStr::from_bytes(&dir[..end])).into(),
            Some(Point::Tid(tid)),
        ));
    }
    Ok((arg.clone(), Some(Point::Tid(tid))))
}

fn parse_tid(s: &[u8]) -> Result<u64, BridgeError> {
    let bad = || BridgeError::BadTid(String::from_utf8_lossy(s).into_owned());
    let hex = s
        .strip_prefix(b"0x")
        .or_else(|| s.strip_prefix(b"0X"))
        .unwrap_or(s);
    if hex.is_empty() || hex.len() > 16 {
        return Err(bad());
    }
    let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
    u64::from_str_radix(hex, 16).map_err(|_| bad())
}

/// Why a directory entry name cannot become a file name in the target.
pub(crate) fn bad_name(name: &[u8]) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty name")
    } else if name == b"." || name == b".." {
        Some("name is . or ..")
    } else if name.contains(&b'/') {
        Some("name contains '/'")
    } else if name.contains(&0) {
        Some("name contains NUL")
    } else if name.len() > NAME_MAX {
        Some("name longer than 255 bytes")
    } else {
        None
    }
}

/// Exports PFS `source` (`<pfs-path>[@@<tid>]`) into `target`. Records
/// that cannot be decoded or entries that cannot be created are reported
/// on `diag`, the rest is exported, and the result is then an error.
pub fn export(
    source: &PathArg,
    target: &Path,
    opts: ExportOptions,
    diag: &mut dyn Write,
) -> Result<ExportSummary, BridgeError> {
    let (path, point) = parse_source(source)?;
    for inside in &opts.inside {
        part::components(inside)?;
    }
    let (store, pfsd) = open_pfs(&path)?;
    let asked = point_tid(point, &path.to_string(), &store, Some(&store), &pfsd, diag)?;
    let tid = as_of(&pfsd, asked)?;
    // A partial export reads its objects through one view; a whole one
    // scans the PFS.
    let view = match opts.inside.is_empty() {
        true => None,
        false => Some(store.view(Some(tid))?),
    };
    let plan = match &view {
        Some(v) => part::plan(v, &path.to_string(), &opts.inside)?,
        None => {
            let mut plan = Plan::new();
            store.scan(TREE_TYPES, |leaf, load| decode(tid, leaf, load, &mut plan))?;
            plan.seal();
            plan
        }
    };
    let Some(&root) = plan.ino(ROOT_OBJ) else {
        return Err(BridgeError::NoRoot(format!("{path} as of {tid:#018x}")));
    };
    let made = prepare_target(target, opts.force)?;
    let from = From {
        store: &store,
        view: view.as_ref(),
        path: &path,
        pfsd: &pfsd,
        tid,
    };
    let done = write_tree(&from, plan, root, target, &opts, diag);
    // A target this export made goes again when nothing could be written:
    // a failure leaves no empty directory behind (a tree written with
    // problems stays, with them reported).
    if made && !matches!(done, Ok(_) | Err(BridgeError::Incomplete { .. })) {
        let _ = fs::remove_dir_all(target);
    }
    done
}

/// What an export reads: the PFS (through `view` for a partial export)
/// as of `tid`.
struct From<'a> {
    store: &'a Store,
    view: Option<&'a View<'a>>,
    path: &'a PathArg,
    pfsd: &'a PseudofsData,
    tid: u64,
}

/// The export once its plan is made and its target ready.
fn write_tree(
    from: &From<'_>,
    mut plan: Plan,
    root: Ino,
    target: &Path,
    opts: &ExportOptions,
    diag: &mut dyn Write,
) -> Result<ExportSummary, BridgeError> {
    let From {
        store,
        view,
        path,
        pfsd,
        tid,
    } = *from;
    let how = Finish {
        root_user: geteuid().is_root(),
        creator: creator(target, opts.force),
        umask: files::umask(),
    };
    let mut ex = Exporter {
        problems: std::mem::take(&mut plan.problems)
            .into_iter()
            .map(|p| match plan.path_of(p.key.obj_id, ROOT_OBJ) {
                Some(at) => format!("{p} ({at})"),
                None => format!("{p} (no longer linked as of {tid:#018x})"),
            })
            .collect(),
        plan,
        tid,
        force: opts.force,
        how,
        files: Vec::new(),
        symlinks: Vec::new(),
        fix: HashMap::new(),
        fifos: Vec::new(),
        dirs: vec![(target.to_path_buf(), root)],
        seq: 0,
        summary: ExportSummary {
            tid,
            objects: 1,
            bytes: 0,
        },
        progress: opts.progress.clone(),
    };
    let planned = ex.plan.file_bytes();
    let t0 = std::time::Instant::now();
    opts.events.start(
        None,
        &Start {
            pfs: path.to_string(),
            pfs_id: Some(store.pfs_id()),
            shared_uuid: Some(pfsd.shared_uuid.to_string()),
            end_tid: Some(events::tid(tid)),
            planned_bytes: Some(planned),
            ..Start::default()
        },
    );
    opts.progress.start();
    opts.progress.expect(planned);
    let mut write = || -> Result<(), BridgeError> {
        ex.build();
        // File data: one pass in key order, loading only the payloads
        // wanted; each file is created when its turn comes.
        let objs: Vec<i64> = match view {
            Some(_) => (ex.files.iter().map(|f| f.obj_id))
                .chain(ex.symlinks.iter().map(|s| s.1))
                .collect(),
            None => Vec::new(),
        };
        let mut data = DataPass::new(&mut ex);
        match view {
            Some(v) => part::data(v, objs, |leaf, load| data.record(leaf, load))?,
            None => store.scan(LOCALIZE_MISC..=LOCALIZE_MISC, |leaf, load| {
                data.record(leaf, load)
            })?,
        }
        let files = data.finish()?;
        ex.finish(files);
        Ok(())
    };
    let r = write();
    opts.progress.finish();
    r?;
    let took = t0.elapsed().as_secs_f64();
    let s = &ex.summary;
    opts.events
        .batch(None, (tid, tid), s.objects, s.bytes, took);
    for p in &ex.problems {
        let _ = writeln!(diag, "hammer: export: {p}");
    }
    match ex.problems.len() {
        0 => Ok(ex.summary),
        count => Err(BridgeError::Incomplete { count }),
    }
}

/// Who new files belong to: the effective user and group, unless a
/// directory could decide the group (setgid, a group of its own, or with
/// force one that was already there).
fn creator(target: &Path, force: bool) -> Option<(u32, u32)> {
    let m = fs::symlink_metadata(target).ok()?;
    let gid = getegid().as_raw();
    (!force && m.gid() == gid && m.mode() & 0o2000 == 0).then(|| (geteuid().as_raw(), gid))
}

/// Makes `target` ready: a new directory (true: this export made it), or
/// an empty one (with force, any directory).
fn prepare_target(target: &Path, force: bool) -> Result<bool, BridgeError> {
    match fs::symlink_metadata(target) {
        // Only the target itself is made: a mistyped parent is an error,
        // not a new tree of directories.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(target).map(|()| true).map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    BridgeError::NoParent(target.display().to_string())
                } else {
                    BridgeError::io(target, e)
                }
            })
        }
        Err(e) => Err(BridgeError::io(target, e)),
        Ok(m) if !m.is_dir() => Err(BridgeError::TargetNotDir(target.display().to_string())),
        Ok(_) => {
            let mut rd = fs::read_dir(target).map_err(|e| BridgeError::io(target, e))?;
            if !force && rd.next().is_some() {
                return Err(BridgeError::NotEmpty(target.display().to_string()));
            }
            Ok(false)
        }
    }
}

/// A name a regular file gets: entry `entry` of directory `dirs[dir]`.
/// `seq` is the order the tree walk met it in.
#[derive(Clone, Copy, Debug)]
struct FileName {
    obj_id: i64,
    dir: usize,
    entry: usize,
    seq: u64,
}

struct Exporter {
    plan: Plan,
    tid: u64,
    force: bool,
    how: Finish,
    /// The names of the regular files to create, by obj_id after `build`.
    files: Vec<FileName>,
    symlinks: Vec<(PathBuf, i64)>,
    /// Long symlink targets from FIX records.
    fix: HashMap<i64, Vec<u8>>,
    /// FIFOs, whose attributes are set at the end, with their `seq`.
    fifos: Vec<(u64, PathBuf, Ino)>,
    /// Directories in creation order, the target first.
    dirs: Vec<(PathBuf, Ino)>,
    /// The next `seq`.
    seq: u64,
    problems: Vec<String>,
    summary: ExportSummary,
    progress: Progress,
}

/// A name for messages: the bytes with anything unprintable escaped.
fn shown(name: &[u8]) -> String {
    name.escape_ascii().to_string()
}

/// A HAMMER time (microseconds since the epoch) as `utimensat` takes it.
fn timespec(us: u64) -> TimeSpec {
    let us = us as i64;
    TimeSpec::new(us.div_euclid(1_000_000), us.rem_euclid(1_000_000) * 1000)
}

impl Exporter {
    /// Creates the directories and FIFOs reachable from the root, and
    /// lists the names of regular files (created by the data pass) and
    /// symlinks (created last, so that nothing is ever created through
    /// one).
    fn build(&mut self) {
        let mut visited = HashSet::from([ROOT_OBJ]);
        let mut stack = vec![(0, ROOT_OBJ)];
        while let Some((dir, dobj)) = stack.pop() {
            let dpath = self.dirs[dir].0.clone();
            let mut last: Option<usize> = None;
            for at in self.plan.children(dobj) {
                let (e, name) = self.plan.entry_at(at);
                let obj_id = e.obj_id;
                let at_dir = || format!("{} (directory {dobj:#018x})", dpath.display());
                if let Some(why) = bad_name(name) {
                    self.problems.push(format!(
                        "{}: entry '{}' refused: {why}",
                        at_dir(),
                        shown(name)
                    ));
                    continue;
                }
                // Names are sorted: a name seen before is the last one kept.
                if last.is_some_and(|l| self.plan.entry_at(l).1 == name) {
                    self.problems.push(format!(
                        "{}: entry '{}' appears twice",
                        at_dir(),
                        shown(name)
                    ));
                    continue;
                }
                last = Some(at);
                let path = dpath.join(OsStr::from_bytes(name));
                let Some(&ino) = self.plan.ino(obj_id) else {
                    self.problems.push(format!(
                        "{}: object {:#018x} has no inode as of {:#018x}",
                        path.display(),
                        obj_id,
                        self.tid
                    ));
                    continue;
                };
                if ino.obj_type == objtype::DIRECTORY && !visited.insert(obj_id) {
                    self.problems.push(format!(
                        "{}: directory {:#018x} is linked more than once",
                        path.display(),
                        obj_id
                    ));
                    continue;
                }
                let name = FileName {
                    obj_id,
                    dir,
                    entry: at,
                    seq: self.seq,
                };
                self.seq += 1;
                match self.create(path, name, &ino) {
                    Ok(Some(path)) => {
                        stack.push((self.dirs.len(), obj_id));
                        self.dirs.push((path, ino));
                    }
                    Ok(None) => {}
                    Err((path, why)) => self.problems.push(format!("{}: {why}", path.display())),
                }
            }
        }
        // By object, each object's names in walk order: the data pass
        // meets them in the order of the object's records.
        self.files.sort_by_key(|f| f.obj_id);
    }

    /// Removes what stands where an entry goes (only with force); a real
    /// directory stays when a directory is wanted. True if it stayed.
    fn make_room(&self, path: &Path, want_dir: bool) -> io::Result<bool> {
        if !self.force {
            return Ok(false);
        }
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
            Ok(m) if m.is_dir() && want_dir => Ok(true),
            Ok(m) if m.is_dir() => Err(io::Error::other("a directory is in the way")),
            // unlink removes a symlink itself, never what it points to.
            Ok(_) => fs::remove_file(path).map(|()| false),
        }
    }

    /// Makes room for one entry and creates it, or lists it for later.
    /// A directory's path comes back, to be entered.
    fn create(
        &mut self,
        path: PathBuf,
        name: FileName,
        ino: &Ino,
    ) -> Result<Option<PathBuf>, (PathBuf, String)> {
        let err = |e: io::Error| e.to_string();
        let made = match ino.obj_type {
            objtype::DIRECTORY => self
                .make_room(&path, true)
                .and_then(|stayed| match stayed {
                    true => Ok(()),
                    false => fs::DirBuilder::new().mode(0o700).create(&path),
                })
                .map_err(err),
            objtype::REGFILE => {
                return match self.make_room(&path, false) {
                    Ok(_) => {
                        self.files.push(name);
                        Ok(None)
                    }
                    Err(e) => Err((path, err(e))),
                };
            }
            objtype::SOFTLINK => {
                return match self.make_room(&path, false) {
                    Ok(_) => {
                        self.symlinks.push((path, name.obj_id));
                        Ok(None)
                    }
                    Err(e) => Err((path, err(e))),
                };
            }
            objtype::FIFO => self.make_room(&path, false).map_err(err).and_then(|_| {
                mkfifo(&path, Mode::from_bits_truncate(0o600)).map_err(|e| e.desc().to_string())
            }),
            // Device nodes from a stream are never created (they would
            // give access to this host's devices); sockets cannot be.
            objtype::CDEV | objtype::BDEV => {
                let (major, minor) = self
                    .plan
                    .special(name.obj_id)
                    .map_or((0, 0), |i| (i.rmajor, i.rminor));
                return Err((path, format!("device node {major}:{minor} not created")));
            }
            objtype::SOCKET => return Err((path, "socket not created".to_string())),
            t => return Err((path, format!("object type {t} not exported"))),
        };
        if let Err(why) = made {
            return Err((path, why));
        }
        self.summary.objects += 1;
        self.progress.at(self.summary.bytes, self.summary.objects);
        if ino.obj_type == objtype::DIRECTORY {
            return Ok(Some(path));
        }
        self.fifos.push((name.seq, path, *ino));
        Ok(None)
    }

    /// The path of one name of a regular file.
    fn path_of(&self, name: &FileName) -> PathBuf {
        self.dirs[name.dir]
            .0
            .join(OsStr::from_bytes(self.plan.entry_at(name.entry).1))
    }

    /// Symlinks, then attributes: FIFOs, then directories deepest first
    /// so that a read-only directory is closed only after its contents.
    /// `files` is what the data pass reported of the regular files.
    fn finish(&mut self, files: Problems) {
        let mut made = files.made;
        made.sort_by_key(|&(seq, _)| seq);
        self.problems.extend(made.into_iter().map(|(_, p)| p));
        for (path, obj_id) in std::mem::take(&mut self.symlinks) {
            let Some(&ino) = self.plan.ino(obj_id) else {
                continue;
            };
            match self.symlink_target(obj_id, &ino) {
                Ok(t) => match std::os::unix::fs::symlink(OsStr::from_bytes(&t), &path) {
                    Ok(()) => {
                        self.summary.objects += 1;
                        let mut p = Vec::new();
                        attributes(&mut p, &path, &ino, self.how, true);
                        self.problems.extend(p);
                    }
                    Err(e) => self.problems.push(format!("{}: {e}", path.display())),
                },
                Err(why) => self.problems.push(format!("{}: {why}", path.display())),
            }
        }
        // Files and FIFOs in the order the walk met them, as before files
        // were written apart.
        let mut attrs = files.attrs;
        for (seq, path, ino) in std::mem::take(&mut self.fifos) {
            let mut p = Vec::new();
            attributes(&mut p, &path, &ino, self.how, false);
            attrs.extend(p.into_iter().map(|p| (seq, p)));
        }
        attrs.sort_by_key(|&(seq, _)| seq);
        self.problems.extend(attrs.into_iter().map(|(_, p)| p));
        for (path, ino) in std::mem::take(&mut self.dirs).into_iter().rev() {
            attributes(&mut self.problems, &path, &ino, self.how, false);
        }
    }

    fn symlink_target(&self, obj_id: i64, ino: &Ino) -> Result<Vec<u8>, String> {
        let size = usize::try_from(ino.size).unwrap_or(usize::MAX);
        let t = if size <= INLINE_SYMLINK_MAX {
            match self.plan.special(obj_id) {
                Some(full) => full.symlink[..size].to_vec(),
                None => Vec::new(),
            }
        } else {
            match self.fix.get(&obj_id) {
                Some(t) if t.len() == size => t.clone(),
                Some(_) => return Err("symlink target length differs from its size".into()),
                None => return Err("long symlink has no target record".into()),
            }
        };
        if t.is_empty() || t.len() > TARGET_MAX || t.contains(&0) {
            return Err("symlink target is empty, too long or contains NUL".into());
        }
        Ok(t)
    }
}

/// Owner (as root), mode and times of `path`; a symlink gets only owner
/// and times. Failures go to `problems`, the export goes on.
fn attributes(problems: &mut Vec<String>, path: &Path, ino: &Ino, how: Finish, symlink: bool) {
    let mut fail = |what: &str, e: String| {
        problems.push(format!("{}: cannot set {what}: {e}", path.display()))
    };
    if how.root_user {
        if let Err(e) = std::os::unix::fs::lchown(path, Some(ino.uid), Some(ino.gid)) {
            fail("owner", e.to_string());
        }
    }
    if !symlink {
        if let Err(e) = fs::set_permissions(path, fs::Permissions::from_mode(how.mode(ino))) {
            fail("mode", e.to_string());
        }
    }
    if let Err(e) = utimensat(
        None,
        path,
        &timespec(ino.atime),
        &timespec(ino.mtime),
        UtimensatFlags::NoFollowSymlink,
    ) {
        fail("times", e.desc().to_string());
    }
}

/// The file the data pass is writing: small ones gather their data for
/// the pool, large ones are written here as their records come.
enum Current {
    Small(Job),
    Large(Option<FileOut>),
}

/// The second scan: MISC records in key order. Each regular file is
/// created when the scan reaches its obj_id, files without data records
/// included, so one pass over the files' names in obj_id order goes
/// along with it.
struct DataPass<'a> {
    ex: &'a mut Exporter,
    pool: Pool,
    /// Index in `ex.files` of the next object's first name.
    next: usize,
    current: Option<(i64, Current)>,
    /// Problems of the large files written here.
    own: Problems,
    /// Objects counted before the data pass.
    objects: u64,
}

impl<'a> DataPass<'a> {
    fn new(ex: &'a mut Exporter) -> Self {
        let pool = Pool::new(ex.how);
        let objects = ex.summary.objects;
        DataPass {
            ex,
            pool,
            next: 0,
            current: None,
            own: Problems::default(),
            objects,
        }
    }

    /// Takes one MISC record: file data into its file, long symlink
    /// targets aside.
    fn record(
        &mut self,
        leaf: &LeafElm,
        load: &dyn Fn() -> Result<Vec<u8>, PfsError>,
    ) -> Result<(), BridgeError> {
        if !visible(leaf, self.ex.tid) {
            return Ok(());
        }
        let b = &leaf.base;
        match b.rec_type {
            rectype::DATA => {
                self.reach(b.obj_id)?;
                if self.current.as_ref().is_some_and(|(o, _)| *o == b.obj_id) {
                    self.data(leaf, load)?;
                }
                Ok(())
            }
            rectype::FIX if b.key == FIXKEY_SYMLINK => {
                let target = load()?;
                self.ex.fix.insert(b.obj_id, target);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Ends the files before `obj_id` and starts `obj_id` if it is one.
    fn reach(&mut self, obj_id: i64) -> Result<(), BridgeError> {
        if self.current.as_ref().is_some_and(|(o, _)| *o == obj_id) {
            return Ok(());
        }
        self.end_current()?;
        while self.next < self.ex.files.len() && self.ex.files[self.next].obj_id <= obj_id {
            let (obj, cur) = self.start()?;
            if obj == obj_id {
                self.current = Some((obj, cur));
                break;
            }
            self.end(cur)?;
        }
        Ok(())
    }

    /// Starts the next object of `ex.files`.
    fn start(&mut self) -> Result<(i64, Current), BridgeError> {
        let files = &self.ex.files;
        let first = files[self.next];
        let n = files[self.next..]
            .iter()
            .take_while(|f| f.obj_id == first.obj_id)
            .count();
        let paths = files[self.next..self.next + n]
            .iter()
            .map(|f| self.ex.path_of(f))
            .collect();
        self.next += n;
        let ino = self.ex.plan.ino(first.obj_id).copied().unwrap_or_default();
        let cur = if ino.size > WRITE_WINDOW as u64 {
            Current::Large(FileOut::create(
                first.seq,
                ino,
                paths,
                self.ex.how,
                &mut self.own,
            ))
        } else {
            Current::Small(Job {
                seq: first.seq,
                ino,
                paths,
                pieces: Vec::new(),
            })
        };
        Ok((first.obj_id, cur))
    }

    fn end_current(&mut self) -> Result<(), BridgeError> {
        match self.current.take() {
            Some((_, cur)) => self.end(cur),
            None => Ok(()),
        }
    }

    fn end(&mut self, cur: Current) -> Result<(), BridgeError> {
        match cur {
            Current::Small(job) => self.pool.push(job)?,
            Current::Large(Some(out)) => {
                if out.finish(self.ex.how, &mut self.own)? {
                    self.objects += 1;
                }
            }
            Current::Large(None) => {}
        }
        self.ex.summary.objects = self.objects + self.pool.created();
        self.ex
            .progress
            .at(self.ex.summary.bytes, self.ex.summary.objects);
        Ok(())
    }

    /// One DATA record of the current file.
    fn data(
        &mut self,
        leaf: &LeafElm,
        load: &dyn Fn() -> Result<Vec<u8>, PfsError>,
    ) -> Result<(), BridgeError> {
        let b = &leaf.base;
        let what = || format!("object {:#018x} data record {:#018x}", b.obj_id, b.key);
        let len = i64::from(leaf.data_len);
        let Some(start) = b.key.checked_sub(len).filter(|&s| s >= 0 && len > 0) else {
            self.ex
                .problems
                .push(format!("{}: bad length {}", what(), leaf.data_len));
            return Ok(());
        };
        let Some((_, cur)) = &mut self.current else {
            return Ok(());
        };
        let (size, path) = match cur {
            Current::Small(job) => (job.ino.size, job.paths.first().map(PathBuf::as_path)),
            Current::Large(Some(out)) => (out.size(), Some(out.path())),
            Current::Large(None) => return Ok(()),
        };
        let start = start as u64;
        if start >= size {
            return Ok(());
        }
        let data = load()?;
        if data.len() as i64 != len || !data_crc_matches(rectype::DATA, &data, leaf.data_crc) {
            // The damaged file by its path inside the PFS.
            let target = &self.ex.dirs[0].0;
            let inside = path.and_then(|p| p.strip_prefix(target).ok());
            let file = inside.map_or_else(String::new, |p| format!(" (/{})", p.display()));
            self.ex
                .problems
                .push(format!("{}: payload fails its CRC{file}", what()));
            return Ok(());
        }
        let n = (size - start).min(data.len() as u64) as usize;
        match cur {
            Current::Small(job) => match job.pieces.last_mut() {
                Some((at, d)) if *at + d.len() as u64 == start => d.extend_from_slice(&data[..n]),
                _ => {
                    let mut data = data;
                    data.truncate(n);
                    job.pieces.push((start, data));
                }
            },
            Current::Large(Some(out)) => out.buffer(&data[..n], start)?,
            Current::Large(None) => {}
        }
        self.ex.summary.bytes += n as u64;
        self.ex
            .progress
            .at(self.ex.summary.bytes, self.ex.summary.objects);
        Ok(())
    }

    /// Ends the last file, creates those after it, and waits for the
    /// writers; returns what went wrong with the files.
    fn finish(mut self) -> Result<Problems, BridgeError> {
        self.reach(i64::MAX)?;
        self.end_current()?;
        let (mut problems, created, written) = self.pool.finish();
        written?;
        problems.append(self.own);
        self.ex.summary.objects = self.objects + created;
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path and the TID of a source (a date is `None` here).
    fn parse_source(arg: &str) -> Result<(PathArg, Option<u64>), BridgeError> {
        let (path, point) = super::parse_source(&arg.into())?;
        Ok((path, point.and_then(tid_of)))
    }

    fn tid_of(point: Point) -> Option<u64> {
        match point {
            Point::Tid(tid) => Some(tid),
            Point::Date(_) => None,
        }
    }

    #[test]
    fn source_forms() {
        assert_eq!(
            parse_source("/s/master").unwrap(),
            ("/s/master".into(), None)
        );
        assert_eq!(
            parse_source("/s/master@@0x0000000100000005").unwrap(),
            ("/s/master".into(), Some(0x1_0000_0005))
        );
        assert_eq!(
            parse_source("/s/@@0x0000000100000005:00001").unwrap(),
            ("/s/@@0x0000000100000005:00001".into(), Some(0x1_0000_0005))
        );
        assert_eq!(
            parse_source("/s/@@-1:00001").unwrap(),
            ("/s/@@-1:00001".into(), None)
        );
        assert_eq!(
            parse_source("/s/master/@@0x0000000100000005").unwrap(),
            ("/s/master".into(), Some(0x1_0000_0005))
        );
        assert_eq!(
            parse_source("/s/master//@@0x0000000100000005/").unwrap(),
            ("/s/master".into(), Some(0x1_0000_0005))
        );
        assert_eq!(
            parse_source("/@@0x0000000100000005").unwrap(),
            ("/".into(), Some(0x1_0000_0005))
        );
        assert!(parse_source("/s/master@@zz").is_err());
        assert!(parse_source("/s/master@@").is_err());
        let odd = PathArg::from(Path::new(OsStr::from_bytes(b"/s/m\xff@@0x5")));
        let (path, point) = super::parse_source(&odd).unwrap();
        assert_eq!(
            (path, point.and_then(tid_of)),
            (Path::new(OsStr::from_bytes(b"/s/m\xff")).into(), Some(5))
        );
        // A date after the path; a TID form keeps its meaning.
        let (path, point) = super::parse_source(&"/s/master@@2026-12-05T10:00Z".into()).unwrap();
        assert_eq!(path, "/s/master".into());
        assert!(matches!(point, Some(Point::Date(m)) if m.secs == 1_796_464_800));
        assert!(matches!(
            parse_source("/s/master@@2026-02-30"),
            Err(BridgeError::Point(point::PointError::BadDate { .. }))
        ));
    }

    #[test]
    fn hostile_names_are_refused() {
        for n in [&b""[..], b".", b"..", b"a/b", b"a\0b", &[b'x'; 256]] {
            assert!(bad_name(n).is_some(), "{n:?}");
        }
        assert_eq!(bad_name(&[b'x'; 255]), None);
        assert_eq!(bad_name(b"...").map(|_| ()), None);
        assert_eq!(bad_name("é \n".as_bytes()), None);
    }
}

//! `hammer export`: a PFS as of any TID materialised into a new directory
//! (contents, modes, times, symlinks), never writing outside it whatever
//! the records say.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{utimensat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{geteuid, mkfifo};

use super::format::{objtype, InodeData, FIXKEY_SYMLINK, INLINE_SYMLINK_MAX};
use super::tree::{visible, Tree, TREE_TYPES};
use super::{as_of, open_pfs, BridgeError};
use crate::events::{self, Events, Start};
use crate::ondisk::{rectype, LeafElm, LOCALIZE_MISC};
use crate::patharg::PathArg;
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
pub fn parse_source(arg: &PathArg) -> Result<(PathArg, Option<u64>), BridgeError> {
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
        return Ok((path.into(), Some(parse_tid(&trimmed[at + 2..])?)));
    }
    let tid = trimmed[at + 2..]
        .split(|&c| c == b':')
        .next()
        .unwrap_or(b"");
    if tid == b"-1" || !tid.starts_with(b"0x") {
        return Ok((arg.clone(), None));
    }
    Ok((arg.clone(), Some(parse_tid(tid)?)))
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
    let (path, tid) = parse_source(source)?;
    let (store, pfsd) = open_pfs(&path)?;
    let tid = as_of(&pfsd, tid)?;
    prepare_target(target, opts.force)?;
    let mut tree = Tree::default();
    store.scan(TREE_TYPES, |leaf, load| tree.add(tid, leaf, load))?;
    let Some(&root) = tree.inodes.get(&ROOT_OBJ) else {
        return Err(BridgeError::NoRoot(format!("{path} as of {tid:#018x}")));
    };
    let mut ex = Exporter {
        problems: tree.problems.drain(..).map(|p| p.to_string()).collect(),
        tree,
        tid,
        force: opts.force,
        root_user: geteuid().is_root(),
        files: HashMap::new(),
        open: None,
        symlinks: Vec::new(),
        fix: HashMap::new(),
        others: Vec::new(),
        dirs: vec![(target.to_path_buf(), root)],
        summary: ExportSummary {
            tid,
            objects: 1,
            bytes: 0,
        },
        progress: opts.progress.clone(),
    };
    let planned = file_bytes(&ex.tree);
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
        ex.build(target)?;
        // File data: one pass in key order, loading only the payloads wanted.
        store.scan(LOCALIZE_MISC..=LOCALIZE_MISC, |leaf, load| {
            ex.record(leaf, load)
        })?;
        ex.flush()?;
        ex.finish();
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

/// The sizes of the regular files in the tree: what the data pass writes,
/// holes aside.
fn file_bytes(tree: &Tree) -> u64 {
    tree.inodes
        .values()
        .filter(|i| i.obj_type == objtype::REGFILE)
        .map(|i| i.size)
        .sum()
}

fn prepare_target(target: &Path, force: bool) -> Result<(), BridgeError> {
    match fs::symlink_metadata(target) {
        // Only the target itself is made: a mistyped parent is an error,
        // not a new tree of directories.
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(target).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                BridgeError::NoParent(target.display().to_string())
            } else {
                BridgeError::io(target, e)
            }
        }),
        Err(e) => Err(BridgeError::io(target, e)),
        Ok(m) if !m.is_dir() => Err(BridgeError::TargetNotDir(target.display().to_string())),
        Ok(_) => {
            let mut rd = fs::read_dir(target).map_err(|e| BridgeError::io(target, e))?;
            if !force && rd.next().is_some() {
                return Err(BridgeError::NotEmpty(target.display().to_string()));
            }
            Ok(())
        }
    }
}

/// The file data records go into: consecutive blocks are gathered and
/// written together, not one write per block.
struct OpenFile {
    obj_id: i64,
    file: File,
    path: PathBuf,
    /// Where `pending` goes in the file.
    at: u64,
    pending: Vec<u8>,
}

/// File data is written in pieces of up to this size.
const WRITE_WINDOW: usize = 1 << 20;

struct Exporter {
    tree: Tree,
    tid: u64,
    force: bool,
    root_user: bool,
    /// Regular files created: the first path of each.
    files: HashMap<i64, PathBuf>,
    /// The file DATA records are being written to.
    open: Option<OpenFile>,
    symlinks: Vec<(PathBuf, i64)>,
    /// Long symlink targets from FIX records.
    fix: HashMap<i64, Vec<u8>>,
    /// Files and FIFOs whose attributes are set at the end.
    others: Vec<(PathBuf, InodeData)>,
    /// Directories in creation order, the target first.
    dirs: Vec<(PathBuf, InodeData)>,
    problems: Vec<String>,
    summary: ExportSummary,
    progress: Progress,
}

/// A name for messages: the bytes with anything unprintable escaped.
fn shown(name: &[u8]) -> String {
    name.escape_ascii().to_string()
}

impl Exporter {
    /// Creates the directories, files and FIFOs reachable from the root;
    /// symlinks are only collected, so that nothing is ever created
    /// through one.
    fn build(&mut self, target: &Path) -> Result<(), BridgeError> {
        let mut visited = HashSet::from([ROOT_OBJ]);
        let mut stack = vec![(target.to_path_buf(), ROOT_OBJ)];
        while let Some((dpath, dobj)) = stack.pop() {
            let mut entries = self.tree.dirs.remove(&dobj).unwrap_or_default();
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            let mut names = HashSet::new();
            for e in entries {
                let at = || format!("{} (directory {dobj:#018x})", dpath.display());
                if let Some(why) = bad_name(&e.name) {
                    self.problems.push(format!(
                        "{}: entry '{}' refused: {why}",
                        at(),
                        shown(&e.name)
                    ));
                    continue;
                }
                if !names.insert(e.name.clone()) {
                    self.problems.push(format!(
                        "{}: entry '{}' appears twice",
                        at(),
                        shown(&e.name)
                    ));
                    continue;
                }
                let path = dpath.join(OsStr::from_bytes(&e.name));
                let Some(&ino) = self.tree.inodes.get(&e.obj_id) else {
                    self.problems.push(format!(
                        "{}: object {:#018x} has no inode as of {:#018x}",
                        path.display(),
                        e.obj_id,
                        self.tid
                    ));
                    continue;
                };
                if ino.obj_type == objtype::DIRECTORY && !visited.insert(e.obj_id) {
                    self.problems.push(format!(
                        "{}: directory {:#018x} is linked more than once",
                        path.display(),
                        e.obj_id
                    ));
                    continue;
                }
                if let Err(why) = self.create(&path, e.obj_id, &ino) {
                    self.problems.push(format!("{}: {why}", path.display()));
                    continue;
                }
                if ino.obj_type == objtype::DIRECTORY {
                    self.dirs.push((path.clone(), ino));
                    stack.push((path, e.obj_id));
                }
            }
        }
        Ok(())
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

    fn create(&mut self, path: &Path, obj_id: i64, ino: &InodeData) -> Result<(), String> {
        let err = |e: io::Error| e.to_string();
        match ino.obj_type {
            objtype::DIRECTORY => {
                if !self.make_room(path, true).map_err(err)? {
                    fs::DirBuilder::new()
                        .mode(0o700)
                        .create(path)
                        .map_err(err)?;
                }
            }
            objtype::REGFILE => {
                self.make_room(path, false).map_err(err)?;
                if let Some(first) = self.files.get(&obj_id) {
                    fs::hard_link(first, path).map_err(err)?;
                    return Ok(());
                }
                // O_EXCL: never opens an existing file or follows a symlink.
                let f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(path)
                    .map_err(err)?;
                f.set_len(ino.size).map_err(err)?;
                self.files.insert(obj_id, path.to_path_buf());
                self.others.push((path.to_path_buf(), *ino));
            }
            objtype::SOFTLINK => {
                self.make_room(path, false).map_err(err)?;
                self.symlinks.push((path.to_path_buf(), obj_id));
                return Ok(());
            }
            objtype::FIFO => {
                self.make_room(path, false).map_err(err)?;
                mkfifo(path, Mode::from_bits_truncate(0o600)).map_err(|e| e.desc().to_string())?;
                self.others.push((path.to_path_buf(), *ino));
            }
            // Device nodes from a stream are never created (they would
            // give access to this host's devices); sockets cannot be.
            objtype::CDEV | objtype::BDEV => {
                return Err(format!(
                    "device node {}:{} not created",
                    ino.rmajor, ino.rminor
                ))
            }
            objtype::SOCKET => return Err("socket not created".to_string()),
            t => return Err(format!("object type {t} not exported")),
        }
        self.summary.objects += 1;
        self.progress.at(self.summary.bytes, self.summary.objects);
        Ok(())
    }

    /// Takes one MISC record: file data into its file, long symlink
    /// targets aside.
    fn record(
        &mut self,
        leaf: &LeafElm,
        load: &dyn Fn() -> Result<Vec<u8>, PfsError>,
    ) -> Result<(), BridgeError> {
        if !visible(leaf, self.tid) {
            return Ok(());
        }
        let b = &leaf.base;
        match b.rec_type {
            rectype::DATA if self.files.contains_key(&b.obj_id) => self.data(leaf, load),
            rectype::FIX if b.key == FIXKEY_SYMLINK => {
                let target = load()?;
                self.fix.insert(b.obj_id, target);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn data(
        &mut self,
        leaf: &LeafElm,
        load: &dyn Fn() -> Result<Vec<u8>, PfsError>,
    ) -> Result<(), BridgeError> {
        let b = &leaf.base;
        let what = || format!("object {:#018x} data record {:#018x}", b.obj_id, b.key);
        let len = i64::from(leaf.data_len);
        let Some(start) = b.key.checked_sub(len).filter(|&s| s >= 0 && len > 0) else {
            self.problems
                .push(format!("{}: bad length {}", what(), leaf.data_len));
            return Ok(());
        };
        let size = self.tree.inodes.get(&b.obj_id).map_or(0, |i| i.size);
        let start = start as u64;
        if start >= size {
            return Ok(());
        }
        let data = load()?;
        if data.len() as i64 != len || !data_crc_matches(rectype::DATA, &data, leaf.data_crc) {
            self.problems
                .push(format!("{}: payload fails its CRC", what()));
            return Ok(());
        }
        let n = (size - start).min(data.len() as u64) as usize;
        let same = self
            .open
            .as_ref()
            .is_some_and(|o| o.obj_id == b.obj_id && o.at + o.pending.len() as u64 == start);
        if !same {
            self.flush()?;
        }
        if self.open.as_ref().map(|o| o.obj_id) != Some(b.obj_id) {
            let Some(path) = self.files.get(&b.obj_id) else {
                return Ok(());
            };
            let file = fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| BridgeError::io(path, e))?;
            self.open = Some(OpenFile {
                obj_id: b.obj_id,
                file,
                path: path.clone(),
                at: start,
                pending: Vec::with_capacity(WRITE_WINDOW),
            });
        }
        if let Some(o) = &mut self.open {
            if o.pending.is_empty() {
                o.at = start;
            }
            o.pending.extend_from_slice(&data[..n]);
            if o.pending.len() >= WRITE_WINDOW {
                self.flush()?;
            }
        }
        self.summary.bytes += n as u64;
        self.progress.at(self.summary.bytes, self.summary.objects);
        Ok(())
    }

    /// Writes what the open file has pending.
    fn flush(&mut self) -> Result<(), BridgeError> {
        if let Some(o) = &mut self.open {
            if !o.pending.is_empty() {
                o.file
                    .write_all_at(&o.pending, o.at)
                    .map_err(|e| BridgeError::io(&o.path, e))?;
                o.at += o.pending.len() as u64;
                o.pending.clear();
            }
        }
        Ok(())
    }

    /// Symlinks, then attributes: files, then directories deepest first so
    /// that a read-only directory is closed only after its contents.
    fn finish(&mut self) {
        self.open = None;
        for (path, obj_id) in std::mem::take(&mut self.symlinks) {
            let Some(&ino) = self.tree.inodes.get(&obj_id) else {
                continue;
            };
            match self.symlink_target(obj_id, &ino) {
                Ok(t) => match std::os::unix::fs::symlink(OsStr::from_bytes(&t), &path) {
                    Ok(()) => {
                        self.summary.objects += 1;
                        self.attributes(&path, &ino, true);
                    }
                    Err(e) => self.problems.push(format!("{}: {e}", path.display())),
                },
                Err(why) => self.problems.push(format!("{}: {why}", path.display())),
            }
        }
        for (path, ino) in std::mem::take(&mut self.others) {
            self.attributes(&path, &ino, false);
        }
        for (path, ino) in std::mem::take(&mut self.dirs).into_iter().rev() {
            self.attributes(&path, &ino, false);
        }
    }

    fn symlink_target(&self, obj_id: i64, ino: &InodeData) -> Result<Vec<u8>, String> {
        let size = usize::try_from(ino.size).unwrap_or(usize::MAX);
        let t = if size <= INLINE_SYMLINK_MAX {
            ino.symlink[..size].to_vec()
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

    /// Owner (as root), mode and times; a symlink gets only owner and
    /// times. Failures are reported, the export goes on.
    fn attributes(&mut self, path: &Path, ino: &InodeData, symlink: bool) {
        let mut fail = |what: &str, e: String| {
            self.problems
                .push(format!("{}: cannot set {what}: {e}", path.display()))
        };
        if self.root_user {
            if let Err(e) = std::os::unix::fs::lchown(path, Some(ino.uid), Some(ino.gid)) {
                fail("owner", e.to_string());
            }
        }
        if !symlink {
            // setuid/setgid only survive for root, as with tar.
            let keep = if self.root_user { 0o7777 } else { 0o1777 };
            let mode = fs::Permissions::from_mode(u32::from(ino.mode) & keep);
            if let Err(e) = fs::set_permissions(path, mode) {
                fail("mode", e.to_string());
            }
        }
        let ts = |us: u64| {
            let us = us as i64;
            TimeSpec::new(us.div_euclid(1_000_000), us.rem_euclid(1_000_000) * 1000)
        };
        if let Err(e) = utimensat(
            None,
            path,
            &ts(ino.atime),
            &ts(ino.mtime),
            UtimensatFlags::NoFollowSymlink,
        ) {
            fail("times", e.desc().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_source(arg: &str) -> Result<(PathArg, Option<u64>), BridgeError> {
        super::parse_source(&arg.into())
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
        assert!(parse_source("/s/master@@zz").is_err());
        assert!(parse_source("/s/master@@").is_err());
        let odd = PathArg::from(Path::new(OsStr::from_bytes(b"/s/m\xff@@0x5")));
        assert_eq!(
            super::parse_source(&odd).unwrap(),
            (Path::new(OsStr::from_bytes(b"/s/m\xff")).into(), Some(5))
        );
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

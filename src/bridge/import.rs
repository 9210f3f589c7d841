//! `hammer import`: a directory tree into a master PFS as one new TID, in
//! HAMMER's record formats, diffed against the PFS's live state so that
//! unchanged files cost nothing and removed ones get a delete_tid.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::stat::{major, minor};
use nix::unistd::{lseek, Whence};

use super::exclude::{ExcludeOptions, Excludes};
use super::listing::Lister;
use super::{micros, open_pfs, BridgeError};
use crate::events::{self, Events, Start};
use crate::fsio::read_full;
use crate::idhash::{IdMap, IdSet};
use crate::model::format::{
    block_at, collision_budget, direntry, namekey, objtype, InodeData, CAP_DIRHASH_ALG1,
    CAP_DIR_LOCAL_INO, FIXKEY_SYMLINK, INLINE_SYMLINK_MAX, XBUFSIZE,
};
use crate::model::tree::{Entry, Tree};
use crate::ondisk::{rectype, LeafElm, LOCALIZE_INODE, LOCALIZE_MISC};
use crate::patharg::PathArg;
use crate::pfs::store::{RecordId, Txn};
use crate::pfs::Pfs;
use crate::progress::Progress;
use crate::wire::crc::data_crc_matches;

/// How often a file that changes while being read is read again.
const READ_TRIES: u32 = 5;
/// File data is read this many bytes at a time (whole blocks), not one
/// read per block.
const READ_WINDOW: u64 = 1 << 20;
/// More than the granularity of file timestamps (a kernel tick).
const TIMESTAMP_SLACK: Duration = Duration::from_millis(20);
/// The root directory of every PFS.
const ROOT_OBJ: i64 = 1;
/// cap_flags of directories import creates: DIR_LOCAL_INO and ALG1, as a
/// version 7 filesystem gives them (kernel-semantics.md §2.1).
const NEW_DIR_CAPS: u8 = CAP_DIR_LOCAL_INO | CAP_DIRHASH_ALG1;

#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The progress line: file bytes done of the tree's, counted beside
    /// the import by a second walk.
    pub progress: Progress,
    /// `-j`: the JSON-lines events.
    pub events: Events,
    /// What is left out of the tree.
    pub excludes: ExcludeOptions,
}

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// The TID the PFS holds the tree as of (the existing sync point when
    /// nothing changed).
    pub tid: u64,
    /// Objects in the tree, the root included.
    pub objects: u64,
    /// Objects created or given new records.
    pub changed: u64,
    /// Objects deleted.
    pub removed: u64,
    /// File bytes read.
    pub bytes: u64,
    /// Files and directories that could not be read and were skipped
    /// (each keeps its previous version, if it had one).
    pub skipped: u64,
}

/// A regular file's contents as import reads them: `read` on the opened
/// file, from the offset import `lseek`s it to. The command reads the file
/// itself; `import_with` lets a caller put a reader in between (tests
/// inject short reads, EOF and I/O errors there).
pub type Contents<'f> = Box<dyn Read + 'f>;

/// Imports the tree at `dir` into the master PFS `pfs_path`. Notes about
/// skipped entries go to `diag`; nothing is committed on error.
pub fn import(
    dir: &Path,
    pfs_path: &PathArg,
    opts: ImportOptions,
    diag: &mut dyn Write,
) -> Result<ImportSummary, BridgeError> {
    import_with(dir, pfs_path, opts, diag, &mut |f| Box::new(f))
}

/// `import`, reading every regular file's contents through what
/// `contents` makes of the opened file.
pub fn import_with(
    dir: &Path,
    pfs_path: &PathArg,
    opts: ImportOptions,
    diag: &mut dyn Write,
    contents: &mut dyn FnMut(&File) -> Contents<'_>,
) -> Result<ImportSummary, BridgeError> {
    let (mut store, pfsd) = open_pfs(pfs_path)?;
    if pfsd.is_slave() {
        return Err(BridgeError::Slave(pfs_path.to_string()));
    }
    let root_meta = fs::metadata(dir).map_err(|e| BridgeError::io(dir, e))?;
    if !root_meta.is_dir() {
        return Err(BridgeError::NotDir(dir.display().to_string()));
    }
    let excludes = Arc::new(Excludes::new(dir, &opts.excludes)?);
    let store_dir = fs::metadata(store.root()).map_err(|e| BridgeError::io(store.root(), e))?;
    let skip = (store_dir.dev(), store_dir.ino());
    // Before the live tree is loaded: the walk overlaps it.
    let lister = Lister::start(dir, skip, Arc::clone(&excludes));
    let pfs_id = store.pfs_id();
    let txn = store.begin()?;
    let mut old = Tree::default();
    txn.scan(LOCALIZE_INODE..=LOCALIZE_INODE, |leaf, load| {
        old.add(u64::MAX, leaf, load)
    })?;
    // Entries of version-1 directories are MISC records (kernel-semantics.md
    // §2.2), found by directory: a scan of MISC would read every data record
    // too (40% of the rows of a copy of /usr/share).
    let mut v1_dirs: Vec<i64> = old
        .inodes
        .iter()
        .filter(|(_, i)| i.obj_type == objtype::DIRECTORY && i.cap_flags & CAP_DIR_LOCAL_INO == 0)
        .map(|(&id, _)| id)
        .collect();
    v1_dirs.sort_unstable();
    for dir in v1_dirs {
        txn.scan_of(LOCALIZE_MISC, dir, rectype::DIRENTRY, |leaf, load| {
            old.add(u64::MAX, leaf, load)
        })?;
    }
    let Some(&old_root) = old.inodes.get(&ROOT_OBJ) else {
        return Err(BridgeError::NoRoot(pfs_path.to_string()));
    };
    // Undecodable live records are left as they are; their names are
    // written anew.
    for p in old.problems.drain(..) {
        let _ = writeln!(diag, "hammer: import: {pfs_path}: {p}");
    }
    let origins = txn.origins()?;
    let mut im = Importer {
        origins,
        seen: Vec::new(),
        txn,
        pfs_id,
        old,
        kept: IdSet::from_iter([ROOT_OBJ]),
        links: IdMap::default(),
        skip,
        lister,
        records: 0,
        summary: ImportSummary::default(),
        progress: opts.progress.clone(),
        events: opts.events.clone(),
        skipped: 0,
        diag,
        contents,
        buf: vec![0u8; (READ_WINDOW + XBUFSIZE) as usize],
    };
    let t0 = std::time::Instant::now();
    opts.events.start(
        None,
        &Start {
            pfs: pfs_path.to_string(),
            pfs_id: Some(pfs_id),
            shared_uuid: Some(pfsd.shared_uuid.to_string()),
            begin_tid: Some(events::tid(pfsd.sync_end_tid)),
            ..Start::default()
        },
    );
    let r = with_total(dir, &excludes, &opts.progress, || {
        im.run(dir, &root_meta, old_root)
    });
    opts.progress.finish();
    r?;
    let mut summary = im.summary;
    let records = im.records;
    if records == 0 {
        // Nothing changed: no TID is spent, the tree is the current state.
        drop(im);
        summary.tid = store.flush_tid()?;
    } else {
        im.txn.update_origins(&im.origins, &im.seen)?;
        // Each import is a snapshot of the PFS, named after its source,
        // which snapls lists (cli.md §13.4).
        let mut note = b"import ".to_vec();
        note.extend_from_slice(dir.as_os_str().as_bytes());
        let secs = u64::try_from(crate::ctime::now_secs()).unwrap_or(0);
        im.txn.add_snapshot(secs.saturating_mul(1_000_000), &note)?;
        summary.tid = im.txn.commit()?;
    }
    let span = (pfsd.sync_end_tid, summary.tid);
    let took = t0.elapsed().as_secs_f64();
    opts.events.batch(None, span, records, summary.bytes, took);
    opts.events.sync(None, summary.tid);
    Ok(summary)
}

/// A file with several links inside the tree: one object, its inode
/// written once all links are counted.
struct Link {
    obj_id: i64,
    count: u64,
    ino: InodeData,
    old: Option<InodeData>,
}

struct Importer<'t, 'd, 'c> {
    /// Which host file each old object was imported from: a file or
    /// directory found under another name keeps its object (a rename
    /// costs its directory entries, not its data).
    origins: IdMap<(u64, u64), i64>,
    /// The same for this import's objects.
    seen: Vec<((u64, u64), i64)>,
    txn: Txn<'t>,
    pfs_id: u32,
    /// The live state before this import; directories are taken out of it
    /// as they are visited.
    old: Tree,
    /// Old objects still in the tree.
    kept: IdSet<i64>,
    links: IdMap<(u64, u64), Link>,
    /// The store's own directory: never imported into itself.
    skip: (u64, u64),
    /// The tree's directories, listed ahead.
    lister: Lister,
    /// Records put or deleted.
    records: u64,
    summary: ImportSummary,
    progress: Progress,
    events: Events,
    /// Data bytes of the files found unchanged (not read): done too.
    skipped: u64,
    diag: &'d mut dyn Write,
    contents: &'c mut dyn FnMut(&File) -> Contents<'_>,
    buf: Vec<u8>,
}

/// A directory still to visit.
struct Pending {
    path: PathBuf,
    obj_id: i64,
    caps: u8,
}

fn objtype_of(meta: &Metadata) -> u8 {
    let ft = meta.file_type();
    if ft.is_dir() {
        objtype::DIRECTORY
    } else if ft.is_file() {
        objtype::REGFILE
    } else if ft.is_symlink() {
        objtype::SOFTLINK
    } else if ft.is_fifo() {
        objtype::FIFO
    } else if ft.is_char_device() {
        objtype::CDEV
    } else if ft.is_block_device() {
        objtype::BDEV
    } else {
        objtype::SOCKET
    }
}

/// The inode fields a stat gives (size and symlink set by the caller).
fn inode_of(meta: &Metadata, obj_type: u8, parent: i64) -> InodeData {
    let dev = matches!(obj_type, objtype::CDEV | objtype::BDEV);
    InodeData {
        mode: (meta.mode() & 0o7777) as u16,
        rmajor: if dev { major(meta.rdev()) as u32 } else { 0 },
        rminor: if dev { minor(meta.rdev()) as u32 } else { 0 },
        ctime: micros(meta.ctime(), meta.ctime_nsec()),
        parent_obj_id: parent,
        uid: meta.uid(),
        gid: meta.gid(),
        obj_type,
        nlinks: 1,
        size: if obj_type == objtype::REGFILE {
            meta.size()
        } else {
            0
        },
        mtime: micros(meta.mtime(), meta.mtime_nsec()),
        atime: micros(meta.atime(), meta.atime_nsec()),
        ..Default::default()
    }
}

/// Whether the file changed so recently that a write during the read could
/// leave its timestamps as they are (they advance only once per tick).
fn racy(meta: &Metadata, now: SystemTime) -> bool {
    let ctime = UNIX_EPOCH + Duration::new(meta.ctime().max(0) as u64, meta.ctime_nsec() as u32);
    now.duration_since(ctime)
        .map_or(true, |age| age < TIMESTAMP_SLACK)
}

/// Whether a file's contents are still those its object holds: the same
/// size, mtime and ctime (ctime too: a writer that puts the mtime back
/// still moves it).
fn same_content(o: &InodeData, m: &Metadata) -> bool {
    o.size == m.size()
        && o.mtime == micros(m.mtime(), m.mtime_nsec())
        && o.ctime == micros(m.ctime(), m.ctime_nsec())
}

/// Whether a file is the same as when it was first looked at.
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    (
        a.dev(),
        a.ino(),
        a.size(),
        a.mtime(),
        a.mtime_nsec(),
        a.ctime(),
        a.ctime_nsec(),
    ) == (
        b.dev(),
        b.ino(),
        b.size(),
        b.mtime(),
        b.mtime_nsec(),
        b.ctime(),
        b.ctime_nsec(),
    )
}

/// Opens for reading without following a symlink or blocking on a FIFO
/// that replaced the file since it was looked at.
fn open_nofollow(path: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

fn dir_lo(caps: u8) -> u32 {
    if caps & CAP_DIR_LOCAL_INO != 0 {
        LOCALIZE_INODE
    } else {
        LOCALIZE_MISC
    }
}

fn inode_id(obj_id: i64) -> RecordId {
    RecordId {
        localization: LOCALIZE_INODE,
        obj_id,
        rec_type: rectype::INODE,
        key: 0,
    }
}

impl Importer<'_, '_, '_> {
    fn run(
        &mut self,
        dir: &Path,
        root_meta: &Metadata,
        old_root: InodeData,
    ) -> Result<(), BridgeError> {
        let mut root = inode_of(root_meta, objtype::DIRECTORY, 0);
        root.cap_flags = old_root.cap_flags;
        self.put_inode(ROOT_OBJ, &root, Some(&old_root))?;
        self.summary.objects = 1;
        let mut stack = vec![Pending {
            path: dir.to_path_buf(),
            obj_id: ROOT_OBJ,
            caps: old_root.cap_flags,
        }];
        while let Some(p) = stack.pop() {
            self.import_dir(p, &mut stack)?;
        }
        self.finish_links()?;
        self.remove_unkept()
    }

    fn put(&mut self, id: &RecordId, obj_type: u8, data: &[u8]) -> Result<(), BridgeError> {
        self.records += 1;
        Ok(self.txn.put(id, obj_type, data)?)
    }

    fn delete(&mut self, id: &RecordId) -> Result<(), BridgeError> {
        if self.txn.delete(id)? {
            self.records += 1;
        }
        Ok(())
    }

    /// Writes the inode unless only its atime differs (kernel-semantics.md
    /// §2.1).
    fn put_inode(
        &mut self,
        obj_id: i64,
        ino: &InodeData,
        old: Option<&InodeData>,
    ) -> Result<(), BridgeError> {
        if old.is_some_and(|o| o.same_but_atime(ino)) {
            return Ok(());
        }
        self.summary.changed += 1;
        self.put(&inode_id(obj_id), ino.obj_type, &ino.encode())
    }

    fn note(&mut self, msg: String) {
        let diag = &mut self.diag;
        self.progress.suspend(|| {
            let _ = writeln!(diag, "hammer: import: {msg}");
        });
    }

    fn show_progress(&self) {
        let done = self.summary.bytes + self.skipped;
        self.progress.at(done, self.summary.objects);
    }

    fn import_dir(&mut self, p: Pending, stack: &mut Vec<Pending>) -> Result<(), BridgeError> {
        let entries = match self.lister.entries(&p.path) {
            Ok(entries) => entries,
            // Unreadable (or gone): what the PFS holds of it stays. The
            // root is no entry to skip.
            Err(e) if p.obj_id != ROOT_OBJ => {
                let kept = match self.old.inodes.contains_key(&p.obj_id) {
                    true => "its previous contents kept",
                    false => "its contents not imported",
                };
                self.told_skipped(&p.path, &why(&e), kept);
                self.keep_old(p.obj_id);
                return Ok(());
            }
            Err(e) => return Err(BridgeError::io(&p.path, e)),
        };
        // Old and new entries both in name order, walked side by side: no
        // set of names to build or look up per directory.
        let mut old_entries = self.old.dirs.remove(&p.obj_id).unwrap_or_default();
        old_entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut kept = vec![false; old_entries.len()];
        let mut next_old = 0;
        // Keys in use, made when the first entry is added (rare in a
        // re-import).
        let mut occupied: Option<IdSet<i64>> = None;
        for listed in entries {
            // Joined only where needed: most entries are unchanged.
            let path = || p.path.join(&listed.name);
            let meta = match listed.meta {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.note(format!(
                        "{}: vanished during import, not imported",
                        path().display()
                    ));
                    continue;
                }
                Err(e) => return Err(BridgeError::io(&path(), e)),
            };
            if (meta.dev(), meta.ino()) == self.skip {
                self.note(format!(
                    "{}: the store itself, not imported",
                    path().display()
                ));
                continue;
            }
            let name = listed.name.as_bytes();
            while old_entries
                .get(next_old)
                .is_some_and(|e| e.name.as_slice() < name)
            {
                next_old += 1;
            }
            // Of several old entries with this name (a damaged PFS), the
            // first is this one; the others are deleted below.
            let old_at = old_entries
                .get(next_old)
                .is_some_and(|e| e.name == name)
                .then_some(next_old);
            let old_entry = old_at.map(|i| &old_entries[i]);
            let Some(obj_id) =
                self.import_object(&path, &meta, listed.target, old_entry, &p, stack)?
            else {
                continue;
            };
            // Matched: kept, or replaced just below.
            if let Some(i) = old_at {
                kept[i] = true;
            }
            match old_entry {
                Some(e) if e.obj_id == obj_id => {}
                other => {
                    if let Some(e) = other {
                        self.delete_entry(p.obj_id, e)?;
                    }
                    let occupied =
                        occupied.get_or_insert_with(|| old_entries.iter().map(|e| e.key).collect());
                    self.add_entry(&p, name, obj_id, objtype_of(&meta), occupied, &path)?;
                }
            }
        }
        for (e, _) in old_entries.iter().zip(kept).filter(|(_, k)| !k) {
            self.delete_entry(p.obj_id, e)?;
        }
        Ok(())
    }

    /// Skips a file or directory that cannot be read, with one line naming
    /// it and why, and a `skipped` event: its previous version, object
    /// `old` (and all below it), stays as it was. Returns that object.
    fn skip(&mut self, path: &Path, why: &str, old: Option<i64>) -> Option<i64> {
        let kept = match old {
            Some(_) => "its previous version kept",
            None => "not imported",
        };
        self.told_skipped(path, why, kept);
        let old = old?;
        self.summary.objects += 1;
        self.keep_old(old);
        Some(old)
    }

    /// Counts a skipped entry and tells it: a line and a `skipped` event.
    fn told_skipped(&mut self, path: &Path, why: &str, kept: &str) {
        self.summary.skipped += 1;
        self.note(format!("{}: {why}; skipped, {kept}", path.display()));
        self.events.skipped(&path.display().to_string(), why);
    }

    /// Keeps object `obj` and, for a directory, everything below it as
    /// the PFS holds them.
    fn keep_old(&mut self, obj: i64) {
        let mut stack = vec![obj];
        while let Some(o) = stack.pop() {
            self.kept.insert(o);
            if let Some(entries) = self.old.dirs.remove(&o) {
                stack.extend(entries.iter().map(|e| e.obj_id));
            }
        }
    }

    fn delete_entry(&mut self, dir: i64, e: &Entry) -> Result<(), BridgeError> {
        self.delete(&RecordId {
            localization: e.lo_type,
            obj_id: dir,
            rec_type: rectype::DIRENTRY,
            key: e.key,
        })
    }

    /// A new entry at the first free key from the name key; keys of
    /// entries deleted by this import stay occupied, as pending deletions
    /// do in the kernel (kernel-semantics.md §2.2).
    fn add_entry(
        &mut self,
        dir: &Pending,
        name: &[u8],
        obj_id: i64,
        obj_type: u8,
        occupied: &mut IdSet<i64>,
        path: &dyn Fn() -> PathBuf,
    ) -> Result<(), BridgeError> {
        let base = namekey(dir.caps, name);
        let mut key = base;
        while occupied.contains(&key) {
            if key - base >= collision_budget(dir.caps) {
                return Err(BridgeError::KeySpace(path().display().to_string()));
            }
            key += 1;
        }
        occupied.insert(key);
        let id = RecordId {
            localization: dir_lo(dir.caps),
            obj_id: dir.obj_id,
            rec_type: rectype::DIRENTRY,
            key,
        };
        self.put(&id, obj_type, &direntry(obj_id, self.pfs_id, name))
    }

    /// Brings the object behind one entry up to date; returns its obj_id,
    /// or None when the entry vanished before it could be read.
    fn import_object(
        &mut self,
        path: &dyn Fn() -> PathBuf,
        meta: &Metadata,
        target: Option<OsString>,
        old_entry: Option<&Entry>,
        dir: &Pending,
        stack: &mut Vec<Pending>,
    ) -> Result<Option<i64>, BridgeError> {
        let otype = objtype_of(meta);
        let link_key = (meta.dev(), meta.ino());
        let hard = otype != objtype::DIRECTORY && meta.nlink() > 1;
        if hard {
            if let Some(l) = self.links.get_mut(&link_key) {
                l.count += 1;
                return Ok(Some(l.obj_id));
            }
        }
        // An old object is reused when it was imported from the same host
        // file (renamed or not), else when the name still holds one of
        // the same type (a file replaced by a new one, as editors save);
        // never one another entry already claimed.
        let usable = |id: i64| {
            let ino = self.old.inodes.get(&id)?;
            (ino.obj_type == otype && !self.kept.contains(&id)).then_some((id, *ino))
        };
        let reuse = self
            .origins
            .get(&link_key)
            .and_then(|&id| usable(id))
            .or_else(|| old_entry.and_then(|e| usable(e.obj_id)));
        // An unchanged file is neither opened nor read: one lstat, as
        // rsync's quick check (its open, two fstats and close were 80% of
        // the syscalls of a re-import with 1% of the files changed).
        let unchanged = otype == objtype::REGFILE
            && reuse.is_some_and(|(_, o)| same_content(&o, meta))
            && !racy(meta, SystemTime::now());
        // A regular file is opened before anything is written, so one that
        // vanishes leaves no trace.
        let file = if otype == objtype::REGFILE && !unchanged {
            match open_nofollow(&path()) {
                Ok(f) => Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.note(format!(
                        "{}: vanished during import, not imported",
                        path().display()
                    ));
                    return Ok(None);
                }
                Err(e) => return Ok(self.skip(&path(), &why(&e), reuse.map(|r| r.0))),
            }
        } else {
            None
        };
        let (obj_id, old) = match reuse {
            Some((id, ino)) => (id, Some(ino)),
            None => (self.txn.alloc_obj_id()?, None),
        };
        self.kept.insert(obj_id);
        self.seen.push((link_key, obj_id));
        self.summary.objects += 1;
        let mut ino = inode_of(meta, otype, dir.obj_id);
        match otype {
            objtype::REGFILE => match file {
                Some(f) => {
                    // A file that cannot be read whole leaves nothing of
                    // this attempt: its previous version stays.
                    let records = self.records;
                    self.txn.mark()?;
                    match self.import_file(&path(), f, obj_id, old.as_ref()) {
                        Ok(m) => {
                            self.txn.keep_since_mark()?;
                            ino = inode_of(&m, otype, dir.obj_id);
                        }
                        Err(e @ (BridgeError::Io { .. } | BridgeError::Unstable { .. })) => {
                            self.txn.undo_to_mark()?;
                            self.records = records;
                            self.summary.objects -= 1;
                            if old.is_none() {
                                self.kept.remove(&obj_id);
                                self.seen.pop();
                            }
                            let why = match &e {
                                BridgeError::Io { source, .. } => why(source),
                                BridgeError::Unstable { tries, .. } => {
                                    format!("kept changing while being read ({tries} tries)")
                                }
                                e => e.to_string(),
                            };
                            return Ok(self.skip(&path(), &why, old.map(|_| obj_id)));
                        }
                        Err(e) => {
                            self.txn.undo_to_mark()?;
                            return Err(e);
                        }
                    }
                }
                None => self.skipped += data_bytes(meta),
            },
            objtype::SOFTLINK => {
                // The listing reads the target of every entry it lstat'ed
                // as a symlink.
                let target = target.ok_or_else(|| {
                    BridgeError::io(
                        &path(),
                        io::Error::other("symlink listed without its target"),
                    )
                })?;
                self.import_symlink(&target, obj_id, old.as_ref(), &mut ino)?
            }
            objtype::DIRECTORY => {
                ino.cap_flags = old.map_or(NEW_DIR_CAPS, |o| o.cap_flags);
                stack.push(Pending {
                    path: path(),
                    obj_id,
                    caps: ino.cap_flags,
                });
            }
            _ => {}
        }
        self.show_progress();
        if hard {
            self.links.insert(
                link_key,
                Link {
                    obj_id,
                    count: 1,
                    ino,
                    old,
                },
            );
        } else {
            self.put_inode(obj_id, &ino, old.as_ref())?;
        }
        Ok(Some(obj_id))
    }

    /// Reads the file in HAMMER's blocks and puts every block whose bytes
    /// differ from the live record; retried while the file changes under
    /// it or changed too recently to tell. Returns the stat the content
    /// belongs to.
    fn import_file(
        &mut self,
        path: &Path,
        mut file: File,
        obj_id: i64,
        old: Option<&InodeData>,
    ) -> Result<Metadata, BridgeError> {
        let io = |e| BridgeError::io(path, e);
        for attempt in 0..READ_TRIES {
            if attempt > 0 {
                file = open_nofollow(path).map_err(io)?;
            }
            let started = SystemTime::now();
            let before = file.metadata().map_err(io)?;
            if racy(&before, started) {
                thread::sleep(TIMESTAMP_SLACK);
                continue;
            }
            let unchanged = old.is_some_and(|o| same_content(o, &before));
            if !before.is_file() {
                continue;
            }
            if !unchanged && !self.import_blocks(path, &file, obj_id, before.size())? {
                continue;
            }
            if unchanged {
                self.skipped += data_bytes(&before);
            }
            let after = file.metadata().map_err(io)?;
            if same_file(&before, &after) {
                return Ok(after);
            }
        }
        Err(BridgeError::Unstable {
            path: path.display().to_string(),
            tries: READ_TRIES,
        })
    }

    /// Puts the blocks of a file of `size` bytes; false if it ended
    /// before that (it shrank while being read: the caller reads it again).
    fn import_blocks(
        &mut self,
        path: &Path,
        file: &File,
        obj_id: i64,
        size: u64,
    ) -> Result<bool, BridgeError> {
        let io = |e| BridgeError::io(path, e);
        let mut existing: IdMap<i64, LeafElm> = self
            .txn
            .live_of(LOCALIZE_MISC, obj_id)?
            .into_iter()
            .filter(|l| l.base.rec_type == rectype::DATA)
            .map(|l| (l.base.key, l))
            .collect();
        let fd = file.as_raw_fd();
        let mut reader = (self.contents)(file);
        let mut off = 0u64;
        while off < size {
            // Holes stay holes: blocks without data get no record
            // (kernel-semantics.md §2.3).
            let data = match lseek(fd, off as i64, Whence::SeekData) {
                Ok(d) => d as u64,
                Err(Errno::ENXIO) => break,
                Err(_) => off,
            };
            if data >= size {
                break;
            }
            let region_end = match lseek(fd, data as i64, Whence::SeekHole) {
                Ok(h) => (h as u64).min(size),
                Err(_) => size,
            };
            let mut pos = block_at(data, size).0;
            lseek(fd, pos as i64, Whence::SeekSet).map_err(|e| io(e.into()))?;
            while pos < region_end {
                // Whole blocks, up to a window's worth, in one read.
                let mut blocks = Vec::new();
                let mut end = pos;
                while end < region_end && (blocks.is_empty() || end - pos < READ_WINDOW) {
                    let (start, len) = block_at(end, size);
                    blocks.push((start, len as usize));
                    end = start + len;
                }
                let want = (end - pos) as usize;
                let got = read_full(&mut reader, &mut self.buf[..want]).map_err(io)?;
                self.summary.bytes += got as u64;
                if (got as u64) < end.min(size) - pos {
                    return Ok(false);
                }
                // The last block is rounded up past the end of the file.
                self.buf[got..want].fill(0);
                for (start, len) in blocks {
                    let at = (start - pos) as usize;
                    let block = &self.buf[at..at + len];
                    let key = (start + len as u64) as i64;
                    let id = RecordId {
                        localization: LOCALIZE_MISC,
                        obj_id,
                        rec_type: rectype::DATA,
                        key,
                    };
                    match existing.remove(&key) {
                        // The CRC first: a block that changed is known so
                        // without reading the old payload back from disk
                        // (for 1% of /usr/share's files rewritten, those
                        // reads were two thirds of the import's time).
                        Some(l)
                            if l.data_len as usize == len
                                && data_crc_matches(rectype::DATA, block, l.data_crc)
                                && self.txn.payload(&l)? == block => {}
                        Some(_) => {
                            self.records += 1;
                            self.txn.put(&id, objtype::REGFILE, block)?;
                        }
                        None => {
                            self.records += 1;
                            self.txn.put_new(&id, objtype::REGFILE, block)?;
                        }
                    }
                }
                pos = end;
                self.show_progress();
            }
            off = pos;
        }
        // Records past the end or over what is now a hole.
        let mut gone: Vec<_> = existing.into_values().collect();
        gone.sort_by_key(|l| l.base.key);
        for l in gone {
            self.delete(&RecordId {
                localization: LOCALIZE_MISC,
                obj_id,
                rec_type: rectype::DATA,
                key: l.base.key,
            })?;
        }
        Ok(true)
    }

    /// A symlink's target: inline up to 24 bytes, else a FIX record
    /// (kernel-semantics.md §2.4).
    fn import_symlink(
        &mut self,
        target: &OsStr,
        obj_id: i64,
        old: Option<&InodeData>,
        ino: &mut InodeData,
    ) -> Result<(), BridgeError> {
        let t = target.as_bytes();
        ino.size = t.len() as u64;
        // Short before and after: no FIX record to look for (none is made
        // for a short target), one B-Tree lookup saved for most symlinks.
        if t.len() <= INLINE_SYMLINK_MAX && old.is_some_and(|o| o.size <= INLINE_SYMLINK_MAX as u64)
        {
            ino.symlink[..t.len()].copy_from_slice(t);
            return Ok(());
        }
        let fix = RecordId {
            localization: LOCALIZE_MISC,
            obj_id,
            rec_type: rectype::FIX,
            key: FIXKEY_SYMLINK,
        };
        let live: Vec<LeafElm> = self
            .txn
            .live_of(LOCALIZE_MISC, obj_id)?
            .into_iter()
            .filter(|l| l.base.rec_type == rectype::FIX)
            .collect();
        if t.len() <= INLINE_SYMLINK_MAX {
            ino.symlink[..t.len()].copy_from_slice(t);
            if !live.is_empty() {
                self.delete(&fix)?;
            }
        } else {
            match live.first() {
                Some(l) if self.txn.payload(l)? == t => {}
                Some(_) => self.put(&fix, objtype::SOFTLINK, t)?,
                None => {
                    self.records += 1;
                    self.txn.put_new(&fix, objtype::SOFTLINK, t)?;
                }
            }
        }
        Ok(())
    }

    fn finish_links(&mut self) -> Result<(), BridgeError> {
        let mut links: Vec<Link> = self.links.drain().map(|(_, l)| l).collect();
        links.sort_by_key(|l| l.obj_id);
        for mut l in links {
            l.ino.nlinks = l.count;
            self.put_inode(l.obj_id, &l.ino, l.old.as_ref())?;
        }
        Ok(())
    }

    /// Deletes every record of the old objects no entry refers to any more.
    fn remove_unkept(&mut self) -> Result<(), BridgeError> {
        let mut gone: Vec<i64> = self
            .old
            .inodes
            .keys()
            .copied()
            .filter(|id| !self.kept.contains(id))
            .collect();
        gone.sort_unstable();
        for obj_id in gone {
            self.summary.removed += 1;
            for lo in [LOCALIZE_INODE, LOCALIZE_MISC] {
                for l in self.txn.live_of(lo, obj_id)? {
                    self.delete(&RecordId {
                        localization: lo,
                        obj_id,
                        rec_type: l.base.rec_type,
                        key: l.base.key,
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// Runs `import` while a second thread walks `dir` to give the progress
/// line its total (file data bytes, as `data_bytes` counts them); the walk
/// stops when the import ends first.
fn with_total<T>(
    dir: &Path,
    excludes: &Excludes,
    progress: &Progress,
    import: impl FnOnce() -> T,
) -> T {
    if !progress.counts() {
        return import();
    }
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            if let Some(total) = tree_bytes(dir, excludes, &stop) {
                progress.set_total(total);
            }
        });
        let r = import();
        stop.store(true, Ordering::Relaxed);
        r
    })
}

/// The data bytes of the regular files under `dir` (symlinks not
/// followed); `None` if stopped. Unreadable parts count nothing: the
/// import itself reports them.
fn tree_bytes(dir: &Path, excludes: &Excludes, stop: &AtomicBool) -> Option<u64> {
    let mut total = 0;
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for ent in rd.flatten() {
            let Ok(m) = ent.metadata() else { continue };
            if excludes.excluded(&ent.path(), m.is_dir()) {
                continue;
            }
            if m.is_dir() && excludes.enters(m.dev()) {
                dirs.push(ent.path());
            } else if m.is_file() {
                total += data_bytes(&m);
            }
        }
    }
    Some(total)
}

/// Why a file could not be read, as the C library says it.
fn why(e: &io::Error) -> String {
    e.raw_os_error()
        .map_or_else(|| e.to_string(), crate::errno::errno_desc)
}

/// A file's bytes as import reads them: holes are not read.
fn data_bytes(m: &Metadata) -> u64 {
    m.size().min(m.blocks().saturating_mul(512))
}

//! The read-only FUSE filesystem of `hammer mount`: a store PFS's tree as
//! of a TID (or following its sync point), and under `@@` the tree as of
//! each TID at which the PFS changed. Every request reads through one
//! `View` (one read transaction), so a batch being written is never seen
//! half applied, and a directory is listed as of the TID it was opened at;
//! nothing is ever written.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::hash::BuildHasher;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    fuse_forget_one, FileAttr, FileType, Filesystem, KernelConfig, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyEntry, ReplyOpen, Request,
};
use nix::errno::Errno;

use super::inotable::InoTable;
use crate::bridge::export::bad_name;
use crate::model::format::parse_direntry;
use crate::model::format::{
    collision_budget, namekey, objtype, InodeData, CAP_DIR_LOCAL_INO, FIXKEY_SYMLINK,
    INLINE_SYMLINK_MAX,
};
use crate::ondisk::{rectype, LOCALIZE_INODE, LOCALIZE_MISC};
use crate::pfs::store::{Store, View};
use crate::pfs::PfsError;

/// How long the kernel may keep what it was told: short, as a view that
/// follows the sync point moves.
const TTL: Duration = Duration::from_secs(1);
/// The root directory's object, in every view.
const ROOT_OBJ: i64 = 1;
/// FUSE's root, and the `@@` directory of the TIDs.
const ROOT_INO: u64 = 1;
const HISTORY_INO: u64 = 2;
/// The name of the directory of TIDs in the root.
pub const HISTORY_NAME: &str = "@@";
/// A view: the mount's own (`LIVE`: its TID, or the sync point now) or a
/// TID under `@@`.
const LIVE: u64 = 0;
/// Where a listing's entries sit, as in HAMMER's readdir: `.`, `..`, (in
/// the root, with `-a`) `@@`, then the directory's entries at their keys
/// (the offset after an entry is its key plus one), so an offset means the
/// same whatever is committed while the listing is read. Keys below
/// `FIRST_KEY` are never name keys (kernel-semantics.md §2.2).
const DOT: i64 = 0;
const DOTDOT: i64 = 1;
const HISTORY_POS: i64 = 2;
const FIRST_KEY: i64 = 3;

/// FUSE inode numbers for (view, object) pairs. A pair's number is its
/// keyed hash, or the next free number after it if another pair the kernel
/// holds has that one: the same object in one view has one number, so hard
/// links share it, and keeps it after the kernel forgot it, so tools that
/// tell hard links by inode number over a long walk (tar, rsync, du) still
/// do. Only the pairs the kernel holds are kept, each with the lookups it
/// has not forgotten: memory follows what the kernel caches.
#[derive(Default)]
struct Inos {
    keys: RandomState,
    held: InoTable,
    /// The held pairs whose number is not their hash.
    moved: HashMap<(u64, i64), u64>,
}

impl Inos {
    /// The number of (view, obj_id): the one it is held under, or the one
    /// a lookup would give it now.
    fn number(&self, view: u64, obj_id: i64) -> u64 {
        let node = (view, obj_id);
        if node == (LIVE, ROOT_OBJ) {
            return ROOT_INO;
        }
        if let Some(&ino) = self.moved.get(&node) {
            return ino;
        }
        let mut ino = self.keys.hash_one(node);
        loop {
            match self.held.get(ino) {
                _ if ino <= HISTORY_INO => {}
                None => return ino,
                Some(h) if h.node == node => return ino,
                Some(_) => {}
            }
            ino = ino.wrapping_add(1);
        }
    }

    /// `number`, counting one more lookup of the pair by the kernel;
    /// ENOMEM if the table could not grow.
    fn hold(&mut self, view: u64, obj_id: i64) -> Result<u64, i32> {
        let ino = self.number(view, obj_id);
        if ino != ROOT_INO {
            let node = (view, obj_id);
            self.held.hold(ino, node).map_err(|_| libc::ENOMEM)?;
            if ino != self.keys.hash_one(node) {
                self.moved.insert(node, ino);
            }
        }
        Ok(ino)
    }

    /// The kernel dropped `lookups` lookups of `ino`.
    fn forget(&mut self, ino: u64, lookups: u64) {
        if let Some(node) = self.held.forget(ino, lookups) {
            self.moved.remove(&node);
        }
    }

    fn node(&self, ino: u64) -> Option<(u64, i64)> {
        match ino {
            ROOT_INO => Some((LIVE, ROOT_OBJ)),
            _ => self.held.get(ino).map(|h| h.node),
        }
    }
}

pub struct HammerFs {
    store: Store,
    /// The TID given on the command line, if any.
    fixed: Option<u64>,
    /// Whether the root lists `@@`: it is reached by name either way, and
    /// unlisted a walk of the tree (find, du, tar) sees the tree alone.
    show_history: bool,
    inos: Inos,
    /// Entries hidden for their names, each reported once.
    hidden: HashSet<(u64, i64, Vec<u8>)>,
    /// The TIDs listed under `@@`, and the TID they were listed as of.
    history: Option<(u64, Vec<u64>)>,
}

fn errno(e: PfsError) -> i32 {
    e.errno() as i32
}

fn time(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

fn kind(obj_type: u8) -> FileType {
    match obj_type {
        objtype::DIRECTORY => FileType::Directory,
        objtype::SOFTLINK => FileType::Symlink,
        objtype::FIFO => FileType::NamedPipe,
        objtype::CDEV => FileType::CharDevice,
        objtype::BDEV => FileType::BlockDevice,
        objtype::SOCKET => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

fn attr(ino: u64, d: &InodeData) -> FileAttr {
    FileAttr {
        ino,
        size: d.size,
        blocks: d.size.div_ceil(512),
        atime: time(d.atime),
        mtime: time(d.mtime),
        ctime: time(d.ctime),
        crtime: time(d.ctime),
        kind: kind(d.obj_type),
        perm: d.mode & 0o7777,
        nlink: u32::try_from(d.nlinks.max(1)).unwrap_or(u32::MAX),
        uid: d.uid,
        gid: d.gid,
        rdev: libc::makedev(d.rmajor, d.rminor) as u32,
        blksize: 65536,
        flags: 0,
    }
}

/// The attributes of the `@@` directory: the root's, read-only.
fn history_attr(root: &FileAttr) -> FileAttr {
    FileAttr {
        ino: HISTORY_INO,
        perm: 0o555,
        nlink: 2,
        ..*root
    }
}

/// The inode of `obj_id` as of the view's TID.
fn inode(v: &View<'_>, obj_id: i64) -> Result<InodeData, i32> {
    let mut found = None;
    v.records(LOCALIZE_INODE, obj_id, rectype::INODE, 0..=0, |_, load| {
        found = InodeData::decode(&load()?);
        Ok(false)
    })
    .map_err(errno)?;
    found.ok_or(libc::ENOENT)
}

/// A name the mount hides, and why.
type Refused = (Vec<u8>, &'static str);

/// Calls `f` with the key, object, type and name of each entry of
/// directory `dir` (inode `d`) whose key lies in `keys`, in key order,
/// until it returns false; names export would refuse go to `refused`.
fn each_entry(
    v: &View<'_>,
    dir: i64,
    d: &InodeData,
    keys: std::ops::RangeInclusive<i64>,
    refused: &mut Vec<Refused>,
    mut f: impl FnMut(i64, i64, u8, &[u8]) -> bool,
) -> Result<(), i32> {
    let lo = if d.cap_flags & CAP_DIR_LOCAL_INO != 0 {
        LOCALIZE_INODE
    } else {
        LOCALIZE_MISC
    };
    v.records(lo, dir, rectype::DIRENTRY, keys, |leaf, load| {
        let data = load()?;
        let Some((obj_id, _, name)) = parse_direntry(&data) else {
            return Ok(true);
        };
        match bad_name(name) {
            Some(why) => {
                refused.push((name.to_vec(), why));
                Ok(true)
            }
            None => Ok(f(leaf.base.key, obj_id, leaf.base.obj_type, name)),
        }
    })
    .map_err(errno)
}

/// The object entry `name` of directory `dir` (inode `d`) names, if any:
/// looked for among the keys its name key may have been given.
fn find_entry(
    v: &View<'_>,
    dir: i64,
    d: &InodeData,
    name: &[u8],
    refused: &mut Vec<Refused>,
) -> Result<Option<i64>, i32> {
    let key = namekey(d.cap_flags, name);
    let keys = key..=key.saturating_add(collision_budget(d.cap_flags));
    let mut hit = None;
    each_entry(v, dir, d, keys, refused, |_, obj_id, _, n| {
        if n == name {
            hit = Some(obj_id);
        }
        hit.is_none()
    })?;
    Ok(hit)
}

/// A directory listing being filled from `offset` on.
struct Listing<'r> {
    reply: &'r mut ReplyDirectory,
    offset: i64,
    full: bool,
}

impl Listing<'_> {
    /// Adds the entry at `pos` if the listing is past it; false once the
    /// reply is full.
    fn add(&mut self, pos: i64, ino: u64, kind: FileType, name: &[u8]) -> bool {
        if pos >= self.offset && !self.full {
            self.full = self.reply.add(ino, pos + 1, kind, OsStr::from_bytes(name));
        }
        !self.full
    }
}

impl HammerFs {
    pub fn new(store: Store, fixed: Option<u64>, show_history: bool) -> Self {
        HammerFs {
            store,
            fixed,
            show_history,
            inos: Inos::default(),
            hidden: HashSet::new(),
            history: None,
        }
    }

    /// The view `view` (`LIVE` or a TID) reads through.
    fn view(&self, view: u64) -> Result<View<'_>, i32> {
        let tid = if view == LIVE { self.fixed } else { Some(view) };
        self.store.view(tid).map_err(errno)
    }

    /// The TIDs at which the PFS changed, up to the mount's TID.
    fn history(&mut self) -> Result<Vec<u64>, i32> {
        let now = self.view(LIVE)?.tid();
        if let Some((at, tids)) = &self.history {
            if *at == now {
                return Ok(tids.clone());
            }
        }
        let tids: Vec<u64> = self
            .store
            .history()
            .map_err(errno)?
            .into_iter()
            .map(|c| c.tid)
            .filter(|&t| t <= now)
            .collect();
        self.history = Some((now, tids.clone()));
        Ok(tids)
    }

    fn history_tid(&mut self, name: &[u8]) -> Result<u64, i32> {
        let text = std::str::from_utf8(name).map_err(|_| libc::ENOENT)?;
        let hex = text.strip_prefix("0x").ok_or(libc::ENOENT)?;
        let tid = u64::from_str_radix(hex, 16).map_err(|_| libc::ENOENT)?;
        match self.history()?.contains(&tid) && text == format!("0x{tid:016x}") {
            true => Ok(tid),
            false => Err(libc::ENOENT),
        }
    }

    /// Reports each name of directory `dir` hidden in `view` once.
    fn report_hidden(&mut self, view: u64, dir: i64, refused: Vec<Refused>) {
        for (name, why) in refused {
            if self.hidden.insert((view, dir, name.clone())) {
                let _ = writeln!(
                    std::io::stderr(),
                    "hammer: mount: directory {dir:#018x}: entry '{}' hidden: {why}",
                    name.escape_ascii()
                );
            }
        }
    }

    fn lookup_in(&mut self, parent: u64, name: &OsStr) -> Result<FileAttr, i32> {
        let name = name.as_bytes();
        if parent == HISTORY_INO {
            let tid = self.history_tid(name)?;
            let d = inode(&self.view(tid)?, ROOT_OBJ)?;
            return Ok(attr(self.inos.hold(tid, ROOT_OBJ)?, &d));
        }
        let (view, dir) = self.inos.node(parent).ok_or(libc::ENOENT)?;
        let mut refused = Vec::new();
        let (d, child) = {
            let v = self.view(view)?;
            let d = inode(&v, dir)?;
            if d.obj_type != objtype::DIRECTORY {
                return Err(libc::ENOTDIR);
            }
            let child = match find_entry(&v, dir, &d, name, &mut refused)? {
                Some(obj) => Some((obj, inode(&v, obj)?)),
                None => None,
            };
            (d, child)
        };
        self.report_hidden(view, dir, refused);
        match child {
            Some((obj, c)) => Ok(attr(self.inos.hold(view, obj)?, &c)),
            None if parent == ROOT_INO && name == HISTORY_NAME.as_bytes() => {
                Ok(history_attr(&attr(ROOT_INO, &d)))
            }
            None => Err(libc::ENOENT),
        }
    }

    fn getattr_of(&mut self, ino: u64) -> Result<FileAttr, i32> {
        if ino == HISTORY_INO {
            let root = inode(&self.view(LIVE)?, ROOT_OBJ)?;
            return Ok(history_attr(&attr(ROOT_INO, &root)));
        }
        let (view, obj) = self.inos.node(ino).ok_or(libc::ENOENT)?;
        Ok(attr(ino, &inode(&self.view(view)?, obj)?))
    }

    /// Up to `size` bytes of file `ino` from `offset`: the data records
    /// covering them, holes as zeros, never past the inode's size.
    fn read_at(&self, ino: u64, offset: u64, size: u32) -> Result<Vec<u8>, i32> {
        let (view, obj) = self.inos.node(ino).ok_or(libc::ENOENT)?;
        let v = self.view(view)?;
        let d = inode(&v, obj)?;
        if d.obj_type != objtype::REGFILE {
            return Err(libc::EINVAL);
        }
        let end = d.size.min(offset.saturating_add(u64::from(size)));
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut out = vec![0u8; (end - offset) as usize];
        // A DATA record's key is the offset just past its bytes.
        let first = i64::try_from(offset + 1).map_err(|_| libc::EINVAL)?;
        v.records(
            LOCALIZE_MISC,
            obj,
            rectype::DATA,
            first..=i64::MAX,
            |leaf, load| {
                let stop = leaf.base.key as u64;
                let start = stop.saturating_sub(u64::try_from(leaf.data_len).unwrap_or(0));
                if start >= end {
                    return Ok(false);
                }
                let data = load()?;
                let (from, to) = (start.max(offset), stop.min(end));
                if from < to && (to - start) as usize <= data.len() {
                    out[(from - offset) as usize..(to - offset) as usize]
                        .copy_from_slice(&data[(from - start) as usize..(to - start) as usize]);
                }
                Ok(true)
            },
        )
        .map_err(errno)?;
        Ok(out)
    }

    fn readlink_of(&self, ino: u64) -> Result<Vec<u8>, i32> {
        let (view, obj) = self.inos.node(ino).ok_or(libc::ENOENT)?;
        let v = self.view(view)?;
        let d = inode(&v, obj)?;
        if d.obj_type != objtype::SOFTLINK {
            return Err(libc::EINVAL);
        }
        let size = usize::try_from(d.size).map_err(|_| libc::EIO)?;
        if size <= INLINE_SYMLINK_MAX {
            return Ok(d.symlink[..size].to_vec());
        }
        let mut target = None;
        v.records(
            LOCALIZE_MISC,
            obj,
            rectype::FIX,
            FIXKEY_SYMLINK..=FIXKEY_SYMLINK,
            |_, load| {
                target = Some(load()?);
                Ok(false)
            },
        )
        .map_err(errno)?;
        target.filter(|t| t.len() == size).ok_or(libc::EIO)
    }

    /// The TID directory `ino` is listed as of from its opening on,
    /// whatever is committed meanwhile.
    fn opendir_at(&self, ino: u64) -> Result<u64, i32> {
        let view = match ino {
            HISTORY_INO => LIVE,
            _ => self.inos.node(ino).ok_or(libc::ENOENT)?.0,
        };
        Ok(self.view(view)?.tid())
    }

    /// Fills `reply` with the entries of directory `ino` as of `tid` from
    /// `offset` on: `.`, `..`, and its own (and with `show_history`, `@@`
    /// in the root).
    fn list(
        &mut self,
        ino: u64,
        tid: u64,
        offset: i64,
        reply: &mut ReplyDirectory,
    ) -> Result<(), i32> {
        let mut out = Listing {
            reply,
            offset,
            full: false,
        };
        out.add(DOT, ino, FileType::Directory, b".");
        out.add(DOTDOT, ino, FileType::Directory, b"..");
        if ino == HISTORY_INO {
            // Each TID sits at its value, as an entry at its key.
            for t in self.history()?.into_iter().filter(|&t| t <= tid) {
                let Some(pos) = i64::try_from(t)
                    .ok()
                    .filter(|p| (FIRST_KEY..i64::MAX).contains(p))
                else {
                    continue;
                };
                let child = self.inos.number(t, ROOT_OBJ);
                let name = format!("0x{t:016x}");
                if !out.add(pos, child, FileType::Directory, name.as_bytes()) {
                    break;
                }
            }
            return Ok(());
        }
        let (view, dir) = self.inos.node(ino).ok_or(libc::ENOENT)?;
        let mut refused = Vec::new();
        {
            let v = self.store.view(Some(tid)).map_err(errno)?;
            let d = inode(&v, dir)?;
            if d.obj_type != objtype::DIRECTORY {
                return Err(libc::ENOTDIR);
            }
            if ino == ROOT_INO
                && self.show_history
                && offset <= HISTORY_POS
                && find_entry(&v, dir, &d, HISTORY_NAME.as_bytes(), &mut Vec::new())?.is_none()
            {
                out.add(
                    HISTORY_POS,
                    HISTORY_INO,
                    FileType::Directory,
                    HISTORY_NAME.as_bytes(),
                );
            }
            // The entry at key i64::MAX would have no offset after it.
            let keys = offset.max(FIRST_KEY)..=i64::MAX - 1;
            let inos = &self.inos;
            if !out.full {
                each_entry(&v, dir, &d, keys, &mut refused, |key, obj_id, t, name| {
                    out.add(key, inos.number(view, obj_id), kind(t), name)
                })?;
            }
        }
        self.report_hidden(view, dir, refused);
        Ok(())
    }
}

/// The most the kernel reads ahead, and so reads in one request: a few
/// large requests cost less than many small ones, each of which opens a
/// view.
const MAX_READAHEAD: u32 = 1 << 20;

impl Filesystem for HammerFs {
    fn init(&mut self, _req: &Request<'_>, config: &mut KernelConfig) -> Result<(), i32> {
        // The kernel may offer less; what it offers is fine.
        let _ = config.set_max_readahead(MAX_READAHEAD);
        Ok(())
    }

    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        match self.lookup_in(parent, name) {
            Ok(a) => reply.entry(&TTL, &a, 0),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&mut self, _req: &Request<'_>, ino: u64, nlookup: u64) {
        self.inos.forget(ino, nlookup);
    }

    fn batch_forget(&mut self, _req: &Request<'_>, nodes: &[fuse_forget_one]) {
        for n in nodes {
            self.inos.forget(n.nodeid, n.nlookup);
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.getattr_of(ino) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        match self.readlink_of(ino) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(e),
        }
    }

    fn open(&mut self, _req: &Request<'_>, _ino: u64, flags: i32, reply: ReplyOpen) {
        if flags & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(Errno::EROFS as i32);
        }
        reply.opened(0, 0);
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(libc::EINVAL);
        };
        match self.read_at(ino, offset, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        // The handle is the TID the listing shows.
        match self.opendir_at(ino) {
            Ok(tid) => reply.opened(tid, 0),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        match self.list(ino, fh, offset, &mut reply) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_number_per_pair_while_held_and_after() {
        let mut i = Inos::default();
        assert_eq!(i.hold(LIVE, ROOT_OBJ), Ok(ROOT_INO));
        let a = i.hold(LIVE, 5).unwrap();
        let b = i.hold(0x100, 5).unwrap();
        assert!(a > HISTORY_INO && b > HISTORY_INO && a != b);
        assert_eq!(i.hold(LIVE, 5), Ok(a));
        assert_eq!(i.node(a), Some((LIVE, 5)));
        assert_eq!(i.node(b), Some((0x100, 5)));
        assert_eq!(i.node(HISTORY_INO), None);
        // Held until every lookup is forgotten; the same number after.
        i.forget(a, 1);
        assert_eq!(i.node(a), Some((LIVE, 5)));
        i.forget(a, 1);
        assert_eq!(i.node(a), None);
        assert_eq!(i.number(LIVE, 5), a);
        i.forget(ROOT_INO, 1);
        assert_eq!(i.node(ROOT_INO), Some((LIVE, ROOT_OBJ)));
    }

    #[test]
    fn a_pair_whose_number_is_held_by_another_gets_the_next() {
        let mut i = Inos::default();
        let a = i.number(LIVE, 5);
        // Another pair under a's number, as a collision would put it.
        i.held.hold(a, (LIVE, 6)).unwrap();
        let b = i.hold(LIVE, 5).unwrap();
        assert_ne!(a, b);
        assert_eq!(i.number(LIVE, 5), b);
        assert_eq!(i.node(b), Some((LIVE, 5)));
        // Still b once a is forgotten, until b is.
        i.forget(a, 1);
        assert_eq!(i.number(LIVE, 5), b);
        i.forget(b, 1);
        assert_eq!(i.number(LIVE, 5), a);
        assert!(i.moved.is_empty());
    }
}

//! The source tree of an import, listed and lstat'ed by a thread of its
//! own ahead of the importer and in the order it visits directories, so
//! that walking the tree overlaps the store's work (loading the live
//! tree, comparing, writing).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use nix::fcntl::readlinkat;

use super::exclude::Excludes;

/// Entries listed ahead of the importer at most (a directory counts one
/// more): enough to walk most of a system tree while the live tree loads
/// (with 32 directories ahead, a re-import of /usr/share waited for the
/// walk for half its time), a few MB held (an entry is about 200 bytes).
const AHEAD: usize = 1 << 16;

/// One entry of a directory as listed.
pub struct Listed {
    pub name: OsString,
    /// Its lstat, or why it (or a symlink's target) could not be read.
    pub meta: io::Result<Metadata>,
    /// A symlink's target, read with the listing (None for the rest).
    pub target: Option<OsString>,
}

/// A directory's entries sorted by name.
pub type Entries = Vec<Listed>;

struct Listing {
    path: PathBuf,
    entries: io::Result<Entries>,
}

impl Listing {
    /// What it counts against `AHEAD`.
    fn weight(&self) -> usize {
        1 + self.entries.as_ref().map_or(0, Vec::len)
    }
}

/// What the walk has listed that the importer has not taken yet, and
/// whether the importer is gone (the walk then stops).
struct Ahead {
    /// `AHEAD` but in tests.
    limit: usize,
    state: Mutex<(usize, bool)>,
    taken: Condvar,
}

impl Ahead {
    /// Waits until `weight` more fits (always when nothing is ahead, so
    /// a directory larger than the bound still goes), then counts it;
    /// false once the importer is gone.
    fn reserve(&self, weight: usize) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        while !s.1 && s.0 > 0 && s.0 + weight > self.limit {
            s = match self.taken.wait(s) {
                Ok(s) => s,
                Err(_) => return false,
            };
        }
        s.0 += weight;
        !s.1
    }

    fn release(&self, weight: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.0 = s.0.saturating_sub(weight);
        }
        self.taken.notify_one();
    }

    fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.1 = true;
        }
        self.taken.notify_one();
    }
}

/// The lists of a tree's directories, as the walk ahead made them.
pub struct Lister {
    excludes: Arc<Excludes>,
    rx: Receiver<Listing>,
    ahead: Arc<Ahead>,
    /// Listed but asked for out of the walk's order (never, while the
    /// walk and the importer agree on it): kept until asked for.
    early: HashMap<PathBuf, io::Result<Entries>>,
}

impl Lister {
    /// Starts the walk of the tree at `root`, leaving out the directory
    /// whose (device, inode) is `skip` (the store's own, which import
    /// does not descend into) and what `excludes` leaves out (an
    /// excluded entry is not listed; a directory it does not enter is
    /// listed empty).
    pub fn start(root: &Path, skip: (u64, u64), excludes: Arc<Excludes>) -> Lister {
        Lister::start_with(root, skip, excludes, AHEAD)
    }

    fn start_with(root: &Path, skip: (u64, u64), excludes: Arc<Excludes>, limit: usize) -> Lister {
        let (tx, rx) = mpsc::channel();
        let ahead = Arc::new(Ahead {
            limit,
            state: Mutex::new((0, false)),
            taken: Condvar::new(),
        });
        let root = root.to_path_buf();
        let walk_ahead = Arc::clone(&ahead);
        let walk_excludes = Arc::clone(&excludes);
        // Not joined: it ends with the tree, or once the importer is gone.
        let walker = thread::Builder::new()
            .name("import-walk".into())
            .spawn(move || walk(root, skip, &walk_excludes, &tx, &walk_ahead));
        // Without a thread (none could be made), every directory is
        // listed when asked for.
        let rx = match walker {
            Ok(_) => rx,
            Err(_) => mpsc::channel().1,
        };
        Lister {
            excludes,
            rx,
            ahead,
            early: HashMap::new(),
        }
    }

    /// The entries of the directory `dir`: as the walk listed them, or
    /// listed here should the walk not have it.
    pub fn entries(&mut self, dir: &Path) -> io::Result<Entries> {
        if let Some(entries) = self.early.remove(dir) {
            return entries;
        }
        while let Ok(l) = self.rx.recv() {
            self.ahead.release(l.weight());
            if l.path == dir {
                return l.entries;
            }
            self.early.insert(l.path, l.entries);
        }
        let enters = match fs::metadata(dir) {
            Ok(m) => self.excludes.enters(m.dev()),
            Err(e) => return Err(e),
        };
        match enters {
            true => filtered(dir, &self.excludes),
            false => Ok(Vec::new()),
        }
    }
}

impl Drop for Lister {
    fn drop(&mut self) {
        self.ahead.close();
    }
}

/// Lists every directory under `root` depth first, subdirectories pushed
/// in name order and the last pushed visited first, as import does; one
/// `excludes` does not enter is listed empty.
fn walk(root: PathBuf, skip: (u64, u64), excludes: &Excludes, tx: &Sender<Listing>, ahead: &Ahead) {
    let mut stack = vec![(root, true)];
    while let Some((path, enter)) = stack.pop() {
        let entries = match enter {
            true => filtered(&path, excludes),
            false => Ok(Vec::new()),
        };
        for e in entries.iter().flatten() {
            if let Ok(m) = &e.meta {
                if m.is_dir() && (m.dev(), m.ino()) != skip {
                    stack.push((path.join(&e.name), excludes.enters(m.dev())));
                }
            }
        }
        let listing = Listing { path, entries };
        if !ahead.reserve(listing.weight()) || tx.send(listing).is_err() {
            return;
        }
    }
}

/// `list` without what `excludes` leaves out.
fn filtered(dir: &Path, excludes: &Excludes) -> io::Result<Entries> {
    let mut entries = list(dir)?;
    if excludes.has_patterns() {
        entries.retain(|e| {
            let is_dir = e.meta.as_ref().is_ok_and(Metadata::is_dir);
            !excludes.excluded(&dir.join(&e.name), is_dir)
        });
    }
    Ok(entries)
}

/// The entries of `dir` sorted by name, each lstat'ed relative to the
/// open directory (std's `DirEntry::metadata` is an fstatat on it): by
/// full path, the kernel's walk of every component took a third of a
/// re-import's time. Symlinks are read here too, relative to the
/// directory, off the importer's thread.
pub fn list(dir: &Path) -> io::Result<Entries> {
    let mut entries = Vec::new();
    for ent in fs::read_dir(dir)? {
        let ent = ent?;
        entries.push((ent.file_name(), ent));
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut dir_fd: Option<io::Result<File>> = None;
    Ok(entries
        .into_iter()
        .map(|(name, ent)| {
            let meta = ent.metadata();
            let target = match &meta {
                Ok(m) if m.is_symlink() => {
                    let d = dir_fd.get_or_insert_with(|| File::open(dir));
                    Some(match d {
                        Ok(d) => readlinkat(Some(d.as_raw_fd()), name.as_os_str())
                            .map_err(io::Error::from),
                        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                    })
                }
                _ => None,
            };
            match target {
                Some(Err(e)) => Listed {
                    name,
                    meta: Err(e),
                    target: None,
                },
                target => Listed {
                    name,
                    meta,
                    target: target.and_then(Result::ok),
                },
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(root: &Path) -> Arc<Excludes> {
        Arc::new(Excludes::none(root))
    }

    fn names(entries: &Entries) -> Vec<String> {
        entries
            .iter()
            .map(|e| e.name.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_directory_comes_sorted_whatever_order_it_is_asked_in() {
        let d = tempfile::tempdir().unwrap();
        for p in ["b/y", "b/x", "a", "c/z/w"] {
            fs::create_dir_all(d.path().join(p)).unwrap();
        }
        fs::write(d.path().join("b/f"), b"1").unwrap();
        let mut l = Lister::start(d.path(), (0, 0), none(d.path()));
        // Out of the walk's order: the early ones are kept, not lost.
        assert_eq!(names(&l.entries(&d.path().join("a")).unwrap()), [""; 0]);
        assert_eq!(
            names(&l.entries(&d.path().join("b")).unwrap()),
            ["f", "x", "y"]
        );
        assert_eq!(names(&l.entries(d.path()).unwrap()), ["a", "b", "c"]);
        assert_eq!(names(&l.entries(&d.path().join("c/z")).unwrap()), ["w"]);
        assert_eq!(names(&l.entries(&d.path().join("c")).unwrap()), ["z"]);
        assert!(l.entries(&d.path().join("gone")).is_err());
    }

    #[test]
    fn a_symlink_comes_with_its_target_and_nothing_else_with_one() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("f"), b"1").unwrap();
        std::os::unix::fs::symlink("../some/where", d.path().join("l")).unwrap();
        let entries = list(d.path()).unwrap();
        let targets: Vec<_> = entries.iter().map(|e| e.target.clone()).collect();
        assert_eq!(targets, [None, Some(OsString::from("../some/where"))]);
        assert!(entries[1].meta.as_ref().unwrap().is_symlink());
    }

    /// What the walk holds listed ahead, once it has been steady a while.
    fn held(ahead: &Ahead) -> usize {
        let mut last = usize::MAX;
        for _ in 0..500 {
            thread::sleep(std::time::Duration::from_millis(20));
            let now = ahead.state.lock().unwrap().0;
            if now == last && now > 0 {
                return now;
            }
            last = now;
        }
        panic!("the walk never settled");
    }

    #[test]
    fn the_walk_stays_within_its_bound_and_ends_with_the_importer() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..6 {
            fs::create_dir_all(d.path().join(format!("d{i}"))).unwrap();
            for f in ["x", "y"] {
                fs::write(d.path().join(format!("d{i}/{f}")), b"1").unwrap();
            }
        }
        let mut l = Lister::start_with(d.path(), (0, 0), none(d.path()), 5);
        let ahead = Arc::clone(&l.ahead);
        // The root (1 + 6 entries) goes though larger than the bound;
        // nothing more until it is taken.
        assert_eq!(held(&ahead), 7);
        assert_eq!(names(&l.entries(d.path()).unwrap()).len(), 6);
        // Then one directory of 1 + 2 at a time.
        assert_eq!(held(&ahead), 3);
        drop(l);
        for _ in 0..500 {
            if Arc::strong_count(&ahead) == 1 {
                return;
            }
            thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the walk went on after the importer was gone");
    }

    #[test]
    fn the_skipped_directory_is_not_walked() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("store/inner")).unwrap();
        let m = fs::metadata(d.path().join("store")).unwrap();
        let mut l = Lister::start(d.path(), (m.dev(), m.ino()), none(d.path()));
        assert_eq!(names(&l.entries(d.path()).unwrap()), ["store"]);
        // The walk ends without it; asked anyway, it is listed here.
        assert_eq!(
            names(&l.entries(&d.path().join("store")).unwrap()),
            ["inner"]
        );
        assert!(l.early.is_empty());
    }
}

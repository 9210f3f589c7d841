//! What export keeps of the tree while it writes: per object only the
//! inode fields it restores, and the directory entries in one name arena
//! sorted by directory and name, so memory grows by about 100 bytes a
//! file and every lookup is a binary search.

use std::collections::HashMap;

use crate::model::format::{objtype, InodeData};
use crate::model::tree::{shown_path, EntryRef, TreeSink, Undecodable};

/// The inode fields export restores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ino {
    pub obj_id: i64,
    pub size: u64,
    pub atime: u64,
    pub mtime: u64,
    pub uid: u32,
    pub gid: u32,
    pub mode: u16,
    pub obj_type: u8,
}

/// One directory entry: its name is `names[name_at..name_at + name_len]`.
#[derive(Clone, Copy, Debug)]
pub struct Ent {
    pub dir: i64,
    pub obj_id: i64,
    name_at: usize,
    name_len: usize,
}

/// Inodes and directory entries visible as of a TID, plus what could not
/// be decoded.
#[derive(Debug, Default)]
pub struct Plan {
    /// By obj_id, as a key-ordered scan gives them.
    inodes: Vec<Ino>,
    /// Whole inodes of the rarer objects (symlinks, FIFOs, devices,
    /// sockets): the inline target and device numbers.
    special: HashMap<i64, InodeData>,
    /// False once an inode came out of obj_id order.
    inodes_sorted: bool,
    names: Vec<u8>,
    /// By directory, then name (after `seal`).
    entries: Vec<Ent>,
    pub problems: Vec<Undecodable>,
}

impl TreeSink for Plan {
    fn inode(&mut self, obj_id: i64, ino: InodeData) {
        let compact = Ino {
            obj_id,
            size: ino.size,
            atime: ino.atime,
            mtime: ino.mtime,
            uid: ino.uid,
            gid: ino.gid,
            mode: ino.mode,
            obj_type: ino.obj_type,
        };
        if !matches!(ino.obj_type, objtype::REGFILE | objtype::DIRECTORY) {
            self.special.insert(obj_id, ino);
        }
        match self.inodes.last_mut() {
            // A later record of the same object replaces the earlier.
            Some(last) if last.obj_id == obj_id => *last = compact,
            Some(last) if last.obj_id > obj_id => {
                self.inodes_sorted = false;
                self.inodes.push(compact);
            }
            _ => self.inodes.push(compact),
        }
    }

    fn entry(&mut self, dir: i64, e: EntryRef<'_>) {
        self.entries.push(Ent {
            dir,
            obj_id: e.obj_id,
            name_at: self.names.len(),
            name_len: e.name.len(),
        });
        self.names.extend_from_slice(e.name);
    }

    fn problem(&mut self, problem: Undecodable) {
        self.problems.push(problem);
    }
}

impl Plan {
    pub fn new() -> Self {
        Plan {
            inodes_sorted: true,
            ..Plan::default()
        }
    }

    /// Orders what the scan gave for lookups. Sorts are stable: of two
    /// records of one object the later wins, of two entries of one name
    /// the first comes first.
    pub fn seal(&mut self) {
        if !self.inodes_sorted {
            self.inodes.sort_by_key(|i| i.obj_id);
            self.inodes.dedup_by(|later, kept| {
                let same = later.obj_id == kept.obj_id;
                if same {
                    *kept = *later;
                }
                same
            });
            self.inodes_sorted = true;
        }
        let names = &self.names;
        let name = |e: &Ent| &names[e.name_at..e.name_at + e.name_len];
        self.entries
            .sort_by(|a, b| a.dir.cmp(&b.dir).then_with(|| name(a).cmp(name(b))));
        self.inodes.shrink_to_fit();
        self.entries.shrink_to_fit();
        self.names.shrink_to_fit();
    }

    pub fn ino(&self, obj_id: i64) -> Option<&Ino> {
        self.inodes
            .binary_search_by_key(&obj_id, |i| i.obj_id)
            .ok()
            .map(|at| &self.inodes[at])
    }

    /// The whole inode of an object that is neither a file nor a directory.
    pub fn special(&self, obj_id: i64) -> Option<&InodeData> {
        self.special.get(&obj_id)
    }

    /// The entries of directory `dir` by name, as indexes for `entry_at`.
    pub fn children(&self, dir: i64) -> std::ops::Range<usize> {
        let from = self.entries.partition_point(|e| e.dir < dir);
        let to = from + self.entries[from..].partition_point(|e| e.dir == dir);
        from..to
    }

    /// The path of `obj` inside the tree, walked up the entries naming
    /// it (the first found at each level), for messages; `None` when no
    /// entry leads there from the root. A search of all entries per
    /// level: only for the rare damaged object.
    pub fn path_of(&self, obj: i64, root: i64) -> Option<String> {
        let mut names = Vec::new();
        let mut at = obj;
        while at != root {
            // A loop of directories (damage) ends at a bound.
            if names.len() >= 2048 {
                return None;
            }
            let e = self.entries.iter().find(|e| e.obj_id == at)?;
            names.push(&self.names[e.name_at..e.name_at + e.name_len]);
            at = e.dir;
        }
        Some(shown_path(&names))
    }

    pub fn entry_at(&self, at: usize) -> (&Ent, &[u8]) {
        let e = &self.entries[at];
        (e, &self.names[e.name_at..e.name_at + e.name_len])
    }

    /// The sizes of the regular files: what the data pass writes, holes
    /// aside.
    pub fn file_bytes(&self) -> u64 {
        self.inodes
            .iter()
            .filter(|i| i.obj_type == objtype::REGFILE)
            .map(|i| i.size)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ino(obj_type: u8, size: u64) -> InodeData {
        InodeData {
            obj_type,
            size,
            ..Default::default()
        }
    }

    fn ent(name: &[u8], obj_id: i64) -> EntryRef<'_> {
        EntryRef {
            name,
            key: 0,
            lo_type: 0,
            obj_id,
            obj_type: 0,
            create_tid: 0,
            delete_tid: 0,
        }
    }

    #[test]
    fn lookups_after_seal_whatever_the_order_given() {
        let mut p = Plan::new();
        TreeSink::inode(&mut p, 7, ino(objtype::REGFILE, 1));
        TreeSink::inode(&mut p, 3, ino(objtype::DIRECTORY, 0));
        TreeSink::inode(&mut p, 7, ino(objtype::REGFILE, 2));
        TreeSink::inode(&mut p, 9, ino(objtype::SOFTLINK, 3));
        TreeSink::entry(&mut p, 3, ent(b"b", 7));
        TreeSink::entry(&mut p, 1, ent(b"z", 3));
        TreeSink::entry(&mut p, 3, ent(b"a", 9));
        TreeSink::entry(&mut p, 3, ent(b"a", 8));
        p.seal();
        assert_eq!(p.ino(7).map(|i| i.size), Some(2));
        assert_eq!(p.ino(3).map(|i| i.obj_type), Some(objtype::DIRECTORY));
        assert!(p.ino(4).is_none());
        assert!(p.special(9).is_some() && p.special(7).is_none());
        let names = |d| {
            p.children(d)
                .map(|at| {
                    let (e, n) = p.entry_at(at);
                    (n.to_vec(), e.obj_id)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(3),
            vec![(b"a".to_vec(), 9), (b"a".to_vec(), 8), (b"b".to_vec(), 7)]
        );
        assert_eq!(names(1), vec![(b"z".to_vec(), 3)]);
        assert!(names(2).is_empty());
        assert_eq!(p.file_bytes(), 2);
    }
}

//! A PFS's file tree as of one TID: inodes and directory entries decoded
//! from a record scan (spec: kernel-semantics.md §2.8).

use std::fmt;

use super::format::{parse_direntry, InodeData};
use crate::idhash::IdMap;
use crate::ondisk::{rectype, BaseElm, LeafElm, LOCALIZE_INODE, LOCALIZE_MASK, LOCALIZE_MISC};
use crate::pfs::PfsError;

/// One directory entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    /// The record's key (name key plus collision iterator).
    pub key: i64,
    /// The record's localization type (INODE or MISC).
    pub lo_type: u32,
    pub obj_id: i64,
    /// The leaf's obj_type: the target's type as the entry recorded it.
    pub obj_type: u8,
    /// The record's TIDs, for messages that name it.
    pub create_tid: u64,
    pub delete_tid: u64,
}

/// A record the tree could not take: its key and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undecodable {
    pub key: BaseElm,
    pub what: &'static str,
}

impl fmt::Display for Undecodable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.key;
        match k.rec_type {
            rectype::DIRENTRY => write!(
                f,
                "directory {:#018x} entry {:#018x}: {}",
                k.obj_id, k.key, self.what
            ),
            _ => write!(f, "inode {:#018x}: {}", k.obj_id, self.what),
        }
    }
}

/// What `Undecodable` says of an inode whose payload is no inode.
const NOT_AN_INODE: &str = "payload is not a version-1 inode of 128 bytes";
/// What `Undecodable` says of a directory entry too short to be one.
const SHORT_ENTRY: &str = "payload shorter than 16 bytes";

/// Inodes and directories visible as of a TID, plus what could not be
/// decoded.
#[derive(Debug, Default)]
pub struct Tree {
    pub inodes: IdMap<i64, InodeData>,
    pub dirs: IdMap<i64, Vec<Entry>>,
    pub problems: Vec<Undecodable>,
}

/// A path as messages show it, from its names walked up from the file
/// (the file's own first): `/` and each name escaped as `escape_ascii`
/// does; `/` alone for the root.
pub fn shown_path(upward: &[&[u8]]) -> String {
    let mut path = String::new();
    for name in upward.iter().rev() {
        path.push('/');
        path.push_str(&name.escape_ascii().to_string());
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

/// `hammer_btree_chkts`: visible as of `tid` (kernel-semantics.md §1.3).
pub fn visible(leaf: &LeafElm, tid: u64) -> bool {
    let b = &leaf.base;
    b.create_tid <= tid && (b.delete_tid == 0 || tid < b.delete_tid)
}

/// The localization types a tree scan covers: inodes and entries of
/// DIR_LOCAL_INO directories (INODE), entries of version-1 ones (MISC).
pub const TREE_TYPES: std::ops::RangeInclusive<u32> = LOCALIZE_INODE..=LOCALIZE_MISC;

/// One directory entry as decoded, its name borrowed from the payload.
#[derive(Clone, Copy, Debug)]
pub struct EntryRef<'a> {
    pub name: &'a [u8],
    pub key: i64,
    pub lo_type: u32,
    pub obj_id: i64,
    pub obj_type: u8,
    pub create_tid: u64,
    pub delete_tid: u64,
}

/// Where `decode` puts what it finds: `Tree` keeps everything, export a
/// compact form of its own.
pub trait TreeSink {
    fn inode(&mut self, obj_id: i64, ino: InodeData);
    /// An entry of directory `dir`.
    fn entry(&mut self, dir: i64, entry: EntryRef<'_>);
    fn problem(&mut self, problem: Undecodable);
}

/// Takes one scanned record into `sink` if it is visible as of `tid` and
/// is an inode or a directory entry; loads only those payloads.
pub fn decode(
    tid: u64,
    leaf: &LeafElm,
    load: &dyn Fn() -> Result<Vec<u8>, PfsError>,
    sink: &mut impl TreeSink,
) -> Result<(), PfsError> {
    let b = &leaf.base;
    if !visible(leaf, tid) {
        return Ok(());
    }
    let lo_type = b.localization & LOCALIZE_MASK;
    match b.rec_type {
        rectype::INODE if lo_type == LOCALIZE_INODE && b.key == 0 => {
            match InodeData::decode(&load()?) {
                Some(ino) => sink.inode(b.obj_id, ino),
                None => sink.problem(Undecodable {
                    key: *b,
                    what: NOT_AN_INODE,
                }),
            }
        }
        rectype::DIRENTRY => {
            let data = load()?;
            match parse_direntry(&data) {
                Some((obj_id, _, name)) => sink.entry(
                    b.obj_id,
                    EntryRef {
                        name,
                        key: b.key,
                        lo_type,
                        obj_id,
                        obj_type: b.obj_type,
                        create_tid: b.create_tid,
                        delete_tid: b.delete_tid,
                    },
                ),
                None => sink.problem(Undecodable {
                    key: *b,
                    what: SHORT_ENTRY,
                }),
            }
        }
        _ => {}
    }
    Ok(())
}

impl Tree {
    /// `decode` into this tree.
    pub fn add(
        &mut self,
        tid: u64,
        leaf: &LeafElm,
        load: &dyn Fn() -> Result<Vec<u8>, PfsError>,
    ) -> Result<(), PfsError> {
        decode(tid, leaf, load, self)
    }
}

impl TreeSink for Tree {
    fn inode(&mut self, obj_id: i64, ino: InodeData) {
        self.inodes.insert(obj_id, ino);
    }

    fn entry(&mut self, dir: i64, e: EntryRef<'_>) {
        self.dirs.entry(dir).or_default().push(Entry {
            name: e.name.to_vec(),
            key: e.key,
            lo_type: e.lo_type,
            obj_id: e.obj_id,
            obj_type: e.obj_type,
            create_tid: e.create_tid,
            delete_tid: e.delete_tid,
        });
    }

    fn problem(&mut self, problem: Undecodable) {
        self.problems.push(problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::format::{direntry, objtype};

    fn leaf(lo: u32, obj_id: i64, rec_type: u16, key: i64, ct: u64, dt: u64) -> LeafElm {
        LeafElm {
            base: BaseElm {
                localization: 0x1_0000 | lo,
                obj_id,
                rec_type,
                key,
                create_tid: ct,
                delete_tid: dt,
                obj_type: objtype::REGFILE,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn only_records_visible_as_of_the_tid_count() {
        let ino = InodeData {
            obj_type: objtype::REGFILE,
            ..Default::default()
        }
        .encode()
        .to_vec();
        let ent = direntry(5, 1, b"f");
        let mut t = Tree::default();
        t.add(
            10,
            &leaf(1, 5, rectype::INODE, 0, 5, 0),
            &|| Ok(ino.clone()),
        )
        .unwrap();
        t.add(10, &leaf(1, 6, rectype::INODE, 0, 11, 0), &|| {
            Ok(ino.clone())
        })
        .unwrap();
        t.add(10, &leaf(1, 1, rectype::DIRENTRY, 7, 5, 10), &|| {
            Ok(ent.clone())
        })
        .unwrap();
        t.add(10, &leaf(1, 1, rectype::DIRENTRY, 8, 5, 11), &|| {
            Ok(ent.clone())
        })
        .unwrap();
        t.add(10, &leaf(1, 2, rectype::INODE, 0, 5, 0), &|| Ok(vec![1, 2]))
            .unwrap();
        assert_eq!(t.inodes.keys().collect::<Vec<_>>(), vec![&5]);
        assert_eq!(t.dirs[&1].len(), 1);
        assert_eq!(t.dirs[&1][0].key, 8);
        assert_eq!(t.problems.len(), 1);
        assert_eq!(
            t.problems[0].to_string(),
            "inode 0x0000000000000002: payload is not a version-1 inode of 128 bytes"
        );
    }
}

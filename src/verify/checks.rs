//! What `hammer verify` checks in the records it reads: each version on its
//! own (payload length and data CRC, TIDs, key order) and the file tree as
//! of the TID (entries name inodes, file data inside the file's size); a
//! mirror-verify side runs the same checks on the records it hashes.
//! Each problem of a record names the file it belongs to, by its path as
//! of that TID.

use std::fmt::Display;
use std::io::Write;

use super::scan::Item;
use super::{Key, Summary, VerifyError};
use crate::errno::errno_desc;
use crate::idhash::IdMap;
use crate::model::format::{block_at, objtype};
use crate::model::tree::{shown_path, visible, Tree};
use crate::ondisk::{rectype, BaseElm, LeafElm, LOCALIZE_MASK, LOCALIZE_MISC};
use crate::pfs::store::{encode_key, RecKey, Store};
use crate::pfs::PfsError;
use crate::wire::crc::data_crc_matches;
use crate::wire::{mrec_type, Mrecord};

/// One record of the scan, decoded: its leaf, and its payload (its type
/// as MIRROR_READ flagged it and its bytes) or why that could not be read.
pub(super) struct Record<'a> {
    pub leaf: LeafElm,
    pub payload: Result<(u32, &'a [u8]), PfsError>,
}

impl<'a> Record<'a> {
    pub(super) fn of(item: Item<'a>) -> Result<Self, VerifyError> {
        match item {
            Item::Read(rec) => match rec.decode() {
                Some(Mrecord::Rec { rtype, leaf, data }) => Ok(Record {
                    leaf,
                    payload: Ok((rtype, data)),
                }),
                _ => Err(VerifyError::Unexpected(rec.rec_type())),
            },
            Item::Unreadable { leaf, error } => Ok(Record {
                leaf,
                payload: Err(error),
            }),
        }
    }

    /// The payload's bytes, if it could be read.
    pub(super) fn data(&self) -> Option<&'a [u8]> {
        self.payload.as_ref().ok().map(|&(_, d)| d)
    }
}

pub(super) struct Checker<'a> {
    /// The TID the tree is checked as of.
    tid: u64,
    tree: Tree,
    /// The key of the record before, for the order check.
    last: Option<(RecKey, BaseElm)>,
    /// Problems of records, printed at the end with the path of their
    /// object, which only the whole tree tells.
    found: Vec<(BaseElm, String)>,
    /// The store the PFS lives in, which can tell why a payload could not
    /// be read; `None` on HAMMER.
    store: Option<&'a Store>,
    out: &'a mut dyn Write,
    summary: Summary,
}

impl<'a> Checker<'a> {
    pub(super) fn new(tid: u64, store: Option<&'a Store>, out: &'a mut dyn Write) -> Self {
        Checker {
            tid,
            tree: Tree::default(),
            last: None,
            found: Vec::new(),
            store,
            out,
            summary: Summary::default(),
        }
    }

    /// Prints a problem that belongs to no record.
    fn problem(&mut self, what: impl Display) -> Result<(), VerifyError> {
        writeln!(self.out, "{what}").map_err(VerifyError::Output)?;
        self.summary.problems += 1;
        Ok(())
    }

    /// On a store: what `PRAGMA quick_check` finds in its database.
    pub(super) fn database(&mut self) -> Result<(), VerifyError> {
        if let Some(s) = self.store {
            for line in s.quick_check()? {
                self.problem(format_args!("store database: {line}"))?;
            }
        }
        Ok(())
    }

    /// On a store: what the PFS's prune memo vouches for that is not so
    /// (kept with the records' problems, for their paths).
    pub(super) fn prune_memo(&mut self) -> Result<(), VerifyError> {
        if let Some(s) = self.store {
            for (key, what) in s.prune_memo_faults()? {
                self.record_problem(&key, format_args!("store prune memo: {what}"))?;
            }
        }
        Ok(())
    }

    /// Keeps a problem of the record `key` for the end.
    fn record_problem(&mut self, key: &BaseElm, what: impl Display) -> Result<(), VerifyError> {
        // Bounded by the damage found, and each line is printed anyway.
        self.found.push((*key, what.to_string()));
        self.summary.problems += 1;
        Ok(())
    }

    /// Checks one record of the scan.
    pub(super) fn take(&mut self, rec: &Record<'_>) -> Result<(), VerifyError> {
        let leaf = &rec.leaf;
        let b = &leaf.base;
        self.summary.records += 1;
        self.order(b)?;
        if b.create_tid == 0 {
            self.record_problem(b, "create_tid is 0")?;
        } else if b.delete_tid != 0 && b.delete_tid <= b.create_tid {
            self.record_problem(
                b,
                "deleted at or before its creation (create_tid >= delete_tid)",
            )?;
        }
        match &rec.payload {
            Ok((rtype, data)) => {
                self.summary.bytes += data.len() as u64;
                self.payload(leaf, *rtype, data)?;
                self.tree.add(self.tid, leaf, &|| Ok(data.to_vec()))?;
            }
            Err(error) => match self.store.map(|s| s.payload_fault(b)).transpose()? {
                Some(Some(fault)) => self.record_problem(b, fault)?,
                _ => self.record_problem(
                    b,
                    format_args!(
                        "payload cannot be read: {}",
                        errno_desc(error.errno() as i32)
                    ),
                )?,
            },
        }
        self.file_data(leaf)
    }

    /// Records come in strictly ascending key order, none twice
    /// (kernel-semantics.md §3.5).
    fn order(&mut self, b: &BaseElm) -> Result<(), VerifyError> {
        let k = encode_key(b);
        if let Some((prev_k, prev)) = self.last {
            if k <= prev_k {
                let how = if k == prev_k {
                    "same key as"
                } else {
                    "out of key order after"
                };
                self.record_problem(
                    b,
                    format_args!("{how} the record before it ({})", Key(&prev)),
                )?;
            }
        }
        self.last = Some((k, *b));
        Ok(())
    }

    /// A payload is as long as its leaf says and passes its data CRC.
    fn payload(&mut self, leaf: &LeafElm, rtype: u32, data: &[u8]) -> Result<(), VerifyError> {
        if leaf.data_offset == 0 {
            return Ok(());
        }
        let b = &leaf.base;
        if i64::try_from(data.len()) != Ok(i64::from(leaf.data_len)) {
            let what = format!(
                "payload is {} bytes, its leaf says {}",
                data.len(),
                leaf.data_len
            );
            return self.record_problem(b, what);
        }
        if rtype & mrec_type::DATA_CRC_BAD != 0
            || !data_crc_matches(b.rec_type, data, leaf.data_crc)
        {
            return self.record_problem(b, "payload fails its data CRC");
        }
        Ok(())
    }

    /// A regular file's data visible as of the TID lies inside the file:
    /// it ends in the block holding the file's last byte at the latest
    /// (kernel-semantics.md §2.3: truncation deletes the records beyond the
    /// size; the bytes past the last record are a hole). Inodes sort
    /// before all file data, so the tree holds them all by now.
    fn file_data(&mut self, leaf: &LeafElm) -> Result<(), VerifyError> {
        let b = &leaf.base;
        if b.rec_type != rectype::DATA
            || b.localization & LOCALIZE_MASK != LOCALIZE_MISC
            || !visible(leaf, self.tid)
        {
            return Ok(());
        }
        let Some(ino) = self.tree.inodes.get(&b.obj_id) else {
            let what = format!(
                "file data of object {:#018x}, which has no inode as of {:#018x}",
                b.obj_id, self.tid
            );
            return self.record_problem(b, what);
        };
        if ino.obj_type != objtype::REGFILE {
            return Ok(());
        }
        let size = ino.size;
        let len = i64::from(leaf.data_len);
        if len <= 0 || !matches!(b.key.checked_sub(len), Some(start) if start >= 0) {
            let what = format!("data record of {len} bytes cannot end at offset {}", b.key);
            return self.record_problem(b, what);
        }
        let last_block_end = match size {
            0 => 0,
            _ => {
                let (start, len) = block_at(size - 1, size);
                start + len
            }
        };
        if b.key as u64 > last_block_end {
            let what = format!(
                "data up to offset {} lies beyond the file's size {size} (its last block ends at {last_block_end})",
                b.key
            );
            return self.record_problem(b, what);
        }
        Ok(())
    }

    /// The checks of the tree as a whole, once every record is in: every
    /// directory entry names an inode, every record decoded. The records'
    /// problems are printed in the order found, then these in key order,
    /// each with the path of its object.
    pub(super) fn finish(mut self, pfs_id: u32) -> Result<Summary, VerifyError> {
        let tree = std::mem::take(&mut self.tree);
        let mut tail: Vec<(RecKey, BaseElm, String)> = tree
            .problems
            .iter()
            .map(|p| (encode_key(&p.key), p.key, p.what.to_string()))
            .collect();
        for (&dir, entries) in &tree.dirs {
            for e in entries
                .iter()
                .filter(|e| !tree.inodes.contains_key(&e.obj_id))
            {
                let key = BaseElm {
                    localization: (pfs_id << 16) | e.lo_type,
                    obj_id: dir,
                    rec_type: rectype::DIRENTRY,
                    key: e.key,
                    create_tid: e.create_tid,
                    delete_tid: e.delete_tid,
                    obj_type: e.obj_type,
                    ..Default::default()
                };
                let what = format!(
                    "entry '{}' names object {:#018x}, which has no inode as of {:#018x}",
                    e.name.escape_ascii(),
                    e.obj_id,
                    self.tid
                );
                tail.push((encode_key(&key), key, what));
            }
        }
        tail.sort_by_key(|f| f.0);
        self.summary.problems += tail.len() as u64;
        self.found
            .extend(tail.into_iter().map(|(_, key, what)| (key, what)));
        self.print(&tree)?;
        self.summary.inodes = tree.inodes.len() as u64;
        self.summary.entries = tree.dirs.values().map(|d| d.len() as u64).sum();
        Ok(self.summary)
    }
}

impl Checker<'_> {
    /// When the scan could not go on: the problems found until then, with
    /// the paths the tree read so far tells.
    pub(super) fn abandon(mut self) -> Result<(), VerifyError> {
        let tree = std::mem::take(&mut self.tree);
        self.print(&tree)
    }

    /// Prints the records' problems kept so far, each with its object's
    /// path in `tree`.
    fn print(&mut self, tree: &Tree) -> Result<(), VerifyError> {
        let found = std::mem::take(&mut self.found);
        let paths = (!found.is_empty()).then(|| Paths::of(tree));
        for (key, what) in &found {
            let at = paths.as_ref().map(|p| p.shown(key.obj_id, self.tid));
            writeln!(self.out, "{} {}: {what}", Key(key), at.unwrap_or_default())
                .map_err(VerifyError::Output)?;
        }
        Ok(())
    }
}

/// Where each object of a tree is linked: one entry naming it (the first
/// by directory and name), so a path can be walked up to the root.
struct Paths {
    parent: IdMap<i64, (i64, Vec<u8>)>,
}

impl Paths {
    fn of(tree: &Tree) -> Paths {
        let mut parent: IdMap<i64, (i64, Vec<u8>)> = IdMap::default();
        for (&dir, entries) in &tree.dirs {
            for e in entries {
                let mine = (dir, e.name.clone());
                match parent.get(&e.obj_id) {
                    Some(held) if *held <= mine => {}
                    _ => {
                        parent.insert(e.obj_id, mine);
                    }
                }
            }
        }
        Paths { parent }
    }

    /// The path of `obj` as of `tid` (the tree's TID), or that no
    /// directory links it then.
    fn shown(&self, obj: i64, tid: u64) -> String {
        let mut names: Vec<&[u8]> = Vec::new();
        let mut at = obj;
        // A loop of directories (damage) ends the walk at a bound.
        while at != ROOT_OBJ && names.len() < MAX_DEPTH {
            match self.parent.get(&at) {
                Some((dir, name)) => {
                    names.push(name);
                    at = *dir;
                }
                None => return format!("(no longer linked as of {tid:#018x})"),
            }
        }
        if at != ROOT_OBJ {
            return "(in a loop of directories)".to_string();
        }
        shown_path(&names)
    }
}

/// The root directory's object id.
const ROOT_OBJ: i64 = 1;

/// Deeper than any tree a path can name (PATH_MAX / 2).
const MAX_DEPTH: usize = 2048;

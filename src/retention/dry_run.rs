//! `prune -n` on a store: what a prune would destroy, found with the
//! store's own scan and rule in one read transaction that changes nothing
//! (`View::prune_dry_run`), and where in the file tree each of those
//! records was, for `-v` (cli.md §24); and what a reblock would give back,
//! for `cleanup -n` (cli.md §23.5).
//!
//! A record's place is looked up as of its creation TID, object by object
//! through the key index — the object's inode, its parent directory's
//! entries — never by reading the whole tree, so memory does not grow
//! with the PFS.

use std::cell::RefCell;

use crate::idhash::IdMap;
use crate::model::format::{parse_direntry, InodeData, CAP_DIR_LOCAL_INO};
use crate::model::tree::shown_path;
use crate::ondisk::{rectype, LeafElm, LOCALIZE_INODE, LOCALIZE_MASK, LOCALIZE_MISC};
use crate::pfs::store::{Freed, Store, View};
use crate::pfs::{PfsError, PruneReq, Result};

/// The root directory's object id.
const ROOT_OBJ: i64 = 1;
/// Deeper than any tree a path can name (PATH_MAX / 2).
const MAX_DEPTH: usize = 2048;
/// Links remembered at most; records of one object mostly share their
/// creation TID, and so their path.
const LINKS_KEPT: usize = 4096;

/// An object's link as of a TID: the directory holding it and its name
/// there; `None` when none leads to it.
type Link = Option<(i64, Vec<u8>)>;

/// A dry run of a prune on the PFS a store handle addresses.
pub struct DryRun<'s> {
    view: View<'s>,
    /// Links found, by object and TID.
    links: RefCell<IdMap<(i64, u64), Link>>,
}

impl<'s> DryRun<'s> {
    /// The PFS `store` addresses, as of now.
    pub fn of(store: &'s Store) -> Result<Self> {
        Ok(DryRun {
            view: store.view(None)?,
            links: RefCell::default(),
        })
    }

    /// What PRUNE with `req` would do (see `View::prune_dry_run`):
    /// `req.stats` counted, `dropped` told of each record that would go.
    pub fn scan<E: From<PfsError>>(
        &self,
        req: &mut PruneReq,
        gone_first: &[u64],
        written: &[(u16, i64)],
        dropped: impl FnMut(&LeafElm) -> std::result::Result<(), E>,
    ) -> std::result::Result<Freed, E> {
        self.view.prune_dry_run(req, gone_first, written, dropped)
    }

    /// The payload file now, and what of it a reblock would give back
    /// without a prune before it.
    pub fn payload(&self) -> Result<Freed> {
        self.view.payload_idle()
    }

    /// Where `leaf`'s record was as of its creation TID: its object's
    /// path, for a directory entry the path it named; `(no longer linked
    /// as of 0x<tid>)` when no entry led to it from the root then. The
    /// path is walked up through each object's inode's parent directory.
    pub fn place(&self, leaf: &LeafElm) -> Result<String> {
        let b = &leaf.base;
        let tid = b.create_tid;
        let mut names: Vec<Vec<u8>> = Vec::new();
        if b.rec_type == rectype::DIRENTRY {
            let lo = b.localization & LOCALIZE_MASK;
            self.view
                .records_as_of(tid, lo, b.obj_id, b.rec_type, b.key..=b.key, |l, load| {
                    if l.base != *b {
                        return Ok(true);
                    }
                    if let Some((_, _, name)) = parse_direntry(&load()?) {
                        names.push(name.to_vec());
                    }
                    Ok(false)
                })?;
        }
        let mut at = b.obj_id;
        while at != ROOT_OBJ {
            if names.len() >= MAX_DEPTH {
                return Ok("(in a loop of directories)".to_string());
            }
            match self.link(at, tid)? {
                Some((dir, name)) => {
                    names.push(name);
                    at = dir;
                }
                None => return Ok(format!("(no longer linked as of {tid:#018x})")),
            }
        }
        let upward: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
        Ok(shown_path(&upward))
    }

    /// Object `obj`'s link as of `tid`: the first entry of its inode's
    /// parent directory (in key order) that names it.
    fn link(&self, obj: i64, tid: u64) -> Result<Link> {
        if let Some(found) = self.links.borrow().get(&(obj, tid)) {
            return Ok(found.clone());
        }
        let found = self.find_link(obj, tid)?;
        let mut links = self.links.borrow_mut();
        if links.len() >= LINKS_KEPT {
            links.clear();
        }
        links.insert((obj, tid), found.clone());
        Ok(found)
    }

    fn find_link(&self, obj: i64, tid: u64) -> Result<Link> {
        let Some(ino) = self.inode(obj, tid)? else {
            return Ok(None);
        };
        let dir = ino.parent_obj_id;
        let Some(dino) = self.inode(dir, tid)? else {
            return Ok(None);
        };
        // Where the directory keeps its entries (kernel-semantics.md §1.4).
        let lo = if dino.cap_flags & CAP_DIR_LOCAL_INO != 0 {
            LOCALIZE_INODE
        } else {
            LOCALIZE_MISC
        };
        let mut name = None;
        self.view.records_as_of(
            tid,
            lo,
            dir,
            rectype::DIRENTRY,
            i64::MIN..=i64::MAX,
            |_, load| match parse_direntry(&load()?) {
                Some((target, _, n)) if target == obj => {
                    name = Some(n.to_vec());
                    Ok(false)
                }
                _ => Ok(true),
            },
        )?;
        Ok(name.map(|n| (dir, n)))
    }

    /// Object `obj`'s inode as of `tid`, if it has a decodable one.
    fn inode(&self, obj: i64, tid: u64) -> Result<Option<InodeData>> {
        let mut found = None;
        self.view.records_as_of(
            tid,
            LOCALIZE_INODE,
            obj,
            rectype::INODE,
            0..=0,
            |_, load| {
                found = InodeData::decode(&load()?);
                Ok(false)
            },
        )?;
        Ok(found)
    }
}

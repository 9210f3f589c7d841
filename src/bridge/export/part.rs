//! A partial export (`export <pfs> <dir> <path-inside>...`): the plan of
//! the named paths, the directories leading to them and everything below
//! them, and their files' data, read object by object through one `View`
//! instead of scans of the whole PFS.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::plan::Plan;
use super::ROOT_OBJ;
use crate::bridge::BridgeError;
use crate::model::format::{objtype, parse_direntry, InodeData, CAP_DIR_LOCAL_INO, FIXKEY_SYMLINK};
use crate::model::tree::decode;
use crate::ondisk::{rectype, LeafElm, LOCALIZE_INODE, LOCALIZE_MISC};
use crate::pfs::store::View;
use crate::pfs::PfsError;

/// The components of a path inside the PFS: `/` and `.` are the root,
/// `..` is refused (a path inside never climbs out of the tree).
pub(super) fn components(path: &Path) -> Result<Vec<&[u8]>, BridgeError> {
    let mut names = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => names.push(n.as_bytes()),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(BridgeError::BadInside {
                    path: path.display().to_string(),
                    why: "'..' is not a path inside the PFS",
                })
            }
        }
    }
    Ok(names)
}

/// Builds the plan of the paths `inside` of the view's PFS (named `pfs`
/// in messages): each path's directories from the root down, with only
/// the entries on the way, and below each path all it holds.
pub(super) fn plan(view: &View<'_>, pfs: &str, inside: &[PathBuf]) -> Result<Plan, BridgeError> {
    let mut p = Partial {
        view,
        plan: Plan::new(),
        inodes: HashSet::new(),
        entries: HashSet::new(),
    };
    let Some(root) = p.inode(ROOT_OBJ)? else {
        return Err(BridgeError::NoRoot(format!(
            "{pfs} as of {:#018x}",
            view.tid()
        )));
    };
    for path in inside {
        let missing = |why| BridgeError::NotInside {
            path: path.display().to_string(),
            pfs: pfs.to_string(),
            tid: view.tid(),
            why,
        };
        let (mut obj, mut ino) = (ROOT_OBJ, root);
        for name in components(path)? {
            if ino.obj_type != objtype::DIRECTORY {
                return Err(missing("a component on the way is not a directory"));
            }
            let Some((leaf, data, child)) = p
                .entries_of(obj, &ino)?
                .into_iter()
                .find(|(_, _, (_, n))| n == name)
                .map(|(l, d, (c, _))| (l, d, c))
            else {
                return Err(missing("no such file or directory"));
            };
            p.entry(obj, &leaf, data)?;
            ino = p
                .inode(child)?
                .ok_or_else(|| missing("its inode is missing"))?;
            obj = child;
        }
        if ino.obj_type == objtype::DIRECTORY {
            p.subtree(obj, ino)?;
        }
    }
    let mut plan = p.plan;
    plan.seal();
    Ok(plan)
}

/// A directory entry as a record, its payload, and its target and name.
type Found = (LeafElm, Vec<u8>, (i64, Vec<u8>));

struct Partial<'v, 's> {
    view: &'v View<'s>,
    plan: Plan,
    /// Objects whose inode the plan has (so each is read once).
    inodes: HashSet<i64>,
    /// Entries the plan has, by directory and key.
    entries: HashSet<(i64, i64)>,
}

impl Partial<'_, '_> {
    /// The inode of `obj` as of the view, into the plan once.
    fn inode(&mut self, obj: i64) -> Result<Option<InodeData>, BridgeError> {
        let (tid, plan) = (self.view.tid(), &mut self.plan);
        let mut found = None;
        self.view
            .records(LOCALIZE_INODE, obj, rectype::INODE, 0..=0, |leaf, load| {
                let data = load()?;
                found = InodeData::decode(&data);
                decode(tid, leaf, &|| Ok(data.clone()), plan)?;
                Ok(false)
            })?;
        self.inodes.insert(obj);
        Ok(found)
    }

    /// Every entry of directory `dir` as of the view, in key order.
    fn entries_of(&self, dir: i64, ino: &InodeData) -> Result<Vec<Found>, BridgeError> {
        let lo = if ino.cap_flags & CAP_DIR_LOCAL_INO != 0 {
            LOCALIZE_INODE
        } else {
            LOCALIZE_MISC
        };
        let mut all = Vec::new();
        self.view.records(
            lo,
            dir,
            rectype::DIRENTRY,
            i64::MIN..=i64::MAX,
            |leaf, load| {
                let data = load()?;
                // An entry too short to name anything goes to the plan,
                // which reports it, under no name.
                let target = parse_direntry(&data)
                    .map_or((0, Vec::new()), |(obj, _, name)| (obj, name.to_vec()));
                all.push((*leaf, data, target));
                Ok(true)
            },
        )?;
        Ok(all)
    }

    /// One entry into the plan, once.
    fn entry(&mut self, dir: i64, leaf: &LeafElm, data: Vec<u8>) -> Result<(), BridgeError> {
        if self.entries.insert((dir, leaf.base.key)) {
            decode(self.view.tid(), leaf, &|| Ok(data.clone()), &mut self.plan)?;
        }
        Ok(())
    }

    /// Everything below directory `obj`: entries and inodes, each
    /// directory entered once (a directory linked twice is the plan's
    /// problem to report, as in a whole export).
    fn subtree(&mut self, obj: i64, ino: InodeData) -> Result<(), BridgeError> {
        let mut entered = HashSet::from([obj]);
        let mut stack = vec![(obj, ino)];
        while let Some((dir, dino)) = stack.pop() {
            for (leaf, data, (child, _)) in self.entries_of(dir, &dino)? {
                self.entry(dir, &leaf, data)?;
                if self.inodes.contains(&child) {
                    continue;
                }
                if let Some(cino) = self.inode(child)? {
                    if cino.obj_type == objtype::DIRECTORY && entered.insert(child) {
                        stack.push((child, cino));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Feeds `record` the MISC records the data pass takes (file data, long
/// symlink targets) of each object of `objs`, in obj_id and key order,
/// as a scan of the whole PFS would meet them.
pub(super) fn data(
    view: &View<'_>,
    mut objs: Vec<i64>,
    mut record: impl FnMut(&LeafElm, &dyn Fn() -> Result<Vec<u8>, PfsError>) -> Result<(), BridgeError>,
) -> Result<(), BridgeError> {
    objs.sort_unstable();
    objs.dedup();
    let mut failed = None;
    for obj in objs {
        for (rec_type, keys) in [
            (rectype::DATA, i64::MIN..=i64::MAX),
            (rectype::FIX, FIXKEY_SYMLINK..=FIXKEY_SYMLINK),
        ] {
            view.records(
                LOCALIZE_MISC,
                obj,
                rec_type,
                keys,
                |leaf, load| match record(leaf, load) {
                    Ok(()) => Ok(true),
                    Err(e) => {
                        failed = Some(e);
                        Ok(false)
                    }
                },
            )?;
            if let Some(e) = failed.take() {
                return Err(e);
            }
        }
    }
    Ok(())
}

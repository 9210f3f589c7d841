//! Stores, PFSes and trees for the tests to run on, made through the
//! binary or the library, and what the tests read back from them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use hammer_mirror::ondisk::{
    rectype, LeafElm, PseudofsData, LOCALIZE_INODE, LOCALIZE_MISC, PFSD_SLAVE,
};
use hammer_mirror::pfs::store::{RecordId, Store, DB_NAME};
use hammer_mirror::pfs::Pfs;

use super::{hammer, ok, pipe_ok, run_with_input, text};

/// A new store in `dir/name`.
pub fn new_store(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(name);
    ok(&["store-create", root.to_str().unwrap()]);
    root
}

/// A new store in `dir/name` with a master PFS `master` in it.
pub fn store_with_master(dir: &Path, name: &str) -> PathBuf {
    let root = new_store(dir, name);
    ok(&["pfs-master", root.join("master").to_str().unwrap()]);
    root
}

/// Moves the sync-beg-tid of `root`'s master back to the store's first
/// TID, so that a prescan splits its whole history into chunks.
pub fn begin_at_first_tid(root: &Path) {
    ok(&[
        "pfs-update",
        root.join("master").to_str().unwrap(),
        "sync-beg-tid=0x100000001",
    ]);
}

/// Makes PFS `pfs_id` of `store` a new master or slave, as SET_PSEUDOFS
/// does for pfs-master and pfs-slave.
pub fn new_pfs(store: &mut Store, pfs_id: u32, slave: bool) {
    store.set_pfs_id(pfs_id);
    let pfsd = PseudofsData {
        sync_beg_tid: 1,
        sync_end_tid: 1,
        mirror_flags: if slave { PFSD_SLAVE } else { 0 },
        ..Default::default()
    };
    store.set_pseudofs(&pfsd).unwrap();
}

/// `hammer -d pfs-destroy <pfs>`, answering yes to every question;
/// asserts that it succeeds.
#[track_caller]
pub fn destroy(pfs: &Path) {
    let out = run_with_input(
        hammer().args(["-d", "pfs-destroy", pfs.to_str().unwrap()]),
        b"y\ny\n",
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
}

/// The shared uuid of PFS `pfs`, from pfs-status.
pub fn shared_uuid(pfs: &Path) -> String {
    let out = ok(&["pfs-status", pfs.to_str().unwrap()]);
    text(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("shared-uuid="))
        .expect("pfs-status shows a shared-uuid")
        .to_string()
}

/// A directory `dir/tree` holding `files` (paths relative to it, parent
/// directories made as needed).
pub fn tree<N: AsRef<Path>, B: AsRef<[u8]>>(
    dir: &Path,
    files: impl IntoIterator<Item = (N, B)>,
) -> PathBuf {
    let tree = dir.join("tree");
    fs::create_dir_all(&tree).unwrap();
    for (name, bytes) in files {
        let p = tree.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
    tree
}

/// Imports `tree` into `pfs`; returns the summary line and the TID it
/// ends with.
pub fn import_summary(tree: &Path, pfs: &Path) -> (String, u64) {
    let out = ok(&["import", tree.to_str().unwrap(), pfs.to_str().unwrap()]);
    let line = text(&out.stdout);
    let tid = line.trim().rsplit(' ').next().unwrap();
    let tid = u64::from_str_radix(tid.trim_start_matches("0x"), 16).unwrap();
    (line, tid)
}

/// `hammer -y -q mirror-copy <src> <dst>`, which must succeed.
pub fn copy_quietly(src: &Path, dst: &Path) {
    ok(&[
        "-y",
        "-q",
        "mirror-copy",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ]);
}

/// Imports `tree` into `pfs`; returns the TID of the import.
pub fn import(tree: &Path, pfs: &Path) -> u64 {
    import_summary(tree, pfs).1
}

pub fn open(root: &Path, pfs_id: u32) -> Store {
    let mut s = Store::open(root).unwrap();
    s.set_pfs_id(pfs_id);
    s
}

pub fn inode(obj: i64) -> RecordId {
    RecordId {
        localization: LOCALIZE_INODE,
        obj_id: obj,
        rec_type: rectype::INODE,
        key: 0,
    }
}

pub fn data(obj: i64, off: i64) -> RecordId {
    RecordId {
        localization: LOCALIZE_MISC,
        obj_id: obj,
        rec_type: rectype::DATA,
        key: off,
    }
}

/// Writes `n` generations of history into PFS#1 of `root`: files created,
/// rewritten and deleted across transactions. Returns the last TID.
pub fn make_history(root: &Path, files: i64, generations: u32, size: usize) -> u64 {
    make_history_in(root, 1, files, generations, size)
}

/// `make_history` into PFS `pfs_id`.
pub fn make_history_in(root: &Path, pfs_id: u32, files: i64, generations: u32, size: usize) -> u64 {
    let mut s = open(root, pfs_id);
    let mut last = 0;
    for g in 0..generations {
        let mut t = s.begin().unwrap();
        // The TID salts the content, so every call writes new versions.
        let salt = t.tid() as u8;
        for f in 0..files {
            let obj = 0x1_0000_0100 + f;
            if g > 0 && (f + g as i64) % 5 == 0 {
                t.delete(&data(obj, 0x4000)).unwrap();
                continue;
            }
            if g == 0 || (f + g as i64) % 3 == 0 {
                let mut ino = vec![0u8; 128];
                ino[0] = g as u8;
                ino[1] = salt;
                ino[8..16].copy_from_slice(&f.to_le_bytes());
                t.put(&inode(obj), 1, &ino).unwrap();
                let body: Vec<u8> = (0..size)
                    .map(|i| (i as u8) ^ (g as u8) ^ (f as u8))
                    .collect();
                t.put(&data(obj, 0x4000), 2, &body).unwrap();
            }
        }
        last = t.commit().unwrap();
    }
    last
}

/// A record's key without the PFS bits: (localization type, obj_id, key,
/// rec_type, create_tid).
pub type RecKey = (u32, i64, i64, u16, u64);

/// A PFS as of `tid`: every visible record by its key, with its data CRC
/// and payload.
pub fn as_of(root: &Path, pfs_id: u32, tid: u64) -> BTreeMap<RecKey, (u64, Vec<u8>)> {
    let s = open(root, pfs_id);
    let mut m = BTreeMap::new();
    s.for_each_record(|leaf, d| {
        let b = &leaf.base;
        let visible = b.create_tid <= tid && (b.delete_tid == 0 || b.delete_tid > tid);
        if visible {
            m.insert(
                (
                    b.localization & 0xFFFF,
                    b.obj_id,
                    b.key,
                    b.rec_type,
                    b.create_tid,
                ),
                (leaf.data_crc as u64, d.to_vec()),
            );
        }
    })
    .unwrap();
    m
}

/// The names in directory `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// The sync_end_tid of PFS `pfs_id`.
pub fn sync_end(root: &Path, pfs_id: u32) -> u64 {
    open(root, pfs_id).get_pseudofs().unwrap().sync_end_tid
}

/// Asserts that PFS `pfs_id`'s payload file holds no bytes past its
/// committed size (what a failed writer must give back).
pub fn assert_no_payload_tail(root: &Path, pfs_id: u32) {
    let db = rusqlite::Connection::open(root.join(DB_NAME)).unwrap();
    let (generation, size): (i64, i64) = db
        .query_row("SELECT gen, size FROM blob WHERE pfs = ?1", [pfs_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap_or((0, 0));
    let file = root.join(format!(".hammer-store.pfs{pfs_id:05}.{generation}"));
    let len = fs::metadata(&file).map_or(0, |m| m.len());
    assert_eq!(
        len,
        size as u64,
        "{} past its committed size",
        file.display()
    );
}

/// The PFS number a PFS link of a store names (`@@PFS0000N`); `None`
/// when there is no link there.
pub fn link_id(link: &Path) -> Option<u32> {
    let target = fs::read_link(link).ok()?;
    let t = target.to_string_lossy();
    Some(t.trim_start_matches("@@PFS").parse().unwrap())
}

/// Asserts the slave equals the master as of the slave's sync point.
pub fn assert_mirrored(master: (&Path, u32), slave: (&Path, u32)) -> u64 {
    let tid = sync_end(slave.0, slave.1);
    let want = as_of(master.0, master.1, tid);
    let got = as_of(slave.0, slave.1, tid);
    assert!(!want.is_empty(), "master empty as of {tid:#x}");
    assert_eq!(got.len(), want.len(), "record count as of {tid:#x}");
    assert!(got == want, "slave differs from master as of {tid:#x}");
    tid
}

/// One store serving several clients, a directory each, as an
/// authorized_keys line `ssh-remote mirror-read,mirror-write <store>/clientA`
/// confines client A: A's master `clientA/pfs` (PFS#1), B's master
/// `clientB/pfs` (PFS#2) and B's slave `clientB/slave` (PFS#3, mirrored
/// from B's master), each with history. Returns the store's root.
pub fn two_clients(dir: &Path) -> PathBuf {
    let store = new_store(dir, "backup");
    for c in ["clientA", "clientB"] {
        fs::create_dir(store.join(c)).unwrap();
    }
    let path = |p: &str| store.join(p).display().to_string();
    ok(&["pfs-master", &path("clientA/pfs")]);
    ok(&["pfs-master", &path("clientB/pfs")]);
    make_history_in(&store, 1, 5, 2, 1000);
    make_history_in(&store, 2, 5, 2, 1000);
    pipe_ok(
        &["-i", "0", "mirror-read", &path("clientB/pfs")],
        &["-y", "mirror-write", &path("clientB/slave")],
    );
    assert_mirrored((&store, 2), (&store, 3));
    store
}

/// PFS `pfs_id` of `store` as a client could change it: its configuration
/// and every record (leaf and payload), deleted ones included. A master's
/// sync point is left out: it is the store's, moved by any change.
pub fn pfs_state(store: &Path, pfs_id: u32) -> Vec<Vec<u8>> {
    let s = open(store, pfs_id);
    let mut pfsd = s.get_pseudofs().unwrap();
    if !pfsd.is_slave() {
        pfsd.sync_end_tid = 0;
    }
    let mut b = [0u8; PseudofsData::SIZE];
    pfsd.encode(&mut b);
    let mut state = vec![b.to_vec()];
    s.for_each_record(|leaf, d| {
        let mut l = [0u8; LeafElm::SIZE];
        leaf.encode(&mut l);
        state.push([&l[..], d].concat());
    })
    .unwrap();
    state
}

/// The TIDs of the snapshots snapls lists for `pfs`, oldest first.
pub fn snapshot_tids(pfs: &Path) -> Vec<u64> {
    let out = ok(&["snapls", pfs.to_str().unwrap()]);
    text(&out.stdout)
        .lines()
        .skip(2)
        .map(|l| u64::from_str_radix(&l[2..18], 16).unwrap())
        .collect()
}

/// The size of PFS#1's payload file in the store at `root` (there is one).
pub fn payload_size(root: &Path) -> u64 {
    let sizes: Vec<u64> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".hammer-store.pfs00001.")
        })
        .map(|e| e.metadata().unwrap().len())
        .collect();
    assert_eq!(sizes.len(), 1, "one payload file");
    sizes[0]
}

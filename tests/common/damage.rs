//! Stores to damage, for the tests of verify and mirror-verify: a master
//! with history, a copy of a store, and its record rows read and changed
//! behind the store's back.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use hammer_mirror::model::format::parse_direntry;
use hammer_mirror::ondisk::{rectype, LeafElm};
use hammer_mirror::pfs::store::DB_NAME;
use rusqlite::{params, Connection};

use super::{ok, store_with_master, sync_end, text};

/// A master (PFS#1 of `dir/st`) with two imports of history: files of
/// every payload size (inline, one 16 KiB block, many blocks up to 64 KiB
/// ones), an empty file, a subdirectory, a long symlink; then one file
/// rewritten, one removed. Returns the store root.
pub fn master_with_history(dir: &Path) -> PathBuf {
    history(dir).0
}

/// `master_with_history`, and the TID of its first import.
pub fn history(dir: &Path) -> (PathBuf, u64) {
    let root = store_with_master(dir, "st");
    let tree = dir.join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    let bytes = |n: usize, salt: u8| -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31) ^ salt ^ (i >> 9) as u8)
            .collect()
    };
    fs::write(tree.join("small"), bytes(100, 1)).unwrap();
    fs::write(tree.join("medium"), bytes(20_000, 2)).unwrap();
    fs::write(tree.join("big"), bytes(1_200_000, 3)).unwrap();
    fs::write(tree.join("empty"), b"").unwrap();
    fs::write(tree.join("sub/inner"), bytes(5000, 4)).unwrap();
    symlink(
        "a/target/name/longer/than/twenty-four/bytes",
        tree.join("link"),
    )
    .unwrap();
    let m = root.join("master");
    let out = ok(&["import", tree.to_str().unwrap(), m.to_str().unwrap()]);
    let first = text(&out.stdout);
    let first = first.trim_end().rsplit("TID 0x").next().unwrap();
    fs::write(tree.join("medium"), bytes(30_000, 5)).unwrap();
    fs::remove_file(tree.join("small")).unwrap();
    ok(&["import", tree.to_str().unwrap(), m.to_str().unwrap()]);
    (root, u64::from_str_radix(first, 16).unwrap())
}

/// A copy of the store at `from` (its database, payload files and PFS
/// links) in `to`, to damage; private as the store is (fs::copy keeps the
/// files' modes).
pub fn copy_store(from: &Path, to: &Path) -> PathBuf {
    fs::create_dir(to).unwrap();
    fs::set_permissions(to, fs::metadata(from).unwrap().permissions()).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_symlink() {
            symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if e.file_type().unwrap().is_file() {
            fs::copy(&src, &dst).unwrap();
        }
    }
    to.to_path_buf()
}

/// Flips a bit of the byte at `at` of PFS#1's payload file.
pub fn flip_payload_byte(root: &Path, at: i64) {
    let file = root.join(".hammer-store.pfs00001.0");
    let mut bytes = fs::read(&file).unwrap();
    bytes[at as usize] ^= 0x20;
    fs::write(&file, bytes).unwrap();
}

/// One row of the store's record table.
#[derive(Clone)]
pub struct Row {
    pub k: Vec<u8>,
    pub leaf: LeafElm,
    pub data: Option<Vec<u8>>,
    pub boff: Option<i64>,
}

pub fn db(root: &Path) -> Connection {
    Connection::open(root.join(DB_NAME)).unwrap()
}

/// PFS#1's records in key order.
pub fn rows(root: &Path) -> Vec<Row> {
    let c = db(root);
    let mut stmt = c
        .prepare("SELECT k, leaf, data, boff FROM rec WHERE pfs = 1 ORDER BY k")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let leaf: Vec<u8> = r.get(1)?;
            Ok(Row {
                k: r.get(0)?,
                leaf: LeafElm::decode(leaf.as_slice().try_into().unwrap()),
                data: r.get(2)?,
                boff: r.get(3)?,
            })
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// PFS#1's live directory entry named `name`.
pub fn entry_named(root: &Path, name: &str) -> Row {
    rows(root)
        .into_iter()
        .find(|r| {
            r.leaf.base.rec_type == rectype::DIRENTRY
                && r.leaf.base.delete_tid == 0
                && parse_direntry(r.data.as_deref().unwrap())
                    .is_some_and(|(_, _, n)| n == name.as_bytes())
        })
        .unwrap_or_else(|| panic!("no live entry named {name:?}"))
}

/// The object a live directory entry named `name` points to.
pub fn obj_of(root: &Path, name: &str) -> i64 {
    let entry = entry_named(root, name);
    parse_direntry(entry.data.as_deref().unwrap()).unwrap().0
}

/// The live records of `obj` of type `rec_type`, in key order.
pub fn live(root: &Path, obj: i64, rec_type: u16) -> Vec<Row> {
    rows(root)
        .into_iter()
        .filter(|r| {
            let b = &r.leaf.base;
            b.obj_id == obj && b.rec_type == rec_type && b.delete_tid == 0
        })
        .collect()
}

/// The path verify names beside a problem of object `obj` of PFS#1:
/// walked up its live entries (the tree as of the sync point) to the
/// root, or that none links it.
pub fn path_of(root: &Path, obj: i64) -> String {
    let rows = rows(root);
    let mut names = Vec::new();
    let mut at = obj;
    while at != 1 {
        let up = rows
            .iter()
            .filter(|r| r.leaf.base.rec_type == rectype::DIRENTRY && r.leaf.base.delete_tid == 0)
            .find_map(|r| {
                let (target, _, name) = parse_direntry(r.data.as_deref()?)?;
                (target == at).then(|| (r.leaf.base.obj_id, name.to_vec()))
            });
        let Some((dir, name)) = up else {
            return format!("(no longer linked as of {:#018x})", sync_end(root, 1));
        };
        names.push(String::from_utf8(name).unwrap());
        at = dir;
    }
    names.reverse();
    format!("/{}", names.join("/"))
}

/// The head of verify's line for a problem of `leaf` of PFS#1: its key
/// and its object's path.
pub fn problem_at(root: &Path, leaf: &LeafElm) -> String {
    format!("{} {}", key_text(leaf), path_of(root, leaf.base.obj_id))
}

/// A record's key as verify prints it.
pub fn key_text(leaf: &LeafElm) -> String {
    let b = &leaf.base;
    format!(
        "lo={:08x} obj={:016x} key={:016x} rt={:02x} tids={:016x}:{:016x}",
        b.localization, b.obj_id as u64, b.key as u64, b.rec_type, b.create_tid, b.delete_tid
    )
}

pub fn set_data(root: &Path, row: &Row, data: &[u8]) {
    db(root)
        .execute(
            "UPDATE rec SET data = ?1 WHERE k = ?2",
            params![data, &row.k],
        )
        .unwrap();
}

pub fn set_leaf(root: &Path, row: &Row, leaf: &LeafElm) {
    let mut l = [0u8; LeafElm::SIZE];
    leaf.encode(&mut l);
    db(root)
        .execute(
            "UPDATE rec SET leaf = ?1 WHERE k = ?2",
            params![&l[..], &row.k],
        )
        .unwrap();
}

//! import and export end to end: random trees round-trip at every TID on
//! the master and on a slave fed over a pipe, re-import costs, hostile
//! streams that try to write outside the target, trees changing under an
//! import.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::common::*;
use hammer_mirror::model::format::{direntry, namekey, objtype, InodeData};
use hammer_mirror::ondisk::{rectype, LOCALIZE_INODE, LOCALIZE_MISC};
use hammer_mirror::pfs::store::{RecordId, Txn};

/// What a path is, as far as export must reproduce it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    Dir {
        mode: u32,
        mtime_us: i64,
    },
    File {
        mode: u32,
        mtime_us: i64,
        data: Vec<u8>,
    },
    Link {
        target: Vec<u8>,
        mtime_us: i64,
    },
    Fifo {
        mode: u32,
    },
}

fn mtime_us(m: &fs::Metadata) -> i64 {
    m.mtime() * 1_000_000 + m.mtime_nsec() / 1000
}

/// The tree under `root` (root itself as "").
pub(crate) fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let p = root.join(&rel);
        let m = fs::symlink_metadata(&p).unwrap();
        let mode = m.mode() & 0o1777;
        let ft = m.file_type();
        let node = if ft.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
            }
            Node::Dir {
                mode,
                mtime_us: mtime_us(&m),
            }
        } else if ft.is_file() {
            Node::File {
                mode,
                mtime_us: mtime_us(&m),
                data: fs::read(&p).unwrap(),
            }
        } else if ft.is_symlink() {
            Node::Link {
                target: fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec(),
                mtime_us: mtime_us(&m),
            }
        } else {
            Node::Fifo { mode }
        };
        out.insert(rel, node);
    }
    out
}

pub(crate) fn assert_same_tree(
    want: &BTreeMap<PathBuf, Node>,
    got: &BTreeMap<PathBuf, Node>,
    what: &str,
) {
    let wk: Vec<_> = want.keys().collect();
    let gk: Vec<_> = got.keys().collect();
    assert_eq!(wk, gk, "{what}: paths differ");
    for (p, w) in want {
        assert!(got[p] == *w, "{what}: {} differs", p.display());
    }
}

const NAMES: &[&str] = &[
    "plain",
    "with space",
    "tab\there",
    "new\nline",
    "-dash",
    "...",
    ".hidden",
    "ünïcödé",
    "x~1.tar.gz",
    "#%&*?[]",
    "UPPER",
    "a",
];
const FILE_MODES: &[u32] = &[0o644, 0o600, 0o755, 0o444, 0o640];
const DIR_MODES: &[u32] = &[0o755, 0o750, 0o700, 0o1777];

fn name(rng: &mut Rng) -> String {
    if rng.below(12) == 0 {
        return "n".repeat(255);
    }
    format!("{}{}", rng.pick(NAMES), rng.below(1000))
}

fn set_mtime(p: &Path, rng: &mut Rng) {
    let t = SystemTime::UNIX_EPOCH
        + Duration::new(
            1_000_000_000 + rng.below(700_000_000),
            rng.below(1_000_000_000) as u32,
        );
    let f = fs::File::open(p).unwrap();
    f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

fn write_file(p: &Path, rng: &mut Rng) {
    let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o644));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(p)
        .unwrap();
    match rng.below(6) {
        0 => {}
        1 => f.write_all(&rng.sized(1, 8192)).unwrap(),
        2 => f.write_all(&rng.sized(8193, 200_000)).unwrap(),
        // Across the 1 MiB switch from 16 KiB to 64 KiB blocks.
        3 => f.write_all(&rng.sized(1_000_000, 200_000)).unwrap(),
        // Sparse: holes before, between and after the data.
        4 => {
            f.set_len(3 << 20).unwrap();
            use std::os::unix::fs::FileExt;
            f.write_all_at(&rng.bytes(100), 40_000).unwrap();
            f.write_all_at(&rng.bytes(70_000), (2 << 20) + 5).unwrap();
        }
        _ => f.set_len(5000).unwrap(),
    }
    drop(f);
    fs::set_permissions(p, fs::Permissions::from_mode(*rng.pick(FILE_MODES))).unwrap();
    set_mtime(p, rng);
}

pub(crate) fn add_entry(dir: &Path, rng: &mut Rng, depth: u32) {
    let p = dir.join(name(rng));
    if fs::symlink_metadata(&p).is_ok() {
        return;
    }
    match rng.below(10) {
        0..=4 => write_file(&p, rng),
        5 | 6 if depth < 4 => {
            fs::create_dir(&p).unwrap();
            for _ in 0..rng.below(5) {
                add_entry(&p, rng, depth + 1);
            }
            fs::set_permissions(&p, fs::Permissions::from_mode(*rng.pick(DIR_MODES))).unwrap();
        }
        7 => {
            let t = if rng.below(2) == 0 {
                "short".to_string()
            } else {
                format!("../{}", "long-target/".repeat(1 + rng.below(20) as usize))
            };
            std::os::unix::fs::symlink(t, &p).unwrap();
        }
        8 => nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap(),
        _ => {
            // A hard link to a regular file of this directory, if any.
            let f = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|q| fs::symlink_metadata(q).unwrap().is_file());
            if let Some(f) = f {
                fs::hard_link(f, &p).unwrap();
            }
        }
    }
}

fn all_paths(root: &Path) -> Vec<PathBuf> {
    snapshot(root)
        .into_keys()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| root.join(p))
        .collect()
}

/// One generation of changes: rewrites, appends, deletions, mode changes,
/// type changes, new entries.
pub(crate) fn mutate(root: &Path, rng: &mut Rng) {
    let paths = all_paths(root);
    for p in paths {
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        match rng.below(12) {
            0 if m.is_file() => write_file(&p, rng),
            1 if m.is_file() => {
                let _ = fs::set_permissions(&p, fs::Permissions::from_mode(0o644));
                let mut f = fs::OpenOptions::new().append(true).open(&p).unwrap();
                f.write_all(&rng.sized(0, 30_000)).unwrap();
                drop(f);
                set_mtime(&p, rng);
            }
            2 if !m.is_dir() => fs::remove_file(&p).unwrap(),
            3 if m.is_dir() && rng.below(3) == 0 => fs::remove_dir_all(&p).unwrap(),
            4 if m.is_file() => {
                fs::set_permissions(&p, fs::Permissions::from_mode(*rng.pick(FILE_MODES))).unwrap()
            }
            5 if m.is_file() => {
                fs::remove_file(&p).unwrap();
                fs::create_dir(&p).unwrap();
            }
            6 if m.is_dir() => add_entry(&p, rng, 2),
            _ => {}
        }
    }
    for _ in 0..3 {
        add_entry(root, rng, 0);
    }
}

fn export_at(pfs: &Path, tid: u64, target: &Path) {
    ok(&[
        "export",
        &format!("{}@@{tid:#018x}", pfs.display()),
        target.to_str().unwrap(),
    ]);
}

#[test]
fn random_trees_round_trip_at_every_tid_on_master_and_slave() {
    for seed in [1u64, 0x5eed, 0xdead_beef] {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_master(dir.path(), "src");
        let master = store.join("master");
        let tree = dir.path().join("tree");
        fs::create_dir(&tree).unwrap();
        let mut rng = Rng(seed);
        for _ in 0..8 {
            add_entry(&tree, &mut rng, 0);
        }
        let mut history = Vec::new();
        for g in 0..4 {
            if g > 0 {
                mutate(&tree, &mut rng);
            }
            let tid = import(&tree, &master);
            history.push((tid, snapshot(&tree)));
        }
        for (i, (tid, want)) in history.iter().enumerate() {
            let out = dir.path().join(format!("m{i}"));
            export_at(&master, *tid, &out);
            assert_same_tree(
                want,
                &snapshot(&out),
                &format!("seed {seed:#x} master @ {tid:#x}"),
            );
        }

        let dst = new_store(dir.path(), "dst");
        let slave = dst.join("slave");
        pipe_ok(
            &["-i", "0", "mirror-read", master.to_str().unwrap()],
            &["-y", "mirror-write", slave.to_str().unwrap()],
        );
        for (i, (tid, want)) in history.iter().enumerate() {
            let out = dir.path().join(format!("s{i}"));
            export_at(&slave, *tid, &out);
            assert_same_tree(
                want,
                &snapshot(&out),
                &format!("seed {seed:#x} slave @ {tid:#x}"),
            );
        }
        // Without a TID a slave exports as of its sync point: the newest.
        let out = dir.path().join("s-default");
        ok(&["export", slave.to_str().unwrap(), out.to_str().unwrap()]);
        assert_same_tree(&history[3].1, &snapshot(&out), "slave default TID");
        let beyond = sync_end(&dst, 1) + 1;
        let out = run(&[
            "export",
            &format!("{}@@{beyond:#x}", slave.display()),
            dir.path().join("beyond").to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1));
        assert_stderr_has(&out, "beyond the slave's sync point");
    }
}

#[test]
fn hard_links_stay_one_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_master(dir.path(), "s");
    let master = store.join("master");
    let tree = tree(dir.path(), [("f", b"shared")]);
    fs::create_dir(tree.join("d")).unwrap();
    fs::hard_link(tree.join("f"), tree.join("d/g")).unwrap();
    import(&tree, &master);
    let out = dir.path().join("out");
    ok(&["export", master.to_str().unwrap(), out.to_str().unwrap()]);
    let a = fs::metadata(out.join("f")).unwrap();
    let b = fs::metadata(out.join("d/g")).unwrap();
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    // The inode records the links inside the tree.
    let recs = as_of(&store, 1, u64::MAX);
    let links: Vec<u64> = recs
        .iter()
        .filter(|(k, _)| k.3 == rectype::INODE)
        .filter_map(|(_, (_, d))| InodeData::decode(d))
        .filter(|i| i.obj_type == objtype::REGFILE)
        .map(|i| i.nlinks)
        .collect();
    assert_eq!(links, vec![2]);
}

/// The records a TID created, as (localization type, obj_id, rec_type).
fn created_at(store: &Path, tid: u64) -> Vec<(u32, i64, u16)> {
    as_of(store, 1, tid)
        .into_keys()
        .filter(|k| k.4 == tid)
        .map(|k| (k.0, k.1, k.3))
        .collect()
}

#[test]
fn reimport_writes_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_master(dir.path(), "s");
    let master = store.join("master");
    let mut rng = Rng(7);
    let tree = tree(
        dir.path(),
        (0..20).map(|i| (format!("f{i}"), rng.bytes(50_000))),
    );
    let t1 = import(&tree, &master);
    // Nothing changed: no new TID, nothing written; the tree is the PFS
    // as of its sync point.
    let sync = sync_end(&store, 1);
    assert!(sync >= t1);
    let out = ok(&["import", tree.to_str().unwrap(), master.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains(&format!(
            "0 changed, 0 removed, 0 bytes read, TID {sync:#018x}"
        )),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(sync_end(&store, 1), sync);

    // One block of one file rewritten in place: its inode and that block.
    let f = tree.join("f3");
    let f_obj = |tid| {
        let recs = as_of(&store, 1, tid);
        recs.iter()
            .find(|(k, (_, d))| k.3 == rectype::DIRENTRY && d.ends_with(b"f3"))
            .map(|(_, (_, d))| i64::from_le_bytes(d[..8].try_into().unwrap()))
            .unwrap()
    };
    let obj = f_obj(t1);
    {
        use std::os::unix::fs::FileExt;
        let h = fs::OpenOptions::new().write(true).open(&f).unwrap();
        h.write_all_at(b"changed", 20_000).unwrap();
    }
    set_mtime(&f, &mut rng);
    let t2 = import(&tree, &master);
    assert!(t2 > t1);
    // And the import's snapshot, at its TID (cli.md §13.4).
    assert_eq!(
        created_at(&store, t2),
        vec![
            (LOCALIZE_INODE, 1, rectype::SNAPSHOT),
            (LOCALIZE_INODE, obj, rectype::INODE),
            (LOCALIZE_MISC, obj, rectype::DATA)
        ]
    );
    // A removed file: its entry, inode and data get a delete_tid.
    fs::remove_file(tree.join("f5")).unwrap();
    let before = as_of(&store, 1, t2);
    let t3 = import(&tree, &master);
    let after = as_of(&store, 1, t3);
    // The root directory's mtime moved: a new version of its inode.
    assert_eq!(
        created_at(&store, t3),
        vec![
            (LOCALIZE_INODE, 1, rectype::INODE),
            (LOCALIZE_INODE, 1, rectype::SNAPSHOT)
        ]
    );
    let gone: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    assert_eq!(
        gone.len(),
        1 + 1 + 1 + 4,
        "root inode, entry, inode, 4 blocks: {gone:x?}"
    );
}

/// Puts the inode of object `obj` (its type, parent directory and
/// cap_flags) into an import transaction.
fn put_object(t: &mut Txn<'_>, obj: i64, obj_type: u8, parent: i64, cap_flags: u8) {
    let ino = InodeData {
        mode: 0o755,
        obj_type,
        cap_flags,
        nlinks: 1,
        parent_obj_id: parent,
        ..Default::default()
    };
    t.put(&inode(obj), obj_type, &ino.encode()).unwrap();
}

/// Puts an entry `name` -> `obj` into directory `dir` at the given
/// localization type and key.
fn put_entry(t: &mut Txn<'_>, lo: u32, dir: i64, key: i64, name: &[u8], obj: i64, obj_type: u8) {
    let id = RecordId {
        localization: lo,
        obj_id: dir,
        rec_type: rectype::DIRENTRY,
        key,
    };
    t.put(&id, obj_type, &direntry(obj, 1, name)).unwrap();
}

/// A version-1 directory (no DIR_LOCAL_INO, as older HAMMER filesystems
/// made them) keeps its entries in MISC records, which import looks up
/// by directory instead of scanning MISC whole: a name gone from the
/// tree is still deleted there, a kept one not written twice.
#[test]
fn entries_of_a_version_1_directory_are_diffed_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_master(dir.path(), "s");
    let master = store.join("master");
    let caps_v1 = 1; // CAP_DIRHASH_ALG1 alone
    let mut s = open(&store, 1);
    let mut t = s.begin().unwrap();
    let old_dir = 0x100;
    put_object(&mut t, old_dir, objtype::DIRECTORY, 1, caps_v1);
    let key = namekey(5, b"old");
    put_entry(
        &mut t,
        LOCALIZE_INODE,
        1,
        key,
        b"old",
        old_dir,
        objtype::DIRECTORY,
    );
    for (obj, name) in [(0x101, &b"keep"[..]), (0x102, b"drop")] {
        put_object(&mut t, obj, objtype::REGFILE, old_dir, 0);
        let key = namekey(caps_v1, name);
        put_entry(
            &mut t,
            LOCALIZE_MISC,
            old_dir,
            key,
            name,
            obj,
            objtype::REGFILE,
        );
    }
    t.commit().unwrap();
    drop(s);

    let tree = tree(dir.path(), [("old/keep", "k"), ("old/new", "n")]);
    let tid = import(&tree, &master);
    let mut entries: Vec<(u32, Vec<u8>)> = as_of(&store, 1, tid)
        .into_iter()
        .filter(|(k, _)| k.1 == old_dir && k.3 == rectype::DIRENTRY)
        .map(|(k, (_, d))| (k.0, d[16..].to_vec()))
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            (LOCALIZE_MISC, b"keep".to_vec()),
            (LOCALIZE_MISC, b"new".to_vec())
        ],
        "{entries:?}"
    );
}

/// Two live entries of one name in a directory (a damaged or hostile
/// PFS): import leaves one, as the tree has one.
#[test]
fn a_name_entered_twice_is_left_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_master(dir.path(), "s");
    let master = store.join("master");
    let mut s = open(&store, 1);
    let mut t = s.begin().unwrap();
    for (obj, collision) in [(0x101, 0), (0x102, 1)] {
        put_object(&mut t, obj, objtype::REGFILE, 1, 0);
        let key = namekey(5, b"dup") + collision;
        put_entry(
            &mut t,
            LOCALIZE_INODE,
            1,
            key,
            b"dup",
            obj,
            objtype::REGFILE,
        );
    }
    t.commit().unwrap();
    drop(s);

    let tree = tree(dir.path(), [("dup", "d")]);
    let tid = import(&tree, &master);
    let dups = as_of(&store, 1, tid)
        .into_iter()
        .filter(|(k, (_, d))| k.1 == 1 && k.3 == rectype::DIRENTRY && d.ends_with(b"dup"))
        .count();
    assert_eq!(dups, 1);
}

/// A symlink changed in place across imports, between short (inline in
/// the inode) and long (a FIX record) targets: every export shows the
/// current target, and a target that became short leaves no live FIX
/// record behind.
#[test]
fn symlink_targets_follow_every_change_of_length() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_master(dir.path(), "s");
    let master = store.join("master");
    let tree = tree(dir.path(), [("f", "x")]);
    let link = tree.join("l");
    let long = |c: &str| format!("../{}", c.repeat(30));
    for (i, target) in [
        "short".to_string(),
        "other".to_string(),
        long("a"),
        long("b"),
        "short-again".to_string(),
        "tiny".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
        let tid = import(&tree, &master);
        let out = dir.path().join(format!("x{i}"));
        export_at(&master, tid, &out);
        assert_eq!(
            fs::read_link(out.join("l")).unwrap().as_os_str().as_bytes(),
            target.as_bytes()
        );
        let fix = as_of(&store, 1, tid)
            .into_keys()
            .filter(|k| k.3 == rectype::FIX)
            .count();
        assert_eq!(fix, usize::from(target.len() > 24), "{target}");
    }
}

/// A file rewritten in place with its size and mtime put back still
/// changed: its ctime moved, and re-import (which skips a file whose
/// size, mtime and ctime are unchanged without opening it) reads it.
#[test]
fn a_rewrite_that_keeps_size_and_mtime_is_still_imported() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_master(dir.path(), "s");
    let master = store.join("master");
    let mut rng = Rng(11);
    let tree = tree(
        dir.path(),
        (0..5).map(|i| (format!("f{i}"), rng.bytes(10_000))),
    );
    let f = tree.join("f2");
    let mtime = fs::metadata(&f).unwrap().modified().unwrap();
    import(&tree, &master);
    // The next write must land in a later clock tick than the import saw.
    std::thread::sleep(Duration::from_millis(50));
    let new = rng.bytes(10_000);
    fs::write(&f, &new).unwrap();
    fs::File::open(&f)
        .unwrap()
        .set_times(fs::FileTimes::new().set_modified(mtime))
        .unwrap();
    assert_eq!(fs::metadata(&f).unwrap().modified().unwrap(), mtime);
    let t2 = import(&tree, &master);
    let x = dir.path().join("x");
    export_at(&master, t2, &x);
    assert_eq!(fs::read(x.join("f2")).unwrap(), new);
    assert_eq!(
        fs::read(x.join("f1")).unwrap(),
        fs::read(tree.join("f1")).unwrap()
    );
}

/// A renamed file and a renamed directory keep their objects: the
/// re-import writes directory entries and inodes, no file data, and
/// removes nothing; the export as of each TID is the tree as it was. A
/// file replaced under its name by a new one (as editors save) keeps its
/// object too.
#[test]
fn renames_keep_their_objects_and_their_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_master(dir.path(), "s");
    let master = store.join("master");
    let mut rng = Rng(11);
    let tree = tree(
        dir.path(),
        [
            ("a/big", rng.bytes(300_000)),
            ("a/deep/inner", rng.bytes(70_000)),
            ("b/edited", rng.bytes(40_000)),
        ],
    );
    let t1 = import(&tree, &master);
    let was = snapshot(&tree);

    fs::rename(tree.join("a/big"), tree.join("b/big-moved")).unwrap();
    fs::rename(tree.join("a/deep"), tree.join("b/deep-moved")).unwrap();
    let tmp = tree.join("b/.edited.tmp");
    fs::write(&tmp, fs::read(tree.join("b/edited")).unwrap()).unwrap();
    fs::rename(&tmp, tree.join("b/edited")).unwrap();
    let (line, t2) = import_summary(&tree, &master);
    assert!(line.contains(", 0 removed,"), "{line}");
    assert!(t2 > t1);
    let created = created_at(&store, t2);
    // The moved entries, their parents' and the moved objects' inodes.
    assert!(
        created.iter().any(|&(_, _, rt)| rt == rectype::DIRENTRY),
        "{created:x?}"
    );
    assert!(
        created.iter().all(|&(_, _, rt)| rt != rectype::DATA),
        "no data record is written again: {created:x?}"
    );
    export_at(&master, t1, &dir.path().join("at1"));
    assert_same_tree(&was, &snapshot(&dir.path().join("at1")), "as of t1");
    export_at(&master, t2, &dir.path().join("at2"));
    assert_same_tree(
        &snapshot(&tree),
        &snapshot(&dir.path().join("at2")),
        "as of t2",
    );
}

#[test]
fn import_refuses_a_slave_and_export_a_non_empty_target() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_master(dir.path(), "s");
    ok(&["pfs-slave", store.join("slave").to_str().unwrap()]);
    let tree = tree(dir.path(), [("f", b"x")]);
    let out = run(&[
        "import",
        tree.to_str().unwrap(),
        store.join("slave").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_has(&out, "PFS is a slave; import needs a master");

    import(&tree, &store.join("master"));
    let target = dir.path().join("t");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("old"), b"o").unwrap();
    let m = store.join("master");
    let out = run(&["export", m.to_str().unwrap(), target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_has(&out, "target is not empty");
    // -F writes into it, replacing what is in the way.
    fs::write(target.join("f"), b"in the way").unwrap();
    ok(&[
        "-F",
        "export",
        m.to_str().unwrap(),
        target.to_str().unwrap(),
    ]);
    assert_eq!(fs::read(target.join("f")).unwrap(), b"x");
    assert_eq!(fs::read(target.join("old")).unwrap(), b"o");

    let out = run(&[
        "export",
        &format!("{}@@zz", m.display()),
        dir.path().join("u").to_str().unwrap(),
    ]);
    assert_stderr_has(&out, "bad TID 'zz'");
}

/// A master whose records were written by hand to attack an export, then
/// mirrored into a slave over a pipe.
#[test]
fn hostile_stream_never_writes_outside_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    let mut s = open(&src, 1);
    let mut t = s.begin().unwrap();
    let file = |size: u64, parent| InodeData {
        mode: 0o644,
        obj_type: objtype::REGFILE,
        nlinks: 1,
        size,
        parent_obj_id: parent,
        ..Default::default()
    };
    let ent = |t: &mut hammer_mirror::pfs::store::Txn<'_>,
               dir: i64,
               name: &[u8],
               obj: i64,
               ot: u8,
               k: i64| {
        let id = RecordId {
            localization: LOCALIZE_INODE,
            obj_id: dir,
            rec_type: rectype::DIRENTRY,
            key: namekey(5, name) + k,
        };
        t.put(&id, ot, &direntry(obj, 1, name)).unwrap();
    };
    let long = vec![b'L'; 300];
    let evil_names: [&[u8]; 5] = [b"..", b"a/b", &long, b".", b""];
    for (i, n) in evil_names.iter().enumerate() {
        let obj = 0x200 + i as i64;
        t.put(&inode(obj), objtype::REGFILE, &file(5, 1).encode())
            .unwrap();
        t.put(
            &data(obj, 16),
            objtype::REGFILE,
            b"evil!\0\0\0\0\0\0\0\0\0\0\0",
        )
        .unwrap();
        ent(&mut t, 1, n, obj, objtype::REGFILE, 0);
    }
    // A symlink out of the target, then a directory entry of the same name
    // whose object is a directory: export must not go through the link.
    let mut link = InodeData {
        mode: 0o777,
        obj_type: objtype::SOFTLINK,
        nlinks: 1,
        parent_obj_id: 1,
        ..Default::default()
    };
    let outside = dir.path().join("outside-of-the-export-target");
    let target_text = format!("{}", outside.display());
    assert!(target_text.len() > 24);
    link.size = target_text.len() as u64;
    t.put(&inode(0x300), objtype::SOFTLINK, &link.encode())
        .unwrap();
    t.put(
        &RecordId {
            localization: LOCALIZE_MISC,
            obj_id: 0x300,
            rec_type: rectype::FIX,
            key: 1,
        },
        objtype::SOFTLINK,
        target_text.as_bytes(),
    )
    .unwrap();
    ent(&mut t, 1, b"escape", 0x300, objtype::SOFTLINK, 0);
    let dirino = InodeData {
        mode: 0o755,
        obj_type: objtype::DIRECTORY,
        cap_flags: 5,
        nlinks: 1,
        parent_obj_id: 1,
        ..Default::default()
    };
    t.put(&inode(0x301), objtype::DIRECTORY, &dirino.encode())
        .unwrap();
    ent(&mut t, 1, b"escape", 0x301, objtype::DIRECTORY, 1);
    t.put(&inode(0x302), objtype::REGFILE, &file(5, 0x301).encode())
        .unwrap();
    t.put(
        &data(0x302, 16),
        objtype::REGFILE,
        b"evil!\0\0\0\0\0\0\0\0\0\0\0",
    )
    .unwrap();
    ent(&mut t, 0x301, b"planted", 0x302, objtype::REGFILE, 0);
    // A directory that contains its own parent: a loop.
    t.put(&inode(0x303), objtype::DIRECTORY, &dirino.encode())
        .unwrap();
    ent(&mut t, 1, b"sub", 0x303, objtype::DIRECTORY, 0);
    ent(&mut t, 0x303, b"loop", 1, objtype::DIRECTORY, 0);
    // An inode that is not one.
    t.put(&inode(0x500), objtype::REGFILE, &[7u8; 100]).unwrap();
    ent(&mut t, 1, b"garbled", 0x500, objtype::REGFILE, 0);
    // A good file, to show the rest is exported.
    t.put(&inode(0x400), objtype::REGFILE, &file(3, 1).encode())
        .unwrap();
    t.put(
        &data(0x400, 16),
        objtype::REGFILE,
        b"ok\n\0\0\0\0\0\0\0\0\0\0\0\0\0",
    )
    .unwrap();
    ent(&mut t, 1, b"good", 0x400, objtype::REGFILE, 0);
    t.commit().unwrap();
    drop(s);

    let slave = new_store(dir.path(), "dst").join("slave");
    pipe_ok(
        &[
            "-i",
            "0",
            "mirror-read",
            src.join("master").to_str().unwrap(),
        ],
        &["-y", "mirror-write", slave.to_str().unwrap()],
    );

    let jail = dir.path().join("jail");
    fs::create_dir(&jail).unwrap();
    let target = jail.join("target");
    let before: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let out = run(&["export", slave.to_str().unwrap(), target.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        "entry '..' refused: name is . or ..",
        "entry '.' refused",
        "entry '' refused: empty name",
        "entry 'a/b' refused: name contains '/'",
        "refused: name longer than 255 bytes",
        "entry 'escape' appears twice",
        "is linked more than once",
        "inode 0x0000000000000500: payload is not a version-1 inode of 128 bytes",
        "garbled: object 0x0000000000000500 has no inode",
        "could not be exported",
    ] {
        assert_stderr_has(&out, want);
    }
    // Nothing appeared outside the target.
    assert!(!outside.exists());
    let after: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after);
    assert_eq!(fs::read_dir(&jail).unwrap().count(), 1);
    let names: Vec<_> = {
        let mut v: Vec<_> = fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names, ["escape", "good", "sub"]);
    assert_eq!(fs::read_dir(target.join("sub")).unwrap().count(), 0);
    assert_eq!(fs::read(target.join("good")).unwrap(), b"ok\n");
    // "escape" is whichever entry sorts first; never a path out.
    let m = fs::symlink_metadata(target.join("escape")).unwrap();
    if m.file_type().is_symlink() {
        assert_eq!(fs::read_link(target.join("escape")).unwrap(), outside);
    } else {
        assert!(m.is_dir());
    }
}

#[test]
fn import_of_a_changing_tree_is_consistent_or_skips_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_master(dir.path(), "s");
    let master = store.join("master");
    let size = 3 << 20;
    let tree = tree(
        dir.path(),
        std::iter::once(("hot".to_string(), vec![b'A'; size]))
            .chain((0..50).map(|i| (format!("cold{i}"), vec![b'c'; 10_000]))),
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let hot = tree.join("hot");
        std::thread::spawn(move || {
            let mut fill = b'B';
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // In place, so a reader can see a mix of both contents.
                use std::os::unix::fs::FileExt;
                let f = fs::OpenOptions::new().write(true).open(&hot).unwrap();
                for chunk in 0..(size / 65536) {
                    f.write_all_at(&[fill; 65536], (chunk * 65536) as u64)
                        .unwrap();
                }
                fill = if fill == b'A' { b'B' } else { b'A' };
                // Quiet spells let some imports through.
                std::thread::sleep(Duration::from_millis(40));
            }
        })
    };
    let mut outcomes = (0, 0);
    for i in 0..6 {
        let before = sync_end(&store, 1);
        let out = run(&["import", tree.to_str().unwrap(), master.to_str().unwrap()]);
        if out.status.success() {
            outcomes.0 += 1;
            let target = dir.path().join(format!("x{i}"));
            ok(&["export", master.to_str().unwrap(), target.to_str().unwrap()]);
            let hot = fs::read(target.join("hot")).unwrap();
            assert_eq!(hot.len(), size);
            assert!(hot.iter().all(|&b| b == hot[0]), "a torn file was imported");
        } else {
            // Skipped: the rest is imported, the file keeps its version.
            outcomes.1 += 1;
            assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
            assert_stderr_has(
                &out,
                "hot: kept changing while being read (5 tries); skipped, ",
            );
            assert!(sync_end(&store, 1) >= before);
            let target = dir.path().join(format!("x{i}"));
            ok(&["export", master.to_str().unwrap(), target.to_str().unwrap()]);
            assert!(fs::read_dir(&target).unwrap().count() >= 50);
            match fs::read(target.join("hot")) {
                Ok(hot) => {
                    assert_stderr_has(&out, "its previous version kept");
                    assert!(hot.iter().all(|&b| b == hot[0]), "a torn file was kept");
                }
                Err(_) => assert_stderr_has(&out, "not imported"),
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    eprintln!("imports ok, refused: {outcomes:?}");
    assert_eq!(outcomes.0 + outcomes.1, 6);
}

#[test]
fn special_files_are_imported_and_reported_on_export() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_master(dir.path(), "s");
    let master = store.join("master");
    let tree = tree(dir.path(), [("f", b"data")]);
    let _sock = std::os::unix::net::UnixListener::bind(tree.join("sock")).unwrap();
    nix::unistd::mkfifo(
        &tree.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    import(&tree, &master);
    let types: Vec<u8> = as_of(&store, 1, u64::MAX)
        .iter()
        .filter(|(k, _)| k.3 == rectype::INODE && k.1 != 1)
        .filter_map(|(_, (_, d))| InodeData::decode(d))
        .map(|i| i.obj_type)
        .collect();
    let mut sorted = types.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        vec![objtype::REGFILE, objtype::FIFO, objtype::SOCKET]
    );
    let out_dir = dir.path().join("out");
    let out = run(&[
        "export",
        master.to_str().unwrap(),
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_has(&out, "sock: socket not created");
    assert_eq!(fs::read(out_dir.join("f")).unwrap(), b"data");
    assert!(fs::symlink_metadata(out_dir.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
}

/// Everything below `dir` handed to uid/gid 65534 ("nobody"), for a test
/// that needs a user whom permissions bind.
fn give_to_nobody(dir: &Path) {
    let nobody = Some(nix::unistd::Uid::from_raw(65534));
    let group = Some(nix::unistd::Gid::from_raw(65534));
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        nix::unistd::fchownat(
            None,
            &p,
            nobody,
            group,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            todo.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
}

#[test]
fn an_unreadable_file_is_skipped_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_master(dir.path(), "s");
    let tree = tree(dir.path(), [("secret", b"x")]);
    fs::set_permissions(tree.join("secret"), fs::Permissions::from_mode(0o000)).unwrap();
    let before = sync_end(&store, 1);
    let master = store.join("master");
    let args = ["import", tree.to_str().unwrap(), master.to_str().unwrap()];
    // Root reads every file: as root, the import runs as nobody.
    let out = if nix::unistd::geteuid().is_root() {
        give_to_nobody(dir.path());
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_hammer"))
            .args(args)
            .output()
            .expect("setpriv (util-linux) runs")
    } else {
        run(&args)
    };
    // Skipped, named, and the run says partial (cli.md §19).
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_stderr_has(&out, "secret: Permission denied; skipped, not imported\n");
    assert!(sync_end(&store, 1) >= before);
}

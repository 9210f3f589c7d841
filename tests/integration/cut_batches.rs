//! A batch cut before its SYNC never changes the slave as of its sync
//! point, whatever it carried: hostile streams that would sweep with an
//! end TID at or below the sync point, carry a delete_tid at or below it
//! or create a record at or below it are applied with the binary and cut;
//! `export` at the sync point and `pfs-status` are then byte-identical and
//! a rerun converges. A complete older stream still moves the sync point
//! back, as in the original.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;
use hammer_mirror::model::format::{direntry, namekey, objtype};
use hammer_mirror::ondisk::{
    rectype, BaseElm, LeafElm, PseudofsData, BTREE_TYPE_RECORD, LOCALIZE_INODE, LOCALIZE_MISC,
};
use hammer_mirror::pfs::Pfs;
use hammer_mirror::wire::crc::crc32c;
use hammer_mirror::wire::{mrec_type, Mrecord};

/// What `export` of a PFS at a TID gives: the files (directories end in
/// `/`), the exit status and stderr.
#[derive(Debug, PartialEq, Eq)]
struct Exported {
    files: Vec<(String, Vec<u8>)>,
    code: Option<i32>,
    stderr: String,
}

/// The slave's published state: `export` at its sync point and
/// `pfs-status`.
#[derive(Debug, PartialEq, Eq)]
struct Published {
    export: Exported,
    status: String,
}

fn published(slave: &Path, sync: u64, scratch: &Path) -> Published {
    let status = ok(&["pfs-status", slave.to_str().unwrap()]);
    Published {
        export: exported(slave, sync, scratch),
        status: text(&status.stdout),
    }
}

fn exported(pfs: &Path, tid: u64, scratch: &Path) -> Exported {
    let out = scratch.join(format!("export-{}", rand_name()));
    let e = run(&[
        "export",
        &format!("{}@@{tid:#018x}", pfs.display()),
        out.to_str().unwrap(),
    ]);
    let mut files = Vec::new();
    let mut stack = vec![out.clone()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for ent in rd {
            let p = ent.unwrap().path();
            let rel = p.strip_prefix(&out).unwrap().display().to_string();
            if p.is_dir() {
                files.push((rel + "/", Vec::new()));
                stack.push(p);
            } else {
                files.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    files.sort();
    Exported {
        files,
        code: e.status.code(),
        stderr: text(&e.stderr),
    }
}

/// Asserts the slave exports as the master does at the slave's sync
/// point (record payloads differ: directory entries are re-localized);
/// returns that TID.
fn assert_exports_alike(st: &Setup) -> u64 {
    let t = sync_end(&st.root, 2);
    let m = exported(&st.master, t, &st.scratch);
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    assert_eq!(exported(&st.slave, t, &st.scratch), m, "as of {t:#x}");
    t
}

fn rand_name() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A store with a master holding a small tree imported twice, mirrored
/// into a slave (PFS#2), then imported once more without mirroring.
struct Setup {
    _dir: tempfile::TempDir,
    scratch: PathBuf,
    root: PathBuf,
    master: PathBuf,
    slave: PathBuf,
    tree: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().to_path_buf();
    let root = store_with_master(&scratch, "s");
    let master = root.join("master");
    let slave = root.join("slave");
    let tree = tree(
        &scratch,
        [
            ("a", b"first file\n".to_vec()),
            ("sub/b", vec![7u8; 40_000]),
        ],
    );
    import(&tree, &master);
    fs::write(tree.join("a"), b"first file, again\n").unwrap();
    fs::write(tree.join("sub/c"), b"third\n").unwrap();
    import(&tree, &master);
    mirror(&master, &slave);
    fs::remove_file(tree.join("sub/c")).unwrap();
    fs::write(tree.join("d"), b"later\n").unwrap();
    import(&tree, &master);
    Setup {
        _dir: dir,
        scratch,
        root,
        master,
        slave,
        tree,
    }
}

fn mirror(master: &Path, slave: &Path) {
    pipe_ok(
        &["mirror-read", master.to_str().unwrap()],
        &["-y", "mirror-write", slave.to_str().unwrap()],
    );
}

/// `stream` into mirror-write of `slave`, which may stop reading at the
/// first bad record.
fn write_stream(slave: &Path, stream: &[u8]) -> Output {
    run_with_input(
        hammer().args(["mirror-write", slave.to_str().unwrap()]),
        stream,
    )
}

/// PFSD#1 and PFSD#2 of the master with this end TID.
fn headers(root: &Path, tid_end: u64) -> Vec<u8> {
    let pfsd: PseudofsData = open(root, 1).get_pseudofs().unwrap();
    stream(&[
        Mrecord::Pfsd { version: 1, pfsd },
        Mrecord::Pfsd {
            version: 1,
            pfsd: PseudofsData {
                sync_end_tid: tid_end,
                ..pfsd
            },
        },
    ])
}

/// The slave's live record of this object and type.
fn slave_record(root: &Path, obj_id: i64, rec_type: u16) -> LeafElm {
    let mut found = None;
    open(root, 2)
        .for_each_record(|l, _| {
            if l.base.obj_id == obj_id && l.base.rec_type == rec_type && l.base.delete_tid == 0 {
                found = Some(*l);
            }
        })
        .unwrap();
    found.unwrap()
}

/// `n` PASS records for keys the slave lacks, before every record it has
/// (sweeping nothing) or after them all (the first sweeps everything):
/// enough of them fill several MIRROR_WRITE calls.
fn passes(s: &mut Vec<u8>, n: usize, after_all: bool) {
    let (localization, first) = if after_all {
        (LOCALIZE_MISC, 0x7000_0000_0000_0000)
    } else {
        (LOCALIZE_INODE, i64::MIN)
    };
    for i in 0..n {
        let leaf = LeafElm {
            base: BaseElm {
                localization,
                obj_id: first + i as i64,
                rec_type: rectype::DATA,
                key: 0,
                create_tid: 1,
                btype: BTREE_TYPE_RECORD,
                ..Default::default()
            },
            ..Default::default()
        };
        Mrecord::Pass { leaf }.encode_into(s);
    }
}

#[test]
fn batches_cut_before_sync_leave_the_published_slave_as_it_was() {
    let st = setup();
    let sync = sync_end(&st.root, 2);
    let master_end = sync_end(&st.root, 1);
    assert!(master_end > sync);
    let before = published(&st.slave, sync, &st.scratch);
    assert_eq!(before.export.code, Some(0), "{}", before.export.stderr);
    assert!(before.export.files.iter().any(|f| f.0 == "a"), "{before:?}");
    let records_before = as_of(&st.root, 2, sync);

    // 1. A sweep stamped at the sync point: a PASS past every record
    // marks them all deleted at tid_end. The first call (512 KiB of
    // records) changes nothing, the second starts the sweep, the third
    // continues it, then the stream ends.
    let mut sweep = headers(&st.root, sync);
    passes(&mut sweep, 8000, false);
    passes(&mut sweep, 12000, true);
    let root_inode = slave_record(&st.root, 1, rectype::INODE);
    // 2. A PASS deleting the root directory at the sync point.
    let mut deleted_root = headers(&st.root, master_end);
    let mut leaf = root_inode;
    leaf.base.delete_tid = sync;
    leaf.delete_ts = 1;
    Mrecord::Pass { leaf }.encode_into(&mut deleted_root);
    // 3. A REC creating, before the sync point, an entry in the root
    // directory for an object without an inode.
    let mut created = headers(&st.root, master_end);
    let name = b"intruder";
    let data = direntry(0x7777_0000, 1, name);
    let leaf = LeafElm {
        base: BaseElm {
            localization: LOCALIZE_INODE,
            obj_id: 1,
            rec_type: rectype::DIRENTRY,
            key: namekey(5, name),
            create_tid: sync - 1,
            obj_type: objtype::REGFILE,
            btype: BTREE_TYPE_RECORD,
            ..Default::default()
        },
        data_offset: 1,
        data_len: data.len() as i32,
        data_crc: crc32c(&data),
        ..Default::default()
    };
    Mrecord::Rec {
        rtype: mrec_type::REC,
        leaf,
        data: &data,
    }
    .encode_into(&mut created);
    // 4. The same record changes sent, each followed by IDLE (a batch
    // that ends without SYNC) and a record-less batch that does SYNC.
    let mut idle = deleted_root.clone();
    Mrecord::Idle { tid: 1 }.encode_into(&mut idle);
    idle.extend(headers(&st.root, master_end));
    Mrecord::Sync { tid: 1 }.encode_into(&mut idle);
    Mrecord::Term { tid: 1 }.encode_into(&mut idle);

    for (what, stream) in [
        ("sweep at the sync point", sweep),
        ("delete_tid at the sync point", deleted_root),
        ("record created before the sync point", created),
        ("changes of a batch ended by IDLE", idle),
    ] {
        let out = write_stream(&st.slave, &stream);
        let synced = sync_end(&st.root, 2);
        if what.contains("IDLE") {
            assert!(out.status.success(), "{what}: {}", text(&out.stderr));
            assert_eq!(synced, master_end, "{what}");
            assert!(as_of(&st.root, 2, sync) == records_before, "{what}");
            let restored = PseudofsData {
                sync_end_tid: sync,
                ..open(&st.root, 2).get_pseudofs().unwrap()
            };
            open(&st.root, 2).set_pseudofs(&restored).unwrap();
        } else {
            assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out.stderr));
            assert_eq!(synced, sync, "{what}");
        }
        assert!(as_of(&st.root, 2, sync) == records_before, "{what}");
        assert_eq!(
            published(&st.slave, sync, &st.scratch),
            before,
            "{what} changed the slave as of its sync point"
        );
    }

    // A rerun converges.
    mirror(&st.master, &st.slave);
    // The master's sync point is the store's: later TIDs moved it on.
    let t = assert_exports_alike(&st);
    assert!(t >= master_end);
    let got = exported(&st.slave, t, &st.scratch);
    for f in ["a", "d", "sub/b"] {
        let want = fs::read(st.tree.join(f)).unwrap();
        assert!(got.files.iter().any(|(n, d)| n == f && *d == want), "{f}");
    }
}

/// The original's behaviour for complete streams: an older stream that
/// reaches its SYNC moves the sync point back to its end TID.
#[test]
fn a_complete_older_stream_still_moves_the_sync_point_back() {
    let st = setup();
    let old_sync = sync_end(&st.root, 2);
    let old = ok(&["mirror-read", st.master.to_str().unwrap()]).stdout;
    import(&st.tree, &st.master);
    fs::write(st.tree.join("e"), b"newer\n").unwrap();
    import(&st.tree, &st.master);
    mirror(&st.master, &st.slave);
    let newer = sync_end(&st.root, 2);
    assert!(newer > old_sync);
    let out = write_stream(&st.slave, &old);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let back = sync_end(&st.root, 2);
    assert!(back < newer && back > old_sync, "{back:#x}");
    assert_exports_alike(&st);
    mirror(&st.master, &st.slave);
    assert!(assert_exports_alike(&st) >= newer);
}

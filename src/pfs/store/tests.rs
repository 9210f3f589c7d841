//! Unit tests of the store against the rules of kernel-semantics.md §3-5.

use std::fs;

use super::*;
use crate::idhash::IdMap;
use crate::ondisk::{rectype, BaseElm, LOCALIZE_INODE, LOCALIZE_MISC, PFSD_SLAVE};
use crate::pfs::{MirrorReadReq, MirrorWriteReq};
use crate::wire::crc::crc32c;
use crate::wire::reader::BatchIter;
use crate::wire::{mrec_type, Mrecord};

fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let store = Store::create(&root).unwrap();
    (dir, store)
}

fn data_id(obj_id: i64, key: i64) -> RecordId {
    RecordId {
        localization: LOCALIZE_MISC,
        obj_id,
        rec_type: rectype::DATA,
        key,
    }
}

/// Puts one record in a transaction of its own; returns its TID.
fn put_one(store: &mut Store, id: &RecordId, data: &[u8]) -> u64 {
    let mut tx = store.begin().unwrap();
    tx.put(id, 2, data).unwrap();
    tx.commit().unwrap()
}

fn make_pfs(store: &mut Store, id: u32, slave: bool) {
    store.set_pfs_id(id);
    let p = PseudofsData {
        sync_beg_tid: 1,
        sync_end_tid: 1,
        mirror_flags: if slave { PFSD_SLAVE } else { 0 },
        ..Default::default()
    };
    store.set_pseudofs(&p).unwrap();
}

/// Reads everything of `[tid_beg, tid_end]` with a buffer of `bufsize`.
fn read_all(store: &mut Store, tid_beg: u64, tid_end: u64, bufsize: usize) -> Vec<u8> {
    let mut req = MirrorReadReq::new(tid_beg, tid_end);
    let mut buf = vec![0u8; bufsize];
    let mut stream = Vec::new();
    loop {
        let n = store.mirror_read(&mut req, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        stream.extend_from_slice(&buf[..n]);
        req.key_beg = req.key_cur;
    }
    stream
}

fn write_all(store: &mut Store, tid_beg: u64, tid_end: u64, stream: &[u8]) {
    let mut req = MirrorWriteReq::new(tid_beg, tid_end);
    let n = store.mirror_write(&mut req, stream).unwrap();
    assert_eq!(req.head_error, None);
    assert_eq!(n, stream.len());
}

fn types(stream: &[u8]) -> Vec<u32> {
    BatchIter::new(stream).map(|r| r.rec_type()).collect()
}

/// (key, create_tid, delete_tid, payload) of every record visible as of
/// `t`, localization without PFS bits.
fn view(store: &Store, t: u64) -> Vec<(BaseElm, Vec<u8>)> {
    let mut v = Vec::new();
    store
        .for_each_record(|l, d| {
            let b = l.base;
            if b.create_tid <= t && (b.delete_tid == 0 || t < b.delete_tid) {
                let mut b = b;
                b.localization &= 0xFFFF;
                b.delete_tid = 0;
                v.push((b, d.to_vec()));
            }
        })
        .unwrap();
    v
}

/// The blob files of PFS `id` in the store's directory.
fn blob_files(store: &Store, id: u32) -> Vec<std::path::PathBuf> {
    let prefix = format!(".hammer-store.pfs{id:05}.");
    std::fs::read_dir(store.root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect()
}

#[test]
fn fresh_store_has_pfs0_master_with_root() {
    let (_d, store) = new_store();
    let p = store.get_pseudofs().unwrap();
    assert!(!p.is_slave());
    assert_eq!(p.sync_beg_tid, 0);
    assert_eq!(p.shared_uuid, p.unique_uuid);
    assert!(p.sync_end_tid >= FIRST_TID);
    // The root inode and, as on HAMMER, PFS#0's own PFS record.
    let v = view(&store, u64::MAX);
    assert_eq!(v.len(), 2);
    assert_eq!((v[0].0.obj_id, v[0].0.rec_type), (1, rectype::INODE));
    assert_eq!((v[1].0.obj_id, v[1].0.rec_type), (1, rectype::PFS));
    // The root inode's bytes (kernel-semantics.md §2.1): version 1, mode
    // 0755, a directory with DIR_LOCAL_INO and ALG1, one link, uid/gid 0,
    // ctime = mtime = atime, every other byte zero.
    let d = &v[0].1;
    assert_eq!(d.len(), 128);
    assert_eq!(&d[0..2], &1u16.to_le_bytes());
    assert_eq!(&d[2..4], &0o755u16.to_le_bytes());
    assert_eq!((d[64], d[65]), (1, 0x05));
    assert_eq!(&d[72..80], &1u64.to_le_bytes());
    let ctime = &d[16..24];
    assert_ne!(ctime, &[0; 8]);
    assert_eq!((&d[112..120], &d[120..128]), (ctime, ctime));
    for zero in [4..16, 24..64, 66..72, 80..112] {
        assert!(d[zero.clone()].iter().all(|&b| b == 0), "{zero:?}");
    }
    // GET shows a master's live sync point, the record holds what was set.
    let stored = PseudofsData {
        sync_end_tid: 0,
        ..p
    };
    assert_eq!(v[1].1, stored.to_bytes().to_vec());
}

#[test]
fn missing_pfs_is_enoent_and_id_range_is_einval() {
    let (_d, mut store) = new_store();
    store.set_pfs_id(5);
    assert_eq!(store.get_pseudofs().unwrap_err().errno(), Errno::ENOENT);
    store.set_pfs_id(0x10000);
    assert_eq!(store.get_pseudofs().unwrap_err().errno(), Errno::EINVAL);
}

#[test]
fn transactions_get_increasing_tids_and_move_the_sync_point() {
    let (_d, mut store) = new_store();
    let before = store.get_pseudofs().unwrap().sync_end_tid;
    let mut tx = store.begin().unwrap();
    let t1 = tx.tid();
    tx.put(&data_id(10, 16), 2, b"0123456789abcdef").unwrap();
    tx.commit().unwrap();
    assert!(t1 > before);
    // The sync point lies one past the last record (see alloc_tid).
    assert_eq!(store.get_pseudofs().unwrap().sync_end_tid, t1 + 1);
    let mut tx = store.begin().unwrap();
    let t2 = tx.tid();
    tx.put(&data_id(10, 16), 2, b"fedcba9876543210").unwrap();
    drop(tx);
    // An abandoned transaction changes nothing, its TID is not reused.
    assert_eq!(store.get_pseudofs().unwrap().sync_end_tid, t1 + 1);
    let tx = store.begin().unwrap();
    assert!(tx.tid() >= t2);
}

#[test]
fn put_replaces_live_version_and_keeps_history() {
    let (_d, mut store) = new_store();
    let t1 = put_one(&mut store, &data_id(10, 16), b"one");
    let t2 = put_one(&mut store, &data_id(10, 16), b"two");
    let mut tx = store.begin().unwrap();
    let (leaf, data) = tx.get(&data_id(10, 16)).unwrap().unwrap();
    assert_eq!((leaf.base.create_tid, data.as_slice()), (t2, &b"two"[..]));
    assert!(tx.delete(&data_id(10, 16)).unwrap());
    assert!(!tx.delete(&data_id(10, 17)).unwrap());
    assert!(tx.get(&data_id(10, 16)).unwrap().is_none());
    let t3 = tx.commit().unwrap();
    let data_at = |t| {
        view(&store, t)
            .into_iter()
            .filter(|(b, _)| b.obj_id == 10)
            .map(|(_, d)| d)
            .collect::<Vec<_>>()
    };
    assert_eq!(data_at(t1), vec![b"one".to_vec()]);
    assert_eq!(data_at(t2), vec![b"two".to_vec()]);
    assert!(data_at(t3).is_empty());
}

#[test]
fn txn_refuses_unknown_types() {
    let (_d, mut store) = new_store();
    let mut tx = store.begin().unwrap();
    let bad = RecordId {
        rec_type: 0x0042,
        ..data_id(10, 16)
    };
    assert_eq!(tx.put(&bad, 2, b"x").unwrap_err().errno(), Errno::EINVAL);
    let bad = RecordId {
        localization: 3,
        ..data_id(10, 16)
    };
    assert_eq!(tx.put(&bad, 2, b"x").unwrap_err().errno(), Errno::EINVAL);
}

#[test]
fn mirror_read_classifies_rec_and_pass() {
    let (_d, mut store) = new_store();
    let t1 = put_one(&mut store, &data_id(10, 16), b"old");
    let t2 = put_one(&mut store, &data_id(11, 16), b"new");
    let s = read_all(&mut store, t2, t2, 1 << 19);
    let recs: Vec<_> = BatchIter::new(&s).map(|r| r.decode().unwrap()).collect();
    // Root inode and obj 10 are older: PASS, or inside a SKIP.
    for r in &recs {
        match r {
            Mrecord::Rec { leaf, data, .. } => {
                assert_eq!(leaf.base.create_tid, t2);
                assert_eq!(*data, b"new");
                assert_eq!(leaf.base.localization, LOCALIZE_MISC);
            }
            Mrecord::Pass { leaf } => assert!(leaf.base.create_tid < t2),
            Mrecord::Skip { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(recs.iter().any(|r| matches!(r, Mrecord::Rec { .. })));
    // A range ending before t2 sends nothing created at t2.
    let s = read_all(&mut store, 0, t1, 1 << 19);
    // Root inode, PFS#0's PFS record, obj 10.
    assert_eq!(types(&s), vec![1, 1, 1]);
}

#[test]
fn mirror_read_rejects_bad_ranges() {
    let (_d, mut store) = new_store();
    let mut buf = vec![0u8; 4096];
    let mut req = MirrorReadReq::new(0, u64::MAX);
    req.key_beg.localization = 0x1_0000;
    assert_eq!(
        store.mirror_read(&mut req, &mut buf).unwrap_err().errno(),
        Errno::EINVAL
    );
    let mut req = MirrorReadReq::new(0, u64::MAX);
    std::mem::swap(&mut req.key_beg, &mut req.key_end);
    assert_eq!(
        store.mirror_read(&mut req, &mut buf).unwrap_err().errno(),
        Errno::EINVAL
    );
}

#[test]
fn mirror_read_completes_with_key_cur_at_key_end() {
    let (_d, mut store) = new_store();
    let mut req = MirrorReadReq::new(0, u64::MAX);
    let mut buf = vec![0u8; 4096];
    let n = store.mirror_read(&mut req, &mut buf).unwrap();
    assert!(n > 0 && n % 8 == 0);
    assert_eq!(req.key_cur, BaseElm::KEY_END_INIT);
    req.key_beg = req.key_cur;
    assert_eq!(store.mirror_read(&mut req, &mut buf).unwrap(), 0);
}

#[test]
fn incremental_read_skips_unchanged_ranges() {
    let (_d, mut store) = new_store();
    let mut tx = store.begin().unwrap();
    for i in 0..200 {
        tx.put(&data_id(100 + i, 16), 2, b"bulk").unwrap();
    }
    tx.commit().unwrap();
    let t = put_one(&mut store, &data_id(150, 16), b"changed");
    let s = read_all(&mut store, t, t, 1 << 19);
    let ty = types(&s);
    // SKIP, PASS (old version of 150, now deleted at t), REC, SKIP.
    assert_eq!(ty, vec![5, 6, 1, 5], "{ty:?}");
}

#[test]
fn buffer_size_does_not_change_the_records() {
    let (_d, mut store) = new_store();
    let mut tx = store.begin().unwrap();
    for i in 0..50 {
        tx.put(&data_id(100 + i, 16), 2, &[i as u8; 100]).unwrap();
    }
    let t = tx.commit().unwrap();
    let big = read_all(&mut store, 0, t, 1 << 19);
    let small = read_all(&mut store, 0, t, 400);
    assert_eq!(big, small);
}

/// Mirrors master PFS 1 into slave PFS 2 from `beg` to the master's sync
/// point, then moves the slave's sync point as mirror-write does at SYNC.
fn mirror(store: &mut Store, beg: u64) -> u64 {
    store.set_pfs_id(1);
    let end = store.get_pseudofs().unwrap().sync_end_tid;
    let s = read_all(store, beg, end, 1 << 16);
    store.set_pfs_id(2);
    write_all(store, 1, end, &s);
    let mut p = store.get_pseudofs().unwrap();
    p.sync_end_tid = end;
    store.set_pseudofs(&p).unwrap();
    end
}

fn master_and_slave() -> (tempfile::TempDir, Store) {
    let (d, mut store) = new_store();
    make_pfs(&mut store, 1, false);
    make_pfs(&mut store, 2, true);
    (d, store)
}

#[test]
fn full_then_incremental_mirror_keeps_slave_equal_to_master() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(1);
    let mut tx = store.begin().unwrap();
    for i in 0..30 {
        tx.put(&data_id(100 + i, 16), 2, &[i as u8; 64]).unwrap();
    }
    tx.commit().unwrap();
    let e1 = mirror(&mut store, 0);
    store.set_pfs_id(1);
    let mut tx = store.begin().unwrap();
    tx.put(&data_id(105, 16), 2, b"rewritten").unwrap();
    tx.delete(&data_id(120, 16)).unwrap();
    tx.commit().unwrap();
    let e2 = mirror(&mut store, e1 + 1);
    for t in [e1, e2] {
        store.set_pfs_id(1);
        let m = view(&store, t);
        store.set_pfs_id(2);
        assert_eq!(view(&store, t), m, "as of {t:x}");
    }
    // Re-applying the same increment changes nothing.
    store.set_pfs_id(2);
    let before = view(&store, u64::MAX);
    mirror(&mut store, e1 + 1);
    store.set_pfs_id(2);
    assert_eq!(view(&store, u64::MAX), before);
}

#[test]
fn sweep_marks_unmentioned_records_deleted_at_tid_end() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(2);
    // A slave record the source never had.
    let t = put_one(&mut store, &data_id(7, 16), b"stale");
    store.set_pfs_id(1);
    put_one(&mut store, &data_id(9, 16), b"fresh");
    let end = mirror(&mut store, 0);
    store.set_pfs_id(2);
    let mut stale = None;
    store
        .for_each_record(|l, _| {
            if l.base.obj_id == 7 {
                stale = Some(l.base);
            }
        })
        .unwrap();
    let stale = stale.unwrap();
    assert_eq!(stale.create_tid, t);
    assert_eq!(stale.delete_tid, end);
}

#[test]
fn bad_records_change_nothing() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(1);
    put_one(&mut store, &data_id(9, 16), b"fresh");
    store.set_pfs_id(1);
    let good = read_all(&mut store, 0, u64::MAX, 1 << 16);
    let mut bad_type = Vec::new();
    let mut bad_lo = Vec::new();
    let mut bad_crc = Vec::new();
    for r in BatchIter::new(&good) {
        if let Some(Mrecord::Rec { rtype, leaf, data }) = r.decode() {
            let changed = |out: &mut Vec<u8>, change: fn(&mut LeafElm)| {
                let mut leaf = leaf;
                change(&mut leaf);
                Mrecord::Rec { rtype, leaf, data }.encode_into(out);
            };
            changed(&mut bad_type, |l| l.base.rec_type = 0x0042);
            changed(&mut bad_lo, |l| l.base.localization = 0xFFFF);
            // A record the target lacks: an existing one's payload is
            // never looked at.
            changed(&mut bad_crc, |l| {
                l.base.obj_id += 1000;
                l.data_crc ^= 1;
            });
        }
    }
    for bad in [bad_type, bad_lo, bad_crc] {
        let mut stream = good.clone();
        let at = stream.len();
        stream.extend_from_slice(&bad);
        store.set_pfs_id(2);
        let before = view(&store, u64::MAX);
        let mut req = MirrorWriteReq::new(1, u64::MAX - 1);
        let n = store.mirror_write(&mut req, &stream).unwrap();
        assert_eq!(req.head_error, Some(Errno::EINVAL));
        assert_eq!(n, at);
        assert_eq!(view(&store, u64::MAX), before);
    }
}

#[test]
fn direntry_payload_is_relocalized() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(1);
    // An entry for object 5 of PFS#1, as the master holds it.
    let ent = crate::model::format::direntry(5, 1, b"name");
    let id = RecordId {
        localization: LOCALIZE_INODE,
        obj_id: 1,
        rec_type: rectype::DIRENTRY,
        key: 0x1234_0000_0000,
    };
    put_one(&mut store, &id, &ent);
    mirror(&mut store, 0);
    store.set_pfs_id(2);
    let mut got = None;
    store
        .for_each_record(|l, d| {
            if l.base.rec_type == rectype::DIRENTRY {
                got = Some((*l, d.to_vec()));
            }
        })
        .unwrap();
    let (leaf, data) = got.unwrap();
    assert_eq!(&data[8..12], &0x2_0000u32.to_le_bytes());
    assert_eq!(leaf.data_crc, crc32c(&data));
}

#[test]
fn upgrade_rolls_back_to_sync_point_and_downgrade_raises_it() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(1);
    put_one(&mut store, &data_id(9, 16), b"v1");
    let e1 = mirror(&mut store, 0);
    store.set_pfs_id(1);
    put_one(&mut store, &data_id(9, 16), b"v2");
    // Apply the increment without moving the slave's sync point.
    store.set_pfs_id(1);
    let end = store.get_pseudofs().unwrap().sync_end_tid;
    let s = read_all(&mut store, e1 + 1, end, 1 << 16);
    store.set_pfs_id(2);
    write_all(&mut store, 1, end, &s);
    let at_sync = view(&store, e1);
    store.upgrade().unwrap();
    let p = store.get_pseudofs().unwrap();
    assert!(!p.is_slave());
    assert_eq!(view(&store, u64::MAX), at_sync);
    store.downgrade().unwrap();
    let p2 = store.get_pseudofs().unwrap();
    assert!(p2.is_slave());
    assert!(p2.sync_end_tid >= p.sync_end_tid);
}

#[test]
fn destroy_removes_records_and_hides_the_pfs() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(1);
    let mut tx = store.begin().unwrap();
    tx.put(&data_id(9, 16), 2, &[1; 4096]).unwrap();
    tx.put(&data_id(9, 16), 2, &[2; 4096]).unwrap();
    tx.put(&data_id(10, 16), 2, &[3; 4096]).unwrap();
    tx.commit().unwrap();
    let payloads = |s: &Store| -> i64 {
        s.conn
            .query_row("SELECT count(*) FROM rec WHERE boff IS NOT NULL", [], |r| {
                r.get(0)
            })
            .unwrap()
    };
    assert_eq!(payloads(&store), 2);
    let files = blob_files(&store, 1);
    assert_eq!(files.len(), 1);
    store.destroy().unwrap();
    assert_eq!(store.get_pseudofs().unwrap_err().errno(), Errno::ENOENT);
    assert!(view(&store, u64::MAX).is_empty());
    assert_eq!(payloads(&store), 0);
    assert!(
        blob_files(&store, 1).is_empty(),
        "the destroyed PFS's payloads are gone"
    );
    make_pfs(&mut store, 1, false);
    assert_eq!(view(&store, u64::MAX).len(), 1);
    put_one(&mut store, &data_id(9, 16), &[4; 4096]);
    let again = blob_files(&store, 1);
    assert_eq!(again.len(), 1);
    assert_ne!(again, files, "a new generation, not the old file reused");
    assert_eq!(view(&store, u64::MAX).len(), 2);
}

/// A handle stays with the PFS it first worked on: destroyed by another
/// handle, even re-created under its id, that PFS answers every later
/// operation of the handle with ENOENT, and nothing reaches the new one.
#[test]
fn a_handle_never_works_on_a_pfs_destroyed_under_it() {
    let (_d, mut store) = master_and_slave();
    let root = store.root().to_path_buf();
    store.set_pfs_id(1);
    put_one(&mut store, &data_id(9, 16), b"old");
    let stream = read_all(&mut store, 0, u64::MAX, 1 << 16);
    let mut slave = Store::open(&root).unwrap();
    slave.set_pfs_id(2);
    write_all(&mut slave, 1, u64::MAX - 1, &stream);
    let mut master = Store::open(&root).unwrap();
    master.set_pfs_id(1);
    let mut req = MirrorReadReq::new(0, u64::MAX);
    let mut buf = vec![0u8; 1 << 16];
    master.mirror_read(&mut req, &mut buf).unwrap();

    let mut other = Store::open(&root).unwrap();
    for id in [1, 2] {
        other.set_pfs_id(id);
        other.destroy().unwrap();
    }
    make_pfs(&mut other, 2, true);
    let enoent = |r: Result<()>| assert_eq!(r.unwrap_err().errno(), Errno::ENOENT);
    let mut req = MirrorWriteReq::new(1, u64::MAX - 1);
    enoent(slave.mirror_write(&mut req, &stream).map(drop));
    enoent(slave.get_pseudofs().map(drop));
    enoent(slave.set_pseudofs(&PseudofsData::default()));
    enoent(slave.upgrade());
    enoent(slave.downgrade());
    enoent(slave.destroy());
    enoent(slave.wait(0));
    enoent(slave.begin().map(drop));
    enoent(slave.for_each_record(|_, _| ()));
    let mut req = MirrorReadReq::new(0, u64::MAX);
    enoent(master.mirror_read(&mut req, &mut buf).map(drop));
    // The new slave holds only what it was made with.
    other.set_pfs_id(2);
    assert!(view(&other, u64::MAX).is_empty());
    assert!(other.get_pseudofs().unwrap().is_slave());
    // Addressing the id afresh reaches the new PFS.
    slave.set_pfs_id(1);
    slave.set_pfs_id(2);
    assert!(slave.get_pseudofs().unwrap().is_slave());
}

/// A wait for a TID the sync point is already beyond needs no change:
/// it returns without one (a hang here would be a wait for ever).
#[test]
fn wait_returns_at_once_when_beyond() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(2);
    let sync = store.get_pseudofs().unwrap().sync_end_tid;
    assert_eq!(sync, 1, "a new slave's");
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = store.wait(sync - 1);
        let _ = done.send((r, store));
    });
    let (r, store) = waited
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("wait below the sync point did not return");
    r.unwrap();
    // Nothing moved meanwhile.
    assert_eq!(store.get_pseudofs().unwrap().sync_end_tid, sync);
}

#[test]
fn wait_ends_at_the_next_set_from_another_process() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(2);
    let sync = store.get_pseudofs().unwrap().sync_end_tid;
    let root = store.root().to_path_buf();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut other = Store::open(&root).unwrap();
        other.set_pfs_id(2);
        let mut p = other.get_pseudofs().unwrap();
        p.sync_end_tid = sync + 100;
        other.set_pseudofs(&p).unwrap();
    });
    let t = std::time::Instant::now();
    store.wait(sync).unwrap();
    assert!(t.elapsed() >= std::time::Duration::from_millis(250));
    assert_eq!(store.get_pseudofs().unwrap().sync_end_tid, sync + 100);
    setter.join().unwrap();
}

#[test]
fn newer_format_and_garbage_are_refused() {
    let (d, store) = new_store();
    let root = store.root().to_path_buf();
    store
        .conn
        .execute_batch(&format!("PRAGMA user_version={}", FORMAT_VERSION + 1))
        .unwrap();
    assert!(matches!(
        Store::open(&root),
        Err(StoreError::NewerFormat(v)) if v == FORMAT_VERSION + 1
    ));
    // Version 1 kept large payloads in a table this code no longer reads.
    store.conn.execute_batch("PRAGMA user_version=1").unwrap();
    drop(store);
    let e = Store::open(&root).err().unwrap();
    assert!(matches!(e, StoreError::OlderFormat(1)));
    assert!(e.to_string().contains("create a new store"), "{e}");
    let g = d.path().join("g");
    fs::create_dir(&g).unwrap();
    fs::write(g.join(DB_NAME), vec![0x5a; 8192]).unwrap();
    let e = Store::open(&g).err().unwrap();
    assert!(e.to_string().contains("not a database"), "{e}");
}

#[test]
fn create_refuses_non_empty_directory() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("f"), b"x").unwrap();
    let e = Store::create(d.path()).err().unwrap();
    assert!(e.to_string().ends_with("directory exists and is not empty"));
}

fn leaf(lo: u32, obj_id: i64, rec_type: u16, ct: u64, dt: u64, data: &[u8]) -> LeafElm {
    LeafElm {
        base: BaseElm {
            obj_id,
            key: 16,
            create_tid: ct,
            delete_tid: dt,
            rec_type,
            obj_type: 2,
            btype: b'R',
            localization: lo,
        },
        data_offset: if data.is_empty() { 0 } else { 1 },
        data_len: data.len() as i32,
        data_crc: if data.is_empty() { 0 } else { crc32c(data) },
        ..Default::default()
    }
}

fn rec(l: LeafElm, data: &[u8]) -> Vec<u8> {
    Mrecord::Rec {
        rtype: 1,
        leaf: l,
        data,
    }
    .to_vec()
}

fn pass(l: LeafElm) -> Vec<u8> {
    Mrecord::Pass { leaf: l }.to_vec()
}

/// A slave PFS#2 holding the given records, written as one batch.
fn slave_with(records: &[(LeafElm, &[u8])]) -> (tempfile::TempDir, Store) {
    let (d, mut store) = master_and_slave();
    store.set_pfs_id(2);
    let stream: Vec<u8> = records.iter().flat_map(|(l, p)| rec(*l, p)).collect();
    write_all(&mut store, 1, 1000, &stream);
    (d, store)
}

/// The slave's record with this obj_id and rec_type, if any.
fn find(store: &Store, obj_id: i64, rec_type: u16) -> Option<BaseElm> {
    let mut r = None;
    store
        .for_each_record(|l, _| {
            if l.base.obj_id == obj_id && l.base.rec_type == rec_type {
                r = Some(l.base);
            }
        })
        .unwrap();
    r
}

const MISC: u32 = LOCALIZE_MISC;
const DATA: u16 = rectype::DATA;

// spec: kernel-semantics.md §7.3 item 17
#[test]
fn sweep_deletes_only_live_older_non_config_records_before_the_last() {
    let config = leaf(LOCALIZE_INODE, 1, rectype::CONFIG, 100, 0, b"cfg");
    let (_d, mut store) = slave_with(&[
        (config, b"cfg"),
        (leaf(MISC, 10, DATA, 100, 0, b"a"), b"a"),
        (leaf(MISC, 11, DATA, 100, 150, b"b"), b"b"),
        (leaf(MISC, 12, DATA, 300, 0, b"c"), b"c"),
        (leaf(MISC, 30, DATA, 100, 0, b"e"), b"e"),
    ]);
    // A CONFIG record in a stream is never created either.
    assert!(find(&store, 1, rectype::CONFIG).is_none());
    let mut req = MirrorWriteReq::new(1, 250);
    let stream = pass(leaf(MISC, 20, DATA, 50, 0, b""));
    store.mirror_write(&mut req, &stream).unwrap();
    assert_eq!(find(&store, 10, DATA).unwrap().delete_tid, 250);
    assert_eq!(find(&store, 11, DATA).unwrap().delete_tid, 150);
    assert_eq!(find(&store, 12, DATA).unwrap().delete_tid, 0);
    assert_eq!(find(&store, 30, DATA).unwrap().delete_tid, 0);
    // A PASS for a missing record creates nothing.
    assert!(find(&store, 20, DATA).is_none());
    // A CONFIG record the target holds is never swept.
    let mut tx = store.begin().unwrap();
    let cfg = RecordId {
        localization: LOCALIZE_INODE,
        obj_id: 1,
        rec_type: rectype::CONFIG,
        key: 0,
    };
    tx.put(&cfg, 1, b"config text").unwrap();
    tx.commit().unwrap();
    let mut req = MirrorWriteReq::new(1, u64::MAX - 1);
    store.mirror_write(&mut req, &stream).unwrap();
    assert_eq!(find(&store, 1, rectype::CONFIG).unwrap().delete_tid, 0);
    assert_eq!(find(&store, 12, DATA).unwrap().delete_tid, u64::MAX - 1);
}

// spec: kernel-semantics.md §7.3 items 18, 19
#[test]
fn delete_tid_only_moves_towards_deleted() {
    let (_d, mut store) = slave_with(&[
        (leaf(MISC, 10, DATA, 100, 0, b"a"), b"a"),
        (leaf(MISC, 11, DATA, 100, 120, b"b"), b"b"),
        (leaf(MISC, 12, DATA, 100, 130, b"c"), b"c"),
    ]);
    let mut req = MirrorWriteReq::new(150, 200);
    let mut stream = rec(leaf(MISC, 10, DATA, 100, 180, b"a"), b"a");
    stream.extend(rec(leaf(MISC, 11, DATA, 100, 0, b"b"), b"b"));
    // PASS keeps a raw delete_tid beyond tid_end; the target takes it.
    stream.extend(pass(leaf(MISC, 12, DATA, 100, 900, b"c")));
    // A REC for a missing record older than tid_beg creates nothing.
    stream.extend(rec(leaf(MISC, 13, DATA, 140, 0, b"d"), b"d"));
    store.mirror_write(&mut req, &stream).unwrap();
    assert_eq!(req.head_error, None);
    assert_eq!(find(&store, 10, DATA).unwrap().delete_tid, 180);
    assert_eq!(find(&store, 11, DATA).unwrap().delete_tid, 120);
    assert_eq!(find(&store, 12, DATA).unwrap().delete_tid, 900);
    assert!(find(&store, 13, DATA).is_none());
    assert_eq!(req.key_cur.obj_id, 13);
    assert_eq!(req.key_cur.localization, (2 << 16) | MISC);
}

// spec: kernel-semantics.md §4.4, §4.8, §7.3 items 20, 22
#[test]
fn config_badcrc_and_malformed_records() {
    let (_d, mut store) = slave_with(&[(leaf(MISC, 10, DATA, 100, 0, b"a"), b"a")]);
    let mut req = MirrorWriteReq::new(1, 200);
    let before = req.key_cur;
    let config = leaf(LOCALIZE_INODE, 1, rectype::CONFIG, 150, 0, b"cfg");
    store.mirror_write(&mut req, &rec(config, b"cfg")).unwrap();
    assert_eq!((req.head_error, req.key_cur.obj_id), (None, before.obj_id));
    let bad = Mrecord::Rec {
        rtype: mrec_type::REC_BADCRC,
        leaf: leaf(MISC, 40, DATA, 150, 0, b"x"),
        data: b"y",
    }
    .to_vec();
    store.mirror_write(&mut req, &bad).unwrap();
    assert_eq!((req.head_error, req.key_cur.obj_id), (None, before.obj_id));
    assert!(find(&store, 40, DATA).is_none());
    // NODATA with a payload length is a plain REC whose payload is missing.
    let nodata = Mrecord::Rec {
        rtype: mrec_type::REC_NODATA,
        leaf: leaf(MISC, 41, DATA, 150, 0, b"x"),
        data: b"",
    }
    .to_vec();
    assert_eq!(store.mirror_write(&mut req, &nodata).unwrap(), 0);
    assert_eq!(req.head_error, Some(Errno::EINVAL));
    // Stream-level records have no place in a MIRROR_WRITE buffer.
    let mut req = MirrorWriteReq::new(1, 200);
    let sync = Mrecord::Sync { tid: 5 }.to_vec();
    assert_eq!(store.mirror_write(&mut req, &sync).unwrap(), 0);
    assert_eq!(req.head_error, Some(Errno::EINVAL));
    let mut req = MirrorWriteReq::new(1, 200);
    let mut garbage = rec(leaf(MISC, 42, DATA, 150, 0, b"z"), b"z");
    garbage[0] ^= 1;
    assert_eq!(store.mirror_write(&mut req, &garbage).unwrap(), 0);
    assert_eq!(req.head_error, Some(Errno::EINVAL));
}

// spec: kernel-semantics.md §3.2, §7.3 items 7, 8
#[test]
fn mirror_read_nodata_and_delete_tid_beyond_tid_end() {
    let (_d, mut store) = slave_with(&[
        (leaf(MISC, 10, DATA, 100, 0, b"aaaa"), b"aaaa"),
        (leaf(MISC, 11, DATA, 100, 500, b"bb"), b"bb"),
    ]);
    let mut req = MirrorReadReq::new(50, 300);
    req.nodata = true;
    let mut buf = vec![0u8; 4096];
    let n = store.mirror_read(&mut req, &mut buf).unwrap();
    let recs: Vec<_> = BatchIter::new(&buf[..n])
        .filter_map(|r| match r.decode() {
            Some(Mrecord::Rec { rtype, leaf, data }) => Some((rtype, leaf, data.len())),
            _ => None,
        })
        .collect();
    assert_eq!(recs.len(), 2);
    for (rtype, l, len) in recs {
        assert_eq!((rtype, len), (mrec_type::REC_NODATA, 0));
        // Deleted after tid_end: a REC says live.
        assert_eq!(l.base.delete_tid, 0);
        assert_eq!(l.base.localization, (2 << 16) | MISC);
    }
}

// spec: kernel-semantics.md §2.5
#[test]
fn pfs_data_lives_in_pfs0_records_one_version_per_change() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(2);
    let mut p = store.get_pseudofs().unwrap();
    p.sync_end_tid = 0x1234;
    store.set_pseudofs(&p).unwrap();
    store.set_pfs_id(0);
    let mut versions = Vec::new();
    store
        .for_each_record(|l, d| {
            if l.base.rec_type == rectype::PFS && l.base.key == 2 << 16 {
                assert_eq!(l.base.localization, LOCALIZE_MISC);
                assert_eq!(l.base.obj_id, 1);
                versions.push((l.base, d.to_vec()));
            }
        })
        .unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].0.delete_tid, versions[1].0.create_tid);
    assert_eq!(versions[1].0.delete_tid, 0);
    assert_eq!(versions[1].1, p.to_bytes().to_vec());
    // Destroyed: the record stays, flagged, and GET fails.
    store.set_pfs_id(2);
    store.destroy().unwrap();
    assert_eq!(store.get_pseudofs().unwrap_err().errno(), Errno::ENOENT);
    store.set_pfs_id(0);
    let mut live = None;
    store
        .for_each_record(|l, d| {
            if l.base.rec_type == rectype::PFS && l.base.key == 2 << 16 && l.base.delete_tid == 0 {
                live = Some(d.to_vec());
            }
        })
        .unwrap();
    let flags = PseudofsData::decode(live.unwrap().as_slice().try_into().unwrap()).mirror_flags;
    assert_ne!(flags & crate::ondisk::PFSD_DELETED, 0);
}

/// A master (PFS#1) with more records than a skip scan handles, all
/// created in one transaction; returns their number and its TID.
fn above_the_skip_limit() -> (tempfile::TempDir, Store, i64, u64) {
    let (d, mut store) = master_and_slave();
    store.set_pfs_id(1);
    let n = super::read::SKIP_LIMIT as i64 + 10;
    let mut tx = store.begin().unwrap();
    for i in 0..n {
        tx.put(&data_id(100 + i, 16), 2, &i.to_le_bytes()).unwrap();
    }
    let t1 = tx.commit().unwrap();
    (d, store, n, t1)
}

/// More changes than a skip scan handles: the plain scan sends every
/// record, RECs with their payloads and PASSes without, whatever the
/// buffer size.
#[test]
fn plain_scan_above_the_skip_limit() {
    let (_d, mut store, n, t1) = above_the_skip_limit();
    let mut tx = store.begin().unwrap();
    for i in 0..n {
        tx.put(&data_id(100 + i, 16), 2, &(i + 1).to_le_bytes())
            .unwrap();
    }
    let t2 = tx.commit().unwrap();
    let big = read_all(&mut store, t2, t2, 1 << 19);
    assert_eq!(big, read_all(&mut store, t2, t2, 5000));
    let (mut recs, mut passes) = (0, 0);
    for r in BatchIter::new(&big) {
        match r.decode().unwrap() {
            Mrecord::Rec { leaf, data, .. } => {
                assert_eq!(leaf.base.create_tid, t2);
                assert_eq!(data, &(leaf.base.obj_id - 99).to_le_bytes());
                recs += 1;
            }
            Mrecord::Pass { leaf } => {
                assert!(leaf.base.create_tid < t2);
                assert!(leaf.base.create_tid != t1 || leaf.base.delete_tid == t2);
                passes += 1;
            }
            other => panic!("no SKIP in a plain scan: {other:?}"),
        }
    }
    // The root inode and every old version are PASSes.
    assert_eq!((recs, passes), (n, n + 1));
    // Mirrored into the slave in small calls, it matches the master.
    let stream = read_all(&mut store, 0, t2, 3000);
    store.set_pfs_id(2);
    write_all(&mut store, 1, t2, &stream);
    store.set_pfs_id(1);
    let m = view(&store, t2);
    store.set_pfs_id(2);
    assert_eq!(view(&store, t2), m);
}

/// A store remembers that a PFS had too many changes after a TID to skip
/// around them, but only for reads from that TID or earlier: a later
/// incremental read through the same store still skips.
#[test]
fn a_busy_pfs_is_remembered_only_for_earlier_tids() {
    let (_d, mut store, n, t1) = above_the_skip_limit();
    let t2 = put_one(&mut store, &data_id(100 + n / 2, 16), b"changed");
    let has_skip = |s: &[u8]| types(s).contains(&mrec_type::SKIP);
    assert!(!has_skip(&read_all(&mut store, 1, t2, 1 << 16)));
    assert!(has_skip(&read_all(&mut store, t2, t2, 1 << 16)));
    assert!(!has_skip(&read_all(&mut store, t1, t2, 1 << 16)));
    assert!(has_skip(&read_all(&mut store, t1 + 1, t2, 1 << 16)));
}

/// What a power loss can leave of a mirror-write batch that was committed
/// but whose payload file was never synced: the records, without their
/// payload bytes. A rerun sending the same records rewrites the payloads
/// before the sync point moves over them.
#[test]
fn rerun_repairs_payloads_a_power_loss_took_back() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(1);
    let mut tx = store.begin().unwrap();
    for i in 0..8 {
        tx.put(&data_id(100 + i, 16384), 2, &[i as u8 + 1; 16384])
            .unwrap();
    }
    tx.put(&data_id(200, 16), 2, b"small").unwrap();
    tx.commit().unwrap();
    let end = store.get_pseudofs().unwrap().sync_end_tid;
    let stream = read_all(&mut store, 1, end, 1 << 16);
    store.set_pfs_id(2);
    write_all(&mut store, 1, end, &stream);
    // The lost write-back: the slave's payload file holds zeros.
    let files = blob_files(&store, 2);
    assert_eq!(files.len(), 1);
    let len = fs::metadata(&files[0]).unwrap().len();
    fs::write(&files[0], vec![0u8; len as usize]).unwrap();
    assert!(reblock_listed(&mut store, 2));
    write_all(&mut store, 1, end, &stream);
    // The damaged copies stay in the file, named by no row.
    check_idle(&store, 2);
    let mut p = store.get_pseudofs().unwrap();
    p.sync_end_tid = end;
    store.set_pseudofs(&p).unwrap();
    let slave = view(&store, end);
    store.set_pfs_id(1);
    assert_eq!(slave, view(&store, end));
    // Intact payloads are left where they are: nothing more is appended.
    store.set_pfs_id(2);
    let size = fs::metadata(&files[0]).unwrap().len();
    write_all(&mut store, 1, end, &stream);
    assert_eq!(fs::metadata(&files[0]).unwrap().len(), size);
}

/// A slave PFS#2 at sync point 500 holding `a` (created at 100) and `b`
/// (created at 600, past the sync point).
fn slave_at_500() -> (tempfile::TempDir, Store) {
    let (d, mut store) = slave_with(&[
        (leaf(MISC, 10, DATA, 100, 0, b"a"), b"a"),
        (leaf(MISC, 11, DATA, 600, 0, b"b"), b"b"),
    ]);
    let mut p = store.get_pseudofs().unwrap();
    p.sync_end_tid = 500;
    store.set_pseudofs(&p).unwrap();
    (d, store)
}

fn other_handle(store: &Store) -> Store {
    let mut s = Store::open(store.root()).unwrap();
    s.set_pfs_id(2);
    s
}

/// Whether PFS#2's payload file ends at its committed size.
fn no_payload_tail(store: &Store) -> bool {
    let s = other_handle(store);
    let (generation, size): (i64, i64) = s
        .conn
        .query_row("SELECT gen, size FROM blob WHERE pfs = 2", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap_or((0, 0));
    let file = store
        .root()
        .join(format!(".hammer-store.pfs00002.{generation}"));
    fs::metadata(file).map_or(0, |m| m.len()) == size as u64
}

/// The first two calls of a batch: one above the sync point (commits at
/// once), one creating `d` at 300, below it (held); `big` adds 1.2 MiB of
/// payloads to the held call.
fn held_batch(store: &mut Store, big: bool) -> MirrorWriteReq {
    let mut req = MirrorWriteReq::new(1, 700);
    let mut first = pass(leaf(MISC, 10, DATA, 100, 0, b""));
    first.extend(pass(leaf(MISC, 11, DATA, 600, 0, b"")));
    first.extend(rec(leaf(MISC, 12, DATA, 650, 0, b"c"), b"c"));
    assert_eq!(store.mirror_write(&mut req, &first).unwrap(), first.len());
    assert!(find(&other_handle(store), 12, DATA).is_some(), "committed");
    let mut second = rec(leaf(MISC, 13, DATA, 300, 0, b"d"), b"d");
    if big {
        let payload = vec![0x5au8; 60_000];
        for obj in 20..40 {
            second.extend(rec(leaf(MISC, obj, DATA, 650, 0, &payload), &payload));
        }
    }
    assert_eq!(store.mirror_write(&mut req, &second).unwrap(), second.len());
    assert_eq!(req.head_error, None);
    assert!(find(&other_handle(store), 13, DATA).is_none(), "held");
    req
}

// The held batch rule of write.rs.
#[test]
fn a_change_below_the_sync_point_waits_for_the_set_that_moves_it() {
    let (_d, mut store) = slave_at_500();
    let before = view(&other_handle(&store), 500);
    let mut req = held_batch(&mut store, false);
    // Nothing of the held batch is in the store before its SYNC, for this
    // handle or another.
    assert_eq!(store.get_pseudofs().unwrap().sync_end_tid, 500);
    assert!(find(&store, 13, DATA).is_none());
    assert_eq!(view(&other_handle(&store), 500), before);
    // A later call above the sync point stays in the held batch.
    let third = rec(leaf(MISC, 14, DATA, 650, 0, b"e"), b"e");
    store.mirror_write(&mut req, &third).unwrap();
    assert!(find(&other_handle(&store), 14, DATA).is_none());
    let mut p = store.get_pseudofs().unwrap();
    p.sync_end_tid = 700;
    store.set_pseudofs(&p).unwrap();
    let after = other_handle(&store);
    assert_eq!(after.get_pseudofs().unwrap().sync_end_tid, 700);
    assert!(find(&after, 13, DATA).is_some() && find(&after, 14, DATA).is_some());
    // SYNCTID commits a held batch too.
    let mut req = MirrorWriteReq::new(1, 800);
    let mut stream = pass(leaf(MISC, 10, DATA, 100, 0, b""));
    stream.extend(rec(leaf(MISC, 15, DATA, 200, 0, b"f"), b"f"));
    store.mirror_write(&mut req, &stream).unwrap();
    assert!(find(&other_handle(&store), 15, DATA).is_none());
    store.synctid(SynctidOp::Sync2).unwrap();
    assert!(find(&other_handle(&store), 15, DATA).is_some());
}

#[test]
fn a_held_batch_that_ends_otherwise_is_rolled_back_with_its_payloads() {
    // Dropped: the calls above the sync point stay, the held one goes,
    // and so do the payload bytes it wrote.
    let (_d, mut store) = slave_at_500();
    let root = store.root().to_path_buf();
    held_batch(&mut store, true);
    assert!(
        no_payload_tail(&store),
        "nothing is written before the SYNC"
    );
    drop(store);
    let mut store = Store::open(&root).unwrap();
    store.set_pfs_id(2);
    assert!(find(&store, 12, DATA).is_some());
    assert!(find(&store, 13, DATA).is_none() && find(&store, 20, DATA).is_none());
    assert!(no_payload_tail(&store));
    // A record error in a later call.
    let mut req = held_batch(&mut store, true);
    let mut bad = rec(leaf(MISC, 50, DATA, 650, 0, b"g"), b"g");
    bad[0] ^= 1;
    assert_eq!(store.mirror_write(&mut req, &bad).unwrap(), 0);
    assert_eq!(req.head_error, Some(Errno::EINVAL));
    assert!(find(&store, 13, DATA).is_none() && no_payload_tail(&store));
    // Any other write, such as an upgrade, which then rolls back to 500.
    held_batch(&mut store, false);
    store.upgrade().unwrap();
    assert!(find(&store, 13, DATA).is_none());
    assert!(find(&store, 10, DATA).is_some() && find(&store, 12, DATA).is_none());
}

/// An older complete stream moves the sync point back, as the kernel
/// lets SET do; its changes below the old sync point commit with it.
#[test]
fn an_older_batch_that_reaches_its_set_is_applied_as_the_kernel_does() {
    let (_d, mut store) = slave_at_500();
    let mut req = MirrorWriteReq::new(1, 400);
    let stream = pass(leaf(MISC, 11, DATA, 600, 0, b""));
    store.mirror_write(&mut req, &stream).unwrap();
    // The sweep deleted `a` at 400: held until the SET.
    assert_eq!(find(&other_handle(&store), 10, DATA).unwrap().delete_tid, 0);
    let mut p = store.get_pseudofs().unwrap();
    p.sync_end_tid = 400;
    store.set_pseudofs(&p).unwrap();
    let after = other_handle(&store);
    assert_eq!(find(&after, 10, DATA).unwrap().delete_tid, 400);
    assert_eq!(after.get_pseudofs().unwrap().sync_end_tid, 400);
}

#[test]
fn create_is_exclusive_where_set_overwrites() {
    let (_d, mut store) = new_store();
    make_pfs(&mut store, 3, true);
    store.set_pfs_id(3);
    let mut other = store.get_pseudofs().unwrap();
    other.label[0] = b'x';
    let e = store.create_pseudofs(&other).unwrap_err();
    assert_eq!(e.errno(), Errno::EEXIST);
    assert_eq!(store.get_pseudofs().unwrap().label[0], 0);
    store.set_pseudofs(&other).unwrap();
    assert_eq!(store.get_pseudofs().unwrap().label[0], b'x');
    store.set_pfs_id(4);
    store.create_pseudofs(&other).unwrap();
    assert_eq!(store.get_pseudofs().unwrap().label[0], b'x');
}

#[test]
fn update_origins_leaves_exactly_the_new_set() {
    let (_d, mut store) = new_store();
    let first = [((1, 10), 100), ((1, 11), 101), ((2, 10), 102)];
    let mut tx = store.begin().unwrap();
    tx.update_origins(&IdMap::default(), &first).unwrap();
    tx.commit().unwrap();
    let tx = store.begin().unwrap();
    let old = tx.origins().unwrap();
    assert_eq!(old, IdMap::from_iter(first));
    drop(tx);
    // One gone, one moved to another object, one kept, one new.
    let now = [((1, 11), 201), ((2, 10), 102), ((3, 1), 103)];
    let mut tx = store.begin().unwrap();
    tx.update_origins(&old, &now).unwrap();
    tx.commit().unwrap();
    let tx = store.begin().unwrap();
    assert_eq!(tx.origins().unwrap(), IdMap::from_iter(now));
}

// Snapshot and config records, prune (kernel-semantics.md §2.6, §6).

use crate::ondisk::{ConfigData, SnapshotData};
use crate::pfs::retain::{PruneElm, PruneReq, SnapshotReq};

fn snap(tid: u64, label: &str) -> SnapshotData {
    SnapshotData::new(tid, tid / 2, label.as_bytes())
}

/// Every snapshot listed as `hammer snapls` lists them: GET from the
/// start, each call continuing after the last one returned, until EOF.
/// Returns them with the size of each call's answer.
fn list_snapshots(store: &Store) -> (Vec<SnapshotData>, Vec<u32>) {
    let mut req = SnapshotReq::default();
    let (mut all, mut calls) = (Vec::new(), Vec::new());
    loop {
        store.get_snapshots(&mut req).unwrap();
        assert_eq!(req.error, None);
        all.extend_from_slice(req.held());
        calls.push(req.count);
        if req.eof {
            return (all, calls);
        }
        assert_eq!(req.count, 16, "no EOF before a full answer");
    }
}

/// The records of the addressed PFS: key, leaf and payload.
fn rows(store: &Store) -> Vec<(LeafElm, Vec<u8>)> {
    let mut v = Vec::new();
    store
        .for_each_record(|l, d| v.push((*l, d.to_vec())))
        .unwrap();
    v
}

// spec: kernel-semantics.md §2.6
#[test]
fn snapshots_are_root_records_keyed_by_their_tid_at_one_new_tid() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(1);
    let before = store.synctid(SynctidOp::None).unwrap();
    let mut req = SnapshotReq::of(&[snap(0x500, "a"), snap(0x300, "b")]).unwrap();
    store.add_snapshots(&mut req).unwrap();
    assert_eq!((req.index, req.error), (2, None));
    let recs: Vec<_> = rows(&store)
        .into_iter()
        .filter(|(l, _)| l.base.rec_type == rectype::SNAPSHOT)
        .collect();
    assert_eq!(recs.len(), 2);
    let tid = recs[0].0.base.create_tid;
    assert!(tid > before);
    for ((l, d), want) in recs.iter().zip([snap(0x300, "b"), snap(0x500, "a")]) {
        let b = l.base;
        assert_eq!(
            (b.localization, b.obj_id, b.key),
            ((1 << 16) | LOCALIZE_INODE, 1, want.tid as i64)
        );
        assert_eq!(
            (b.create_tid, b.delete_tid, b.obj_type, b.btype),
            (tid, 0, 0, b'R')
        );
        assert_eq!((l.create_ts, l.data_len, l.data_crc), (0, 128, crc32c(d)));
        assert_eq!(d.as_slice(), want.to_bytes().as_slice());
    }
    // One that exists stops the call there; those before it are added.
    let mut req =
        SnapshotReq::of(&[snap(0x700, "c"), snap(0x500, "again"), snap(0x800, "d")]).unwrap();
    store.add_snapshots(&mut req).unwrap();
    assert_eq!((req.index, req.error), (1, Some(Errno::EEXIST)));
    let tids: Vec<u64> = list_snapshots(&store).0.iter().map(|s| s.tid).collect();
    assert_eq!(tids, [0x300, 0x500, 0x700]);
    assert_eq!(list_snapshots(&store).0[1].label_bytes(), b"a");
    // Bad requests change nothing.
    let mut bad = SnapshotReq {
        count: 17,
        ..SnapshotReq::default()
    };
    assert_eq!(
        store.add_snapshots(&mut bad).unwrap_err().errno(),
        Errno::EINVAL
    );
    let mut bad = SnapshotReq {
        index: 2,
        count: 1,
        ..SnapshotReq::default()
    };
    assert_eq!(
        store.add_snapshots(&mut bad).unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(
        store.del_snapshots(&mut bad).unwrap_err().errno(),
        Errno::EINVAL
    );
    // A PFS that does not exist.
    store.set_pfs_id(9);
    let mut req = SnapshotReq::of(&[snap(1, "")]).unwrap();
    assert_eq!(
        store.add_snapshots(&mut req).unwrap_err().errno(),
        Errno::ENOENT
    );
}

// spec: ioctl-abi.md §9
#[test]
fn get_snapshots_pages_sixteen_at_a_time_in_signed_key_order() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(1);
    // 36 snapshots, two of them with the top bit set: they sort first.
    let mut tids: Vec<u64> = (1..=34).map(|i| 0x1_0000_0000 + i * 0x10).collect();
    tids.extend([0x8000_0000_0000_0010, u64::MAX - 1]);
    for chunk in tids.chunks(16) {
        let snaps: Vec<_> = chunk.iter().map(|&t| snap(t, "x")).collect();
        let mut req = SnapshotReq::of(&snaps).unwrap();
        store.add_snapshots(&mut req).unwrap();
        assert_eq!(req.error, None);
    }
    let (got, calls) = list_snapshots(&store);
    assert_eq!(calls, [16, 16, 4]);
    let mut want = tids.clone();
    want.sort_by_key(|&t| t as i64);
    assert_eq!(got.iter().map(|s| s.tid).collect::<Vec<_>>(), want);
    // Deleted ones are not listed; exactly 16 left ends with EOF at once.
    let gone: Vec<_> = want[..20].iter().map(|&t| snap(t, "")).collect();
    for chunk in gone.chunks(16) {
        let mut req = SnapshotReq::of(chunk).unwrap();
        store.del_snapshots(&mut req).unwrap();
        assert_eq!(req.error, None);
    }
    assert_eq!(list_snapshots(&store).1, [16]);
    // GET wants index 0 and at most 16.
    let mut bad = SnapshotReq {
        index: 1,
        count: 1,
        ..SnapshotReq::default()
    };
    assert_eq!(
        store.get_snapshots(&mut bad).unwrap_err().errno(),
        Errno::EINVAL
    );
    // Past the highest signed key there is nothing: EOF, no wrap-around.
    let mut req = SnapshotReq::of(&[snap(i64::MAX as u64, "")]).unwrap();
    store.get_snapshots(&mut req).unwrap();
    assert_eq!((req.count, req.eof), (0, true));
}

// spec: kernel-semantics.md §2.6
#[test]
fn del_snapshots_destroys_the_record_without_history() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(1);
    let mut req = SnapshotReq::of(&[snap(0x10, ""), snap(0x20, ""), snap(0x30, "")]).unwrap();
    store.add_snapshots(&mut req).unwrap();
    let after_add = store.synctid(SynctidOp::None).unwrap();
    let mut req = SnapshotReq::of(&[snap(0x20, ""), snap(0x40, ""), snap(0x30, "")]).unwrap();
    store.del_snapshots(&mut req).unwrap();
    assert_eq!((req.index, req.error), (1, Some(Errno::ENOENT)));
    // Gone, not deleted: no version of it is left, as of any TID.
    assert!(rows(&store).iter().all(|(l, _)| l.base.key != 0x20));
    assert!(view(&store, after_add).iter().all(|(b, _)| b.key != 0x20));
    let tids: Vec<u64> = list_snapshots(&store).0.iter().map(|s| s.tid).collect();
    assert_eq!(tids, [0x10, 0x30]);
    // DEL takes no TID.
    assert_eq!(store.synctid(SynctidOp::None).unwrap(), after_add);
}

// spec: kernel-semantics.md §2.6
#[test]
fn set_config_replaces_the_previous_version_outright() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(1);
    assert_eq!(store.get_config().unwrap(), None);
    let a = ConfigData::from_text(b"snapshots 1d 60d\nprune 1d 5m\n").unwrap();
    store.set_config(&a).unwrap();
    assert_eq!(store.get_config().unwrap(), Some(a));
    let b = ConfigData::from_text(b"snapshots 0d 0d\n").unwrap();
    store.set_config(&b).unwrap();
    assert_eq!(
        store.get_config().unwrap().unwrap().text_bytes(),
        b"snapshots 0d 0d\n"
    );
    let configs: Vec<_> = rows(&store)
        .into_iter()
        .filter(|(l, _)| l.base.rec_type == rectype::CONFIG)
        .collect();
    assert_eq!(configs.len(), 1, "the first version is destroyed");
    let (l, d) = &configs[0];
    assert_eq!(
        (l.base.localization, l.base.obj_id, l.base.key),
        ((1 << 16) | LOCALIZE_INODE, 1, 0)
    );
    assert_eq!(
        (l.base.delete_tid, l.data_len, d.as_slice()),
        (0, 1024, &b.text[..])
    );
    // Each version at a TID of its own; another PFS has none.
    store.set_pfs_id(2);
    assert_eq!(store.get_config().unwrap(), None);
}

/// A master PFS#1 with `files` files rewritten and deleted over
/// `generations` transactions (directory entries among them); returns the
/// TID after each transaction (a sync point, as a snapshot takes it).
fn pruning_history(store: &mut Store, files: i64, generations: u64) -> Vec<u64> {
    history(
        store,
        files,
        0..generations,
        |f, g| (f + g) % 4 == 3,
        |f, g| (f * 7 + g) % 3 != 0,
    )
}

/// Transactions `gens` of PFS#1's history: in each, file `f` of `files`
/// (its data record and directory entry) deleted when `deletes(f, g)`,
/// else rewritten when `rewrites(f, g)`; the TID after each.
fn history(
    store: &mut Store,
    files: i64,
    gens: std::ops::Range<u64>,
    deletes: impl Fn(i64, i64) -> bool,
    rewrites: impl Fn(i64, i64) -> bool,
) -> Vec<u64> {
    store.set_pfs_id(1);
    let mut points = Vec::new();
    for g in gens {
        let mut tx = store.begin().unwrap();
        for f in 0..files {
            let ent = RecordId {
                localization: LOCALIZE_INODE,
                obj_id: 1,
                rec_type: rectype::DIRENTRY,
                key: 0x1000 + f,
            };
            if deletes(f, g as i64) {
                tx.delete(&data_id(100 + f, 16)).unwrap();
                tx.delete(&ent).unwrap();
            } else if rewrites(f, g as i64) {
                let body = vec![(f as u8) ^ (g as u8); 200 + 300 * (f as usize % 3)];
                tx.put(&data_id(100 + f, 16), 2, &body).unwrap();
                tx.put(&ent, 2, &crate::model::format::direntry(100 + f, 1, b"n"))
                    .unwrap();
            }
        }
        tx.commit().unwrap();
        points.push(store.synctid(SynctidOp::None).unwrap());
    }
    points
}

/// Prunes PFS#1 to the end, a call at a time as a driver does, counting
/// the calls.
fn prune_to_end(store: &mut Store, req: &mut PruneReq) -> usize {
    store.set_pfs_id(1);
    let mut calls = 1;
    store.prune(req).unwrap();
    while req.interrupted {
        req.key_end = req.key_cur;
        store.prune(req).unwrap();
        calls += 1;
    }
    calls
}

// spec: kernel-semantics.md §6
#[test]
fn prune_destroys_exactly_what_the_rule_picks() {
    let (_d, mut store) = master_and_slave();
    let points = pruning_history(&mut store, 12, 8);
    let elms = vec![
        PruneElm {
            beg_tid: points[4],
            end_tid: points[6],
            mod_tid: points[6] - points[4],
        },
        PruneElm {
            beg_tid: points[1],
            end_tid: points[4],
            mod_tid: points[4] - points[1],
        },
        PruneElm {
            beg_tid: 1,
            end_tid: points[1],
            mod_tid: points[1] - 1,
        },
    ];
    let before = rows(&store);
    let kept: Vec<_> = before
        .iter()
        .filter(|(l, _)| {
            !crate::pfs::retain::prunes(false, &elms, l.base.create_tid, l.base.delete_tid)
        })
        .cloned()
        .collect();
    assert!(kept.len() < before.len() && kept.iter().any(|(l, _)| l.base.delete_tid != 0));
    let views: Vec<_> = points.iter().map(|&t| view(&store, t)).collect();
    let mut req = PruneReq::new(false, elms);
    assert_eq!(prune_to_end(&mut store, &mut req), 1);
    assert_eq!(rows(&store), kept);
    // The views at the buckets' bounds are untouched, and after the last.
    for i in [1, 4, 6, 7] {
        assert_eq!(view(&store, points[i]), views[i], "as of point {i}");
    }
    let gone: Vec<_> = before.iter().filter(|r| !kept.contains(r)).collect();
    let s = req.stats;
    assert_eq!(s.scan_records as usize, before.len());
    let dirs = gone
        .iter()
        .filter(|(l, _)| l.base.rec_type == rectype::DIRENTRY)
        .count();
    assert_eq!(
        (s.dir_records as usize, s.raw_records as usize),
        (dirs, gone.len() - dirs)
    );
    let bytes: i64 = gone.iter().map(|(l, _)| i64::from(l.data_len)).sum();
    assert_eq!((s.bytes, s.realignments), (bytes, 0));
    assert_eq!(
        s.oldest_tid,
        before.iter().map(|(l, _)| l.base.create_tid).min().unwrap()
    );
    // key_cur: the last record visited, the lowest, without its PFS.
    let mut lowest = before[0].0.base;
    lowest.localization &= 0xFFFF;
    assert_eq!((req.key_cur, req.interrupted), (lowest, false));
    // PRUNE_ALL leaves only what lives.
    let mut all = PruneReq::new(true, Vec::new());
    prune_to_end(&mut store, &mut all);
    let live: Vec<_> = kept
        .into_iter()
        .filter(|(l, _)| l.base.delete_tid == 0)
        .collect();
    assert_eq!(rows(&store), live);
    assert_eq!(view(&store, u64::MAX), views[7]);
}

#[test]
fn prune_checks_its_request_and_its_pfs() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(1);
    let mut req = PruneReq::new(
        true,
        vec![PruneElm {
            beg_tid: 1,
            end_tid: 2,
            mod_tid: 1,
        }],
    );
    assert_eq!(store.prune(&mut req).unwrap_err().errno(), Errno::EINVAL);
    let mut req = PruneReq::new(
        false,
        vec![PruneElm {
            beg_tid: 1,
            end_tid: 2,
            mod_tid: 0,
        }],
    );
    assert_eq!(store.prune(&mut req).unwrap_err().errno(), Errno::EINVAL);
    let mut req = PruneReq::new(true, Vec::new());
    req.key_end.localization = 0x2_0001;
    assert_eq!(store.prune(&mut req).unwrap_err().errno(), Errno::EINVAL);
    store.set_pfs_id(9);
    let mut req = PruneReq::new(true, Vec::new());
    assert_eq!(store.prune(&mut req).unwrap_err().errno(), Errno::ENOENT);
}

/// Small transactions and calls: every call stops between two objects and
/// the next, started at `key_cur`, goes on from there; the end result is
/// one whole prune's.
#[test]
fn a_prune_cut_into_calls_resumes_at_key_cur() {
    let (_d, mut one) = master_and_slave();
    let points = pruning_history(&mut one, 20, 6);
    let (_e, mut many) = master_and_slave();
    assert_eq!(pruning_history(&mut many, 20, 6), points);
    let elms = vec![PruneElm {
        beg_tid: 1,
        end_tid: points[4],
        mod_tid: points[4] - 1,
    }];
    let mut whole = PruneReq::new(false, elms.clone());
    assert_eq!(prune_to_end(&mut one, &mut whole), 1);
    many.set_prune_bounds(3, 7);
    let mut cut = PruneReq::new(false, elms);
    let mut stops = Vec::new();
    many.set_pfs_id(1);
    loop {
        many.prune(&mut cut).unwrap();
        if !cut.interrupted {
            break;
        }
        // It stopped on the first record of an object it did not start.
        stops.push(cut.key_cur);
        cut.key_end = cut.key_cur;
    }
    assert!(stops.len() > 3, "{} calls", stops.len() + 1);
    assert!(stops.iter().all(|k| k.localization & !0xFFFF == 0));
    // The same records are left (the two stores differ in their clocks).
    let keys = |s: &Store| -> Vec<BaseElm> { rows(s).iter().map(|(l, _)| l.base).collect() };
    assert!(keys(&many) == keys(&one));
    assert_eq!(cut.stats, whole.stats, "each record visited once");
}

/// The place of a destroyed record is not skipped by a read from before
/// its deletion: its change TID went to the record before it.
// spec: kernel-semantics.md §1.9, §6
#[test]
fn a_pruned_record_is_still_swept_from_a_slave_behind() {
    let (_d, mut store) = master_and_slave();
    store.set_pfs_id(1);
    let mut tx = store.begin().unwrap();
    for i in 0..60 {
        tx.put(&data_id(100 + i, 16), 2, &[i as u8; 40]).unwrap();
    }
    tx.commit().unwrap();
    let e1 = mirror(&mut store, 0);
    // Created before the slave's sync point, deleted after it, pruned.
    store.set_pfs_id(1);
    let mut tx = store.begin().unwrap();
    tx.delete(&data_id(130, 16)).unwrap();
    tx.commit().unwrap();
    put_one(&mut store, &data_id(500, 16), b"later");
    let mut req = PruneReq::new(true, Vec::new());
    prune_to_end(&mut store, &mut req);
    assert_eq!(req.stats.raw_records, 1);
    // The read from e1 + 1 sends the record before it instead of skipping
    // over its place.
    let stream = read_all(&mut store, e1 + 1, u64::MAX - 1, 1 << 16);
    let gone = encode_key(&BaseElm {
        localization: (1 << 16) | MISC,
        ..find_base(130)
    });
    for r in BatchIter::new(&stream) {
        if let Some(Mrecord::Skip { beg, end }) = r.decode() {
            let (b, e) = (encode_key(&beg), encode_key(&end));
            assert!(!(b <= gone && gone < e), "a SKIP covers the pruned record");
        }
    }
    let e2 = mirror(&mut store, e1 + 1);
    store.set_pfs_id(2);
    let on_slave = find(&store, 130, DATA).unwrap();
    assert_eq!(on_slave.delete_tid, e2, "swept at the batch's end");
    store.set_pfs_id(1);
    let m = view(&store, e2);
    store.set_pfs_id(2);
    assert_eq!(view(&store, e2), m);
}

/// `generations` more transactions of PFS#1's history (as
/// `pruning_history`, from generation `g0`): files rewritten and deleted,
/// directory entries among them; the TID after each.
fn more_history(store: &mut Store, files: i64, g0: u64, generations: u64) -> Vec<u64> {
    history(
        store,
        files,
        g0..g0 + generations,
        |f, g| (f * 5 + g) % 7 == 3,
        |f, g| (f * 3 + g * 11) % 5 < 2,
    )
}

/// Key, mtid and leaf of every row of PFS#1, create and delete times
/// left out (two stores' clocks differ).
fn rows_and_mtids(store: &Store) -> Vec<(Vec<u8>, Vec<u8>, BaseElm)> {
    let mut stmt = store
        .conn
        .prepare("SELECT k, mtid, leaf FROM rec WHERE pfs = 1 ORDER BY k")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let leaf: Vec<u8> = r.get(2)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                records::leaf_from(&leaf).unwrap().base,
            ))
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

/// Softprune's buckets for these snapshot TIDs.
fn buckets(snaps: &[u64]) -> Vec<PruneElm> {
    let at: Vec<_> = snaps
        .iter()
        .map(|&tid| crate::retention::SnapTime { tid, time: 0 })
        .collect();
    crate::retention::softprune_elms(&at, 0, 0).elms
}

/// A whole prune after a complete one visits only the records changed
/// since or whose bucket changed (store-format.md §7) and leaves what a
/// scan of every record leaves, rows and change TIDs alike: a store that
/// forgets its memo before each prune is the reference. Snapshots come and
/// go as a nightly cleanup's do: a few recent ones, every fourth older one
/// kept longer, the oldest dropped in turn. Halfway, the store is left as
/// an upgrade from format 2 leaves it: no memo, nothing listed as raised.
#[test]
fn a_prune_after_a_whole_one_visits_the_changes_and_prunes_the_same() {
    let (_d, mut inc) = master_and_slave();
    let (_e, mut full) = master_and_slave();
    let mut snaps: Vec<u64> = Vec::new();
    let mut g = 0;
    let mut fewer = 0;
    for night in 0..24 {
        let points = more_history(&mut inc, 30, g, 2);
        assert_eq!(more_history(&mut full, 30, g, 2), points);
        g += 2;
        snaps.push(points[1]);
        // Seven recent snapshots; of older ones every fourth, four of them.
        let (old, recent) = snaps.split_at(snaps.len().saturating_sub(7));
        let mut kept: Vec<u64> = old
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 == 3)
            .map(|(_, &t)| t)
            .collect();
        kept = kept.split_off(kept.len().saturating_sub(4));
        kept.extend_from_slice(recent);
        snaps = kept;
        let elms = buckets(&snaps);
        if elms.is_empty() {
            continue;
        }
        memo::forget(&full.conn, 1).unwrap();
        if night == 12 {
            memo::forget(&inc.conn, 1).unwrap();
            memo::raised_forget(&inc.conn, 1).unwrap();
        }
        let mut a = PruneReq::new(false, elms.clone());
        let mut b = PruneReq::new(false, elms);
        prune_to_end(&mut inc, &mut a);
        prune_to_end(&mut full, &mut b);
        assert_eq!(rows_and_mtids(&inc), rows_and_mtids(&full), "night {night}");
        let (sa, sb) = (a.stats, b.stats);
        assert_eq!(
            (sa.raw_records, sa.dir_records, sa.bytes),
            (sb.raw_records, sb.dir_records, sb.bytes),
            "night {night}"
        );
        assert!(sa.scan_records <= sb.scan_records);
        if sa.scan_records < sb.scan_records {
            fewer += 1;
        }
        let m = memo::Memo::load(&inc.conn, 1).unwrap().unwrap();
        assert!(m.complete && m.bounds == memo::bounds(&a.elms).unwrap());
        assert_eq!(inc.prune_memo_faults().unwrap(), vec![], "night {night}");
    }
    assert!(fewer > 15, "{fewer} prunes visited fewer records");
    let listed: i64 = inc
        .conn
        .query_row("SELECT count(*) FROM raised", [], |r| r.get(0))
        .unwrap();
    assert!(listed > 0, "the history raises deleted records");
    // A row removed otherwise (a rollback's) takes its entry with it.
    let k: Vec<u8> = inc
        .conn
        .query_row("SELECT k FROM raised LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let tx = inc.conn.unchecked_transaction().unwrap();
    records::remove_row(&tx, 1, &records::key_from(&k).unwrap()).unwrap();
    tx.commit().unwrap();
    let still: i64 = inc
        .conn
        .query_row("SELECT count(*) FROM raised WHERE k = ?1", [&k], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(still, 0, "the removed row's entry");
    // PRUNE_ALL (no memo, no pass) destroys every deleted record, and
    // with them their entries: none is left.
    let mut all = PruneReq::new(true, Vec::new());
    prune_to_end(&mut inc, &mut all);
    let left: i64 = inc
        .conn
        .query_row("SELECT count(*) FROM raised", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "entries of destroyed records");
    // The same buckets again: nothing changed, nothing visited.
    let mut again = PruneReq::new(false, buckets(&snaps));
    prune_to_end(&mut inc, &mut again);
    assert_eq!(again.stats.scan_records, 0);
}

/// A record a MIRROR_WRITE into a master stores below what the memo
/// vouches for drops the memo; so do a PFS record change and a destroy; a
/// prune cut into calls completes one as a single call does, and a prune
/// of other buckets, PRUNE_ALL or part of the PFS leaves it as it was.
#[test]
fn what_a_prune_memo_vouches_for_stays_true() {
    let (_d, mut store) = master_and_slave();
    let points = more_history(&mut store, 20, 0, 6);
    let elms = buckets(&points[1..]);
    store.set_prune_bounds(3, 7);
    let mut req = PruneReq::new(false, elms.clone());
    assert!(prune_to_end(&mut store, &mut req) > 3);
    let made = memo::Memo::load(&store.conn, 1).unwrap().unwrap();
    assert!(made.complete);
    store.set_prune_bounds(2048, 1 << 16);
    // A whole prune with buckets of another shape, or PRUNE_ALL of a part,
    // vouches for nothing new and takes nothing back.
    let mut fine = elms.clone();
    fine[0].mod_tid /= 2;
    prune_to_end(&mut store, &mut PruneReq::new(false, fine));
    let mut part = PruneReq::new(true, Vec::new());
    part.key_beg.obj_id = 120;
    prune_to_end(&mut store, &mut part);
    assert_eq!(
        memo::Memo::load(&store.conn, 1).unwrap(),
        Some(made.clone())
    );

    // A record stored through MIRROR_WRITE with TIDs from the oldest
    // bucket: the memo goes, and the next prune scans and destroys it.
    let old = leaf(MISC, 9000, DATA, 2, 3, b"x");
    let mut w = MirrorWriteReq::new(1, 4);
    w.key_cur = old.base;
    store.set_pfs_id(1);
    store.mirror_write(&mut w, &rec(old, b"x")).unwrap();
    assert_eq!(w.head_error, None);
    assert!(find(&store, 9000, DATA).is_some());
    assert_eq!(memo::Memo::load(&store.conn, 1).unwrap(), None);
    let mut req = PruneReq::new(false, elms.clone());
    prune_to_end(&mut store, &mut req);
    assert_eq!(req.stats.raw_records, 1);
    assert!(find(&store, 9000, DATA).is_none());
    let m = memo::Memo::load(&store.conn, 1).unwrap().unwrap();
    assert!(m.complete);

    // A newer PFS record (another label): the memo is not used, and the
    // next whole prune makes a new one.
    store.set_pfs_id(1);
    let mut p = store.get_pseudofs().unwrap();
    p.label[0] = b'x';
    store.set_pseudofs(&p).unwrap();
    let rows_now = rows(&store).len() as i64;
    let mut req = PruneReq::new(false, elms.clone());
    prune_to_end(&mut store, &mut req);
    assert_eq!(req.stats.scan_records, rows_now, "scanned whole");
    let m2 = memo::Memo::load(&store.conn, 1).unwrap().unwrap();
    assert!(m2.complete && m2.version != m.version);

    // A slave gets none.
    mirror(&mut store, 0);
    store.set_pfs_id(2);
    prune_to_end(&mut store, &mut PruneReq::new(false, elms));
    assert_eq!(memo::Memo::load(&store.conn, 2).unwrap(), None);

    // A destroy drops it.
    store.set_pfs_id(1);
    store.destroy().unwrap();
    assert_eq!(memo::Memo::load(&store.conn, 1).unwrap(), None);
}

/// A store of format 2 (no `raised` table) is upgraded by the first handle
/// that may write it, once: the table made, the prune memos dropped, since
/// they vouched for raises nothing listed (store-format.md §8). The next
/// whole prune scans every record and leaves a memo again.
#[test]
fn a_format_2_store_is_upgraded_by_its_first_writer() {
    let (_d, mut store) = master_and_slave();
    let root = store.root().to_path_buf();
    let points = more_history(&mut store, 10, 0, 4);
    let mut req = PruneReq::new(false, buckets(&[points[0], points[2]]));
    prune_to_end(&mut store, &mut req);
    assert!(memo::Memo::load(&store.conn, 1).unwrap().is_some());
    store
        .conn
        .execute_batch("DROP TABLE raised; PRAGMA user_version=2")
        .unwrap();
    drop(store);
    let mut store = Store::open(&root).unwrap();
    let version: i64 = store
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, FORMAT_VERSION);
    assert_eq!(memo::Memo::load(&store.conn, 1).unwrap(), None);
    let listed: i64 = store
        .conn
        .query_row("SELECT count(*) FROM raised", [], |r| r.get(0))
        .unwrap();
    assert_eq!(listed, 0);
    let mut again = PruneReq::new(false, buckets(&[points[0], points[2]]));
    prune_to_end(&mut store, &mut again);
    assert_eq!(
        again.stats.scan_records,
        req.stats.scan_records - req.stats.raw_records - req.stats.dir_records
    );
    assert!(memo::Memo::load(&store.conn, 1).unwrap().unwrap().complete);
}

/// The key of data record `obj` at key 16 (create_tid 1: the first of its
/// versions in key order).
fn find_base(obj: i64) -> BaseElm {
    BaseElm {
        obj_id: obj,
        key: 16,
        rec_type: DATA,
        create_tid: 1,
        ..BaseElm::default()
    }
}

/// A reader's snapshot survives a prune committed under it, payloads
/// included (they stay in the payload file).
#[test]
fn a_prune_never_changes_what_a_reader_already_sees() {
    let (_d, mut store) = master_and_slave();
    let points = pruning_history(&mut store, 10, 5);
    let reader = other_handle(&store);
    let mut reader = reader;
    reader.set_pfs_id(1);
    let view_before = reader.view(Some(points[1])).unwrap();
    let mut seen = Vec::new();
    let collect = |v: &View<'_>, out: &mut Vec<Vec<u8>>| {
        for obj in 100..110 {
            v.records(LOCALIZE_MISC, obj, DATA, i64::MIN..=i64::MAX, |_, load| {
                out.push(load()?);
                Ok(true)
            })
            .unwrap();
        }
    };
    collect(&view_before, &mut seen);
    let mut req = PruneReq::new(true, Vec::new());
    prune_to_end(&mut store, &mut req);
    assert!(req.stats.raw_records > 0);
    let mut again = Vec::new();
    collect(&view_before, &mut again);
    assert_eq!(again, seen);
    drop(view_before);
    // A new reader sees the pruned PFS.
    let mut after = Vec::new();
    collect(&reader.view(Some(points[1])).unwrap(), &mut after);
    assert_ne!(after, seen);
}

// Reblock (store-format.md §5.1).

/// PFS#1 of a new store holding `files` payloads of 3000 bytes each, all
/// but the first quarter rewritten `rewrites` times, then pruned of every
/// deleted record: most of its payload file is named by no row.
fn reblock_fixture(files: i64, rewrites: u8) -> (tempfile::TempDir, Store) {
    let (d, mut store) = new_store();
    make_pfs(&mut store, 1, false);
    for round in 0..=rewrites {
        let mut tx = store.begin().unwrap();
        for f in 0..files {
            if round == 0 || f >= files / 4 {
                tx.put(&data_id(100 + f, 0), 2, &vec![round ^ f as u8; 3000])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let mut req = PruneReq::new(true, Vec::new());
    prune_to_end(&mut store, &mut req);
    (d, store)
}

/// PFS#1's committed payload bytes and file size.
fn payload_sizes(store: &Store) -> (u64, u64) {
    let (gen, size): (i64, i64) = store
        .conn
        .query_row("SELECT gen, size FROM blob WHERE pfs = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let len = fs::metadata(blob::path_of(store.root(), 1, gen))
        .unwrap()
        .len();
    (size as u64, len)
}

fn reblock_to_end(store: &mut Store, req: &mut ReblockReq) -> usize {
    store.set_pfs_id(1);
    let mut calls = 1;
    store.reblock(req).unwrap();
    while req.interrupted {
        req.key_beg = req.key_cur;
        store.reblock(req).unwrap();
        calls += 1;
    }
    calls
}

/// PFS `id`'s `Idle` row against the rows: the bytes of its payload file
/// no row names, counted.
#[track_caller]
fn check_idle(store: &Store, id: u32) {
    let tx = store.read_tx().unwrap();
    let (gen, committed) = blob::state(&tx, id).unwrap();
    let (_, live) = reblock::payload_totals(&tx, id).unwrap();
    let idle = memo::Idle::load(&tx, id).unwrap().unwrap();
    assert_eq!(
        (idle.gen, idle.counting, idle.bytes),
        (gen, false, committed - live)
    );
}

/// A reblock at a fill percentage no file reaches: it copies nothing and
/// says whether it listed the rows.
fn reblock_listed(store: &mut Store, id: u32) -> bool {
    store.set_pfs_id(id);
    let mut req = ReblockReq::new(crate::pfs::reblock::DO_DATA, 0);
    store.reblock(&mut req).unwrap();
    assert_eq!(req.stats.data_moves, 0);
    req.stats.data_count > 0
}

/// What a reblock keeps of the bytes no row names (store-format.md §5)
/// stays the count of them through every way a payload stops being named:
/// prunes (a scan and the changed records), an import putting or
/// deleting twice in one transaction, a configuration replaced, a
/// rollback, a reblock's switch. A reblock then decides from it, and
/// lists the rows again every RECOUNT-th time.
#[test]
fn the_idle_bytes_follow_every_removal_of_a_payload() {
    let (_d, mut store) = master_and_slave();
    let points = more_history(&mut store, 30, 0, 4);
    assert!(reblock_listed(&mut store, 1));
    check_idle(&store, 1);
    // Prunes: the first scans, the second visits the changes.
    let mut req = PruneReq::new(false, buckets(&points[1..]));
    prune_to_end(&mut store, &mut req);
    assert!(req.stats.bytes > 0);
    check_idle(&store, 1);
    let newer = more_history(&mut store, 30, 4, 3);
    let mut req = PruneReq::new(false, buckets(&[&points[2..], &newer[..]].concat()));
    prune_to_end(&mut store, &mut req);
    assert!(req.stats.bytes > 0 && memo::Memo::load(&store.conn, 1).unwrap().is_some());
    check_idle(&store, 1);
    // An import putting one file twice and deleting another it made.
    let mut tx = store.begin().unwrap();
    tx.put(&data_id(700, 16), 2, &[1u8; 900]).unwrap();
    tx.put(&data_id(700, 16), 2, &[2u8; 1000]).unwrap();
    tx.put(&data_id(701, 16), 2, &[3u8; 1100]).unwrap();
    tx.delete(&data_id(701, 16)).unwrap();
    tx.commit().unwrap();
    check_idle(&store, 1);
    // A configuration too long to be kept in its row, replaced.
    for c in [b'a', b'b'] {
        let text = [vec![b'#'; 700], vec![c, b'\n']].concat();
        store
            .set_config(&ConfigData::from_text(&text).unwrap())
            .unwrap();
        check_idle(&store, 1);
    }
    // Decided from the row, RECOUNT times in a row, then listed again.
    for _ in 0..memo::RECOUNT {
        assert!(!reblock_listed(&mut store, 1));
    }
    assert!(reblock_listed(&mut store, 1));
    check_idle(&store, 1);
    // A copy: the new file holds what rows name and nothing else.
    let mut req = ReblockReq::new(crate::pfs::reblock::DO_DATA, 100);
    reblock_to_end(&mut store, &mut req);
    assert!(req.stats.data_moves > 0);
    check_idle(&store, 1);
    assert_eq!(memo::Idle::load(&store.conn, 1).unwrap().unwrap().bytes, 0);

    // A slave's rows beyond its sync point, rolled back by an upgrade.
    let e = mirror(&mut store, 0);
    more_history(&mut store, 30, 7, 2);
    store.set_pfs_id(1);
    let end = store.get_pseudofs().unwrap().sync_end_tid;
    let s = read_all(&mut store, e + 1, end, 1 << 16);
    store.set_pfs_id(2);
    write_all(&mut store, e + 1, end, &s);
    assert!(reblock_listed(&mut store, 2));
    check_idle(&store, 2);
    store.set_pfs_id(2);
    store.upgrade().unwrap();
    check_idle(&store, 2);
    // A destroy drops the row.
    store.destroy().unwrap();
    assert_eq!(memo::Idle::load(&store.conn, 2).unwrap(), None);
}

fn everything(store: &Store) -> Vec<(BaseElm, Vec<u8>)> {
    let mut v = Vec::new();
    store
        .for_each_record(|l, d| v.push((l.base, d.to_vec())))
        .unwrap();
    v
}

#[test]
fn reblock_leaves_only_the_payloads_rows_name() {
    let (_d, mut store) = reblock_fixture(40, 3);
    store.set_pfs_id(1);
    let (before_size, _) = payload_sizes(&store);
    let records = everything(&store);
    let stream = read_all(&mut store, 1, u64::MAX, 65536);
    let mut req = ReblockReq::new(crate::pfs::reblock::DO_FLAGS, 100);
    reblock_to_end(&mut store, &mut req);
    let (size, len) = payload_sizes(&store);
    assert_eq!(size, 40 * 3000);
    assert_eq!(len, size);
    assert!(before_size > 3 * size, "{before_size}");
    assert_eq!(req.stats.data_moves, 40);
    assert_eq!(req.stats.data_byte_moves, 40 * 3000);
    assert_eq!(blob_files(&store, 1).len(), 1);
    assert_eq!(everything(&store), records);
    assert_eq!(read_all(&mut store, 1, u64::MAX, 65536), stream);
    // The generation handles pin is the same: writers go on.
    put_one(&mut store, &data_id(500, 0), &[9u8; 4000]);
    assert_eq!(payload_sizes(&store).0, 40 * 3000 + 4000);
    // A fill percentage the file is fuller than leaves it alone.
    let mut req = ReblockReq::new(crate::pfs::reblock::DO_DATA, 50);
    reblock_to_end(&mut store, &mut req);
    assert_eq!(req.stats.data_moves, 0);
}

#[test]
fn a_reblock_cut_into_calls_takes_in_what_writers_add_meanwhile() {
    let (_d, mut store) = reblock_fixture(40, 2);
    store.set_reblock_budget(10_000);
    let mut writer = Store::open(store.root()).unwrap();
    writer.set_pfs_id(1);
    // Pinned before the reblock, used after it.
    put_one(&mut writer, &data_id(600, 0), &[1u8; 2000]);
    let mut req = ReblockReq::new(crate::pfs::reblock::DO_DATA, 100);
    store.set_pfs_id(1);
    store.reblock(&mut req).unwrap();
    assert!(req.interrupted);
    // Rewritten and new payloads between the calls.
    put_one(&mut writer, &data_id(100, 0), &[7u8; 5000]);
    put_one(&mut writer, &data_id(601, 0), &[8u8; 6000]);
    req.key_beg = req.key_cur;
    let calls = 1 + reblock_to_end(&mut store, &mut req);
    assert!(calls > 5, "{calls}");
    put_one(&mut writer, &data_id(602, 0), &[3u8; 700]);
    let records = everything(&writer);
    let find = |obj: i64| {
        records
            .iter()
            .filter(|(b, _)| b.obj_id == obj && b.delete_tid == 0)
            .map(|(_, d)| d.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(find(100), [vec![7u8; 5000]]);
    assert_eq!(find(601), [vec![8u8; 6000]]);
    assert_eq!(find(602), [vec![3u8; 700]]);
    assert_eq!(blob_files(&store, 1).len(), 1);
}

#[test]
fn a_reblock_listed_in_pieces_follows_rows_removed_rewritten_and_added_between_calls() {
    let (_d, mut store) = reblock_fixture(40, 2);
    // About three payloads a call, seven rows a listing.
    store.set_reblock_budget(8_000);
    let mut writer = Store::open(store.root()).unwrap();
    writer.set_pfs_id(1);
    let mut req = ReblockReq::new(crate::pfs::reblock::DO_DATA, 100);
    store.set_pfs_id(1);
    store.reblock(&mut req).unwrap();
    assert!(req.interrupted);
    // A payload copied and one listed but not copied, deleted and
    // pruned; one not yet listed rewritten; one added at the end.
    let mut tx = writer.begin().unwrap();
    tx.delete(&data_id(100, 0)).unwrap();
    tx.delete(&data_id(104, 0)).unwrap();
    tx.commit().unwrap();
    put_one(&mut writer, &data_id(130, 0), &[7u8; 5000]);
    put_one(&mut writer, &data_id(700, 0), &[8u8; 600]);
    prune_to_end(&mut writer, &mut PruneReq::new(true, Vec::new()));
    let records = everything(&writer);
    req.key_beg = req.key_cur;
    let calls = 1 + reblock_to_end(&mut store, &mut req);
    assert!(calls > 10, "{calls}");
    assert_eq!(everything(&store), records);
    // The two payloads copied before their rows went stay in the new
    // file, named by no row, until the next reblock.
    let live: usize = records
        .iter()
        .map(|(_, d)| d.len())
        .filter(|&n| n > 512)
        .sum();
    let size = live as u64 + 2 * 3000;
    assert_eq!(payload_sizes(&store), (size, size));
    assert_eq!(blob_files(&store, 1).len(), 1);
}

#[test]
fn readers_keep_reading_their_snapshot_across_a_reblock() {
    let (_d, mut store) = reblock_fixture(30, 2);
    let mut reader = Store::open(store.root()).unwrap();
    reader.set_pfs_id(1);
    let records = everything(&reader);
    let view = reader.view(None).unwrap();
    let collect = |v: &View<'_>| {
        let mut out = Vec::new();
        for obj in 100..130 {
            v.records(
                LOCALIZE_MISC,
                obj,
                rectype::DATA,
                i64::MIN..=i64::MAX,
                |_, load| {
                    out.push(load()?);
                    Ok(true)
                },
            )
            .unwrap();
        }
        out
    };
    let seen = collect(&view);
    assert_eq!(seen.len(), 30);
    let mut req = ReblockReq::new(crate::pfs::reblock::DO_FLAGS, 100);
    reblock_to_end(&mut store, &mut req);
    // The old file is gone by name, kept by the view's descriptor.
    assert_eq!(blob_files(&store, 1).len(), 1);
    assert_eq!(collect(&view), seen);
    drop(view);
    assert_eq!(everything(&reader), records);
    // A snapshot taken before the switch, its file not yet open: it
    // takes a newer one.
    let tx = reader.read_tx().unwrap();
    let gen: i64 = tx
        .query_row("SELECT gen FROM blob WHERE pfs = 1", [], |r| r.get(0))
        .unwrap();
    put_one(&mut store, &data_id(100, 0), &[5u8; 3000]);
    let mut req = ReblockReq::new(crate::pfs::reblock::DO_DATA, 100);
    reblock_to_end(&mut store, &mut req);
    assert!(Blobs::open(&tx, reader.root(), 1).is_err_and(|e| blob::is_gone(&e)));
    drop(tx);
    let (_, blobs, ()) = reader.read_blobs(1, |_| Ok(())).unwrap();
    assert_ne!(blobs.path(), blob::path_of(reader.root(), 1, gen));
}

#[test]
fn a_reblock_dropped_or_killed_midway_changes_nothing_and_the_next_cleans_up() {
    let (_d, mut store) = reblock_fixture(30, 2);
    store.set_pfs_id(1);
    let records = everything(&store);
    let sizes = payload_sizes(&store);
    store.set_reblock_budget(10_000);
    let mut req = ReblockReq::new(crate::pfs::reblock::DO_DATA, 100);
    store.reblock(&mut req).unwrap();
    assert!(req.interrupted);
    assert_eq!(blob_files(&store, 1).len(), 2);
    // Another reblock of the store waits for none: it is refused.
    let mut other = Store::open(store.root()).unwrap();
    other.set_pfs_id(1);
    let mut busy = ReblockReq::new(crate::pfs::reblock::DO_DATA, 100);
    assert_eq!(other.reblock(&mut busy).unwrap_err().errno(), Errno::EBUSY);
    // A new request (no resume point of this copy) starts over.
    store.copy = None;
    assert_eq!(blob_files(&store, 1).len(), 1);
    assert_eq!(everything(&store), records);
    assert_eq!(payload_sizes(&store), sizes);
    // What a killed reblock leaves: its copy, named as the next file.
    let gen: i64 = store
        .conn
        .query_row("SELECT gen FROM blob WHERE pfs = 1", [], |r| r.get(0))
        .unwrap();
    let orphan = blob::path_of(store.root(), 1, gen + blob::REBLOCK_STEP);
    fs::write(&orphan, b"partial copy").unwrap();
    assert_eq!(everything(&store), records);
    let mut req = ReblockReq::new(crate::pfs::reblock::DO_DATA, 100);
    reblock_to_end(&mut other, &mut req);
    assert_eq!(blob_files(&store, 1).len(), 1);
    assert_eq!(everything(&store), records);
    assert_eq!(payload_sizes(&store).0, 30 * 3000);
}

#[test]
fn reblock_gives_the_databases_free_pages_back() {
    let (_d, mut store) = new_store();
    make_pfs(&mut store, 1, false);
    for round in 0..4u8 {
        let mut tx = store.begin().unwrap();
        for f in 0..3000 {
            tx.put(&data_id(100 + f, 0), 2, &[round; 200]).unwrap();
        }
        tx.commit().unwrap();
    }
    let mut req = PruneReq::new(true, Vec::new());
    prune_to_end(&mut store, &mut req);
    let pages = |s: &Store, what: &str| -> i64 {
        s.conn
            .query_row(&format!("PRAGMA {what}"), [], |r| r.get(0))
            .unwrap()
    };
    assert!(pages(&store, "freelist_count") > 100);
    let before = pages(&store, "page_count");
    let records = everything(&store);
    let mut req = ReblockReq::new(crate::pfs::reblock::DO_BTREE, 100);
    reblock_to_end(&mut store, &mut req);
    assert_eq!(pages(&store, "freelist_count"), 0);
    // The pages freed, and the pointer-map pages that tracked them.
    let gone = before - pages(&store, "page_count");
    assert!((req.stats.btree_moves..req.stats.btree_moves + 4).contains(&gone));
    assert!(req.stats.btree_moves > 100);
    assert_eq!(everything(&store), records);
    assert!(store.quick_check().unwrap().is_empty());
}

#[test]
fn a_database_made_without_incremental_vacuum_is_converted_once() {
    let (_d, mut store) = reblock_fixture(10, 1);
    store
        .conn
        .execute_batch("PRAGMA auto_vacuum=NONE; VACUUM")
        .unwrap();
    let mode = |s: &Store| -> i64 {
        s.conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(mode(&store), 0);
    let mut reader = Store::open(store.root()).unwrap();
    reader.set_pfs_id(1);
    let records = everything(&reader);
    // A reader in the middle of its snapshot meanwhile.
    let view = reader.view(None).unwrap();
    let mut req = ReblockReq::new(crate::pfs::reblock::DO_BTREE, 100);
    reblock_to_end(&mut store, &mut req);
    assert_eq!(mode(&store), 2);
    let mut seen = 0;
    view.records(
        LOCALIZE_MISC,
        100,
        rectype::DATA,
        i64::MIN..=i64::MAX,
        |_, load| {
            seen += load()?.len();
            Ok(true)
        },
    )
    .unwrap();
    assert_eq!(seen, 3000);
    drop(view);
    assert_eq!(everything(&reader), records);
    assert!(store.quick_check().unwrap().is_empty());
}

/// The WAL a large transaction grew goes when its writer's handle does,
/// unless another connection holds the write lock (never waited for: the
/// handle goes at once); a handle that only read leaves it
/// (schema::trim_wal).
#[test]
fn a_writers_handle_truncates_a_grown_wal_when_no_one_else_writes() {
    let wal_len = |root: &std::path::Path| {
        fs::metadata(root.join(format!("{}-wal", schema::DB_NAME))).map_or(0, |m| m.len())
    };
    let (dir, mut store) = new_store();
    let root = store.root().to_path_buf();
    let mut tx = store.begin().unwrap();
    for i in 0..120_000 {
        tx.put(&data_id(100 + i / 64, i % 64), 2, &[7; 100])
            .unwrap();
    }
    tx.commit().unwrap();
    let grown = wal_len(&root);
    assert!(grown > 16 << 20, "the WAL grew to {grown} bytes only");

    // Another writer in the middle of a transaction: the WAL stays.
    let other = rusqlite::Connection::open(root.join(schema::DB_NAME)).unwrap();
    // As the store's own: its closing, the last, leaves the WAL.
    other
        .set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    drop(store);
    assert!(wal_len(&root) >= grown, "truncated under a writer");
    other.execute_batch("COMMIT").unwrap();
    drop(other);

    // A handle that only read: the WAL stays.
    let looked = Store::open(&root).unwrap();
    looked.pfs_ids().unwrap();
    drop(looked);
    assert!(wal_len(&root) >= grown, "truncated by a reader's handle");

    // The next writer's handle, alone: gone, the records all there.
    let mut store = Store::open(&root).unwrap();
    put_one(&mut store, &data_id(1, 1), b"x");
    drop(store);
    assert_eq!(wal_len(&root), 0);
    let store = Store::open(&root).unwrap();
    assert_eq!(
        view(&store, u64::MAX).len(),
        120_001 + view(&new_store().1, u64::MAX).len()
    );
    drop(dir);
}

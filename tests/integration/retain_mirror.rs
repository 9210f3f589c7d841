//! Mirroring across what PFSes forget and keep: a slave behind a master
//! that pruned in between, a slave that prunes on its own, snapshot
//! records (mirrored) and config records (never), and a hostile snapshot
//! record in a stream (spec: kernel-semantics.md §2.6, §4.3, §4.7, §6).
//! Prunes, snapshots and configs go through the library — under
//! `kernel-double` through the kernel backend and its double — and the
//! mirrors through the binary.

use std::path::Path;

use crate::common::*;
use hammer_mirror::ondisk::{
    rectype, BaseElm, ConfigData, LeafElm, SnapshotData, BTREE_TYPE_RECORD, LOCALIZE_INODE,
};
use hammer_mirror::pfs::store::Store;
use hammer_mirror::pfs::{MirrorWriteReq, Pfs, PruneReq, SnapshotReq, SynctidOp};
use hammer_mirror::retention::{prune_until, snapshot_records, softprune_elms, PruneEnd, SnapTime};
use hammer_mirror::wire::crc::crc32c;
use hammer_mirror::wire::reader::BatchIter;
use hammer_mirror::wire::Mrecord;

/// PFS `pfs` of the store at `root` as the snapshot, config and prune
/// ioctls see it: the store itself, or under `kernel-double` the kernel
/// backend over a double whose descriptors lie in that PFS.
fn handle(root: &Path, pfs: u32) -> Box<dyn Pfs> {
    let store = open(root, pfs);
    #[cfg(feature = "kernel-double")]
    {
        use hammer_mirror::pfs::kernel::KernelPfs;
        use hammer_mirror::pfs::kernel_double::KernelDouble;
        use std::os::fd::OwnedFd;
        let fd = OwnedFd::from(std::fs::File::open(root).unwrap());
        let k = KernelPfs::open(fd, KernelDouble::new(store).unwrap()).map_err(|e| e.0);
        Box::new(k.unwrap())
    }
    #[cfg(not(feature = "kernel-double"))]
    Box::new(store)
}

/// Takes a snapshot of PFS `pfs` as `hammer snapshot` does: the TID of a
/// SYNCTID, recorded as a snapshot record.
fn snapshot(root: &Path, pfs: u32) -> u64 {
    let mut h = handle(root, pfs);
    let tid = h.synctid(SynctidOp::Sync2).unwrap();
    let mut req = SnapshotReq::of(&[SnapshotData::new(tid, tid, b"test")]).unwrap();
    h.add_snapshots(&mut req).unwrap();
    assert_eq!(req.error, None);
    tid
}

/// `hammer prune` of PFS `pfs` by its snapshot records; returns what it
/// destroyed.
fn prune_by_snapshots(root: &Path, pfs: u32) -> i64 {
    let mut h = handle(root, pfs);
    let snaps = snapshot_records(h.as_ref()).unwrap();
    let times: Vec<SnapTime> = snaps.iter().map(SnapTime::from).collect();
    let elms = softprune_elms(&times, 0, 0).elms;
    assert!(!elms.is_empty());
    let mut req = PruneReq::new(false, elms);
    assert_eq!(
        prune_until(h.as_mut(), &mut req, |_| true).unwrap(),
        PruneEnd::Finished
    );
    req.stats.raw_records + req.stats.dir_records
}

/// `hammer prune-everything` of PFS `pfs`; returns what it destroyed.
fn prune_everything(root: &Path, pfs: u32) -> i64 {
    let mut h = handle(root, pfs);
    let mut req = PruneReq::new(true, Vec::new());
    assert_eq!(
        prune_until(h.as_mut(), &mut req, |_| true).unwrap(),
        PruneEnd::Finished
    );
    req.stats.raw_records + req.stats.dir_records
}

/// `files` files (inode and a 3000-byte data block each) in one
/// transaction; returns its TID.
fn create_files(root: &Path, files: std::ops::Range<i64>) -> u64 {
    let mut s = open(root, 1);
    let mut t = s.begin().unwrap();
    for f in files {
        t.put(&inode(0x1000 + f), 2, &[f as u8; 128]).unwrap();
        t.put(&data(0x1000 + f, 0x4000), 2, &vec![f as u8; 3000])
            .unwrap();
    }
    t.commit().unwrap()
}

/// Deletes files `files` in one transaction; returns its TID.
fn delete_files(root: &Path, files: std::ops::Range<i64>) -> u64 {
    let mut s = open(root, 1);
    let mut t = s.begin().unwrap();
    for f in files {
        t.delete(&inode(0x1000 + f)).unwrap();
        t.delete(&data(0x1000 + f, 0x4000)).unwrap();
    }
    t.commit().unwrap()
}

/// Every version of file `f`'s data record in PFS `pfs`.
fn versions(root: &Path, pfs: u32, f: i64) -> Vec<BaseElm> {
    let mut v = Vec::new();
    open(root, pfs)
        .for_each_record(|l, _| {
            if l.base.obj_id == 0x1000 + f && l.base.rec_type == rectype::DATA {
                v.push(l.base);
            }
        })
        .unwrap();
    v
}

fn mirror(root: &Path) {
    copy_quietly(&root.join("master"), &root.join("slave"));
}

/// A store with master PFS#1 holding 60 files, mirrored into slave PFS#2.
fn mirrored() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let root = store_with_master(d.path(), "s");
    create_files(&root, 0..60);
    mirror(&root);
    assert_eq!(link_id(&root.join("slave")), Some(2));
    assert_mirrored((&root, 1), (&root, 2));
    (d, root)
}

/// Files created before the slave's sync point, deleted after it and
/// pruned on the master before the slave hears of the deletion: the
/// slave's next batch does not carry them, and its sweep marks its live
/// copies deleted at the batch's end.
// spec: kernel-semantics.md §4.3, §6
#[test]
fn a_slave_behind_a_master_that_pruned_in_between_converges() {
    for everything in [false, true] {
        let (_d, root) = mirrored();
        let e1 = sync_end(&root, 2);
        let deleted = delete_files(&root, 20..30);
        assert!(deleted > e1);
        create_files(&root, 60..70);
        snapshot(&root, 1);
        create_files(&root, 70..75);
        snapshot(&root, 1);
        create_files(&root, 75..80);
        let gone = if everything {
            prune_everything(&root, 1)
        } else {
            prune_by_snapshots(&root, 1)
        };
        // 10 files' inode and data records.
        assert!(gone >= 20, "{gone} records pruned");
        assert!(versions(&root, 1, 25).is_empty());
        assert_eq!(versions(&root, 2, 25)[0].delete_tid, 0);
        mirror(&root);
        let e2 = assert_mirrored((&root, 1), (&root, 2));
        // Swept at a batch's end: the slave never learns the TID it went.
        for f in 20..30 {
            let v = versions(&root, 2, f);
            assert_eq!(v.len(), 1, "file {f}");
            let t = v[0].delete_tid;
            assert!(
                e1 < t && t <= e2 && t != deleted,
                "file {f} deleted at {t:#x}"
            );
        }
        // Once more changes nothing.
        let before = pfs_state(&root, 2);
        mirror(&root);
        assert_eq!(pfs_state(&root, 2).len(), before.len());
    }
}

/// A slave that prunes its own history keeps taking increments: PASS
/// records for what it pruned create nothing, and the invariant holds
/// after each batch, whichever side pruned.
// spec: kernel-semantics.md §6
#[test]
fn a_slave_pruned_on_its_own_keeps_receiving_increments() {
    let (_d, root) = mirrored();
    // History on both sides: rewrites and deletions, mirrored.
    make_history(&root, 40, 3, 2000);
    mirror(&root);
    let e1 = assert_mirrored((&root, 1), (&root, 2));
    let slave_deleted = |root: &Path| {
        let mut n = 0;
        open(root, 2)
            .for_each_record(|l, _| n += usize::from(l.base.delete_tid != 0))
            .unwrap();
        n
    };
    assert!(slave_deleted(&root) > 0);
    assert!(prune_everything(&root, 2) > 0);
    assert_eq!(slave_deleted(&root), 0);
    // More history, including deletions of records created before e1.
    make_history(&root, 40, 2, 2000);
    delete_files(&root, 0..5);
    mirror(&root);
    let e2 = assert_mirrored((&root, 1), (&root, 2));
    assert!(e2 > e1);
    // Nothing the slave pruned came back: its deleted records all date
    // from after its prune.
    open(&root, 2)
        .for_each_record(|l, _| {
            let b = l.base;
            assert!(b.delete_tid == 0 || b.delete_tid > e1, "{b:?} came back");
        })
        .unwrap();
    // Both prune by the snapshots each holds (the slave's inherited
    // through the stream), each on its own, and go on.
    snapshot(&root, 1);
    make_history(&root, 40, 1, 2000);
    snapshot(&root, 1);
    make_history(&root, 40, 1, 2000);
    mirror(&root);
    snapshot(&root, 1);
    assert!(prune_by_snapshots(&root, 2) > 0);
    make_history(&root, 40, 1, 2000);
    assert!(prune_by_snapshots(&root, 1) > 0);
    delete_files(&root, 5..10);
    mirror(&root);
    assert_mirrored((&root, 1), (&root, 2));
}

/// The CONFIG records of a PFS: (visible) as of `tid`.
fn configs(root: &Path, pfs: u32) -> Vec<LeafElm> {
    let mut v = Vec::new();
    open(root, pfs)
        .for_each_record(|l, _| {
            if l.base.rec_type == rectype::CONFIG {
                v.push(*l);
            }
        })
        .unwrap();
    v
}

/// Snapshot records travel like any record, and the slave may then
/// manage its own; CONFIG records go out in MIRROR_READ's stream but a
/// slave neither takes them nor sweeps its own.
// spec: kernel-semantics.md §2.6, §4.7
#[test]
fn snapshot_records_are_mirrored_and_config_records_never() {
    let (_d, root) = mirrored();
    let master_cfg = ConfigData::from_text(b"snapshots 1d 60d\n").unwrap();
    let slave_cfg = ConfigData::from_text(b"snapshots 0d 0d\n").unwrap();
    handle(&root, 1).set_config(&master_cfg).unwrap();
    handle(&root, 2).set_config(&slave_cfg).unwrap();
    let s1 = snapshot(&root, 1);
    let s2 = snapshot(&root, 1);
    create_files(&root, 60..62);
    // MIRROR_READ sends the master's CONFIG record.
    let out = ok(&["-B", "mirror-read", root.join("master").to_str().unwrap()]);
    let sent_config = BatchIter::new(&out.stdout).any(|r| {
        matches!(r.decode(), Some(Mrecord::Rec { leaf, .. }) if leaf.base.rec_type == rectype::CONFIG)
    });
    assert!(sent_config, "no CONFIG record in the stream");
    mirror(&root);
    let tids = |pfs| -> Vec<u64> {
        snapshot_records(handle(&root, pfs).as_ref())
            .unwrap()
            .iter()
            .map(|s| s.tid)
            .collect()
    };
    assert_eq!(tids(2), [s1, s2]);
    assert_eq!(handle(&root, 2).get_config().unwrap(), Some(slave_cfg));
    assert_eq!(configs(&root, 2).len(), 1);
    assert_eq!(configs(&root, 2)[0].base.delete_tid, 0, "never swept");
    // The slave deletes one of its own; the master takes a third.
    let mut del = SnapshotReq::of(&[SnapshotData::new(s1, 0, b"")]).unwrap();
    handle(&root, 2).del_snapshots(&mut del).unwrap();
    assert_eq!(del.error, None);
    let s3 = snapshot(&root, 1);
    handle(&root, 1).set_config(&slave_cfg).unwrap();
    create_files(&root, 62..64);
    mirror(&root);
    // The one the slave deleted is not created again (the master sends
    // it as a PASS now), the new one arrives.
    assert_eq!(tids(2), [s2, s3]);
    assert_eq!(handle(&root, 2).get_config().unwrap(), Some(slave_cfg));
    assert_eq!(configs(&root, 2).len(), 1);
    // Everything but the config records is the master's.
    let e = sync_end(&root, 2);
    let mut want = as_of(&root, 1, e);
    let mut got = as_of(&root, 2, e);
    want.retain(|k, _| k.3 != rectype::CONFIG);
    got.retain(|k, _| k.3 != rectype::CONFIG);
    let no_s1: Vec<_> = want.keys().filter(|k| k.3 == rectype::SNAPSHOT).collect();
    assert_eq!(no_s1.len(), 3);
    want.retain(|k, _| !(k.3 == rectype::SNAPSHOT && k.2 == s1 as i64));
    assert!(got == want);
}

/// A SNAPSHOT record the way a stream could carry it: any length, any
/// bytes; its data CRC right.
fn hostile(key: i64, create_tid: u64, payload: &[u8]) -> Vec<u8> {
    let leaf = LeafElm {
        base: BaseElm {
            obj_id: 1,
            key,
            create_tid,
            delete_tid: 0,
            rec_type: rectype::SNAPSHOT,
            obj_type: 0,
            btype: BTREE_TYPE_RECORD,
            localization: LOCALIZE_INODE,
        },
        data_offset: 1,
        data_len: payload.len() as i32,
        data_crc: crc32c(payload),
        ..Default::default()
    };
    Mrecord::Rec {
        rtype: 1,
        leaf,
        data: payload,
    }
    .to_vec()
}

/// A snapshot record from a stream is kept byte for byte (the mirror
/// invariant needs it so) and handed out as the kernel hands one out: 128
/// bytes, zeros past a short payload, a long one cut, the TID the
/// record's key whatever the payload says, the label bounded by its 64
/// bytes; it can be deleted by its key. A wrong CRC is refused as for any
/// record.
// spec: kernel-semantics.md §2.6, §4.6
#[test]
fn a_hostile_snapshot_record_is_kept_as_sent_and_never_trusted() {
    let d = tempfile::tempdir().unwrap();
    let root = new_store(d.path(), "s");
    let mut store = Store::open(&root).unwrap();
    new_pfs(&mut store, 2, true);
    let mut good = SnapshotData::new(0x5555, 77, b"");
    good.label = [b'L'; 64];
    good.reserved01 = 9;
    good.reserved03 = [1, 2, 3, 4];
    let long = [good.to_bytes().as_slice(), &[0xEE; 72]].concat();
    let records = [
        // The payload's TID disagrees with the key.
        (0x1000, good.to_bytes().to_vec()),
        // Short.
        (0x2000, good.to_bytes()[..20].to_vec()),
        // Long.
        (0x3000, long.clone()),
    ];
    let mut stream = Vec::new();
    for (key, p) in &records {
        stream.extend(hostile(*key, 500, p));
    }
    let mut h = handle(&root, 2);
    let mut req = MirrorWriteReq::new(1, 1000);
    assert_eq!(h.mirror_write(&mut req, &stream).unwrap(), stream.len());
    assert_eq!(req.head_error, None);
    // Kept as sent.
    let mut kept = Vec::new();
    open(&root, 2)
        .for_each_record(|l, p| kept.push((l.base.key, p.to_vec())))
        .unwrap();
    let sent: Vec<_> = records.iter().map(|(k, p)| (*k, p.clone())).collect();
    assert_eq!(kept, sent);
    // Handed out normalised.
    let got = snapshot_records(h.as_ref()).unwrap();
    assert_eq!(
        got.iter().map(|s| s.tid).collect::<Vec<_>>(),
        [0x1000, 0x2000, 0x3000]
    );
    assert_eq!(
        (got[0].ts, got[0].reserved01, got[0].label_bytes()),
        (77, 9, &[b'L'; 64][..])
    );
    assert_eq!(
        (got[1].ts, got[1].reserved01, got[1].label_bytes()),
        (77, 9, &b""[..])
    );
    assert_eq!(got[1].reserved03, [0; 4]);
    assert_eq!(got[2].reserved03, [1, 2, 3, 4]);
    let mut del = SnapshotReq::of(&got[..1]).unwrap();
    h.del_snapshots(&mut del).unwrap();
    assert_eq!(del.error, None);
    assert_eq!(snapshot_records(h.as_ref()).unwrap().len(), 2);
    // A payload that does not match its CRC: refused, nothing created.
    let mut bad = hostile(0x4000, 600, &good.to_bytes());
    let at = bad.len() - 3;
    bad[at] ^= 1;
    let mut req = MirrorWriteReq::new(1, 1000);
    assert_eq!(h.mirror_write(&mut req, &bad).unwrap(), 0);
    assert_eq!(req.head_error, Some(nix::errno::Errno::EINVAL));
    assert_eq!(snapshot_records(h.as_ref()).unwrap().len(), 2);
}

//! Property test of keeping and forgetting end to end: random histories
//! and random snapshot sets, the snapshots written as records, listed
//! back, turned into softprune's elements and pruned call by call — on
//! the store and through the kernel backend and its double. Whatever the
//! history, the PFS as of every snapshot kept is byte for byte what it
//! was, exactly the deleted records whose life lies in one bucket are
//! gone, a reblock after the prune changes no record (store-format.md
//! §5.1), and no MIRROR_READ from before a destroyed record's last change
//! skips over its place (kernel-semantics.md §6, §1.9).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::{prune_until, snapshot_records, softprune_elms, PruneEnd, SnapTime};
use crate::ondisk::{rectype, LeafElm, SnapshotData, LOCALIZE_INODE, LOCALIZE_MISC};
use crate::pfs::kernel::KernelPfs;
use crate::pfs::kernel_double::KernelDouble;
use crate::pfs::reblock::DO_FLAGS;
use crate::pfs::retain::prunes;
use crate::pfs::store::{encode_key, RecordId, Store};
use crate::pfs::{MirrorReadReq, Pfs, PruneReq, ReblockReq, SnapshotReq, SynctidOp};
use crate::wire::reader::BatchIter;
use crate::wire::Mrecord;

/// One change of a transaction: object, record kind and key, and the
/// payload's first byte and length to put, or `None` to delete.
type Change = (i64, u8, i64, Option<(u8, usize)>);

#[derive(Clone, Debug)]
struct Case {
    /// Transactions, each followed by a snapshot or not.
    txns: Vec<(Vec<Change>, bool)>,
    /// Records per prune transaction and per call.
    bounds: (usize, usize),
}

fn change() -> impl Strategy<Value = Change> {
    (
        0i64..6,
        0u8..3,
        0i64..3,
        proptest::option::weighted(0.7, (any::<u8>(), prop_oneof![1usize..40, 500usize..900])),
    )
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(
            (
                proptest::collection::vec(change(), 1..8),
                proptest::bool::weighted(0.4),
            ),
            1..12,
        ),
        (1usize..9, 1usize..20),
    )
        .prop_map(|(txns, bounds)| Case { txns, bounds })
}

fn id(obj: i64, kind: u8, key: i64) -> RecordId {
    let (localization, rec_type, key) = match kind {
        0 => (LOCALIZE_INODE, rectype::INODE, 0),
        1 => (LOCALIZE_INODE, rectype::DIRENTRY, 0x1000 + key),
        _ => (LOCALIZE_MISC, rectype::DATA, 0x4000 * (key + 1)),
    };
    RecordId {
        localization,
        obj_id: 0x100 + obj,
        rec_type,
        key,
    }
}

/// The backends a case runs on.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Store,
    Double,
}

/// PFS#1 of the store at `root` through `backend`, prunes cut by `bounds`.
fn handle(root: &Path, backend: Backend, bounds: (usize, usize)) -> Box<dyn Pfs> {
    let mut store = Store::open(root).unwrap();
    store.set_pfs_id(1);
    store.set_prune_bounds(bounds.0, bounds.1);
    match backend {
        Backend::Store => Box::new(store),
        Backend::Double => {
            let fd = OwnedFd::from(File::open(root).unwrap());
            let k = KernelPfs::open(fd, KernelDouble::new(store).unwrap()).map_err(|e| e.0);
            Box::new(k.unwrap())
        }
    }
}

/// Every record of PFS#1 with its payload.
fn records(root: &Path) -> Vec<(LeafElm, Vec<u8>)> {
    let mut s = Store::open(root).unwrap();
    s.set_pfs_id(1);
    let mut v = Vec::new();
    s.for_each_record(|l, d| v.push((*l, d.to_vec()))).unwrap();
    v
}

/// PFS#1 as of `tid`: the visible records, leaf and payload.
fn as_of(recs: &[(LeafElm, Vec<u8>)], tid: u64) -> Vec<(LeafElm, Vec<u8>)> {
    recs.iter()
        .filter(|(l, _)| {
            let b = l.base;
            b.create_tid <= tid && (b.delete_tid == 0 || tid < b.delete_tid)
        })
        .cloned()
        .collect()
}

/// Writes the case's history into a new store in `dir`; returns its root
/// and the snapshot TIDs taken (written as snapshot records through
/// `backend`).
fn build(dir: &Path, c: &Case, backend: Backend) -> (PathBuf, Vec<u64>) {
    let root = dir.join(format!("{backend:?}"));
    let mut store = Store::create(&root).unwrap();
    store.set_pfs_id(1);
    store.set_pseudofs(&Default::default()).unwrap();
    let mut pfs = handle(&root, backend, c.bounds);
    let mut taken = Vec::new();
    for (i, (changes, snapshot)) in c.txns.iter().enumerate() {
        let mut tx = store.begin().unwrap();
        for &(obj, kind, key, put) in changes {
            match put {
                Some((byte, len)) => {
                    let len = if kind == 0 { 128 } else { len };
                    tx.put(&id(obj, kind, key), 2, &vec![byte; len]).unwrap();
                }
                None => {
                    tx.delete(&id(obj, kind, key)).unwrap();
                }
            }
        }
        tx.commit().unwrap();
        if *snapshot {
            // As `hammer snapshot` takes one: the sync point after it.
            let tid = pfs.synctid(SynctidOp::Sync2).unwrap();
            let s = SnapshotData::new(tid, 1_000_000 * (i as u64 + 1), b"prop");
            let mut req = SnapshotReq::of(&[s]).unwrap();
            pfs.add_snapshots(&mut req).unwrap();
            assert_eq!(req.error, None);
            taken.push(tid);
        }
    }
    (root, taken)
}

/// What one backend ends with: the records left, and the statistics.
fn run(
    dir: &Path,
    c: &Case,
    backend: Backend,
) -> (Vec<(LeafElm, Vec<u8>)>, crate::pfs::PruneStats) {
    let (root, taken) = build(dir, c, backend);
    let mut pfs = handle(&root, backend, c.bounds);
    let listed = snapshot_records(pfs.as_ref()).unwrap();
    let mut tids: Vec<u64> = listed.iter().map(|s| s.tid).collect();
    tids.sort_unstable();
    assert_eq!(tids, taken, "{backend:?}: the snapshots listed back");
    let times: Vec<SnapTime> = listed.iter().map(SnapTime::from).collect();
    let soft = softprune_elms(&times, 0, 0);
    let before = records(&root);
    let views: Vec<_> = taken.iter().map(|&t| as_of(&before, t)).collect();
    let mut req = PruneReq::new(false, soft.elms.clone());
    let end = prune_until(pfs.as_mut(), &mut req, |_| true);
    assert_eq!(end.unwrap(), PruneEnd::Finished);
    let after = records(&root);
    for (t, view) in taken.iter().zip(&views) {
        assert!(as_of(&after, *t) == *view, "{backend:?}: as of {t:#x}");
    }
    let kept: Vec<_> = before
        .iter()
        .filter(|(l, _)| !prunes(false, &soft.elms, l.base.create_tid, l.base.delete_tid))
        .cloned()
        .collect();
    assert!(
        after == kept,
        "{backend:?}: exactly the rule's records are gone"
    );
    // A reblock then moves payloads, never a record or its bytes.
    let mut rb = ReblockReq::new(DO_FLAGS, 100);
    loop {
        pfs.reblock(&mut rb).unwrap();
        if !rb.interrupted {
            break;
        }
        rb.key_beg = rb.key_cur;
    }
    assert!(
        records(&root) == after,
        "{backend:?}: the reblock changed a record"
    );
    // A read from at or before a destroyed record's last change never
    // skips over its place.
    let gone: Vec<_> = before.iter().filter(|r| !kept.contains(r)).collect();
    let mut reader = handle(&root, backend, c.bounds);
    for (l, _) in &gone {
        let b = l.base;
        let tid_beg = b.create_tid.max(b.delete_tid);
        let mut mreq = MirrorReadReq::new(tid_beg, u64::MAX - 1);
        let mut buf = vec![0u8; 1 << 16];
        let mut key = b;
        key.localization &= 0xFFFF;
        let k = encode_key(&key);
        loop {
            let n = reader.mirror_read(&mut mreq, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            for r in BatchIter::new(&buf[..n]) {
                if let Some(Mrecord::Skip { beg, end }) = r.decode() {
                    let (mut beg, mut end) = (beg, end);
                    beg.localization &= 0xFFFF;
                    end.localization &= 0xFFFF;
                    assert!(
                        !(encode_key(&beg) <= k && k < encode_key(&end)),
                        "{backend:?}: a SKIP from {tid_beg:#x} covers a pruned record"
                    );
                }
            }
            mreq.key_beg = mreq.key_cur;
        }
    }
    (after, req.stats)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn every_kept_snapshot_survives_and_only_its_buckets_go(c in case()) {
        let dir = tempfile::tempdir().unwrap();
        let (on_store, stats) = run(dir.path(), &c, Backend::Store);
        let (through_double, double_stats) = run(dir.path(), &c, Backend::Double);
        // Both backends prune the same history to the same records (the
        // clocks aside: compare keys, delete TIDs and payloads).
        let strip = |v: &[(LeafElm, Vec<u8>)]| -> Vec<_> {
            v.iter()
                .filter(|(l, _)| l.base.rec_type != rectype::INODE || l.base.obj_id != 1)
                .map(|(l, d)| (l.base, d.clone()))
                .collect()
        };
        prop_assert!(strip(&on_store) == strip(&through_double));
        prop_assert_eq!(stats, double_stats);
    }
}

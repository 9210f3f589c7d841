//! Model-based test of the store: random transactions, mirror reads,
//! (partial) mirror writes into a slave, upgrade/downgrade and synctid,
//! checked after every step against an in-memory reference of the kernel
//! semantics (spec: kernel-semantics.md §7.3).

use std::collections::BTreeMap;

use crate::common::*;
use hammer_mirror::ondisk::{BaseElm, LeafElm};
use hammer_mirror::pfs::store::{encode_key, RecordId, Store};
use hammer_mirror::pfs::{MirrorReadReq, MirrorWriteReq, Pfs, SynctidOp};
use hammer_mirror::wire::reader::BatchIter;
use hammer_mirror::wire::{mrec_type, Mrecord};
use proptest::prelude::*;

const MASTER: u32 = 1;
const SLAVE: u32 = 2;
/// A slave of the slave (a cascade: the first slave is its source).
const CASCADE: u32 = 3;

/// The reference: every record version of the master, keyed in B-Tree
/// order, with its payload.
type Model = BTreeMap<Vec<u8>, (BaseElm, Vec<u8>)>;

#[derive(Clone, Debug)]
enum Op {
    /// Puts (Some payload) and deletes (None) committed as one TID.
    Txn(Vec<(i64, bool, i64, Option<u8>)>),
    /// Mirror master to slave with this read buffer size; `Some(n)` stops
    /// after n write calls without SYNC (a broken link).
    Mirror(usize, Option<usize>),
    /// Upgrade the slave, then downgrade it back to its sync point.
    UpDown,
    Synctid,
    /// Mirror the slave, as of its sync point, into the cascade slave
    /// with this buffer size.
    Cascade(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let change = (
        -2i64..4,
        any::<bool>(),
        0i64..3,
        proptest::option::weighted(0.8, any::<u8>()),
    );
    prop_oneof![
        4 => proptest::collection::vec(change, 1..8).prop_map(Op::Txn),
        3 => (prop_oneof![Just(300usize), Just(1000), Just(1 << 16)], proptest::option::weighted(0.3, 0usize..3))
            .prop_map(|(b, p)| Op::Mirror(b, p)),
        1 => Just(Op::UpDown),
        1 => Just(Op::Synctid),
        2 => prop_oneof![Just(300usize), Just(1 << 16)].prop_map(Op::Cascade),
    ]
}

fn id(obj: i64, is_inode: bool, key: i64) -> RecordId {
    if is_inode {
        inode(obj)
    } else {
        data(obj, key)
    }
}

fn visible(b: &BaseElm, t: u64) -> bool {
    b.create_tid <= t && (b.delete_tid == 0 || t < b.delete_tid)
}

/// (compared key with localization type only, payload) visible as of t.
fn view_of<'a>(
    recs: impl Iterator<Item = (&'a BaseElm, &'a [u8])>,
    t: u64,
) -> Vec<(BaseElm, Vec<u8>)> {
    recs.filter(|(b, _)| visible(b, t))
        .map(|(b, d)| {
            let mut k = *b;
            k.localization &= 0xFFFF;
            k.delete_tid = 0;
            k.obj_type = 0;
            k.btype = 0;
            (k, d.to_vec())
        })
        .collect()
}

fn store_records(store: &mut Store, pfs: u32) -> Vec<(LeafElm, Vec<u8>)> {
    store.set_pfs_id(pfs);
    let mut v = Vec::new();
    store
        .for_each_record(|l, d| v.push((*l, d.to_vec())))
        .unwrap();
    v
}

fn store_view(store: &mut Store, pfs: u32, t: u64) -> Vec<(BaseElm, Vec<u8>)> {
    let recs = store_records(store, pfs);
    view_of(recs.iter().map(|(l, d)| (&l.base, d.as_slice())), t)
}

fn model_view(m: &Model, t: u64) -> Vec<(BaseElm, Vec<u8>)> {
    view_of(m.values().map(|(b, d)| (b, d.as_slice())), t)
}

/// Applies a transaction to the model as the store's put/delete do.
fn model_txn(m: &mut Model, tid: u64, changes: &[(i64, bool, i64, Option<u8>)]) {
    for &(obj, inode, key, payload) in changes {
        let rid = id(obj, inode, key);
        let lo = (MASTER << 16) | rid.localization;
        let live = m.iter_mut().find(|(_, (b, _))| {
            b.localization == lo
                && b.obj_id == obj
                && b.rec_type == rid.rec_type
                && b.key == rid.key
                && b.delete_tid == 0
        });
        let mut remove = None;
        if let Some((k, (b, _))) = live {
            if b.create_tid == tid {
                remove = Some(k.clone());
            } else {
                b.delete_tid = tid;
            }
        }
        if let Some(k) = remove {
            m.remove(&k);
        }
        if let Some(p) = payload {
            let b = BaseElm {
                localization: lo,
                obj_id: obj,
                rec_type: rid.rec_type,
                key: rid.key,
                create_tid: tid,
                ..Default::default()
            };
            let data = if inode {
                vec![p; 128]
            } else {
                vec![p; 1 + p as usize % 40]
            };
            m.insert(encode_key(&b).to_vec(), (b, data));
        }
    }
}

/// Reads [tid_beg, tid_end] call by call and checks each call's output
/// against kernel-semantics.md §3 and the model; returns the per-call chunks.
fn read_checked(
    store: &mut Store,
    m: &Model,
    tid_beg: u64,
    tid_end: u64,
    bufsize: usize,
) -> Vec<Vec<u8>> {
    store.set_pfs_id(MASTER);
    let mut req = MirrorReadReq::new(tid_beg, tid_end);
    let chunks = read_calls(store, &mut req, bufsize);
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for chunk in &chunks {
        assert_eq!(chunk.len() % 8, 0);
        let mut last: Option<Vec<u8>> = None;
        for r in BatchIter::new(chunk) {
            let k = match r.decode().unwrap() {
                Mrecord::Rec { leaf, data, .. } => {
                    let b = leaf.base;
                    assert!(
                        tid_beg <= b.create_tid && b.create_tid <= tid_end,
                        "REC tids"
                    );
                    let (mb, md) = &m[&encode_key(&b).to_vec()];
                    let want_del = if mb.delete_tid > tid_end {
                        0
                    } else {
                        mb.delete_tid
                    };
                    assert_eq!(b.delete_tid, want_del, "REC delete_tid");
                    assert_eq!(data, md.as_slice());
                    seen.push(encode_key(&b).to_vec());
                    encode_key(&b).to_vec()
                }
                Mrecord::Pass { leaf } => {
                    let b = leaf.base;
                    assert!(b.create_tid < tid_beg, "PASS tids");
                    assert_eq!(b.delete_tid, m[&encode_key(&b).to_vec()].0.delete_tid);
                    seen.push(encode_key(&b).to_vec());
                    encode_key(&b).to_vec()
                }
                Mrecord::Skip { beg, end } => {
                    let (kb, ke) = (encode_key(&beg).to_vec(), encode_key(&end).to_vec());
                    assert!(kb < ke);
                    for (_, (b, _)) in m.range(kb.clone()..ke) {
                        assert!(
                            b.create_tid.max(b.delete_tid) < tid_beg,
                            "changed record skipped"
                        );
                    }
                    kb
                }
                other => panic!("unexpected {other:?}"),
            };
            if let Some(l) = &last {
                assert!(*l < k, "records not ascending");
            }
            last = Some(k);
        }
    }
    assert_eq!(req.key_cur, BaseElm::KEY_END_INIT);
    // Every record changed in range is sent (not hidden in a SKIP).
    for (k, (b, _)) in m {
        if b.create_tid <= tid_end && b.create_tid.max(b.delete_tid) >= tid_beg {
            assert!(seen.contains(k), "changed record {b:?} not sent");
        }
    }
    chunks
}

/// A NODATA read (the prescan's) carries the same RECs without payloads,
/// flagged NODATA exactly when a payload was left out (kernel-semantics.md
/// §3.2, §7.3 item 8).
fn assert_nodata_matches(store: &mut Store, beg: u64, end: u64, chunks: &[Vec<u8>]) {
    let recs = |bytes: &[u8], want_nodata: bool| -> Vec<LeafElm> {
        BatchIter::new(bytes)
            .filter_map(|r| match r.decode() {
                Some(Mrecord::Rec { rtype, leaf, data }) => {
                    if want_nodata {
                        assert!(data.is_empty());
                        let flagged = rtype == mrec_type::REC_NODATA;
                        assert_eq!(flagged, leaf.data_offset != 0, "NODATA flag");
                    }
                    Some(leaf)
                }
                _ => None,
            })
            .collect()
    };
    store.set_pfs_id(MASTER);
    let mut req = MirrorReadReq::new(beg, end);
    req.nodata = true;
    let nodata: Vec<LeafElm> = read_calls(store, &mut req, 1 << 16)
        .iter()
        .flat_map(|c| recs(c, true))
        .collect();
    let full: Vec<LeafElm> = chunks.iter().flat_map(|c| recs(c, false)).collect();
    assert_eq!(nodata, full);
}

/// Reads `[tid_beg, tid_end]` of PFS `pfs` call by call.
fn read_chunks(
    store: &mut Store,
    pfs: u32,
    tid_beg: u64,
    tid_end: u64,
    bufsize: usize,
) -> Vec<Vec<u8>> {
    store.set_pfs_id(pfs);
    read_calls(store, &mut MirrorReadReq::new(tid_beg, tid_end), bufsize)
}

fn write_chunks(store: &mut Store, chunks: &[Vec<u8>], tid_end: u64) {
    write_chunks_to(store, SLAVE, chunks, tid_end);
}

fn write_chunks_to(store: &mut Store, pfs: u32, chunks: &[Vec<u8>], tid_end: u64) {
    store.set_pfs_id(pfs);
    let mut req = MirrorWriteReq::new(1, tid_end);
    for c in chunks {
        let n = store.mirror_write(&mut req, c).unwrap();
        assert_eq!(req.head_error, None);
        assert_eq!(n, c.len());
    }
}

fn set_sync(store: &mut Store, pfs: u32, tid: u64) {
    store.set_pfs_id(pfs);
    let mut p = store.get_pseudofs().unwrap();
    p.sync_end_tid = tid;
    store.set_pseudofs(&p).unwrap();
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(&dir.path().join("s")).unwrap();
    for (pfs, slave) in [(MASTER, false), (SLAVE, true), (CASCADE, true)] {
        new_pfs(&mut store, pfs, slave);
    }
    let mut m: Model = BTreeMap::new();
    for (l, d) in store_records(&mut store, MASTER) {
        m.insert(encode_key(&l.base).to_vec(), (l.base, d));
    }
    let mut last_sync = 0;
    for op in ops {
        match op {
            Op::Txn(changes) => {
                store.set_pfs_id(MASTER);
                let mut tx = store.begin().unwrap();
                for &(obj, inode, key, payload) in &changes {
                    let rid = id(obj, inode, key);
                    match payload {
                        Some(p) => {
                            let data = if inode {
                                vec![p; 128]
                            } else {
                                vec![p; 1 + p as usize % 40]
                            };
                            tx.put(&rid, 2, &data).unwrap();
                        }
                        None => {
                            tx.delete(&rid).unwrap();
                        }
                    }
                }
                let tid = tx.commit().unwrap();
                model_txn(&mut m, tid, &changes);
            }
            Op::Mirror(bufsize, partial) => {
                store.set_pfs_id(SLAVE);
                let slave_sync = store.get_pseudofs().unwrap().sync_end_tid;
                store.set_pfs_id(MASTER);
                let end = store.get_pseudofs().unwrap().sync_end_tid;
                let beg = slave_sync + 1;
                if beg > end {
                    continue;
                }
                let chunks = read_checked(&mut store, &m, beg, end, bufsize);
                assert_nodata_matches(&mut store, beg, end, &chunks);
                let old_view = store_view(&mut store, SLAVE, slave_sync);
                match partial {
                    Some(n) => {
                        write_chunks(&mut store, &chunks[..n.min(chunks.len())], end);
                        // The published view does not move without SYNC.
                        assert_eq!(store_view(&mut store, SLAVE, slave_sync), old_view);
                    }
                    None => {
                        write_chunks(&mut store, &chunks, end);
                        set_sync(&mut store, SLAVE, end);
                        // Re-applying the same batch is a no-op.
                        let before = store_records(&mut store, SLAVE);
                        write_chunks(&mut store, &chunks, end);
                        assert_eq!(store_records(&mut store, SLAVE), before);
                    }
                }
            }
            Op::UpDown => {
                store.set_pfs_id(SLAVE);
                let sync = store.get_pseudofs().unwrap().sync_end_tid;
                let at_sync = store_view(&mut store, SLAVE, sync);
                store.upgrade().unwrap();
                assert!(!store.get_pseudofs().unwrap().is_slave());
                for (l, _) in store_records(&mut store, SLAVE) {
                    assert!(l.base.create_tid <= sync && l.base.delete_tid <= sync);
                }
                assert_eq!(store_view(&mut store, SLAVE, u64::MAX), at_sync);
                store.downgrade().unwrap();
                let p = store.get_pseudofs().unwrap();
                assert!(p.is_slave() && p.sync_end_tid >= sync);
                set_sync(&mut store, SLAVE, sync);
            }
            Op::Cascade(bufsize) => {
                store.set_pfs_id(CASCADE);
                let beg = store.get_pseudofs().unwrap().sync_end_tid + 1;
                store.set_pfs_id(SLAVE);
                let end = store.get_pseudofs().unwrap().sync_end_tid;
                if beg > end {
                    continue;
                }
                let chunks = read_chunks(&mut store, SLAVE, beg, end, bufsize);
                write_chunks_to(&mut store, CASCADE, &chunks, end);
                set_sync(&mut store, CASCADE, end);
            }
            Op::Synctid => {
                store.set_pfs_id(MASTER);
                let t = store.synctid(SynctidOp::Sync2).unwrap();
                assert!(m
                    .values()
                    .all(|(b, _)| b.create_tid <= t && b.delete_tid <= t));
            }
        }
        // After every step: master equals the model, its sync point never
        // goes back, and the slave as of its sync point equals the master
        // as of that TID.
        let master: Vec<_> = store_records(&mut store, MASTER)
            .into_iter()
            .map(|(l, d)| (l.base, d))
            .collect();
        let want: Vec<_> = m.values().collect();
        assert_eq!(master.len(), want.len());
        for ((a, ad), (b, bd)) in master.iter().zip(want) {
            assert_eq!(
                (
                    a.localization,
                    a.obj_id,
                    a.rec_type,
                    a.key,
                    a.create_tid,
                    a.delete_tid
                ),
                (
                    b.localization,
                    b.obj_id,
                    b.rec_type,
                    b.key,
                    b.create_tid,
                    b.delete_tid
                )
            );
            assert_eq!(ad, bd);
        }
        store.set_pfs_id(MASTER);
        let sync = store.get_pseudofs().unwrap().sync_end_tid;
        assert!(sync >= last_sync);
        last_sync = sync;
        // So is the slave's slave, as of its own sync point.
        for (pfs, what) in [(SLAVE, "slave"), (CASCADE, "cascade")] {
            store.set_pfs_id(pfs);
            let e = store.get_pseudofs().unwrap().sync_end_tid;
            if e > 1 {
                assert_eq!(
                    store_view(&mut store, pfs, e),
                    model_view(&m, e),
                    "{what} as of {e:x}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn store_behaves_like_the_kernel_model(ops in proptest::collection::vec(op(), 1..24)) {
        run(ops);
    }
}

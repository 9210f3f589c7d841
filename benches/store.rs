//! Store throughput and the cost of incremental reads, printed as rates
//! and ratios against the targets: apply >= 200,000 small
//! records/s and >= 300 MB/s of 16 KiB records; an incremental read of
//! 1,000 changes in a 1,000,000-record PFS <= 0.02 of a full read; store
//! size <= 1.2 x the raw data for 16 KiB records.

use std::path::Path;
use std::time::Instant;

use hammer_mirror::ondisk::{rectype, BaseElm, LeafElm, PseudofsData, LOCALIZE_MISC, PFSD_SLAVE};
use hammer_mirror::pfs::store::{RecordId, Store, DB_NAME};
use hammer_mirror::pfs::{MirrorReadReq, MirrorWriteReq, Pfs};
use hammer_mirror::wire::crc::crc32c;
use hammer_mirror::wire::{Mrecord, SERIALBUF_SIZE};

const TID: u64 = 0x0000_0001_0000_0010;

/// A slave PFS#1 in a fresh store.
fn slave_store(dir: &Path) -> Store {
    let mut s = Store::create(&dir.join("s")).unwrap();
    s.set_pfs_id(1);
    let p = PseudofsData {
        sync_beg_tid: 1,
        sync_end_tid: 1,
        mirror_flags: PFSD_SLAVE,
        ..Default::default()
    };
    s.set_pseudofs(&p).unwrap();
    s
}

/// Applies `n` REC records with `len`-byte payloads in 512 KiB calls, as
/// mirror-write does; returns the seconds spent in mirror_write.
fn apply(store: &mut Store, n: i64, len: usize) -> f64 {
    let mut req = MirrorWriteReq::new(1, TID);
    let mut batch = Vec::with_capacity(SERIALBUF_SIZE + 2 * len + 160);
    let mut data = vec![0u8; len];
    let mut secs = 0.0;
    for i in 0..n {
        data[..8].copy_from_slice(&i.to_le_bytes());
        let leaf = LeafElm {
            base: BaseElm {
                obj_id: 0x1_0000_0000 + i,
                key: len as i64,
                create_tid: TID,
                rec_type: rectype::DATA,
                obj_type: 2,
                btype: b'R',
                localization: LOCALIZE_MISC,
                ..Default::default()
            },
            data_offset: 1,
            data_len: len as i32,
            data_crc: crc32c(&data),
            ..Default::default()
        };
        let rec = Mrecord::Rec {
            rtype: 1,
            leaf,
            data: &data,
        };
        if batch.len() + rec.wire_size() > SERIALBUF_SIZE {
            secs += write(store, &mut req, &batch);
            batch.clear();
        }
        rec.encode_into(&mut batch);
    }
    secs + write(store, &mut req, &batch)
}

/// This process's CPU time in seconds (Linux `/proc/self/schedstat`), to
/// tell a slow machine from a loaded one: the wall-clock rates below suffer
/// from other processes, the per-CPU-second rates much less.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

fn write(store: &mut Store, req: &mut MirrorWriteReq, batch: &[u8]) -> f64 {
    let t = Instant::now();
    let used = store.mirror_write(req, batch).unwrap();
    assert_eq!((used, req.head_error), (batch.len(), None));
    t.elapsed().as_secs_f64()
}

/// Reads `[tid_beg, tid_end]` of the addressed PFS with the tool's
/// buffer; returns (seconds, bytes).
fn read(store: &mut Store, tid_beg: u64, tid_end: u64) -> (f64, usize) {
    let mut req = MirrorReadReq::new(tid_beg, tid_end);
    let mut buf = vec![0u8; SERIALBUF_SIZE];
    let mut bytes = 0;
    let t = Instant::now();
    loop {
        let n = store.mirror_read(&mut req, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        bytes += n;
        req.key_beg = req.key_cur;
    }
    (t.elapsed().as_secs_f64(), bytes)
}

/// The store's size on disk: the database after a checkpoint plus the
/// payload files beside it.
fn db_size(dir: &Path) -> u64 {
    let root = dir.join("s");
    let conn = rusqlite::Connection::open(root.join(DB_NAME)).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// Runs the sections named on the command line (small, big, incremental),
/// or all of them (`cargo bench` passes only `--bench`).
fn main() {
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| picked.is_empty() || picked.iter().any(|p| p == name);
    if run("small") {
        small();
    }
    if run("big") {
        big();
    }
    if run("incremental") {
        incremental();
    }
}

fn small() {
    let small_n: i64 = 400_000;
    let d = tempfile::tempdir().unwrap();
    let mut s = slave_store(d.path());
    let cpu = cpu_secs();
    let secs = apply(&mut s, small_n, 16);
    let cpu = cpu_secs() - cpu;
    let rate = small_n as f64 / secs;
    println!(
        "apply small (16-byte payload): {rate:.0} records/s (target 200000, ratio {:.2}); \
         {:.0} records per CPU second",
        rate / 200_000.0,
        small_n as f64 / cpu
    );
}

fn big() {
    let big_n: i64 = 16_384;
    let d = tempfile::tempdir().unwrap();
    let mut s = slave_store(d.path());
    let cpu = cpu_secs();
    let secs = apply(&mut s, big_n, 16384);
    let cpu = cpu_secs() - cpu;
    let mb = (big_n * 16384) as f64 / 1e6;
    println!(
        "apply 16 KiB records: {:.0} MB/s (target 300, ratio {:.2}); {:.0} MB per CPU second",
        mb / secs,
        mb / secs / 300.0,
        mb / cpu
    );
    drop(s);
    let size = db_size(d.path()) as f64;
    let raw = (big_n * 16384) as f64;
    println!(
        "store size for 16 KiB records: {:.3} x raw data (target <= 1.2)",
        size / raw
    );
}

fn incremental() {
    let n: i64 = 1_000_000;
    let d = tempfile::tempdir().unwrap();
    let mut s = slave_store(d.path());
    apply(&mut s, n, 16);
    // SYNC as mirror-write does it, then make the copy a master.
    let mut p = s.get_pseudofs().unwrap();
    p.sync_end_tid = TID;
    s.set_pseudofs(&p).unwrap();
    s.upgrade().unwrap();
    let e1 = s.get_pseudofs().unwrap().sync_end_tid;
    let mut tx = s.begin().unwrap();
    for i in 0..1000 {
        let id = RecordId {
            localization: LOCALIZE_MISC,
            obj_id: 0x1_0000_0000 + i * (n / 1000),
            rec_type: rectype::DATA,
            key: 16,
        };
        tx.put(&id, 2, b"changed payload!").unwrap();
    }
    let e2 = tx.commit().unwrap();
    // Best of several runs: the machine may be shared.
    let best = |s: &mut Store, beg, runs| {
        (0..runs)
            .map(|_| read(s, beg, e2))
            .fold((f64::MAX, 0), |a, b| if b.0 < a.0 { b } else { a })
    };
    let (full, full_bytes) = best(&mut s, 0, 3);
    let (inc, inc_bytes) = best(&mut s, e1 + 1, 20);
    println!(
        "full read of {n} records: {full:.3} s, {full_bytes} bytes; incremental read of 1000 \
         changes: {inc:.4} s, {inc_bytes} bytes; ratio {:.4} (target <= 0.02)",
        inc / full
    );
}

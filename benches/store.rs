//! Store throughput and the cost of incremental reads, printed as rates
//! and ratios against the targets: apply >= 200,000 small
//! records/s and >= 300 MB/s of 16 KiB records; an incremental read of
//! 1,000 changes in a 1,000,000-record PFS <= 0.02 of a full read; store
//! size <= 1.2 x the raw data for 16 KiB records; and, by the built
//! `hammer mirror-read` (section `scale`, sizes in millions of records from
//! `HAMMER_BENCH_SCALE`, default `1,4,10`), time per record at the largest
//! size <= 1.3 x the smallest, peak RSS <= 256 MB at every size and an
//! incremental read of 1,000 changes <= 0.02 of a full read; and (section
//! `dates`) the cost of resolving `@@<date>` on a PFS of 10,000 snapshots
//! <= 50 ms, as an export by date less the same export by TID.

#[path = "../tests/common/rss.rs"]
mod rss;

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use hammer_mirror::ondisk::{
    rectype, BaseElm, LeafElm, PseudofsData, SnapshotData, LOCALIZE_MISC, PFSD_SLAVE,
};
use hammer_mirror::pfs::store::{RecordId, Store, DB_NAME};
use hammer_mirror::pfs::{MirrorReadReq, MirrorWriteReq, Pfs, SnapshotReq};
use hammer_mirror::wire::crc::crc32c;
use hammer_mirror::wire::{Mrecord, SERIALBUF_SIZE};

const TID: u64 = 0x0000_0001_0000_0010;

const HAMMER: &str = env!("CARGO_BIN_EXE_hammer");

/// Records changed after the first sync in `incremental` and `scale`.
const CHANGES: i64 = 1000;

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
    if run("scale") {
        scale();
    }
    if run("dates") {
        dates();
    }
}

/// `hammer export <pfs>@@<date>` against `hammer export <pfs>@@<tid>` of
/// the same TID on a PFS of 10,000 snapshots (a small tree, so the
/// export itself is short): medians of 7 paired rounds.
fn dates() {
    const SNAPSHOTS: u64 = 10_000;
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("s");
    let pfs = root.join("m");
    let tree = d.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    for i in 0..100 {
        std::fs::write(tree.join(format!("f{i}")), format!("{i}")).unwrap();
    }
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(HAMMER).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["store-create".as_ref(), root.as_os_str()]);
    run(&["pfs-master".as_ref(), pfs.as_os_str()]);
    let line = run(&["import".as_ref(), tree.as_os_str(), pfs.as_os_str()]);
    let tid = line.trim().rsplit(' ').next().unwrap();
    let tid = u64::from_str_radix(tid.trim_start_matches("0x"), 16).unwrap();
    // Dated one second apart in 2020; the newest names the import's TID,
    // the others TIDs a date far in the future never picks.
    let mut s = Store::open(&root).unwrap();
    s.set_pfs_id(1);
    let snaps: Vec<SnapshotData> = (0..SNAPSHOTS)
        .map(|i| {
            let at = if i + 1 == SNAPSHOTS { tid } else { 0x1000 + i };
            SnapshotData::new(at, (1_577_836_800 + i) * 1_000_000, b"bench")
        })
        .collect();
    for chunk in snaps.chunks(16) {
        let mut req = SnapshotReq::of(chunk).unwrap();
        s.add_snapshots(&mut req).unwrap();
        assert_eq!(req.error, None);
    }
    drop(s);
    let export = |point: &str, n: usize| {
        let target = d.path().join(format!("out{n}"));
        let source = format!("{}@@{point}", pfs.display());
        let t = Instant::now();
        let out = Command::new(HAMMER)
            .env("TZ", "UTC")
            .args(["-q", "export", &source, target.to_str().unwrap()])
            .output()
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_dir_all(&target).unwrap();
        secs
    };
    let (mut by_tid, mut by_date) = (Vec::new(), Vec::new());
    for round in 0..7 {
        by_tid.push(export(&format!("{tid:#018x}"), 2 * round));
        by_date.push(export("9999-12-31", 2 * round + 1));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (t, dt) = (median(&mut by_tid), median(&mut by_date));
    println!(
        "@@<date> on {SNAPSHOTS} snapshots: export by date {:.1} ms, by TID {:.1} ms: \
         resolution {:.1} ms (target <= 50), ratio {:.2}",
        dt * 1e3,
        t * 1e3,
        (dt - t) * 1e3,
        dt / t
    );
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

/// A master PFS#1 of `n` 16-byte records, synced as mirror-write leaves
/// a slave and upgraded, then `CHANGES` records spread evenly over it
/// rewritten in one transaction; returns the store, the sync_end_tid
/// before the changes and the TID that made them.
fn master_with_changes(dir: &Path, n: i64) -> (Store, u64, u64) {
    let mut s = slave_store(dir);
    apply(&mut s, n, 16);
    let mut p = s.get_pseudofs().unwrap();
    p.sync_end_tid = TID;
    s.set_pseudofs(&p).unwrap();
    s.upgrade().unwrap();
    let e1 = s.get_pseudofs().unwrap().sync_end_tid;
    let mut tx = s.begin().unwrap();
    for i in 0..CHANGES {
        let id = RecordId {
            localization: LOCALIZE_MISC,
            obj_id: 0x1_0000_0000 + i * (n / CHANGES),
            rec_type: rectype::DATA,
            key: 16,
        };
        tx.put(&id, 2, b"changed payload!").unwrap();
    }
    let e2 = tx.commit().unwrap();
    (s, e1, e2)
}

fn incremental() {
    let n: i64 = 1_000_000;
    let d = tempfile::tempdir().unwrap();
    let (mut s, e1, e2) = master_with_changes(d.path(), n);
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

/// Sizes for `scale` in records: `HAMMER_BENCH_SCALE` as comma-separated
/// millions (fractions allowed, for quick runs).
fn scale_sizes() -> Vec<i64> {
    let spec = std::env::var("HAMMER_BENCH_SCALE").unwrap_or_else(|_| "1,4,10".into());
    let sizes: Vec<i64> = spec
        .split(',')
        .map(|m| {
            let m: f64 = m.trim().parse().unwrap_or_else(|_| {
                panic!("HAMMER_BENCH_SCALE: {m:?} is not a number of millions")
            });
            (m * 1e6).round() as i64
        })
        .collect();
    assert!(
        sizes.iter().all(|&n| n >= CHANGES),
        "HAMMER_BENCH_SCALE: every size must hold the {CHANGES} changed records"
    );
    sizes
}

/// One `hammer mirror-read` of a size: best wall seconds of its runs and
/// the largest peak RSS (KiB) of its child processes, polled from VmHWM.
/// Not getrusage(RUSAGE_CHILDREN): a child's ru_maxrss counts the address
/// space it replaced at exec, this process's own (vfork shares it).
struct ReadRuns {
    best: f64,
    rss_kib: u64,
}

/// Runs `hammer mirror-read <args>` with stdout on /dev/null, as a user
/// would, `runs` times; stderr goes to `log` and is shown if it fails.
fn mirror_read_runs(args: &[OsString], log: &Path, runs: usize) -> ReadRuns {
    let mut out = ReadRuns {
        best: f64::MAX,
        rss_kib: 0,
    };
    for _ in 0..runs {
        let t = Instant::now();
        let child = Command::new(HAMMER)
            .arg("mirror-read")
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create("/dev/null").unwrap())
            .stderr(File::create(log).unwrap())
            .spawn()
            .unwrap();
        let (status, rss_kib) = rss::wait_peak_rss(child).unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(
            status.success(),
            "hammer mirror-read {args:?}: {status}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        out.best = out.best.min(secs);
        out.rss_kib = out.rss_kib.max(rss_kib);
    }
    out
}

/// The bytes of stream `hammer mirror-read <args>` writes, counted through
/// a pipe: the timed runs write to /dev/null, where nothing can be checked.
fn mirror_read_bytes(args: &[OsString], log: &Path) -> u64 {
    let mut child = Command::new(HAMMER)
        .arg("mirror-read")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(log).unwrap())
        .spawn()
        .unwrap();
    let bytes = io::copy(&mut child.stdout.take().unwrap(), &mut io::sink()).unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "hammer mirror-read {args:?}: {status}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    bytes
}

struct ScaleRow {
    n: i64,
    build: f64,
    full: ReadRuns,
    inc: ReadRuns,
}

impl ScaleRow {
    fn secs_per_m(&self) -> f64 {
        self.full.best / (self.n as f64 / 1e6)
    }

    fn rss_mb(&self) -> f64 {
        kib_mb(self.full.rss_kib.max(self.inc.rss_kib))
    }
}

fn kib_mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

/// `hammer mirror-read` of PFSes of each size, full and incremental, by
/// the built binary in a child process.
fn scale() {
    const RUNS: usize = 3;
    // A 16-byte REC on the wire: head, leaf, payload.
    const REC_BYTES: u64 = 16 + 64 + 16;
    let mut rows: Vec<ScaleRow> = Vec::new();
    for n in scale_sizes() {
        let d = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let (s, e1, _) = master_with_changes(d.path(), n);
        // Closed, as a user's store is between commands.
        drop(s);
        let build = t.elapsed().as_secs_f64();
        let pfs = d.path().join("s/@@-1:00001").into_os_string();
        let full_args = [pfs.clone()];
        let inc_args = [pfs, format!("0x{:016x}", e1 + 1).into()];
        let log = d.path().join("stderr");

        // Correctness first: a timed run of the wrong stream proves nothing.
        let full_bytes = mirror_read_bytes(&full_args, &log);
        let inc_bytes = mirror_read_bytes(&inc_args, &log);
        assert!(
            full_bytes >= n as u64 * REC_BYTES,
            "full stream of {n} records: only {full_bytes} bytes"
        );
        assert!(
            (CHANGES as u64 * REC_BYTES..full_bytes / 20).contains(&inc_bytes),
            "incremental stream of {CHANGES} changes: {inc_bytes} bytes"
        );

        let full = mirror_read_runs(&full_args, &log, RUNS);
        let inc = mirror_read_runs(&inc_args, &log, RUNS);
        rows.push(ScaleRow {
            n,
            build,
            full,
            inc,
        });
    }
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return;
    };
    println!(
        "hammer mirror-read of a master PFS of N 16-byte records, stdout on /dev/null; \
         best of {RUNS} runs; incremental: {CHANGES} changes (begin-tid after the first sync)"
    );
    println!(
        "{:>12} {:>9} {:>9} {:>10} {:>11} {:>8} {:>9} {:>10}",
        "N", "build s", "full s", "s per M", "x smallest", "RSS MB", "incr s", "incr/full"
    );
    for r in &rows {
        println!(
            "{:>12} {:>9.1} {:>9.3} {:>10.3} {:>11.2} {:>8.1} {:>9.4} {:>10.4}",
            r.n,
            r.build,
            r.full.best,
            r.secs_per_m(),
            r.secs_per_m() / first.secs_per_m(),
            r.rss_mb(),
            r.inc.best,
            r.inc.best / r.full.best
        );
    }
    let verdict = |ok: bool| if ok { "met" } else { "not met" };
    let growth = last.secs_per_m() / first.secs_per_m();
    println!(
        "time per record, {} vs {} records: {growth:.2}x (goal <= 1.3x): {}",
        last.n,
        first.n,
        verdict(growth <= 1.3)
    );
    let peak = rows.iter().map(ScaleRow::rss_mb).fold(0.0, f64::max);
    println!(
        "peak RSS, largest at any size: {peak:.1} MB (goal <= 256 MB): {}",
        verdict(peak <= 256.0)
    );
    let ratio = last.inc.best / last.full.best;
    println!(
        "incremental read of {CHANGES} changes in {} records: {ratio:.4} of a full read \
         (goal <= 0.02): {}",
        last.n,
        verdict(ratio <= 0.02)
    );
}

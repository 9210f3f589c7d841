//! Readers beside a writer: while one process commits transactions, another
//! runs mirror_read, GET_PSEUDOFS and `hammer pfs-status` on the same store;
//! every read sees one consistent state and none fails with a lock error.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use hammer_mirror::ondisk::rectype;
use hammer_mirror::pfs::store::Store;
use hammer_mirror::pfs::{MirrorReadReq, Pfs};
use hammer_mirror::wire::reader::BatchIter;
use hammer_mirror::wire::Mrecord;

const CHILD_ENV: &str = "HAMMER_STORE_WRITER_CHILD";
const BASE_ENV: &str = "HAMMER_STORE_WRITER_BASE";
const OBJS: i64 = 200;

/// The writer: rewrites all records with the next generation until killed.
/// A second writer (`base` 1,000,000) writes its own objects beside it.
fn writer(root: &Path, base: i64) {
    let mut store = Store::open(root).unwrap();
    let mut g: u64 = 0;
    loop {
        g += 1;
        let mut tx = store.begin().unwrap();
        for obj in 0..OBJS {
            let mut payload = vec![0u8; 1024];
            payload[..8].copy_from_slice(&g.to_le_bytes());
            tx.put(&data(base + obj + 100, 1024), 2, &payload).unwrap();
        }
        tx.commit().unwrap();
        // A real writer waits for its input between transactions; without
        // any gap SQLite's polling busy handler can starve the other one.
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Reads the whole PFS as of its current sync point in small calls (each
/// its own snapshot) and returns the generations visible as of that TID.
fn read_generations(store: &mut Store) -> Vec<u64> {
    let end = store.get_pseudofs().unwrap().sync_end_tid;
    let mut gens = Vec::new();
    for call in read_calls(store, &mut MirrorReadReq::new(0, end), 32 * 1024) {
        for r in BatchIter::new(&call) {
            if let Some(Mrecord::Rec { leaf, data, .. }) = r.decode() {
                if leaf.base.rec_type == rectype::DATA
                    && leaf.base.delete_tid == 0
                    && leaf.base.obj_id < 100 + OBJS
                {
                    gens.push(u64::from_le_bytes(data[..8].try_into().unwrap()));
                }
            }
        }
    }
    gens
}

#[test]
fn readers_see_consistent_snapshots_while_a_process_writes() {
    if let Ok(root) = std::env::var(CHILD_ENV) {
        let base = std::env::var(BASE_ENV).map_or(0, |b| b.parse().unwrap());
        writer(Path::new(&root), base);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    drop(Store::create(&root).unwrap());
    let spawn = |base: i64| {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store_concurrency::readers_see_consistent_snapshots_while_a_process_writes",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &root)
            .env(BASE_ENV, base.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut children = [spawn(0), spawn(1_000_000)];
    let mut store = Store::open(&root).unwrap();
    let start = Instant::now();
    let (mut reads, mut max_gen, mut statuses) = (0, 0, 0);
    // At least four seconds, and on a loaded machine until enough happened.
    let enough = |reads: u32, max_gen: u64, statuses: u32| reads > 5 && max_gen > 2 && statuses > 0;
    while start.elapsed() < Duration::from_secs(4)
        || (!enough(reads, max_gen, statuses) && start.elapsed() < Duration::from_secs(120))
    {
        let gens = read_generations(&mut store);
        if !gens.is_empty() {
            assert_eq!(gens.len() as i64, OBJS, "partial transaction visible");
            assert!(gens.iter().all(|&g| g == gens[0]), "mixed generations");
            assert!(gens[0] >= max_gen, "went back in time");
            max_gen = gens[0];
        }
        reads += 1;
        if reads % 5 == 0 {
            let out = ok(&["pfs-status", root.to_str().unwrap()]);
            assert!(text(&out.stdout).contains("PFS#0 {"));
            statuses += 1;
        }
    }
    for c in &mut children {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    assert!(
        enough(reads, max_gen, statuses),
        "gen {max_gen}, {reads} reads, {statuses} pfs-status runs"
    );
    // Two processes never got the same TID: every TID holds the versions
    // of exactly one writer's transactions.
    let mut writer_of_tid = std::collections::HashMap::<u64, i64>::new();
    store
        .for_each_record(|l, _| {
            if l.base.rec_type == rectype::DATA {
                let w = l.base.obj_id / 1_000_000;
                let first = *writer_of_tid.entry(l.base.create_tid).or_insert(w);
                assert_eq!(first, w, "TID {:x} used by both writers", l.base.create_tid);
            }
        })
        .unwrap();
    let second = writer_of_tid.values().filter(|&&w| w == 1).count();
    assert!(second > 0 && second < writer_of_tid.len());
}

/// One tenant's batch that rewrites its slave's history (records created
/// at or below the sync point: held until SYNC) and then stalls before its
/// SYNC never holds another tenant's mirror-write into the same store
/// (before: the held batch kept the store's write lock, and the other
/// waited up to the 10-minute busy timeout). The stalled batch, cut off,
/// leaves its slave as it was.
#[test]
fn a_stalled_history_rewrite_never_holds_another_client() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let store = two_clients(dir.path());
    let path = |p: &str| store.join(p).display().to_string();
    let before = pfs_state(&store, 3);
    // B's slave (PFS#3): 40 records of 60 KB created at TID 2, below its
    // sync point, in a batch that never reaches its SYNC.
    let mut pfsd = open(&store, 3).get_pseudofs().unwrap();
    pfsd.sync_end_tid += 0x100;
    let head = Mrecord::Pfsd { version: 1, pfsd };
    let payload = vec![0x5au8; 60_000];
    let leaves: Vec<_> = (0..40)
        .map(|i| data_leaf(0x1_0000_9000 + i, 0x4000, 2, &payload))
        .collect();
    let mut recs = vec![head, head];
    recs.extend(leaves.iter().map(|&leaf| Mrecord::Rec {
        rtype: hammer_mirror::wire::mrec_type::REC,
        leaf,
        data: &payload,
    }));
    let mut stalled = hammer()
        .args(["-y", "mirror-write", &path("clientB/slave")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = stalled.stdin.take().unwrap();
    input.write_all(&stream(&recs)).unwrap();
    // Its stdin stays open: it waits for the rest, its calls made.
    std::thread::sleep(Duration::from_millis(500));

    // Client A copies its master to a new slave meanwhile.
    let copy = hammer()
        .args([
            "-y",
            "-i",
            "0",
            "mirror-copy",
            &path("clientA/pfs"),
            &path("clientA/slave"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let out = wait_output("client A's copy while B's batch stalls", 120, copy);
    assert!(out.status.success(), "{}", text(&out.stderr));
    eprintln!("client A's copy took {:?}", t0.elapsed());
    let a_id = link_id(&store.join("clientA/slave")).unwrap();
    assert_mirrored((&store, 1), (&store, a_id));

    // B's stream ends without its SYNC: nothing of it stays.
    drop(input);
    let out = stalled.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        pfs_state(&store, 3) == before,
        "the cut batch changed B's slave"
    );
}

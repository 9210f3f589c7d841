//! Crash safety: a child process writing into a store is killed with
//! SIGKILL at random points; the store must always open, pass
//! `PRAGMA integrity_check` and hold exactly the last committed state.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use hammer_mirror::ondisk::rectype;
use hammer_mirror::pfs::store::{RecordId, Store, DB_NAME};
use hammer_mirror::pfs::{MirrorWriteReq, Pfs};
use hammer_mirror::wire::Mrecord;

const CHILD_ENV: &str = "HAMMER_STORE_CRASH_CHILD";
const MIRROR_CHILD_ENV: &str = "HAMMER_STORE_CRASH_MIRROR_CHILD";
/// Records rewritten by every transaction.
const OBJS: i64 = 64;

/// The record each transaction of the child rewrites for object `obj`.
fn data_id(obj: i64) -> RecordId {
    data(obj, 4096)
}

/// The generation every live record of the store carries, checking they
/// all agree (a torn transaction would mix two).
fn generation(store: &Store) -> u64 {
    let mut gens = Vec::new();
    store
        .for_each_record(|l, d| {
            if l.base.rec_type == rectype::DATA && l.base.delete_tid == 0 {
                gens.push(u64::from_le_bytes(d[..8].try_into().unwrap()));
            }
        })
        .unwrap();
    if gens.is_empty() {
        return 0;
    }
    assert_eq!(gens.len() as i64, OBJS, "torn transaction");
    assert!(
        gens.iter().all(|&g| g == gens[0]),
        "mixed generations {gens:?}"
    );
    gens[0]
}

/// The child: rewrites every record with the next generation, forever,
/// printing each generation once committed.
fn child(root: &Path) {
    let mut store = Store::open(root).unwrap();
    store.set_pfs_id(0);
    let mut g = generation(&store);
    loop {
        g += 1;
        let mut tx = store.begin().unwrap();
        for obj in 0..OBJS {
            let mut data = vec![(g % 251) as u8; 4096];
            data[..8].copy_from_slice(&g.to_le_bytes());
            tx.put(&data_id(obj + 100), 2, &data).unwrap();
        }
        tx.commit().unwrap();
        println!("{g}");
    }
}

/// Runs `test` in a child process with `env` set to the store root, kills
/// it a pseudo-random delay after its first commit, and returns the last
/// number it printed.
fn run_and_kill(test: &str, env: &str, root: &Path, rng: &mut Rng) -> Option<u64> {
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &format!("store_crash::{test}"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reported = BufReader::new(c.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| l.trim().parse::<u64>().ok());
    // The delay counts from the child's first commit, not from its spawn:
    // on a loaded machine the start of the test binary alone outlasts a
    // delay from the spawn, and the kill then lands before any write.
    let first = reported.next();
    std::thread::sleep(Duration::from_millis(rng.below(20)));
    signal(&c, nix::sys::signal::Signal::SIGKILL);
    c.wait().unwrap();
    first.into_iter().chain(reported).max()
}

/// After a kill: the store holds `g` (generations or calls) where the
/// child reported up to `reported`. What it reported is kept (the one
/// being committed when the kill came may or may not be), and nothing
/// kept before is lost.
fn assert_kept(round: usize, g: u64, reported: Option<u64>, last: &mut u64) {
    if let Some(r) = reported {
        assert!(
            g == r || g == r + 1,
            "round {round}: store at {g}, child reported {r}"
        );
    }
    assert!(g >= *last, "round {round}: committed state lost");
    *last = g;
}

/// Opens the store after a kill and runs SQLite's own consistency check.
fn reopen_checked(root: &Path, round: usize) -> Store {
    let store = Store::open(root).unwrap();
    let conn = rusqlite::Connection::open(root.join(DB_NAME)).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "round {round}");
    store
}

#[test]
fn sigkill_at_random_points_loses_nothing_committed() {
    if let Ok(root) = std::env::var(CHILD_ENV) {
        child(Path::new(&root));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    drop(Store::create(&root).unwrap());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut last_tid = 0;
    let mut last_gen = 0;
    for round in 0..100 {
        let reported = run_and_kill(
            "sigkill_at_random_points_loses_nothing_committed",
            CHILD_ENV,
            &root,
            &mut rng,
        );
        let store = reopen_checked(&root, round);
        assert_kept(round, generation(&store), reported, &mut last_gen);
        let tid = store.flush_tid().unwrap();
        assert!(tid >= last_tid, "TIDs went back");
        last_tid = tid;
    }
    assert!(
        last_gen > 20,
        "the children hardly wrote ({last_gen} transactions)"
    );
}

/// Records one mirror_write call of the mirror child creates.
const PER_CALL: i64 = 64;

/// The mirror child: one MIRROR_WRITE call per generation into slave
/// PFS#1, each creating `PER_CALL` new 4 KiB records, printing each
/// generation once the call returned.
fn mirror_child(root: &Path) {
    let mut store = Store::open(root).unwrap();
    store.set_pfs_id(1);
    let mut g = mirror_generations(&store);
    let data = vec![0x5au8; 4096];
    loop {
        g += 1;
        let recs: Vec<Mrecord> = (0..PER_CALL)
            .map(|i| Mrecord::Rec {
                rtype: 1,
                leaf: data_leaf(g as i64 * 1000 + i, 4096, 0x1_0000_0000 + g, &data),
                data: &data,
            })
            .collect();
        let stream = stream(&recs);
        // tid_end 2: nothing this store holds is ever swept.
        let mut req = MirrorWriteReq::new(1, 2);
        assert_eq!(store.mirror_write(&mut req, &stream).unwrap(), stream.len());
        println!("{g}");
    }
}

/// The number of complete mirror_write calls PFS#1 holds, checking that
/// they are whole and contiguous.
fn mirror_generations(store: &Store) -> u64 {
    let mut per_gen = std::collections::BTreeMap::<i64, i64>::new();
    store
        .for_each_record(|l, _| {
            if l.base.rec_type == rectype::DATA {
                *per_gen.entry(l.base.obj_id / 1000).or_default() += 1;
            }
        })
        .unwrap();
    for (i, (g, n)) in per_gen.iter().enumerate() {
        assert_eq!((*g, *n), (i as i64 + 1, PER_CALL), "torn or missing call");
    }
    per_gen.len() as u64
}

#[test]
fn sigkill_during_mirror_write_keeps_whole_calls() {
    if let Ok(root) = std::env::var(MIRROR_CHILD_ENV) {
        mirror_child(Path::new(&root));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    new_pfs(&mut Store::create(&root).unwrap(), 1, true);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut last = 0;
    for round in 0..50 {
        let reported = run_and_kill(
            "sigkill_during_mirror_write_keeps_whole_calls",
            MIRROR_CHILD_ENV,
            &root,
            &mut rng,
        );
        let mut store = reopen_checked(&root, round);
        store.set_pfs_id(1);
        assert_kept(round, mirror_generations(&store), reported, &mut last);
    }
    assert!(last > 10, "the children hardly wrote ({last} calls)");
}

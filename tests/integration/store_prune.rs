//! Prune on the store under duress (spec: store-format.md §7): killed with
//! SIGKILL at random points it leaves a sound store holding a consistent
//! part of its work, and while it runs other writers keep getting the
//! write lock.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use hammer_mirror::ondisk::{BaseElm, LeafElm};
use hammer_mirror::pfs::store::{encode_key, Store, DB_NAME};
use hammer_mirror::pfs::{MirrorReadReq, Pfs, PruneReq};
use hammer_mirror::retention::{prune_until, PruneEnd};
use hammer_mirror::wire::reader::BatchIter;
use hammer_mirror::wire::Mrecord;

const CHILD_ENV: &str = "HAMMER_PRUNE_CRASH_CHILD";

/// `n` files written, then deleted: `2n` deleted records in PFS#1, starting
/// at object `first`.
fn deleted_files(root: &Path, first: i64, n: i64) {
    let mut s = open(root, 1);
    let mut t = s.begin().unwrap();
    for f in first..first + n {
        t.put(&inode(f), 2, &[f as u8; 128]).unwrap();
        t.put(&data(f, 0x4000), 2, &[f as u8; 100]).unwrap();
    }
    t.commit().unwrap();
    let mut t = s.begin().unwrap();
    for f in first..first + n {
        t.delete(&inode(f)).unwrap();
        t.delete(&data(f, 0x4000)).unwrap();
    }
    t.commit().unwrap();
}

fn rows(root: &Path) -> Vec<(LeafElm, Vec<u8>)> {
    let mut v = Vec::new();
    open(root, 1)
        .for_each_record(|l, d| v.push((*l, d.to_vec())))
        .unwrap();
    v
}

/// prune-everything of PFS#1 in transactions of `per_txn` records.
fn prune_all(root: &Path, per_txn: usize) -> PruneReq {
    let mut s = Store::open(root).unwrap();
    s.set_pfs_id(1);
    s.set_prune_bounds(per_txn, usize::MAX);
    let mut req = PruneReq::new(true, Vec::new());
    assert_eq!(
        prune_until(&mut s, &mut req, |_| true).unwrap(),
        PruneEnd::Finished
    );
    req
}

/// No MIRROR_READ from at or before `gone`'s last change SKIPs over it.
fn assert_not_skipped(root: &Path, gone: &BaseElm) {
    let mut key = *gone;
    key.localization &= 0xFFFF;
    let k = encode_key(&key);
    let mut s = open(root, 1);
    let mut req = MirrorReadReq::new(gone.create_tid.max(gone.delete_tid), u64::MAX - 1);
    for chunk in read_calls(&mut s, &mut req, 1 << 16) {
        for r in BatchIter::new(&chunk) {
            if let Some(Mrecord::Skip { mut beg, mut end }) = r.decode() {
                beg.localization &= 0xFFFF;
                end.localization &= 0xFFFF;
                assert!(
                    !(encode_key(&beg) <= k && k < encode_key(&end)),
                    "{gone:?} skipped"
                );
            }
        }
    }
}

#[test]
fn a_prune_killed_at_random_points_leaves_a_sound_store() {
    if let Ok(root) = std::env::var(CHILD_ENV) {
        prune_all(Path::new(&root), 16);
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = store_with_master(d.path(), "s");
    make_history(&root, 50, 3, 1000);
    let mut rng = Rng(0x5eed_0f9a);
    for round in 0..8 {
        deleted_files(&root, 0x10_000 + round * 4000, 2000);
        let before = rows(&root);
        let mut c = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store_prune::a_prune_killed_at_random_points_leaves_a_sound_store",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20 + rng.below(200)));
        signal(&c, nix::sys::signal::Signal::SIGKILL);
        c.wait().unwrap();
        let conn = rusqlite::Connection::open(root.join(DB_NAME)).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "round {round}");
        // What is left is what was there less some deleted records, each
        // unchanged.
        let after = rows(&root);
        let mut left = after.iter().peekable();
        let mut gone = Vec::new();
        for r in &before {
            if left.peek() == Some(&r) {
                left.next();
            } else {
                assert_ne!(r.0.base.delete_tid, 0, "round {round}: a live record went");
                gone.push(r.0.base);
            }
        }
        assert!(left.next().is_none(), "round {round}: a record changed");
        for g in gone.iter().step_by(gone.len() / 5 + 1) {
            assert_not_skipped(&root, g);
        }
    }
    // Finished by a prune that is not killed.
    prune_all(&root, 16);
    assert!(rows(&root).iter().all(|(l, _)| l.base.delete_tid == 0));
}

/// SQLite's write lock is not fair: without the prune's pauses between
/// its transactions a writer polling for the lock would wait for the whole
/// prune. With them, writes go in while it runs. (The writer here pauses
/// between its writes too, as mirror-write does while it reads its
/// stream: a writer that never lets go would hold off the prune the same
/// way.)
#[test]
fn writers_keep_working_while_a_prune_runs() {
    let d = tempfile::tempdir().unwrap();
    let root = store_with_master(d.path(), "s");
    deleted_files(&root, 0x10_000, 30_000);
    let total = rows(&root).len();
    let done = Arc::new(AtomicBool::new(false));
    let pruner = {
        let (root, done) = (root.clone(), done.clone());
        std::thread::spawn(move || {
            let began = Instant::now();
            prune_all(&root, 2048);
            done.store(true, Ordering::SeqCst);
            began.elapsed()
        })
    };
    // Wait for the prune's first transactions.
    let conn = rusqlite::Connection::open(root.join(DB_NAME)).unwrap();
    let count = || -> usize {
        conn.query_row("SELECT count(*) FROM rec WHERE pfs = 1", [], |r| r.get(0))
            .unwrap()
    };
    while count() == total && !done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut s = open(&root, 1);
    let (mut during, mut longest) = (0, Duration::ZERO);
    let mut f = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the prune never ends");
        std::thread::sleep(Duration::from_millis(5));
        let began = Instant::now();
        let mut t = s.begin().unwrap();
        t.put(&data(0x100 + f, 0x4000), 2, b"written during the prune")
            .unwrap();
        t.commit().unwrap();
        longest = longest.max(began.elapsed());
        during += usize::from(!done.load(Ordering::SeqCst));
        f += 1;
    }
    let took = pruner.join().unwrap();
    assert!(
        during >= 3,
        "{during} writes went in during a prune of {took:?} (longest wait {longest:?})"
    );
    assert!(
        longest < took,
        "a write waited {longest:?}, the prune took {took:?}"
    );
    assert!(rows(&root).iter().all(|(l, _)| l.base.delete_tid == 0));
}

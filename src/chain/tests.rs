//! The chain's logic against an in-memory object store (no server): runs
//! that overlap, fail half-way or meet a misbehaving store, each checked
//! by what a restore of the chain gives.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use object_store::{ObjectMeta, ObjectStore};

use super::client::Bucket;
use super::double::{Double, Faults, Gate, Shared};
use super::lock::{probe, Writer, LOCK};
use super::manifest::{Manifest, MANIFEST, OBJECT_LIMIT};
use super::prune::prune;
use super::push::{push, push_stream, Pushed};
use super::restore::{apply, dump_chain, verify_chain, Scratch};
use super::url::ChainUrl;
use super::{Chain, ChainError};
use crate::bridge::import::{import, ImportOptions};
use crate::commands::pfs::{pfs_create, PfsCreate};
use crate::mirror::read::ReadOptions;
use crate::mirror::write::WriteOptions;
use crate::patharg::PathArg;
use crate::pfs::getpfs;
use crate::pfs::store::Store;
use crate::pfs::Pfs;
use crate::retention::grid::{Grid, Retain, Unit};

/// A master PFS with a tree to import into it, and one in-memory bucket.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub master: PathArg,
    pub tree: PathBuf,
    pub shared: Arc<Shared>,
}

pub fn read_options() -> ReadOptions {
    ReadOptions {
        quiet: true,
        splitup: 1 << 30,
        ..ReadOptions::default()
    }
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        Store::create(&root).unwrap();
        let master = PathArg::from(root.join("master").into_os_string());
        pfs_create(&master, &PfsCreate::default(), &mut io::sink()).unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        Fixture {
            dir,
            master,
            tree,
            shared: Arc::new(Shared::default()),
        }
    }

    /// Generation `n` of the tree (a file of `bytes` random-ish bytes
    /// added), imported: the master's new sync point.
    pub fn generation(&self, n: u32, bytes: usize) -> u64 {
        let data = crate::rng::Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(n)).bytes(bytes);
        std::fs::write(self.tree.join(format!("f{n}")), data).unwrap();
        import(
            &self.tree,
            &self.master,
            ImportOptions::default(),
            &mut io::sink(),
        )
        .unwrap();
        self.sync_end(&self.master)
    }

    pub fn sync_end(&self, pfs: &PathArg) -> u64 {
        getpfs(pfs).unwrap().1.sync_end_tid
    }

    /// The chain at s3://bucket/c as one run sees it through `faults`.
    pub fn chain(&self, faults: Faults) -> Chain {
        self.chain_at("s3://bucket/c", faults)
    }

    pub fn chain_at(&self, url: &str, faults: Faults) -> Chain {
        let store = Arc::new(Double::new(&self.shared, faults));
        Chain {
            url: ChainUrl::parse(url.as_ref()).unwrap(),
            bucket: Bucket::over(store, "bucket").unwrap(),
        }
    }

    pub fn push(&self, chain: &Chain) -> Result<Option<Pushed>, ChainError> {
        push(&self.master, chain, &read_options(), None, &mut io::sink())
    }

    /// The manifest as stored.
    pub fn manifest(&self) -> Option<Manifest> {
        self.chain(Faults::default()).manifest().unwrap()
    }

    /// Every key under the chain's prefix but the manifest.
    pub fn stored(&self) -> Vec<String> {
        let chain = self.chain(Faults::default());
        let mut keys: Vec<String> = chain
            .bucket
            .list("c")
            .unwrap()
            .into_iter()
            .map(|l| l.key)
            .filter(|k| k.ends_with(".hammer") || k.ends_with(".hammer.zst"))
            .collect();
        keys.sort();
        keys
    }

    pub fn named(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .manifest()
            .map(|m| m.objects.iter().map(|o| format!("c/{}", o.name)).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// A new slave restored from the whole chain: its sync point.
    pub fn restore(&self, name: &str) -> Result<u64, ChainError> {
        let root = self.dir.path().join(name);
        Store::create(&root).unwrap();
        let slave = PathArg::from(root.join("slave").into_os_string());
        let wo = WriteOptions {
            yes: true,
            quiet: true,
            ..WriteOptions::default()
        };
        apply(
            &self.chain(Faults::default()),
            None,
            &slave,
            &wo,
            &mut io::sink(),
        )?;
        Ok(self.sync_end(&slave))
    }
}

/// s3-prune's `keep=<n>` alone.
fn keep(n: usize) -> Retain {
    Retain {
        keep: Some(n),
        ..Retain::default()
    }
}

/// The records of PFS#1 of the store at `root` visible as of `tid`: key
/// and payload.
fn live_as_of(root: &std::path::Path, tid: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut store = Store::open(root).unwrap();
    store.set_pfs_id(1);
    let mut out = Vec::new();
    store
        .for_each_record(|leaf, data| {
            let b = &leaf.base;
            if b.create_tid <= tid && (b.delete_tid == 0 || b.delete_tid > tid) {
                let key = (
                    b.localization & 0xFFFF,
                    b.obj_id,
                    b.key,
                    b.rec_type,
                    b.create_tid,
                );
                out.push((format!("{key:?}").into_bytes(), data.to_vec()));
            }
        })
        .unwrap();
    out
}

/// A grid prune keeps the newest point of each of the newest months and
/// merges the objects between them, the oldest run into a new base; every
/// kept point restores to the master's state then, and keeps its time.
#[test]
fn a_grid_prune_merges_the_runs_between_the_points_it_keeps() {
    std::env::set_var("TZ", "UTC");
    let f = Fixture::new();
    let chain = f.chain(Faults::default());
    let mut ends = Vec::new();
    for n in 0..6 {
        ends.push(f.generation(n, 3_000));
        f.push(&chain).unwrap();
    }
    // Stored on 2027-01-01 and -02, 02-10 and -11, 03-12 and -13.
    let jan1 = 1_798_761_600u64;
    let days = [0u64, 1, 40, 41, 70, 71];
    {
        let (w, m) = Writer::begin(&chain, "test").unwrap();
        let mut m = m.unwrap();
        for (o, d) in m.objects.iter_mut().zip(days) {
            o.time = Some(jan1 + d * 86_400);
        }
        w.publish(&m).unwrap();
    }
    let mut grid = Grid::default();
    grid.set(Unit::Monthly, 3);
    let retain = Retain { keep: None, grid };
    let scratch = f.dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let done = prune(
        &chain,
        &retain,
        &scratch,
        &read_options(),
        None,
        &mut io::sink(),
    )
    .unwrap();
    assert_eq!(done.len(), 3);
    assert!(done.iter().all(|d| d.removed.len() == 2));
    let m = f.manifest().unwrap();
    let points: Vec<u64> = m.spans().iter().map(|s| s.end).collect();
    assert_eq!(points, [ends[1], ends[3], ends[5]]);
    assert_eq!(m.spans()[0].beg, 0);
    let times: Vec<Option<u64>> = m.objects.iter().map(|o| o.time).collect();
    assert_eq!(times, [1, 41, 71].map(|d| Some(jan1 + d * 86_400)));
    assert_eq!(f.stored(), f.named());
    let master_root = f.dir.path().join("store");
    for (i, &end) in points.iter().enumerate() {
        let root = f.dir.path().join(format!("r{i}"));
        Store::create(&root).unwrap();
        let slave = PathArg::from(root.join("slave").into_os_string());
        let wo = WriteOptions {
            yes: true,
            quiet: true,
            ..WriteOptions::default()
        };
        apply(&chain, Some(end), &slave, &wo, &mut io::sink()).unwrap();
        assert_eq!(f.sync_end(&slave), end);
        assert!(
            live_as_of(&root, end) == live_as_of(&master_root, end),
            "point {i} restores to another state"
        );
    }
    // Nothing left to merge: the same grid does nothing.
    let again = prune(
        &chain,
        &retain,
        &scratch,
        &read_options(),
        None,
        &mut io::sink(),
    )
    .unwrap();
    assert!(again.is_empty());
}

#[test]
fn a_chain_in_memory_restores_to_the_master() {
    let f = Fixture::new();
    let chain = f.chain(Faults::default());
    f.generation(0, 1000);
    assert!(f.push(&chain).unwrap().is_some());
    let end = f.generation(1, 1000);
    let p = f.push(&chain).unwrap().unwrap();
    assert_eq!(p.span.end, end);
    assert!(f.push(&chain).unwrap().is_none());
    assert_eq!(f.stored(), f.named());
    assert_eq!(f.restore("r").unwrap(), end);
    assert!(f.manifest().is_some_and(|m| m.objects.len() == 2));
    assert!(chain
        .bucket
        .get_small(&chain.key(MANIFEST), 1 << 20)
        .unwrap()
        .is_some());
}

/// mirror-stream's "Stored ..." line goes to the writer it was given
/// (before, straight to the process's stderr, past the caller's writer).
#[test]
fn mirror_stream_tells_what_it_stored_on_the_writer_it_was_given() {
    let f = Fixture::new();
    let chain = f.chain(Faults::default());
    let end = f.generation(0, 1000);
    let o = ReadOptions {
        quiet: false,
        // One run, then the time is up.
        timeout: Some(std::time::Duration::from_millis(1)),
        ..read_options()
    };
    let mut said = Vec::new();
    push_stream(&f.master, &chain, &o, None, &mut said).unwrap();
    let said = String::from_utf8(said).unwrap();
    let want = format!(
        "Stored {} 0x0000000000000000 to {end:#018x} as s3://bucket/c/",
        f.master
    );
    assert!(said.lines().any(|l| l.starts_with(&want)), "{said}");
}

#[test]
fn an_object_larger_than_a_part_goes_up_in_parts() {
    let f = Fixture::new();
    let store = Arc::new(Double::new(&f.shared, Faults::default()));
    let chain = Chain {
        url: ChainUrl::parse("s3://bucket/c".as_ref()).unwrap(),
        bucket: Bucket::over(store, "bucket").unwrap().with_part_size(4096),
    };
    let end = f.generation(0, 40_000);
    f.push(&chain).unwrap();
    assert_eq!(f.shared.uploads_started.load(Ordering::Relaxed), 1);
    assert!(f.shared.open_uploads.lock().unwrap().is_empty());
    assert_eq!(f.restore("r").unwrap(), end);
}

/// The chain of `good` with `size` recorded for its second object.
fn with_second_size(f: &Fixture, good: &Manifest, size: u64) {
    let chain = f.chain(Faults::default());
    let mut m = good.clone();
    m.objects[1].size = size;
    let json = serde_json::to_vec(&m).unwrap();
    chain.bucket.put_small(&chain.key(MANIFEST), json).unwrap();
}

/// Whether every way of reading the chain refuses it: verify finds
/// damage, and neither a restore nor a dump goes through.
fn refused_everywhere(f: &Fixture, case: &str, first_end: u64) -> Result<(), String> {
    let chain = f.chain(Faults::default());
    match verify_chain(&chain, &mut io::sink()) {
        Ok(r) if r.problems == 0 => return Err(format!("{case}: verify says ok")),
        _ => {}
    }
    let mut out = Vec::new();
    if dump_chain(&chain, None, false, &mut out, &mut io::sink()).is_ok() {
        return Err(format!("{case}: mirror-dump went through"));
    }
    let root = f.dir.path().join(format!("r{case}"));
    Store::create(&root).unwrap();
    let slave = PathArg::from(root.join("slave").into_os_string());
    let wo = WriteOptions {
        yes: true,
        quiet: true,
        ..WriteOptions::default()
    };
    if apply(&chain, None, &slave, &wo, &mut io::sink()).is_ok() {
        return Err(format!("{case}: the restore went through"));
    }
    // A manifest refused whole makes no slave.
    let at = getpfs(&slave).map_or(0, |(_, p)| p.sync_end_tid);
    if at > first_end {
        return Err(format!(
            "{case}: the slave moved to {at:#x}, past the sound object"
        ));
    }
    Ok(())
}

#[test]
fn a_size_the_object_does_not_have_is_damage_wherever_it_is_read() {
    let f = Fixture::new();
    let chain = f.chain(Faults::default());
    let first = f.generation(0, 5000);
    f.push(&chain).unwrap();
    f.generation(1, 200_000);
    f.push(&chain).unwrap();
    let good = chain.existing().unwrap();
    let real = good.objects[1].size;
    // More than the 64 KiB held back: the reader meets TERM first.
    for size in [real + 70_000, real + 1, real - 1, 1 << 63, u64::MAX, 0] {
        with_second_size(&f, &good, size);
        refused_everywhere(&f, &size.to_string(), first).unwrap();
    }
    with_second_size(&f, &good, real);
    assert_eq!(verify_chain(&chain, &mut io::sink()).unwrap().problems, 0);
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 32,
        ..Default::default()
    });
    let sizes = proptest::prop_oneof![0..real, real + 1..real + (1 << 20), real + 1..=u64::MAX,];
    runner
        .run(&sizes, |size| {
            with_second_size(&f, &good, size);
            refused_everywhere(&f, &size.to_string(), first)
                .map_err(proptest::test_runner::TestCaseError::fail)
        })
        .unwrap();
}

#[test]
fn sizes_past_any_object_are_refused_and_totals_do_not_wrap() {
    let f = Fixture::new();
    let chain = f.chain(Faults::default());
    f.generation(0, 100);
    f.push(&chain).unwrap();
    f.generation(1, 100);
    f.push(&chain).unwrap();
    let mut m = chain.existing().unwrap();
    m.objects[0].size = u64::MAX;
    m.objects[1].size = 2;
    assert!(Manifest::parse(&serde_json::to_vec(&m).unwrap()).is_err());
    m.objects[0].size = OBJECT_LIMIT;
    assert!(Manifest::parse(&serde_json::to_vec(&m).unwrap()).is_ok());
}

/// What a run in another thread ended with.
type Outcome = Arc<Mutex<Option<Result<Option<Pushed>, String>>>>;

/// Run B uploads its object and is held before its manifest; meanwhile
/// the master moves on and run A starts, and B is let go as soon as A
/// deletes anything. Whatever each run says, the chain must stay
/// restorable: its manifest names no missing object.
fn two_runs_overlap(ignore_conditions: bool) {
    let f = Arc::new(Fixture::new());
    f.generation(0, 3000);
    let gate = Arc::new(Gate::default());
    let b_chain = f.chain(Faults {
        ignore_conditions,
        hold: Some((".hammer".into(), gate.clone())),
        ..Faults::default()
    });
    let b_out: Outcome = Arc::default();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let b = {
        let (f, b_out) = (f.clone(), b_out.clone());
        std::thread::spawn(move || {
            let r = f.push(&b_chain).map_err(|e| e.to_string());
            *b_out.lock().unwrap() = Some(r);
            let _ = done_tx.send(());
        })
    };
    gate.wait_reached();
    let end = f.generation(1, 3000);
    let a_chain = f.chain(Faults {
        ignore_conditions,
        on_delete: Some(Box::new({
            let gate = gate.clone();
            move || {
                gate.open();
                let _ = done_rx.recv();
            }
        })),
        ..Faults::default()
    });
    let a = f.push(&a_chain).map_err(|e| e.to_string());
    gate.open();
    b.join().unwrap();
    let b = b_out.lock().unwrap().take().unwrap();
    let named = f.named();
    let stored = f.stored();
    assert!(
        named.iter().all(|n| stored.contains(n)),
        "the manifest names a deleted object: {named:?}, stored {stored:?} (A: {a:?}, B: {b:?})"
    );
    let lost: Vec<&String> = [&a, &b]
        .into_iter()
        .filter_map(|r| r.as_ref().err())
        .collect();
    assert_eq!(lost.len(), 1, "A: {a:?}, B: {b:?}");
    assert!(
        lost[0].contains("another run is writing this chain"),
        "{lost:?}"
    );
    // The next run brings the chain to the master's end.
    f.push(&f.chain(Faults::default())).unwrap();
    assert_eq!(f.stored(), f.named());
    assert_eq!(f.restore("r").unwrap(), end);
}

#[test]
fn overlapping_runs_leave_a_restorable_chain_with_conditional_writes() {
    two_runs_overlap(false);
}

#[test]
fn overlapping_runs_leave_a_restorable_chain_without_conditional_writes() {
    two_runs_overlap(true);
}

#[test]
fn conditional_writes_are_found_out() {
    let f = Fixture::new();
    let chain = f.chain(Faults::default());
    assert!(probe(&chain.bucket, "c/lock.probe").unwrap().conditional);
    let chain = f.chain(Faults {
        ignore_conditions: true,
        ..Faults::default()
    });
    assert!(!probe(&chain.bucket, "c/lock.probe").unwrap().conditional);
}

#[test]
fn a_refused_manifest_write_loses_cleanly_and_the_next_run_converges() {
    let f = Fixture::new();
    f.generation(0, 500);
    f.push(&f.chain(Faults::default())).unwrap();
    let before = f.manifest();
    let end = f.generation(1, 500);
    let refused = f.chain(Faults {
        refuse_conditional: Some(MANIFEST.into()),
        ..Faults::default()
    });
    let e = f.push(&refused).unwrap_err();
    assert!(e.busy(), "{e}");
    assert!(
        e.to_string().contains("another run is writing this chain"),
        "{e}"
    );
    assert_eq!(f.manifest(), before);
    f.push(&f.chain(Faults::default())).unwrap();
    assert_eq!(f.stored(), f.named());
    assert_eq!(f.restore("r").unwrap(), end);
}

#[test]
fn a_put_stored_whose_answer_was_lost_is_built_on() {
    // The object's PUT, then the manifest's: stored, answered with an error.
    for (lost, named) in [(".hammer", 0), (MANIFEST, 1)] {
        let f = Fixture::new();
        f.generation(0, 500);
        let lossy = f.chain(Faults {
            lose_answer: Some(lost.into()),
            ..Faults::default()
        });
        assert!(f.push(&lossy).is_err(), "{lost}");
        assert_eq!(f.manifest().map_or(0, |m| m.objects.len()), named, "{lost}");
        let end = f.generation(1, 500);
        f.push(&f.chain(Faults::default())).unwrap();
        assert_eq!(f.stored(), f.named(), "{lost}");
        assert_eq!(f.restore("r").unwrap(), end, "{lost}");
    }
}

#[test]
fn a_lagging_listing_never_costs_a_named_object() {
    let f = Fixture::new();
    f.generation(0, 500);
    f.push(&f.chain(Faults::default())).unwrap();
    // Listings as of now: the next object is never seen in them.
    let old = f.shared.mem.list(None).collect::<Vec<_>>();
    let old: Vec<ObjectMeta> = futures::executor::block_on(old)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let lagging = f.chain(Faults {
        lagging: Some(old),
        ..Faults::default()
    });
    f.generation(1, 500);
    f.push(&lagging).unwrap();
    let end = f.generation(2, 500);
    f.push(&lagging).unwrap();
    assert_eq!(f.stored(), f.named());
    assert_eq!(f.restore("r").unwrap(), end);
}

/// A lease as another run wrote it.
fn plant_lease(f: &Fixture, holder: serde_json::Value) {
    let chain = f.chain(Faults::default());
    let bytes = serde_json::to_vec(&holder).unwrap();
    chain.bucket.put_small(&chain.key(LOCK), bytes).unwrap();
}

#[test]
fn a_lease_is_taken_over_only_from_a_run_that_is_gone() {
    let f = Fixture::new();
    f.generation(0, 500);
    let machine = |chain: &Chain| {
        // This run's own lease shows what this host writes.
        let w = Writer::begin(chain, "test").unwrap();
        let got = chain.bucket.get_small(&chain.key(LOCK), 1 << 16).unwrap();
        drop(w);
        serde_json::from_slice::<serde_json::Value>(&got.unwrap()).unwrap()["machine"].clone()
    };
    let here = machine(&f.chain(Faults::default()));
    // Elsewhere, renewed just now: held.
    plant_lease(
        &f,
        serde_json::json!({"run": "r1", "command": "mirror-copy", "host": "far",
                           "machine": "other", "pid": 1}),
    );
    let e = f.push(&f.chain(Faults::default())).unwrap_err();
    assert!(
        e.to_string()
            .contains("mirror-copy on far (pid 1) holds its lease"),
        "{e}"
    );
    // On this host, by this process, but by no run still going: gone.
    plant_lease(
        &f,
        serde_json::json!({"run": "r2", "command": "mirror-copy", "host": "here",
                           "machine": here, "pid": std::process::id()}),
    );
    f.push(&f.chain(Faults::default())).unwrap();
    // The lease is given back at the end of a run.
    let chain = f.chain(Faults::default());
    assert_eq!(
        chain.bucket.get_small(&chain.key(LOCK), 1 << 16).unwrap(),
        None
    );
}

#[test]
fn a_prune_killed_during_its_upload_leaves_it_to_the_next_run_to_abort() {
    let f = Fixture::new();
    for n in 0..3 {
        f.generation(n, 20_000);
        f.push(&f.chain(Faults::default())).unwrap();
    }
    // The network goes after the new base's first part.
    let store = Arc::new(Double::new(
        &f.shared,
        Faults {
            parts_left: Some(1),
            ..Faults::default()
        },
    ));
    let dying = Chain {
        url: ChainUrl::parse("s3://bucket/c".as_ref()).unwrap(),
        bucket: Bucket::over(store, "bucket").unwrap().with_part_size(4096),
    };
    let scratch = f.dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let r = prune(
        &dying,
        &keep(0),
        &scratch,
        &read_options(),
        None,
        &mut io::sink(),
    );
    assert!(r.is_err());
    assert_eq!(f.shared.open_uploads.lock().unwrap().len(), 1);
    let end = f.generation(3, 100);
    let mut said = Vec::new();
    push(
        &f.master,
        &f.chain(Faults::default()),
        &read_options(),
        None,
        &mut said,
    )
    .unwrap();
    assert!(String::from_utf8_lossy(&said).contains("aborted an unfinished upload"));
    assert!(f.shared.open_uploads.lock().unwrap().is_empty());
    assert_eq!(f.stored(), f.named());
    assert_eq!(f.restore("r").unwrap(), end);
}

#[test]
fn a_temporary_store_left_by_a_killed_process_is_removed_by_the_next() {
    let f = Fixture::new();
    f.generation(0, 100);
    f.push(&f.chain(Faults::default())).unwrap();
    let m = f.manifest().unwrap();
    let place = f.dir.path().join("cache");
    std::fs::create_dir(&place).unwrap();
    let first = Scratch::new(&place, &m).unwrap();
    let mine = std::fs::read_dir(&place)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let mine = mine.to_str().unwrap().to_string();
    // The same name with the pid of a process that has ended.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let pid = std::process::id().to_string();
    let left = place.join(mine.replacen(&pid, &dead.to_string(), 1));
    std::fs::create_dir_all(left.join("store")).unwrap();
    let second = Scratch::new(&place, &m).unwrap();
    assert!(!left.exists(), "the killed process's store is still there");
    assert!(
        place.join(&mine).exists(),
        "a live process's store was removed"
    );
    drop((first, second));
    assert_eq!(std::fs::read_dir(&place).unwrap().count(), 0);
    // A prune with nothing to merge removes them too.
    std::fs::create_dir_all(left.join("store")).unwrap();
    let chain = f.chain(Faults::default());
    let none = prune(
        &chain,
        &keep(5),
        &place,
        &read_options(),
        None,
        &mut io::sink(),
    );
    assert!(none.unwrap().is_empty());
    assert!(!left.exists(), "a prune with nothing to merge left it");
}

#[test]
fn a_prefix_is_stored_as_typed_and_its_objects_are_found_again() {
    let f = Fixture::new();
    let prefix = "wé/~#%[x]?*^\"|";
    let chain = f.chain_at(&format!("s3://bucket/{prefix}"), Faults::default());
    f.generation(0, 100);
    f.push(&chain).unwrap();
    f.generation(1, 100);
    let mut said = Vec::new();
    push(&f.master, &chain, &read_options(), None, &mut said).unwrap();
    assert_eq!(String::from_utf8_lossy(&said), "");
    let listed = futures::executor::block_on(f.shared.mem.list(None).collect::<Vec<_>>());
    let keys: Vec<String> = listed
        .into_iter()
        .map(|m| m.unwrap().location.to_string())
        .collect();
    assert!(
        keys.contains(&format!("{prefix}/manifest.json")),
        "{keys:?}"
    );
    let objects = keys.iter().filter(|k| k.ends_with(".hammer")).count();
    assert_eq!(objects, 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with(prefix)), "{keys:?}");
    // What a killed run left there is found and removed.
    let uuid = chain.existing().unwrap().shared_uuid;
    let left = format!("{prefix}/{uuid}/0000000000000000-00000000000000ff.hammer");
    chain.bucket.put_small(&left, b"x".to_vec()).unwrap();
    let mut said = Vec::new();
    push(&f.master, &chain, &read_options(), None, &mut said).unwrap();
    assert!(String::from_utf8_lossy(&said).contains("removed"));
    assert_eq!(chain.bucket.get_small(&left, 10).unwrap(), None);
}

#[test]
fn a_request_held_past_its_deadline_gives_up() {
    let f = Fixture::new();
    let chain = f.chain(Faults {
        slow: Some(std::time::Duration::from_secs(60)),
        ..Faults::default()
    });
    let bucket = chain.bucket.within(std::time::Duration::from_millis(300));
    let t0 = std::time::Instant::now();
    let e = bucket.put_small("c/held", b"x".to_vec()).unwrap_err();
    assert!(e.transient(), "{e}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn verify_reports_every_missing_object_not_only_the_first() {
    let f = Fixture::new();
    let chain = f.chain(Faults::default());
    for n in 0..3 {
        f.generation(n, 100);
        f.push(&chain).unwrap();
    }
    let m = chain.existing().unwrap();
    for o in [&m.objects[0], &m.objects[2]] {
        chain.bucket.delete(&chain.key(&o.name)).unwrap();
    }
    let mut out = Vec::new();
    let report = verify_chain(&chain, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(report.problems, 2, "{out}");
    assert_eq!(out.matches(": MISSING: ").count(), 2, "{out}");
    assert_eq!(out.matches(": ok, ").count(), 1, "{out}");
}

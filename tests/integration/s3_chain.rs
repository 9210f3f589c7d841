//! Stream chains in object storage against a real Garage cluster (the one
//! `.ci/run` starts; `HAMMER_TEST_GARAGE` names it): a full copy and
//! increments up, restores at every point equal to the master as of it,
//! uploads killed anywhere, a node stopped during a run, prune, and each
//! failure named with the chain left as it was.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::*;
use hammer_mirror::chain::lock::probe;

fn run_in(mut c: Command, args: &[&str]) -> Output {
    c.args(args).stdin(Stdio::null()).output().unwrap()
}

/// hammer started in the background against the cluster, its stderr
/// kept for `wait_with_output` (the caller may kill it first).
fn s3_spawn(g: &Garage, args: &[&str]) -> std::process::Child {
    let mut c = g.hammer();
    c.args(args).stdin(Stdio::null()).stderr(Stdio::piped());
    c.spawn().unwrap()
}

fn s3_ok(g: &Garage, args: &[&str]) -> Output {
    let out = run_in(g.hammer(), args);
    assert!(
        out.status.success(),
        "hammer {args:?}: {}",
        text(&out.stderr)
    );
    out
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The chain's manifest, as stored.
fn manifest(g: &Garage, bucket: &str, prefix: &str) -> Option<serde_json::Value> {
    let bytes = g
        .client(bucket)
        .get_small(&format!("{prefix}/manifest.json"), 1 << 24)
        .unwrap()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

fn points(m: &serde_json::Value) -> Vec<String> {
    m["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["end_tid"].as_str().unwrap().to_string())
        .collect()
}

/// Every stream object's key under the prefix (not the manifest, the
/// lease or the probe of conditional writes).
fn stored(g: &Garage, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = g
        .client(bucket)
        .list(prefix)
        .unwrap()
        .into_iter()
        .map(|l| l.key)
        .filter(|k| k.ends_with(".hammer") || k.ends_with(".hammer.zst"))
        .collect();
    keys.sort();
    keys
}

fn named(m: &serde_json::Value, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = m["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{prefix}/{}", o["name"].as_str().unwrap()))
        .collect();
    v.sort();
    v
}

/// A master whose tree changes by generation: files added, changed and
/// removed, one of them large enough for a multipart upload when `big`.
struct Source {
    root: PathBuf,
    master: PathBuf,
    tree: PathBuf,
}

impl Source {
    fn new(dir: &Path, big: usize) -> Self {
        let root = store_with_master(dir, "src");
        let tree = dir.join("tree");
        fs::create_dir_all(tree.join("d/e")).unwrap();
        let mut rng = Rng(7);
        let data: Vec<u8> = (0..big).map(|_| rng.next() as u8).collect();
        fs::write(tree.join("big"), data).unwrap();
        Source {
            master: root.join("master"),
            root,
            tree,
        }
    }

    /// Generation `n` of the tree, imported; its TID.
    fn generation(&self, n: u32) -> u64 {
        fs::write(self.tree.join(format!("new{n}")), format!("added in {n}\n")).unwrap();
        fs::write(self.tree.join("d/e/changing"), format!("version {n}\n")).unwrap();
        if n > 0 {
            let _ = fs::remove_file(self.tree.join(format!("new{}", n - 1)));
        }
        import(&self.tree, &self.master)
    }
}

fn tid_of(t: &str) -> u64 {
    u64::from_str_radix(t.trim_start_matches("0x"), 16).unwrap()
}

/// The restore at `point` equals the master as of it: record by record,
/// by mirror-verify, and file by file.
fn assert_restores(g: &Garage, dir: &Path, src: &Source, url: &str, point: &str) {
    let tid = tid_of(point);
    let rstore = new_store(dir, &format!("r{point}"));
    let slave = rstore.join("slave");
    s3_ok(
        g,
        &["-y", "mirror-copy", &format!("{url}@@{point}"), p(&slave)],
    );
    assert_eq!(sync_end(&rstore, 1), tid);
    assert!(
        as_of(&src.root, 1, tid) == as_of(&rstore, 1, tid),
        "records as of {point}"
    );
    let v = ok(&["mirror-verify", p(&src.master), p(&slave)]);
    assert_eq!(text(&v.stdout).trim(), format!("identical as of {point}"));
    let from_chain = dir.join(format!("chain{point}"));
    let from_master = dir.join(format!("master{point}"));
    s3_ok(g, &["export", &format!("{url}@@{point}"), p(&from_chain)]);
    ok(&[
        "export",
        &format!("{}@@{point}", p(&src.master)),
        p(&from_master),
    ]);
    let diff = Command::new("diff")
        .args(["-r", p(&from_chain), p(&from_master)])
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "exports differ: {}",
        text(&diff.stdout)
    );
    // One file of the restore point, alone (cli.md §17).
    let part = dir.join(format!("part{point}"));
    s3_ok(
        g,
        &[
            "export",
            &format!("{url}@@{point}"),
            p(&part),
            "d/e/changing",
        ],
    );
    assert_eq!(
        fs::read(part.join("d/e/changing")).unwrap(),
        fs::read(from_master.join("d/e/changing")).unwrap()
    );
    assert_eq!(
        fs::read_dir(&part).unwrap().count(),
        1,
        "only d/ in {point}"
    );
    // Nothing of the temporary store is left beside the export.
    assert!(fs::read_dir(dir).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".hammer-chain")));
}

#[test]
#[ignore = "needs the Garage cluster .ci/run starts (HAMMER_TEST_GARAGE): cargo test -- --include-ignored"]
fn a_full_copy_and_three_increments_restore_at_every_point() {
    full_copy_and_increments(garage());
}

#[test]
#[ignore = "needs the s3s-fs server .ci/run starts (HAMMER_TEST_S3S): cargo test -- --include-ignored"]
fn a_full_copy_and_three_increments_restore_at_every_point_on_s3s_fs() {
    full_copy_and_increments(s3s());
}

fn full_copy_and_increments(g: Garage) {
    let dir = tempfile::tempdir().unwrap();
    let src = Source::new(dir.path(), 12 << 20);
    let bucket = g.bucket("full");
    let url = format!("s3://{bucket}/site/a");
    for n in 0..4 {
        src.generation(n);
        let out = s3_ok(&g, &["mirror-copy", p(&src.master), &url]);
        assert_stderr_has(&out, "Stored ");
    }
    let again = s3_ok(&g, &["mirror-copy", p(&src.master), &url]);
    assert_stderr_has(&again, "up to date");
    let m = manifest(&g, &bucket, "site/a").unwrap();
    let points = points(&m);
    assert_eq!(points.len(), 4);
    assert_eq!(stored(&g, &bucket, "site/a"), named(&m, "site/a"));
    for point in &points {
        assert_restores(&g, dir.path(), &src, &url, point);
    }
    // One slave brought forward object by object ends where the chain does.
    let rstore = new_store(dir.path(), "stepwise");
    for point in &points {
        let out = s3_ok(
            &g,
            &[
                "-y",
                "mirror-copy",
                &format!("{url}@@{point}"),
                p(&rstore.join("s")),
            ],
        );
        assert_stderr_has(&out, &format!("Applied 1 object(s) of {url}"));
    }
    let checked = s3_ok(&g, &["verify", &url]);
    let out = text(&checked.stdout);
    assert_eq!(out.matches(": ok, ").count(), 4, "{out}");
    assert!(out.trim_end().ends_with(": ok"), "{out}");
    let dump = s3_ok(&g, &["mirror-dump", &format!("{url}@@{}", points[0])]);
    assert!(text(&dump.stdout).contains("Record lo="));
    // A point that is not one of the chain's.
    let off = format!("{url}@@{:#018x}", tid_of(&points[1]) - 1);
    let out = run_in(g.hammer(), &["export", &off, p(&dir.path().join("x"))]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_has(&out, "no restore point at");
    assert_stderr_has(&out, &points[1]);
    // By date (cli.md §16): far ahead, the newest point, told first;
    // before the chain, refused naming its first point.
    let newest = dir.path().join("newest");
    let out = s3_ok(&g, &["export", &format!("{url}@@9999-12-31"), p(&newest)]);
    assert_stderr_has(
        &out,
        &format!(
            "hammer: {url}@@9999-12-31 is {}: the object stored at ",
            points[3]
        ),
    );
    assert_eq!(
        fs::read(newest.join("d/e/changing")).unwrap(),
        b"version 3\n"
    );
    let early = dir.path().join("early");
    let out = run_in(
        g.hammer(),
        &["export", &format!("{url}@@2001-01-01"), p(&early)],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_has(
        &out,
        &format!("{url}@@2001-01-01 is before the first point"),
    );
    assert_stderr_has(&out, &format!("({})", points[0]));
    assert!(!early.exists());
    let out = run_in(
        g.hammer(),
        &["mirror-copy", p(&src.master), &format!("{url}@@2001-01-01")],
    );
    assert_stderr_has(&out, "no @@<tid> or @@<date> on the target");
}

#[test]
#[ignore = "needs the Garage cluster .ci/run starts (HAMMER_TEST_GARAGE): cargo test -- --include-ignored"]
fn an_upload_killed_anywhere_leaves_the_chain_valid_and_the_next_run_converges() {
    let g = garage();
    let dir = tempfile::tempdir().unwrap();
    let src = Source::new(dir.path(), 20 << 20);
    let bucket = g.bucket("killed");
    let url = format!("s3://{bucket}/k");
    let mut rng = Rng(17);
    for n in 0..20 {
        src.generation(n);
        let before = manifest(&g, &bucket, "k");
        let mut child = s3_spawn(&g, &["-q", "mirror-copy", p(&src.master), &url]);
        std::thread::sleep(Duration::from_millis(rng.next() % 1500));
        let _ = child.kill();
        let status = child.wait().unwrap();
        let after = manifest(&g, &bucket, "k");
        if let Some(m) = &after {
            // Whatever the manifest names is whole.
            let out = s3_ok(&g, &["verify", &url]);
            assert!(text(&out.stdout).trim_end().ends_with(": ok"));
            let before_points = before.as_ref().map(points).unwrap_or_default();
            let now = points(m);
            assert!(
                now.starts_with(&before_points),
                "round {n}: the chain lost points ({status})"
            );
        }
    }
    s3_ok(&g, &["-q", "mirror-copy", p(&src.master), &url]);
    let m = manifest(&g, &bucket, "k").unwrap();
    assert!(m.get("pending").is_none(), "an upload left pending: {m}");
    assert_eq!(
        stored(&g, &bucket, "k"),
        named(&m, "k"),
        "objects no manifest names"
    );
    let rstore = new_store(dir.path(), "r");
    s3_ok(&g, &["-y", "-q", "mirror-copy", &url, p(&rstore.join("s"))]);
    let v = ok(&["mirror-verify", p(&src.master), p(&rstore.join("s"))]);
    assert!(text(&v.stdout).starts_with("identical as of"));
    assert_eq!(sync_end(&rstore, 1), sync_end(&src.root, 1));
}

#[test]
#[ignore = "needs the Garage cluster .ci/run starts (HAMMER_TEST_GARAGE): cargo test -- --include-ignored"]
fn a_node_stopped_during_a_run_and_a_later_run_converges() {
    let g = garage();
    let dir = tempfile::tempdir().unwrap();
    let src = Source::new(dir.path(), 30 << 20);
    let bucket = g.bucket("node");
    let url = format!("s3://{bucket}/n");
    src.generation(0);
    struct Restart<'a>(&'a Garage);
    impl Drop for Restart<'_> {
        fn drop(&mut self) {
            self.0.start_node(3);
        }
    }
    let child = s3_spawn(&g, &["-q", "mirror-copy", p(&src.master), &url]);
    std::thread::sleep(Duration::from_millis(300));
    let restart = Restart(&g);
    g.stop_node(3);
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        // A clean failure: the target's status and a message.
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        assert!(text(&out.stderr).starts_with("hammer: "));
    }
    src.generation(1);
    // Two of three nodes hold a quorum: runs go on with one down.
    s3_ok(&g, &["-q", "mirror-copy", p(&src.master), &url]);
    drop(restart);
    src.generation(2);
    s3_ok(&g, &["-q", "mirror-copy", p(&src.master), &url]);
    let rstore = new_store(dir.path(), "r");
    s3_ok(&g, &["-y", "-q", "mirror-copy", &url, p(&rstore.join("s"))]);
    assert_eq!(sync_end(&rstore, 1), sync_end(&src.root, 1));
    let v = ok(&["mirror-verify", p(&src.master), p(&rstore.join("s"))]);
    assert!(text(&v.stdout).starts_with("identical as of"));
}

#[test]
#[ignore = "needs the Garage cluster .ci/run starts (HAMMER_TEST_GARAGE): cargo test -- --include-ignored"]
fn prune_merges_the_oldest_objects_and_keeps_the_newest() {
    let g = garage();
    let dir = tempfile::tempdir().unwrap();
    let src = Source::new(dir.path(), 1 << 20);
    let bucket = g.bucket("prune");
    let url = format!("s3://{bucket}/p");
    for n in 0..5 {
        src.generation(n);
        s3_ok(&g, &["-q", "mirror-copy", p(&src.master), &url]);
    }
    let old = points(&manifest(&g, &bucket, "p").unwrap());
    let out = s3_ok(&g, &["s3-prune", &url, "keep=2"]);
    assert_stderr_has(&out, "merged 3 objects into ");
    let m = manifest(&g, &bucket, "p").unwrap();
    assert_eq!(points(&m), old[2..].to_vec());
    assert_eq!(stored(&g, &bucket, "p"), named(&m, "p"));
    for point in &old[2..] {
        assert_restores(&g, dir.path(), &src, &url, point);
    }
    let gone = run_in(
        g.hammer(),
        &[
            "-y",
            "mirror-copy",
            &format!("{url}@@{}", old[0]),
            p(&dir.path().join("r/x")),
        ],
    );
    assert_eq!(gone.status.code(), Some(2));
    assert_stderr_has(&gone, "no restore point at");
    let none = s3_ok(&g, &["s3-prune", &url, "keep=2"]);
    assert_stderr_has(&none, "nothing to prune");
    // The chain goes on after a prune.
    src.generation(5);
    s3_ok(&g, &["-q", "mirror-copy", p(&src.master), &url]);
    let last = points(&manifest(&g, &bucket, "p").unwrap()).pop().unwrap();
    assert_restores(&g, dir.path(), &src, &url, &last);
    // A grid: every object was stored today, so daily=1 keeps the newest
    // point alone, and everything before it goes into the new base.
    let before = manifest(&g, &bucket, "p").unwrap();
    let out = s3_ok(&g, &["s3-prune", &url, "daily=1"]);
    assert_stderr_has(
        &out,
        &format!("merged {} objects into ", points(&before).len()),
    );
    let m = manifest(&g, &bucket, "p").unwrap();
    assert_eq!(points(&m), std::slice::from_ref(&last));
    assert_eq!(stored(&g, &bucket, "p"), named(&m, "p"));
    let again = dir.path().join("again");
    std::fs::create_dir(&again).unwrap();
    assert_restores(&g, &again, &src, &url, &last);
    let none = s3_ok(&g, &["s3-prune", &url, "daily=1", "keep=3"]);
    assert_stderr_has(&none, "nothing to prune (keep=3 daily=1)");
}

#[test]
#[ignore = "needs the Garage cluster .ci/run starts (HAMMER_TEST_GARAGE): cargo test -- --include-ignored"]
fn compressed_objects_restore_as_plain_ones_do() {
    let g = garage();
    let dir = tempfile::tempdir().unwrap();
    let src = Source::new(dir.path(), 0);
    // Text compresses: the -z object must come out smaller.
    let text_file: String = (0..40_000)
        .map(|i| format!("line {i} of a log\n"))
        .collect();
    fs::write(src.tree.join("log"), &text_file).unwrap();
    let bucket = g.bucket("zstd");
    let (plain, packed) = (format!("s3://{bucket}/plain"), format!("s3://{bucket}/z"));
    src.generation(0);
    s3_ok(&g, &["-q", "mirror-copy", p(&src.master), &plain]);
    s3_ok(&g, &["-q", "-z", "mirror-copy", p(&src.master), &packed]);
    let size = |prefix: &str| {
        manifest(&g, &bucket, prefix).unwrap()["objects"][0]["size"]
            .as_u64()
            .unwrap()
    };
    assert!(
        size("z") * 4 < size("plain"),
        "{} vs {}",
        size("z"),
        size("plain")
    );
    // A chain may mix them: an uncompressed increment after a compressed base.
    src.generation(1);
    s3_ok(&g, &["-q", "mirror-copy", p(&src.master), &packed]);
    src.generation(2);
    s3_ok(&g, &["-q", "-z", "mirror-copy", p(&src.master), &packed]);
    let m = manifest(&g, &bucket, "z").unwrap();
    let zstd: Vec<bool> = m["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["zstd"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(zstd, [true, false, true]);
    assert!(named(&m, "z")[0].ends_with(".hammer.zst"));
    let checked = s3_ok(&g, &["verify", &packed]);
    assert_eq!(text(&checked.stdout).matches(": ok, ").count(), 3);
    for point in points(&m) {
        assert_restores(&g, dir.path(), &src, &packed, &point);
    }
    let dump = s3_ok(&g, &["mirror-dump", &packed]);
    assert!(text(&dump.stdout).contains("Record lo="));
    // A damaged compressed object is found as a plain one is.
    let client = g.client(&bucket);
    let key = &named(&m, "z")[2];
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut client.reader(key), &mut bytes).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    client.put_small(key, bytes).unwrap();
    let v = run_in(g.hammer(), &["verify", &packed]);
    assert_eq!(v.status.code(), Some(1));
    assert!(text(&v.stdout).contains("DAMAGED"));
    // s3-prune -z writes a compressed base.
    s3_ok(&g, &["-q", "-z", "s3-prune", &plain, "keep=0"]);
    src.generation(3);
    s3_ok(&g, &["-q", "mirror-copy", p(&src.master), &plain]);
    s3_ok(&g, &["-q", "-z", "s3-prune", &plain, "keep=0"]);
    let m = manifest(&g, &bucket, "plain").unwrap();
    assert_eq!(m["objects"][0]["zstd"], serde_json::Value::Bool(true));
    assert_restores(&g, dir.path(), &src, &plain, &points(&m)[0]);
}

#[test]
#[ignore = "needs the Garage cluster .ci/run starts (HAMMER_TEST_GARAGE): cargo test -- --include-ignored"]
fn a_prune_during_an_upload_waits_its_turn() {
    prune_during_an_upload(garage());
}

#[test]
#[ignore = "needs the s3s-fs server .ci/run starts (HAMMER_TEST_S3S): cargo test -- --include-ignored"]
fn a_prune_during_an_upload_waits_its_turn_on_s3s_fs() {
    prune_during_an_upload(s3s());
}

fn prune_during_an_upload(g: Garage) {
    let dir = tempfile::tempdir().unwrap();
    let src = Source::new(dir.path(), 1 << 10);
    let bucket = g.bucket("race");
    let url = format!("s3://{bucket}/r");
    for n in 0..3 {
        src.generation(n);
        s3_ok(&g, &["-q", "mirror-copy", p(&src.master), &url]);
    }
    let mut rng = Rng(3);
    let data: Vec<u8> = (0..3 << 20).map(|_| rng.next() as u8).collect();
    fs::write(src.tree.join("slow"), data).unwrap();
    src.generation(3);
    // 3 MiB at 512 KiB/s: the prune below runs in the middle of it.
    let slow = s3_spawn(&g, &["-b", "512k", "mirror-copy", p(&src.master), &url]);
    std::thread::sleep(Duration::from_millis(2500));
    let prune = run_in(g.hammer(), &["-q", "s3-prune", &url, "keep=0"]);
    assert_eq!(prune.status.code(), Some(1), "{}", text(&prune.stderr));
    assert_stderr_has(&prune, "another run is writing this chain");
    let out = slow.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The upload went on, whole; a prune after it gets the chain.
    let checked = s3_ok(&g, &["verify", &url]);
    assert!(text(&checked.stdout).trim_end().ends_with(": ok"));
    s3_ok(&g, &["-q", "s3-prune", &url, "keep=0"]);
    let m = manifest(&g, &bucket, "r").unwrap();
    assert_eq!(stored(&g, &bucket, "r"), named(&m, "r"));
    let last = points(&m).pop().unwrap();
    assert_restores(&g, dir.path(), &src, &url, &last);
}

#[test]
#[ignore = "needs the Garage cluster .ci/run starts (HAMMER_TEST_GARAGE): cargo test -- --include-ignored"]
fn two_uploads_at_once_leave_a_restorable_chain() {
    two_uploads_at_once(garage());
}

#[test]
#[ignore = "needs the s3s-fs server .ci/run starts (HAMMER_TEST_S3S): cargo test -- --include-ignored"]
fn two_uploads_at_once_leave_a_restorable_chain_on_s3s_fs() {
    two_uploads_at_once(s3s());
}

#[test]
#[ignore = "needs the Garage cluster .ci/run starts (HAMMER_TEST_GARAGE): cargo test -- --include-ignored"]
fn garage_is_found_to_ignore_conditional_writes() {
    let g = garage();
    let bucket = g.bucket("probe");
    assert!(
        !probe(&g.client(&bucket), "p/lock.probe")
            .unwrap()
            .conditional
    );
}

#[test]
#[ignore = "needs the s3s-fs server .ci/run starts (HAMMER_TEST_S3S): cargo test -- --include-ignored"]
fn s3s_fs_is_found_to_honour_conditional_writes() {
    let g = s3s();
    let bucket = g.bucket("probe");
    assert!(
        probe(&g.client(&bucket), "p/lock.probe")
            .unwrap()
            .conditional
    );
}

fn two_uploads_at_once(g: Garage) {
    let dir = tempfile::tempdir().unwrap();
    let src = Source::new(dir.path(), 6 << 20);
    let bucket = g.bucket("overlap");
    let mut lost = 0;
    for round in 0..4 {
        let url = format!("s3://{bucket}/o{round}");
        src.generation(round);
        // Even rounds: both at once, racing for the lease. Odd rounds: the
        // first slowed to 2 MiB/s, the second started during its upload
        // with the master moved on (the runs of the reported failure).
        let slow = round % 2 == 1;
        let first = match slow {
            true => s3_spawn(&g, &["-q", "-b", "2m", "mirror-copy", p(&src.master), &url]),
            false => s3_spawn(&g, &["-q", "mirror-copy", p(&src.master), &url]),
        };
        if slow {
            std::thread::sleep(Duration::from_millis(500));
            src.generation(round + 100);
        }
        let second = s3_spawn(&g, &["-q", "mirror-copy", p(&src.master), &url]);
        for out in [
            first.wait_with_output().unwrap(),
            second.wait_with_output().unwrap(),
        ] {
            if !out.status.success() {
                lost += 1;
                assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
                assert_stderr_has(&out, "another run is writing this chain");
            }
        }
        // Whatever the manifest names is there, and restores.
        let prefix = format!("o{round}");
        if let Some(m) = manifest(&g, &bucket, &prefix) {
            let have = stored(&g, &bucket, &prefix);
            assert!(
                named(&m, &prefix).iter().all(|n| have.contains(n)),
                "round {round}"
            );
        }
        s3_ok(&g, &["-q", "mirror-copy", p(&src.master), &url]);
        let rstore = new_store(dir.path(), &format!("r{round}"));
        s3_ok(&g, &["-y", "-q", "mirror-copy", &url, p(&rstore.join("s"))]);
        assert_eq!(
            sync_end(&rstore, 1),
            sync_end(&src.root, 1),
            "round {round}"
        );
    }
    // At least the slowed rounds overlapped: their second run lost.
    assert!(lost >= 2, "{lost} runs lost: the rounds did not overlap");
}

#[test]
#[ignore = "needs the Garage cluster .ci/run starts (HAMMER_TEST_GARAGE): cargo test -- --include-ignored"]
fn each_failure_is_named_and_leaves_the_chain_as_it_was() {
    let g = garage();
    let dir = tempfile::tempdir().unwrap();
    let src = Source::new(dir.path(), 1 << 20);
    let bucket = g.bucket("errors");
    let url = format!("s3://{bucket}/e");
    src.generation(0);
    s3_ok(&g, &["-q", "mirror-copy", p(&src.master), &url]);
    src.generation(1);
    let client = g.client(&bucket);
    let manifest_bytes = || client.get_small("e/manifest.json", 1 << 24).unwrap();
    let kept = manifest_bytes();
    let fails = |c: Command, args: &[&str], code: i32, says: &str| {
        let out = run_in(c, args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_stderr_has(&out, says);
        assert_eq!(manifest_bytes(), kept, "{args:?} changed the manifest");
    };
    let push = ["mirror-copy", p(&src.master), url.as_str()];
    let mut wrong_key = g.hammer();
    wrong_key.env("AWS_SECRET_ACCESS_KEY", "0".repeat(64));
    fails(wrong_key, &push, 3, "the server refused the credentials");
    let mut no_key = g.hammer();
    no_key
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", dir.path());
    fails(no_key, &push, 1, "no credentials for s3://");
    let mut unreachable = g.hammer();
    unreachable
        .env("HAMMER_S3_ENDPOINT", "http://127.0.0.1:9")
        .env("HAMMER_S3_RETRY_TIMEOUT", "2");
    fails(unreachable, &push, 3, "cannot reach the server");
    let missing = format!("s3://{bucket}-missing/e");
    fails(
        g.hammer(),
        &["mirror-copy", p(&src.master), &missing],
        3,
        "no such bucket",
    );
    fails(
        g.hammer(),
        &["-y", "mirror-copy", &missing, p(&dir.path().join("s"))],
        2,
        "no such bucket",
    );
    ok(&["pfs-master", p(&src.root.join("other"))]);
    fails(
        g.hammer(),
        &["mirror-copy", p(&src.root.join("other")), &url],
        3,
        "the chain is of PFS shared-uuid",
    );
    for terms in [
        &["keep=x"][..],
        &[],
        &["keep=1", "keep=2"],
        &["fortnightly=2"],
        &["monthly=-1"],
    ] {
        let mut args = vec!["s3-prune", url.as_str()];
        args.extend_from_slice(terms);
        fails(g.hammer(), &args, 1, "hammer s3-prune s3://");
    }
    // A first run killed during its upload: a manifest with no object yet,
    // naming the upload it left.
    let uuid = shared_uuid(&src.master);
    let pending = format!(
        r#"{{"format":"hammer-mirror chain 1","shared_uuid":"{uuid}","objects":[],
            "pending":[{{"name":"{uuid}/0000000000000000-0000000000000001.hammer","upload_id":"gone"}}]}}"#
    );
    client
        .put_small("empty/manifest.json", pending.into_bytes())
        .unwrap();
    let empty = format!("s3://{bucket}/empty");
    let out = run_in(
        g.hammer(),
        &["-y", "mirror-copy", &empty, p(&dir.path().join("e"))],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_stderr_has(&out, "the chain has no complete object yet");
    s3_ok(&g, &["verify", &empty]);
    let out = s3_ok(&g, &["mirror-copy", p(&src.master), &empty]);
    assert_stderr_has(&out, "aborted an unfinished upload");
    assert!(manifest(&g, &bucket, "empty")
        .unwrap()
        .get("pending")
        .is_none());

    // A restore into a slave of another PFS is refused as mirror-write refuses it.
    let slave_of_other = src.root.join("otherslave");
    ok(&["pfs-slave", p(&slave_of_other)]);
    fails(
        g.hammer(),
        &["mirror-copy", &url, p(&slave_of_other)],
        3,
        "different shared-uuid",
    );

    // One byte of the object changed behind the chain's back.
    let m: serde_json::Value = serde_json::from_slice(&kept.clone().unwrap()).unwrap();
    let key = format!("e/{}", m["objects"][0]["name"].as_str().unwrap());
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut client.reader(&key), &mut bytes).unwrap();
    let original = bytes.clone();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    client.put_small(&key, bytes).unwrap();
    let v = run_in(g.hammer(), &["verify", &url]);
    assert_eq!(v.status.code(), Some(1));
    assert!(text(&v.stdout).contains("DAMAGED"), "{}", text(&v.stdout));
    let rstore = new_store(dir.path(), "r");
    let slave = rstore.join("s");
    fails(
        g.hammer(),
        &["-y", "mirror-copy", &url, p(&slave)],
        2,
        &format!("{url}: object "),
    );
    // The slave did not move to the damaged object's end.
    assert!(sync_end(&rstore, 1) < tid_of(m["objects"][0]["end_tid"].as_str().unwrap()));
    fails(g.hammer(), &["mirror-dump", &url], 1, "object ");
    fails(
        g.hammer(),
        &["export", &url, p(&dir.path().join("x"))],
        1,
        "object ",
    );
    assert!(!dir.path().join("x").exists() || names(&dir.path().join("x")).is_empty());

    // Every record whole, but bytes the manifest does not count: found
    // before the batch's SYNC reaches the slave.
    let mut longer = original;
    longer.extend_from_slice(&[0u8; 24]);
    client.put_small(&key, longer).unwrap();
    let rstore = new_store(dir.path(), "r2");
    let slave = rstore.join("s");
    fails(
        g.hammer(),
        &["-y", "mirror-copy", &url, p(&slave)],
        2,
        "bytes, the manifest records",
    );
    assert_eq!(
        sync_end(&rstore, 1),
        1,
        "the slave moved to a damaged object's end"
    );
}

/// `mirror-stream -i 1` of the source's master, its generation 0
/// imported, into a chain at `s` in a new bucket: the bucket and the run.
fn start_stream(g: &Garage, src: &Source, hint: &str) -> (String, std::process::Child) {
    let bucket = g.bucket(hint);
    src.generation(0);
    let url = format!("s3://{bucket}/s");
    let child = s3_spawn(g, &["-q", "-i", "1", "mirror-stream", p(&src.master), &url]);
    (bucket, child)
}

#[test]
#[ignore = "needs the Garage cluster .ci/run starts (HAMMER_TEST_GARAGE): cargo test -- --include-ignored"]
fn mirror_stream_stores_a_batch_each_time_the_master_moves() {
    let g = garage();
    let dir = tempfile::tempdir().unwrap();
    let src = Source::new(dir.path(), 1 << 10);
    let (bucket, child) = start_stream(&g, &src, "stream");
    let count = || manifest(&g, &bucket, "s").map_or(0, |m| points(&m).len());
    wait_for("the first batch", 30, || count() >= 1, String::new);
    src.generation(1);
    wait_for("the second batch", 30, || count() >= 2, String::new);
    src.generation(2);
    wait_for("the third batch", 30, || count() >= 3, String::new);
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143));
    assert_eq!(
        text(&out.stderr),
        "hammer: mirror-stream: stopped by SIGTERM; the chain keeps the objects its \
         manifest names; the next run aborts the upload under way\n"
    );
    let last = points(&manifest(&g, &bucket, "s").unwrap()).pop().unwrap();
    assert_eq!(tid_of(&last), sync_end(&src.root, 1));
}

#[test]
#[ignore = "needs the Garage cluster .ci/run starts (HAMMER_TEST_GARAGE): cargo test -- --include-ignored"]
fn a_change_made_during_an_upload_is_stored_by_the_next_batch() {
    let g = garage();
    let dir = tempfile::tempdir().unwrap();
    // Random data, several parts: the first upload lasts long enough for
    // an import to land in the middle of it.
    let src = Source::new(dir.path(), 48 << 20);
    let (bucket, child) = start_stream(&g, &src, "during");
    let uploading = || {
        manifest(&g, &bucket, "s")
            .is_some_and(|m| m["pending"].as_array().is_some_and(|a| !a.is_empty()))
    };
    wait_for("the first upload to start", 30, uploading, String::new);
    src.generation(1);
    assert!(
        uploading(),
        "the first upload ended before the change: no race to test"
    );
    // No change after this one: the stream must still store it.
    let end = sync_end(&src.root, 1);
    let last = || {
        manifest(&g, &bucket, "s")
            .and_then(|m| points(&m).pop())
            .map_or(0, |t| tid_of(&t))
    };
    wait_for(
        "a batch up to the change",
        60,
        || last() >= end,
        || format!("the chain ends at {:#x}, the master at {end:#x}", last()),
    );
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
}

#[test]
fn a_forced_command_client_cannot_reach_object_storage() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        "hammer mirror-dump s3://bucket/x",
        "hammer mirror-dump header s3://bucket/x",
    ] {
        let out = hammer()
            .args(["ssh-remote", "mirror-read,mirror-dump", p(dir.path())])
            .env("SSH_ORIGINAL_COMMAND", cmd)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{cmd} was admitted");
        assert!(out.stdout.is_empty());
    }
    for args in [
        vec!["-T", p(dir.path()), "mirror-dump", "s3://bucket/x"],
        vec!["-T", p(dir.path()), "verify", "s3://bucket/x"],
        vec!["-T", p(dir.path()), "export", "s3://bucket/x", "/tmp/x"],
        vec!["-T", p(dir.path()), "s3-prune", "s3://bucket/x", "keep=1"],
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?} was admitted");
        assert_stderr_has(&out, "restricted");
    }
}

/// `hammer` pointed at a port nothing listens on, with made-up keys and
/// no retries: a chain command gets as far as its first request.
fn hammer_unreachable(args: &[&str]) -> Output {
    let mut c = hammer_without_aws();
    c.env("HAMMER_S3_ENDPOINT", "http://127.0.0.1:1")
        .env("AWS_ACCESS_KEY_ID", "GK0000")
        .env("AWS_SECRET_ACCESS_KEY", "0000")
        .env("AWS_REGION", "garage")
        .env("HAMMER_S3_RETRY_TIMEOUT", "0");
    run_in(c, args)
}

#[test]
fn a_pfs_named_by_its_id_is_local_and_a_host_path_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    ok(&["store-create", p(&store)]);
    ok(&["pfs-master", p(&store.join("m"))]);
    // A colon, and no file by that name: mirror-copy's rule says local.
    let by_id = format!("{}/@@-1:00001", p(&store));
    let slave = format!("{}/@@-1:00002", p(&store));
    for args in [
        vec!["mirror-copy", &by_id, "s3://bucket/p"],
        vec!["-y", "mirror-copy", "s3://bucket/p", &slave],
    ] {
        let out = hammer_unreachable(&args);
        assert!(!out.status.success(), "{args:?}");
        assert_stderr_has(&out, "cannot reach the server");
    }
    for (args, why) in [
        (
            vec!["mirror-copy", "host:/pfs", "s3://bucket/p"],
            "the PFS a chain is made from must be local",
        ),
        (
            vec!["mirror-copy", "s3://bucket/p", "user@host:/pfs"],
            "a chain is applied to a local slave only",
        ),
    ] {
        let out = hammer_unreachable(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_stderr_has(&out, why);
    }
}

/// `hammer verify` of a chain at `endpoint`, retrying for `retry` seconds:
/// its output and how long it took.
fn verify_at(endpoint: &str, retry: &str) -> (Output, Duration) {
    let mut c = hammer_without_aws();
    c.env("HAMMER_S3_ENDPOINT", endpoint)
        .env("AWS_ACCESS_KEY_ID", "GK0000")
        .env("AWS_SECRET_ACCESS_KEY", "0000")
        .env("AWS_REGION", "garage")
        .env("HAMMER_S3_RETRY_TIMEOUT", retry);
    let t0 = std::time::Instant::now();
    let out = run_in(c, &["verify", "s3://bucket/p"]);
    (out, t0.elapsed())
}

#[test]
fn a_run_retries_for_as_long_as_hammer_s3_retry_timeout_says() {
    let (out, took) = verify_at("http://127.0.0.1:1", "10");
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "cannot reach the server");
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(40),
        "gave up after {took:?}"
    );
}

#[test]
fn dns_and_tls_failures_keep_their_reason() {
    let (out, _) = verify_at("http://nonexistent.invalid:9", "1");
    assert_stderr_has(&out, "cannot reach the server: dns error");
    // Something that answers plain HTTP where TLS is expected.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(50) {
            let Ok(mut conn) = conn else { continue };
            let _ = std::io::Write::write_all(&mut conn, b"HTTP/1.1 400 Bad\r\n\r\n");
        }
    });
    let (out, _) = verify_at(&format!("https://127.0.0.1:{port}"), "1");
    assert_stderr_has(&out, "cannot reach the server: received corrupt message");
}

#[test]
fn half_a_key_pair_in_the_environment_is_refused() {
    let mut c = hammer_without_aws();
    c.env("HAMMER_S3_ENDPOINT", "http://127.0.0.1:1")
        .env("AWS_ACCESS_KEY_ID", "GK0000")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let out = run_in(c, &["verify", "s3://bucket/p"]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(
        &out,
        "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
    );
}

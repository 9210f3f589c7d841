//! Under `kernel-double`, the binary reaches every store through the kernel
//! backend and its test double: its mirror-read stream must carry exactly
//! the bytes the store produces directly for the same range (spec:
//! ioctl-abi.md §4.3, ARCHITECTURE.md §4), and a dry-run prune, which no
//! ioctl offers, is refused (cli.md §24), by a cleanup's dry run too
//! (cli.md §23.5).

#![cfg(feature = "kernel-double")]

use crate::common::*;
use hammer_mirror::pfs::MirrorReadReq;
use hammer_mirror::wire::mrec_type;
use hammer_mirror::wire::reader::BatchIter;

/// The REC, PASS and SKIP records of a buffer, each as its bytes.
fn scan_records(bytes: &[u8]) -> Vec<Vec<u8>> {
    BatchIter::new(bytes)
        .filter(|r| {
            matches!(
                r.rec_type() & 0xFF,
                mrec_type::REC | mrec_type::PASS | mrec_type::SKIP
            )
        })
        .map(|r| r.bytes().to_vec())
        .collect()
}

/// `Mirror-read: Mirror <beg> to <end>` on stderr.
fn tid_range(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("Mirror-read: Mirror "))
        .expect("no Mirror line");
    let (b, e) = line.split_once(" to ").unwrap();
    let hex = |s: &str| u64::from_str_radix(s.get(..16).unwrap(), 16).unwrap();
    (hex(b), hex(e))
}

#[test]
fn mirror_read_through_the_double_equals_the_store_byte_for_byte() {
    let d = tempfile::tempdir().unwrap();
    let root = store_with_master(d.path(), "s");
    let last = make_history(&root, 30, 4, 3000);
    let master = root.join("master");
    let master = master.to_str().unwrap();
    let mid = format!("{:#x}", last - 4);
    for args in [
        &["-B", "mirror-read", master][..],
        &["-B", "mirror-read", master, &mid],
    ] {
        let out = ok(args);
        let (beg, end) = tid_range(&text(&out.stderr));
        let calls = read_calls(
            &mut open(&root, 1),
            &mut MirrorReadReq::new(beg, end),
            524_288,
        );
        let direct: Vec<_> = calls.iter().flat_map(|c| scan_records(c)).collect();
        let streamed = scan_records(&out.stdout);
        assert!(!direct.is_empty(), "{args:?}: nothing to compare");
        assert!(streamed == direct, "{args:?}: streams differ");
    }
}

/// A signal interrupting MIRROR_READ (success with HEAD_INTR, nothing
/// added) fails the batch: no SYNC goes out, so a target never moves its
/// sync point over records the scan did not reach (spec: kernel-semantics.md
/// §3.1; the original took the empty result for the end of the scan).
#[test]
fn an_interrupted_mirror_read_fails_the_batch_without_sync() {
    let d = tempfile::tempdir().unwrap();
    let root = store_with_master(d.path(), "s");
    make_history(&root, 30, 2, 3000);
    let master = root.join("master");
    for call in [1, 2] {
        let out = hammer()
            .env("HAMMER_DOUBLE_INTERRUPT_MIRROR_READ", call.to_string())
            .args(["-B", "mirror-read", master.to_str().unwrap()])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "call {call}: {}",
            text(&out.stderr)
        );
        assert_stderr_has(
            &out,
            &format!(
                "Mirror-read {} failed: Interrupted system call",
                master.display()
            ),
        );
        let types: Vec<u32> = BatchIter::new(&out.stdout)
            .map(|r| r.rec_type() & 0xFF)
            .collect();
        assert!(!types.contains(&mrec_type::SYNC), "call {call}: {types:x?}");
    }
}

/// `-n` has no ioctl to run on: prune and prune-everything refuse it
/// before they change anything — no snapshot record deleted, no record
/// pruned, the cycle file (here an old, short one) left.
#[test]
fn a_dry_run_prune_is_refused_through_the_kernel() {
    let d = tempfile::tempdir().unwrap();
    let root = store_with_master(d.path(), "s");
    let m = root.join("master");
    let ms = m.to_str().unwrap();
    let t = tree(d.path(), [("f", b"one".to_vec())]);
    import(&t, &m);
    std::fs::write(t.join("f"), b"two").unwrap();
    import(&t, &m);
    let snaps = ok(&["snapls", ms]).stdout;
    let mut records = 0;
    open(&root, 1).for_each_record(|_, _| records += 1).unwrap();
    let cycle = d.path().join("cycle");
    std::fs::write(&cycle, b"short").unwrap();
    for word in ["prune", "prune-everything"] {
        let out = run(&["-n", "-c", cycle.to_str().unwrap(), word, ms]);
        assert_eq!(
            outcome(&out),
            (
                String::new(),
                format!("hammer: {word}: -n is not available on HAMMER: the kernel has no dry-run prune\n"),
                1
            )
        );
    }
    assert_eq!(ok(&["snapls", ms]).stdout, snaps);
    let mut after = 0;
    open(&root, 1).for_each_record(|_, _| after += 1).unwrap();
    assert_eq!(after, records);
    assert_eq!(std::fs::read(&cycle).unwrap(), b"short");
}

/// A cleanup's dry run needs the store's dry-run prune: through the
/// kernel each PFS is refused on its `cleanup` line (exit 1), before its
/// snapshots directory or configuration is made.
#[test]
fn a_dry_run_cleanup_is_refused_through_the_kernel() {
    let d = tempfile::tempdir().unwrap();
    let root = store_with_master(d.path(), "s");
    let m = root.join("master");
    let out = run(&["-n", "cleanup", m.to_str().unwrap()]);
    assert_eq!(
        outcome(&out),
        (
            format!(
                "cleanup {:<20} - -n is not available on HAMMER: the kernel has no dry-run prune\n",
                m.display()
            ),
            String::new(),
            1
        )
    );
    assert!(!root.join(".hammer-store.cleanup").exists());
    let config = run(&["config", m.to_str().unwrap()]);
    assert!(
        text(&config.stderr).contains("no configuration found"),
        "{}",
        text(&config.stderr)
    );
}

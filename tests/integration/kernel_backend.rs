//! Under `kernel-double`, the binary reaches every store through the kernel
//! backend and its test double: its mirror-read stream must carry exactly
//! the bytes the store produces directly for the same range (spec:
//! ioctl-abi.md §4.3, ARCHITECTURE.md §4).

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

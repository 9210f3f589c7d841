//! pfs-destroy racing the mirror commands, driven through the binary with
//! pipes the test holds: a mirror-write whose slave is destroyed fails at
//! its next batch and leaves nothing for a PFS that later gets the id; a
//! mirror-read whose master is destroyed fails without a SYNC, so no slave
//! takes a part of the PFS for all of it.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Output, Stdio};

use crate::common::*;
use hammer_mirror::wire::mrec_type;

/// The whole stream `hammer <args> mirror-read <pfs>` writes.
fn stream_of(args: &[&str], pfs: &Path) -> Vec<u8> {
    let mut a = args.to_vec();
    a.extend(["mirror-read", pfs.to_str().unwrap()]);
    ok(&a).stdout
}

fn mirror_write(args: &[&str]) -> Child {
    hammer()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// How mirror-write into `slave` (PFS#2) ends once the slave is destroyed
/// under it.
#[track_caller]
fn assert_write_failed(out: &Output, slave: &Path) {
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_stderr_ends(
        out,
        &format!(
            "hammer: Mirror-write {} failed: PFS#2 was destroyed\n",
            slave.display()
        ),
    );
}

/// A master with about 4 MB of history in 8 TIDs in store `s`; its
/// sync-beg-tid is the first of them, so that a prescan can split it.
fn big_master(dir: &Path) -> std::path::PathBuf {
    let root = store_with_master(dir, "s");
    make_history(&root, 60, 8, 20_000);
    begin_at_first_tid(&root);
    root
}

/// The slave is destroyed while its mirror-write is in the middle of a batch;
/// the rest of the stream must not land anywhere.
#[test]
fn mirror_write_into_a_destroyed_slave_fails_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = big_master(dir.path());
    let stream = stream_of(&["-B"], &root.join("master"));
    assert!(stream.len() > 3 << 20, "{}", stream.len());
    let slave = root.join("slave");
    let mut w = mirror_write(&["-y", "mirror-write", slave.to_str().unwrap()]);
    let mut input = w.stdin.take().unwrap();
    input.write_all(&stream[..3 << 20]).unwrap();
    wait_for(
        "a batch applied",
        20,
        || slave.symlink_metadata().is_ok() && !as_of(&root, 2, u64::MAX).is_empty(),
        String::new,
    );
    destroy(&slave);
    // The pipe may be closed by the failing writer before all is written.
    let _ = input.write_all(&stream[3 << 20..]);
    drop(input);
    let out = w.wait_with_output().unwrap();
    assert_write_failed(&out, &slave);
    assert!(as_of(&root, 2, u64::MAX).is_empty());
    // The id is reused: the new PFS shows nothing of the old one.
    let again = root.join("again");
    let out = ok(&["pfs-master", again.to_str().unwrap()]);
    assert!(text(&out.stdout).starts_with("Creating PFS#2\t"));
    let objs: Vec<i64> = as_of(&root, 2, u64::MAX).keys().map(|k| k.1).collect();
    assert_eq!(objs, vec![1], "only the new root");
    let exported = dir.path().join("out");
    ok(&[
        "export",
        again.to_str().unwrap(),
        exported.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_dir(&exported).unwrap().count(), 0);
}

/// Between batches: a slave destroyed after a batch and created anew under its
/// name is not given the rest of the stream (it would claim the master's sync
/// point without the first batch's data).
#[test]
fn mirror_write_does_not_continue_into_a_recreated_slave() {
    let dir = tempfile::tempdir().unwrap();
    let root = big_master(dir.path());
    let master = root.join("master");
    let stream = stream_of(&["-S", "1m"], &master);
    let syncs: Vec<usize> = record_ends(&stream)
        .into_iter()
        .filter(|r| r.0 == mrec_type::SYNC)
        .map(|r| r.1)
        .collect();
    assert!(syncs.len() >= 3, "{syncs:?}");
    let slave = root.join("slave");
    let mut w = mirror_write(&["-y", "mirror-write", slave.to_str().unwrap()]);
    let mut input = w.stdin.take().unwrap();
    let mut acks = BufReader::new(w.stdout.take().unwrap());
    input.write_all(&stream[..syncs[0]]).unwrap();
    let mut line = String::new();
    acks.read_line(&mut line).unwrap();
    assert!(line.starts_with("Source can update synctid to "), "{line}");
    let first = sync_end(&root, 2);
    destroy(&slave);
    let uuid = shared_uuid(&master);
    ok(&[
        "pfs-slave",
        slave.to_str().unwrap(),
        &format!("shared-uuid={uuid}"),
    ]);
    let _ = input.write_all(&stream[syncs[0]..]);
    drop(input);
    let mut rest = String::new();
    acks.read_to_string(&mut rest).unwrap();
    let out = w.wait_with_output().unwrap();
    assert_write_failed(&out, &slave);
    assert_eq!(rest, "");
    assert!(first > 1);
    assert_eq!(sync_end(&root, 2), 1, "the new slave took a sync point");
    assert!(as_of(&root, 2, u64::MAX).is_empty());
}

/// The master is destroyed while mirror-read is blocked on a full pipe in the
/// middle of its scan. It fails and sends no SYNC, so the slave fed from it
/// keeps its sync point.
#[test]
fn mirror_read_of_a_destroyed_master_fails_without_sync() {
    let dir = tempfile::tempdir().unwrap();
    let root = big_master(dir.path());
    let master = root.join("master");
    let mut r = hammer()
        .args(["-B", "mirror-read", master.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = r.stdout.take().unwrap();
    // The stream is larger than the pipe and mirror-read's buffer: the
    // scan cannot be done before the test reads on.
    let mut head = vec![0u8; 64 << 10];
    out.read_exact(&mut head).unwrap();
    destroy(&master);
    let mut stream = head;
    out.read_to_end(&mut stream).unwrap();
    let ro = r.wait_with_output().unwrap();
    assert_eq!(ro.status.code(), Some(1), "{}", text(&ro.stderr));
    assert_stderr_ends(
        &ro,
        &format!(
            "hammer: Mirror-read {} failed: PFS#1 was destroyed\n",
            master.display()
        ),
    );
    let types: Vec<u32> = record_ends(&stream).iter().map(|r| r.0).collect();
    assert!(types.len() > 2, "{} records", types.len());
    assert!(
        !types.contains(&mrec_type::SYNC) && !types.contains(&mrec_type::TERM),
        "the part looks complete"
    );
    // What a slave makes of it: no new sync point.
    let other = new_store(dir.path(), "t");
    let slave = other.join("slave");
    let wo = run_with_input(
        hammer().args(["-y", "mirror-write", slave.to_str().unwrap()]),
        &stream,
    );
    assert_eq!(wo.status.code(), Some(1), "{}", text(&wo.stderr));
    assert_eq!(sync_end(&other, 1), 1);
}

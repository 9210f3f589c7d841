//! mirror-write under bad input and sudden death: every malformed fixture
//! is refused with the reader's message and leaves the slave as of its sync
//! point unchanged; SIGKILLs at random points never corrupt a slave and a
//! rerun always converges.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;
use hammer_mirror::pfs::store::DB_NAME;

const FIXTURE_UUID: &str = "01234567-89ab-cdef-0123-456789abcdef";

/// A store `dir/s` with a slave PFS that takes the fixtures' streams;
/// returns the store root and the slave.
fn fixture_slave(dir: &Path) -> (PathBuf, PathBuf) {
    let root = new_store(dir, "s");
    let slave = root.join("slave");
    ok(&[
        "pfs-slave",
        slave.to_str().unwrap(),
        &format!("shared-uuid={FIXTURE_UUID}"),
    ]);
    (root, slave)
}

fn write_from(stream: &Path, slave: &Path) -> std::process::Output {
    hammer()
        .args(["mirror-write", slave.to_str().unwrap()])
        .stdin(std::fs::File::open(stream).unwrap())
        .output()
        .unwrap()
}

/// Every malformed fixture: the reader's error, exit 1, slave unchanged.
#[test]
fn malformed_fixtures_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (root, slave) = fixture_slave(dir.path());
    // A good stream first, so there is state to protect.
    let out = write_from(&fixture("example.stream"), &slave);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sync = sync_end(&root, 1);
    assert_eq!(sync, 0x00000001061a8ba0);
    let before = as_of(&root, 1, u64::MAX);
    let cases = [
        (
            "bad-head-crc-in-batch",
            "hammer: read_mrecords: malformed record on pipe, bad crc\n",
        ),
        ("bad-head-crc-first", "read_mrecord: bad CRC\n"),
        (
            "rec-size-too-large",
            "hammer: read_mrecords: malformed record on pipe, illegal rec_size\n",
        ),
        (
            "rec-size-below-head",
            "hammer: read_mrecords: malformed record on pipe, illegal rec_size\n",
        ),
        ("swapped-signature-first", "read_mrecord: bad signature\n"),
        // The swapped signature is on PFSD#2, which mirror-write reads alone.
        (
            "swapped-signature-in-batch",
            "read_mrecord: bad signature\n",
        ),
        ("truncated-at-10", "short read of mrecord header\n"),
        ("truncated-at-330", "short read of mrecord header\n"),
        (
            "truncated-at-650",
            "hammer: read_mrecords: short read on pipe\n",
        ),
        (
            "rec-nodata-flag",
            "hammer: read_mrecords: malformed record on pipe, illegal element data_len\n",
        ),
        (
            "rec-short-data-len",
            "hammer: read_mrecords: malformed record on pipe, illegal element data_len\n",
        ),
        (
            "rec-before-pfsd",
            "hammer: validate_mrec_header: did not get expected PFSD record type\n",
        ),
        ("empty", "hammer: validate_mrec_header: short read\n"),
    ];
    for (name, want) in cases {
        let out = write_from(&fixture(&format!("{name}.stream")), &slave);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), want, "{name}");
        assert_eq!(sync_end(&root, 1), sync, "{name} moved the sync point");
        assert_eq!(as_of(&root, 1, sync), before, "{name}");
    }
    let out = write_from(&fixture("unknown-type.stream"), &slave);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "hammer: Mirror-write {}: Did not get termination sync record, or rec_size is wrong rt=9\n",
            slave.display()
        )
    );
    // A lone TERM ends the session cleanly.
    assert!(write_from(&fixture("term-only.stream"), &slave)
        .status
        .success());
    assert_eq!(as_of(&root, 1, u64::MAX), before);
    assert_eq!(sync_end(&root, 1), sync);
}

/// A REC flagged bad on the source is never applied; a REC whose data
/// fails its CRC is refused with EINVAL as the kernel does.
#[test]
fn kernel_flagged_records_are_not_applied() {
    use hammer_mirror::ondisk::{HammerUuid, LeafElm, PseudofsData};
    use hammer_mirror::wire::{crc::crc32c, mrec_type, Mrecord};
    let dir = tempfile::tempdir().unwrap();
    let (root, slave) = fixture_slave(dir.path());
    let pfsd = Mrecord::Pfsd {
        version: 1,
        pfsd: PseudofsData {
            sync_beg_tid: 1,
            sync_end_tid: 0x1_0600_0100,
            shared_uuid: HammerUuid::parse(FIXTURE_UUID).unwrap(),
            ..Default::default()
        },
    };
    let data = b"0123456789abcdef";
    let rec = |obj: i64, rtype: u32, crc: u32| Mrecord::Rec {
        rtype,
        leaf: LeafElm {
            data_crc: crc,
            ..data_leaf(obj, 0x4000, 0x1_0600_0000, data)
        },
        data,
    };
    let s = stream(&[
        pfsd,
        pfsd,
        rec(0x1_0000_0001, mrec_type::REC, crc32c(data)),
        rec(0x1_0000_0004, 0xC000_0001, 0xdeadbeef),
        Mrecord::Sync { tid: 1 },
        Mrecord::Term { tid: 1 },
    ]);
    let path = dir.path().join("flagged.stream");
    std::fs::write(&path, &s).unwrap();
    let out = write_from(&path, &slave);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let objs: Vec<i64> = as_of(&root, 1, u64::MAX).keys().map(|k| k.1).collect();
    assert!(objs.contains(&0x1_0000_0001), "{objs:x?}");
    assert!(!objs.contains(&0x1_0000_0004), "{objs:x?}");

    // batches.stream carries an unflagged REC with a bad data CRC.
    let out = write_from(&fixture("batches.stream"), &slave);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_ends(
        &out,
        &format!("hammer: Mirror-write {} fatal error 22\n", slave.display()),
    );
    assert_eq!(sync_end(&root, 1), 0x1_0600_0100);
}

fn integrity_ok(root: &Path) {
    let conn = rusqlite::Connection::open(root.join(DB_NAME)).unwrap();
    let r: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(r, "ok");
}

/// mirror-write killed with SIGKILL at random points, 50 times, each
/// followed by a check: the slave opens, is intact, and as of its sync
/// point equals the master; a final rerun converges. The master gains a
/// generation before every run, and the kill comes after a random number
/// of stream bytes has reached mirror-write, so it lands mid-copy however
/// fast the machine is.
#[test]
fn sigkill_during_copy_never_corrupts_and_reruns_converge() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 40, 4, 40_000);
    begin_at_first_tid(&src);
    let m = src.join("master");
    let s = src.join("slave");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut interrupted = 0;
    for _ in 0..50 {
        make_history(&src, 40, 1, 40_000);
        let master_end = sync_end(&src, 1);
        let mut r = hammer()
            .args([
                "-y",
                "-i",
                "0",
                "-S",
                "200k",
                "mirror-read",
                m.to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut w = hammer()
            .args(["-y", "mirror-write", s.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Up to 2 MB of a stream of about 1.7 MB and more.
        let mut left = rng.below(2 << 20) as usize;
        let (mut from, mut to) = (r.stdout.take().unwrap(), w.stdin.take().unwrap());
        let mut buf = vec![0u8; 64 << 10];
        while left > 0 {
            let n = match from.read(&mut buf[..left.min(64 << 10)]) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            left -= n;
        }
        let _ = Command::new("kill")
            .args(["-KILL", &w.id().to_string()])
            .status();
        let _ = w.wait();
        drop((from, to));
        let _ = r.kill();
        let _ = r.wait();
        integrity_ok(&src);
        // The slave is the PFS its link names: a kill between the
        // creation of a missing slave and its link leaves a PFS without
        // one (as on HAMMER), and the next run creates another.
        let slave = link_id(&s);
        if let Some(id) = slave.filter(|&id| sync_end(&src, id) > 1) {
            assert_mirrored((&src, 1), (&src, id));
        }
        if slave.is_none_or(|id| sync_end(&src, id) < master_end) {
            interrupted += 1;
        }
    }
    assert!(
        interrupted >= 25,
        "only {interrupted} of 50 kills landed before the end of a copy"
    );
    let master_end = sync_end(&src, 1);
    pipe_ok(
        &["-i", "0", "mirror-read", m.to_str().unwrap()],
        &["-y", "mirror-write", s.to_str().unwrap()],
    );
    let t = assert_mirrored((&src, 1), (&src, link_id(&s).unwrap()));
    assert!(t >= master_end);
}

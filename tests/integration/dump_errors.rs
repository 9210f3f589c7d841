//! mirror-dump failure paths beyond the fixtures: closed output pipe,
//! oversized records, batches larger than one buffer.

use std::io::Write;
use std::process::Stdio;

use crate::common::*;

use hammer_mirror::ondisk::PseudofsData;
use hammer_mirror::wire::{mrec_type, Mrecord};

fn big_stream(records: usize, data: &[u8]) -> Vec<u8> {
    let pfsd = Mrecord::Pfsd {
        version: 1,
        pfsd: PseudofsData::default(),
    };
    let recs = (0..records).map(|i| Mrecord::Rec {
        rtype: mrec_type::REC,
        leaf: data_leaf(i as i64, 0, 0, data),
        data,
    });
    let all: Vec<Mrecord> = [pfsd, pfsd]
        .into_iter()
        .chain(recs)
        .chain([Mrecord::Sync { tid: 1 }, Mrecord::Term { tid: 1 }])
        .collect();
    stream(&all)
}

#[test]
fn closed_stdout_is_an_error_not_a_silent_sigpipe() {
    let stream = big_stream(200_000, b"0123456789abcdef");
    let mut child = hammer()
        .arg("mirror-dump")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&stream);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "hammer: mirror-dump: Broken pipe\n"
    );
}

#[test]
fn multi_batch_stream_dumps_every_record() {
    // 16 KiB records: several 512 KiB batches.
    let data = vec![0x5au8; 16384];
    let stream = big_stream(100, &data);
    let out = run_with_input(hammer().arg("mirror-dump"), &stream);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stderr, b"");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("Record ")).count(),
        100
    );
}

/// D23 (spec: protocol.md §15): mirror-dump exits 1 whenever the stream
/// ends anywhere but after a TERM or a complete batch, with the messages
/// the original prints there; the example stream (wire-format.md §10) cut
/// at every kind of place.
#[test]
fn d23_incomplete_stream_exits_1_with_the_same_messages() {
    let stream = std::fs::read(fixture("example.stream")).unwrap();
    assert_eq!(stream.len(), 960);
    const NO_SYNC: &str = "Mirror-dump: Did not get termination sync record\n";
    let short_head = format!("short read of mrecord header\n{NO_SYNC}");
    let short_payload = format!("read_mrecord: short read on payload\n{NO_SYNC}");
    let cases: &[(usize, &str, i32)] = &[
        (0, NO_SYNC, 1),
        // Inside the first record: its header, then its payload.
        (10, &short_head, 1),
        (100, &short_payload, 1),
        // Inside the batch: the batch reader's own error (1 before, too).
        (330, "hammer: read_mrecords: short read on pipe\n", 1),
        // At record boundaries before the batch's SYNC.
        (640, NO_SYNC, 1),
        (912, NO_SYNC, 1),
        // After the SYNC: complete without TERM; inside the TERM: cut.
        (936, "", 0),
        (940, "short read of mrecord header\n", 1),
        (960, "", 0),
    ];
    for &(len, stderr, status) in cases {
        let out = run_with_input(hammer().arg("mirror-dump"), &stream[..len]);
        assert_eq!(
            (
                String::from_utf8_lossy(&out.stderr).as_ref(),
                out.status.code()
            ),
            (stderr, Some(status)),
            "cut at {len}"
        );
    }
}

//! mirror-dump failure paths beyond the fixtures: closed output pipe,
//! oversized records, batches larger than one buffer.

use std::io::Write;
use std::process::{Command, Stdio};

use hammer_mirror::ondisk::{BaseElm, LeafElm, PseudofsData};
use hammer_mirror::wire::crc::crc32c;
use hammer_mirror::wire::{mrec_type, Mrecord};

fn big_stream(records: usize, data: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    let pfsd = Mrecord::Pfsd {
        version: 1,
        pfsd: PseudofsData::default(),
    };
    pfsd.encode_into(&mut s);
    pfsd.encode_into(&mut s);
    for i in 0..records {
        Mrecord::Rec {
            rtype: mrec_type::REC,
            leaf: LeafElm {
                base: BaseElm {
                    obj_id: i as i64,
                    rec_type: 0x10,
                    localization: 2,
                    ..Default::default()
                },
                data_offset: 1,
                data_len: data.len() as i32,
                data_crc: crc32c(data),
                ..Default::default()
            },
            data,
        }
        .encode_into(&mut s);
    }
    Mrecord::Sync { tid: 1 }.encode_into(&mut s);
    Mrecord::Term { tid: 1 }.encode_into(&mut s);
    s
}

#[test]
fn closed_stdout_is_an_error_not_a_silent_sigpipe() {
    let stream = big_stream(200_000, b"0123456789abcdef");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hammer"))
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
    let out = assert_cmd::Command::cargo_bin("hammer")
        .unwrap()
        .arg("mirror-dump")
        .write_stdin(stream)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stderr, b"");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("Record ")).count(),
        100
    );
}

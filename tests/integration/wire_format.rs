//! The writer against the spec's hex examples (wire-format.md §10) and the
//! real fixture streams: byte-identical encoding, lossless decoding.

use std::fs;

use crate::common::*;
use hammer_mirror::ondisk::{rectype, BaseElm, HammerUuid, LeafElm, PseudofsData};
use hammer_mirror::wire::crc::crc32c;
use hammer_mirror::wire::{mrec_type, Mrecord, MrecordReader, RawRecord};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn pfsd() -> Mrecord<'static> {
    let mut p = PseudofsData {
        sync_beg_tid: 1,
        sync_end_tid: 0x00000001061a8ba0,
        shared_uuid: HammerUuid::parse("01234567-89ab-cdef-0123-456789abcdef").unwrap(),
        unique_uuid: HammerUuid::parse("fedcba98-7654-3210-aabb-001122334455").unwrap(),
        prune_min: 86400,
        ..Default::default()
    };
    p.set_label(b"test");
    Mrecord::Pfsd {
        version: 1,
        pfsd: p,
    }
}

const DATA16: &[u8] = b"0123456789abcdef";

/// A DATA leaf with the field values of the spec's examples.
fn example_leaf(obj_id: i64, key: i64, create_tid: u64, data_crc: u32) -> LeafElm {
    LeafElm {
        base: BaseElm {
            obj_id,
            key,
            create_tid,
            delete_tid: 0,
            rec_type: rectype::DATA,
            obj_type: 2,
            btype: b'R',
            localization: 2,
        },
        create_ts: 0x5a5a5a5a,
        delete_ts: 0,
        data_offset: 0xa000000000000000,
        data_len: 16,
        data_crc,
    }
}

fn pass() -> Mrecord<'static> {
    Mrecord::Pass {
        leaf: LeafElm {
            base: BaseElm {
                obj_id: 0x0000000100000002,
                key: 0,
                create_tid: 0x00000001000000a0,
                delete_tid: 0x0000000106000000,
                rec_type: rectype::INODE,
                obj_type: 1,
                btype: b'R',
                localization: 1,
            },
            create_ts: 0x5a5a5a5a,
            delete_ts: 0,
            data_offset: 0xa000000000000000,
            data_len: 128,
            data_crc: 0x12345678,
        },
    }
}

fn skip() -> Mrecord<'static> {
    Mrecord::Skip {
        beg: BaseElm {
            obj_id: 0x100000003,
            key: 0,
            create_tid: 1,
            rec_type: 1,
            localization: 1,
            ..Default::default()
        },
        end: BaseElm {
            obj_id: 0x100000009,
            key: 0x7fffffffffffffff,
            create_tid: 0xffffffffffffffff,
            rec_type: 0x11,
            localization: 2,
            ..Default::default()
        },
    }
}

fn rec16() -> Mrecord<'static> {
    Mrecord::Rec {
        rtype: mrec_type::REC,
        leaf: example_leaf(0x0000000100000001, 0x10, 0x0000000106000000, crc32c(DATA16)),
        data: DATA16,
    }
}

/// Encodes, compares with the spec's bytes, and decodes back.
fn check(rec: Mrecord<'_>, want: &[u8]) {
    let bytes = rec.to_vec();
    assert_eq!(bytes, want, "{rec:?}");
    let raw = RawRecord::new(&bytes[..rec.rec_size() as usize]).unwrap();
    assert_eq!(raw.decode().unwrap(), rec);
}

#[test]
fn spec_10_1_sync_and_term() {
    check(
        Mrecord::Sync { tid: 1 },
        &hex("72 72 d9 4d 65 d1 23 b6 18 00 00 00 04 00 00 00 01 00 00 00 00 00 00 00"),
    );
    check(
        Mrecord::Term { tid: 1 },
        &hex("72 72 d9 4d 95 03 bd c1 18 00 00 00 07 00 00 00 01 00 00 00 00 00 00 00"),
    );
}

#[test]
fn spec_4_3_head_only_term() {
    let want = hex("72 72 d9 4d fb d6 4e 84 10 00 00 00 07 00 00 00");
    let mut r = MrecordReader::new(&want[..]);
    let rec = r.read_mrecord().unwrap().unwrap();
    assert_eq!(rec.rec_type(), mrec_type::TERM);
    assert_eq!(rec.rec_size(), 16);
}

#[test]
fn spec_10_2_update() {
    check(
        Mrecord::Update {
            tid: 0x00000001061a8ba0,
        },
        &hex("72 72 d9 4d c8 d2 fc bb 18 00 00 00 03 00 00 00 a0 8b 1a 06 01 00 00 00"),
    );
}

#[test]
fn spec_10_3_pfsd() {
    let mut want = vec![0u8; 320];
    let head = hex("72 72 d9 4d f6 b9 5c d0 3c 01 00 00 02 00 00 00
         01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         01 00 00 00 00 00 00 00 a0 8b 1a 06 01 00 00 00
         00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         67 45 23 01 ab 89 ef cd 01 23 45 67 89 ab cd ef
         98 ba dc fe 54 76 10 32 aa bb 00 11 22 33 44 55
         00 00 00 00 00 00 00 00 74 65 73 74 00 00 00 00");
    want[..head.len()].copy_from_slice(&head);
    want[0xf0..0x100].copy_from_slice(&hex("00 00 00 00 80 51 01 00 00 00 00 00 00 00 00 00"));
    check(pfsd(), &want);
}

#[test]
fn spec_10_4_rec() {
    check(
        rec16(),
        &hex("72 72 d9 4d 14 50 c7 29 60 00 00 00 01 00 00 00
             01 00 00 00 01 00 00 00 10 00 00 00 00 00 00 00
             00 00 00 06 01 00 00 00 00 00 00 00 00 00 00 00
             10 00 02 52 02 00 00 00 5a 5a 5a 5a 00 00 00 00
             00 00 00 00 00 00 00 a0 10 00 00 00 9e 11 d3 42
             30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66"),
    );
}

#[test]
fn spec_10_5_padding() {
    let mut leaf = example_leaf(0x0000000100000024, 5, 0x0000000106000000, 0x3610a686);
    leaf.create_ts = 0;
    leaf.data_len = 5;
    check(
        Mrecord::Rec {
            rtype: mrec_type::REC,
            leaf,
            data: b"hello",
        },
        &hex("72 72 d9 4d c8 2f 1c 0c 55 00 00 00 01 00 00 00
             24 00 00 00 01 00 00 00 05 00 00 00 00 00 00 00
             00 00 00 06 01 00 00 00 00 00 00 00 00 00 00 00
             10 00 02 52 02 00 00 00 00 00 00 00 00 00 00 00
             00 00 00 00 00 00 00 a0 05 00 00 00 86 a6 10 36
             68 65 6c 6c 6f 00 00 00"),
    );
}

#[test]
fn spec_10_6_pass() {
    check(
        pass(),
        &hex("72 72 d9 4d 29 af 44 a8 50 00 00 00 06 00 00 00
             02 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00
             a0 00 00 00 01 00 00 00 00 00 00 06 01 00 00 00
             01 00 01 52 01 00 00 00 5a 5a 5a 5a 00 00 00 00
             00 00 00 00 00 00 00 a0 80 00 00 00 78 56 34 12"),
    );
}

#[test]
fn spec_10_7_skip() {
    check(
        skip(),
        &hex("72 72 d9 4d 2f 8a db 31 60 00 00 00 05 00 00 00
             03 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00
             01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
             01 00 00 00 01 00 00 00 09 00 00 00 01 00 00 00
             ff ff ff ff ff ff ff 7f ff ff ff ff ff ff ff ff
             00 00 00 00 00 00 00 00 11 00 00 00 02 00 00 00"),
    );
}

/// spec: wire-format.md §10, "the 960-byte stream".
#[test]
fn writer_reproduces_example_stream() {
    let s = stream(&[
        pfsd(),
        pfsd(),
        rec16(),
        pass(),
        skip(),
        Mrecord::Sync { tid: 1 },
        Mrecord::Term { tid: 1 },
    ]);
    assert_eq!(s.len(), 960);
    assert_eq!(s, fs::read(fixture("example.stream")).unwrap());
}

/// The field values of fixtures/README.md reproduce batches.stream exactly.
#[test]
fn writer_reproduces_batches_stream() {
    let flagged = Mrecord::Rec {
        rtype: mrec_type::REC | mrec_type::CRC_ERROR | mrec_type::DATA_CRC_BAD,
        leaf: example_leaf(0x0000000100000004, 0x4000, 0x0000000106000010, 0xdeadbeef),
        data: DATA16,
    };
    let unflagged = Mrecord::Rec {
        rtype: mrec_type::REC,
        leaf: example_leaf(0x0000000100000005, 0x4000, 0x0000000106000010, 0xdeadbeef),
        data: DATA16,
    };
    let classic = Mrecord::Rec {
        rtype: mrec_type::REC,
        leaf: example_leaf(
            0x0000000100000006,
            0x4000,
            0x0000000106000010,
            hammer_mirror::wire::crc::crc32(DATA16),
        ),
        data: DATA16,
    };
    let s = stream(&[
        pfsd(),
        pfsd(),
        rec16(),
        pass(),
        skip(),
        flagged,
        unflagged,
        classic,
        Mrecord::Sync { tid: 1 },
        pfsd(),
        pfsd(),
        Mrecord::Idle { tid: 1 },
        Mrecord::Term { tid: 1 },
    ]);
    assert_eq!(s, fs::read(fixture("batches.stream")).unwrap());
}

/// Every record of every well-formed fixture decodes and re-encodes to the
/// same bytes.
#[test]
fn fixture_records_reencode_identically() {
    for name in ["batches.stream", "example.stream", "inode-record.stream"] {
        let s = fs::read(fixture(name)).unwrap();
        let mut out = Vec::new();
        for rec in read_records(&s).unwrap() {
            let raw = RawRecord::new(&rec).unwrap();
            raw.decode().unwrap().encode_into(&mut out);
        }
        assert_eq!(out, s, "{name}");
    }
}

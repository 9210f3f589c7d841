//! Property tests of the codec: valid record sequences round-trip through
//! the writer and both readers; arbitrary and corrupted input never panics
//! and a corrupted covered byte always yields a reader error.

use crate::common::*;
use hammer_mirror::ondisk::{BaseElm, HammerUuid, LeafElm, PseudofsData};
use hammer_mirror::wire::crc::{leaf_data_crc, DataCrcKind};
use hammer_mirror::wire::{doalign, mrec_type, Mrecord};
use proptest::prelude::*;

/// An owned record, so strategies can produce data payloads.
#[derive(Clone, Debug)]
enum Owned {
    Rec(u32, LeafElm, Vec<u8>),
    Pass(LeafElm),
    Skip(BaseElm, BaseElm),
    Pfsd(Box<PseudofsData>),
    Update(u64),
    Sync(u64),
    Term(u64),
    Idle(u64),
}

impl Owned {
    fn as_mrecord(&self) -> Mrecord<'_> {
        match self {
            Owned::Rec(t, l, d) => Mrecord::Rec {
                rtype: *t,
                leaf: *l,
                data: d,
            },
            Owned::Pass(l) => Mrecord::Pass { leaf: *l },
            Owned::Skip(b, e) => Mrecord::Skip { beg: *b, end: *e },
            Owned::Pfsd(p) => Mrecord::Pfsd {
                version: 1,
                pfsd: **p,
            },
            Owned::Update(t) => Mrecord::Update { tid: *t },
            Owned::Sync(t) => Mrecord::Sync { tid: *t },
            Owned::Term(t) => Mrecord::Term { tid: *t },
            Owned::Idle(t) => Mrecord::Idle { tid: *t },
        }
    }
}

fn base_elm() -> impl Strategy<Value = BaseElm> {
    (
        any::<i64>(),
        any::<i64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
    )
        .prop_map(
            |(obj_id, key, create_tid, delete_tid, rec_type, obj_type, btype, localization)| {
                BaseElm {
                    obj_id,
                    key,
                    create_tid,
                    delete_tid,
                    rec_type,
                    obj_type,
                    btype,
                    localization,
                }
            },
        )
}

fn leaf_elm() -> impl Strategy<Value = LeafElm> {
    (
        base_elm(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<i32>(),
        any::<u32>(),
    )
        .prop_map(
            |(base, create_ts, delete_ts, data_offset, data_len, data_crc)| LeafElm {
                base,
                create_ts,
                delete_ts,
                data_offset,
                data_len,
                data_crc,
            },
        )
}

fn pfsd() -> impl Strategy<Value = PseudofsData> {
    (
        any::<[u64; 5]>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<i32>(),
        proptest::collection::vec(1u8..=255, 0..70),
        any::<[i32; 5]>(),
    )
        .prop_map(|(tids, su, uu, flags, label, r)| {
            let mut p = PseudofsData {
                sync_low_tid: tids[0],
                sync_beg_tid: tids[1],
                sync_end_tid: tids[2],
                sync_beg_ts: tids[3],
                sync_end_ts: tids[4],
                shared_uuid: HammerUuid(su),
                unique_uuid: HammerUuid(uu),
                mirror_flags: flags,
                prune_min: r[0],
                prune_max: r[1],
                reserved02: r[2],
                ..Default::default()
            };
            p.set_label(&label);
            p
        })
}

/// A REC whose data_len matches its payload and whose data CRC is valid
/// in one of the two variants (or flagged bad).
fn rec() -> impl Strategy<Value = Owned> {
    (
        leaf_elm(),
        proptest::collection::vec(any::<u8>(), 0..600),
        any::<bool>(),
        prop_oneof![
            Just(0u32),
            Just(mrec_type::CRC_ERROR | mrec_type::DATA_CRC_BAD)
        ],
    )
        .prop_map(|(mut leaf, data, c, flags)| {
            leaf.data_len = data.len() as i32;
            let kind = if c {
                DataCrcKind::Crc32c
            } else {
                DataCrcKind::Crc32
            };
            leaf.data_crc = leaf_data_crc(kind, leaf.base.rec_type, &data);
            Owned::Rec(mrec_type::REC | flags, leaf, data)
        })
}

fn record() -> impl Strategy<Value = Owned> {
    prop_oneof![
        4 => rec(),
        1 => leaf_elm().prop_map(Owned::Pass),
        1 => (base_elm(), base_elm()).prop_map(|(b, e)| Owned::Skip(b, e)),
        1 => pfsd().prop_map(|p| Owned::Pfsd(Box::new(p))),
        1 => any::<u64>().prop_map(Owned::Update),
        1 => any::<u64>().prop_map(Owned::Sync),
        1 => any::<u64>().prop_map(Owned::Term),
        1 => any::<u64>().prop_map(Owned::Idle),
    ]
}

/// What a batch carries between its PFSD and its SYNC.
fn bulk() -> impl Strategy<Value = Owned> {
    prop_oneof![
        4 => rec(),
        1 => leaf_elm().prop_map(Owned::Pass),
        1 => (base_elm(), base_elm()).prop_map(|(b, e)| Owned::Skip(b, e)),
    ]
}

/// The dump's first line of a bulk record: its kind and key.
fn first_line(r: &Owned) -> String {
    let (kind, b) = match r {
        Owned::Rec(_, l, _) => ("Record", &l.base),
        Owned::Pass(l) => ("Pass  ", &l.base),
        Owned::Skip(b, _) => ("Skip  ", b),
        _ => unreachable!("not a bulk record"),
    };
    format!(
        "{kind} lo={:08x} obj={:016x} key={:016x} rt={:02x}",
        b.localization, b.obj_id, b.key, b.rec_type
    )
}

fn encode(recs: &[Owned]) -> Vec<u8> {
    stream(&recs.iter().map(Owned::as_mrecord).collect::<Vec<_>>())
}

/// Offsets of bytes covered by a head CRC or the signature (not padding).
fn covered_bytes(recs: &[Owned]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut at = 0;
    for r in recs {
        let m = r.as_mrecord();
        v.extend(at..at + m.rec_size() as usize);
        at += doalign(m.rec_size());
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_sequences_round_trip(recs in proptest::collection::vec(record(), 0..40)) {
        let bytes = encode(&recs);
        let back = read_records(&bytes).unwrap();
        prop_assert_eq!(back.len(), recs.len());
        for (raw, want) in back.iter().zip(&recs) {
            let rec = hammer_mirror::wire::RawRecord::new(raw).unwrap();
            prop_assert_eq!(rec.decode().unwrap(), want.as_mrecord());
        }
    }

    /// A stream as mirror-read writes it (batches, each a PFSD, bulk
    /// records and a SYNC, then TERM) is dumped whole: one entry per bulk
    /// record, in order, each with its own key, and the dump ends well.
    #[test]
    fn every_record_of_a_stream_is_dumped_in_order(
        head in pfsd(),
        batches in proptest::collection::vec(proptest::collection::vec(bulk(), 0..16), 1..4),
        tid in any::<u64>(),
    ) {
        let mut recs = Vec::new();
        for b in &batches {
            recs.push(Owned::Pfsd(Box::new(head)));
            recs.extend(b.iter().cloned());
            recs.push(Owned::Sync(tid));
        }
        recs.push(Owned::Term(tid));
        let (mut out, mut diag) = (Vec::new(), Vec::new());
        let r = hammer_mirror::mirror::dump::mirror_dump(&encode(&recs)[..], &mut out, &mut diag, false);
        prop_assert!(r.is_ok(), "{:?}: {}", r, String::from_utf8_lossy(&diag));
        let text = String::from_utf8(out).unwrap();
        let dumped: Vec<&str> = text
            .lines()
            .filter(|l| ["Record ", "Pass ", "Skip "].iter().any(|k| l.starts_with(k)))
            .collect();
        let want: Vec<String> = batches.iter().flatten().map(first_line).collect();
        prop_assert_eq!(dumped.len(), want.len());
        for (got, want) in dumped.iter().zip(&want) {
            prop_assert!(got.starts_with(want.as_str()), "{} is not {}", got, want);
        }
    }

    /// Whatever the bytes, the readers and the dump end without a panic;
    /// what the reader accepts is exactly the bytes it was given, record
    /// by record.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(recs) = read_records(&bytes) {
            let again: Vec<u8> = recs
                .iter()
                .flat_map(|r| {
                    let mut r = r.clone();
                    r.resize(doalign(r.len() as u32), 0);
                    r
                })
                .collect();
            prop_assert_eq!(&again[..], &bytes[..again.len()]);
        }
        let _ = hammer_mirror::mirror::dump::mirror_dump(&bytes[..], std::io::sink(), std::io::sink(), false);
        let _ = hammer_mirror::mirror::dump::mirror_dump(&bytes[..], std::io::sink(), std::io::sink(), true);
    }

    #[test]
    fn corrupting_a_covered_byte_is_detected(
        recs in proptest::collection::vec(record(), 1..12),
        pick in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut bytes = encode(&recs);
        let covered = covered_bytes(&recs);
        let at = covered[pick.index(covered.len())];
        bytes[at] ^= flip;
        let _ = hammer_mirror::mirror::dump::mirror_dump(&bytes[..], std::io::sink(), std::io::sink(), false);
        prop_assert!(read_records(&bytes).is_err(), "corruption at {} went unnoticed", at);
    }
}

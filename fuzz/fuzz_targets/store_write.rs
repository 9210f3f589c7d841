//! Fuzz target for mirror-write into the embedded store: an arbitrary
//! stream, its records' CRCs made right first unless the input says not
//! to (so that mutated leaves and payloads get past the reader to the
//! store), written with `-y` into a new store; whatever the outcome, the
//! store must stay sound: SQLite finds nothing wrong, the slave reads
//! back whole (every payload where its row says), a second mirror-write of
//! the same stream ends as cleanly, and nothing panics.
//!
//! Run from the crate root: `cargo +nightly fuzz run store_write --
//! -max_total_time=600`, seeded with streams (tests/fixtures/*.stream,
//! and `hammer mirror-read` output of small PFSes). The stores are made
//! under $TMPDIR; a tmpfs there (`TMPDIR=/dev/shm`) makes runs faster.
#![no_main]

use std::io;

use hammer_mirror::mirror::read::{mirror_read, ReadOptions};
use hammer_mirror::mirror::write::{mirror_write, WriteOptions};
use hammer_mirror::patharg::PathArg;
use hammer_mirror::pfs::store::Store;
use hammer_mirror::wire::crc::{crc32, leaf_data_crc, DataCrcKind};
use hammer_mirror::wire::{doalign, mrec_type, CRC_OFF, HEAD_SIZE, MAX_REC_SIZE, MIN_REC_SIZE};
use libfuzzer_sys::fuzz_target;

/// Offsets in a REC: the leaf after the 16-byte head, its `data_crc`
/// (leaf offset 60) and `data_len` (56), and the payload after the leaf.
const LEAF: usize = HEAD_SIZE;
const DATA_LEN: usize = LEAF + 56;
const DATA_CRC: usize = LEAF + 60;
const REC_TYPE: usize = LEAF + 32;
const PAYLOAD: usize = LEAF + 64;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Makes the head CRC of every record the stream frames right, and, with
/// `payloads`, each REC's data_crc that of its payload; stops at the
/// first head that frames nothing (the rest goes as it is).
fn fix_crcs(stream: &mut [u8], payloads: bool) {
    let mut at = 0;
    while at + HEAD_SIZE <= stream.len() {
        // The head: signature, rec_crc, rec_size, rec_type (wire-format.md).
        let (Some(size), Some(kind)) = (u32_at(stream, at + 8), u32_at(stream, at + 12)) else {
            return;
        };
        if !(MIN_REC_SIZE..=MAX_REC_SIZE).contains(&size) || at + size as usize > stream.len() {
            return;
        }
        let rec = &mut stream[at..at + size as usize];
        if payloads && kind & mrec_type::LOMASK == mrec_type::REC && rec.len() > PAYLOAD {
            let rec_type = u16::from_le_bytes([rec[REC_TYPE], rec[REC_TYPE + 1]]);
            let len = u32_at(rec, DATA_LEN).unwrap_or(0) as usize;
            if let Some(data) = rec.get(PAYLOAD..PAYLOAD + len) {
                let crc = leaf_data_crc(DataCrcKind::Crc32c, rec_type, data);
                rec[DATA_CRC..DATA_CRC + 4].copy_from_slice(&crc.to_le_bytes());
            }
        }
        let crc = crc32(&rec[CRC_OFF..]);
        rec[4..8].copy_from_slice(&crc.to_le_bytes());
        at += doalign(size);
    }
}

/// What the store holds must read back: SQLite's check, then every PFS
/// read whole through mirror-read.
fn assert_sound(root: &std::path::Path) {
    let store = Store::open(root).expect("the store opens");
    let problems = store.quick_check().expect("quick_check runs");
    assert!(problems.is_empty(), "SQLite finds: {problems:?}");
    for id in store.pfs_ids().expect("PFS list") {
        let path = root.join(format!("@@-1:{id:05}"));
        let r = mirror_read(
            &PathArg::from(path.as_path()),
            &ReadOptions {
                quiet: true,
                // The command line's default (-S 4g): 0 would cut the
                // read into a million chunks, as the original does.
                splitup: 4 << 30,
                ..ReadOptions::default()
            },
            io::empty(),
            io::sink(),
            &mut io::sink(),
        );
        if let Err(e) = r {
            panic!("PFS#{id} does not read back: {e}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let mut stream = stream.to_vec();
    if ctl & 1 == 0 {
        fix_crcs(&mut stream, ctl & 2 == 0);
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path().join("st");
    Store::create(&root).expect("a new store");
    let slave = PathArg::from(root.join("s").as_path());
    let o = WriteOptions {
        yes: true,
        quiet: true,
        ..WriteOptions::default()
    };
    // Refused or not, what it left must be sound.
    let _ = mirror_write(&slave, &o, &stream[..], io::sink(), &mut io::sink());
    assert_sound(&root);
    // Sent again (a rerun after a cut link): it must end as cleanly.
    let _ = mirror_write(&slave, &o, &stream[..], io::sink(), &mut io::sink());
    assert_sound(&root);
});

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
use hammer_mirror::ondisk::LeafElm;
use hammer_mirror::patharg::PathArg;
use hammer_mirror::pfs::store::Store;
use hammer_mirror::wire::crc::{crc32, leaf_data_crc, DataCrcKind};
use hammer_mirror::wire::{doalign, mrec_type, MrecordReader, CRC_OFF, HEAD_SIZE, REC_HEAD_SIZE};
use libfuzzer_sys::fuzz_target;

/// The stream with the head CRC of every record the reader frames made
/// right, and, with `payloads`, each REC's data_crc that of its payload;
/// from the first bytes it does not frame on, the rest as it is.
fn fix_crcs(stream: &[u8], payloads: bool) -> Vec<u8> {
    let mut r = MrecordReader::new(stream);
    let mut out = Vec::with_capacity(stream.len());
    loop {
        let at = out.len();
        let Ok(Some(rec)) = r.frame_mrecord() else {
            out.extend_from_slice(&stream[at..]);
            return out;
        };
        let mut b = rec.bytes().to_vec();
        let leaf = rec
            .leaf()
            .filter(|_| payloads && rec.rec_type() & mrec_type::LOMASK == mrec_type::REC);
        if let Some(mut leaf) = leaf {
            let len = usize::try_from(leaf.data_len).unwrap_or(usize::MAX);
            if let Some(data) = b.get(REC_HEAD_SIZE as usize..).and_then(|d| d.get(..len)) {
                leaf.data_crc = leaf_data_crc(DataCrcKind::Crc32c, leaf.base.rec_type, data);
                let mut e = [0u8; LeafElm::SIZE];
                leaf.encode(&mut e);
                b[HEAD_SIZE..HEAD_SIZE + LeafElm::SIZE].copy_from_slice(&e);
            }
        }
        // rec_crc, the head's second word, covers [CRC_OFF, rec_size).
        let crc = crc32(&b[CRC_OFF..]);
        b[4..8].copy_from_slice(&crc.to_le_bytes());
        // The padding to the next record as it was.
        let padded = doalign(rec.rec_size());
        out.extend_from_slice(&b);
        out.extend_from_slice(&stream[at + b.len()..at + padded]);
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
    let stream = if ctl & 1 == 0 {
        fix_crcs(stream, ctl & 2 == 0)
    } else {
        stream.to_vec()
    };
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

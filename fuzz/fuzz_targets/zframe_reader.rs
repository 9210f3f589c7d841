//! Fuzz target for the `-z` compressed-stream reader: arbitrary bytes (a
//! hostile peer, a damaged file) through ZReader in pieces the input
//! chooses, and valid frames of arbitrary content back through it: it may
//! refuse, never panic, hang, or allocate beyond one frame's bounds; what
//! a valid stream carried comes back whole.
//!
//! Run from the crate root: `cargo +nightly fuzz run zframe_reader --
//! -max_total_time=600`.
#![no_main]

use std::io::{Read, Write};

use hammer_mirror::wire::zframe::{ZReader, ZWriter, MAGIC};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 64) + 1;
    // Raw bytes, with and without the header in front.
    for input in [rest.to_vec(), [&MAGIC[..], rest].concat()] {
        if let Ok(mut r) = ZReader::new(&input[..]) {
            let mut buf = vec![0u8; step];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
        }
    }
    // Valid frames round-trip, flushed every `step` bytes.
    let mut w = ZWriter::new(Vec::new(), 1).expect("compressor");
    for piece in rest.chunks(step * 97) {
        w.write_all(piece).expect("write");
        w.flush().expect("flush");
    }
    w.flush().expect("flush");
    let z = w.get_ref().clone();
    let mut back = Vec::new();
    ZReader::new(&z[..])
        .expect("decompressor")
        .read_to_end(&mut back)
        .expect("a valid stream reads back");
    assert_eq!(back, rest);
});

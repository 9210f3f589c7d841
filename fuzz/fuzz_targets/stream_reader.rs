//! Fuzz target for the stream readers: arbitrary bytes through mirror-dump
//! (both modes) and through MrecordReader's two readers interleaved as the
//! input chooses; nothing may panic, hang or lose track of the offset.
//!
//! Run from the crate root: `cargo +nightly fuzz run stream_reader --
//! -max_total_time=600` (seed it with tests/fixtures/*.stream).
#![no_main]

use std::io::{self, Read};

use hammer_mirror::mirror::dump::mirror_dump;
use hammer_mirror::wire::reader::ReadErrorKind;
use hammer_mirror::wire::{doalign, MrecordReader, HEAD_SIZE};
use libfuzzer_sys::fuzz_target;

/// A reader that hands out the stream in pieces of `step` bytes at most,
/// so the readers' refill paths see short reads.
struct Chunked<'a> {
    rest: &'a [u8],
    step: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.rest.len().min(buf.len()).min(self.step);
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

/// Output and diagnostics of one mirror-dump run, and its error text.
fn dump(input: impl Read, header: bool) -> (Vec<u8>, Vec<u8>, String) {
    let mut out = Vec::new();
    let mut diag = Vec::new();
    let r = mirror_dump(input, &mut out, &mut diag, header);
    let err = r.err().map(|e| e.to_string()).unwrap_or_default();
    (out, diag, err)
}

fuzz_target!(|data: &[u8]| {
    // The two modes over the whole input, as the binary runs them.
    let _ = mirror_dump(data, io::sink(), io::sink(), false);
    let _ = mirror_dump(data, io::sink(), io::sink(), true);

    // Control bytes up front: read step, batch limit, op pattern.
    let Some((ctl, stream)) = data.split_first_chunk::<4>() else {
        return;
    };
    let step = usize::from(ctl[0]) + 1;

    // How the input arrives must not change what is printed.
    let whole = dump(stream, false);
    let chunked = dump(Chunked { rest: stream, step }, false);
    assert_eq!(whole, chunked, "output depends on read sizes");

    let mut r = MrecordReader::new(Chunked { rest: stream, step });
    r.set_batch_limit(usize::from(ctl[1]) * 64);
    let mut ops = u16::from_le_bytes([ctl[2], ctl[3]]);
    let mut last = 0u64;
    // A stream that starts with the -z header ends there, its rest unread
    // (the reader says to add -z); any other ends at its last byte.
    let mut compressed = false;
    // The single reader consumes at least one byte per call or ends the
    // stream, and a batch call that takes nothing is followed by a single
    // call, so this loop ends; the bound makes a hang a failure.
    for _ in 0..=2 * stream.len() + 2 {
        let batch_turn = ops & 1 == 1;
        ops = ops.rotate_right(1);
        let mut took_batch = false;
        if batch_turn {
            let before = r.offset();
            if let Ok(b) = r.read_mrecords(&mut |_| ()) {
                let mut framed = 0usize;
                for rec in b.records() {
                    let _ = rec.decode();
                    framed += doalign(rec.rec_size());
                }
                assert_eq!(framed, b.len(), "batch framing");
                took_batch = !b.is_empty();
                assert_eq!(r.offset(), before + framed as u64, "batch offset");
            }
        }
        if !took_batch {
            let before = r.offset();
            match r.read_mrecord() {
                Ok(None) => {
                    if !compressed {
                        assert_eq!(r.offset(), stream.len() as u64, "EOF before the end");
                    }
                    return;
                }
                Ok(Some(rec)) => {
                    let _ = rec.decode();
                    assert!(rec.rec_size() as usize >= HEAD_SIZE);
                    let size = doalign(rec.rec_size()) as u64;
                    assert_eq!(r.offset(), before + size, "record offset");
                }
                Err(e) => {
                    assert!(e.offset == before && r.offset() > before);
                    compressed |= matches!(e.kind, ReadErrorKind::Compressed);
                }
            }
        }
        assert!(r.offset() >= last && r.offset() <= stream.len() as u64);
        last = r.offset();
    }
    panic!("reader made no progress");
});

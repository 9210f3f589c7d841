//! The compressed stream of `-z` (this tool's own format, never sent
//! without `-z`): a header, then frames each holding a run of the HAMMER
//! stream, zstd-compressed or stored when compression does not pay. A
//! frame ends at every flush, which the stream's writers do at each
//! record they wait on and at SYNC: a lost link loses at most the frame
//! under way.
//!
//! Layout, little-endian: the header is the 8 bytes `MAGIC`; each frame is
//! a `FrameHeadLe` (raw_len, stored_len with `STORED` as its top bit,
//! crc32c of the raw bytes) followed by stored_len bytes. The stream ends
//! after a whole frame.

use std::io::{self, Read, Write};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The header: "HMZSTD", a NUL, format version 1.
pub const MAGIC: [u8; 8] = *b"HMZSTD\x00\x01";
/// The most stream bytes one frame carries.
pub const FRAME_MAX: usize = 1 << 20;
/// stored_len's top bit: the bytes are the raw stream, not a zstd frame.
pub const STORED: u32 = 1 << 31;
/// The zstd level of `-z` given `count` times: 3 (zstd's default), 9,
/// then 19 (above 19 zstd wants far more memory to decompress); none
/// without `-z`.
pub fn zstd_level(count: u32) -> Option<i32> {
    match count {
        0 => None,
        1 => Some(DEFAULT_LEVEL),
        2 => Some(9),
        _ => Some(19),
    }
}

/// `-z`'s level.
pub const DEFAULT_LEVEL: i32 = 3;
/// A frame smaller than its raw bytes by less than 1/32 is stored.
const MIN_GAIN_SHIFT: u32 = 5;
/// After a frame that did not pay, up to this many frames are stored
/// without trying (doubling from 1): random data costs little.
const MAX_SKIP: u32 = 16;

/// One frame's head.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct FrameHeadLe {
    pub raw_len: [u8; 4],
    pub stored_len: [u8; 4],
    pub crc: [u8; 4],
}

pub const FRAME_HEAD_SIZE: usize = std::mem::size_of::<FrameHeadLe>();

/// The largest stored_len a frame may have: zstd's bound for FRAME_MAX.
fn stored_max() -> usize {
    zstd::zstd_safe::compress_bound(FRAME_MAX)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("compressed stream: {msg}"),
    )
}

/// Compresses what is written to it into frames on `inner`.
pub struct ZWriter<W: Write> {
    inner: W,
    compressor: zstd::bulk::Compressor<'static>,
    raw: Vec<u8>,
    /// A compressed frame, head first.
    out: Vec<u8>,
    header_sent: bool,
    /// Frames still to store without trying, and the next such run.
    skip: u32,
    next_skip: u32,
}

impl<W: Write> ZWriter<W> {
    pub fn new(inner: W, level: i32) -> io::Result<Self> {
        Ok(ZWriter {
            inner,
            compressor: zstd::bulk::Compressor::new(level)?,
            raw: Vec::with_capacity(FRAME_MAX),
            out: Vec::new(),
            header_sent: false,
            skip: 0,
            next_skip: 1,
        })
    }

    /// Sends what is buffered as one frame.
    fn frame(&mut self) -> io::Result<()> {
        if !self.header_sent {
            self.inner.write_all(&MAGIC)?;
            self.header_sent = true;
        }
        if self.raw.is_empty() {
            return Ok(());
        }
        let raw_len = self.raw.len();
        if self.out.len() < FRAME_HEAD_SIZE + stored_max() {
            self.out.resize(FRAME_HEAD_SIZE + stored_max(), 0);
        }
        let mut stored = None;
        if self.skip > 0 {
            self.skip -= 1;
        } else {
            let n = self
                .compressor
                .compress_to_buffer(&self.raw, &mut self.out[FRAME_HEAD_SIZE..])?;
            if n < raw_len - (raw_len >> MIN_GAIN_SHIFT) {
                stored = Some(n as u32);
                self.next_skip = 1;
            } else {
                self.skip = self.next_skip;
                self.next_skip = (self.next_skip * 2).min(MAX_SKIP);
            }
        }
        let head = |stored_len: u32| FrameHeadLe {
            raw_len: (raw_len as u32).to_le_bytes(),
            stored_len: stored_len.to_le_bytes(),
            crc: crc32c::crc32c(&self.raw).to_le_bytes(),
        };
        match stored {
            Some(n) => {
                self.out[..FRAME_HEAD_SIZE].copy_from_slice(head(n).as_bytes());
                self.inner
                    .write_all(&self.out[..FRAME_HEAD_SIZE + n as usize])?;
            }
            // Not copied: the head, then the raw bytes as they are.
            None => {
                self.inner
                    .write_all(head(raw_len as u32 | STORED).as_bytes())?;
                self.inner.write_all(&self.raw)?;
            }
        }
        self.raw.clear();
        Ok(())
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: Write> Write for ZWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(FRAME_MAX - self.raw.len());
        self.raw.extend_from_slice(&buf[..n]);
        if self.raw.len() == FRAME_MAX {
            self.frame()?;
        }
        Ok(n)
    }

    /// Ends the frame under way: the peer is waiting for what it holds.
    fn flush(&mut self) -> io::Result<()> {
        self.frame()?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for ZWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Reads the HAMMER stream out of a compressed one, checking every frame.
pub struct ZReader<R: Read> {
    inner: R,
    decompressor: zstd::bulk::Decompressor<'static>,
    raw: Vec<u8>,
    pos: usize,
    stored: Vec<u8>,
    header_read: bool,
    /// A frame failed: nothing after it is read (its head's lengths, or
    /// the bytes that follow it, cannot be trusted to find another), so
    /// the stream ends there.
    failed: bool,
    /// Compressed-stream offset of the next frame, for messages.
    offset: u64,
}

impl<R: Read> ZReader<R> {
    pub fn new(inner: R) -> io::Result<Self> {
        Ok(ZReader {
            inner,
            decompressor: zstd::bulk::Decompressor::new()?,
            raw: Vec::with_capacity(FRAME_MAX),
            pos: 0,
            stored: Vec::new(),
            header_read: false,
            failed: false,
            offset: 0,
        })
    }

    /// Reads exactly `buf.len()` bytes; false on EOF before the first.
    /// `what` at byte `at` is what an EOF after the first cuts.
    fn read_exact_or_eof(&mut self, buf: &mut [u8], what: &str, at: u64) -> io::Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => return Err(invalid(format!("truncated {what} at byte {at}"))),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.offset += got as u64;
        Ok(true)
    }

    /// Reads and checks the next frame; false at the end of the stream.
    /// After an error nothing of the bad frame is served, and the stream
    /// ends: a reader that goes on after the error (mirror-dump does) is
    /// not told of frames that the damage made up.
    fn next_frame(&mut self) -> io::Result<bool> {
        if self.failed {
            return Ok(false);
        }
        let r = self.read_frame();
        if !matches!(r, Ok(true)) {
            self.raw.clear();
            self.pos = 0;
            self.failed = r.is_err();
        }
        r
    }

    fn read_frame(&mut self) -> io::Result<bool> {
        if !self.header_read {
            let mut magic = [0u8; 8];
            if !self.read_exact_or_eof(&mut magic, "header", 0)? {
                return Ok(false);
            }
            if magic != MAGIC {
                return Err(invalid(
                    "no -z header: this is not a stream written with -z".into(),
                ));
            }
            self.header_read = true;
        }
        let at = self.offset;
        let mut head = FrameHeadLe::default();
        if !self.read_exact_or_eof(head.as_mut_bytes(), "frame head", at)? {
            return Ok(false);
        }
        let raw_len = u32::from_le_bytes(head.raw_len) as usize;
        let stored_word = u32::from_le_bytes(head.stored_len);
        let is_stored = stored_word & STORED != 0;
        let stored_len = (stored_word & !STORED) as usize;
        if raw_len == 0 || raw_len > FRAME_MAX {
            return Err(invalid(format!(
                "frame at byte {at} claims {raw_len} bytes (1 to {FRAME_MAX} allowed)"
            )));
        }
        if (is_stored && stored_len != raw_len) || stored_len > stored_max() {
            return Err(invalid(format!(
                "frame at byte {at} has an impossible length {stored_len}"
            )));
        }
        // A stored body is read where the raw bytes go, a compressed one
        // aside.
        let mut body = std::mem::take(if is_stored {
            &mut self.raw
        } else {
            &mut self.stored
        });
        body.resize(stored_len, 0);
        let whole = self.read_exact_or_eof(&mut body, "frame", at);
        if is_stored {
            self.raw = body;
        } else {
            self.stored = body;
        }
        if !whole? {
            return Err(invalid(format!("truncated frame at byte {at}")));
        }
        if !is_stored {
            self.raw.resize(raw_len, 0);
            let n = self
                .decompressor
                .decompress_to_buffer(&self.stored, &mut self.raw)
                .map_err(|e| invalid(format!("frame at byte {at} does not decompress: {e}")))?;
            if n != raw_len {
                return Err(invalid(format!(
                    "frame at byte {at} decompresses to {n} bytes, not {raw_len}"
                )));
            }
        }
        if crc32c::crc32c(&self.raw) != u32::from_le_bytes(head.crc) {
            return Err(invalid(format!("frame at byte {at} fails its CRC")));
        }
        self.pos = 0;
        Ok(true)
    }
}

impl<R: Read> Read for ZReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pos == self.raw.len() && !self.next_frame()? {
            return Ok(0);
        }
        let n = buf.len().min(self.raw.len().saturating_sub(self.pos));
        buf[..n].copy_from_slice(&self.raw[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn compress(chunks: &[&[u8]], level: i32) -> Vec<u8> {
        let mut w = ZWriter::new(Vec::new(), level).unwrap();
        for c in chunks {
            w.write_all(c).unwrap();
            w.flush().unwrap();
        }
        drop_into(w)
    }

    fn drop_into(mut w: ZWriter<Vec<u8>>) -> Vec<u8> {
        w.flush().unwrap();
        std::mem::take(&mut w.inner)
    }

    fn decompress(z: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        ZReader::new(z)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn frame_head_layout() {
        assert_eq!(FRAME_HEAD_SIZE, 12);
        let h = FrameHeadLe {
            raw_len: 1u32.to_le_bytes(),
            stored_len: 2u32.to_le_bytes(),
            crc: 3u32.to_le_bytes(),
        };
        assert_eq!(h.as_bytes(), &[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
    }

    #[test]
    fn text_compresses_and_each_flush_ends_a_frame() {
        let text = b"hammer mirror stream ".repeat(5000);
        let z = compress(&[&text, b"SYNC"], DEFAULT_LEVEL);
        assert!(z.len() < text.len() / 10, "{} of {}", z.len(), text.len());
        assert_eq!(&z[..8], &MAGIC);
        let head = FrameHeadLe::read_from_bytes(&z[8..20]).unwrap();
        assert_eq!(u32::from_le_bytes(head.raw_len) as usize, text.len());
        assert_eq!(decompress(&z).unwrap(), [&text[..], b"SYNC"].concat());
    }

    #[test]
    fn random_data_is_stored_and_costs_twelve_bytes_a_frame() {
        let data = crate::rng::Rng(0x9e37_79b9_7f4a_7c15).bytes(3 * FRAME_MAX + 5);
        let z = compress(&[&data], 1);
        assert_eq!(z.len(), 8 + 4 * FRAME_HEAD_SIZE + data.len());
        assert_eq!(decompress(&z).unwrap(), data);
    }

    #[test]
    fn an_empty_stream_is_the_header_alone() {
        let z = compress(&[], DEFAULT_LEVEL);
        assert_eq!(z, MAGIC);
        assert_eq!(decompress(&z).unwrap(), b"");
        assert_eq!(decompress(b"").unwrap(), b"");
    }

    /// One bad frame head, one error: a read after it ends the stream
    /// instead of taking the bad frame's body for the next head.
    #[test]
    fn nothing_is_read_past_a_bad_frame() {
        let z = compress(&[&[7u8; 5000], &[8u8; 5000]], 3);
        let mut bad = z.clone();
        bad[8 + 4] ^= 0xff;
        let mut r = ZReader::new(&bad[..]).unwrap();
        let mut buf = [0u8; 100];
        let e = r.read(&mut buf).unwrap_err();
        assert!(e.to_string().contains("frame at byte 8"), "{e}");
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        assert_eq!(r.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn damage_is_named() {
        let text = b"abcdefgh".repeat(1000);
        let z = compress(&[&text], DEFAULT_LEVEL);
        let err = |z: &[u8]| decompress(z).unwrap_err().to_string();
        assert!(err(&z[..z.len() - 1]).contains("truncated frame at byte 8"));
        assert!(err(&z[..12]).contains("truncated frame head at byte 8"));
        assert!(err(b"\x72\x72\xd9\x4d....").contains("no -z header"));
        let mut bad = z.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(err(&bad).contains("frame at byte 8"));
        let mut crc = z.clone();
        crc[16] ^= 1;
        assert!(err(&crc).contains("fails its CRC"));
        let mut huge = z.clone();
        huge[8..12].copy_from_slice(&(FRAME_MAX as u32 + 1).to_le_bytes());
        assert!(err(&huge).contains("claims"));
        let mut stored = z;
        stored[12..16].copy_from_slice(&(STORED | 7).to_le_bytes());
        assert!(err(&stored).contains("impossible length"));
    }

    proptest! {
        #[test]
        fn round_trip(chunks in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..3000), 0..8), level in 1i32..6) {
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let z = compress(&refs, level);
            prop_assert_eq!(decompress(&z).unwrap(), chunks.concat());
        }
    }
}

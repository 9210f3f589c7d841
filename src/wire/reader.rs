//! The two stream readers of wire-format.md §9 over one bounded buffer: the
//! single-record reader (`read_mrecord`) and the batch reader
//! (`read_mrecords`), sharing the unconsumed bytes as the look-ahead slot.

use std::io::{self, Read};

use super::crc::{crc32, data_crc_matches};
use super::record::{Head, RawRecord};
use super::zframe;
use super::{
    doalign, mrec_type, CRC_OFF, HEAD_SIZE, MAX_REC_SIZE, MIN_REC_SIZE, REC_HEAD_SIZE,
    SERIALBUF_SIZE, SIGNATURE,
};
use crate::ondisk::LeafElm;

/// What went wrong in the single-record reader; `Display` is the original's
/// text, printed verbatim (no program prefix).
#[derive(Debug, thiserror::Error)]
pub enum ReadErrorKind {
    #[error("short read of mrecord header")]
    ShortHeader,
    #[error("read_mrecord: bad signature")]
    BadSignature,
    /// The stream starts with the -z header: it was written with -z and
    /// is read without it (the original would only see a bad signature).
    #[error("read_mrecord: bad signature: this is a -z stream (compressed): add -z to read it")]
    Compressed,
    /// D14 fixed: the original aborted or allocated without bound here.
    #[error("read_mrecord: illegal rec_size")]
    IllegalRecSize,
    #[error("read_mrecord: short read on payload")]
    ShortPayload,
    #[error("read_mrecord: bad CRC")]
    BadCrc,
    #[error("read_mrecord: {}", crate::errno::strerror(.0))]
    Io(#[source] io::Error),
}

/// A single-record reader failure at a stream byte offset.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct ReadError {
    pub kind: ReadErrorKind,
    /// Stream offset of the record's first byte.
    pub offset: u64,
}

/// What went wrong in the batch reader; `Display` is the original's errx
/// text (the caller adds the `hammer: ` prefix).
#[derive(Debug, thiserror::Error)]
pub enum BatchErrorKind {
    #[error("read_mrecords: short read on pipe")]
    ShortRead,
    #[error("read_mrecords: malformed record on pipe, bad signature")]
    BadSignature,
    #[error("read_mrecords: malformed record on pipe, illegal rec_size")]
    IllegalRecSize,
    #[error("read_mrecords: malformed record on pipe, bad crc")]
    BadCrc,
    #[error("read_mrecords: malformed record on pipe, illegal element data_len")]
    IllegalDataLen,
    #[error("read_mrecords: {}", crate::errno::strerror(.0))]
    Io(#[source] io::Error),
}

/// A batch reader failure at a stream byte offset.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct BatchError {
    pub kind: BatchErrorKind,
    pub offset: u64,
}

/// A REC whose data matched neither CRC; the original warns and goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataCrcWarning {
    pub obj_id: i64,
    pub key: i64,
    pub offset: u64,
}

impl std::fmt::Display for DataCrcWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "read_mrecords: data_crc did not match data! obj={:016x} key={:016x}\n\
             continuing, but there are problems",
            self.obj_id, self.key
        )
    }
}

/// Bytes a batch may need beyond its start: the batch itself plus the
/// largest record that may follow it.
const WINDOW: usize = SERIALBUF_SIZE + doalign(MAX_REC_SIZE);

/// Largest single `read()`: small enough that the bytes are still in cache
/// when the CRCs run over them, large enough that syscalls are per many
/// records, not per record.
const READ_CHUNK: usize = 128 * 1024;

/// The buffer's size at most: one window plus one read.
const BUF_MAX: usize = WINDOW + READ_CHUNK;
/// The buffer's first size; it doubles on demand up to `BUF_MAX`.
const BUF_MIN: usize = 64 * 1024;

/// Buffered mrecord reader. Memory is bounded by `BUF_MAX` whatever the
/// stream size; short streams use less.
pub struct MrecordReader<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Stream offset of `buf[pos]`.
    offset: u64,
    /// Largest batch in bytes (SERIALBUF_SIZE unless a test shrinks it).
    batch_limit: usize,
}

impl<R: Read> MrecordReader<R> {
    pub fn new(inner: R) -> Self {
        MrecordReader {
            inner,
            buf: vec![0u8; BUF_MIN],
            pos: 0,
            end: 0,
            eof: false,
            offset: 0,
            batch_limit: SERIALBUF_SIZE,
        }
    }

    /// Stream offset of the next unconsumed byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Makes `need` bytes available at `pos` if the stream has them; returns
    /// how many are available (less than `need` only at end of stream).
    fn fill(&mut self, need: usize) -> io::Result<usize> {
        debug_assert!(need <= WINDOW);
        let have = self.end - self.pos;
        if have >= need {
            return Ok(have);
        }
        // Move the unconsumed bytes to the front when that is cheap (at
        // most one read's worth, the usual case at a batch start) or when
        // `need` would not fit; the buffer's hot part then stays in cache.
        if self.pos > 0 && (have <= READ_CHUNK || self.buf.len() - self.pos < need) {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end = have;
            self.pos = 0;
        }
        if self.buf.len() - self.pos < need {
            // Only reached with pos == 0 (the move above ran).
            let len = need.max(2 * self.buf.len()).min(BUF_MAX);
            self.buf.reserve_exact(len - self.buf.len());
            self.buf.resize(len, 0);
        }
        debug_assert!(self.buf.len() - self.pos >= need);
        while self.end - self.pos < need && !self.eof {
            let limit = self.buf.len().min(self.end + READ_CHUNK);
            match self.inner.read(&mut self.buf[self.end..limit]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.pos)
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.pos);
        self.pos += n;
        self.offset += n as u64;
    }

    /// `read_mrecord`: the next whole record, `None` at a clean end of
    /// stream. On error the bytes the original would have consumed are
    /// consumed, so a caller that goes on resynchronises the same way.
    pub fn read_mrecord(&mut self) -> Result<Option<RawRecord<'_>>, ReadError> {
        self.next_record(true)
    }

    /// The next whole record as `read_mrecord` frames it, its CRC not
    /// checked: for a relay that passes records on to readers that check
    /// them (a second CRC pass over every byte would cost it a core).
    pub fn frame_mrecord(&mut self) -> Result<Option<RawRecord<'_>>, ReadError> {
        self.next_record(false)
    }

    fn next_record(&mut self, check_crc: bool) -> Result<Option<RawRecord<'_>>, ReadError> {
        let offset = self.offset;
        let fail = |kind| ReadError { kind, offset };
        let have = self
            .fill(HEAD_SIZE)
            .map_err(|e| fail(ReadErrorKind::Io(e)))?;
        if have == 0 {
            return Ok(None);
        }
        if have < HEAD_SIZE {
            self.consume(have);
            return Err(fail(ReadErrorKind::ShortHeader));
        }
        let head = self.head_at(self.pos);
        if head.signature() != SIGNATURE {
            if offset == 0 && self.buf[self.pos..self.end].starts_with(&zframe::MAGIC) {
                // Nothing after the -z header is a record: the stream ends.
                self.consume(self.end - self.pos);
                self.eof = true;
                return Err(fail(ReadErrorKind::Compressed));
            }
            self.consume(HEAD_SIZE);
            return Err(fail(ReadErrorKind::BadSignature));
        }
        let rec_size = head.rec_size();
        if !(MIN_REC_SIZE..=MAX_REC_SIZE).contains(&rec_size) {
            self.consume(HEAD_SIZE);
            return Err(fail(ReadErrorKind::IllegalRecSize));
        }
        let padded = doalign(rec_size);
        let have = self.fill(padded).map_err(|e| fail(ReadErrorKind::Io(e)))?;
        if have < padded {
            self.consume(have);
            return Err(fail(ReadErrorKind::ShortPayload));
        }
        let start = self.pos;
        self.consume(padded);
        let rec = &self.buf[start..start + rec_size as usize];
        if check_crc && crc32(&rec[CRC_OFF..]) != head.rec_crc() {
            return Err(fail(ReadErrorKind::BadCrc));
        }
        Ok(RawRecord::new(rec))
    }

    fn head_at(&self, at: usize) -> Head {
        Head::from_slice(&self.buf[at..at + HEAD_SIZE])
            .unwrap_or_else(|| unreachable!("a head's bytes were sliced above"))
    }

    /// `read_mrecords`: as many whole bulk records (REC, PFSD, SKIP, PASS)
    /// as fit in one batch buffer, validated in the original's order. Stops
    /// before a record of another type or one that does not fit, leaving it
    /// unconsumed. An empty batch means end of stream or a non-bulk record
    /// next. Data CRC mismatches are handed to `warn` and do not stop it.
    pub fn read_mrecords(
        &mut self,
        warn: &mut dyn FnMut(DataCrcWarning),
    ) -> Result<Batch<'_>, BatchError> {
        let mut used = 0usize;
        while self.batch_limit - used >= HEAD_SIZE {
            let offset = self.offset + used as u64;
            let fail = |kind| BatchError { kind, offset };
            let have = self
                .fill(used + HEAD_SIZE)
                .map_err(|e| fail(BatchErrorKind::Io(e)))?;
            if have == used {
                break;
            }
            if have < used + HEAD_SIZE {
                return Err(fail(BatchErrorKind::ShortRead));
            }
            let at = self.pos + used;
            let head = self.head_at(at);
            if head.signature() != SIGNATURE {
                return Err(fail(BatchErrorKind::BadSignature));
            }
            let rec_size = head.rec_size();
            if !(MIN_REC_SIZE..=MAX_REC_SIZE).contains(&rec_size) {
                return Err(fail(BatchErrorKind::IllegalRecSize));
            }
            let padded = doalign(rec_size);
            if padded > self.batch_limit - used {
                break;
            }
            let rtype = head.rec_type();
            if !matches!(
                rtype & mrec_type::LOMASK,
                mrec_type::REC | mrec_type::PFSD | mrec_type::SKIP | mrec_type::PASS
            ) {
                break;
            }
            let have = self
                .fill(used + padded)
                .map_err(|e| fail(BatchErrorKind::Io(e)))?;
            if have < used + padded {
                return Err(fail(BatchErrorKind::ShortRead));
            }
            let at = self.pos + used;
            let rec = &self.buf[at..at + rec_size as usize];
            if crc32(&rec[CRC_OFF..]) != head.rec_crc() {
                return Err(fail(BatchErrorKind::BadCrc));
            }
            if rtype & mrec_type::MASK == mrec_type::REC {
                check_rec_data(rec, offset, warn).map_err(fail)?;
            }
            used += padded;
        }
        let start = self.pos;
        self.consume(used);
        Ok(Batch {
            bytes: &self.buf[start..start + used],
        })
    }

    /// Shrinks the batch buffer; tests and the fuzzer use it to exercise
    /// batch boundaries.
    #[cfg(any(test, fuzzing))]
    pub fn set_batch_limit(&mut self, limit: usize) {
        self.batch_limit = limit.clamp(HEAD_SIZE, SERIALBUF_SIZE);
    }
}

/// Step 8 of the batch reader for a plain REC: `data_len` must fit in the
/// record; a data CRC that matches neither variant is only a warning.
fn check_rec_data(
    rec: &[u8],
    offset: u64,
    warn: &mut dyn FnMut(DataCrcWarning),
) -> Result<(), BatchErrorKind> {
    let leaf = match rec.get(HEAD_SIZE..REC_HEAD_SIZE as usize) {
        Some(b) => LeafElm::decode(b.try_into().map_err(|_| BatchErrorKind::IllegalDataLen)?),
        None => return Err(BatchErrorKind::IllegalDataLen),
    };
    // Unsigned as in the original: a negative data_len fails too.
    let need = u64::from(REC_HEAD_SIZE) + u64::from(leaf.data_len as u32);
    if (rec.len() as u64) < need {
        return Err(BatchErrorKind::IllegalDataLen);
    }
    if leaf.data_len != 0 && leaf.data_offset != 0 {
        let data = &rec[REC_HEAD_SIZE as usize..need as usize];
        if !data_crc_matches(leaf.base.rec_type, data, leaf.data_crc) {
            warn(DataCrcWarning {
                obj_id: leaf.base.obj_id,
                key: leaf.base.key,
                offset,
            });
        }
    }
    Ok(())
}

/// Whole validated records, back to back with their padding.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    bytes: &'a [u8],
}

impl<'a> Batch<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
    pub fn records(&self) -> BatchIter<'a> {
        BatchIter { rest: self.bytes }
    }
}

/// Iterates over the records of a framed buffer (a batch, or any run of
/// whole records such as a MIRROR_READ result).
pub struct BatchIter<'a> {
    rest: &'a [u8],
}

impl<'a> BatchIter<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        BatchIter { rest: bytes }
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = RawRecord<'a>;

    fn next(&mut self) -> Option<RawRecord<'a>> {
        let head = Head::from_slice(self.rest)?;
        let rec_size = (head.rec_size() as usize).max(HEAD_SIZE);
        let rec = self.rest.get(..rec_size)?;
        let padded = doalign(rec_size as u32).min(self.rest.len());
        self.rest = &self.rest[padded..];
        RawRecord::new(rec)
    }
}

#[cfg(test)]
mod tests {
    use zerocopy::FromBytes;

    use super::*;
    use crate::ondisk::{BaseElm, PseudofsData};
    use crate::wire::record::Mrecord;
    use crate::wire::CRC_OFF;

    fn leaf(obj_id: i64, data: &[u8]) -> LeafElm {
        LeafElm {
            base: BaseElm {
                obj_id,
                key: 0x10,
                create_tid: 5,
                rec_type: crate::ondisk::rectype::DATA,
                btype: b'R',
                localization: 2,
                ..Default::default()
            },
            data_offset: 1,
            data_len: data.len() as i32,
            data_crc: crate::wire::crc::crc32c(data),
            ..Default::default()
        }
    }

    fn stream(recs: &[Mrecord]) -> Vec<u8> {
        let mut v = Vec::new();
        for r in recs {
            r.encode_into(&mut v);
        }
        v
    }

    /// A reader that hands out one byte per read() call.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn batch_stops_at_sync_and_single_reader_takes_it() {
        let data = b"0123456789abcdef";
        let s = stream(&[
            Mrecord::Pfsd {
                version: 1,
                pfsd: PseudofsData::default(),
            },
            Mrecord::Rec {
                rtype: 1,
                leaf: leaf(1, data),
                data,
            },
            Mrecord::Sync { tid: 1 },
        ]);
        let mut r = MrecordReader::new(Trickle(&s));
        let mut warned = 0;
        let b = r.read_mrecords(&mut |_| warned += 1).unwrap();
        assert_eq!(b.records().count(), 2);
        assert_eq!(warned, 0);
        assert!(r.read_mrecords(&mut |_| ()).unwrap().is_empty());
        let rec = r.read_mrecord().unwrap().unwrap();
        assert_eq!(rec.rec_type(), mrec_type::SYNC);
        assert!(r.read_mrecord().unwrap().is_none());
        assert_eq!(r.offset(), s.len() as u64);
        // A short stream never grows the buffer to the full window.
        assert_eq!(r.buf.len(), BUF_MIN);
    }

    #[test]
    fn frame_mrecord_frames_as_read_mrecord_without_the_crc() {
        let data = b"0123456789abcdef";
        let mut s = stream(&[
            Mrecord::Rec {
                rtype: 1,
                leaf: leaf(1, data),
                data,
            },
            Mrecord::Sync { tid: 1 },
        ]);
        let last = s.len() - 1;
        s[HEAD_SIZE + LeafElm::SIZE] ^= 1;
        s[last - 4] ^= 1;
        let mut r = MrecordReader::new(Trickle(&s));
        let rec = r.frame_mrecord().unwrap().unwrap();
        assert_eq!(rec.bytes()[HEAD_SIZE + LeafElm::SIZE], b'0' ^ 1);
        assert_eq!(
            r.frame_mrecord().unwrap().unwrap().rec_type(),
            mrec_type::SYNC
        );
        assert!(r.frame_mrecord().unwrap().is_none());
        // The framing is still checked.
        let mut bad = s.clone();
        bad[0] ^= 1;
        let e = MrecordReader::new(&bad[..]).frame_mrecord().unwrap_err();
        assert!(matches!(e.kind, ReadErrorKind::BadSignature));
        let e = MrecordReader::new(&s[..]).read_mrecord().unwrap_err();
        assert!(matches!(e.kind, ReadErrorKind::BadCrc));
    }

    #[test]
    fn batch_limit_splits_batches_at_whole_records() {
        let data = [7u8; 100];
        let recs: Vec<Mrecord> = (0..10)
            .map(|i| Mrecord::Rec {
                rtype: 1,
                leaf: leaf(i, &data),
                data: &data,
            })
            .collect();
        let s = stream(&recs);
        let mut r = MrecordReader::new(&s[..]);
        r.set_batch_limit(3 * 184 + 100);
        let mut counts = vec![];
        loop {
            let b = r.read_mrecords(&mut |_| ()).unwrap();
            if b.is_empty() {
                break;
            }
            counts.push(b.records().count());
        }
        assert_eq!(counts, vec![3, 3, 3, 1]);
    }

    /// Hands out at most `step` bytes per read() call.
    struct Chunked<'a>(&'a [u8], usize);
    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Refill and compaction keep every record intact over a stream several
    /// buffers long, whatever the read sizes and record sizes.
    #[test]
    fn large_stream_survives_refills() {
        let data: Vec<u8> = (0..65536u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut recs = Vec::new();
        let mut total = 0;
        let mut i = 0i64;
        while total < 4 * WINDOW {
            let len = [65536, 16384, 5, 0, 4000][i as usize % 5];
            let r = Mrecord::Rec {
                rtype: 1,
                leaf: leaf(i, &data[..len]),
                data: &data[..len],
            };
            total += r.wire_size();
            recs.push(r);
            if i % 97 == 96 {
                recs.push(Mrecord::Sync { tid: 1 });
                total += 24;
            }
            i += 1;
        }
        let s = stream(&recs);
        for step in [4093, 65536, READ_CHUNK + 1, usize::MAX] {
            let mut r = MrecordReader::new(Chunked(&s, step));
            let mut seen = Vec::new();
            loop {
                let b = r.read_mrecords(&mut |w| panic!("{w}")).unwrap();
                if !b.is_empty() {
                    seen.extend(b.records().map(|rec| rec.bytes().to_vec()));
                    continue;
                }
                match r.read_mrecord().unwrap() {
                    Some(rec) => seen.push(rec.bytes().to_vec()),
                    None => break,
                }
            }
            assert_eq!(r.offset(), s.len() as u64, "step {step}");
            assert!(r.buf.len() <= BUF_MAX, "step {step}");
            assert_eq!(seen.len(), recs.len(), "step {step}");
            for (got, want) in seen.iter().zip(&recs) {
                assert_eq!(got[..], want.to_vec()[..got.len()], "step {step}");
            }
        }
    }

    #[test]
    fn single_reader_caps_rec_size() {
        let mut s = Mrecord::Term { tid: 1 }.to_vec();
        Head::mut_from_prefix(&mut s).unwrap().0.rec_size = 0xFFFF_FFFA.into();
        let mut r = MrecordReader::new(&s[..]);
        let e = r.read_mrecord().unwrap_err();
        assert!(matches!(e.kind, ReadErrorKind::IllegalRecSize));
    }

    /// D22: one look-ahead test for both readers, so a record of type 0
    /// reaches the caller instead of desynchronising the stream.
    #[test]
    fn d22_type_zero_reaches_the_caller() {
        let data = b"x";
        let mut s = stream(&[Mrecord::Rec {
            rtype: 1,
            leaf: leaf(1, data),
            data,
        }]);
        let mut zero = Mrecord::Term { tid: 9 }.to_vec();
        Head::mut_from_prefix(&mut zero).unwrap().0.rec_type = 0.into();
        let crc = crc32(&zero[CRC_OFF..]);
        Head::mut_from_prefix(&mut zero).unwrap().0.rec_crc = crc.into();
        s.extend_from_slice(&zero);
        let mut r = MrecordReader::new(&s[..]);
        assert_eq!(r.read_mrecords(&mut |_| ()).unwrap().records().count(), 1);
        let rec = r.read_mrecord().unwrap().unwrap();
        assert_eq!(rec.rec_type(), mrec_type::RESERVED);
        assert_eq!(rec.tid(), Some(9));
        assert!(r.read_mrecord().unwrap().is_none());
    }

    #[test]
    fn negative_data_len_is_illegal() {
        let data = b"abc";
        let mut l = leaf(1, data);
        l.data_len = -1;
        let s = stream(&[Mrecord::Rec {
            rtype: 1,
            leaf: l,
            data,
        }]);
        let mut r = MrecordReader::new(&s[..]);
        let e = r.read_mrecords(&mut |_| ()).unwrap_err();
        assert!(matches!(e.kind, BatchErrorKind::IllegalDataLen));
    }
}

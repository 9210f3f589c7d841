//! `hammer mirror-dump [header]`: decode a mirror stream from a reader and
//! print it as the original does (spec: cli.md §4), with defects D15 and
//! D23 fixed.

use std::io::{self, Read, Write};

use crate::ondisk::{BaseElm, LeafElm};
use crate::pfsd_fmt::{write_pfs_block, SnapshotsHint};
use crate::wire::reader::{BatchError, DataCrcWarning, ReadError, ReadErrorKind};
use crate::wire::record::{RawRecord, PFSD_OFF_DATA};
use crate::wire::{mrec_type, MrecordReader, HEAD_SIZE, PFSD_REC_SIZE, SKIP_REC_SIZE};

/// Text printed when a batch is not closed by SYNC or IDLE.
pub const NO_TERMINATION: &str = "Mirror-dump: Did not get termination sync record";

/// Output is handed to stdout in chunks of about this size.
const OUT_CHUNK: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The batch reader's errx (`hammer: read_mrecords: ...`).
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// `header` mode: the first record could not be read (printed verbatim
    /// already, as the reader does).
    #[error(transparent)]
    FirstRecord(ReadError),
    /// `header` mode: the first record is not a PFSD (D15: the original
    /// printed bytes past the record).
    #[error("validate_mrec_header: did not get expected PFSD record type")]
    NotPfsd,
    #[error("validate_mrec_header: unexpected payload size")]
    PfsdSize,
    /// A PASS or SKIP too short to hold its elements (the original printed
    /// whatever followed it in its buffer).
    #[error("mirror-dump: malformed record at offset {offset}, rec_size {rec_size} too small for type {rtype:#x}")]
    ShortRecord {
        offset: u64,
        rec_size: u32,
        rtype: u32,
    },
    #[error("mirror-dump: {0}")]
    Output(#[source] io::Error),
    /// D23: the stream ended anywhere but after a TERM or a complete batch
    /// (empty, cut short, or with a record that failed to read). The
    /// reader's messages are out already; the original exited 0 here.
    #[error("mirror-dump: incomplete stream")]
    Incomplete,
}

/// Dumps the stream on `input`: record lines on `out`, diagnostics on
/// `diag`. Returns when the stream ends; fatal problems are errors.
pub fn mirror_dump<R: Read, W: Write, E: Write>(
    input: R,
    out: W,
    diag: E,
    header: bool,
) -> Result<(), DumpError> {
    let mut d = Dumper {
        reader: MrecordReader::new(input),
        out,
        diag,
        buf: Vec::with_capacity(OUT_CHUNK + 1024),
        last_type: None,
        read_failed: false,
    };
    let result = d.run(header);
    // Whatever was printed before a failure still reaches stdout, as the
    // original's exit() flushes stdio.
    let flushed = d.flush_out();
    result.and(flushed)
}

struct Dumper<R, W, E> {
    reader: MrecordReader<R>,
    out: W,
    diag: E,
    buf: Vec<u8>,
    /// The type of the last record read, for D23: a stream ends complete
    /// only after a TERM, SYNC or IDLE.
    last_type: Option<u32>,
    /// A record failed to read (its message was printed and the dump went
    /// on, as in the original): the stream is incomplete (D23).
    read_failed: bool,
}

impl<R: Read, W: Write, E: Write> Dumper<R, W, E> {
    fn run(&mut self, header: bool) -> Result<(), DumpError> {
        match self.reader.read_mrecord() {
            Ok(Some(first)) if header => {
                let pfsd = pfsd_of(first)?;
                write_pfs_block(&mut self.buf, &pfsd, SnapshotsHint::None);
                return Ok(());
            }
            Ok(Some(first)) => self.last_type = Some(first.rec_type()),
            Ok(None) => {}
            // A -z stream read without -z: nothing of it is a record.
            Err(e) if header || matches!(e.kind, ReadErrorKind::Compressed) => {
                return Err(DumpError::FirstRecord(e))
            }
            Err(e) => self.read_error(&e)?,
        }
        loop {
            self.dump_batches()?;
            let terminated = match self.reader.read_mrecord() {
                Ok(Some(r)) => {
                    self.last_type = Some(r.rec_type());
                    matches!(r.rec_type(), mrec_type::SYNC | mrec_type::IDLE)
                }
                Ok(None) => false,
                Err(e) => {
                    self.read_error(&e)?;
                    false
                }
            };
            if !terminated {
                self.say(NO_TERMINATION)?;
            }
            // The record after a batch's SYNC/IDLE opens the next batch;
            // TERM ends the stream (D15: the original took it for a batch).
            match self.reader.read_mrecord() {
                Ok(Some(r)) => {
                    self.last_type = Some(r.rec_type());
                    if r.rec_type() == mrec_type::TERM {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.read_error(&e)?;
                    break;
                }
            }
        }
        // D23: complete only after a TERM or a batch's SYNC/IDLE, with
        // every record read.
        let complete = matches!(
            self.last_type,
            Some(mrec_type::TERM | mrec_type::SYNC | mrec_type::IDLE)
        );
        if complete && !self.read_failed {
            Ok(())
        } else {
            Err(DumpError::Incomplete)
        }
    }

    /// Prints batches until the batch reader stops at a non-bulk record or
    /// the end of the stream.
    fn dump_batches(&mut self) -> Result<(), DumpError> {
        loop {
            let mut warnings: Vec<DataCrcWarning> = Vec::new();
            let batch_offset = self.reader.offset();
            let batch = self.reader.read_mrecords(&mut |w| warnings.push(w));
            for w in &warnings {
                writeln!(self.diag, "{w}").map_err(DumpError::Output)?;
            }
            let batch = batch?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut offset = batch_offset;
            let mut last = None;
            for rec in batch.records() {
                print_record(&mut self.buf, rec, offset)?;
                offset += crate::wire::doalign(rec.rec_size()) as u64;
                last = Some(rec.rec_type());
            }
            self.last_type = last.or(self.last_type);
            if self.buf.len() >= OUT_CHUNK {
                self.out.write_all(&self.buf).map_err(DumpError::Output)?;
                self.buf.clear();
            }
        }
    }

    /// A failure of the single-record reader: its message, and the dump
    /// goes on as in the original, but the stream is incomplete (D23).
    fn read_error(&mut self, e: &ReadError) -> Result<(), DumpError> {
        self.read_failed = true;
        self.say(&e.to_string())
    }

    /// A verbatim diagnostic line on stderr (the original's "say").
    fn say(&mut self, msg: &str) -> Result<(), DumpError> {
        writeln!(self.diag, "{msg}").map_err(DumpError::Output)
    }

    fn flush_out(&mut self) -> Result<(), DumpError> {
        self.out.write_all(&self.buf).map_err(DumpError::Output)?;
        self.buf.clear();
        self.out.flush().map_err(DumpError::Output)
    }
}

fn pfsd_of(rec: RawRecord<'_>) -> Result<crate::ondisk::PseudofsData, DumpError> {
    if rec.rec_type() != mrec_type::PFSD {
        return Err(DumpError::NotPfsd);
    }
    if rec.rec_size() != PFSD_REC_SIZE {
        return Err(DumpError::PfsdSize);
    }
    rec.array(PFSD_OFF_DATA)
        .map(crate::ondisk::PseudofsData::decode)
        .ok_or(DumpError::PfsdSize)
}

/// Prints one record of a batch (dispatch on `type & TYPE_MASK`).
fn print_record(out: &mut Vec<u8>, rec: RawRecord<'_>, offset: u64) -> Result<(), DumpError> {
    let rtype = rec.rec_type();
    let short = || DumpError::ShortRecord {
        offset,
        rec_size: rec.rec_size(),
        rtype,
    };
    match rtype & mrec_type::MASK {
        mrec_type::REC | mrec_type::REC_BADCRC => {
            let leaf = rec.leaf().ok_or_else(short)?;
            // D15: every record flagged CRC_ERROR, also the kernel's 0xC0000001.
            let bad = rtype & mrec_type::CRC_ERROR != 0;
            leaf_lines(out, b"Record ", &leaf, bad);
        }
        mrec_type::PASS => {
            let leaf = rec.leaf().ok_or_else(short)?;
            leaf_lines(out, b"Pass   ", &leaf, false);
        }
        mrec_type::SKIP => {
            if rec.rec_size() < SKIP_REC_SIZE {
                return Err(short());
            }
            let beg = BaseElm::decode(rec.array(HEAD_SIZE).ok_or_else(short)?);
            let end = BaseElm::decode(rec.array(HEAD_SIZE + BaseElm::SIZE).ok_or_else(short)?);
            out.extend_from_slice(b"Skip   ");
            key_fields(out, &beg);
            out.extend_from_slice(b" to\n       ");
            key_fields(out, &end);
            out.push(b'\n');
        }
        _ => {}
    }
    Ok(())
}

/// `lo=%08x obj=%016jx key=%016jx rt=%02x`
fn key_fields(out: &mut Vec<u8>, e: &BaseElm) {
    out.extend_from_slice(b"lo=");
    hex(out, u64::from(e.localization), 8);
    out.extend_from_slice(b" obj=");
    hex(out, e.obj_id as u64, 16);
    out.extend_from_slice(b" key=");
    hex(out, e.key as u64, 16);
    out.extend_from_slice(b" rt=");
    hex(out, u64::from(e.rec_type), 2);
}

fn leaf_lines(out: &mut Vec<u8>, label: &[u8], leaf: &LeafElm, bad_crc: bool) {
    out.extend_from_slice(label);
    key_fields(out, &leaf.base);
    out.extend_from_slice(b" ot=");
    hex(out, u64::from(leaf.base.obj_type), 2);
    if bad_crc {
        out.extend_from_slice(b" (BAD CRC)");
    }
    out.extend_from_slice(b"\n       tids ");
    hex(out, leaf.base.create_tid, 16);
    out.push(b':');
    hex(out, leaf.base.delete_tid, 16);
    out.extend_from_slice(b" data=");
    decimal(out, i64::from(leaf.data_len));
    out.push(b'\n');
}

/// printf `%0*x`: lowercase hex, at least `width` digits.
fn hex(out: &mut Vec<u8>, v: u64, width: usize) {
    let digits = hex16(v);
    // Digits the value needs; the widths used here are the common lengths,
    // each copied with a fixed size rather than a memcpy call per field.
    let needed = (64 - v.leading_zeros() as usize).div_ceil(4).max(1);
    match needed.max(width) {
        2 => out.extend_from_slice(&digits[14..]),
        8 => out.extend_from_slice(&digits[8..]),
        16 => out.extend_from_slice(&digits),
        n => out.extend_from_slice(&digits[16 - n.min(16)..]),
    }
}

/// The 16 lowercase hex digits of `v`, computed eight at a time in a u64
/// (one nibble per byte, then to ASCII without a table or branch).
fn hex16(v: u64) -> [u8; 16] {
    fn eight(x: u32) -> [u8; 8] {
        let x = u64::from(x);
        let x = ((x & 0xFFFF_0000) << 16) | (x & 0xFFFF);
        let x = ((x & 0x0000_FF00_0000_FF00) << 8) | (x & 0x0000_00FF_0000_00FF);
        let x = ((x & 0x00F0_00F0_00F0_00F0) << 4) | (x & 0x000F_000F_000F_000F);
        // 1 in each byte whose nibble is above 9: those skip to 'a'.
        let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        (x + 0x3030_3030_3030_3030 + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
    }
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&eight((v >> 32) as u32));
    out[8..].copy_from_slice(&eight(v as u32));
    out
}

/// printf `%d`.
fn decimal(out: &mut Vec<u8>, v: i64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut x = v.unsigned_abs();
    loop {
        i -= 1;
        tmp[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&tmp[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex16_matches_format() {
        for v in [0, 9, 10, 15, 0xa5, 0x0123_4567_89ab_cdef, u64::MAX, 1 << 63] {
            assert_eq!(hex16(v), *format!("{v:016x}").as_bytes());
        }
        let mut rng = crate::rng::Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..10000 {
            let x = rng.next();
            assert_eq!(hex16(x), *format!("{x:016x}").as_bytes());
        }
    }

    #[test]
    fn hex_and_decimal_like_printf() {
        let mut o = Vec::new();
        hex(&mut o, 0x10, 2);
        o.push(b' ');
        hex(&mut o, 0x1ff, 2);
        o.push(b' ');
        hex(&mut o, u64::MAX, 16);
        o.push(b' ');
        hex(&mut o, 0, 8);
        o.push(b' ');
        hex(&mut o, 0xabc, 2);
        o.push(b' ');
        hex(&mut o, 0x1_2345_6789, 8);
        o.push(b' ');
        hex(&mut o, 0, 0);
        o.push(b' ');
        hex(&mut o, 0x10, 16);
        o.push(b' ');
        decimal(&mut o, -2147483648);
        o.push(b' ');
        decimal(&mut o, 0);
        assert_eq!(
            String::from_utf8(o).unwrap(),
            "10 1ff ffffffffffffffff 00000000 abc 123456789 0 0000000000000010 -2147483648 0"
        );
    }
}

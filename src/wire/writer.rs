//! Buffered mrecord writer: records are encoded into one bounded buffer and
//! leave in large writes; callers flush where the protocol waits for a peer.

use std::io::{self, Write};

use super::record::Mrecord;
use super::SERIALBUF_SIZE;

pub struct MrecordWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    /// Bytes handed to `inner` so far.
    written: u64,
}

impl<W: Write> MrecordWriter<W> {
    pub fn new(inner: W) -> Self {
        MrecordWriter {
            inner,
            buf: Vec::with_capacity(SERIALBUF_SIZE),
            written: 0,
        }
    }

    /// Appends one record; writes the buffer out when it is full.
    pub fn write_record(&mut self, rec: &Mrecord<'_>) -> io::Result<()> {
        if self.buf.len() + rec.wire_size() > SERIALBUF_SIZE {
            self.drain()?;
        }
        rec.encode_into(&mut self.buf);
        Ok(())
    }

    /// Appends already framed records (a MIRROR_READ result) as they are.
    pub fn write_framed(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.buf.len() + bytes.len() > SERIALBUF_SIZE {
            self.drain()?;
        }
        if bytes.len() >= SERIALBUF_SIZE {
            self.inner.write_all(bytes)?;
            self.written += bytes.len() as u64;
        } else {
            self.buf.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn drain(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.inner.write_all(&self.buf)?;
            self.written += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes out everything buffered and flushes the sink.
    pub fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.inner.flush()
    }

    /// Bytes accepted so far, buffered or written.
    pub fn position(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Flushes and returns the sink.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.inner)
    }
}

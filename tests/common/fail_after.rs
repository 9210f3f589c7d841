//! `FailAfter`, the fault-injection seam for streams (CONTRIBUTING.md §2.8): a
//! reader or writer that moves a set number of bytes, in calls as short as
//! asked, and then fails.

use std::io::{self, Read, Write};

/// What a `FailAfter` does once its bytes are used up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The end of the stream: reads return 0, writes write nothing.
    Eof,
    /// Every call fails with this errno.
    Errno(i32),
}

/// A reader or writer that passes `limit` bytes through, at most `chunk`
/// per call (short reads and writes), and then fails as `fault` says
/// (CONTRIBUTING.md §2.8: fault injection at the stream seam).
pub struct FailAfter<T> {
    inner: T,
    left: usize,
    chunk: usize,
    fault: Fault,
    /// A call asked for more than the limit let through.
    tripped: bool,
}

impl<T> FailAfter<T> {
    pub fn new(inner: T, limit: usize, fault: Fault) -> Self {
        FailAfter {
            inner,
            left: limit,
            chunk: usize::MAX,
            fault,
            tripped: false,
        }
    }

    /// Never fails; every call moves at most `chunk` bytes.
    pub fn short(inner: T, chunk: usize) -> Self {
        FailAfter::new(inner, usize::MAX, Fault::Eof).chunked(chunk)
    }

    pub fn chunked(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }

    pub fn into_inner(self) -> T {
        self.inner
    }

    /// Whether the fault was delivered: a call came after the limit.
    pub fn tripped(&self) -> bool {
        self.tripped
    }

    /// How many bytes may pass in a call of `len`, or the fault.
    fn allow(&mut self, len: usize) -> io::Result<usize> {
        if self.left > 0 || len == 0 {
            return Ok(len.min(self.left).min(self.chunk));
        }
        self.tripped = true;
        match self.fault {
            Fault::Errno(e) => Err(io::Error::from_raw_os_error(e)),
            Fault::Eof => Ok(0),
        }
    }
}

impl<R: Read> Read for FailAfter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.allow(buf.len())?;
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got;
        Ok(got)
    }
}

impl<W: Write> Write for FailAfter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.allow(buf.len())?;
        let put = self.inner.write(&buf[..n])?;
        self.left -= put;
        Ok(put)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

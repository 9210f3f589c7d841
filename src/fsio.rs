//! Positioned file reads that go on after short reads and EINTR, stopping
//! only at the end of the file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Reads into `buf` from `off` until it is full or the file ends; returns
/// the bytes read.
pub fn read_full_at(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], off + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_end_of_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        let f = File::open(&p).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(read_full_at(&f, &mut buf, 0).unwrap(), 8);
        assert_eq!(&buf, b"01234567");
        assert_eq!(read_full_at(&f, &mut buf, 6).unwrap(), 4);
        assert_eq!(&buf[..4], b"6789");
        assert_eq!(read_full_at(&f, &mut buf, 20).unwrap(), 0);
    }
}

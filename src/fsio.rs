//! File I/O helpers: reads that go on after short reads and EINTR up to
//! the end of the file, streaming writes that leave the page cache behind
//! them, and the atomic replacement of a small file.

use std::ffi::OsString;
use std::fs::{File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;

/// How far behind the end of the file written bytes leave the page
/// cache: far enough that their writeback, started when they were
/// written, has finished.
pub const DROP_LAG: u64 = 32 << 20;

/// Ranges dropped from the page cache start and end at multiples of this:
/// the kernel drops only whole folios (up to 2 MiB, naturally aligned), so
/// a folio cut by the end of one range and the start of the next would
/// never leave (measured: 448 KiB ranges left a quarter of the file cached).
pub const DROP_GRAIN: u64 = 4 << 20;

/// Called after writing `[from, to)` of a file written front to back:
/// starts the writeback of that range and drops what lies `DROP_LAG`
/// bytes before, whose writeback is done by now. A large copy then reuses
/// the same few pages of the page cache instead of dirtying fresh memory
/// for every byte and leaving all of it to write back at the final sync
/// (measured on the CI VM, 1 GiB: 0.34-1.4 GB/s without, 2.3-3.7 GB/s
/// with). Advice only: a failure changes nothing.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
pub fn drop_behind(f: &File, from: u64, to: u64) {
    use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
    use std::os::fd::AsRawFd;
    let advise = |(a, b): (u64, u64)| {
        if let (Ok(a), Ok(len)) = (i64::try_from(a), i64::try_from(b - a)) {
            // DONTNEED writes back dirty pages first and drops only clean ones.
            let _ = posix_fadvise(
                f.as_raw_fd(),
                a,
                len,
                PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            );
        }
    };
    advise((from, to));
    if let Some(r) = behind(from, to) {
        advise(r);
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
pub fn drop_behind(_: &File, _: u64, _: u64) {}

/// The range to drop after writing `[from, to)`: whole grains, so that
/// successive writes drop successive grains, each once.
fn behind(from: u64, to: u64) -> Option<(u64, u64)> {
    let grain = |x: u64| x.saturating_sub(DROP_LAG) / DROP_GRAIN * DROP_GRAIN;
    let (a, b) = (grain(from), grain(to));
    (b > a).then_some((a, b))
}

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

/// Reads into `buf` until it is full or the reader ends; returns the
/// bytes read.
pub fn read_full(r: &mut (impl Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Replaces the file at `path` with `bytes` so that a crash leaves the old
/// or the new content, never a mix (D21). The temporary lies beside it
/// (a rename within one directory is atomic) under a fresh random name,
/// created with O_CREAT|O_EXCL, so nothing planted there, a symlink
/// included, is ever opened; its mode is `mode` less the umask. It is
/// fsynced, renamed over `path` (a symlink at `path` is replaced, not
/// followed), and the directory fsynced so the rename is durable too. On
/// failure `path` is unchanged and the temporary removed.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut prefix = OsString::from(".");
    prefix.push(path.file_name().unwrap_or_default());
    prefix.push(".");
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_parent(path)
}

/// Makes the creation, rename or removal of `path` durable: fsyncs the
/// directory holding it (a new directory entry is not made durable by
/// syncing the file, and not at all by a symlink).
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn writes_of_any_size_drop_whole_grains_behind_them_each_once() {
        for step in [4096u64, 458_752, 507_904, (1 << 20), 3 * (1 << 20) + 12_345] {
            let mut dropped = 0;
            let mut at = 0;
            while at < 200 << 20 {
                if let Some((a, b)) = behind(at, at + step) {
                    assert_eq!((a % DROP_GRAIN, b % DROP_GRAIN), (0, 0), "step {step}");
                    assert_eq!(a, dropped, "step {step}: a gap or an overlap");
                    assert!(b + DROP_LAG <= at + step);
                    dropped = b;
                }
                at += step;
            }
            assert!(
                dropped + DROP_LAG + DROP_GRAIN > at,
                "step {step}: stopped at {dropped}"
            );
        }
    }

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
        let mut r = &f;
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 8);
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"89");
    }

    /// D21 and the planted-symlink hole: the temporary is never opened
    /// through a name chosen in advance, and a symlink at the target is
    /// replaced rather than written through.
    #[test]
    fn replace_file_never_writes_through_a_planted_symlink() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = d.path().join("cycle");
        // The name the helper's predecessor used, `<file>.tmp.<pid>`.
        let old_tmp = d.path().join(format!("cycle.tmp.{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &old_tmp).unwrap();
        replace_file(&path, b"first", 0o666).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        replace_file(&path, b"second", 0o644).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let m = std::fs::symlink_metadata(&path).unwrap();
        assert!(m.file_type().is_file());
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // The mode asked for, less the umask: no bit beyond it.
        assert_eq!(m.mode() & 0o7777 & !0o644, 0);
        assert_eq!(m.mode() & 0o600, 0o600);
        // Only the target, the victim and the planted link are there.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 3);
    }

    #[test]
    fn replace_file_failure_leaves_the_target() {
        let d = tempfile::tempdir().unwrap();
        // A directory in the way: the rename fails, nothing is left behind.
        let path = d.path().join("sub");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("f"), b"x").unwrap();
        assert!(replace_file(&path, b"new", 0o644).is_err());
        assert!(path.join("f").exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}

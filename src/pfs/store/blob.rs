//! Large payloads: one append-only file per PFS beside the database, so
//! their bytes reach the disk once instead of through the WAL and again
//! at every checkpoint. The database names each payload by its offset
//! (the length is the leaf's data_len) and records how much of the file is
//! committed; bytes past that are a killed writer's and get overwritten.
//!
//! Durability: an import's transaction syncs the file before it commits.
//! A mirror-write batch does not (a sync per batch costs more than the
//! write itself): a slave's records past its sync point are provisional,
//! never read, and the file is synced before the SET that moves the sync
//! point over them. A record whose payload a power loss took back is
//! rewritten when a rerun sends it again (`write.rs`).
//!
//! A writer whose transaction does not commit gives its bytes back
//! (`Tail`): a failed import or mirror-write (ENOSPC) leaves the disk as
//! full as it found it.
//!
//! The `blob` table's `gen` names the payload file. Its low 32 bits are
//! the PFS generation, the number of times the PFS id was destroyed, which
//! lets a handle tell the PFS it started with from a later one under its
//! id; the bits above count the reblocks that moved the payloads to a new
//! file (`reblock.rs`).

use std::cell::RefCell;
use std::fmt;
use std::fs::{self, File, OpenOptions, Permissions};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::error::StoreError;
use crate::fsio::{drop_behind, read_full_at};
use crate::pfs::Result;

/// Appended payloads are written in chunks of this size, not one
/// `pwrite` per record; sequential reads read ahead as much.
const CHUNK: usize = 1 << 20;

/// The blob file of one PFS as of one transaction's snapshot.
pub(crate) struct Blobs {
    path: PathBuf,
    gen: i64,
    /// Open once there is something to read or write (a writer's is
    /// read-write, created at its first write).
    file: Option<File>,
    /// The committed size: every payload the snapshot references lies
    /// below it.
    committed: u64,
    /// Appended but not yet written bytes, which start at `flushed`.
    pending: Vec<u8>,
    flushed: u64,
    /// Read-ahead for payloads read in file order (a scan of records
    /// appended in key order): one read per chunk instead of per record.
    ahead: RefCell<Ahead>,
}

/// Bytes read ahead from `at`, and where the last read ended.
#[derive(Default)]
struct Ahead {
    at: u64,
    bytes: Vec<u8>,
    last_end: u64,
}

/// The prefix of every payload file's name.
const PREFIX: &str = ".hammer-store.pfs";
/// What a reblock adds to `gen`: the bits above the PFS generation.
pub(super) const REBLOCK_STEP: i64 = 1 << 32;

/// The file holding PFS `pfs`'s payloads in generation `gen` (a destroyed
/// or reblocked PFS's file is replaced by a new one, never truncated
/// under a reader).
pub(super) fn path_of(root: &Path, pfs: u32, gen: i64) -> PathBuf {
    root.join(format!("{PREFIX}{pfs:05}.{gen}"))
}

/// The PFS id and `gen` a payload file's name gives, if it is one.
pub(super) fn parse_name(name: &str) -> Option<(u32, i64)> {
    let (pfs, gen) = name.strip_prefix(PREFIX)?.split_once('.')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if pfs.len() != 5 || !digits(pfs) || !digits(gen) {
        return None;
    }
    Some((pfs.parse().ok()?, gen.parse().ok()?))
}

/// PFS `pfs`'s generation: how many times its id was destroyed (a
/// reblock leaves it as it is).
pub(crate) fn generation(conn: &Connection, pfs: u32) -> Result<i64> {
    Ok(state(conn, pfs)?.0 % REBLOCK_STEP)
}

/// The `gen` and committed size of `pfs`'s blob file.
pub(super) fn state(conn: &Connection, pfs: u32) -> Result<(i64, u64)> {
    let row: Option<(i64, i64)> = conn
        .prepare_cached("SELECT gen, size FROM blob WHERE pfs = ?1")?
        .query_row([pfs], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (gen, size) = row.unwrap_or((0, 0));
    let size = u64::try_from(size).map_err(|_| StoreError::Corrupt("negative blob size"))?;
    Ok((gen, size))
}

impl Blobs {
    /// `pfs`'s payloads as `conn`'s transaction sees them, for reading.
    pub(crate) fn open(conn: &Connection, root: &Path, pfs: u32) -> Result<Blobs> {
        Blobs::open_as(conn, root, pfs, false)
    }

    /// The same inside a write transaction, which may also append.
    pub(crate) fn open_writer(conn: &Connection, root: &Path, pfs: u32) -> Result<Blobs> {
        Blobs::open_as(conn, root, pfs, true)
    }

    fn open_as(conn: &Connection, root: &Path, pfs: u32, write: bool) -> Result<Blobs> {
        let (gen, committed) = state(conn, pfs)?;
        let path = path_of(root, pfs, gen);
        let file = if committed == 0 {
            None
        } else {
            let f = OpenOptions::new().read(true).write(write).open(&path);
            Some(f.map_err(|e| io(&path, e))?)
        };
        Ok(Blobs {
            path,
            gen,
            file,
            committed,
            pending: Vec::new(),
            flushed: committed,
            ahead: RefCell::default(),
        })
    }

    /// A new, empty payload file `gen` of `pfs` for a reblock to copy
    /// payloads into; nothing names it until `switch` commits.
    pub(super) fn create(root: &Path, pfs: u32, gen: i64) -> Result<Blobs> {
        let path = path_of(root, pfs, gen);
        let file = create_new(&path)?;
        Ok(Blobs {
            path,
            gen,
            file: Some(file),
            committed: 0,
            pending: Vec::new(),
            flushed: 0,
            ahead: RefCell::default(),
        })
    }

    /// Writes what was appended and makes it durable; returns the size.
    pub(super) fn seal(&mut self) -> Result<u64> {
        self.write_pending()?;
        if let Some(f) = &self.file {
            f.sync_data().map_err(|e| io(&self.path, e))?;
        }
        Ok(self.flushed)
    }

    /// This payload file's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the `len` bytes at `off` into `out` (replacing its contents).
    /// A payload is never split between the file and `pending`.
    pub(crate) fn read_into(&self, off: u64, len: usize, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        let beyond = || StoreError::Corrupt("payload beyond its blob file");
        let end = off.checked_add(len as u64).ok_or_else(beyond)?;
        if off >= self.flushed {
            let at = usize::try_from(off - self.flushed).map_err(|_| beyond())?;
            let bytes = self
                .pending
                .get(at..at.saturating_add(len))
                .ok_or_else(beyond)?;
            out.extend_from_slice(bytes);
            return Ok(());
        }
        let file = self
            .file
            .as_ref()
            .filter(|_| end <= self.flushed)
            .ok_or_else(beyond)?;
        let mut ahead = self.ahead.borrow_mut();
        let sequential = off == ahead.last_end;
        ahead.last_end = end;
        let covered = |a: &Ahead| off >= a.at && end <= a.at + a.bytes.len() as u64;
        if !covered(&ahead) && sequential && len < CHUNK {
            let n = (self.flushed - off).min(CHUNK as u64) as usize;
            ahead.bytes.resize(n, 0);
            // Short when the file lacks a tail (a power loss after an
            // unsynced batch): what this payload needs is checked below.
            let got = read_full_at(file, &mut ahead.bytes, off).map_err(|e| io(&self.path, e))?;
            ahead.bytes.truncate(got);
            ahead.at = off;
        }
        if !covered(&ahead) {
            out.resize(len, 0);
            return file
                .read_exact_at(out, off)
                .map_err(|e| io(&self.path, e).into());
        }
        let at = (off - ahead.at) as usize;
        out.extend_from_slice(&ahead.bytes[at..at + len]);
        Ok(())
    }

    /// Why the `len` bytes at `off` cannot be read, if they cannot: they
    /// lie beyond the committed size, beyond the file's end, or the read
    /// fails. Reads them to find out (for `hammer verify`, which asks only
    /// about payloads a read already failed on).
    pub(crate) fn fault(&self, off: u64, len: usize) -> Option<PayloadFault> {
        let end = off.saturating_add(len as u64);
        let at = || PayloadAt {
            file: self.file_name(),
            off,
            end,
        };
        if end > self.committed {
            return Some(PayloadFault::BeyondCommitted {
                at: at(),
                committed: self.committed,
            });
        }
        // Nothing committed: no file, and nothing to read either.
        let file = self.file.as_ref()?;
        let unreadable = |error| Some(PayloadFault::Unreadable { at: at(), error });
        match file.metadata() {
            Ok(m) if m.len() < end => {
                return Some(PayloadFault::BeyondEnd {
                    at: at(),
                    file_len: m.len(),
                })
            }
            Ok(_) => {}
            Err(e) => return unreadable(e),
        }
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, off)
            .err()
            .and_then(unreadable)
    }

    /// The payload file's name inside the store directory.
    fn file_name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }

    /// Where this writer's file ends before it appends anything: what the
    /// file goes back to if its transaction does not commit.
    pub(crate) fn tail(&self) -> Tail {
        Tail {
            path: self.path.clone(),
            size: self.committed,
        }
    }

    /// Appends a payload inside a write transaction; returns its offset.
    pub(crate) fn append(&mut self, data: &[u8]) -> Result<u64> {
        let off = self.flushed + self.pending.len() as u64;
        self.pending.extend_from_slice(data);
        if self.pending.len() >= CHUNK {
            self.write_pending()?;
        }
        Ok(off)
    }

    /// Where the next appended payload goes.
    pub(crate) fn end(&self) -> u64 {
        self.flushed + self.pending.len() as u64
    }

    /// Takes back what was appended since `end()` was `to` (never below
    /// the committed size): pending bytes dropped, written ones cut off
    /// the file.
    pub(crate) fn rewind(&mut self, to: u64) -> Result<()> {
        let to = to.max(self.committed);
        if to >= self.flushed {
            self.pending
                .truncate(usize::try_from(to - self.flushed).unwrap_or(usize::MAX));
            return Ok(());
        }
        self.pending.clear();
        if let Some(f) = &self.file {
            f.set_len(to).map_err(|e| io(&self.path, e))?;
        }
        self.flushed = to;
        Ok(())
    }

    fn write_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let f = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(open_or_create(&self.path)?),
        };
        f.write_all_at(&self.pending, self.flushed)
            .map_err(|e| io(&self.path, e))?;
        let end = self.flushed + self.pending.len() as u64;
        drop_behind(f, self.flushed, end);
        self.flushed = end;
        self.pending.clear();
        Ok(())
    }

    /// Before the transaction that references the appended payloads
    /// commits: writes them, makes them durable if asked to, and records
    /// the new committed size.
    pub(crate) fn finish(&mut self, conn: &Connection, pfs: u32, durable: bool) -> Result<()> {
        self.write_pending()?;
        if self.flushed == self.committed {
            return Ok(());
        }
        if let (true, Some(f)) = (durable, &self.file) {
            f.sync_data().map_err(|e| io(&self.path, e))?;
        }
        conn.prepare_cached(
            "INSERT INTO blob(pfs, gen, size) VALUES (?1, ?2, ?3)
             ON CONFLICT(pfs) DO UPDATE SET size = excluded.size",
        )?
        .execute(params![pfs, self.gen, self.flushed as i64])?;
        self.committed = self.flushed;
        Ok(())
    }
}

/// Where a payload lies: its bytes `off..end` of the payload file `file`.
#[derive(Debug)]
pub struct PayloadAt {
    pub file: String,
    pub off: u64,
    pub end: u64,
}

impl fmt::Display for PayloadAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "payload at bytes {}..{} of {}",
            self.off, self.end, self.file
        )
    }
}

/// Why a record's payload cannot be read from its payload file.
#[derive(Debug, thiserror::Error)]
pub enum PayloadFault {
    /// The row names no place in the file.
    #[error("payload offset {boff} or length {len} is negative")]
    BadPlace { boff: i64, len: i32 },
    /// Past the size the database records as committed: a writer's
    /// bytes that never committed, or a row that names a wrong offset.
    #[error("{at} lies beyond the committed size {committed}")]
    BeyondCommitted { at: PayloadAt, committed: u64 },
    /// Inside the committed size, in bytes the file no longer has.
    #[error("{at} lies beyond the file's end at {file_len} (truncated)")]
    BeyondEnd { at: PayloadAt, file_len: u64 },
    #[error("{at} cannot be read: {}", crate::errno::strerror(.error))]
    Unreadable {
        at: PayloadAt,
        error: std::io::Error,
    },
}

/// The committed end of a payload file as a write transaction found it.
/// Bytes appended after it belong to that transaction until it commits;
/// `cut` gives them back when it does not.
pub(crate) struct Tail {
    path: PathBuf,
    size: u64,
}

impl Tail {
    /// Truncates the file to the committed size. Called while the
    /// transaction still holds the write lock, so no other writer is
    /// appending yet; readers never look past the committed size.
    pub(crate) fn cut(&self) -> std::io::Result<()> {
        let f = match OpenOptions::new().write(true).open(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            f => f?,
        };
        if f.metadata()?.len() > self.size {
            f.set_len(self.size)?;
        }
        Ok(())
    }
}

/// A payload file opened for appending; a new one gets the database
/// file's mode and its directory entry is made durable at once, so that a
/// commit referencing it never outlives the file itself (once per
/// generation of a PFS's file).
fn open_or_create(path: &Path) -> Result<File> {
    match OpenOptions::new().read(true).write(true).open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_new(path),
        r => Ok(r.map_err(|e| io(path, e))?),
    }
}

/// Creates the payload file `path`, which must not exist, with the
/// store's mode, and makes its directory entry durable.
fn create_new(path: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io(path, e))?;
    // The store's mode, not the umask's.
    let root = path.parent().unwrap_or(Path::new("."));
    f.set_permissions(Permissions::from_mode(super::schema::file_mode(root)))
        .map_err(|e| io(path, e))?;
    crate::fsio::sync_parent(path).map_err(|e| io(path, e))?;
    Ok(f)
}

/// Makes every committed payload of `pfs` durable (before a slave's sync
/// point moves over records mirror-write left unsynced).
pub(crate) fn sync(conn: &Connection, root: &Path, pfs: u32) -> Result<()> {
    let (gen, size) = state(conn, pfs)?;
    if size == 0 {
        return Ok(());
    }
    let path = path_of(root, pfs, gen);
    // fsync needs a descriptor open for writing on some systems.
    let f = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| io(&path, e))?;
    f.sync_data().map_err(|e| io(&path, e).into())
}

/// Starts a new, empty generation of `pfs`'s blob file (PFS destroy);
/// returns the old file, to be removed once the change has committed.
pub(crate) fn retire(conn: &Connection, root: &Path, pfs: u32) -> Result<PathBuf> {
    let (gen, _) = state(conn, pfs)?;
    conn.prepare_cached(
        "INSERT INTO blob(pfs, gen, size) VALUES (?1, ?2, 0)
         ON CONFLICT(pfs) DO UPDATE SET gen = excluded.gen, size = 0",
    )?
    .execute(params![pfs, gen + 1])?;
    Ok(path_of(root, pfs, gen))
}

/// Makes the file `gen`, `size` bytes long, the payload file of `pfs`
/// (a reblock, whose transaction also points the rows at it); returns the
/// file it replaces, to be removed once the change has committed.
pub(super) fn switch(
    conn: &Connection,
    root: &Path,
    pfs: u32,
    gen: i64,
    size: u64,
) -> Result<PathBuf> {
    let (old, _) = state(conn, pfs)?;
    conn.prepare_cached(
        "INSERT INTO blob(pfs, gen, size) VALUES (?1, ?2, ?3)
         ON CONFLICT(pfs) DO UPDATE SET gen = excluded.gen, size = excluded.size",
    )?
    .execute(params![pfs, gen, size as i64])?;
    Ok(path_of(root, pfs, old))
}

/// Whether `e` says a payload file is missing: one a reblock or destroy
/// replaced (and removed) after the reader's snapshot began.
pub(super) fn is_gone(e: &crate::pfs::PfsError) -> bool {
    matches!(e, crate::pfs::PfsError::Store(StoreError::Io { source, .. })
        if source.kind() == std::io::ErrorKind::NotFound)
}

/// Removes a retired blob file; readers that still have it open keep
/// reading their snapshot.
pub(crate) fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path, e).into()),
        _ => Ok(()),
    }
}

fn io(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsio::{DROP_GRAIN, DROP_LAG};

    impl Blobs {
        fn read(&self, off: u64, len: usize) -> Result<Vec<u8>> {
            let mut v = Vec::new();
            self.read_into(off, len, &mut v)?;
            Ok(v)
        }
    }

    fn db() -> (tempfile::TempDir, Connection) {
        let d = tempfile::tempdir().unwrap();
        let c = Connection::open(d.path().join("db")).unwrap();
        c.execute_batch(
            "CREATE TABLE blob(pfs INTEGER PRIMARY KEY, gen INTEGER NOT NULL, size INTEGER NOT NULL)",
        )
        .unwrap();
        (d, c)
    }

    /// The bytes of `path` in the page cache, as util-linux's fincore
    /// counts them.
    #[cfg(target_os = "linux")]
    fn cached_bytes(path: &Path) -> u64 {
        let out = std::process::Command::new("fincore")
            .args(["--bytes", "--noheadings", "--output", "RES"])
            .arg(path)
            .output()
            .expect("fincore (util-linux) runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn written_payloads_leave_the_page_cache_behind_the_writer() {
        // On the disk the sources are on: tmpfs pages are the file itself.
        let d = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let c = Connection::open(d.path().join("db")).unwrap();
        c.execute_batch("CREATE TABLE blob(pfs INTEGER PRIMARY KEY, gen INTEGER, size INTEGER)")
            .unwrap();
        // mirror-write's shape: 448 KiB batches of 16 KiB records, each a
        // writer of its own. Synced between batches, so that every range
        // is written back by the time it is dropped however slow the disk.
        let record = vec![0xa5u8; 16384];
        for _ in 0..200 {
            let mut b = Blobs::open_writer(&c, d.path(), 1).unwrap();
            for _ in 0..28 {
                b.append(&record).unwrap();
            }
            b.finish(&c, 1, false).unwrap();
            sync(&c, d.path(), 1).unwrap();
        }
        let path = path_of(d.path(), 1, 0);
        let written = fs::metadata(&path).unwrap().len();
        assert_eq!(written, 200 * 28 * 16384);
        let cached = cached_bytes(&path);
        assert!(
            cached <= DROP_LAG + DROP_GRAIN + (448 << 10),
            "{cached} of {written} bytes still cached"
        );
    }

    #[test]
    fn appended_payloads_read_back_before_and_after_commit() {
        let (d, c) = db();
        let mut b = Blobs::open_writer(&c, d.path(), 3).unwrap();
        let big = vec![7u8; CHUNK + 10];
        let o1 = b.append(b"abc").unwrap();
        let o2 = b.append(&big).unwrap();
        let o3 = b.append(b"xyz").unwrap();
        assert_eq!((o1, o2, o3), (0, 3, 3 + big.len() as u64));
        assert_eq!(b.read(o3, 3).unwrap(), b"xyz");
        assert_eq!(b.read(o2, big.len()).unwrap(), big);
        b.finish(&c, 3, true).unwrap();
        let r = Blobs::open(&c, d.path(), 3).unwrap();
        assert_eq!(r.read(o1, 3).unwrap(), b"abc");
        assert_eq!(r.read(o3, 3).unwrap(), b"xyz");
        assert!(r.read(o3, 4).is_err());
    }

    #[test]
    fn reads_in_file_order_and_out_of_it_see_the_same_bytes() {
        let (d, c) = db();
        let mut b = Blobs::open_writer(&c, d.path(), 4).unwrap();
        // 16 KiB payloads whose bytes name them, across several chunks.
        let payload =
            |i: u32| -> Vec<u8> { (0..16384u32).map(|j| (i * 7 + j / 64) as u8).collect() };
        let offs: Vec<u64> = (0..200).map(|i| b.append(&payload(i)).unwrap()).collect();
        b.finish(&c, 4, false).unwrap();
        let r = Blobs::open(&c, d.path(), 4).unwrap();
        for (i, &o) in offs.iter().enumerate() {
            assert_eq!(
                r.read(o, 16384).unwrap(),
                payload(i as u32),
                "in order, #{i}"
            );
        }
        for i in [150usize, 3, 64, 65, 199, 0, 1] {
            assert_eq!(r.read(offs[i], 16384).unwrap(), payload(i as u32), "#{i}");
        }
        assert!(r.read(offs[199], 16385).is_err());
    }

    /// A file shorter than its committed size (its unsynced tail lost):
    /// payloads before the loss read back, read ahead or not; the lost
    /// one is an error.
    #[test]
    fn a_lost_tail_fails_only_the_payloads_in_it() {
        let (d, c) = db();
        let mut b = Blobs::open_writer(&c, d.path(), 5).unwrap();
        let offs: Vec<u64> = (0..8u8).map(|i| b.append(&[i; 20_000]).unwrap()).collect();
        b.finish(&c, 5, false).unwrap();
        let f = OpenOptions::new()
            .write(true)
            .open(path_of(d.path(), 5, 0))
            .unwrap();
        f.set_len(offs[6] + 100).unwrap();
        let r = Blobs::open(&c, d.path(), 5).unwrap();
        for (i, &o) in offs.iter().enumerate().take(6) {
            assert_eq!(r.read(o, 20_000).unwrap(), vec![i as u8; 20_000]);
        }
        assert!(r.read(offs[6], 20_000).is_err());
        assert!(r.read(offs[7], 20_000).is_err());
        assert_eq!(r.read(offs[2], 20_000).unwrap(), vec![2u8; 20_000]);
    }

    /// What `fault` tells about payloads a read failed on.
    #[test]
    fn faults_name_where_a_payload_lies_and_why_it_cannot_be_read() {
        let (d, c) = db();
        let mut b = Blobs::open_writer(&c, d.path(), 7).unwrap();
        b.append(&[3u8; 30_000]).unwrap();
        b.finish(&c, 7, false).unwrap();
        // Bytes a writer appended but never committed.
        let path = path_of(d.path(), 7, 0);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all_at(&[4u8; 1000], 30_000)
            .unwrap();
        let r = Blobs::open(&c, d.path(), 7).unwrap();
        assert!(r.fault(0, 30_000).is_none());
        assert_eq!(
            r.fault(29_500, 1000).unwrap().to_string(),
            "payload at bytes 29500..30500 of .hammer-store.pfs00007.0 \
             lies beyond the committed size 30000"
        );
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(20_000)
            .unwrap();
        assert!(r.fault(0, 20_000).is_none());
        assert_eq!(
            r.fault(10_000, 20_000).unwrap().to_string(),
            "payload at bytes 10000..30000 of .hammer-store.pfs00007.0 \
             lies beyond the file's end at 20000 (truncated)"
        );
    }

    #[test]
    fn uncommitted_bytes_are_overwritten_by_the_next_writer() {
        let (d, c) = db();
        let mut b = Blobs::open_writer(&c, d.path(), 1).unwrap();
        b.append(b"kept").unwrap();
        b.finish(&c, 1, false).unwrap();
        let mut aborted = Blobs::open_writer(&c, d.path(), 1).unwrap();
        aborted.append(&vec![9u8; CHUNK]).unwrap();
        drop(aborted);
        let mut next = Blobs::open_writer(&c, d.path(), 1).unwrap();
        assert_eq!(next.append(b"next").unwrap(), 4);
        next.finish(&c, 1, false).unwrap();
        let r = Blobs::open(&c, d.path(), 1).unwrap();
        assert_eq!(r.read(0, 8).unwrap(), b"keptnext");
    }

    #[test]
    fn a_cut_tail_gives_back_what_a_writer_appended_since_it_began() {
        let (d, c) = db();
        // A first writer's file does not exist until it writes.
        let mut first = Blobs::open_writer(&c, d.path(), 6).unwrap();
        let none = first.tail();
        none.cut().unwrap();
        first.append(b"kept").unwrap();
        first.finish(&c, 6, false).unwrap();
        let mut b = Blobs::open_writer(&c, d.path(), 6).unwrap();
        let tail = b.tail();
        b.append(&vec![1u8; CHUNK + 1]).unwrap();
        let path = path_of(d.path(), 6, 0);
        assert_eq!(fs::metadata(&path).unwrap().len(), 4 + CHUNK as u64 + 1);
        tail.cut().unwrap();
        tail.cut().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"kept");
        none.cut().unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_retired_generation_starts_empty_in_a_new_file() {
        let (d, c) = db();
        let mut b = Blobs::open_writer(&c, d.path(), 2).unwrap();
        b.append(b"old").unwrap();
        b.finish(&c, 2, true).unwrap();
        sync(&c, d.path(), 2).unwrap();
        let old = retire(&c, d.path(), 2).unwrap();
        assert!(old.exists());
        remove(&old).unwrap();
        remove(&old).unwrap();
        let mut b = Blobs::open_writer(&c, d.path(), 2).unwrap();
        assert_eq!(b.append(b"new").unwrap(), 0);
        b.finish(&c, 2, true).unwrap();
        assert_eq!(
            Blobs::open(&c, d.path(), 2).unwrap().read(0, 3).unwrap(),
            b"new"
        );
    }
}

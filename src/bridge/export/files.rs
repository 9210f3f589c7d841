//! The regular files of an export: each created once with its data,
//! owner, mode and times set through its descriptor, then its other
//! names linked; small files are written by a pool of threads fed in
//! batches through a bounded queue, large ones streamed by the caller.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use nix::sys::stat::futimens;

use super::plan::Ino;
use crate::bridge::BridgeError;

/// A file's data is gathered and written in pieces of up to this size;
/// a file larger than it is streamed by the caller, not queued.
pub const WRITE_WINDOW: usize = 1 << 20;
/// A batch goes to the pool once it holds this many files or bytes.
const BATCH_FILES: usize = 64;
const BATCH_BYTES: usize = 1 << 20;
/// Batches queued per writer thread: with the ones being written, what
/// the pool holds is a few batches per thread.
const QUEUED_PER_WRITER: usize = 2;
/// Writer threads at most: file creation scales little beyond this.
const MAX_WRITERS: usize = 4;

/// How files are created and finished: what export's options and user
/// allow, and what a new file already has without a syscall.
#[derive(Clone, Copy, Debug)]
pub struct Finish {
    /// Owners are set (and setuid/setgid kept) only as root.
    pub root_user: bool,
    /// The owner and group every new file gets, when the directories
    /// cannot decide otherwise: files of that owner need no chown.
    pub creator: Option<(u32, u32)>,
    /// The process's umask, when known: a mode it leaves whole is given
    /// at creation and needs no chmod.
    pub umask: Option<u32>,
}

impl Finish {
    pub(super) fn mode(&self, ino: &Ino) -> u32 {
        // setuid/setgid only survive for root, as with tar.
        let keep = if self.root_user { 0o7777 } else { 0o1777 };
        u32::from(ino.mode) & keep
    }

    /// The mode a file is created with, and whether that is its final
    /// mode (a chown by root clears only setuid/setgid, never given at
    /// creation).
    fn create_mode(&self, ino: &Ino) -> (u32, bool) {
        let mode = self.mode(ino);
        match self.umask {
            Some(mask) if mode & 0o7000 == 0 && mode & mask == 0 => (mode, true),
            _ => (0o600, false),
        }
    }

    fn needs_chown(&self, ino: &Ino) -> bool {
        self.root_user && self.creator != Some((ino.uid, ino.gid))
    }
}

/// The process's umask, from /proc: umask(2) would change it for a
/// moment under the other threads.
pub fn umask() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let mask = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(mask.trim(), 8).ok()
}

/// What went wrong with one file: `seq` places it among the others.
#[derive(Debug, Default)]
pub struct Problems {
    /// Names that could not be created or linked.
    pub made: Vec<(u64, String)>,
    /// Owners, modes and times that could not be set.
    pub attrs: Vec<(u64, String)>,
}

impl Problems {
    pub fn append(&mut self, other: Problems) {
        self.made.extend(other.made);
        self.attrs.extend(other.attrs);
    }
}

/// A regular file being written: created at the first of its names that
/// could be, the rest linked to it at the end.
pub struct FileOut {
    file: File,
    seq: u64,
    ino: Ino,
    paths: Vec<PathBuf>,
    /// Index in `paths` of the name created.
    primary: usize,
    /// The end of the data written so far.
    end: u64,
    /// Data gathered for the next write, and where it goes.
    pending: Vec<u8>,
    pending_at: u64,
}

impl FileOut {
    /// Creates the file at the first of `paths` that can be; every name
    /// that cannot is reported. `None` when none could.
    pub fn create(
        seq: u64,
        ino: Ino,
        paths: Vec<PathBuf>,
        how: Finish,
        problems: &mut Problems,
    ) -> Option<Self> {
        let (mode, _) = how.create_mode(&ino);
        for (primary, path) in paths.iter().enumerate() {
            // O_EXCL: never opens an existing file or follows a symlink.
            let made = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path);
            match made {
                Ok(file) => {
                    return Some(FileOut {
                        file,
                        seq,
                        ino,
                        paths,
                        primary,
                        end: 0,
                        pending: Vec::new(),
                        pending_at: 0,
                    })
                }
                Err(e) => problems
                    .made
                    .push((seq, format!("{}: {e}", path.display()))),
            }
        }
        None
    }

    /// The name the file was created at.
    pub fn path(&self) -> &Path {
        &self.paths[self.primary]
    }

    /// The size the file gets.
    pub fn size(&self) -> u64 {
        self.ino.size
    }

    /// Writes `data` at `at`; a failure ends the export.
    pub fn write_at(&mut self, data: &[u8], at: u64) -> Result<(), BridgeError> {
        self.file
            .write_all_at(data, at)
            .map_err(|e| BridgeError::io(&self.paths[self.primary], e))?;
        self.end = self.end.max(at + data.len() as u64);
        Ok(())
    }

    /// `write_at` through a buffer: consecutive pieces are written
    /// together, up to `WRITE_WINDOW` at a time.
    pub fn buffer(&mut self, data: &[u8], at: u64) -> Result<(), BridgeError> {
        if self.pending_at + self.pending.len() as u64 != at {
            self.flush()?;
        }
        if self.pending.is_empty() {
            self.pending_at = at;
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() >= WRITE_WINDOW {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BridgeError> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.write_at(&pending, self.pending_at)?;
            self.pending = pending;
            self.pending.clear();
        }
        Ok(())
    }

    /// Writes what is buffered, sizes the file (a hole to its end stays
    /// sparse), sets owner, mode and times, closes it and links its other
    /// names. Ok(false): its size could not be set.
    pub fn finish(mut self, how: Finish, problems: &mut Problems) -> Result<bool, BridgeError> {
        self.flush()?;
        let path = &self.paths[self.primary];
        let seq = self.seq;
        if self.end < self.ino.size {
            if let Err(e) = self.file.set_len(self.ino.size) {
                problems
                    .made
                    .push((seq, format!("{}: {e}", path.display())));
                return Ok(false);
            }
        }
        let mut fail = |what: &str, e: String| {
            problems
                .attrs
                .push((seq, format!("{}: cannot set {what}: {e}", path.display())))
        };
        let ino = &self.ino;
        if how.needs_chown(ino) {
            if let Err(e) = std::os::unix::fs::fchown(&self.file, Some(ino.uid), Some(ino.gid)) {
                fail("owner", e.to_string());
            }
        }
        if !how.create_mode(ino).1 {
            if let Err(e) = self
                .file
                .set_permissions(fs::Permissions::from_mode(how.mode(ino)))
            {
                fail("mode", e.to_string());
            }
        }
        let (atime, mtime) = (super::timespec(ino.atime), super::timespec(ino.mtime));
        if let Err(e) = futimens(self.file.as_raw_fd(), &atime, &mtime) {
            fail("times", e.desc().to_string());
        }
        drop(self.file);
        for link in &self.paths[self.primary + 1..] {
            if let Err(e) = fs::hard_link(path, link) {
                problems
                    .made
                    .push((seq, format!("{}: {e}", link.display())));
            }
        }
        Ok(true)
    }
}

/// A small file whose data is all in hand.
pub struct Job {
    pub seq: u64,
    pub ino: Ino,
    pub paths: Vec<PathBuf>,
    /// Pieces of data and where they go, in file order.
    pub pieces: Vec<(u64, Vec<u8>)>,
}

impl Job {
    fn bytes(&self) -> usize {
        self.pieces.iter().map(|(_, d)| d.len()).sum()
    }

    /// Writes the whole file; true if it was created.
    fn run(self, how: Finish, problems: &mut Problems) -> Result<bool, BridgeError> {
        let Some(mut out) = FileOut::create(self.seq, self.ino, self.paths, how, problems) else {
            return Ok(false);
        };
        for (at, data) in &self.pieces {
            out.write_at(data, *at)?;
        }
        out.finish(how, problems)
    }
}

/// What a writer thread hands back: its problems, and whether all its
/// writes succeeded.
type Outcome = (Problems, Result<(), BridgeError>);

/// Writer threads taking batches of small files from one bounded queue.
pub struct Pool {
    queue: Option<SyncSender<Vec<Job>>>,
    writers: Vec<JoinHandle<Outcome>>,
    batch: Vec<Job>,
    batch_bytes: usize,
    /// Set by a writer whose write failed: the export stops.
    failed: Arc<AtomicBool>,
    /// Files created by the writers so far.
    created: Arc<AtomicU64>,
}

impl Pool {
    pub fn new(how: Finish) -> Self {
        let n = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_WRITERS);
        let (queue, rx) = sync_channel(n * QUEUED_PER_WRITER);
        let rx = Arc::new(Mutex::new(rx));
        let failed = Arc::new(AtomicBool::new(false));
        let created = Arc::new(AtomicU64::new(0));
        let writers = (0..n)
            .map(|_| {
                let (rx, failed, created) = (rx.clone(), failed.clone(), created.clone());
                std::thread::spawn(move || writer(&rx, how, &failed, &created))
            })
            .collect();
        Pool {
            queue: Some(queue),
            writers,
            batch: Vec::with_capacity(BATCH_FILES),
            batch_bytes: 0,
            failed,
            created,
        }
    }

    /// Files the writers created so far.
    pub fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    /// Queues one small file. An error is a writer's failed write.
    pub fn push(&mut self, job: Job) -> Result<(), BridgeError> {
        self.batch_bytes += job.bytes();
        self.batch.push(job);
        if self.batch.len() >= BATCH_FILES || self.batch_bytes >= BATCH_BYTES {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), BridgeError> {
        if self.failed.load(Ordering::Relaxed) {
            return Err(self.stop().1.err().unwrap_or(BridgeError::WritersStopped));
        }
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_FILES));
        self.batch_bytes = 0;
        let sent = self.queue.as_ref().map(|q| q.send(batch));
        match sent {
            Some(Ok(())) => Ok(()),
            // Every writer is gone: one failed.
            _ => Err(self.stop().1.err().unwrap_or(BridgeError::WritersStopped)),
        }
    }

    /// Writes what is queued, waits for the writers and returns what
    /// they reported: the problems, the files created, and the first
    /// failed write.
    pub fn finish(mut self) -> (Problems, u64, Result<(), BridgeError>) {
        let (problems, result) = match self.send() {
            Ok(()) => self.stop(),
            Err(e) => (Problems::default(), Err(e)),
        };
        (problems, self.created(), result)
    }

    fn stop(&mut self) -> Outcome {
        self.queue = None;
        let mut problems = Problems::default();
        let mut result = Ok(());
        for w in self.writers.drain(..) {
            let (p, r) = w
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            problems.append(p);
            if result.is_ok() {
                result = r;
            }
        }
        (problems, result)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Reached without `finish` only when the export already failed:
        // what the writers report then adds nothing.
        let _ = self.stop();
    }
}

fn writer(
    rx: &Mutex<Receiver<Vec<Job>>>,
    how: Finish,
    failed: &AtomicBool,
    created: &AtomicU64,
) -> Outcome {
    let mut problems = Problems::default();
    loop {
        // The lock is held only to take a batch, never while writing.
        let batch = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => break,
        };
        let Ok(batch) = batch else { break };
        // Another writer's write failed: the export stops.
        if failed.load(Ordering::Relaxed) {
            break;
        }
        for job in batch {
            match job.run(how, &mut problems) {
                Ok(true) => {
                    created.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => {}
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    return (problems, Err(e));
                }
            }
        }
    }
    (problems, Ok(()))
}

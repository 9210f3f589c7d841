//! `-j <dest>`: every long command writes one JSON object per line (schema
//! version 1, documented in the README's "JSON-lines events"): `start`,
//! `batch`, `sync`, `lost-link`, `retry`, `error`, `dropped` and `end`.
//! Clones share one sink; each line is one write, so the two sides of a
//! copy never interleave. A file or descriptor is written by a thread of
//! its own through a bounded queue: a reader that is slow, stalled or not
//! there yet (a FIFO) never delays the run. The default handle writes
//! nothing.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{SigSet, SigmaskHow};
use serde::Serialize;

/// The schema's version, in every line as `"v"`.
pub const VERSION: u32 = 1;

/// A handle on the run's event sink.
#[derive(Clone, Default)]
pub struct Events {
    sink: Option<Arc<Sink>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.on() {
            "Events(on)"
        } else {
            "Events(off)"
        })
    }
}

struct Sink {
    out: Out,
    command: String,
    started: Instant,
    /// The batches of the source side (or of a command without sides),
    /// and of the target side: `end` tells the source's when there are
    /// any, so that a copy does not count its stream twice.
    totals: Mutex<[Totals; 2]>,
}

/// Where the lines go.
enum Out {
    /// Written in place, as every other message on stderr is (and by the
    /// unit tests into a buffer).
    Direct(Mutex<Box<dyn Write + Send>>),
    /// Handed to the writer thread.
    Queued(Queue),
}

/// Lines a run may have written ahead of a slow reader; beyond them
/// lines are counted and told as one `dropped` line.
const QUEUE_LINES: usize = 4096;

/// How long the run's end waits for the writer to pass on what is queued.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

struct Queue {
    /// Taken at `end`, which closes the queue.
    tx: Mutex<Option<SyncSender<Vec<u8>>>>,
    /// The `end` line, kept out of the queue so that an overflow never
    /// drops it: the writer writes it after all the others.
    last: Arc<Mutex<Option<Vec<u8>>>>,
    dropped: Arc<AtomicU64>,
    /// Set by the writer once it has written all it will.
    done: Arc<(Mutex<bool>, Condvar)>,
}

/// A destination the writer thread writes to.
enum Dest {
    Open(File),
    /// A FIFO no reader has opened yet: the writer opens it, waiting for
    /// one, while the run goes on.
    Fifo(PathBuf),
}

/// What the run's `batch` events added up to.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Totals {
    pub batches: u64,
    pub records: u64,
    pub bytes: u64,
}

/// Which side of a mirror an event comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Source,
    Target,
}

/// What a run works on, as its `start` tells it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Start {
    /// The PFS path as given.
    pub pfs: String,
    pub pfs_id: Option<u32>,
    pub shared_uuid: Option<String>,
    /// The first batch's TID range (`0x%016x`).
    pub begin_tid: Option<String>,
    pub end_tid: Option<String>,
    /// The bytes the plan expects: a source's prescan, an export's file
    /// sizes; `null` when none was made.
    pub planned_bytes: Option<u64>,
}

/// A TID as the events write it: `0x` and 16 hex digits (a JSON number
/// cannot hold every u64 exactly).
pub fn tid(t: u64) -> String {
    format!("0x{t:016x}")
}

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    v: u32,
    event: &'a str,
    time: f64,
    command: &'a str,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize)]
struct WithSide<'a, T: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    side: Option<Side>,
    #[serde(flatten)]
    body: &'a T,
}

#[derive(Serialize)]
struct Batch {
    begin_tid: String,
    end_tid: String,
    records: u64,
    bytes: u64,
    seconds: f64,
}

#[derive(Serialize)]
struct Sync {
    tid: String,
}

#[derive(Serialize)]
struct Target {
    /// 0: the whole copy; n: its n-th target (several targets).
    target: usize,
}

#[derive(Serialize)]
struct Retry {
    target: usize,
    after_seconds: f64,
}

#[derive(Serialize)]
struct Error<'a> {
    class: &'a str,
    message: &'a str,
    errno: Option<i32>,
}

#[derive(Serialize)]
struct Skipped<'a> {
    path: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct Cleanup<'a> {
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pfs_id: Option<u32>,
    step: &'a str,
    result: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

#[derive(Serialize)]
struct End {
    status: u8,
    seconds: f64,
    totals: Totals,
}

impl Events {
    /// The sink `dest` names: `-` for stderr, `fd:N` for a descriptor
    /// open for writing (written itself, not reopened), else a file
    /// appended to, created if missing but never through a symlink.
    pub fn open(dest: &OsStr, command: &str) -> io::Result<Events> {
        let out = match dest.as_bytes() {
            b"-" => Out::Direct(Mutex::new(Box::new(io::stderr()))),
            d if d.starts_with(b"fd:") => {
                let n: RawFd = std::str::from_utf8(&d[3..])
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
                Out::Queued(Queue::start(Dest::Open(adopt_fd(n)?), command))
            }
            _ => Out::Queued(Queue::start(open_file(Path::new(dest))?, command)),
        };
        Ok(Events::with(out, command))
    }

    fn with(out: Out, command: &str) -> Events {
        Events {
            sink: Some(Arc::new(Sink {
                out,
                command: command.to_string(),
                started: Instant::now(),
                totals: Mutex::new([Totals::default(); 2]),
            })),
        }
    }

    /// Whether events are written (callers skip counting otherwise).
    pub fn on(&self) -> bool {
        self.sink.is_some()
    }

    pub fn start(&self, side: Option<Side>, start: &Start) {
        self.emit("start", side, start);
    }

    /// A batch done: on a source once its SYNC or IDLE is sent (and, two
    /// way, acknowledged), on a target once it moved the sync point.
    pub fn batch(
        &self,
        side: Option<Side>,
        range: (u64, u64),
        records: u64,
        bytes: u64,
        took: f64,
    ) {
        if let Some(s) = &self.sink {
            let mut all = s.totals.lock().unwrap_or_else(|e| e.into_inner());
            let t = &mut all[usize::from(side == Some(Side::Target))];
            t.batches += 1;
            t.records += records;
            t.bytes += bytes;
        }
        let b = Batch {
            begin_tid: tid(range.0),
            end_tid: tid(range.1),
            records,
            bytes,
            seconds: took,
        };
        self.emit("batch", side, &b);
    }

    /// A sync point moved (a target's own; a source tells what its target
    /// acknowledged).
    pub fn sync(&self, side: Option<Side>, t: u64) {
        self.emit("sync", side, &Sync { tid: tid(t) });
    }

    /// mirror-stream lost its link to the copy (`target` 0) or to one of
    /// its targets.
    pub fn lost_link(&self, target: usize) {
        self.emit("lost-link", None, &Target { target });
    }

    /// It connects again after `after` seconds.
    pub fn retry(&self, target: usize, after: f64) {
        self.emit(
            "retry",
            None,
            &Retry {
                target,
                after_seconds: after,
            },
        );
    }

    /// import skipped a file or directory it could not read.
    pub fn skipped(&self, path: &str, reason: &str) {
        self.emit("skipped", None, &Skipped { path, reason });
    }

    /// A step of cleanup on the PFS at `path`: `step` is `pfs` (whether it
    /// is handled) or the directive's word, `result` what became of it.
    pub fn cleanup(
        &self,
        path: &str,
        pfs_id: Option<u32>,
        step: &str,
        result: &str,
        message: Option<&str>,
    ) {
        let body = Cleanup {
            path,
            pfs_id,
            step,
            result,
            message,
        };
        self.emit("cleanup", None, &body);
    }

    /// A message of a failure, as printed, its class and errno.
    pub fn error(&self, class: &str, message: &str, errno: Option<i32>) {
        self.emit(
            "error",
            None,
            &Error {
                class,
                message,
                errno,
            },
        );
    }

    /// The run's last line: its exit status and what it did. What is
    /// queued is given `FLUSH_WAIT` to be written; a reader that takes
    /// longer loses it rather than hold the run.
    pub fn end(&self, status: u8) {
        let Some(s) = &self.sink else {
            return;
        };
        let [source, target] = *s.totals.lock().unwrap_or_else(|e| e.into_inner());
        let totals = if source.batches > 0 { source } else { target };
        let end = End {
            status,
            seconds: s.started.elapsed().as_secs_f64(),
            totals,
        };
        match &s.out {
            Out::Queued(q) => q.close(line(&s.command, "end", None, &end), FLUSH_WAIT),
            Out::Direct(_) => self.emit("end", None, &end),
        }
    }

    fn emit<T: Serialize>(&self, event: &str, side: Option<Side>, body: &T) {
        let Some(s) = &self.sink else {
            return;
        };
        let Some(text) = line(&s.command, event, side, body) else {
            return;
        };
        match &s.out {
            // A sink that cannot be written to loses its events, never
            // the run.
            Out::Direct(out) => {
                let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
                let _ = out.write_all(&text).and_then(|()| out.flush());
            }
            Out::Queued(q) => q.send(text),
        }
    }
}

/// One event as a line of JSON.
fn line<T: Serialize>(command: &str, event: &str, side: Option<Side>, body: &T) -> Option<Vec<u8>> {
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let line = Line {
        v: VERSION,
        event,
        time,
        command,
        body: WithSide { side, body },
    };
    // Serializing plain structs cannot fail.
    let mut text = serde_json::to_vec(&line).ok()?;
    text.push(b'\n');
    Some(text)
}

#[derive(Serialize)]
struct Dropped {
    count: u64,
}

impl Queue {
    fn start(target: Dest, command: &str) -> Queue {
        let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
        let q = Queue {
            tx: Mutex::new(Some(tx)),
            last: Arc::new(Mutex::new(None)),
            dropped: Arc::new(AtomicU64::new(0)),
            done: Arc::new((Mutex::new(false), Condvar::new())),
        };
        let writer = Writer {
            command: command.to_string(),
            last: q.last.clone(),
            dropped: q.dropped.clone(),
            done: q.done.clone(),
        };
        // The writer runs with every signal blocked, so that a signal sent
        // to the process goes to a thread that waits for it (mirror-stream's
        // SIGTERM) and not to this one, which would die of it.
        let mask = SigSet::all().thread_swap_mask(SigmaskHow::SIG_BLOCK);
        let spawned = std::thread::Builder::new()
            .name("events".into())
            .spawn(move || writer.run(target, rx));
        if let Ok(mask) = mask {
            let _ = mask.thread_set_mask();
        }
        if spawned.is_err() {
            // No writer: the queue is closed and the run goes on without.
            q.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
        q
    }

    fn send(&self, text: Vec<u8>) {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = tx.as_ref() {
            if let Err(TrySendError::Full(_)) = tx.try_send(text) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `last` is the last line; waits up to `wait` for the writer to
    /// write the rest.
    fn close(&self, last: Option<Vec<u8>>, wait: Duration) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = last;
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let (lock, cvar) = &*self.done;
        let done = lock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = cvar.wait_timeout_while(done, wait, |done| !*done);
    }
}

/// The writer thread's side of a queue.
struct Writer {
    command: String,
    last: Arc<Mutex<Option<Vec<u8>>>>,
    dropped: Arc<AtomicU64>,
    done: Arc<(Mutex<bool>, Condvar)>,
}

impl Writer {
    /// Each line in one write, a `dropped` line first when the queue
    /// overflowed since the last one; the `end` line after the queue
    /// closed.
    fn run(self, target: Dest, rx: Receiver<Vec<u8>>) {
        let out = match target {
            Dest::Open(f) => Some(f),
            Dest::Fifo(path) => OpenOptions::new().append(true).open(path).ok(),
        };
        if let Some(mut out) = out {
            let mut written = Ok(());
            for text in rx {
                written = self.write(&mut out, &text);
                if written.is_err() {
                    break;
                }
            }
            let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let (Ok(()), Some(last)) = (written, last) {
                let _ = self.write(&mut out, &last);
            }
        }
        let (lock, cvar) = &*self.done;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
    }

    fn write(&self, out: &mut File, text: &[u8]) -> io::Result<()> {
        let count = self.dropped.swap(0, Ordering::Relaxed);
        if count > 0 {
            if let Some(l) = line(&self.command, "dropped", None, &Dropped { count }) {
                out.write_all(&l)?;
            }
        }
        out.write_all(text)
    }
}

/// `fd:N`: a duplicate of descriptor N, which must be open for writing
/// (reopening it through /dev/fd would write to a descriptor passed
/// read-only, and cannot reopen a socket).
fn adopt_fd(n: RawFd) -> io::Result<File> {
    let flags = OFlag::from_bits_truncate(fcntl(n, FcntlArg::F_GETFL)?);
    let mode = flags & OFlag::O_ACCMODE;
    if mode != OFlag::O_WRONLY && mode != OFlag::O_RDWR {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "descriptor not open for writing",
        ));
    }
    let dup = fcntl(n, FcntlArg::F_DUPFD_CLOEXEC(0))?;
    // The one `unsafe` outside the kernel backend: taking ownership of a
    // descriptor number has no safe form.
    #[allow(unsafe_code)]
    // SAFETY: `dup` was returned by F_DUPFD_CLOEXEC just now: an open
    // descriptor of this process that nothing else owns or closes.
    let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dup) };
    Ok(File::from(owned))
}

/// A file to append to: an existing one (a symlink to one is followed),
/// else a new one made with O_EXCL, which refuses a symlink at the last
/// component, so a link planted where the file will be made cannot
/// redirect the events. A FIFO without a reader yet is opened later, by
/// the writer.
fn open_file(path: &Path) -> io::Result<Dest> {
    for _ in 0..2 {
        let existing = OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path);
        match existing {
            Ok(f) => {
                // Blocking again: only the writer thread writes it.
                let flags = OFlag::from_bits_truncate(fcntl(f.as_raw_fd(), FcntlArg::F_GETFL)?);
                fcntl(f.as_raw_fd(), FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
                return Ok(Dest::Open(f));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                return Ok(Dest::Fifo(path.to_path_buf()));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match OpenOptions::new().append(true).create_new(true).open(path) {
            Ok(f) => return Ok(Dest::Open(f)),
            // Made meanwhile by someone else: open it as an existing one.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && !is_symlink(path) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a symlink to a file that does not exist; not created through it",
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from_raw_os_error(libc::EEXIST))
}

fn is_symlink(path: &Path) -> bool {
    path.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_buffer() -> (Events, Arc<Mutex<Vec<u8>>>) {
        #[derive(Clone)]
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let buf = Arc::new(Mutex::new(Vec::new()));
        let e = Events::with(
            Out::Direct(Mutex::new(Box::new(Shared(buf.clone())))),
            "mirror-copy",
        );
        (e, buf)
    }

    #[test]
    fn every_line_is_one_versioned_object() {
        let (e, buf) = to_buffer();
        e.start(
            Some(Side::Source),
            &Start {
                pfs: "/s/m".into(),
                pfs_id: Some(1),
                begin_tid: Some(tid(1)),
                ..Start::default()
            },
        );
        e.batch(Some(Side::Target), (1, 0x1_0000_0002), 3, 4096, 0.5);
        e.batch(
            Some(Side::Target),
            (0x1_0000_0002, 0x1_0000_0003),
            1,
            100,
            0.1,
        );
        e.sync(Some(Side::Target), 0x1_0000_0003);
        e.error("protocol", "hammer: x", None);
        e.end(3);
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 6);
        for l in &lines {
            assert_eq!(l["v"], 1);
            assert_eq!(l["command"], "mirror-copy");
            assert!(l["time"].as_f64().unwrap() > 1.7e9);
        }
        assert_eq!(lines[0]["event"], "start");
        assert_eq!(lines[0]["side"], "source");
        assert_eq!(lines[0]["begin_tid"], "0x0000000000000001");
        assert_eq!(lines[0]["planned_bytes"], serde_json::Value::Null);
        assert_eq!(lines[1]["end_tid"], "0x0000000100000002");
        assert_eq!(lines[3]["tid"], "0x0000000100000003");
        assert_eq!(lines[4]["class"], "protocol");
        assert_eq!(lines[5]["event"], "end");
        assert_eq!(lines[5]["status"], 3);
        // Target batches count when no source side told any.
        assert_eq!(lines[5]["totals"]["batches"], 2);
        assert_eq!(lines[5]["totals"]["bytes"], 4196);
        assert!(lines[5].get("side").is_none());
    }

    /// A reader that stops reading: the run's events never wait for it;
    /// what did not fit in the queue is told as one `dropped` line, and
    /// every event is either written or counted there.
    #[test]
    fn a_stalled_reader_never_holds_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let e = Events::open(fifo.as_os_str(), "mirror-copy").unwrap();
        let sent = 20 * QUEUE_LINES as u64;
        let run = std::thread::spawn(move || {
            for i in 0..sent {
                e.sync(Some(Side::Target), i);
            }
            e.end(0);
        });
        // The FIFO's buffer fills and the queue after it; the run ends.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !run.is_finished() {
            assert!(Instant::now() < deadline, "the run waited for the reader");
            std::thread::sleep(Duration::from_millis(20));
        }
        run.join().unwrap();
        let flags =
            OFlag::from_bits_truncate(fcntl(reader.as_raw_fd(), FcntlArg::F_GETFL).unwrap());
        fcntl(
            reader.as_raw_fd(),
            FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK),
        )
        .unwrap();
        let mut got = String::new();
        std::io::Read::read_to_string(&mut reader, &mut got).unwrap();
        let (mut written, mut dropped) = (0, 0);
        for l in got.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            match v["event"].as_str().unwrap() {
                "dropped" => dropped += v["count"].as_u64().unwrap(),
                _ => written += 1,
            }
        }
        assert!(dropped > 0, "nothing was dropped: the test did not stall");
        assert_eq!(written + dropped, sent + 1);
        let last: serde_json::Value = serde_json::from_str(got.lines().last().unwrap()).unwrap();
        assert_eq!(last["event"], "end", "the end line is never dropped");
    }

    #[test]
    fn off_writes_nothing() {
        let e = Events::default();
        assert!(!e.on());
        e.end(0);
    }
}

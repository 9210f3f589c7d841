//! `-j <dest>`: every long command writes one JSON object per line (schema
//! version 1, documented in the README's "JSON-lines events"): `start`,
//! `batch`, `sync`, `lost-link`, `retry`, `error` and `end`. Clones share
//! one sink; each line is one write under its lock, so the two sides of a
//! copy never interleave. The default handle writes nothing.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

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
    out: Mutex<Box<dyn Write + Send>>,
    command: String,
    started: Instant,
    /// The batches of the source side (or of a command without sides),
    /// and of the target side: `end` tells the source's when there are
    /// any, so that a copy does not count its stream twice.
    totals: Mutex<[Totals; 2]>,
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
struct End {
    status: u8,
    seconds: f64,
    totals: Totals,
}

impl Events {
    /// The sink `dest` names: `-` for stderr, `fd:N` for an open
    /// descriptor, else a file appended to (created if missing).
    pub fn open(dest: &OsStr, command: &str) -> io::Result<Events> {
        let out: Box<dyn Write + Send> = match dest.as_bytes() {
            b"-" => Box::new(io::stderr()),
            d if d.starts_with(b"fd:") => {
                let n: u32 = std::str::from_utf8(&d[3..])
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
                // The descriptor reopened through /dev/fd: no unsafe here.
                Box::new(
                    OpenOptions::new()
                        .append(true)
                        .open(format!("/dev/fd/{n}"))?,
                )
            }
            _ => Box::new(
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open::<&std::path::Path>(std::path::Path::new(dest))?,
            ),
        };
        Ok(Events {
            sink: Some(Arc::new(Sink {
                out: Mutex::new(out),
                command: command.to_string(),
                started: Instant::now(),
                totals: Mutex::new([Totals::default(); 2]),
            })),
        })
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

    /// The run's last line: its exit status and what it did.
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
        self.emit("end", None, &end);
    }

    fn emit<T: Serialize>(&self, event: &str, side: Option<Side>, body: &T) {
        let Some(s) = &self.sink else {
            return;
        };
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let line = Line {
            v: VERSION,
            event,
            time,
            command: &s.command,
            body: WithSide { side, body },
        };
        // Serializing plain structs cannot fail; a sink that cannot be
        // written to loses its events, never the run.
        if let Ok(mut text) = serde_json::to_vec(&line) {
            text.push(b'\n');
            let mut out = s.out.lock().unwrap_or_else(|e| e.into_inner());
            let _ = out.write_all(&text).and_then(|()| out.flush());
        }
    }
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
        let e = Events {
            sink: Some(Arc::new(Sink {
                out: Mutex::new(Box::new(Shared(buf.clone()))),
                command: "mirror-copy".into(),
                started: Instant::now(),
                totals: Mutex::new([Totals::default(); 2]),
            })),
        };
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

    #[test]
    fn off_writes_nothing() {
        let e = Events::default();
        assert!(!e.on());
        e.end(0);
    }
}

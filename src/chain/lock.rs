//! One writer per chain: a run takes a lease (`lock.json` under the
//! prefix) before it changes anything and renews it while it runs; another
//! run that finds it held gives up. The lease is taken, and the manifest
//! replaced, with conditional writes where the server honours them (tried
//! at every run); elsewhere (Garage) by writing the lease and reading it
//! back, and by re-reading the manifest before replacing it.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::client::{Bucket, Meta, Put, S3Error};
use super::manifest::{Manifest, MANIFEST};
use super::{Chain, ChainError};

/// The lease's object name under the prefix.
pub const LOCK: &str = "lock.json";
/// Where a run tries the server's conditional writes.
pub const PROBE: &str = "lock.probe";
/// A lease not renewed for this long has lapsed: its run is gone.
pub const LEASE: Duration = Duration::from_secs(60);
/// How often a run renews its lease.
const RENEW: Duration = Duration::from_secs(10);
/// Without conditional writes, how long a run waits after writing the
/// lease before reading it back (plus twice what its read and write
/// took): a run that read the lease free just before is done writing by
/// then, and the read shows who wrote last.
const SETTLE: Duration = Duration::from_secs(1);
/// A lease bigger than this is not one of ours.
const LOCK_LIMIT: u64 = 64 << 10;

/// Runs of this process that hold a lease: one found with this process's
/// pid but not here belongs to a run that ended without giving it back.
static LIVE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Who holds a lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Holder {
    run: String,
    command: String,
    host: String,
    /// Boot id and pid namespace: where `pid` names a process this host
    /// can look for.
    machine: String,
    pid: u32,
}

fn this_machine() -> (String, String) {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let boot = read("/proc/sys/kernel/random/boot_id");
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let machine = match boot.is_empty() || ns.is_empty() {
        true => String::new(),
        false => format!("{boot} {ns}"),
    };
    (read("/proc/sys/kernel/hostname"), machine)
}

impl Holder {
    fn new(command: &str) -> Self {
        let (host, machine) = this_machine();
        Holder {
            run: uuid::Uuid::new_v4().to_string(),
            command: command.to_string(),
            host,
            machine,
            pid: std::process::id(),
        }
    }

    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether the run holding a lease last renewed `age_ms` ago is gone:
    /// the lease lapsed, or its process (on this host) has ended.
    fn gone(&self, age_ms: i64) -> bool {
        if age_ms > LEASE.as_millis() as i64 {
            return true;
        }
        let (_, machine) = this_machine();
        if machine.is_empty() || self.machine != machine {
            return false;
        }
        if self.pid == std::process::id() {
            return !LIVE.lock().is_ok_and(|l| l.contains(&self.run));
        }
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        nix::sys::signal::kill(pid, None) == Err(nix::errno::Errno::ESRCH)
    }

    fn describe(&self, age_ms: i64) -> String {
        format!(
            "{} on {} (pid {}) holds its lease, renewed {} s ago; a lease lapses {} s \
             after its last renewal",
            self.command,
            self.host,
            self.pid,
            age_ms.max(0) / 1000,
            LEASE.as_secs()
        )
    }
}

/// What this run found out about the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Server {
    /// It refuses a PUT with If-None-Match: * over an object, and one with
    /// If-Match of another ETag.
    pub conditional: bool,
    /// Its clock now, in milliseconds since 1970.
    pub now_ms: i64,
}

/// Whether `r` is a refused condition (`true`), or the write went through
/// (`false`): a server that says it does not implement the header has none.
fn refused<T>(r: Result<T, S3Error>) -> Result<bool, S3Error> {
    match r {
        Err(S3Error::Conflict(_)) => Ok(true),
        Ok(_) => Ok(false),
        Err(S3Error::Request { why, .. }) if why.contains("NotImplemented") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Tries the server's conditional writes on `key`, and reads its clock.
pub fn probe(bucket: &Bucket, key: &str) -> Result<Server, S3Error> {
    bucket.put(key, b"1\n".to_vec(), Put::Overwrite)?;
    let create = refused(bucket.put(key, b"2\n".to_vec(), Put::Create))?;
    let other = Put::Replace("\"hammer-no-such-etag\"".to_string());
    let replace = refused(bucket.put(key, b"3\n".to_vec(), other))?;
    let now_ms = bucket
        .head(key)?
        .map(|m| m.modified_ms)
        .ok_or_else(|| S3Error::Conflict(format!("{key}: gone right after it was written")))?;
    Ok(Server {
        conditional: create && replace,
        now_ms,
    })
}

/// A run's right to write a chain, renewed by a thread of its own until
/// dropped, and then given back (its requests bounded, so that a run that
/// lost the network does not wait out the retry timeout for it).
pub struct Lease {
    bucket: Bucket,
    key: String,
    url: String,
    me: Holder,
    server: Server,
    lost: Arc<AtomicBool>,
    /// When the lease was last written, by this process's clock.
    renewed: Arc<Mutex<Instant>>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl Lease {
    /// Takes the chain's lease for `command`, unless another live run holds it.
    pub fn take(chain: &Chain, command: &str) -> Result<Self, ChainError> {
        let bucket = &chain.bucket;
        let server = probe(bucket, &chain.key(PROBE))?;
        let key = chain.key(LOCK);
        let url = chain.url.to_string();
        let busy = |why: String| ChainError::Busy {
            url: url.clone(),
            why,
        };
        let me = Holder::new(command);
        let t0 = Instant::now();
        let now = bucket.get_with_meta(&key, LOCK_LIMIT)?;
        if let Some((bytes, meta)) = &now {
            // A lease that is not ours to read is taken over like a lapsed one.
            if let Ok(h) = serde_json::from_slice::<Holder>(bytes) {
                let age = server.now_ms - meta.modified_ms;
                if !h.gone(age) {
                    return Err(busy(h.describe(age)));
                }
            }
        }
        if server.conditional {
            let mode = match &now {
                Some((_, Meta { etag: Some(e), .. })) => Put::Replace(e.clone()),
                Some(_) => Put::Overwrite,
                None => Put::Create,
            };
            match bucket.put(&key, me.to_json(), mode) {
                Err(S3Error::Conflict(_)) => {
                    return Err(busy("another run took the lease at the same moment".into()))
                }
                r => r?,
            };
        } else {
            bucket.put(&key, me.to_json(), Put::Overwrite)?;
            std::thread::sleep(SETTLE + 2 * t0.elapsed());
            let back = bucket.get_with_meta(&key, LOCK_LIMIT)?;
            let holder = back.and_then(|(b, _)| serde_json::from_slice::<Holder>(&b).ok());
            if holder.as_ref().map(|h| &h.run) != Some(&me.run) {
                return Err(busy("another run took the lease at the same moment".into()));
            }
        }
        if let Ok(mut live) = LIVE.lock() {
            live.insert(me.run.clone());
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renewed = Arc::new(Mutex::new(t0));
        let (stop, stopped) = mpsc::channel();
        let renewer = {
            // A renewal that hangs in retries must not outlive the lease.
            let bucket = bucket.within(RENEW);
            let (key, me) = (key.clone(), me.clone());
            let (lost, renewed) = (lost.clone(), renewed.clone());
            std::thread::Builder::new()
                .name("hammer-lease".into())
                .spawn(move || {
                    let lease = (&*lost, &*renewed);
                    renew(&bucket, &key, &me, server.conditional, lease, &stopped)
                })
                .map_err(|e| ChainError::Local(format!("cannot start the lease thread: {e}")))?
        };
        Ok(Lease {
            bucket: bucket.within(RENEW),
            key,
            url,
            me,
            server,
            lost,
            renewed,
            stop: Some(stop),
            renewer: Some(renewer),
        })
    }

    /// Whether the server honours conditional writes.
    pub fn conditional(&self) -> bool {
        self.server.conditional
    }

    /// Fails once another run took the lease, or it went unrenewed so
    /// long that it may lapse before this run's next request is done.
    pub fn check(&self) -> Result<(), ChainError> {
        let stale = self.renewed.lock().map_or(true, |t| failing(*t));
        match self.lost.load(Ordering::SeqCst) || stale {
            false => Ok(()),
            true => Err(ChainError::Busy {
                url: self.url.clone(),
                why: "this run's lease lapsed or was taken over".into(),
            }),
        }
    }
}

/// Whether a lease last renewed at `t` is too close to lapsing to be
/// relied on: two renewals' time short of it.
fn failing(t: Instant) -> bool {
    t.elapsed() + 2 * RENEW >= LEASE
}

/// The renewing thread: until told to stop, rewrites the lease every
/// `RENEW` if it is still this run's; marks it lost when another run has
/// it or it went unrenewed too long.
fn renew(
    bucket: &Bucket,
    key: &str,
    me: &Holder,
    conditional: bool,
    (lost, renewed): (&AtomicBool, &Mutex<Instant>),
    stop: &mpsc::Receiver<()>,
) {
    let last = || renewed.lock().map_or_else(|_| Instant::now(), |t| *t);
    // Stopped, or the lease dropped: it is given back by the drop.
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(RENEW) {
        let once = || -> Result<bool, S3Error> {
            let Some((bytes, meta)) = bucket.get_with_meta(key, LOCK_LIMIT)? else {
                return Ok(false);
            };
            if serde_json::from_slice::<Holder>(&bytes).ok().as_ref() != Some(me) {
                return Ok(false);
            }
            let mode = match (conditional, meta.etag) {
                (true, Some(e)) => Put::Replace(e),
                _ => Put::Overwrite,
            };
            match bucket.put(key, me.to_json(), mode) {
                Err(S3Error::Conflict(_)) => Ok(false),
                r => r.map(|_| true),
            }
        };
        let tried = Instant::now();
        match once() {
            Ok(true) => {
                if let Ok(mut t) = renewed.lock() {
                    *t = tried;
                }
            }
            // A network failure: tried again while the lease holds.
            Err(_) if !failing(last()) => {}
            Ok(false) | Err(_) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        if let Ok(mut live) = LIVE.lock() {
            live.remove(&self.me.run);
        }
        // Given back only if still this run's; best effort: a lease left
        // behind lapses, or is taken over once its process is gone.
        if let Ok(Some((bytes, _))) = self.bucket.get_with_meta(&self.key, LOCK_LIMIT) {
            if serde_json::from_slice::<Holder>(&bytes).ok().as_ref() == Some(&self.me) {
                let _ = self.bucket.delete(&self.key);
            }
        }
    }
}

/// A run that writes the chain: its lease, and the manifest as it last
/// read or wrote it.
pub struct Writer<'a> {
    pub chain: &'a Chain,
    lease: Lease,
    etag: RefCell<Option<String>>,
    last: RefCell<Option<Manifest>>,
}

impl<'a> Writer<'a> {
    /// Takes the lease, then reads the manifest (`None`: a new chain).
    pub fn begin(chain: &'a Chain, command: &str) -> Result<(Self, Option<Manifest>), ChainError> {
        let lease = Lease::take(chain, command)?;
        let (m, etag) = match chain.manifest_with_meta()? {
            Some((m, meta)) => (Some(m), meta.etag),
            None => (None, None),
        };
        let w = Writer {
            chain,
            lease,
            etag: RefCell::new(etag),
            last: RefCell::new(m.clone()),
        };
        Ok((w, m))
    }

    /// Replaces the manifest with `m`, unless it changed since this run
    /// read or wrote it, or this run's lease is gone: then nothing is
    /// written and the run has lost to another.
    pub fn publish(&self, m: &Manifest) -> Result<(), ChainError> {
        self.lease.check()?;
        let key = self.chain.key(MANIFEST);
        let busy = || ChainError::Busy {
            url: self.chain.url.to_string(),
            why: "the manifest changed since this run read it".into(),
        };
        let etag = self.etag.borrow().clone();
        let known = self.last.borrow().is_some();
        let mode = match (self.lease.conditional(), etag, known) {
            (true, Some(e), true) => Put::Replace(e),
            (true, _, false) => Put::Create,
            // No conditional writes (or no ETag to hold to): the narrower
            // check of reading the manifest again just before.
            _ => {
                if self.chain.manifest()? != *self.last.borrow() {
                    return Err(busy());
                }
                Put::Overwrite
            }
        };
        match self.chain.bucket.put(&key, m.to_json(), mode) {
            Err(S3Error::Conflict(_)) => return Err(busy()),
            r => *self.etag.borrow_mut() = r?,
        }
        *self.last.borrow_mut() = Some(m.clone());
        Ok(())
    }

    /// Aborts the uploads that the runs before left unfinished and
    /// deletes objects of the chain's uuid that the manifest does not name
    /// (a run killed after its upload but before its manifest): safe under
    /// the lease, which no live run holds but this one.
    pub fn clean(&self, m: &mut Manifest, diag: &mut dyn Write) -> Result<(), ChainError> {
        let chain = self.chain;
        while let Some(p) = m.pending.first().cloned() {
            chain
                .bucket
                .abort_upload(&chain.key(&p.name), &p.upload_id)?;
            m.pending.remove(0);
            self.publish(m)?;
            let _ = writeln!(
                diag,
                "{}: aborted an unfinished upload of {}",
                chain.url, p.name
            );
        }
        let dir = chain.key(&m.shared_uuid);
        for obj in chain.bucket.list(&dir)? {
            let named = m.objects.iter().any(|o| chain.key(&o.name) == obj.key);
            if !named {
                self.lease.check()?;
                chain.bucket.delete(&obj.key)?;
                let _ = writeln!(
                    diag,
                    "{}: removed {} (no manifest names it)",
                    chain.url, obj.key
                );
            }
        }
        Ok(())
    }
}

//! `mirror-copy <pfs> s3://...` / `mirror-stream`: the PFS's changes since
//! the chain's end, as one mirror-read stream object per run (per batch
//! of a stream), then the manifest that names it.

use std::cell::RefCell;
use std::io::{self, Write};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::client::{OnStart, S3Error, Written};
use super::lock::Writer;
use super::manifest::{object_name, Manifest, Pending, Span};
use super::{Chain, ChainError};
use crate::mirror::read::{mirror_read_synced, ReadOptions};
use crate::patharg::PathArg;
use crate::pfs::getpfs;
use crate::wire::zframe::ZWriter;

/// What a run added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    pub name: String,
    pub span: Span,
    pub size: u64,
}

impl Pushed {
    /// The line a run that stored an object says, unless `-q`.
    pub fn tell(&self, fs: &PathArg, chain: &Chain, diag: &mut dyn Write) {
        let _ = writeln!(
            diag,
            "Stored {fs} {:#018x} to {:#018x} as {}/{} ({} bytes)",
            self.span.beg, self.span.end, chain.url, self.name, self.size
        );
    }
}

/// One run: the PFS's records from the chain's end (TID 0 for a new
/// chain) up to its sync point now, uploaded as one object (compressed at
/// `level`); `None` when the chain is there already.
pub fn push(
    fs: &PathArg,
    chain: &Chain,
    o: &ReadOptions,
    level: Option<i32>,
    diag: &mut dyn Write,
) -> Result<Option<Pushed>, ChainError> {
    let (_, pfsd) = getpfs(fs).map_err(|e| ChainError::Local(e.to_string()))?;
    let uuid = pfsd.shared_uuid.to_string();
    let (w, m) = Writer::begin(chain, "mirror-copy")?;
    let mut m = m.unwrap_or_else(|| Manifest::new(&uuid));
    if m.shared_uuid != uuid {
        return Err(ChainError::OtherPfs {
            url: chain.url.to_string(),
            chain: m.shared_uuid,
            pfs: fs.to_string(),
            uuid,
        });
    }
    w.clean(&mut m, diag)?;
    let beg = m.end_tid().map_or(0, |e| e.saturating_add(1));
    if pfsd.sync_end_tid < beg {
        return Ok(None);
    }
    let span = Span {
        beg,
        end: pfsd.sync_end_tid,
    };
    let name = object_name(&uuid, span, level.is_some());
    let written = upload_recorded(&w, &m, fs, o, span, level, &name, diag)?;
    m.push(span, written.size, written.xxh3, level.is_some());
    w.publish(&m)?;
    Ok(Some(Pushed {
        name,
        span,
        size: written.size,
    }))
}

/// `upload_range` by writer `w`, whose manifest as it stands is `m`: a
/// multipart upload is recorded in the manifest as pending before its
/// first part is sent, so that a run killed during it leaves the upload to
/// the next run to abort.
#[allow(clippy::too_many_arguments)]
pub(super) fn upload_recorded(
    w: &Writer<'_>,
    m: &Manifest,
    fs: &PathArg,
    o: &ReadOptions,
    span: Span,
    level: Option<i32>,
    name: &str,
    diag: &mut dyn Write,
) -> Result<Written, ChainError> {
    let failed = RefCell::new(None);
    let started: OnStart<'_> = Box::new(|id| {
        let mut p = m.clone();
        p.pending.push(Pending {
            name: name.to_string(),
            upload_id: id.to_string(),
        });
        w.publish(&p).map_err(|e| {
            let s3 = S3Error::Request {
                what: format!("record the upload of {name}"),
                why: e.to_string(),
                transient: false,
            };
            *failed.borrow_mut() = Some(e);
            s3
        })
    });
    let r = upload_range(w.chain, fs, o, span, level, name, started, diag);
    r.map_err(|e| failed.take().unwrap_or(e))
}

/// Reads `fs`'s records of `span` as mirror-read writes them (in `-z`'s
/// format at `level`) into a new object `name`, uploaded as they come.
#[allow(clippy::too_many_arguments)]
pub(super) fn upload_range(
    chain: &Chain,
    fs: &PathArg,
    o: &ReadOptions,
    span: Span,
    level: Option<i32>,
    name: &str,
    started: OnStart<'_>,
    diag: &mut dyn Write,
) -> Result<Written, ChainError> {
    let mut w = chain.bucket.writer(&chain.key(name), started);
    let ro = ReadOptions {
        two_way: false,
        stream: false,
        begin_tid: Some(span.beg),
        end_tid: Some(span.end),
        cycle_file: None,
        timeout: None,
        ..o.clone()
    };
    // `None`: the last compressed frame could not be written.
    let synced = match level {
        Some(l) => {
            let mut z =
                ZWriter::new(&mut w, l).map_err(|e| ChainError::Local(format!("zstd: {e}")))?;
            let r = mirror_read_synced(fs, &ro, io::empty(), &mut z, diag);
            let flushed = z.flush();
            drop(z);
            r.map_err(Some)
                .and_then(|t| flushed.map(|()| t).map_err(|_| None))
        }
        None => mirror_read_synced(fs, &ro, io::empty(), &mut w, diag).map_err(Some),
    };
    match synced {
        Err(e) => {
            return Err(match (w.error(), e) {
                (Some(s3), _) => ChainError::S3(s3.clone()),
                (None, Some(e)) => e.into(),
                (None, None) => ChainError::Local("zstd: the last frame was not written".into()),
            })
        }
        Ok(Some(t)) if t == span.end => {}
        Ok(t) => {
            return Err(ChainError::Local(format!(
                "Mirror-read {fs} stopped at {:#018x}, not at {:#018x}",
                t.unwrap_or(0),
                span.end
            )))
        }
    }
    Ok(w.finish()?)
}

/// `mirror-stream <pfs> s3://...`: a run, then another each time the PFS
/// moves on (at least `-i` apart), until `-t` has passed. A network
/// failure, or another run holding the chain, is told and retried after
/// 15 s; any other failure ends it.
pub fn push_stream(
    fs: &PathArg,
    chain: &Chain,
    o: &ReadOptions,
    level: Option<i32>,
    diag: &mut dyn Write,
) -> Result<(), ChainError> {
    let start = Instant::now();
    let over = || o.timeout.is_some_and(|t| start.elapsed() >= t);
    loop {
        let t0 = Instant::now();
        // Read before the run: a change committed while it uploads (or
        // between its end and this loop's next look) moves the sync point
        // past `seen`, so the next run stores it. Read after the run, it
        // hid such a change until the next one (seen in CI).
        let (_, pfsd) = getpfs(fs).map_err(|e| ChainError::Local(e.to_string()))?;
        let seen = pfsd.sync_end_tid;
        match push(fs, chain, o, level, diag) {
            Ok(Some(p)) if !o.quiet => p.tell(fs, chain, diag),
            Ok(_) => {}
            Err(e) if (e.transient() || e.busy()) && !over() => {
                let _ = writeln!(diag, "{e}\nretrying in 15 seconds");
                sleep(Duration::from_secs(15));
                continue;
            }
            Err(e) => return Err(e),
        }
        loop {
            if over() {
                return Ok(());
            }
            let (_, now) = getpfs(fs).map_err(|e| ChainError::Local(e.to_string()))?;
            if now.sync_end_tid != seen && t0.elapsed() >= o.delay {
                break;
            }
            sleep(Duration::from_millis(200));
        }
    }
}

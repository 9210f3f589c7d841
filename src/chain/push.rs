//! `mirror-copy <pfs> s3://...` / `mirror-stream`: the PFS's changes since
//! the chain's end, as one mirror-read stream object per run (per batch
//! of a stream), then the manifest that names it.

use std::io::{self, Write};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::manifest::{object_name, Manifest, Pending, Span, MANIFEST};
use super::{Chain, ChainError};
use crate::mirror::read::{mirror_read_synced, ReadOptions};
use crate::patharg::PathArg;
use crate::pfs::getpfs;

/// What a run added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    pub name: String,
    pub span: Span,
    pub size: u64,
}

/// One run: the PFS's records from the chain's end (TID 0 for a new
/// chain) up to its sync point now, uploaded as one object; `None` when
/// the chain is there already.
pub fn push(
    fs: &PathArg,
    chain: &Chain,
    o: &ReadOptions,
    diag: &mut dyn Write,
) -> Result<Option<Pushed>, ChainError> {
    let (_, pfsd) = getpfs(fs).map_err(|e| ChainError::Local(e.to_string()))?;
    let uuid = pfsd.shared_uuid.to_string();
    let mut m = chain.manifest()?.unwrap_or_else(|| Manifest::new(&uuid));
    if m.shared_uuid != uuid {
        return Err(ChainError::OtherPfs {
            url: chain.url.to_string(),
            chain: m.shared_uuid,
            pfs: fs.to_string(),
            uuid,
        });
    }
    chain.clean(&mut m, diag)?;
    let beg = m.end_tid().map_or(0, |e| e.saturating_add(1));
    if pfsd.sync_end_tid < beg {
        return Ok(None);
    }
    let span = Span {
        beg,
        end: pfsd.sync_end_tid,
    };
    let name = object_name(&uuid, span);
    let manifest_key = chain.key(MANIFEST);
    let before = m.clone();
    let recorded = name.clone();
    let mut w = chain.bucket.writer(
        &chain.key(&name),
        // Recorded before any part is sent, so a killed run's upload is
        // found and aborted by the next one.
        Box::new(move |id| {
            let mut p = before.clone();
            p.pending.push(Pending {
                name: recorded.clone(),
                upload_id: id.to_string(),
            });
            chain.bucket.put_small(&manifest_key, p.to_json())
        }),
    );
    let ro = ReadOptions {
        two_way: false,
        stream: false,
        begin_tid: Some(span.beg),
        end_tid: Some(span.end),
        cycle_file: None,
        timeout: None,
        ..o.clone()
    };
    match mirror_read_synced(fs, &ro, io::empty(), &mut w, diag) {
        Err(e) => {
            return Err(match w.error() {
                Some(s3) => ChainError::S3(s3.clone()),
                None => e.into(),
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
    let written = w.finish()?;
    let read = m.clone();
    m.push(span, written.size, written.xxh3);
    chain.save_over(&read, &m)?;
    Ok(Some(Pushed {
        name,
        span,
        size: written.size,
    }))
}

/// `mirror-stream <pfs> s3://...`: a run, then another each time the PFS
/// moves on (at least `-i` apart), until `-t` has passed. A network
/// failure is told and retried after 15 s; any other failure ends it.
pub fn push_stream(
    fs: &PathArg,
    chain: &Chain,
    o: &ReadOptions,
    told: &mut dyn FnMut(&Pushed),
    diag: &mut dyn Write,
) -> Result<(), ChainError> {
    let start = Instant::now();
    let over = || o.timeout.is_some_and(|t| start.elapsed() >= t);
    loop {
        let t0 = Instant::now();
        match push(fs, chain, o, diag) {
            Ok(Some(p)) => told(&p),
            Ok(None) => {}
            Err(e) if e.transient() && !over() => {
                let _ = writeln!(diag, "{e}\nretrying in 15 seconds");
                sleep(Duration::from_secs(15));
                continue;
            }
            Err(e) => return Err(e),
        }
        let (_, pfsd) = getpfs(fs).map_err(|e| ChainError::Local(e.to_string()))?;
        let seen = pfsd.sync_end_tid;
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

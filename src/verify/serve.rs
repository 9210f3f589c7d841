//! One PFS's side of mirror-verify (`hammer mirror-verify-serve <pfs>`):
//! says hello with the PFS's pfsd; asked to scan the PFS as of a TID, runs
//! `hammer verify`'s checks on every record it hashes, telling each
//! problem, and builds the PFS's tree of hashes; then answers for nodes and
//! record digests in key ranges, streamed. It never writes the PFS.

use std::io::{self, Read, Write};
use std::path::Path;

use super::checks::{Checker, Record};
use super::digest::{KeyRange, Node, RecordDigest, Tree, TreeBuilder, TOP};
use super::proto::{
    read_msg, write_msg, write_nodes, Msg, ProtoError, DIGESTS_MAX, NODES_CHUNK, TEXT_MAX,
};
use super::scan::Scan;
use super::{Key, VerifyError};
use crate::bridge::open_store_pfs;
use crate::errno::errno_desc;
use crate::ondisk::BaseElm;
use crate::pfs::store::{decode_key, Store};
use crate::pfs::{getpfs, Pfs};

/// How a side ended early.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Told to the comparing process, which reports it.
    #[error("{0}")]
    Told(String),
    /// The comparing process went away or spoke nonsense: nobody to tell.
    #[error("mirror-verify-serve: {0}")]
    Channel(ProtoError),
}

impl From<io::Error> for ServeError {
    fn from(e: io::Error) -> Self {
        ServeError::Channel(e.into())
    }
}

/// What stopped a scan, in words for the comparing process; a failure to
/// write to it is returned as such (nobody to tell).
fn scan_failure(e: VerifyError) -> Result<String, io::Error> {
    Ok(match e {
        VerifyError::Stopped { key, error } => format!(
            "cannot read the records from {} on: {}",
            Key(&key),
            errno_desc(error.errno() as i32)
        ),
        VerifyError::Unexpected(t) => {
            format!("MIRROR_READ returned a record of type {t:#010x}, not a REC")
        }
        VerifyError::Store(e) => e.to_string(),
        VerifyError::Output(e) => return Err(e),
        other => other.to_string(),
    })
}

/// Where the checks print their problems: one `PROBLEM` message a line,
/// cut to what a message holds.
struct Problems<'a> {
    out: &'a mut dyn Write,
    line: Vec<u8>,
}

impl Problems<'_> {
    fn keep(&mut self, text: &[u8]) {
        let room = (TEXT_MAX as usize).saturating_sub(self.line.len());
        self.line.extend_from_slice(&text[..text.len().min(room)]);
    }
}

impl Write for Problems<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for part in buf.split_inclusive(|&c| c == b'\n') {
            match part.split_last() {
                Some((b'\n', text)) => {
                    self.keep(text);
                    let text = String::from_utf8_lossy(&self.line).into_owned();
                    write_msg(self.out, &Msg::Problem(text))?;
                    self.line.clear();
                }
                _ => self.keep(part),
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Scans the PFS as of `tid`: tells on `out` each problem `hammer verify`
/// finds as of it (the same checks on the same records), and returns the
/// tree of the records' digests.
fn scan(
    pfs: &mut dyn Pfs,
    store: Option<&Store>,
    tid: u64,
    out: &mut dyn Write,
) -> Result<Tree, VerifyError> {
    let pfs_id = pfs.pfs_id();
    let mut problems = Problems {
        out,
        line: Vec::new(),
    };
    let mut checker = Checker::new(tid, store, &mut problems);
    checker.database()?;
    let mut tree = TreeBuilder::default();
    let scanned = Scan::new(pfs, tid).run(|item| {
        let rec = Record::of(item)?;
        checker.take(&rec)?;
        tree.take(&RecordDigest::new(&rec.leaf, rec.data()));
        Ok::<_, VerifyError>(())
    });
    if let Err(e) = scanned {
        checker.abandon()?;
        return Err(e);
    }
    checker.finish(pfs_id)?;
    Ok(tree.finish())
}

/// Writes `nodes` as one answer: `NODES` messages of `NODES_CHUNK` nodes,
/// the last one shorter (possibly empty).
fn answer_nodes<'t>(
    out: &mut dyn Write,
    level: u32,
    nodes: impl Iterator<Item = &'t Node>,
) -> io::Result<()> {
    let mut chunk = Vec::with_capacity(NODES_CHUNK);
    for n in nodes {
        chunk.push(*n);
        if chunk.len() == NODES_CHUNK {
            write_nodes(out, level, &chunk)?;
            chunk.clear();
        }
    }
    write_nodes(out, level, &chunk)
}

/// Writes the digests of the records in `ranges` as of `tid`, in key
/// order: `DIGESTS` messages of at most `DIGESTS_MAX`, the last one empty.
fn answer_digests(
    pfs: &mut dyn Pfs,
    tid: u64,
    ranges: &[KeyRange],
    out: &mut dyn Write,
) -> Result<(), VerifyError> {
    let mut batch = Vec::with_capacity(DIGESTS_MAX);
    let mut scan = Scan::new(pfs, tid);
    for r in ranges {
        let beg = r.after.map_or(BaseElm::KEY_BEG_INIT, |k| decode_key(&k));
        let end = r.last.map_or(BaseElm::KEY_END_INIT, |k| decode_key(&k));
        scan.run_between(beg, end, |item| {
            let rec = Record::of(item)?;
            let d = RecordDigest::new(&rec.leaf, rec.data());
            if r.contains(&d.key) {
                batch.push(d);
            }
            if batch.len() == DIGESTS_MAX {
                write_msg(out, &Msg::Digests(std::mem::take(&mut batch)))
                    .map_err(VerifyError::Output)?;
            }
            Ok::<_, VerifyError>(())
        })?;
    }
    if !batch.is_empty() {
        write_msg(out, &Msg::Digests(batch)).map_err(VerifyError::Output)?;
    }
    write_msg(out, &Msg::Digests(Vec::new())).map_err(VerifyError::Output)
}

/// Serves the PFS at `path` to the comparing process on `input` and
/// `output` until it closes its end. Whatever it is sent, it holds one
/// request (at most `RANGES_MAX` ranges) and one message of its answer at
/// a time, besides the PFS's tree of hashes and what the checks keep.
pub fn serve(path: &Path, input: &mut dyn Read, output: &mut dyn Write) -> Result<(), ServeError> {
    let mut out = io::BufWriter::with_capacity(1 << 16, output);
    let (mut pfs, pfsd) = match getpfs(path) {
        Ok(p) => p,
        Err(e) => return Err(tell(&mut out, e.to_string())),
    };
    // The store's own files, which tell why a payload cannot be read; as
    // verify reaches them (`None` on HAMMER).
    let store = match open_store_pfs(path) {
        Ok(s) => s.map(|(s, _)| s),
        Err(e) => return Err(tell(&mut out, e.to_string())),
    };
    write_msg(&mut out, &Msg::Hello(Box::new(pfsd)))?;
    out.flush()?;
    let mut scanned: Option<(u64, Tree)> = None;
    loop {
        let msg = match read_msg(input) {
            Ok(m) => m,
            Err(ProtoError::Eof) => return Ok(()),
            Err(e) => return Err(tell(&mut out, format!("bad request: {e}"))),
        };
        match (msg, &scanned) {
            (Msg::Scan { tid }, _) => {
                // One tree at a time: the last one goes before the next
                // is built.
                drop(scanned.take());
                let tree = match scan(pfs.as_mut(), store.as_ref(), tid, &mut out) {
                    Ok(t) => t,
                    Err(e) => return Err(tell(&mut out, scan_failure(e)?)),
                };
                answer_nodes(&mut out, TOP, tree.nodes_in(TOP, &KeyRange::ALL).iter())?;
                scanned = Some((tid, tree));
            }
            (Msg::NodesOf { level, ranges }, Some((_, tree))) => {
                let nodes = ranges.iter().flat_map(|r| tree.nodes_in(level, r));
                answer_nodes(&mut out, level, nodes)?;
            }
            (Msg::DigestsOf(ranges), Some((tid, _))) => {
                if let Err(e) = answer_digests(pfs.as_mut(), *tid, &ranges, &mut out) {
                    return Err(tell(&mut out, scan_failure(e)?));
                }
            }
            (Msg::NodesOf { .. } | Msg::DigestsOf(_), None) => {
                return Err(tell(
                    &mut out,
                    "bad request: nodes asked before a scan".into(),
                ))
            }
            (other, _) => {
                return Err(tell(
                    &mut out,
                    format!("bad request: unexpected {}", kind_name(&other)),
                ))
            }
        }
        out.flush()?;
    }
}

/// Tells the comparing process what stopped this side.
fn tell(out: &mut dyn Write, text: String) -> ServeError {
    // Best effort: the error is returned either way.
    let _ = write_msg(out, &Msg::Error(text.clone())).and_then(|()| out.flush());
    ServeError::Told(text)
}

fn kind_name(m: &Msg) -> &'static str {
    match m {
        Msg::Hello(_) => "HELLO",
        Msg::Nodes { .. } => "NODES",
        Msg::Digests(_) => "DIGESTS",
        Msg::Error(_) => "ERROR",
        Msg::Problem(_) => "PROBLEM",
        Msg::Scan { .. } => "SCAN",
        Msg::NodesOf { .. } => "NODES_OF",
        Msg::DigestsOf(_) => "DIGESTS_OF",
    }
}

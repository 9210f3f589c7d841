//! One PFS's side of mirror-verify (`hammer mirror-verify-serve <pfs>`):
//! says hello with the PFS's pfsd, builds the PFS's tree of hashes when
//! asked to scan it as of a TID, then answers for nodes and record digests
//! in key ranges. It never writes the PFS.

use std::io::{self, Read, Write};
use std::path::Path;

use super::digest::{KeyRange, RecordDigest, Tree, TreeBuilder, TOP};
use super::proto::{read_msg, write_msg, Msg, ProtoError, DIGESTS_MAX};
use super::scan::{Item, Scan, Stopped};
use super::Key;
use crate::errno::errno_desc;
use crate::ondisk::BaseElm;
use crate::pfs::store::decode_key;
use crate::pfs::{getpfs, Pfs};
use crate::wire::Mrecord;

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

/// Why one scan stopped, in words for the comparing process.
struct ScanFailed(String);

impl From<Stopped> for ScanFailed {
    fn from(s: Stopped) -> Self {
        ScanFailed(format!(
            "cannot read the records from {} on: {}",
            Key(&s.key),
            errno_desc(s.error.errno() as i32)
        ))
    }
}

/// Calls `f` with the digest of every record version between `beg` and
/// `end` as of `tid`, in key order.
fn digests(
    pfs: &mut dyn Pfs,
    tid: u64,
    beg: BaseElm,
    end: BaseElm,
    check_crc: bool,
    mut f: impl FnMut(RecordDigest) -> Result<(), ScanFailed>,
) -> Result<(), ScanFailed> {
    Scan::new(pfs, tid).run_between(beg, end, |item| {
        f(match item {
            Item::Read(rec) => match rec.decode() {
                Some(Mrecord::Rec { leaf, data, .. }) => {
                    RecordDigest::new(&leaf, Some(data), check_crc)
                }
                _ => {
                    return Err(ScanFailed(format!(
                        "MIRROR_READ returned a record of type {:#010x}, not a REC",
                        rec.rec_type()
                    )))
                }
            },
            Item::Unreadable { leaf, .. } => RecordDigest::new(&leaf, None, check_crc),
        })
    })
}

/// Serves the PFS at `path` to the comparing process on `input` and
/// `output` until it closes its end.
pub fn serve(path: &Path, input: &mut dyn Read, output: &mut dyn Write) -> Result<(), ServeError> {
    let mut out = io::BufWriter::with_capacity(1 << 16, output);
    let (mut pfs, pfsd) = match getpfs(path) {
        Ok(p) => p,
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
                let mut builder = TreeBuilder::default();
                let all = digests(
                    pfs.as_mut(),
                    tid,
                    BaseElm::KEY_BEG_INIT,
                    BaseElm::KEY_END_INIT,
                    false,
                    |d| {
                        builder.take(&d);
                        Ok(())
                    },
                );
                if let Err(ScanFailed(text)) = all {
                    return Err(tell(&mut out, text));
                }
                let tree = builder.finish();
                let nodes = tree.nodes_in(TOP, &[KeyRange::ALL]);
                write_msg(&mut out, &Msg::Nodes { level: TOP, nodes })?;
                scanned = Some((tid, tree));
            }
            (Msg::NodesOf { level, ranges }, Some((_, tree))) => {
                let nodes = tree.nodes_in(level, &ranges);
                write_msg(&mut out, &Msg::Nodes { level, nodes })?;
            }
            (Msg::DigestsOf(ranges), Some((tid, _))) => {
                let tid = *tid;
                let mut batch = Vec::with_capacity(DIGESTS_MAX);
                let mut sent = Ok(());
                for r in &ranges {
                    let beg = r.after.map_or(BaseElm::KEY_BEG_INIT, |k| decode_key(&k));
                    let end = r.last.map_or(BaseElm::KEY_END_INIT, |k| decode_key(&k));
                    let each = digests(pfs.as_mut(), tid, beg, end, true, |d| {
                        if r.contains(&d.key) {
                            batch.push(d);
                        }
                        if batch.len() == DIGESTS_MAX {
                            write_msg(&mut out, &Msg::Digests(std::mem::take(&mut batch)))
                                .map_err(|e| ScanFailed(e.to_string()))?;
                        }
                        Ok(())
                    });
                    if let Err(ScanFailed(text)) = each {
                        sent = Err(text);
                        break;
                    }
                }
                if let Err(text) = sent {
                    return Err(tell(&mut out, text));
                }
                if !batch.is_empty() {
                    write_msg(&mut out, &Msg::Digests(batch))?;
                }
                write_msg(&mut out, &Msg::Digests(Vec::new()))?;
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
        Msg::Scan { .. } => "SCAN",
        Msg::NodesOf { .. } => "NODES_OF",
        Msg::DigestsOf(_) => "DIGESTS_OF",
    }
}

//! `reblock <filesystem> [fill_percentage]` and its -btree, -inodes, -dirs
//! and -data forms with hammer(8)'s output (cli.md §20): HAMMERIOC_REBLOCK
//! driven call by call with `-t`'s deadline and `-c`'s start point
//! (ioctl-abi.md §12); and `rebalance` and `dedup`, which say what they
//! do here.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Instant;

use super::prune::{end_cycle, save_cycle, Replaced};
use super::{Context, Failure};
use crate::errno::strerror;
use crate::mirror::cycle::{read_cycle_file, usable_key, CycleRead};
use crate::ondisk::HammerUuid;
use crate::pfs::getpfs::open_inside;
use crate::pfs::reblock::BIGBLOCK_SIZE;
use crate::pfs::{OpenError, Pfs, ReblockReq};

/// `sizeof(struct hammer_node_ondisk)`: the bytes the original counts per
/// B-Tree node.
const NODE_BYTES: i64 = 4096;

/// Why a reblock, rebalance or dedup failed before it began.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReblockError {
    #[error("Unable to open {}: {source}", fs.display())]
    Open {
        fs: std::path::PathBuf,
        source: OpenError,
    },
    /// Writing stdout failed.
    #[error("{}", strerror(.0))]
    Output(#[from] io::Error),
}

/// `hammer reblock*` (cli.md §20): `what` the DO bits of the word, `fill`
/// the percentage (0 to 100).
pub(crate) fn reblock(cx: &Context<'_>, path: &Path, what: u32, fill: u32) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    let r = reblock_on(cx, path, what, fill, None, &mut out);
    let _ = out.flush();
    match r {
        Ok(0) => Ok(()),
        Ok(status) => Err(Failure::status(status).class("reblock", None)),
        Err(e) => Err(Failure::errx(e).class("reblock", None)),
    }
}

/// Opens the PFS `path` is in, as the original's open(2) of it.
fn open(path: &Path) -> Result<Result<Box<dyn Pfs>, OpenError>, ReblockError> {
    match open_inside(path) {
        Ok(inside) => Ok(Ok(inside.pfs)),
        Err(source @ OpenError::Io(_)) => Err(ReblockError::Open {
            fs: path.to_path_buf(),
            source,
        }),
        // Not HAMMER: the original's ioctl fails on it.
        Err(e) => Ok(Err(e)),
    }
}

/// The reblock; its exit status, 0 or 2 (the reblock failed). `pin`: a
/// cleanup's PFS (its unique uuid), which the one at `path` must be.
pub(super) fn reblock_on(
    cx: &Context<'_>,
    path: &Path,
    what: u32,
    fill: u32,
    pin: Option<HammerUuid>,
    out: &mut dyn Write,
) -> Result<u8, ReblockError> {
    let deadline = cx.opts.timeout.map(|t| Instant::now() + t);
    let mut req = ReblockReq::new(what, fill);
    if let Some(cycle) = &cx.opts.cycle_file {
        let mut said = Vec::new();
        match read_cycle_file(cycle, &mut |m| said.push(m)) {
            CycleRead::Loaded(p) => req.key_beg = p.key,
            CycleRead::Malformed(key) => {
                req.key_beg = key;
                said.clear();
            }
            CycleRead::Absent | CycleRead::Cleared => {}
        }
        let fresh = ReblockReq::new(what, fill);
        let refused = |key_beg| {
            ReblockReq {
                key_beg,
                ..fresh.clone()
            }
            .check()
            .is_err()
        };
        req.key_beg = usable_key(cycle, req.key_beg, fresh.key_beg, refused, &mut |m| {
            said.push(m)
        });
        let mut err = io::stderr().lock();
        for m in said {
            writeln!(err, "{m}")?;
        }
    }
    writeln!(
        out,
        "reblock start {:016x}:{:04x}\nfree level {}/{}",
        req.key_beg.obj_id, req.key_beg.localization, req.free_level, BIGBLOCK_SIZE
    )?;
    out.flush()?;
    let line = |out: &mut dyn Write, what: std::fmt::Arguments<'_>| -> io::Result<()> {
        out.write_all(b"Reblock ")?;
        out.write_all(path.as_os_str().as_bytes())?;
        writeln!(out, "{what}")
    };
    let mut status = 0;
    let done = match open(path)? {
        Ok(mut pfs) => match pin.map(|u| pfs.get_pseudofs().map(|d| d.unique_uuid == u)) {
            // The handle keeps to this PFS from here on (a store's pins it).
            Some(Ok(false)) => Err(Replaced(path).to_string()),
            Some(Err(e)) => Err(e.to_string()),
            Some(Ok(true)) | None => run(pfs.as_mut(), &mut req, deadline),
        },
        Err(e) => Err(e.to_string()),
    };
    match done {
        Err(e) => {
            line(out, format_args!(" failed: {e}"))?;
            status = 2;
        }
        Ok(false) => {
            line(
                out,
                format_args!(
                    " interrupted by timer at {:016x}:{:04x}",
                    req.key_cur.obj_id, req.key_cur.localization
                ),
            )?;
            save_cycle(cx, req.key_cur, out)?;
        }
        Ok(true) => {
            end_cycle(cx);
            line(out, format_args!(" succeeded"))?;
        }
    }
    let s = &req.stats;
    writeln!(
        out,
        "Reblocked:\n    {}/{} B-Tree nodes\n    {}/{} B-Tree bytes\n    \
         {}/{} data elements\n    {}/{} data bytes",
        s.btree_moves,
        s.btree_count,
        s.btree_moves * NODE_BYTES,
        s.btree_count * NODE_BYTES,
        s.data_moves,
        s.data_count,
        s.data_byte_moves,
        s.data_byte_count
    )?;
    Ok(status)
}

/// REBLOCK calls until one finishes (true) or the deadline passes after
/// one that stopped midway (false); the error's text.
fn run(pfs: &mut dyn Pfs, req: &mut ReblockReq, deadline: Option<Instant>) -> Result<bool, String> {
    loop {
        pfs.reblock(req).map_err(|e| e.to_string())?;
        if !req.interrupted {
            return Ok(true);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
        req.key_beg = req.key_cur;
    }
}

/// Why `rebalance` or `dedup` (`word`) has nothing to do on a store.
pub(super) fn why_nothing(word: &str) -> &'static str {
    match word {
        "rebalance" => {
            "nothing to do: a store's B-Tree is an SQLite database, which keeps itself balanced"
        }
        _ => "nothing to do: a store keeps no two copies of a block to share",
    }
}

/// `hammer rebalance <filesystem> [saturation_percentage]` and `hammer
/// dedup <filesystem>` (cli.md §20): the PFS opened, and a line saying
/// why there is nothing to do on it.
pub(crate) fn nothing_to_do(word: &'static str, path: &Path) -> Result<(), Failure> {
    let why = why_nothing(word);
    let said = open(path).and_then(|opened| {
        let mut out = io::stdout().lock();
        let mut name = word.as_bytes().to_vec();
        name[0] = name[0].to_ascii_uppercase();
        out.write_all(&name)?;
        out.write_all(b" ")?;
        out.write_all(path.as_os_str().as_bytes())?;
        let ok = opened.is_ok();
        match opened {
            Ok(_) => writeln!(out, ": {why}")?,
            Err(e) => writeln!(out, " failed: {e}")?,
        }
        out.flush()?;
        Ok(ok)
    });
    match said {
        Ok(true) => Ok(()),
        Ok(false) => Err(Failure::status(2).class(word, None)),
        Err(e) => Err(Failure::errx(e).class(word, None)),
    }
}

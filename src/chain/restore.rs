//! From a chain back to data: applied to a slave with mirror-write
//! (`mirror-copy s3://... <slave>`), exported to files through a temporary
//! store, dumped, or verified object by object.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::path::Path;
use std::rc::Rc;

use xxhash_rust::xxh3::Xxh3;

use super::client::S3Error;
use super::manifest::{ChainObject, Manifest, Span};
use super::{Chain, ChainError};
use crate::bridge::export::{export, ExportOptions, ExportSummary};
use crate::mirror::autoslave;
use crate::mirror::dump::{mirror_dump, DumpError};
use crate::mirror::error::MirrorError;
use crate::mirror::write::{mirror_write, WriteOptions};
use crate::ondisk::{HammerUuid, PseudofsData};
use crate::patharg::PathArg;
use crate::pfs::getpfs;
use crate::pfs::store::Store;
use crate::wire::zframe::ZReader;
use crate::wire::{mrec_type, Mrecord, MrecordReader};

/// Bytes at an object's end held back until its size and checksum are
/// known good: the batch's closing SYNC, which moves a slave's sync point,
/// is among them.
const HOLD: u64 = 64 << 10;

/// An object's bytes checked against its manifest entry on the way.
pub struct Checked<R> {
    inner: R,
    size: u64,
    xxh3: String,
    hash: Xxh3,
    passed: u64,
    tail: Vec<u8>,
    tail_pos: usize,
    verified: bool,
    problem: Rc<RefCell<Option<String>>>,
}

impl<R: Read> Checked<R> {
    pub fn new(inner: R, obj: &ChainObject) -> Self {
        Checked {
            inner,
            size: obj.size,
            xxh3: obj.xxh3.to_ascii_lowercase(),
            hash: Xxh3::new(),
            passed: 0,
            tail: Vec::new(),
            tail_pos: 0,
            verified: false,
            problem: Rc::new(RefCell::new(None)),
        }
    }

    fn fail(&self, why: String) -> io::Error {
        let e = io::Error::new(io::ErrorKind::InvalidData, why.clone());
        *self.problem.borrow_mut() = Some(why);
        e
    }

    /// Reads what is left of the object, so that it is checked whole.
    pub fn finish(&mut self) -> io::Result<()> {
        // Ends only once `verify` passed: the last bytes come from the tail.
        io::copy(self, &mut io::sink()).map(drop)
    }

    /// Reads the held tail and the end of the object, and checks both.
    fn verify(&mut self) -> io::Result<()> {
        let want = (self.size - self.passed) as usize;
        self.tail.resize(want, 0);
        let mut got = 0;
        while got < want {
            match self.inner.read(&mut self.tail[got..])? {
                0 => {
                    let at = self.passed + got as u64;
                    return Err(self.fail(format!(
                        "{at} bytes, shorter than the {} the manifest records",
                        self.size
                    )));
                }
                n => got += n,
            }
        }
        let mut more = [0u8; 1];
        if self.inner.read(&mut more)? != 0 {
            return Err(self.fail(format!(
                "longer than the {} bytes the manifest records",
                self.size
            )));
        }
        self.hash.update(&self.tail);
        let digest = format!("{:032x}", self.hash.digest128());
        if digest != self.xxh3 {
            return Err(self.fail(format!(
                "checksum xxh3 {digest}, the manifest records {}",
                self.xxh3
            )));
        }
        self.verified = true;
        Ok(())
    }
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let open = self.size.saturating_sub(HOLD);
        if self.passed < open {
            let want = out.len().min((open - self.passed) as usize);
            let n = self.inner.read(&mut out[..want])?;
            if n == 0 && want > 0 {
                return Err(self.fail(format!(
                    "{} bytes, shorter than the {} the manifest records",
                    self.passed, self.size
                )));
            }
            self.hash.update(&out[..n]);
            self.passed += n as u64;
            return Ok(n);
        }
        if !self.verified {
            self.verify()?;
        }
        let n = out.len().min(self.tail.len() - self.tail_pos);
        out[..n].copy_from_slice(&self.tail[self.tail_pos..self.tail_pos + n]);
        self.tail_pos += n;
        Ok(n)
    }
}

/// Runs `consume` on object `obj`'s stream (decompressed when the object
/// is compressed), checked against the manifest on the way; with `whole`,
/// the rest of the object is read and checked after `consume` is done (a
/// consumer stops at TERM: bytes after it, or a size that says more, are
/// damage too). A failure is the check's, else the download's, else the
/// consumer's.
pub(super) fn read_object<T>(
    chain: &Chain,
    obj: &ChainObject,
    whole: bool,
    consume: impl FnOnce(&mut dyn Read) -> Result<T, ChainError>,
) -> Result<T, ChainError> {
    let key = chain.key(&obj.name);
    let mut r = Checked::new(chain.bucket.reader_sized(&key, Some(obj.size)), obj);
    let result = if obj.zstd {
        match ZReader::new(&mut r) {
            Ok(mut z) => consume(&mut z),
            Err(e) => Err(ChainError::Local(format!("zstd: {e}"))),
        }
    } else {
        consume(&mut r)
    };
    let result = match result {
        Ok(t) if whole => r
            .finish()
            .map(|()| t)
            .map_err(|e| ChainError::Local(e.to_string())),
        other => other,
    };
    result.map_err(|other| {
        if let Some(why) = r.problem.borrow().clone() {
            return damaged(chain, obj, why);
        }
        match r.inner.error() {
            Some(S3Error::Mismatch(why)) => damaged(chain, obj, why),
            Some(e) => ChainError::S3(e.clone()),
            None => other,
        }
    })
}

/// The object's own damage, named.
fn damaged(chain: &Chain, obj: &ChainObject, why: impl std::fmt::Display) -> ChainError {
    ChainError::Corrupt {
        url: chain.url.to_string(),
        name: obj.name.clone(),
        why: why.to_string(),
    }
}

/// How far an apply went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub objects: usize,
    pub bytes: u64,
    /// The slave's sync point after it.
    pub tid: u64,
}

/// Applies the chain up to `tid` (its end when `None`) to slave `slave`,
/// creating it (asked, or `-y`) when missing: every object whose range
/// passes the slave's sync point, in order.
pub fn apply(
    chain: &Chain,
    tid: Option<u64>,
    slave: &PathArg,
    wo: &WriteOptions,
    diag: &mut dyn Write,
) -> Result<Applied, ChainError> {
    let m = chain.existing()?;
    let objects = chain.upto(&m, tid)?;
    let uuid = HammerUuid::parse(&m.shared_uuid)
        .ok_or_else(|| ChainError::Local(format!("bad uuid {}", m.shared_uuid)))?;
    if autoslave::missing(slave.as_path()) {
        let mut sink = io::sink();
        let notes: &mut dyn Write = if wo.quiet && wo.yes { &mut sink } else { diag };
        if !autoslave::confirm(slave, wo.yes, notes) {
            return Err(ChainError::Slave(format!(
                "{slave}: no slave to restore into"
            )));
        }
        autoslave::create_slave(slave, uuid, notes)
            .map_err(|e| ChainError::Slave(e.to_string()))?;
    }
    let pfsd = slave_pfsd(slave, uuid)?;
    let mut done = Applied {
        tid: pfsd.sync_end_tid,
        ..Applied::default()
    };
    let last = objects.last().map_or(0, |(_, s)| s.end);
    if tid.is_some() && pfsd.sync_end_tid > last {
        return Err(ChainError::Slave(format!(
            "{slave} is at {:#018x}, past the restore point {last:#018x}: restore into a new slave",
            pfsd.sync_end_tid
        )));
    }
    for (obj, span) in objects.iter().filter(|(_, s)| s.end > pfsd.sync_end_tid) {
        if span.beg > done.tid.saturating_add(1) {
            return Err(ChainError::Slave(format!(
                "{slave} is at {:#018x}, before {} begins: it cannot continue there",
                done.tid, obj.name
            )));
        }
        let one_way = WriteOptions {
            two_way: false,
            input_len: Some(obj.size),
            ..wo.clone()
        };
        read_object(chain, obj, true, |r| {
            mirror_write(slave, &one_way, r, io::sink(), &mut *diag).map_err(|e| match e {
                // A record that fails to read is the object's damage.
                MirrorError::Reader(_) | MirrorError::Batch(_) => damaged(chain, obj, e),
                e => e.into(),
            })
        })?;
        let now = slave_pfsd(slave, uuid)?.sync_end_tid;
        if now != span.end {
            return Err(ChainError::Corrupt {
                url: chain.url.to_string(),
                name: obj.name.clone(),
                why: format!("it took {slave} to {now:#018x}, not to {:#018x}", span.end),
            });
        }
        done = Applied {
            objects: done.objects + 1,
            bytes: done.bytes.saturating_add(obj.size),
            tid: now,
        };
    }
    Ok(done)
}

/// The slave's PFSD, refused as the original's mirror-write refuses a
/// master or another PFS's slave.
fn slave_pfsd(slave: &PathArg, uuid: HammerUuid) -> Result<PseudofsData, ChainError> {
    let (_, pfsd) = getpfs(slave).map_err(|e| ChainError::Slave(e.to_string()))?;
    if pfsd.shared_uuid != uuid {
        return Err(ChainError::Slave(
            "mirror-write: source and target have different shared-uuid's!".into(),
        ));
    }
    if !pfsd.is_slave() {
        return Err(ChainError::Slave(
            "mirror-write: target must be in slave mode".into(),
        ));
    }
    Ok(pfsd)
}

/// A store of its own in `near`, removed when dropped, holding one
/// slave of the chain: where a chain becomes a PFS that export or
/// mirror-read can read. Its directory is named after this process and
/// boot, so that the next one made in the same place removes it if this
/// process is killed before it could.
pub struct Scratch {
    _dir: tempfile::TempDir,
    pub slave: PathArg,
}

/// The start of a temporary store's directory name.
const SCRATCH: &str = ".hammer-chain.";

/// This boot's id, shortened: a pid means a process only within one boot.
fn boot() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().chars().take(8).collect())
        .unwrap_or_default()
}

/// Removes the temporary stores in `near` whose process (of this boot)
/// is gone. A failure leaves them: they are only space.
pub(super) fn sweep(near: &Path) {
    let boot = boot();
    let Ok(dir) = std::fs::read_dir(near) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(SCRATCH)) else {
            continue;
        };
        let mut parts = rest.split('.');
        let (Some(pid), Some(b)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            == Err(nix::errno::Errno::ESRCH);
        if b == boot.as_str() && !boot.is_empty() && gone {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Scratch {
    pub fn new(near: &Path, m: &Manifest) -> Result<Self, ChainError> {
        let local = |what: &str, e: &dyn std::fmt::Display| {
            ChainError::Local(format!(
                "temporary store in {}: {what}: {e}",
                near.display()
            ))
        };
        sweep(near);
        let boot = boot();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{SCRATCH}{}.{boot}.", std::process::id()))
            .tempdir_in(near)
            .map_err(|e| local("create", &e))?;
        let root = dir.path().join("store");
        Store::create(&root).map_err(|e| local("create", &e))?;
        let slave = PathArg::from(root.join("chain").into_os_string());
        let uuid = HammerUuid::parse(&m.shared_uuid)
            .ok_or_else(|| ChainError::Local(format!("bad uuid {}", m.shared_uuid)))?;
        autoslave::create_slave(&slave, uuid, &mut io::sink()).map_err(|e| local("slave", &e))?;
        Ok(Scratch { _dir: dir, slave })
    }
}

/// `hammer export s3://...[@@tid] <dir>`: the chain applied to a slave of
/// a temporary store beside `dir`, exported, and the store removed.
pub fn export_chain(
    chain: &Chain,
    tid: Option<u64>,
    dir: &Path,
    eo: ExportOptions,
    diag: &mut dyn Write,
) -> Result<ExportSummary, ChainError> {
    let m = chain.existing()?;
    chain.upto(&m, tid)?;
    let near = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let scratch = Scratch::new(near, &m)?;
    let wo = WriteOptions {
        yes: true,
        quiet: true,
        ..WriteOptions::default()
    };
    apply(chain, tid, &scratch.slave, &wo, diag)?;
    export(&scratch.slave, dir, eo, diag).map_err(|e| ChainError::Local(e.to_string()))
}

/// `hammer mirror-dump [header] s3://...[@@tid]`: each object's stream
/// dumped in turn, checked as it is read.
pub fn dump_chain(
    chain: &Chain,
    tid: Option<u64>,
    header: bool,
    out: &mut dyn Write,
    diag: &mut dyn Write,
) -> Result<(), ChainError> {
    let m = chain.existing()?;
    for (obj, _) in chain.upto(&m, tid)? {
        read_object(chain, &obj, !header, |r| {
            mirror_dump(r, &mut *out, &mut *diag, header).map_err(|e| match e {
                DumpError::Output(_) => ChainError::Local(e.to_string()),
                e => damaged(chain, &obj, e),
            })
        })?;
        if header {
            break;
        }
    }
    Ok(())
}

/// What `hammer verify s3://...` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainReport {
    pub objects: usize,
    pub bytes: u64,
    pub problems: usize,
}

/// `hammer verify s3://...`: every object of the chain read whole, its
/// size and checksum against the manifest, every record's CRC, its
/// streams' shared uuid and the TID it ends at. One line per object.
pub fn verify_chain(chain: &Chain, out: &mut dyn Write) -> Result<ChainReport, ChainError> {
    let m = chain.existing()?;
    let uuid = HammerUuid::parse(&m.shared_uuid)
        .ok_or_else(|| ChainError::Local(format!("bad uuid {}", m.shared_uuid)))?;
    let mut report = ChainReport::default();
    let say = |out: &mut dyn Write, line: String| {
        writeln!(out, "{line}").map_err(|e| ChainError::Local(format!("stdout: {e}")))
    };
    // An empty chain (a first run that never finished) is sound.
    for (obj, span) in m.objects.iter().cloned().zip(m.spans()) {
        let checked = read_object(chain, &obj, true, |r| {
            check_stream(r, uuid, span).map_err(|why| damaged(chain, &obj, why))
        });
        report.objects += 1;
        report.bytes = report.bytes.saturating_add(obj.size);
        match checked {
            Ok(()) => say(
                out,
                format!(
                    "{}: ok, {} bytes, {} to {}",
                    obj.name, obj.size, obj.beg_tid, obj.end_tid
                ),
            )?,
            // An object gone is damage; the chain's others are still read.
            Err(ChainError::S3(e @ S3Error::Missing(_))) => {
                report.problems += 1;
                say(out, format!("{}: MISSING: {e}", obj.name))?;
            }
            // A download that failed is not a finding about the data.
            Err(ChainError::S3(e)) => return Err(ChainError::S3(e)),
            Err(e) => {
                report.problems += 1;
                say(out, format!("{}: DAMAGED: {e}", obj.name))?;
            }
        }
    }
    let verdict = match report.problems {
        0 => "ok".to_string(),
        n => format!("{n} damaged object(s)"),
    };
    say(
        out,
        format!(
            "{}: {} objects, {} bytes, restore points {}: {verdict}",
            chain.url,
            report.objects,
            report.bytes,
            super::points(&m)
        ),
    )?;
    Ok(report)
}

/// Reads one object's stream to its end: batches of records with their
/// CRCs, PFSD headers of `uuid`, and a last batch ending at `span.end`.
fn check_stream<R: Read>(input: R, uuid: HammerUuid, span: Span) -> Result<(), String> {
    let mut r = MrecordReader::new(input);
    let mut end = None;
    loop {
        let first_uuid = match r.read_mrecord().map_err(|e| e.to_string())? {
            None => return Err("the stream ends without TERM".into()),
            Some(rec) if rec.rec_type() == mrec_type::TERM => break,
            Some(rec) => match rec.decode() {
                Some(Mrecord::Pfsd { pfsd, .. }) => pfsd.shared_uuid,
                _ => return Err("a batch does not begin with its PFSD records".into()),
            },
        };
        if first_uuid != uuid {
            return Err(format!("a stream of shared-uuid {first_uuid}"));
        }
        end = match r.read_mrecord().map_err(|e| e.to_string())? {
            Some(rec) => match rec.decode() {
                Some(Mrecord::Pfsd { pfsd, .. }) => Some(pfsd.sync_end_tid),
                _ => return Err("a batch has one PFSD record, not two".into()),
            },
            None => return Err("a batch has one PFSD record, not two".into()),
        };
        let mut warnings = 0;
        loop {
            let batch = r
                .read_mrecords(&mut |_| warnings += 1)
                .map_err(|e| e.to_string())?;
            if batch.is_empty() {
                break;
            }
        }
        if warnings > 0 {
            return Err(format!("{warnings} record(s) whose data fails its CRC"));
        }
        match r.read_mrecord().map_err(|e| e.to_string())? {
            Some(rec) if matches!(rec.rec_type(), mrec_type::SYNC | mrec_type::IDLE) => {}
            _ => return Err("a batch does not end with SYNC".into()),
        }
    }
    match end {
        Some(e) if e == span.end => Ok(()),
        Some(e) => Err(format!(
            "the stream ends at {e:#018x}, not {:#018x}",
            span.end
        )),
        None => Err("the stream has no batch".into()),
    }
}

//! `hammer mirror-write <fs>`: the target side of the protocol
//! (protocol.md §3): validate the source's headers, apply its batches with
//! MIRROR_WRITE, move the slave's sync point at SYNC, acknowledge.

use std::io::{Read, Write};

use nix::errno::Errno;

use super::autoslave;
use super::error::{pfs_err, MirrorError, ProtocolError};
use super::header::{read_pfsd, validate_header};
use crate::events::{self, Events, Side, Start};
use crate::ondisk::PseudofsData;
use crate::patharg::PathArg;
use crate::pfs::{getpfs, MirrorWriteReq, Pfs, SynctidOp};
use crate::progress::Progress;
use crate::wire::{mrec_type, Mrecord, MrecordReader, MrecordWriter, UPDATE_REC_SIZE};

/// What a target is asked to do; the command line builds it.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// `-2`: answer with PFSD_T and UPDATE records.
    pub two_way: bool,
    /// `-y`: create a missing slave without asking.
    pub yes: bool,
    /// `-v` count.
    pub verbose: u32,
    /// `-q`: nothing on stderr or stdout but warnings and errors.
    pub quiet: bool,
    /// The stream's length, when known (standard input is a file).
    pub input_len: Option<u64>,
    /// The progress line (stream bytes applied).
    pub progress: Progress,
    /// `-j`: the JSON-lines events.
    pub events: Events,
}

/// Runs mirror-write until the source sends TERM. `output` is the reply
/// channel in two-way mode and stdout otherwise.
pub fn mirror_write<R: Read, W: Write>(
    fs: &PathArg,
    o: &WriteOptions,
    input: R,
    output: W,
    diag: &mut dyn Write,
) -> Result<(), MirrorError> {
    o.progress.start();
    if let Some(len) = o.input_len {
        o.progress.set_total(len);
    }
    let r = write_batches(fs, o, input, output, &mut o.progress.above(diag));
    o.progress.finish();
    r
}

fn write_batches<R: Read, W: Write>(
    fs: &PathArg,
    o: &WriteOptions,
    input: R,
    output: W,
    diag: &mut dyn Write,
) -> Result<(), MirrorError> {
    let mut reader = MrecordReader::new(input);
    let mut writer = MrecordWriter::new(output);
    // The slave as the first batch found it (or created it), kept open for
    // the run: it is pinned to that PFS, so one destroyed under the run,
    // even recreated under its name, fails the next batch instead of being
    // given the rest of a stream whose start it never saw.
    let mut witness: Option<Box<dyn Pfs>> = None;
    // The `start` event was written (at the first batch's header).
    let mut witness_told = false;
    loop {
        // PFSD#1: only its shared uuid is used, to create a missing slave.
        let pfsd1 = match read_pfsd(&mut reader)? {
            None => return Ok(()),
            Some(p) => p,
        };
        // Each batch has a handle of its own, as in the original: one that
        // ends without SYNC is rolled back with it (a held batch).
        let mut pfs = match &witness {
            Some(w) => reopen(fs, w.as_ref())?,
            None => {
                let pfs = open_slave(fs, o, &pfsd1, diag)?;
                witness = Some(reopen(fs, pfs.as_ref())?);
                pfs
            }
        };
        let first = witness_told;
        witness_told = true;
        let more = batch(fs, o, pfs.as_mut(), &mut reader, &mut writer, diag, first)
            .map_err(|e| e.or_destroyed(pfs.as_ref(), format!("Mirror-write {fs} failed")))?;
        if !more {
            return Ok(());
        }
    }
}

/// The slave `fs`, created first if missing (protocol.md §7).
fn open_slave(
    fs: &PathArg,
    o: &WriteOptions,
    pfsd1: &PseudofsData,
    diag: &mut dyn Write,
) -> Result<Box<dyn Pfs>, MirrorError> {
    if autoslave::missing(fs) {
        // -q -y: the creation is done without a word; a question is always
        // asked aloud.
        let mut sink = std::io::sink();
        let notes: &mut dyn Write = if o.quiet && o.yes { &mut sink } else { diag };
        if !autoslave::confirm(fs, o.yes, notes) {
            return Err(ProtocolError::Aborted.into());
        }
        // The original says so and goes on, into whatever PFS the path
        // then opens: the slave's creation failed, so nothing is answered,
        // read or written.
        autoslave::create_slave(fs, pfsd1.shared_uuid, notes)
            .map_err(MirrorError::SlaveNotCreated)?;
    }
    Ok(getpfs(fs)?.0)
}

/// A new handle on the PFS `known` addresses, reached through `fs`; or
/// `Destroyed` when that PFS is gone. `known` is asked last: a PFS it
/// still finds after the new handle found (and pinned) its own is the
/// same one.
fn reopen(fs: &PathArg, known: &dyn Pfs) -> Result<Box<dyn Pfs>, MirrorError> {
    let id = known.pfs_id();
    let opened = getpfs(fs)
        .map_err(MirrorError::from)
        .and_then(|(mut pfs, _)| {
            pfs.set_pfs_id(id);
            pfs.get_pseudofs()
                .map_err(pfs_err("mirror-write: not a HAMMER fs/pseudofs!"))?;
            Ok(pfs)
        });
    if known
        .get_pseudofs()
        .is_err_and(|e| e.errno() == Errno::ENOENT)
    {
        return Err(MirrorError::Destroyed {
            what: format!("Mirror-write {fs} failed"),
            pfs_id: id,
        });
    }
    opened
}

/// One batch after its PFSD#1: the header, the records, SYNC or IDLE and
/// the acknowledgement. False when the source ended the session.
fn batch<R: Read, W: Write>(
    fs: &PathArg,
    o: &WriteOptions,
    pfs: &mut dyn Pfs,
    reader: &mut MrecordReader<R>,
    writer: &mut MrecordWriter<W>,
    diag: &mut dyn Write,
    told: bool,
) -> Result<bool, MirrorError> {
    let t0 = std::time::Instant::now();
    if o.two_way {
        let own = pfs
            .get_pseudofs()
            .map_err(pfs_err("Mirror-read: not a HAMMER fs/pseudofs!"))?;
        send(
            writer,
            &Mrecord::Pfsd {
                version: 1,
                pfsd: own,
            },
        )?;
    }
    let pfsd2 = match validate_header(pfs, reader, true)? {
        None => return Ok(false),
        Some(p) => p,
    };
    let tid_end = pfsd2.sync_end_tid;
    if !told {
        let start = Start {
            pfs: fs.to_string(),
            pfs_id: Some(pfs.pfs_id()),
            shared_uuid: Some(pfsd2.shared_uuid.to_string()),
            begin_tid: Some(events::tid(pfsd2.sync_beg_tid)),
            end_tid: Some(events::tid(tid_end)),
            planned_bytes: o.input_len,
        };
        o.events.start(Some(Side::Target), &start);
    }
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut req = MirrorWriteReq::new(pfsd2.sync_beg_tid, tid_end);
    loop {
        let mut warnings = Vec::new();
        let batch = reader.read_mrecords(&mut |w| warnings.push(w));
        for w in warnings {
            let _ = writeln!(diag, "{w}");
        }
        let batch = batch?;
        if batch.is_empty() {
            break;
        }
        pfs.mirror_write(&mut req, batch.bytes())
            .map_err(pfs_err(format!("Mirror-write {fs} failed")))?;
        if o.progress.counts() || o.events.on() {
            let n = batch.records().count() as u64;
            o.progress.add(batch.len() as u64, n);
            records += n;
            bytes += batch.len() as u64;
        }
        if let Some(errno) = req.head_error {
            return Err(MirrorError::Fatal {
                what: format!("Mirror-write {fs}"),
                errno: errno as i32,
            });
        }
    }
    let rt = match reader.read_mrecord()?.map(|r| (r.rec_type(), r.rec_size())) {
        Some((mrec_type::TERM, _)) => {
            if !o.quiet {
                let _ = writeln!(diag, "Mirror-write: received termination request");
            }
            return Ok(false);
        }
        Some((rt @ (mrec_type::SYNC | mrec_type::IDLE), UPDATE_REC_SIZE)) => rt,
        // The original's rt=-1 when no record came.
        other => {
            let rt = other.map_or(-1, |(rt, _)| rt as i32);
            return Err(ProtocolError::NoSync {
                fs: fs.to_string(),
                rt,
            }
            .into());
        }
    };
    if rt == mrec_type::SYNC {
        let mut now = pfs
            .get_pseudofs()
            .map_err(pfs_err("update_pfs_snapshot (read)"))?;
        if now.sync_end_tid != tid_end {
            now.sync_end_tid = tid_end;
            pfs.set_pseudofs(&now)
                .map_err(pfs_err("update_pfs_snapshot (rewrite)"))?;
            o.events.sync(Some(Side::Target), tid_end);
            if o.verbose >= 2 {
                let _ = writeln!(
                    diag,
                    "Mirror-write: Completed, updated snapshot to {tid_end:016x}"
                );
            }
        }
        // Commits a held batch: failing, the batch failed.
        pfs.synctid(SynctidOp::Sync2)
            .map_err(pfs_err(format!("Mirror-write {fs} failed")))?;
        if o.verbose >= 2 {
            let _ = writeln!(diag, "Mirror-write {fs}: succeeded");
        }
    }
    let took = t0.elapsed().as_secs_f64();
    let span = (pfsd2.sync_beg_tid, tid_end);
    o.events
        .batch(Some(Side::Target), span, records, bytes, took);
    if o.two_way {
        send(writer, &Mrecord::Update { tid: tid_end })?;
    } else if !o.quiet {
        let line = format!("Source can update synctid to 0x{tid_end:016x}\n");
        writer
            .get_mut()
            .write_all(line.as_bytes())
            .and_then(|()| writer.get_mut().flush())
            .map_err(MirrorError::Stdout)?;
    }
    Ok(true)
}

/// Writes one record and pushes it to the peer at once (it is waiting).
fn send<W: Write>(w: &mut MrecordWriter<W>, rec: &Mrecord<'_>) -> Result<(), MirrorError> {
    w.write_record(rec)
        .and_then(|()| w.flush())
        .map_err(MirrorError::Write)
}

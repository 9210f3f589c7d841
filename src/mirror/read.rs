//! `hammer mirror-read` / `mirror-read-stream`: the source side of the
//! protocol (protocol.md §2, §5, §6, §8, §9, §13) with D1, D2 and D3 fixed.

use std::io::{Read, Write};
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::bwlimit::BwLimit;
use super::cycle::{read_cycle_file, write_cycle_file, CyclePoint, CycleRead};
use super::error::{pfs_err, MirrorError, ProtocolError};
use super::header::validate_header;
use super::plan::{self, After, Chunks, Mode, Range};
use super::prescan::{summary, HistEntry, Prescan};
use super::report::{Report, Verbosity};
use super::scoreboard::Scoreboard;
use crate::events::{self, Events, Side, Start};
use crate::ondisk::{BaseElm, LeafElm, PseudofsData};
use crate::patharg::PathArg;
use crate::pfs::{getpfs, MirrorReadReq, Pfs};
use crate::progress::Progress;
use crate::wire::reader::BatchIter;
use crate::wire::{mrec_type, Mrecord, MrecordReader, HEAD_SIZE, SERIALBUF_SIZE, UPDATE_REC_SIZE};

/// What a source is asked to do; the command line builds it.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// `-2`: read PFSD_T and UPDATE from the target.
    pub two_way: bool,
    /// mirror-read-stream: wait for new data after each batch.
    pub stream: bool,
    /// `-v` count.
    pub verbose: u32,
    /// `-q`: only warnings and errors on stderr.
    pub quiet: bool,
    /// stderr is a terminal: `-v` progress is drawn in place.
    pub tty: bool,
    /// `-i`: the least time from one batch of a stream to the next.
    pub delay: Duration,
    /// `-t`: stop after this long.
    pub timeout: Option<Duration>,
    /// `-S` bytes.
    pub splitup: u64,
    /// `-B`
    pub no_bulk: bool,
    /// `-b` bytes per second; `None`: unlimited.
    pub bandwidth: Option<NonZeroU64>,
    pub cycle_file: Option<PathBuf>,
    pub scoreboard: Option<PathBuf>,
    /// The begin-tid argument.
    pub begin_tid: Option<u64>,
    /// No batch reaches past this TID (no option of the original's: a
    /// chain object in object storage is named by its range before it is
    /// read).
    pub end_tid: Option<u64>,
    /// The progress line (stream bytes; its total from each prescan).
    pub progress: Progress,
    /// `-j`: the JSON-lines events.
    pub events: Events,
}

struct Source<'a, R, W> {
    fs: &'a PathArg,
    o: &'a ReadOptions,
    reader: MrecordReader<R>,
    out: W,
    report: Report<'a>,
    bw: BwLimit,
    buf: Vec<u8>,
    start: Instant,
    /// The chunks of the current prescan, while a transfer walks them.
    chunks: Option<Chunks>,
    /// A prescan summary has been printed once.
    repeat: bool,
    interrupted: bool,
    mode: Mode,
    /// Stream bytes written so far (the offset a failed write names).
    sent: u64,
    /// The end TID of the last batch closed by SYNC or IDLE.
    synced_to: Option<u64>,
    /// What the batches of this run have covered so far: a one-way run's
    /// next batch starts after it.
    covered: Option<u64>,
    /// The source PFS, opened at the first batch and kept: its handle is
    /// pinned to that PFS, so one destroyed under the run fails it.
    pfs: Option<Box<dyn Pfs>>,
    /// The bytes the last prescan counted.
    planned: Option<u64>,
    /// The `start` event was written.
    started: bool,
    /// Records sent in the current batch (counted for the progress line
    /// and the events only).
    batch_records: u64,
}

/// Runs mirror-read(-stream) on `fs`, writing the stream to `output` and,
/// in two-way mode, reading the target's replies from `input`.
pub fn mirror_read<R: Read, W: Write>(
    fs: &PathArg,
    o: &ReadOptions,
    input: R,
    output: W,
    diag: &mut dyn Write,
) -> Result<(), MirrorError> {
    mirror_read_synced(fs, o, input, output, diag).map(drop)
}

/// `mirror_read`, returning the end TID of the last batch closed by SYNC
/// or IDLE (`None`: no batch was closed).
pub fn mirror_read_synced<R: Read, W: Write>(
    fs: &PathArg,
    o: &ReadOptions,
    input: R,
    output: W,
    diag: &mut dyn Write,
) -> Result<Option<u64>, MirrorError> {
    let mut s = Source {
        fs,
        o,
        reader: MrecordReader::new(input),
        out: output,
        report: Report::new(
            diag,
            Verbosity {
                verbose: o.verbose,
                quiet: o.quiet,
                tty: o.tty,
            },
            o.scoreboard.as_ref().map(Scoreboard::new),
            o.progress.clone(),
        ),
        bw: BwLimit::new(o.bandwidth),
        buf: vec![0u8; SERIALBUF_SIZE],
        start: Instant::now(),
        chunks: None,
        repeat: false,
        interrupted: false,
        mode: Mode::new(o.stream),
        sent: 0,
        synced_to: None,
        covered: None,
        pfs: None,
        planned: None,
        started: false,
        batch_records: 0,
    };
    s.run().map(|()| s.synced_to)
}

/// Outcome of one batch.
enum Next {
    Batch,
    Finish,
    /// The target sent TERM instead of its header: stop silently.
    Stop,
}

impl<R: Read, W: Write> Source<'_, R, W> {
    fn run(&mut self) -> Result<(), MirrorError> {
        self.o.progress.start();
        let r = self.run_batches();
        self.o.progress.finish();
        self.report
            .finished(r.is_ok(), self.interrupted, self.sent, self.synced_to);
        r
    }

    fn run_batches(&mut self) -> Result<(), MirrorError> {
        loop {
            match self.batch()? {
                Next::Batch => continue,
                Next::Stop => return Ok(()),
                Next::Finish => break,
            }
        }
        self.send(&Mrecord::Term { tid: 1 })?;
        if self.interrupted {
            let how = match &self.o.cycle_file {
                Some(c) => format!("run the same command again to resume from {}", c.display()),
                None => "run it again to go on from the last completed batch \
                         (with -c <file>, from where it stopped)"
                    .to_string(),
            };
            self.report.warn(&format!(
                "Mirror-read {}: the copy is incomplete (stopped by -t); {how}",
                self.fs
            ));
        } else {
            // The original says it after a -t cut too: not after the
            // line that says the copy is incomplete.
            self.say(&format!("Mirror-read {} succeeded", self.fs));
        }
        Ok(())
    }

    /// One batch on the run's PFS (opened at the first): headers, the plan
    /// of its range, the records, SYNC or IDLE, the target's
    /// acknowledgement, and what comes next.
    fn batch(&mut self) -> Result<Next, MirrorError> {
        let mut pfs = match self.pfs.take() {
            Some(pfs) => pfs,
            None => getpfs(self.fs)?.0,
        };
        let next = self.batch_on(pfs.as_mut()).map_err(|e| {
            let e = e.or_destroyed(pfs.as_ref(), format!("Mirror-read {} failed", self.fs));
            if matches!(e, MirrorError::Destroyed { .. }) {
                self.report.board_message(&e.to_string());
            }
            e
        })?;
        self.pfs = Some(pfs);
        Ok(next)
    }

    fn batch_on(&mut self, pfs: &mut dyn Pfs) -> Result<Next, MirrorError> {
        if self.mode != Mode::Chunked {
            self.report.running();
        }
        self.bw.reset();
        let scratch = scratch_pfsd(pfs)?;
        self.send(&Mrecord::Pfsd {
            version: 1,
            pfsd: scratch,
        })?;
        let target_sync_end = if self.o.two_way {
            match validate_header(pfs, &mut self.reader, false)? {
                None => return Ok(Next::Stop),
                Some(t) => Some(t.sync_end_tid),
            }
        } else {
            None
        };
        let (range, resumed) = self.plan_range(pfs, target_sync_end)?;
        let tid_end = range.tid_end;
        if !self.started {
            self.started = true;
            let pfsd = scratch_pfsd(pfs)?;
            let start = Start {
                pfs: self.fs.to_string(),
                pfs_id: Some(pfs.pfs_id()),
                shared_uuid: Some(pfsd.shared_uuid.to_string()),
                begin_tid: Some(events::tid(range.tid_beg)),
                end_tid: Some(events::tid(range.tid_end)),
                planned_bytes: self.planned,
            };
            self.o.events.start(Some(Side::Source), &start);
        }
        let (t0, sent0) = (Instant::now(), self.sent);
        self.batch_records = 0;
        self.transfer(pfs, range)?;
        if !self.interrupted {
            let took = t0.elapsed().as_secs_f64();
            let span = (range.tid_beg, range.tid_end);
            let bytes = self.sent - sent0;
            self.o
                .events
                .batch(Some(Side::Source), span, self.batch_records, bytes, took);
        }
        self.covered = Some(range.covered_to());

        match plan::after_batch(self.interrupted, resumed, self.chunks.as_ref(), self.mode) {
            After::Finish => Ok(Next::Finish),
            After::Next => {
                if self.chunks.is_some() && self.mode != Mode::Chunked {
                    self.report.more_chunks();
                }
                Ok(Next::Batch)
            }
            After::ChunksDone if self.mode != Mode::Stream => {
                // D2: the next run prescans afresh.
                self.chunks = None;
                self.mode = Mode::Once;
                Ok(Next::Finish)
            }
            After::ChunksDone | After::Wait => {
                self.chunks = None;
                self.wait(pfs, tid_end);
                Ok(Next::Batch)
            }
        }
    }

    /// The batch's range: after the target or the previous chunk, resumed
    /// from the cycle file or cut by a prescan; sends the second PFSD,
    /// which carries its end. Returns the range and whether it resumes.
    fn plan_range(
        &mut self,
        pfs: &mut dyn Pfs,
        target_sync_end: Option<u64>,
    ) -> Result<(Range, bool), MirrorError> {
        let first = self.covered.is_none();
        let mut scratch = scratch_pfsd(pfs)?;
        let (mut range, t_sync_end) = plan::initial_range(target_sync_end, self.covered, &scratch);
        if let Some(cap) = self.o.end_tid {
            range.tid_end = range.tid_end.min(cap);
            scratch.sync_end_tid = range.tid_end;
        }
        let resume = if self.chunks.is_none() && self.o.begin_tid.is_none() {
            self.load_cycle_file(&range, t_sync_end)
        } else {
            None
        };
        if let Some(r) = resume {
            range = r;
            scratch.sync_end_tid = range.tid_end;
        } else if let (Some(b), true) = (self.o.begin_tid, first) {
            // Before the prescan, so that it counts what will be sent; for
            // the first batch only, so that later chunks and batches go on
            // from the previous one instead of sending it all again.
            range.tid_beg = b;
        } else if !self.o.two_way && first {
            if let Some(t) = self.cycle_tid() {
                range.tid_beg = t;
            }
        }
        if resume.is_none() && self.chunks.is_none() && !self.o.no_bulk {
            if !self.repeat {
                self.report.before_prescan();
            }
            // D2: an empty range gives no chunks instead of stale ones.
            if let Some(entries) = self.prescan(pfs, range.tid_beg, range.tid_end)? {
                self.chunks = Chunks::new(entries);
                self.mode = self.mode.chunked();
            }
        }
        let mut estbytes = None;
        if let Some(c) = self.chunks.as_mut() {
            let (end, bytes) = c.advance();
            range.tid_end = end;
            estbytes = Some(bytes);
            scratch.sync_end_tid = end;
        }
        self.send(&Mrecord::Pfsd {
            version: 1,
            pfsd: scratch,
        })?;
        if self.mode == Mode::Once || self.o.verbose >= 2 {
            let bulk = estbytes.map_or(String::new(), |b| format!(" (bulk= {b})"));
            self.say(&format!(
                "Mirror-read: Mirror {:016x} to {:016x}{bulk}",
                range.tid_beg, range.tid_end
            ));
        }
        Ok((range, resume.is_some()))
    }

    /// Sends the batch's records (after a SKIP to a resume key), then SYNC,
    /// or IDLE when the range is empty, and takes the acknowledgement.
    fn transfer(&mut self, pfs: &mut dyn Pfs, range: Range) -> Result<(), MirrorError> {
        let Range {
            key_beg,
            tid_beg,
            tid_end,
        } = range;
        if key_beg.obj_id != i64::MIN {
            self.say(&format!(
                "Mirror-read: Resuming at object {:016x}",
                key_beg.obj_id
            ));
            // The target's sweep must not delete what lies before the
            // resume key: skip over it.
            self.send(&Mrecord::Skip {
                beg: BaseElm::KEY_BEG_INIT,
                end: key_beg,
            })?;
        }
        let mut key_cur = key_beg;
        let work = if tid_beg >= tid_end {
            if self.mode == Mode::Once || self.o.verbose >= 2 {
                self.say("Mirror-read: No work to do");
            }
            sleep(self.o.delay);
            self.chunks = None;
            false
        } else {
            key_cur = self.bulk(pfs, key_beg, tid_beg, tid_end)?;
            // A PFS gone by now may have taken records with it that the
            // scan then never saw: no SYNC for what may be a part.
            scratch_pfsd(pfs)?;
            true
        };
        self.report.batch_sent(self.mode.batches());
        if !self.interrupted {
            let rec = if work {
                Mrecord::Sync { tid: 1 }
            } else {
                Mrecord::Idle { tid: 1 }
            };
            self.send(&rec)?;
            self.synced_to = Some(tid_end);
        }
        self.acknowledge(key_cur, tid_beg, tid_end)
    }

    /// Step 15: MIRROR_READ until the scan is complete or `-t` expires.
    fn bulk(
        &mut self,
        pfs: &mut dyn Pfs,
        key_beg: BaseElm,
        tid_beg: u64,
        tid_end: u64,
    ) -> Result<BaseElm, MirrorError> {
        let mut req = MirrorReadReq::new(tid_beg, tid_end);
        req.key_beg = key_beg;
        let mut total: u64 = 0;
        loop {
            let count = match pfs.mirror_read(&mut req, &mut self.buf) {
                // An interrupted scan is not a finished one: a count of 0
                // would otherwise end the batch and SYNC past unsent data.
                Ok(_) if req.interrupted => {
                    let e = crate::pfs::PfsError::Sys(nix::errno::Errno::EINTR);
                    self.report
                        .board_message(&format!("Mirror-read {} failed: {e}", self.fs));
                    return Err(pfs_err(format!("Mirror-read {} failed", self.fs))(e));
                }
                Ok(n) => n,
                Err(e) => {
                    self.report
                        .board_message(&format!("Mirror-read {} failed: {e}", self.fs));
                    return Err(pfs_err(format!("Mirror-read {} failed", self.fs))(e));
                }
            };
            if count > 0 {
                if let Err(source) = self.bw.write_all(&mut self.out, &self.buf[..count]) {
                    self.report
                        .board_message(&format!("Mirror-read {} failed: short write", self.fs));
                    return Err(MirrorError::ShortWrite {
                        fs: self.fs.to_string(),
                        offset: self.sent,
                        source,
                    });
                }
                self.sent += count as u64;
                let progress = &self.o.progress;
                if progress.counts() || self.o.events.on() {
                    let records = BatchIter::new(&self.buf[..count]).count() as u64;
                    self.batch_records += records;
                    progress.add(count as u64, records);
                }
            }
            total += count as u64;
            let progress = format!(
                "obj={:016x} tids={tid_beg:016x}:{tid_end:016x} {total:>11}",
                req.key_cur.obj_id
            );
            self.report.scan(&progress, self.mode.batches(), count == 0);
            req.key_beg = req.key_cur;
            if self.timed_out() {
                let msg = format!(
                    "Mirror-read {} interrupted by timer at {:016x}",
                    self.fs, req.key_cur.obj_id
                );
                self.report.incident(&msg);
                self.interrupted = true;
                return Ok(req.key_cur);
            }
            if count == 0 {
                return Ok(req.key_cur);
            }
        }
    }

    /// Step 18: the target's UPDATE (two-way) and the cycle file.
    fn acknowledge(
        &mut self,
        key_cur: BaseElm,
        tid_beg: u64,
        tid_end: u64,
    ) -> Result<(), MirrorError> {
        let Some(path) = self.o.cycle_file.clone() else {
            if self.o.two_way && !self.interrupted {
                self.read_update()?;
            }
            return Ok(());
        };
        let point = if self.interrupted {
            // D1: in two-way mode the target gets TERM (sent by the caller)
            // instead of waiting forever for a SYNC.
            CyclePoint {
                key: key_cur,
                tid: tid_beg,
                tid_end: Some(tid_end),
            }
        } else if self.o.two_way {
            let tid = self.read_update()?;
            CyclePoint {
                key: BaseElm::KEY_BEG_INIT,
                tid,
                tid_end: None,
            }
        } else {
            // D3: one-way, the target's receipt is unknown, so the file
            // never moves past what this run started from.
            self.report.warn(
                "Warning: cycle file (-c option) cannot be fully updated unless you use mirror-copy",
            );
            CyclePoint {
                key: BaseElm::KEY_BEG_INIT,
                tid: tid_beg,
                tid_end: None,
            }
        };
        match write_cycle_file(&path, &point) {
            Err(e) => self.report.warn(&format!(
                "Warning: Unable to write to {}: {}",
                path.display(),
                crate::errno::strerror(&e)
            )),
            Ok(()) if self.interrupted => self.say(&format!(
                "Cyclefile {} updated for continuation",
                path.display()
            )),
            Ok(()) if self.o.two_way => self.say(&format!(
                "Cyclefile {} updated to 0x{:016x}",
                path.display(),
                point.tid
            )),
            Ok(()) => {}
        }
        Ok(())
    }

    fn read_update(&mut self) -> Result<u64, MirrorError> {
        let rec = self.reader.read_mrecord()?.ok_or(ProtocolError::NoAck)?;
        if rec.rec_type() != mrec_type::UPDATE || rec.rec_size() != UPDATE_REC_SIZE {
            return Err(ProtocolError::NoAck.into());
        }
        let tid = rec.tid().unwrap_or_default();
        self.o.events.sync(Some(Side::Source), tid);
        Ok(tid)
    }

    /// A resume point from the cycle file, if it continues an interrupted
    /// batch that the target has not moved past (D3).
    fn load_cycle_file(&mut self, range: &Range, t_sync_end: u64) -> Option<Range> {
        let path = self.o.cycle_file.clone()?;
        let p = match read_cycle_file(&path, &mut |m| self.report.warn(&m)) {
            CycleRead::Loaded(p) => p,
            _ => return None,
        };
        if !plan::is_continuation(&p) || p.key == BaseElm::KEY_BEG_INIT {
            return None;
        }
        let resumed = plan::resume(&p, range, self.o.two_way, t_sync_end);
        if resumed.is_none() {
            self.say(&format!(
                "Cyclefile {}: resume point does not match the target, starting over",
                path.display()
            ));
        }
        resumed
    }

    /// One-way: the TID of a complete-run cycle file, as the original.
    fn cycle_tid(&mut self) -> Option<u64> {
        let path = self.o.cycle_file.clone()?;
        match read_cycle_file(&path, &mut |_| ()) {
            CycleRead::Loaded(p) if p.tid_end.is_none() => Some(p.tid),
            _ => None,
        }
    }

    /// protocol.md §5: a NODATA scan counting bytes per TID bucket.
    fn prescan(
        &mut self,
        pfs: &mut dyn Pfs,
        b: u64,
        e: u64,
    ) -> Result<Option<Vec<HistEntry>>, MirrorError> {
        let Some(mut p) = Prescan::new(b, e) else {
            return Ok(None);
        };
        if !self.repeat {
            let mb = if self.o.verbose > 1 {
                format!(" ({}MB chunks)", self.o.splitup / 1_048_576)
            } else {
                String::new()
            };
            self.say(&format!("Prescan to break up bulk transfer{mb}"));
        }
        let mut req = MirrorReadReq::new(b, e);
        req.nodata = true;
        let mut chunks = 0;
        loop {
            let count = pfs
                .mirror_read(&mut req, &mut self.buf)
                .map_err(pfs_err(format!("Mirror-read {} failed", self.fs)))?;
            for rec in BatchIter::new(&self.buf[..count]) {
                if let Some(leaf) = rec.array::<{ LeafElm::SIZE }>(HEAD_SIZE) {
                    p.add_record(rec.rec_type(), rec.rec_size(), &LeafElm::decode(leaf));
                }
            }
            if !self.repeat && p.accum > self.o.splitup {
                chunks += 1;
                self.report.prescan_chunk(chunks);
                p.accum = 0;
            }
            req.key_beg = req.key_cur;
            if count == 0 {
                break;
            }
        }
        self.o.progress.expect(p.total);
        self.planned = Some(p.total);
        let entries = p.reduce(self.o.splitup);
        if !self.repeat {
            self.report.after_prescan();
            self.report.board_message(&format!(
                "Prescan {} chunks, total {} MBytes",
                entries.len() - 1,
                p.total / 1_048_576
            ));
            self.say(&summary(&entries, p.total));
            self.repeat = true;
        }
        Ok(Some(entries))
    }

    /// protocol.md §6: wait for the sync point to move past `tid_end`, at most
    /// one batch every `-i` seconds.
    fn wait(&mut self, pfs: &dyn Pfs, tid_end: u64) {
        self.report.waiting();
        self.o.progress.status("waiting");
        let t1 = Instant::now();
        if let Err(e) = pfs.wait(tid_end) {
            let msg = format!("Mirror-read {}: cannot stream: {e}", self.fs);
            self.report.incident(&msg);
            self.mode = Mode::Once;
            self.o.progress.status("");
            return;
        }
        let waited = t1.elapsed();
        if waited < self.o.delay {
            self.report.delaying();
            sleep(self.o.delay - waited);
        }
        self.report.woke();
        self.o.progress.status("");
    }

    fn timed_out(&self) -> bool {
        // Whole seconds, as the original compares them.
        self.o
            .timeout
            .is_some_and(|t| self.start.elapsed().as_secs() > t.as_secs())
    }

    fn send(&mut self, rec: &Mrecord<'_>) -> Result<(), MirrorError> {
        let bytes = rec.to_vec();
        self.out
            .write_all(&bytes)
            .and_then(|()| self.out.flush())
            .map_err(MirrorError::Write)?;
        self.sent += bytes.len() as u64;
        Ok(())
    }

    fn say(&mut self, msg: &str) {
        self.report.say(msg);
    }
}

/// GET_PSEUDOFS into the scratch record (protocol.md §2 step 5).
fn scratch_pfsd(pfs: &dyn Pfs) -> Result<PseudofsData, MirrorError> {
    pfs.get_pseudofs()
        .map_err(pfs_err("Mirror-read: not a HAMMER fs/pseudofs!"))
}

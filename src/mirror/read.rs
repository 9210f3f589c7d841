//! `hammer mirror-read` / `mirror-read-stream`: the source side of the
//! protocol (protocol.md §2, §5, §6, §8, §9, §13) with D1, D2 and D3 fixed.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::bwlimit::BwLimit;
use super::cycle::{read_cycle_file, write_cycle_file, CyclePoint, CycleRead};
use super::error::{pfs_err, MirrorError, ProtocolError};
use super::header::validate_header;
use super::prescan::{summary, HistEntry, Prescan};
use super::scoreboard::{Scoreboard, MESSAGE, PROGRESS, STATUS};
use crate::ondisk::{BaseElm, LeafElm, PseudofsData};
use crate::pfs::{getpfs, MirrorReadReq, Pfs};
use crate::wire::reader::BatchIter;
use crate::wire::{mrec_type, Mrecord, MrecordReader, HEAD_SIZE, SERIALBUF_SIZE, UPDATE_REC_SIZE};

#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// `-2`: read PFSD_T and UPDATE from the target.
    pub two_way: bool,
    /// mirror-read-stream: wait for new data after each batch.
    pub stream: bool,
    pub verbose: i32,
    /// `-i` seconds.
    pub delay: i32,
    /// `-t` seconds, 0 = none.
    pub timeout: i32,
    /// `-S` bytes.
    pub splitup: u64,
    /// `-B`
    pub no_bulk: bool,
    /// `-b` bytes per second.
    pub bandwidth: u64,
    pub cycle_file: Option<PathBuf>,
    pub scoreboard: Option<PathBuf>,
    /// The begin-tid argument.
    pub begin_tid: Option<u64>,
}

impl ReadOptions {
    /// The options a source takes from the global command line.
    pub fn from_global(o: &crate::cli::GlobalOpts, stream: bool, begin_tid: Option<u64>) -> Self {
        ReadOptions {
            two_way: o.two_way,
            stream,
            verbose: o.verbose,
            delay: o.delay,
            timeout: o.timeout,
            splitup: o.splitup,
            no_bulk: o.no_bulk,
            bandwidth: o.bandwidth,
            cycle_file: o.cycle_file.as_ref().map(Into::into),
            scoreboard: o.scoreboard.as_ref().map(Into::into),
            begin_tid,
        }
    }
}

/// The histogram of the current prescan: chunk k ends at `entries[k].tid`.
struct Hist {
    entries: Vec<HistEntry>,
    index: usize,
}

impl Hist {
    fn max(&self) -> usize {
        self.entries.len() - 1
    }
}

struct Source<'a, R, W> {
    fs: &'a str,
    o: &'a ReadOptions,
    reader: MrecordReader<R>,
    out: W,
    diag: &'a mut dyn Write,
    sb: Option<Scoreboard>,
    bw: BwLimit,
    buf: Vec<u8>,
    start: Instant,
    hist: Option<Hist>,
    /// A prescan summary has been printed once.
    repeat: bool,
    sameline: bool,
    interrupted: bool,
    /// 1 streaming, 0 single run, -1 single run walking histogram chunks.
    stream: i32,
    /// The source PFS, opened at the first batch and kept: its handle is
    /// pinned to that PFS, so one destroyed under the run fails it.
    pfs: Option<Box<dyn Pfs>>,
}

/// Runs mirror-read(-stream) on `fs`, writing the stream to `output` and,
/// in two-way mode, reading the target's replies from `input`.
pub fn mirror_read<R: Read, W: Write>(
    fs: &str,
    o: &ReadOptions,
    input: R,
    output: W,
    diag: &mut dyn Write,
) -> Result<(), MirrorError> {
    let mut s = Source {
        fs,
        o,
        reader: MrecordReader::new(input),
        out: output,
        diag,
        sb: o.scoreboard.as_ref().map(Scoreboard::new),
        bw: BwLimit::new(o.bandwidth),
        buf: vec![0u8; SERIALBUF_SIZE],
        start: Instant::now(),
        hist: None,
        repeat: false,
        sameline: false,
        interrupted: false,
        stream: i32::from(o.stream),
        pfs: None,
    };
    s.run()
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
        loop {
            match self.batch()? {
                Next::Batch => continue,
                Next::Stop => return Ok(()),
                Next::Finish => break,
            }
        }
        self.send(&Mrecord::Term { tid: 1 })?;
        self.say(&format!("Mirror-read {} succeeded", self.fs));
        Ok(())
    }

    fn batch(&mut self) -> Result<Next, MirrorError> {
        let mut pfs = match self.pfs.take() {
            Some(pfs) => pfs,
            None => getpfs(self.fs)?.0,
        };
        let next = self.batch_on(pfs.as_mut()).map_err(|e| {
            let e = e.or_destroyed(pfs.as_ref(), format!("Mirror-read {} failed", self.fs));
            if matches!(e, MirrorError::Destroyed { .. }) {
                self.board(MESSAGE, &e.to_string());
            }
            e
        })?;
        self.pfs = Some(pfs);
        Ok(next)
    }

    fn batch_on(&mut self, pfs: &mut dyn Pfs) -> Result<Next, MirrorError> {
        if self.stream >= 0 {
            self.board(STATUS, "Running");
            if self.o.verbose == 1 {
                let lead = if self.sameline { "\r" } else { "\n" };
                self.print(&format!("{lead}Running  \u{8}\u{8}"));
            }
            self.sameline = true;
        }
        self.bw.reset();
        let mut scratch = scratch_pfsd(pfs)?;
        self.send(&Mrecord::Pfsd {
            version: 1,
            pfsd: scratch,
        })?;

        let mut tid_beg = if self.o.two_way {
            match validate_header(pfs, &mut self.reader, false)? {
                None => return Ok(Next::Stop),
                Some(t) => t.sync_end_tid.wrapping_add(1),
            }
        } else {
            match &self.hist {
                Some(h) if self.stream != 0 => h.entries[h.index].tid + 1,
                _ => 0,
            }
        };
        let t_sync_end = tid_beg.wrapping_sub(1);

        scratch = scratch_pfsd(pfs)?;
        tid_beg = tid_beg.max(scratch.sync_beg_tid);
        let mut tid_end = scratch.sync_end_tid;
        let mut key_beg = BaseElm::KEY_BEG_INIT;

        // D3: a resume point is used only where it continues exactly the
        // interrupted batch; then that batch runs alone, without prescan.
        let resume = if self.hist.is_none() && self.o.begin_tid.is_none() {
            self.load_cycle_file(tid_end, t_sync_end)
        } else {
            None
        };
        if let Some(p) = resume {
            key_beg = p.key;
            tid_beg = p.tid;
            tid_end = p.tid_end.unwrap_or(tid_end);
            scratch.sync_end_tid = tid_end;
        } else if !self.o.two_way && self.hist.is_none() {
            if let Some(t) = self.cycle_tid() {
                tid_beg = t;
            }
        }

        if resume.is_none() && self.hist.is_none() && !self.o.no_bulk {
            if self.o.verbose > 0 && !self.repeat {
                self.print("\n");
                self.sameline = false;
            }
            // D2: an empty range gives no histogram instead of one whose
            // entries are stale.
            if let Some(entries) = self.prescan(pfs, tid_beg, tid_end)? {
                self.hist = Some(Hist { entries, index: 0 });
                if self.stream == 0 {
                    self.stream = -1;
                }
            }
        }
        let mut estbytes = None;
        if let Some(h) = self.hist.as_mut() {
            if self.stream != 0 {
                h.index += 1;
                tid_end = h.entries[h.index].tid;
                estbytes = Some(h.entries[h.index - 1].bytes);
                scratch.sync_end_tid = tid_end;
            }
        }
        self.send(&Mrecord::Pfsd {
            version: 1,
            pfsd: scratch,
        })?;
        if let Some(b) = self.o.begin_tid {
            tid_beg = b;
        }
        if self.stream == 0 || self.o.verbose >= 2 {
            let bulk = estbytes.map_or(String::new(), |b| format!(" (bulk= {b})"));
            self.say(&format!(
                "Mirror-read: Mirror {tid_beg:016x} to {tid_end:016x}{bulk}"
            ));
        }
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
            if self.stream == 0 || self.o.verbose >= 2 {
                self.say("Mirror-read: No work to do");
            }
            sleep(Duration::from_secs(self.o.delay.max(0) as u64));
            self.hist = None;
            false
        } else {
            key_cur = self.bulk(pfs, key_beg, tid_beg, tid_end)?;
            // A PFS gone by now may have taken records with it that the
            // scan then never saw: no SYNC for what may be a part.
            scratch_pfsd(pfs)?;
            true
        };
        if self.stream != 0 && self.o.verbose > 0 && !self.sameline {
            self.print("\n");
            self.sameline = true;
        }
        if !self.interrupted {
            let rec = if work {
                Mrecord::Sync { tid: 1 }
            } else {
                Mrecord::Idle { tid: 1 }
            };
            self.send(&rec)?;
        }
        self.acknowledge(key_cur, tid_beg, tid_end)?;

        if self.interrupted {
            return Ok(Next::Finish);
        }
        if resume.is_some() {
            // The resumed range is done; the rest goes in normal batches.
            return Ok(Next::Batch);
        }
        if let Some(h) = &self.hist {
            if h.index != h.max() {
                if self.o.verbose == 1 && self.stream >= 0 {
                    self.print(" (bulk incremental)");
                }
                return Ok(Next::Batch);
            }
            // D2: the last chunk is done; the next batch prescans afresh.
            self.hist = None;
        }
        if self.stream == 0 {
            return Ok(Next::Finish);
        }
        if self.stream < 0 {
            self.stream = 0;
            return Ok(Next::Finish);
        }
        self.wait(pfs, tid_end);
        Ok(Next::Batch)
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
                    self.board(MESSAGE, &format!("Mirror-read {} failed: {e}", self.fs));
                    return Err(pfs_err(format!("Mirror-read {} failed", self.fs))(e));
                }
                Ok(n) => n,
                Err(e) => {
                    self.board(MESSAGE, &format!("Mirror-read {} failed: {e}", self.fs));
                    return Err(pfs_err(format!("Mirror-read {} failed", self.fs))(e));
                }
            };
            if count > 0
                && self
                    .bw
                    .write_all(&mut self.out, &self.buf[..count])
                    .is_err()
            {
                self.board(
                    MESSAGE,
                    &format!("Mirror-read {} failed: short write", self.fs),
                );
                return Err(MirrorError::ShortWrite {
                    fs: self.fs.to_string(),
                });
            }
            total += count as u64;
            let progress = format!(
                "obj={:016x} tids={tid_beg:016x}:{tid_end:016x} {total:>11}",
                req.key_cur.obj_id
            );
            if self.stream != 0 && self.o.verbose > 0 {
                self.print(&format!("\rscan {progress}"));
                self.sameline = false;
            } else if self.stream != 0 {
                self.board(PROGRESS, &progress);
            }
            req.key_beg = req.key_cur;
            if self.timed_out() {
                let msg = format!(
                    "Mirror-read {} interrupted by timer at {:016x}",
                    self.fs, req.key_cur.obj_id
                );
                self.board(MESSAGE, &msg);
                self.say(&msg);
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
            self.say("Warning: cycle file (-c option) cannot be fully updated unless you use mirror-copy");
            CyclePoint {
                key: BaseElm::KEY_BEG_INIT,
                tid: tid_beg,
                tid_end: None,
            }
        };
        match write_cycle_file(&path, &point) {
            Err(e) => self.say(&format!(
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
        Ok(rec.tid().unwrap_or_default())
    }

    /// A resume point from the cycle file, if it continues an interrupted
    /// batch that the target has not moved past (D3).
    fn load_cycle_file(&mut self, tid_end: u64, t_sync_end: u64) -> Option<CyclePoint> {
        let path = self.o.cycle_file.clone()?;
        let p = match read_cycle_file(&path, &mut |m| self.say(&m)) {
            CycleRead::Loaded(p) => p,
            _ => return None,
        };
        let end = p.tid_end?;
        if p.key == BaseElm::KEY_BEG_INIT {
            return None;
        }
        let target_matches = !self.o.two_way || p.tid == t_sync_end.wrapping_add(1);
        if target_matches && p.tid <= end && end <= tid_end {
            Some(p)
        } else {
            self.say(&format!(
                "Cyclefile {}: resume point does not match the target, starting over",
                path.display()
            ));
            None
        }
    }

    /// One-way: the TID of a complete-run cycle file, as the original.
    fn cycle_tid(&mut self) -> Option<u64> {
        let path = self.o.cycle_file.clone()?;
        match read_cycle_file(&path, &mut |_| ()) {
            CycleRead::Loaded(p) if p.tid_end.is_none() => Some(p.tid),
            _ => None,
        }
    }

    /// §5: a NODATA scan counting bytes per TID bucket.
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
                if self.o.verbose > 1 {
                    self.print(".");
                }
                chunks += 1;
                self.board(PROGRESS, &format!("Prescan chunk {chunks}"));
                p.accum = 0;
            }
            req.key_beg = req.key_cur;
            if count == 0 {
                break;
            }
        }
        let entries = p.reduce(self.o.splitup);
        if !self.repeat {
            if self.o.verbose > 1 {
                self.print("\n");
            }
            self.board(
                MESSAGE,
                &format!(
                    "Prescan {} chunks, total {} MBytes",
                    entries.len() - 1,
                    p.total / 1_048_576
                ),
            );
            self.say(&summary(&entries, p.total));
            self.repeat = true;
        }
        Ok(Some(entries))
    }

    /// §6: wait for the sync point to move past `tid_end`, at most one
    /// batch every `-i` seconds.
    fn wait(&mut self, pfs: &dyn Pfs, tid_end: u64) {
        if self.o.verbose > 0 {
            self.print(" W");
        } else {
            self.board(STATUS, "Waiting");
        }
        let t1 = Instant::now();
        if let Err(e) = pfs.wait(tid_end) {
            let msg = format!("Mirror-read {}: cannot stream: {e}", self.fs);
            self.board(MESSAGE, &msg);
            self.say(&msg);
            self.stream = 0;
            return;
        }
        let delay = Duration::from_secs(self.o.delay.max(0) as u64);
        let waited = t1.elapsed();
        if waited < delay {
            if self.o.verbose > 0 {
                self.print("\u{8}D");
            }
            sleep(delay - waited);
        }
        if self.o.verbose > 0 {
            self.print("\u{8} ");
        }
    }

    fn timed_out(&self) -> bool {
        self.o.timeout != 0 && self.start.elapsed().as_secs() > u64::from(self.o.timeout as u32)
    }

    fn send(&mut self, rec: &Mrecord<'_>) -> Result<(), MirrorError> {
        self.out
            .write_all(&rec.to_vec())
            .and_then(|()| self.out.flush())
            .map_err(MirrorError::Write)
    }

    fn say(&mut self, msg: &str) {
        let _ = writeln!(self.diag, "{msg}");
    }

    fn print(&mut self, s: &str) {
        let _ = self.diag.write_all(s.as_bytes());
        let _ = self.diag.flush();
    }

    fn board(&mut self, field: super::scoreboard::Field, text: &str) {
        if let Some(sb) = self.sb.as_mut() {
            let _ = sb.update(field, text);
        }
    }
}

/// GET_PSEUDOFS into the scratch record (protocol.md §2 step 5).
fn scratch_pfsd(pfs: &dyn Pfs) -> Result<PseudofsData, MirrorError> {
    pfs.get_pseudofs()
        .map_err(pfs_err("Mirror-read: not a HAMMER fs/pseudofs!"))
}

//! mirror-copy / mirror-stream with several targets: the source's stream
//! is read once and relayed, record by record, to every target over a
//! channel of its own. The source talks two-way to one target, the one
//! furthest behind (so its batches start from the oldest sync point); the
//! targets further on take what they already hold as no-ops. A target that
//! fails or goes away is dropped with its own message and the others go
//! on; writes back-pressure, so a slow target slows the copy instead of
//! filling memory (each channel holds at most one pipe's worth). A target
//! that takes nothing and answers nothing for `-w` seconds is dropped the
//! same way (a remote one's shell killed), so one stalled target cannot
//! hold the others.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use super::chan;
use super::copy::{
    report_side, same_pfs, start, start_local, CopyError, CopyNote, CopyOptions, Ended, Running,
};
use super::remote::{parse_side, Role, Side};
use super::write::WriteOptions;
use crate::ondisk::PseudofsData;
use crate::wire::reader::{ReadError, ReadErrorKind};
use crate::wire::record::PFSD_OFF_DATA;
use crate::wire::zframe::{zstd_level, ZReader, ZWriter};
use crate::wire::{doalign, mrec_type, MrecordReader, SERIALBUF_SIZE};

/// The most targets one copy feeds: the exit status has a bit for each.
pub const MAX_TARGETS: usize = 6;

/// Bytes gathered before they are written to the targets.
const RELAY_BUF: usize = SERIALBUF_SIZE;

/// How a fan-out ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FanOutcome {
    pub source_failed: bool,
    /// By target, in the order given.
    pub targets_failed: Vec<bool>,
    /// A side failed in a way no reconnection can mend.
    pub permanent: bool,
}

type Out = Box<dyn Write + Send>;
type In = MrecordReader<Box<dyn Read + Send>>;

/// One target as the relay sees it.
struct Target {
    /// Its channel, while it is fed.
    link: Option<(Out, In)>,
    running: Option<Running>,
    /// How its earlier runs in this session ended (mirror-stream restarts
    /// a dropped target); told at the session's end.
    ended: Vec<Ended>,
    /// When the relay found it gone (mirror-stream starts it again 15 s
    /// plus `-i` later).
    dropped: Option<Instant>,
    /// Why the relay dropped it, if it did so on its own account (the
    /// target's own messages come from its side), until told.
    why: Option<String>,
    /// Dropped for good: it failed in a way no reconnection mends.
    permanent: bool,
    /// `-w`: how long its channel may stand still.
    stall: Option<Duration>,
}

/// The source's channel as the relay sees it.
struct Source {
    stream: MrecordReader<Box<dyn Read + Send>>,
    replies: Out,
}

/// One mirror-copy (or mirror-stream with `stream`) of `src` to every
/// target in `dsts` (2 to `MAX_TARGETS`).
pub fn mirror_fanout(
    src: &OsStr,
    dsts: &[OsString],
    opts: &CopyOptions,
    stream: bool,
    note: &mut dyn FnMut(usize, CopyNote),
) -> Result<FanOutcome, CopyError> {
    let source_side = parse_side(src)?;
    let sides = dsts
        .iter()
        .map(|d| parse_side(d))
        .collect::<Result<Vec<_>, _>>()?;
    refuse_same(&source_side, &sides)?;
    let mut targets: Vec<Target> = dsts
        .iter()
        .map(|_| Target {
            link: None,
            running: None,
            ended: Vec::new(),
            dropped: None,
            why: None,
            permanent: false,
            stall: opts.stall,
        })
        .collect();
    let mut outcome = FanOutcome {
        targets_failed: vec![false; targets.len()],
        ..FanOutcome::default()
    };
    loop {
        for (t, side) in targets.iter_mut().zip(&sides) {
            if !t.permanent {
                connect(t, side, opts)?;
            }
        }
        let (source, running) = start_source(&source_side, opts, stream)?;
        relay(source, &mut targets, &sides, opts, stream, note);
        let source_end = running.finish();
        for t in targets.iter_mut() {
            t.link = None;
            if let Some(r) = t.running.take() {
                t.ended.push(r.finish());
            }
        }
        let session = settle(source_end, &mut targets, note);
        outcome.source_failed = session.source_failed;
        outcome.permanent = session.permanent;
        for (i, failed) in session.targets_failed.iter().enumerate() {
            outcome.targets_failed[i] = *failed;
        }
        let all_gone = targets.iter().all(|t| t.permanent);
        if !stream || outcome.permanent || all_gone {
            outcome.permanent |= all_gone;
            return Ok(outcome);
        }
        note(0, CopyNote::LostLink);
        thread::sleep(Duration::from_secs(15) + opts.read.delay);
    }
}

/// Two sides that open one PFS would sweep each other's records.
fn refuse_same(source: &Side, targets: &[Side]) -> Result<(), CopyError> {
    let local: Vec<_> = std::iter::once(source)
        .chain(targets)
        .filter_map(|s| match s {
            Side::Local(p) => Some(p),
            Side::Remote(_) => None,
        })
        .collect();
    for (i, a) in local.iter().enumerate() {
        for b in &local[i + 1..] {
            if same_pfs(a, b) {
                return Err(CopyError::SamePfs {
                    src: a.to_string(),
                    dst: b.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Starts the source on a channel whose other end the relay keeps.
fn start_source(
    side: &Side,
    opts: &CopyOptions,
    stream: bool,
) -> Result<(Source, Running), CopyError> {
    let role = Role::Source { stream };
    match side {
        Side::Local(fs) => {
            let (from_source, to_relay) = chan::pipe();
            let (from_relay, to_source) = chan::pipe();
            let local = CopyOptions {
                compress: 0,
                ..opts.clone()
            };
            let running = start_local(fs, role, &local, from_relay, to_relay)?;
            let source = Source {
                stream: MrecordReader::new(Box::new(from_source)),
                replies: Box::new(to_source),
            };
            Ok((source, running))
        }
        Side::Remote(_) => {
            let (mine, theirs) = UnixStream::pair().map_err(CopyError::Channel)?;
            chan::widen(&mine);
            chan::widen(&theirs);
            let running = start(side, role, opts, theirs)?;
            let replies = mine.try_clone().map_err(CopyError::Channel)?;
            let stream: Box<dyn Read + Send> = match zstd_level(opts.compress) {
                Some(_) => Box::new(ZReader::new(mine).map_err(zstd_err)?),
                None => Box::new(mine),
            };
            let source = Source {
                stream: MrecordReader::new(stream),
                replies: Box::new(replies),
            };
            Ok((source, running))
        }
    }
}

fn zstd_err(source: io::Error) -> CopyError {
    CopyError::Spawn {
        what: "zstd".into(),
        source,
    }
}

/// Starts a target (again) on a channel whose other end the relay keeps.
fn connect(t: &mut Target, side: &Side, opts: &CopyOptions) -> Result<(), CopyError> {
    t.dropped = None;
    match side {
        Side::Local(fs) => {
            let (from_relay, to_target) = chan::pipe();
            let (from_target, to_relay) = chan::pipe();
            // The source's line counts the stream once.
            let local = CopyOptions {
                compress: 0,
                write: WriteOptions {
                    progress: opts.write.progress.passive(),
                    ..opts.write.clone()
                },
                ..opts.clone()
            };
            let (mut to_target, mut from_target) = (to_target, from_target);
            to_target.set_timeout(t.stall);
            from_target.set_timeout(t.stall);
            t.running = Some(start_local(fs, Role::Target, &local, from_relay, to_relay)?);
            t.link = Some((
                Box::new(to_target),
                MrecordReader::new(Box::new(from_target)),
            ));
        }
        Side::Remote(_) => {
            let (mine, theirs) = UnixStream::pair().map_err(CopyError::Channel)?;
            chan::widen(&mine);
            chan::widen(&theirs);
            // One socket: the timeouts hold for both directions' ends.
            mine.set_write_timeout(t.stall)
                .and_then(|()| mine.set_read_timeout(t.stall))
                .map_err(CopyError::Channel)?;
            t.running = Some(start(side, Role::Target, opts, theirs)?);
            let replies: Box<dyn Read + Send> =
                Box::new(mine.try_clone().map_err(CopyError::Channel)?);
            let out: Out = match zstd_level(opts.compress) {
                Some(level) => Box::new(ZWriter::new(mine, level).map_err(zstd_err)?),
                None => Box::new(mine),
            };
            t.link = Some((out, MrecordReader::new(replies)));
        }
    }
    Ok(())
}

/// Relays one session: the source's records to every live target, the
/// replies of the target furthest behind back to the source. Returns when
/// the source ends its stream, or when no target is left.
fn relay(
    mut source: Source,
    targets: &mut [Target],
    sides: &[Side],
    opts: &CopyOptions,
    stream: bool,
    note: &mut dyn FnMut(usize, CopyNote),
) {
    let mut buf: Vec<u8> = Vec::with_capacity(RELAY_BUF + 2 * 65_856);
    // The next PFSD opens a batch (the target answers it with its own).
    let mut opening = true;
    let mut source_pfsd: Option<PseudofsData> = None;
    loop {
        let rec = match source.stream.frame_mrecord() {
            Ok(Some(rec)) => rec,
            // The source ended or failed: its side says why.
            Ok(None) | Err(_) => {
                broadcast(targets, &mut buf);
                return;
            }
        };
        let rtype = rec.rec_type();
        let opens = opening && rtype & mrec_type::MASK == mrec_type::PFSD;
        if opens {
            // The batch's first PFSD goes to one target at a time, each
            // answering before the next gets it: a target that creates its
            // slave on it does so alone (two creations at once in one
            // store could pick the same PFS id).
            broadcast(targets, &mut buf);
        }
        let bytes = rec.bytes();
        buf.extend_from_slice(bytes);
        buf.resize(buf.len() + doalign(bytes.len() as u32) - bytes.len(), 0);
        let answer = match rtype & mrec_type::MASK {
            mrec_type::PFSD if opens => {
                source_pfsd = rec.array(PFSD_OFF_DATA).map(PseudofsData::decode);
                if stream {
                    rejoin(targets, sides, opts, note);
                }
                opening = false;
                Some(Reply::Header)
            }
            mrec_type::SYNC | mrec_type::IDLE => {
                opening = true;
                Some(Reply::Update)
            }
            mrec_type::TERM => {
                broadcast(targets, &mut buf);
                return;
            }
            _ => None,
        };
        let Some(reply) = answer else {
            if buf.len() >= RELAY_BUF {
                broadcast(targets, &mut buf);
            }
            continue;
        };
        let first = match reply {
            Reply::Header => Some(std::mem::take(&mut buf)),
            Reply::Update => {
                broadcast(targets, &mut buf);
                None
            }
        };
        let Some(answer) = gather(targets, reply, first.as_deref(), source_pfsd.as_ref()) else {
            // No target left to answer: the source is told by its
            // channel closing.
            return;
        };
        if source
            .replies
            .write_all(&answer)
            .and_then(|()| source.replies.flush())
            .is_err()
        {
            return;
        }
    }
}

#[derive(Clone, Copy)]
enum Reply {
    /// The target's PFSD after the batch's first.
    Header,
    /// UPDATE after SYNC or IDLE.
    Update,
}

/// Writes what is gathered to every live target; one that cannot take it
/// is dropped.
fn broadcast(targets: &mut [Target], buf: &mut Vec<u8>) {
    for t in targets.iter_mut() {
        if let Some((out, _)) = &mut t.link {
            if let Err(e) = out.write_all(buf).and_then(|()| out.flush()) {
                cannot_send(t, &e);
            }
        }
    }
    buf.clear();
}

fn drop_target(t: &mut Target, why: String) {
    t.link = None;
    if t.dropped.is_none() {
        t.dropped = Some(Instant::now());
        t.why = Some(why);
    }
}

/// Whether an error is a channel's timeout (`-w`): a socket's says
/// `WouldBlock`, the in-process pipe's `TimedOut`.
fn stalled(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Drops a target that stood still for `-w`, ending a remote one.
fn drop_stalled(t: &mut Target, doing: &str) {
    let secs = t.stall.map_or(0, |d| d.as_secs());
    drop_target(t, format!("it {doing} nothing for {secs} s"));
    if let Some(r) = &t.running {
        r.kill();
    }
}

fn cannot_send(t: &mut Target, e: &io::Error) {
    if stalled(e) {
        drop_stalled(t, "took");
    } else {
        drop_target(
            t,
            format!("cannot send to it: {}", crate::errno::strerror(e)),
        );
    }
}

/// Each live target's reply, each sent `first` just before it is asked;
/// the answer for the source: the header of the target furthest behind
/// among those that share the source's uuid (or, if none does, one that
/// does not, which the source then refuses with the original's message),
/// the lowest UPDATE. `None` when none answered.
fn gather(
    targets: &mut [Target],
    reply: Reply,
    first: Option<&[u8]>,
    source: Option<&PseudofsData>,
) -> Option<Vec<u8>> {
    // (differs from the source's uuid, sync point or UPDATE tid, bytes):
    // the least wins.
    let mut best: Option<(bool, u64, Vec<u8>)> = None;
    for t in targets.iter_mut() {
        let Some((out, replies)) = &mut t.link else {
            continue;
        };
        if let Some(bytes) = first {
            if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
                cannot_send(t, &e);
                continue;
            }
        }
        let got = match replies.read_mrecord() {
            Ok(Some(rec)) if rec.rec_type() & mrec_type::MASK == mrec_type::TERM => {
                Err("it asked to stop")
            }
            Ok(Some(rec)) => {
                let expected = matches!(
                    (reply, rec.rec_type() & mrec_type::MASK),
                    (Reply::Header, mrec_type::PFSD) | (Reply::Update, mrec_type::UPDATE)
                );
                expected
                    .then(|| {
                        let pfsd = rec.array(PFSD_OFF_DATA).map(PseudofsData::decode);
                        let (differs, tid) = match (reply, pfsd) {
                            (Reply::Header, Some(p)) => (
                                !source.is_some_and(|s| s.shared_uuid == p.shared_uuid),
                                p.sync_end_tid,
                            ),
                            _ => (false, rec.tid().unwrap_or(0)),
                        };
                        let mut bytes = rec.bytes().to_vec();
                        bytes.resize(doalign(bytes.len() as u32), 0);
                        (differs, tid, bytes)
                    })
                    .ok_or("it answered out of turn")
            }
            Err(ReadError {
                kind: ReadErrorKind::Io(e),
                ..
            }) if stalled(&e) => {
                drop_stalled(t, "answered");
                continue;
            }
            _ => Err("it ended without answering"),
        };
        match got {
            Err(why) => drop_target(t, why.into()),
            Ok(c) => {
                if best.as_ref().is_none_or(|b| (c.0, c.1) < (b.0, b.1)) {
                    best = Some(c);
                }
            }
        }
    }
    best.map(|(_, _, bytes)| bytes)
}

/// mirror-stream: targets dropped for a reason a reconnection may mend are
/// told about and started again at the next batch, 15 s plus `-i` after
/// they went away; their header then sets where the batch begins.
fn rejoin(
    targets: &mut [Target],
    sides: &[Side],
    opts: &CopyOptions,
    note: &mut dyn FnMut(usize, CopyNote),
) {
    for (i, (t, side)) in targets.iter_mut().zip(sides).enumerate() {
        let wait = Duration::from_secs(15) + opts.read.delay;
        let due = t.dropped.is_some_and(|at| at.elapsed() >= wait);
        if t.link.is_some() || t.permanent || !due {
            continue;
        }
        // Not while its last run goes on (a side stuck in a write).
        if t.running.as_ref().is_some_and(|r| !r.is_finished()) {
            continue;
        }
        if let Some(old) = t.running.take() {
            t.ended.push(old.finish());
        }
        tell(i, t, false, note);
        if !t.permanent {
            note(i + 1, CopyNote::LostLink);
            // One that cannot be started is told now and tried again
            // after the same wait.
            if let Err(e) = connect(t, side, opts) {
                drop_target(t, format!("cannot start it again: {e}"));
                tell(i, t, false, note);
            }
        }
    }
}

/// Tells what each side has to say and which count, as `copy::report`
/// does for two: a target's failure counts unless it only lost its peer
/// (the relay) after the source failed on its own.
fn settle(
    source: Ended,
    targets: &mut [Target],
    note: &mut dyn FnMut(usize, CopyNote),
) -> FanOutcome {
    let mut outcome = FanOutcome {
        targets_failed: vec![false; targets.len()],
        ..FanOutcome::default()
    };
    // The source's peer is the relay, which leaves it only when no target
    // is left: then the targets' failures are the ones that count.
    let (source_failed, source_permanent) = report_side(source, false, &mut |n| note(0, n));
    outcome.source_failed = source_failed;
    outcome.permanent = source_permanent;
    for (i, t) in targets.iter_mut().enumerate() {
        outcome.targets_failed[i] = tell(i, t, source_failed, note);
    }
    outcome
}

/// Tells how target `i`'s runs ended and why the relay dropped it; true if
/// it failed. A target that only lost its peer counts unless the source
/// failed first (it then went away because the source did).
fn tell(
    i: usize,
    t: &mut Target,
    source_failed: bool,
    note: &mut dyn FnMut(usize, CopyNote),
) -> bool {
    let mut failed = false;
    for end in t.ended.drain(..) {
        let (f, permanent) = report_side(end, !source_failed, &mut |n| note(i + 1, n));
        failed |= f;
        t.permanent |= permanent;
    }
    if let Some(why) = t.why.take() {
        if !source_failed {
            failed = true;
            note(i + 1, CopyNote::Dropped(why));
        }
    }
    failed
}

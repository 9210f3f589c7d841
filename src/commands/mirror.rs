//! The mirror commands as the command line runs them: mirror-read and
//! mirror-write on standard input and output, mirror-dump, mirror-copy and
//! mirror-stream to one target or several, the exit statuses that name
//! the side that failed, and the signals that stop a stream.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, IsTerminal, Seek};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use super::{chain, pfs, Context, Failure, Line};
use crate::errno::strerror;
use crate::events::Events;
use crate::mirror::chan;
use crate::mirror::copy::{mirror_copy, mirror_stream, CopyError, CopyNote, Outcome};
use crate::mirror::dump::{mirror_dump, DumpError};
use crate::mirror::error::MirrorError;
use crate::mirror::fanout::{mirror_fanout, FanOutcome};
use crate::mirror::read::mirror_read;
use crate::mirror::write::mirror_write;
use crate::patharg::{PathArg, Place};
use crate::progress::Progress;
use crate::wire::zframe::{ZReader, ZWriter};

/// Exit statuses of mirror-copy and mirror-stream, chains included (D4:
/// the original's was always 0).
pub(crate) mod copy_exit {
    /// The arguments were refused or the channel could not be set up.
    pub const SETUP: u8 = 1;
    pub const SOURCE_FAILED: u8 = 2;
    pub const TARGET_FAILED: u8 = 3;
    /// Both sides failed, each on its own.
    pub const BOTH_FAILED: u8 = 4;
    /// With several targets: these failed, target i (from 1) as bit i-1.
    pub const TARGETS_FAILED: u8 = 16;
}

/// What a mirror-stream to slaves stopped by a signal leaves behind.
const SLAVE_KEEPS: &str = "the slave keeps what its last sync committed";

/// mirror-read and mirror-read-stream (with `stream`) on stdin/stdout;
/// `-z` compresses the stream.
pub(crate) fn read(
    cx: &Context<'_>,
    fs: &PathArg,
    begin_tid: Option<u64>,
    stream: bool,
) -> Result<(), Failure> {
    if io::stdout().is_terminal() {
        // As zfs send: a binary stream on a terminal helps nobody.
        return Err(Failure::errx(format_args!(
            "{}: standard output is a terminal; redirect the stream to a file or a pipe",
            cx.word
        )));
    }
    let ro = cx.read_options(stream, begin_tid);
    let (input, output) = stdio()?;
    match cx.opts.zstd_level() {
        Some(level) => {
            let output = ZWriter::new(output, level)
                .map_err(|e| Failure::errx(format_args!("zstd: {}", strerror(&e))))?;
            mirror_read(fs, &ro, input, output, &mut io::stderr())
        }
        None => mirror_read(fs, &ro, input, output, &mut io::stderr()),
    }
    .map_err(failure)
}

/// mirror-write on stdin/stdout; `-z`: the stream is compressed.
pub(crate) fn write(cx: &Context<'_>, fs: &PathArg) -> Result<(), Failure> {
    let (input, output) = stdio()?;
    match cx.opts.zstd_level() {
        // The file's size is not the stream's: no total.
        Some(_) => {
            let wo = cx.write_options(None);
            mirror_write(fs, &wo, zreader(input)?, output, &mut io::stderr())
        }
        None => {
            let wo = cx.write_options(stream_len(&input));
            mirror_write(fs, &wo, input, output, &mut io::stderr())
        }
    }
    .map_err(failure)
}

/// mirror-dump of stdin (`-z`: compressed), or of a chain's objects.
pub(crate) fn dump(cx: &Context<'_>, header: bool, chain: Option<&OsStr>) -> Result<(), Failure> {
    if let Some(url) = chain {
        return chain::dump(url, header);
    }
    let stdin = io::stdin().lock();
    chan::widen(&stdin);
    let stdout = io::stdout().lock();
    let stderr = io::stderr();
    let r = if cx.opts.compress > 0 {
        mirror_dump(zreader(stdin)?, stdout, stderr, header)
    } else {
        mirror_dump(stdin, stdout, stderr, header)
    };
    r.map_err(|e| match e {
        DumpError::FirstRecord(r) => Failure::of(Line::Say(r.to_string())),
        DumpError::Incomplete => Failure::status(1),
        DumpError::Output(io) => Failure::errx(format_args!("mirror-dump: {}", strerror(&io))),
        other => Failure::errx(other),
    })
}

/// mirror-copy, or mirror-stream with `stream`, of one source to one
/// target; a chain on either side is the chain's copy.
pub(crate) fn copy(
    cx: &Context<'_>,
    source: &Place,
    target: &Place,
    stream: bool,
) -> Result<(), Failure> {
    let (Place::Pfs(src), Place::Pfs(dst)) = (source, target) else {
        return chain::copy(cx, source, target, stream);
    };
    let co = cx.copy_options();
    let (src, dst) = (src.as_os_str(), dst.as_os_str());
    if !stream {
        return copy_status(mirror_copy(src, dst, &co, false, &mut |n| {
            note(&cx.events, n)
        }));
    }
    stop_on_signals(co.read.progress.clone(), SLAVE_KEEPS, &cx.events);
    let after = Duration::from_secs(15) + co.read.delay;
    let r = mirror_stream(src, dst, &co, &mut |n| match n {
        CopyNote::LostLink => lost_link(cx, 0, after),
        n => note(&cx.events, n),
    });
    if r.is_ok() {
        give_up(&cx.events);
    }
    copy_status(r)
}

/// mirror-copy (mirror-stream with `stream`) of one source to several
/// targets; the exit status names the failed ones.
pub(crate) fn fanout(
    cx: &Context<'_>,
    source: &Place,
    targets: &[Place],
    stream: bool,
) -> Result<(), Failure> {
    if targets.iter().any(|t| matches!(t, Place::Chain(_))) {
        return Err(Failure::errx(
            "mirror-copy: an s3:// chain cannot be one of several targets",
        ));
    }
    let co = cx.copy_options();
    if stream {
        stop_on_signals(co.read.progress.clone(), SLAVE_KEEPS, &cx.events);
    }
    let after = Duration::from_secs(15) + co.read.delay;
    let dsts: Vec<_> = targets
        .iter()
        .map(|t| t.as_os_str().to_os_string())
        .collect();
    let r = mirror_fanout(
        source.as_os_str(),
        &dsts,
        &co,
        stream,
        &mut |i, n| match n {
            // A whole session waits; a target starts again at once.
            CopyNote::LostLink if i == 0 => lost_link(cx, 0, after),
            CopyNote::LostLink => lost_link(cx, i, Duration::ZERO),
            CopyNote::Dropped(why) => note(
                &cx.events,
                CopyNote::Dropped(format!(
                    "mirror-copy: target {i} ({}) dropped: {why}",
                    dsts[i - 1].to_string_lossy()
                )),
            ),
            n => note(&cx.events, n),
        },
    );
    if stream && r.is_ok() {
        give_up(&cx.events);
    }
    fanout_status(r)
}

/// A stream that stopped for good says so, and exits as its copy did.
fn give_up(events: &Events) {
    let giving_up = "mirror-stream: giving up, retrying cannot help";
    Failure::errx(giving_up)
        .class("give-up", None)
        .render(events);
}

/// mirror-stream runs until it is told to stop: SIGINT or SIGTERM end it
/// with one line and 128 + the signal's number, as a shell reports a
/// process such a signal ended. The batch in progress is abandoned as a
/// lost link abandons it: a slave keeps what its last SYNC committed (its
/// store rolls back the rest), and a remote side ends with its channel.
/// The progress line goes first, so that the line stands alone; the line
/// says what the run `keeps`.
pub(crate) fn stop_on_signals(progress: Progress, keeps: &'static str, events: &Events) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    // Blocked here, before any side starts, so that every thread leaves
    // them to the one below (children get a clear mask from exec).
    if set.thread_block().is_err() {
        return;
    }
    let events = events.clone();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Ok(sig) = set.wait() {
                progress.finish();
                let line = Line::Errx(format!(
                    "mirror-stream: stopped by {}; {keeps}",
                    sig.as_str()
                ));
                let status = 128 + sig as i32;
                Failure::of(line).class("signal", None).render(&events);
                events.end(status as u8);
                std::process::exit(status);
            }
        });
    if spawned.is_err() {
        let _ = set.thread_unblock();
    }
}

/// Standard input and output as files of their own, widened.
fn stdio() -> Result<(File, File), Failure> {
    let file = |fd: BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .map(File::from)
            .map_err(|e| Failure::errx(format_args!("stdio: {}", strerror(&e))))
    };
    let input = file(io::stdin().as_fd())?;
    let output = file(io::stdout().as_fd())?;
    chan::widen(&input);
    chan::widen(&output);
    Ok((input, output))
}

/// What is left to read of standard input when it is a file.
fn stream_len(mut input: &File) -> Option<u64> {
    let meta = input.metadata().ok().filter(|m| m.is_file())?;
    let at = input.stream_position().ok()?;
    Some(meta.len().saturating_sub(at))
}

/// `-z`: standard input is a compressed stream.
fn zreader<R: io::Read>(input: R) -> Result<ZReader<R>, Failure> {
    ZReader::new(input).map_err(|e| Failure::errx(format_args!("zstd: {}", strerror(&e))))
}

/// A mirror command's failure; a slave that could not be created tells
/// why first.
pub(crate) fn failure(e: MirrorError) -> Failure {
    let line = if e.is_plain() {
        Line::Say(e.to_string())
    } else {
        Line::Errx(e.to_string())
    };
    let (class, errno) = (e.class(), e.errno());
    let mut f = match e {
        MirrorError::SlaveNotCreated(cause) => pfs::failure(cause),
        _ => Failure::status(1),
    };
    f.lines.push(line);
    f.exit(1).class(class, errno)
}

/// What a copy's sides have to tell, as they end.
fn note(events: &Events, n: CopyNote) {
    let say = |line: Line, class| Failure::of(line).class(class, None).render(events);
    match n {
        CopyNote::Failed(e) => failure(e).render(events),
        CopyNote::Panicked => say(Line::Errx("mirror side panicked".into()), "internal"),
        CopyNote::Remote(line) => say(Line::Say(line), "remote"),
        CopyNote::LostLink => {}
        CopyNote::Dropped(why) => say(Line::Errx(why), "dropped"),
        CopyNote::NoCompression => say(
            Line::Errx(
                "mirror-copy: the remote side refused -z: it is not hammer-mirror (an original \
                 hammer(8) has no compression); run without -z"
                    .into(),
            ),
            "remote",
        ),
    }
}

/// mirror-stream lost its link (`target` 0: the copy) and connects again
/// after `after`: `-v` says so, `-j` tells it.
fn lost_link(cx: &Context<'_>, target: usize, after: Duration) {
    if cx.opts.verbose > 0 {
        if target == 0 {
            eprint!("\nLost Link\n");
        } else {
            eprintln!("Lost link to target {target}, reconnecting");
        }
    }
    cx.events.lost_link(target);
    cx.events.retry(target, after.as_secs_f64());
}

/// With several targets the exit status names the failed ones.
fn fanout_status(r: Result<FanOutcome, CopyError>) -> Result<(), Failure> {
    let status = match r {
        Ok(o) if o.source_failed => copy_exit::SOURCE_FAILED,
        Ok(o) => {
            let mask = o
                .targets_failed
                .iter()
                .enumerate()
                .filter(|(_, failed)| **failed)
                .fold(0u8, |m, (i, _)| m | 1 << i);
            if mask == 0 {
                return Ok(());
            }
            copy_exit::TARGETS_FAILED + mask
        }
        Err(e) => return Err(Failure::errx(e).exit(copy_exit::SETUP)),
    };
    Err(Failure::status(status))
}

/// mirror-copy's and mirror-stream's exit status names the failed side.
fn copy_status(r: Result<Outcome, CopyError>) -> Result<(), Failure> {
    let status = match r {
        Ok(o) => match (o.source_failed, o.target_failed) {
            (false, false) => return Ok(()),
            (true, false) => copy_exit::SOURCE_FAILED,
            (false, true) => copy_exit::TARGET_FAILED,
            (true, true) => copy_exit::BOTH_FAILED,
        },
        Err(e) => return Err(Failure::errx(e).exit(copy_exit::SETUP)),
    };
    Err(Failure::status(status))
}

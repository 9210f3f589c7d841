//! `hammer mirror-copy` / `mirror-stream`: a source and a target joined by
//! one socketpair (protocol.md §10; D5 fixed), or by in-process pipes when
//! both are local (`chan.rs`), each side in a thread of this process or,
//! for `[user@]host:fs`, an ssh child with an argument vector (no shell).
//! The outcome tells which side failed (D4): the side whose own failure
//! came first, not the one that then lost its peer.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::chan;
use super::error::{is_peer_gone_line, is_permanent_line, MirrorError};
use super::read::{mirror_read, ReadOptions};
use super::remote::{parse_side, ssh_argv, RemoteError, Role, Side, SshOptions};
use super::write::{mirror_write, WriteOptions};
use crate::patharg::PathArg;
use crate::pfs::getpfs;
use crate::progress::Progress;
use crate::wire::zframe::{zstd_level, ZReader, ZWriter};

/// What a copy is asked to do; the command line builds it.
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// The source side's options (a local source always runs two-way).
    pub read: ReadOptions,
    /// The target side's options (a local target always runs two-way).
    pub write: WriteOptions,
    /// How a remote side is reached.
    pub ssh: SshOptions,
    /// `-z` count: the stream between a local and a remote side is
    /// compressed (two local sides share memory: not there).
    pub compress: u32,
    /// `-w`: with several targets, one that takes nothing and answers
    /// nothing for this long is dropped; `None`: never.
    pub stall: Option<Duration>,
}

/// What a copy has to tell while it runs; the caller renders it. A
/// remote side's own stderr lines pass through as they come, not as notes.
#[derive(Debug)]
pub enum CopyNote {
    /// A local side's failure that counts.
    Failed(MirrorError),
    /// A local side panicked.
    Panicked,
    /// A remote side's line, held back while it was unknown whether the
    /// side counts (it only said that its peer went away).
    Remote(String),
    /// mirror-stream lost its link; it reconnects after 15 s and `-i`.
    LostLink,
    /// A remote side refused `-z`: it is not this tool.
    NoCompression,
    /// The relay of a copy to several targets dropped this one.
    Dropped(String),
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// `err pipe`: the socketpair could not be made.
    #[error("pipe: {}", crate::errno::strerror(.0))]
    Channel(std::io::Error),
    /// Both sides name one PFS: its records would be swept by themselves.
    #[error("mirror-copy: {src} and {dst} are the same PFS")]
    SamePfs { src: String, dst: String },
    /// D9: a side could not be started.
    #[error("cannot start {what}: {}", crate::errno::strerror(source))]
    Spawn {
        what: String,
        source: std::io::Error,
    },
}

/// How one side ended, and when.
pub(super) struct Ended {
    end: End,
    at: Instant,
}

enum End {
    Ok,
    /// Its own failure; what is still to tell (a remote side's lines are
    /// printed as they come), and whether trying again cannot help.
    Failed(Vec<CopyNote>, bool),
    /// Failed only because its peer went away; what is held back.
    PeerGone(Vec<CopyNote>),
}

/// One running side.
pub(super) enum Running {
    Local(JoinHandle<Ended>),
    /// The thread watching the child (remote shell) with this pid.
    Remote(JoinHandle<Ended>, u32),
}

impl Running {
    /// Whether the side has ended (`finish` will not wait).
    pub(super) fn is_finished(&self) -> bool {
        match self {
            Running::Local(h) | Running::Remote(h, _) => h.is_finished(),
        }
    }

    /// Ends a remote side that stalled: its shell is killed, which ends
    /// the session on the far side too. A local side ends on its own once
    /// its channel is gone (it cannot be stopped from outside).
    pub(super) fn kill(&self) {
        if let Running::Remote(h, pid) = self {
            if !h.is_finished() {
                let pid = nix::unistd::Pid::from_raw(*pid as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }

    /// Waits for the side to end.
    pub(super) fn finish(self) -> Ended {
        let h = match self {
            Running::Local(h) | Running::Remote(h, _) => h,
        };
        h.join().unwrap_or_else(|_| Ended {
            end: End::Failed(vec![CopyNote::Panicked], true),
            at: Instant::now(),
        })
    }
}

/// How a local side's run ended.
fn local_end(r: Result<(), MirrorError>) -> Ended {
    let end = match r {
        Ok(()) => End::Ok,
        Err(e) if e.is_peer_gone() => End::PeerGone(vec![CopyNote::Failed(e)]),
        Err(e) => {
            let permanent = e.is_permanent();
            End::Failed(vec![CopyNote::Failed(e)], permanent)
        }
    };
    Ended {
        end,
        at: Instant::now(),
    }
}

/// Relays a remote side's stderr line by line as it comes, holding back
/// the lines that only say its peer went away, then waits for it: a side
/// whose last line is such a line failed because of its peer. One that
/// ends badly without a line gets `silent` said for it, `{status}`
/// replaced by its exit status.
fn watch_remote(mut child: Child, progress: Progress, silent: String) -> Ended {
    let mut held = Vec::new();
    let mut said = false;
    let (mut last_gone, mut last_permanent) = (false, false);
    let mut refused_z = false;
    if let Some(err) = child.stderr.take() {
        let mut lines = BufReader::new(err);
        let mut line = Vec::new();
        while matches!(lines.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            said = true;
            let text = String::from_utf8_lossy(&line);
            last_gone = is_peer_gone_line(&text);
            last_permanent = is_permanent_line(&text);
            refused_z |= text.starts_with("hammer: illegal option -- z");
            if last_gone {
                held.push(CopyNote::Remote(text.trim_end_matches('\n').to_string()));
            } else {
                let _ = progress.suspend(|| std::io::stderr().write_all(&line));
            }
            line.clear();
        }
    }
    let status = child.wait();
    let ok = status.as_ref().is_ok_and(|s| s.success());
    let end = match (ok, last_gone) {
        (true, _) => End::Ok,
        (false, _) if refused_z => End::Failed(vec![CopyNote::NoCompression], true),
        (false, true) => End::PeerGone(held),
        (false, false) if !said => {
            let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
            let line = silent.replace("{status}", &status);
            End::Failed(vec![CopyNote::Remote(line)], false)
        }
        (false, false) => End::Failed(Vec::new(), last_permanent),
    };
    Ended {
        end,
        at: Instant::now(),
    }
}

/// How a copy ended: which sides failed (the original always exited 0,
/// D4), and whether one failed in a way that trying again cannot mend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub source_failed: bool,
    pub target_failed: bool,
    pub permanent: bool,
}

/// D4 and the peer rule: a side counts as failed when it failed on its
/// own, or when it failed because its peer went away while the peer itself
/// succeeded or failed the same way later. Tells what the sides that
/// count have to say.
fn report(source: Ended, target: Ended, note: &mut dyn FnMut(CopyNote)) -> Outcome {
    let counts = |me: &Ended, peer: &Ended| match (&me.end, &peer.end) {
        (End::Ok, _) => false,
        (End::Failed(..), _) => true,
        (End::PeerGone(_), End::Failed(..)) => false,
        (End::PeerGone(_), End::Ok) => true,
        (End::PeerGone(_), End::PeerGone(_)) => me.at <= peer.at,
    };
    let mut outcome = Outcome {
        source_failed: counts(&source, &target),
        target_failed: counts(&target, &source),
        permanent: false,
    };
    for (side, counted) in [
        (source, outcome.source_failed),
        (target, outcome.target_failed),
    ] {
        let notes = match side.end {
            _ if !counted => continue,
            End::Ok => Vec::new(),
            End::Failed(notes, p) => {
                outcome.permanent |= p;
                notes
            }
            End::PeerGone(notes) => notes,
        };
        notes.into_iter().for_each(&mut *note);
    }
    outcome
}

/// Tells what a side that counts has to say: its own failure always, a
/// failure that only says its peer went away when `peer_gone_counts`.
/// Returns whether it failed, and whether trying again cannot help.
pub(super) fn report_side(
    side: Ended,
    peer_gone_counts: bool,
    note: &mut dyn FnMut(CopyNote),
) -> (bool, bool) {
    match side.end {
        End::Ok => (false, false),
        End::Failed(notes, permanent) => {
            notes.into_iter().for_each(note);
            (true, permanent)
        }
        End::PeerGone(notes) if peer_gone_counts => {
            notes.into_iter().for_each(note);
            (true, false)
        }
        End::PeerGone(_) => (false, false),
    }
}

/// Whether two local paths open one PFS: the same shared and unique uuid
/// (every PFS gets a unique uuid of its own when it is made). A path that
/// does not open (a slave still to be created) is no PFS yet.
pub(super) fn same_pfs(a: &PathArg, b: &PathArg) -> bool {
    match (getpfs(a.as_path()), getpfs(b.as_path())) {
        (Ok((_, x)), Ok((_, y))) => {
            x.shared_uuid == y.shared_uuid && x.unique_uuid == y.unique_uuid
        }
        _ => false,
    }
}

/// The program exec'd for a remote side: `$HAMMER_RSH` or `ssh`.
fn rsh() -> OsString {
    std::env::var_os("HAMMER_RSH").unwrap_or_else(|| "ssh".into())
}

pub(super) fn start(
    side: &Side,
    role: Role,
    opts: &CopyOptions,
    end: UnixStream,
) -> Result<Running, CopyError> {
    match side {
        Side::Remote(spec) => {
            let argv = ssh_argv(&rsh(), opts, spec, role);
            let spawn_err = |source| CopyError::Spawn {
                what: argv[0].to_string_lossy().into_owned(),
                source,
            };
            let input: OwnedFd = end.try_clone().map_err(spawn_err)?.into();
            let output: OwnedFd = end.into();
            let child = Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::from(input))
                .stdout(Stdio::from(output))
                .stderr(Stdio::piped())
                .spawn()
                .map_err(spawn_err)?;
            let progress = opts.read.progress.clone();
            let pid = child.id();
            let role_word = match role {
                Role::Source { .. } => "source",
                Role::Target => "target",
            };
            let user = spec
                .user
                .as_ref()
                .map(|u| format!("{}@", u.to_string_lossy()))
                .unwrap_or_default();
            let host = spec.host.to_string_lossy();
            let silent = format!(
                "hammer: mirror-copy: the remote {role_word} {user}{host}:{} ended without a word ({{status}}): \
                 check that `{} {user}{host} hammer version` runs this hammer there",
                spec.path.to_string_lossy(),
                argv[0].to_string_lossy()
            );
            let handle = thread::Builder::new()
                .name("remote stderr".into())
                .spawn(move || watch_remote(child, progress, silent))
                .map_err(|source| CopyError::Spawn {
                    what: "thread".into(),
                    source,
                })?;
            Ok(Running::Remote(handle, pid))
        }
        Side::Local(fs) => {
            let input = end.try_clone().map_err(CopyError::Channel)?;
            // The peer is remote: the stream crosses the wire compressed.
            let zerr = |e| CopyError::Spawn {
                what: "zstd".into(),
                source: e,
            };
            match (role, zstd_level(opts.compress)) {
                (Role::Source { .. }, Some(level)) => {
                    let output = ZWriter::new(end, level).map_err(zerr)?;
                    start_local(fs, role, opts, input, output)
                }
                (Role::Target, Some(_)) => {
                    let input = ZReader::new(input).map_err(zerr)?;
                    start_local(fs, role, opts, input, end)
                }
                _ => start_local(fs, role, opts, input, end),
            }
        }
    }
}

/// Runs an in-process side in a thread of its own.
pub(super) fn start_local<R, W>(
    fs: &PathArg,
    role: Role,
    opts: &CopyOptions,
    input: R,
    output: W,
) -> Result<Running, CopyError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let fs = fs.clone();
    let opts = opts.clone();
    let handle = thread::Builder::new()
        .name(format!("{role:?}"))
        .spawn(move || local_end(run_local(&fs, role, &opts, input, output)))
        .map_err(|source| CopyError::Spawn {
            what: "thread".into(),
            source,
        })?;
    Ok(Running::Local(handle))
}

/// An in-process side, always two-way.
fn run_local(
    fs: &PathArg,
    role: Role,
    o: &CopyOptions,
    input: impl Read,
    output: impl Write,
) -> Result<(), MirrorError> {
    let mut diag = std::io::stderr();
    match role {
        Role::Source { stream } => {
            let ro = ReadOptions {
                two_way: true,
                stream,
                ..o.read.clone()
            };
            mirror_read(fs, &ro, input, output, &mut diag)
        }
        Role::Target => {
            let wo = WriteOptions {
                two_way: true,
                ..o.write.clone()
            };
            mirror_write(fs, &wo, input, output, &mut diag)
        }
    }
}

/// One mirror-copy: both sides over a fresh channel, then their outcome.
pub fn mirror_copy(
    src: &OsStr,
    dst: &OsStr,
    opts: &CopyOptions,
    stream: bool,
    note: &mut dyn FnMut(CopyNote),
) -> Result<Outcome, CopyError> {
    let src = parse_side(src)?;
    let dst = parse_side(dst)?;
    if let (Side::Local(s), Side::Local(d)) = (&src, &dst) {
        if same_pfs(s, d) {
            return Err(CopyError::SamePfs {
                src: s.to_string(),
                dst: d.to_string(),
            });
        }
    }
    let source_role = Role::Source { stream };
    let (source, target) = if let (Side::Local(s), Side::Local(d)) = (&src, &dst) {
        // Two threads of this process: in-process pipes, one per direction.
        let (from_source, to_target) = chan::pipe();
        let (from_target, to_source) = chan::pipe();
        // The source draws the progress line; the target counts the same
        // bytes again, so it only keeps its messages clear of it.
        let mut opts = opts.clone();
        opts.write.progress = opts.write.progress.passive();
        let source = start_local(s, source_role, &opts, from_target, to_target)?;
        (
            source,
            start_local(d, Role::Target, &opts, from_source, to_source),
        )
    } else {
        let (a, b) = UnixStream::pair().map_err(CopyError::Channel)?;
        chan::widen(&a);
        chan::widen(&b);
        let source = start(&src, source_role, opts, a)?;
        (source, start(&dst, Role::Target, opts, b))
    };
    let target = match target {
        Ok(t) => t,
        Err(e) => {
            // The source then dies of the missing target: only a failure
            // of its own is told beside the cause.
            if let End::Failed(notes, _) = source.finish().end {
                notes.into_iter().for_each(&mut *note);
            }
            return Err(e);
        }
    };
    let source = source.finish();
    let target = target.finish();
    Ok(report(source, target, note))
}

/// mirror-stream: mirror-copy with a streaming source, restarted after
/// every lost link. Returns when the arguments or the channel fail, or
/// when a side fails in a way that no reconnection can mend (the paths or
/// the pair of PFSes are wrong), with that copy's outcome.
pub fn mirror_stream(
    src: &OsStr,
    dst: &OsStr,
    opts: &CopyOptions,
    note: &mut dyn FnMut(CopyNote),
) -> Result<Outcome, CopyError> {
    loop {
        let outcome = mirror_copy(src, dst, opts, true, note)?;
        if outcome.permanent {
            return Ok(outcome);
        }
        note(CopyNote::LostLink);
        thread::sleep(Duration::from_secs(15) + opts.read.delay);
    }
}

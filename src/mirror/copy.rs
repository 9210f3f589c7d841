//! `hammer mirror-copy` / `mirror-stream`: a source and a target joined by
//! one socketpair (protocol.md §10; D5 fixed), or by in-process pipes when
//! both are local (`chan.rs`), each side in a thread of this process or,
//! for `[user@]host:fs`, an ssh child with an argument vector (no shell).
//! The exit status tells which side failed (D4): the side whose own
//! failure came first, not the one that then lost its peer.

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

/// What a copy is asked to do; the command line builds it.
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// The source side's options (a local source always runs two-way).
    pub read: ReadOptions,
    /// The target side's options (a local target always runs two-way).
    pub write: WriteOptions,
    /// How a remote side is reached.
    pub ssh: SshOptions,
}

/// Exit statuses of mirror-copy / mirror-stream (the original always
/// exited 0, D4).
pub mod exit {
    pub const OK: u8 = 0;
    /// The arguments were refused or the channel could not be set up.
    pub const SETUP: u8 = 1;
    pub const SOURCE_FAILED: u8 = 2;
    pub const TARGET_FAILED: u8 = 3;
    pub const BOTH_FAILED: u8 = 4;
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// `err pipe`: the socketpair could not be made.
    #[error("pipe: {}", crate::errno::strerror(.0))]
    Channel(std::io::Error),
    /// D9: a side could not be started.
    #[error("cannot start {what}: {}", crate::errno::strerror(source))]
    Spawn {
        what: String,
        source: std::io::Error,
    },
}

/// How one side ended, and when.
struct Ended {
    end: End,
    at: Instant,
}

enum End {
    Ok,
    /// Its own failure; the messages still to print (a remote side's are
    /// printed as they come), and whether trying again cannot help.
    Failed(Vec<String>, bool),
    /// Failed only because its peer went away; the messages held back.
    PeerGone(Vec<String>),
}

/// One running side.
enum Running {
    Local(JoinHandle<Ended>),
    Remote(JoinHandle<Ended>),
}

impl Running {
    /// Waits for the side to end.
    fn finish(self) -> Ended {
        let h = match self {
            Running::Local(h) | Running::Remote(h) => h,
        };
        h.join().unwrap_or_else(|_| Ended {
            end: End::Failed(vec!["hammer: mirror side panicked".into()], true),
            at: Instant::now(),
        })
    }
}

/// How a local side's run ended.
fn local_end(r: Result<(), MirrorError>) -> Ended {
    let end = match r {
        Ok(()) => End::Ok,
        Err(e) if e.is_peer_gone() => End::PeerGone(vec![e.line()]),
        Err(e) => End::Failed(vec![e.line()], e.is_permanent()),
    };
    Ended {
        end,
        at: Instant::now(),
    }
}

/// Relays a remote side's stderr line by line as it comes, holding back
/// the lines that only say its peer went away, then waits for it: a side
/// whose last line is such a line failed because of its peer.
fn watch_remote(mut child: Child) -> Ended {
    let mut held = Vec::new();
    let (mut last_gone, mut last_permanent) = (false, false);
    if let Some(err) = child.stderr.take() {
        let mut lines = BufReader::new(err);
        let mut line = Vec::new();
        while matches!(lines.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&line);
            last_gone = is_peer_gone_line(&text);
            last_permanent = is_permanent_line(&text);
            if last_gone {
                held.push(text.trim_end_matches('\n').to_string());
            } else {
                let _ = std::io::stderr().write_all(&line);
            }
            line.clear();
        }
    }
    let ok = child.wait().is_ok_and(|s| s.success());
    let end = match (ok, last_gone) {
        (true, _) => End::Ok,
        (false, true) => End::PeerGone(held),
        (false, false) => End::Failed(Vec::new(), last_permanent),
    };
    Ended {
        end,
        at: Instant::now(),
    }
}

/// How a copy ended: its exit status, and whether a side failed in a way
/// that trying again cannot mend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub status: u8,
    pub permanent: bool,
}

/// D4 and the peer rule: a side counts as failed when it failed on its
/// own, or when it failed because its peer went away while the peer itself
/// succeeded or failed the same way later. Prints the messages of the
/// sides that count.
fn report(source: Ended, target: Ended, diag: &mut dyn Write) -> Outcome {
    let counts = |me: &Ended, peer: &Ended| match (&me.end, &peer.end) {
        (End::Ok, _) => false,
        (End::Failed(..), _) => true,
        (End::PeerGone(_), End::Failed(..)) => false,
        (End::PeerGone(_), End::Ok) => true,
        (End::PeerGone(_), End::PeerGone(_)) => me.at <= peer.at,
    };
    let (s, t) = (counts(&source, &target), counts(&target, &source));
    let mut permanent = false;
    for (side, counted) in [(source, s), (target, t)] {
        if !counted {
            continue;
        }
        let lines = match side.end {
            End::Ok => Vec::new(),
            End::Failed(lines, p) => {
                permanent |= p;
                lines
            }
            End::PeerGone(lines) => lines,
        };
        for l in lines {
            let _ = writeln!(diag, "{l}");
        }
    }
    let status = match (s, t) {
        (false, false) => exit::OK,
        (true, false) => exit::SOURCE_FAILED,
        (false, true) => exit::TARGET_FAILED,
        (true, true) => exit::BOTH_FAILED,
    };
    Outcome { status, permanent }
}

/// The program exec'd for a remote side: `$HAMMER_RSH` or `ssh`.
fn rsh() -> String {
    std::env::var("HAMMER_RSH").unwrap_or_else(|_| "ssh".to_string())
}

fn start(
    side: &Side,
    role: Role,
    opts: &CopyOptions,
    end: UnixStream,
) -> Result<Running, CopyError> {
    match side {
        Side::Remote(spec) => {
            let argv = ssh_argv(&rsh(), opts, spec, role);
            let spawn_err = |source| CopyError::Spawn {
                what: argv[0].clone(),
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
            let handle = thread::Builder::new()
                .name("remote stderr".into())
                .spawn(move || watch_remote(child))
                .map_err(|source| CopyError::Spawn {
                    what: "thread".into(),
                    source,
                })?;
            Ok(Running::Remote(handle))
        }
        Side::Local(fs) => {
            let input = end.try_clone().map_err(CopyError::Channel)?;
            start_local(fs, role, opts, input, end)
        }
    }
}

/// Runs an in-process side in a thread of its own.
fn start_local<R, W>(
    fs: &str,
    role: Role,
    opts: &CopyOptions,
    input: R,
    output: W,
) -> Result<Running, CopyError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let fs = fs.to_string();
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
    fs: &str,
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
                ..o.write
            };
            mirror_write(fs, &wo, input, output, &mut diag)
        }
    }
}

/// One mirror-copy: both sides over a fresh channel, then their outcome.
pub fn mirror_copy(
    src: &str,
    dst: &str,
    opts: &CopyOptions,
    stream: bool,
    diag: &mut dyn Write,
) -> Result<Outcome, CopyError> {
    let src = parse_side(src)?;
    let dst = parse_side(dst)?;
    let source_role = Role::Source { stream };
    let (source, target) = if let (Side::Local(s), Side::Local(d)) = (&src, &dst) {
        // Two threads of this process: in-process pipes, one per direction.
        let (from_source, to_target) = chan::pipe();
        let (from_target, to_source) = chan::pipe();
        let source = start_local(s, source_role, opts, from_target, to_target)?;
        (
            source,
            start_local(d, Role::Target, opts, from_source, to_source),
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
            if let End::Failed(lines, _) = source.finish().end {
                for l in lines {
                    let _ = writeln!(diag, "{l}");
                }
            }
            return Err(e);
        }
    };
    let source = source.finish();
    let target = target.finish();
    Ok(report(source, target, diag))
}

/// mirror-stream: mirror-copy with a streaming source, restarted after
/// every lost link. Returns when the arguments or the channel fail, or
/// when a side fails in a way that no reconnection can mend (the paths or
/// the pair of PFSes are wrong), with that copy's exit status.
pub fn mirror_stream(
    src: &str,
    dst: &str,
    opts: &CopyOptions,
    diag: &mut dyn Write,
) -> Result<u8, CopyError> {
    loop {
        let outcome = mirror_copy(src, dst, opts, true, diag)?;
        if outcome.permanent {
            let _ = writeln!(
                diag,
                "hammer: mirror-stream: giving up, retrying cannot help"
            );
            return Ok(outcome.status);
        }
        if opts.read.verbose > 0 {
            let _ = write!(diag, "\nLost Link\n");
        }
        thread::sleep(Duration::from_secs(15) + opts.read.delay);
    }
}

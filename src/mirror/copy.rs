//! `hammer mirror-copy` / `mirror-stream`: a source and a target joined by
//! one socketpair (protocol.md §10; D5 fixed), or by in-process pipes when
//! both are local (`chan.rs`), each side in a thread of this process or,
//! for `[user@]host:fs`, an ssh child with an argument vector (no shell).
//! The exit status tells which side failed (D4).

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::chan;
use super::error::MirrorError;
use super::read::{mirror_read, ReadOptions};
use super::remote::{parse_side, ssh_argv, RemoteError, Role, Side};
use super::write::{mirror_write, WriteOptions};
use crate::cli::GlobalOpts;

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

/// One running side.
enum Running {
    Local(JoinHandle<Result<(), MirrorError>>),
    Remote(Child),
}

impl Running {
    /// Waits for the side; prints a local side's error as the child
    /// process of the original would have. Returns success.
    fn finish(self, diag: &mut dyn Write) -> bool {
        match self {
            Running::Local(h) => match h.join() {
                Ok(Ok(())) => true,
                Ok(Err(e)) => {
                    let _ = if e.is_plain() {
                        writeln!(diag, "{e}")
                    } else {
                        writeln!(diag, "hammer: {e}")
                    };
                    false
                }
                Err(_) => {
                    let _ = writeln!(diag, "hammer: mirror side panicked");
                    false
                }
            },
            Running::Remote(mut c) => c.wait().map(|s| s.success()).unwrap_or(false),
        }
    }
}

/// The program exec'd for a remote side: `$HAMMER_RSH` or `ssh`.
fn rsh() -> String {
    std::env::var("HAMMER_RSH").unwrap_or_else(|_| "ssh".to_string())
}

fn start(
    side: &Side,
    role: Role,
    opts: &GlobalOpts,
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
                .spawn()
                .map_err(spawn_err)?;
            Ok(Running::Remote(child))
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
    opts: &GlobalOpts,
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
        .spawn(move || run_local(&fs, role, &opts, input, output))
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
    o: &GlobalOpts,
    input: impl Read,
    output: impl Write,
) -> Result<(), MirrorError> {
    let mut diag = std::io::stderr();
    match role {
        Role::Source { stream } => {
            let ro = ReadOptions {
                two_way: true,
                ..ReadOptions::from_global(o, stream, None)
            };
            mirror_read(fs, &ro, input, output, &mut diag)
        }
        Role::Target => {
            let wo = WriteOptions {
                two_way: true,
                ..WriteOptions::from_global(o)
            };
            mirror_write(fs, &wo, input, output, &mut diag)
        }
    }
}

/// One mirror-copy: both sides over a fresh channel, then their outcome.
pub fn mirror_copy(
    src: &str,
    dst: &str,
    opts: &GlobalOpts,
    stream: bool,
    diag: &mut dyn Write,
) -> Result<u8, CopyError> {
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
            source.finish(diag);
            return Err(e);
        }
    };
    let s_ok = source.finish(diag);
    let t_ok = target.finish(diag);
    Ok(match (s_ok, t_ok) {
        (true, true) => exit::OK,
        (false, true) => exit::SOURCE_FAILED,
        (true, false) => exit::TARGET_FAILED,
        (false, false) => exit::BOTH_FAILED,
    })
}

/// mirror-stream: mirror-copy with a streaming source, restarted after
/// every lost link. Returns only if the arguments or the channel fail.
pub fn mirror_stream(
    src: &str,
    dst: &str,
    opts: &GlobalOpts,
    diag: &mut dyn Write,
) -> Result<u8, CopyError> {
    loop {
        mirror_copy(src, dst, opts, true, diag)?;
        if opts.verbose > 0 {
            let _ = write!(diag, "\nLost Link\n");
        }
        thread::sleep(Duration::from_secs(15 + opts.delay.max(0) as u64));
    }
}

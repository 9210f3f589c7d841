//! The commands as the command table (cli/table.rs) runs them: each
//! handler gets the global options and the `-j` events through one
//! `Context`, calls the library, and turns what it returns into the
//! original's output, or into a `Failure` with its messages, exit status
//! and event class.

pub(crate) mod abort;
pub(crate) mod bridge;
#[cfg(feature = "s3")]
pub(crate) mod chain;
#[cfg(not(feature = "s3"))]
#[path = "no_s3.rs"]
pub(crate) mod chain;
pub(crate) mod cleanup;
pub(crate) mod config;
mod failure;
pub(crate) mod mirror;
pub(crate) mod mount;
mod options;
pub(crate) mod pfs;
pub(crate) mod pfsd_fmt;
pub(crate) mod prune;
pub(crate) mod reblock;
pub(crate) mod snap;
pub(crate) mod space;
pub(crate) mod verify;

use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::Path;

pub use failure::{Failure, Line};

use failure::NO_STORE_HINT;

use crate::cli::completion::Shell;
use crate::cli::{self, GlobalOpts, Invocation, SshRemoteError};
use crate::errno::strerror;
use crate::events::Events;

/// What every handler is given.
pub struct Context<'a> {
    pub opts: &'a GlobalOpts,
    /// `-j`'s sink, opened once: every option struct a handler builds and
    /// every failure it tells on its own go through it.
    pub events: Events,
    /// The command word, which heads its progress line.
    pub word: &'static str,
}

/// `-j`'s sink for the command line (none without `-j`), or why it
/// cannot be opened.
pub fn events(inv: &Invocation) -> Result<Events, Failure> {
    let Some(dest) = &inv.opts.events else {
        return Ok(Events::default());
    };
    Events::open(dest, inv.word()).map_err(|e| {
        let shown = dest.to_string_lossy();
        Failure::errx(format_args!("-j {shown}: {}", strerror(&e)))
    })
}

/// Runs a parsed command line: its `-T` check, then its entry's handler.
pub fn run(inv: &Invocation, events: &Events) -> Result<(), Failure> {
    inv.confine().map_err(Failure::errx)?;
    let cx = Context {
        opts: &inv.opts,
        events: events.clone(),
        word: inv.entry.word,
    };
    (inv.entry.run)(&cx, &inv.command)
}

/// `ssh-remote <cmd> <target>`: run `$SSH_ORIGINAL_COMMAND` restricted to
/// that command and path prefix, in this process (no exec, no shell).
pub(crate) fn ssh_remote(cx: &Context<'_>, commands: &OsStr, prefix: &Path) -> Result<(), Failure> {
    let original = std::env::var_os("SSH_ORIGINAL_COMMAND");
    match cli::ssh_remote_invocation(commands, prefix, original.as_deref()) {
        Ok(inv) => run(&inv, &cx.events),
        Err(SshRemoteError::Command(e)) => Err(e.into()),
        Err(e) => Err(Failure::errx(e)),
    }
}

pub(crate) fn help(topic: Option<&OsStr>) -> Result<(), Failure> {
    print_out(&cli::help(topic).map_err(Failure::errx)?)
}

pub(crate) fn version() -> Result<(), Failure> {
    print_out(&cli::version())
}

pub(crate) fn completion(shell: Shell) -> Result<(), Failure> {
    print_out(&cli::completion::script(shell))
}

/// Text on stdout; failing to write it is a failure.
fn print_out(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::errx(strerror(&e)))
}

//! The `hammer` binary: parse the command line, run the command, and turn
//! its outcome into the original's messages and exit codes, here only.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::process::ExitCode;

use hammer_mirror::bridge;
use hammer_mirror::cli::{self, CliError, Command, Invocation, SshRemoteError, USAGE};
use hammer_mirror::errno::strerror;
use hammer_mirror::mirror::chan;
use hammer_mirror::mirror::copy::{mirror_copy, mirror_stream, CopyError};
use hammer_mirror::mirror::dump::{mirror_dump, DumpError};
use hammer_mirror::mirror::error::MirrorError;
use hammer_mirror::mirror::read::mirror_read;
use hammer_mirror::mirror::write::mirror_write;
use hammer_mirror::pfs_cmd::{self, CmdError};
use hammer_mirror::restrict::{self, RestrictError};

/// How a failure is shown: the original's `errx` (`hammer: msg`), its
/// verbatim `say`, or a usage text.
enum Failure {
    Errx(String),
    Say(String),
    Usage(&'static str),
    /// The message is already out; exit 1.
    Silent,
    /// The messages are already out; exit with this status.
    Status(u8),
}

fn main() -> ExitCode {
    let inv = match cli::parse(std::env::args_os()) {
        Ok(inv) => inv,
        Err(CliError::Help) => {
            let _ = io::stderr().write_all(USAGE.as_bytes());
            return ExitCode::SUCCESS;
        }
        Err(e) => return render(cli_failure(e)),
    };
    match run(&inv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => render(f),
    }
}

/// Prints a failure on stderr; its exit status.
fn render(f: Failure) -> ExitCode {
    let mut err = io::stderr().lock();
    let _ = match f {
        Failure::Errx(m) => writeln!(err, "hammer: {m}"),
        Failure::Say(m) => writeln!(err, "{m}"),
        Failure::Usage(u) => err.write_all(u.as_bytes()),
        Failure::Silent => Ok(()),
        Failure::Status(code) => return ExitCode::from(code),
    };
    ExitCode::FAILURE
}

/// A refused command line: getopt's message and the usage, or the usage a
/// command's arguments call for, or the restriction's message.
fn cli_failure(e: CliError) -> Failure {
    match e {
        CliError::IllegalOption(_) | CliError::MissingArgument(_) | CliError::NotUnicode(_) => {
            let _ = writeln!(io::stderr(), "hammer: {e}");
            Failure::Usage(USAGE)
        }
        CliError::Help | CliError::BadValue | CliError::NoCommand => Failure::Usage(USAGE),
        CliError::Usage(u) => Failure::Usage(u),
        CliError::Restricted(r) => restrict_failure(r),
    }
}

fn restrict_failure(e: RestrictError) -> Failure {
    Failure::Errx(e.to_string())
}

fn run(inv: &Invocation) -> Result<(), Failure> {
    let o = &inv.opts;
    if let Some(prefix) = &o.restrict_path {
        let paths = inv.command.confined_paths();
        restrict::confine(prefix, paths.as_deref(), inv.command.creates_path())
            .map_err(restrict_failure)?;
    }
    match &inv.command {
        Command::MirrorRead { fs, begin_tid } => {
            cmd_mirror_read("mirror-read", fs, &o.read_options(false, *begin_tid))
        }
        Command::MirrorReadStream { fs, begin_tid } => {
            cmd_mirror_read("mirror-read-stream", fs, &o.read_options(true, *begin_tid))
        }
        Command::MirrorWrite { fs } => {
            let (input, output) = stdio()?;
            mirror_write(fs, &o.write_options(), input, output, &mut io::stderr())
                .map_err(mirror_failure)
        }
        Command::MirrorDump { header } => cmd_mirror_dump(*header),
        Command::MirrorCopy { source, target } => {
            let r = mirror_copy(source, target, &o.copy_options(), false, &mut io::stderr());
            copy_status(r.map(|outcome| outcome.status))
        }
        Command::MirrorStream { source, target } => copy_status(mirror_stream(
            source,
            target,
            &o.copy_options(),
            &mut io::stderr(),
        )),
        Command::PfsStatus { paths } => pfs(|out| pfs_cmd::pfs_status(paths, out)),
        Command::PfsMaster { path, options } => {
            pfs(|out| pfs_cmd::pfs_create(path, false, options, out))
        }
        Command::PfsSlave { path, options } => {
            pfs(|out| pfs_cmd::pfs_create(path, true, options, out))
        }
        Command::PfsUpdate { path, options } => pfs(|out| pfs_cmd::pfs_update(path, options, out)),
        Command::PfsUpgrade { path } => pfs(|out| pfs_cmd::pfs_upgrade(path, out)),
        Command::PfsDowngrade { path } => pfs(|out| pfs_cmd::pfs_downgrade(path, out)),
        Command::PfsDestroy { path } => pfs(|out| {
            pfs_cmd::pfs_destroy(path, &o.destroy_options(), &mut io::stdin().lock(), out)
        }),
        Command::Synctid { fs, quick } => pfs(|out| pfs_cmd::synctid(fs, *quick, out)),
        Command::StoreCreate { dir } => pfs(|_| pfs_cmd::store_create(dir)),
        Command::SshRemote { commands, prefix } => cmd_ssh_remote(commands, prefix),
        Command::Import { dir, pfs } => {
            let s =
                bridge::import::import(Path::new(dir), pfs, o.import_options(), &mut io::stderr())
                    .map_err(|e| Failure::Errx(e.to_string()))?;
            summary(
                o.quiet > 0,
                format_args!(
                    "Imported {dir} into {pfs}: {} objects, {} changed, {} removed, {} bytes read, TID {:#018x}",
                    s.objects, s.changed, s.removed, s.bytes, s.tid
                ),
            )
        }
        Command::Export { source, dir } => {
            let s = bridge::export::export(
                source,
                Path::new(dir),
                o.export_options(),
                &mut io::stderr(),
            )
            .map_err(|e| Failure::Errx(e.to_string()))?;
            summary(
                o.quiet > 0,
                format_args!(
                    "Exported {source} as of TID {:#018x} into {dir}: {} objects, {} bytes",
                    s.tid, s.objects, s.bytes
                ),
            )
        }
        Command::Snapls { paths } => {
            let mut out = io::stdout().lock();
            for path in paths {
                bridge::snapls::snapls(path, &mut out).map_err(|e| Failure::Errx(e.to_string()))?;
            }
            Ok(())
        }
        Command::NotImplemented(name) => Err(Failure::Errx(format!("{name}: not implemented"))),
    }
}

/// Runs a pfs-* command on stdout, flushed before a failure is told.
fn pfs(command: impl FnOnce(&mut dyn Write) -> Result<(), CmdError>) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    let r = command(&mut out);
    let _ = out.flush();
    r.map_err(|e| match e {
        CmdError::Errx(m) => Failure::Errx(m),
        CmdError::Say(m) => Failure::Say(m),
        CmdError::Failed => Failure::Silent,
        CmdError::Output(e) => Failure::Errx(strerror(&e)),
    })
}

/// import's and export's closing line, unless `-q`.
fn summary(quiet: bool, line: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    if !quiet {
        writeln!(io::stdout(), "{line}").map_err(|e| Failure::Errx(strerror(&e)))?;
    }
    Ok(())
}

fn cmd_mirror_dump(header: bool) -> Result<(), Failure> {
    let stdin = io::stdin().lock();
    chan::widen(&stdin);
    let stdout = io::stdout().lock();
    let stderr = io::stderr();
    mirror_dump(stdin, stdout, stderr, header).map_err(|e| match e {
        DumpError::FirstRecord(r) => Failure::Say(r.to_string()),
        DumpError::Incomplete => Failure::Silent,
        DumpError::Output(io) => Failure::Errx(format!("mirror-dump: {}", strerror(&io))),
        other => Failure::Errx(other.to_string()),
    })
}

/// `ssh-remote <cmd> <target>`: run `$SSH_ORIGINAL_COMMAND` restricted to
/// that command and path prefix, in this process (no exec, no shell).
fn cmd_ssh_remote(commands: &str, prefix: &str) -> Result<(), Failure> {
    let original = std::env::var("SSH_ORIGINAL_COMMAND").ok();
    match cli::ssh_remote_invocation(commands, prefix, original.as_deref()) {
        Ok(inv) => run(&inv),
        Err(SshRemoteError::Command(e)) => Err(cli_failure(e)),
        Err(e) => Err(Failure::Errx(e.to_string())),
    }
}

/// Standard input and output as files of their own, widened.
fn stdio() -> Result<(File, File), Failure> {
    let file = |fd: BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .map(File::from)
            .map_err(|e| Failure::Errx(format!("stdio: {}", strerror(&e))))
    };
    let input = file(io::stdin().as_fd())?;
    let output = file(io::stdout().as_fd())?;
    chan::widen(&input);
    chan::widen(&output);
    Ok((input, output))
}

/// mirror-read and mirror-read-stream on stdin/stdout.
fn cmd_mirror_read(
    name: &str,
    fs: &str,
    ro: &hammer_mirror::mirror::read::ReadOptions,
) -> Result<(), Failure> {
    if io::stdout().is_terminal() {
        // As zfs send: a binary stream on a terminal helps nobody.
        return Err(Failure::Errx(format!(
            "{name}: standard output is a terminal; redirect the stream to a file or a pipe"
        )));
    }
    let (input, output) = stdio()?;
    mirror_read(fs, ro, input, output, &mut io::stderr()).map_err(mirror_failure)
}

fn mirror_failure(e: MirrorError) -> Failure {
    if e.is_plain() {
        Failure::Say(e.to_string())
    } else {
        Failure::Errx(e.to_string())
    }
}

/// mirror-copy's and mirror-stream's exit status names the failed side.
fn copy_status(r: Result<u8, CopyError>) -> Result<(), Failure> {
    match r {
        Ok(0) => Ok(()),
        Ok(code) => Err(Failure::Status(code)),
        Err(e) => Err(Failure::Errx(e.to_string())),
    }
}

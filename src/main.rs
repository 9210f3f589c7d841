//! The `hammer` binary: parse the command line, run the command, and turn
//! its outcome into the original's messages and exit codes, here only.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, IsTerminal, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::process::ExitCode;
use std::sync::OnceLock;

use hammer_mirror::bridge;
use hammer_mirror::bridge::export::ExportOptions;
use hammer_mirror::bridge::import::ImportOptions;
use hammer_mirror::chain::cmd::{self as chain_cmd, ChainFailure};
use hammer_mirror::chain::url::is_chain_url;
use hammer_mirror::cli::{self, CliError, Command, GlobalOpts, Invocation, SshRemoteError, USAGE};
use hammer_mirror::errno::strerror;
use hammer_mirror::events::Events;
use hammer_mirror::mirror::chan;
use hammer_mirror::mirror::copy::{
    mirror_copy, mirror_stream, CopyError, CopyNote, CopyOptions, Outcome,
};
use hammer_mirror::mirror::dump::{mirror_dump, DumpError};
use hammer_mirror::mirror::error::MirrorError;
use hammer_mirror::mirror::fanout::{mirror_fanout, FanOutcome};
use hammer_mirror::mirror::read::{mirror_read, ReadOptions};
use hammer_mirror::mirror::remote::{parse_side, SshOptions};
use hammer_mirror::mirror::write::{mirror_write, WriteOptions};
use hammer_mirror::patharg::PathArg;
use hammer_mirror::pfs_cmd::{self, PfsCmdError, PfsCreate};
use hammer_mirror::progress::Progress;
use hammer_mirror::restrict;
use hammer_mirror::verify;
use hammer_mirror::wire::zframe::{ZReader, ZWriter};

/// What a failure prints on stderr, and the exit status it ends with.
struct Failure {
    lines: Vec<Line>,
    status: u8,
    /// What `-j`'s `error` events say of it.
    class: &'static str,
    errno: Option<i32>,
}

/// `-j`'s sink, set once the command line is parsed: main and the signal
/// thread tell it every failure's messages and the exit status.
static EVENTS: OnceLock<Events> = OnceLock::new();

fn events() -> Events {
    EVENTS.get().cloned().unwrap_or_default()
}

/// One message: the original's `errx` (`hammer: msg`), its verbatim
/// `say`, or a usage text.
enum Line {
    Errx(String),
    Say(String),
    Usage(&'static str),
}

impl Failure {
    fn errx(m: impl std::fmt::Display) -> Self {
        Failure::of(Line::Errx(m.to_string()))
    }

    fn of(line: Line) -> Self {
        Failure {
            lines: vec![line],
            ..Failure::status(1)
        }
    }

    /// Nothing (more) to tell: the command told it already.
    fn status(status: u8) -> Self {
        Failure {
            lines: Vec::new(),
            status,
            class: "error",
            errno: None,
        }
    }

    fn class(self, class: &'static str, errno: Option<i32>) -> Self {
        Failure {
            class,
            errno,
            ..self
        }
    }
}

/// Exit statuses of mirror-copy and mirror-stream (D4: the original's was
/// always 0).
mod copy_exit {
    /// The arguments were refused or the channel could not be set up.
    pub const SETUP: u8 = 1;
    pub const SOURCE_FAILED: u8 = 2;
    pub const TARGET_FAILED: u8 = 3;
    /// Both sides failed, each on its own.
    pub const BOTH_FAILED: u8 = 4;
    /// With several targets: these failed, target i (from 1) as bit i-1.
    pub const TARGETS_FAILED: u8 = 16;
}

fn main() -> ExitCode {
    let inv = match cli::parse(std::env::args_os()) {
        Ok(inv) => inv,
        Err(e) => {
            let f = cli_failure(e);
            let status = f.status;
            if let Some((dest, word)) = cli::events_of_refused(std::env::args_os()) {
                if let Ok(ev) = Events::open(&dest, &word) {
                    let _ = EVENTS.set(ev);
                }
            }
            let _ = render(f);
            events().end(status);
            return ExitCode::from(status);
        }
    };
    if let Some(dest) = &inv.opts.events {
        match Events::open(dest, inv.command.word()) {
            Ok(e) => {
                let _ = EVENTS.set(e);
            }
            Err(e) => {
                let shown = dest.to_string_lossy();
                return render(Failure::errx(format_args!("-j {shown}: {}", strerror(&e))));
            }
        }
    }
    let status = match run(&inv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let status = f.status;
            let _ = render(f);
            events().end(status);
            return ExitCode::from(status);
        }
    };
    events().end(0);
    status
}

/// Prints a failure on stderr (and tells `-j`); its exit status.
fn render(f: Failure) -> ExitCode {
    tell_lines(&f.lines, f.class, f.errno);
    print_lines(&f.lines);
    ExitCode::from(f.status)
}

/// `-j`: one `error` event per message line.
fn tell_lines(lines: &[Line], class: &str, errno: Option<i32>) {
    let ev = events();
    if !ev.on() {
        return;
    }
    for line in lines {
        match line {
            Line::Errx(m) => ev.error(class, &format!("hammer: {m}"), errno),
            Line::Say(m) => ev.error(class, m, errno),
            Line::Usage(u) => ev.error(class, u, errno),
        }
    }
}

fn print_lines(lines: &[Line]) {
    let mut err = io::stderr().lock();
    for line in lines {
        let _ = match line {
            Line::Errx(m) => writeln!(err, "hammer: {m}"),
            Line::Say(m) => writeln!(err, "{m}"),
            Line::Usage(u) => err.write_all(u.as_bytes()),
        };
        if let Line::Errx(m) | Line::Say(m) = line {
            // ENOTTY is what every HAMMER ioctl gives a path on another
            // filesystem that is in no store either; the hint names the fix.
            if m.ends_with(": Inappropriate ioctl for device") {
                let _ = writeln!(err, "{NO_STORE_HINT}");
            }
        }
    }
}

/// What a mirror-stream to slaves stopped by a signal leaves behind.
const SLAVE_KEEPS: &str = "the slave keeps what its last sync committed";

/// mirror-stream runs until it is told to stop: SIGINT or SIGTERM end it
/// with one line and 128 + the signal's number, as a shell reports a
/// process such a signal ended. The batch in progress is abandoned as a
/// lost link abandons it: a slave keeps what its last SYNC committed (its
/// store rolls back the rest), and a remote side ends with its channel.
/// The progress line goes first, so that the line stands alone; the line
/// says what the run `keeps`.
fn stop_on_signals(progress: Progress, keeps: &'static str) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    // Blocked here, before any side starts, so that every thread leaves
    // them to the one below (children get a clear mask from exec).
    if set.thread_block().is_err() {
        return;
    }
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
                let _ = render(Failure::of(line).class("signal", None));
                events().end(status as u8);
                std::process::exit(status);
            }
        });
    if spawned.is_err() {
        let _ = set.thread_unblock();
    }
}

/// The fix for a path that is on no HAMMER filesystem and in no store.
const NO_STORE_HINT: &str = "hint: that path is on no HAMMER filesystem and in no store: \
     make a store with `hammer store-create <dir>` and PFSes in it with `hammer pfs-master <dir>/<name>`";

/// A refused command line: getopt's message and the usage, or the usage a
/// command's arguments call for, or the restriction's message.
fn cli_failure(e: CliError) -> Failure {
    cli_lines(e).class("usage", None)
}

fn cli_lines(e: CliError) -> Failure {
    match e {
        CliError::IllegalOption(_) | CliError::MissingArgument(_) => Failure {
            lines: vec![Line::Errx(e.to_string()), Line::Usage(USAGE)],
            ..Failure::status(1)
        },
        CliError::NoCommand => Failure::of(Line::Usage(USAGE)),
        CliError::BadValue { .. } => Failure::errx(e),
        // verify's exit 1 means "problems found".
        CliError::Usage(u) if u == cli::VERIFY_USAGE || u == cli::MIRROR_VERIFY_USAGE => Failure {
            lines: vec![Line::Usage(u)],
            ..Failure::status(2)
        },
        CliError::Usage(u) => Failure::of(Line::Usage(u)),
        CliError::Restricted(r) => Failure::errx(r),
    }
}

fn run(inv: &Invocation) -> Result<(), Failure> {
    let o = &inv.opts;
    if let Some(prefix) = &o.restrict_path {
        let paths = inv.command.confined_paths();
        restrict::confine(prefix, paths.as_deref(), inv.command.creates_path())
            .map_err(Failure::errx)?;
    }
    match &inv.command {
        Command::MirrorRead { fs, begin_tid } => {
            let ro = ReadOptions {
                events: events(),
                ..o.read_options(false, *begin_tid)
            };
            cmd_mirror_read("mirror-read", fs, &ro, o.zstd_level())
        }
        Command::MirrorReadStream { fs, begin_tid } => {
            let ro = ReadOptions {
                events: events(),
                ..o.read_options(true, *begin_tid)
            };
            cmd_mirror_read("mirror-read-stream", fs, &ro, o.zstd_level())
        }
        Command::MirrorWrite { fs } => {
            let (input, output) = stdio()?;
            match o.zstd_level() {
                // The file's size is not the stream's: no total.
                Some(_) => {
                    let wo = WriteOptions {
                        events: events(),
                        ..o.write_options(None)
                    };
                    mirror_write(fs, &wo, zreader(input)?, output, &mut io::stderr())
                }
                None => {
                    let wo = WriteOptions {
                        events: events(),
                        ..o.write_options(stream_len(&input))
                    };
                    mirror_write(fs, &wo, input, output, &mut io::stderr())
                }
            }
            .map_err(mirror_failure)
        }
        Command::MirrorDump {
            header,
            chain: Some(url),
        } => chain_cmd::dump(url, *header, &mut io::stdout().lock(), &mut io::stderr())
            .map_err(chain_failure),
        Command::MirrorDump {
            header,
            chain: None,
        } => cmd_mirror_dump(*header, o.compress > 0),
        Command::MirrorCopy { source, target } | Command::MirrorStream { source, target }
            if is_chain_url(source) || is_chain_url(target) =>
        {
            let stream = matches!(inv.command, Command::MirrorStream { .. });
            let co = copy_options(o, stream);
            if stream {
                stop_on_signals(
                    co.read.progress.clone(),
                    "the chain keeps the objects its manifest names; the next run \
                     aborts the upload under way",
                );
            }
            chain_cmd::copy(
                source,
                target,
                &co.read,
                &co.write,
                stream,
                o.zstd_level(),
                &mut io::stderr(),
            )
            .map_err(chain_failure)
        }
        Command::MirrorFanout { targets, .. } if targets.iter().any(|t| is_chain_url(t)) => Err(
            Failure::errx("mirror-copy: an s3:// chain cannot be one of several targets"),
        ),
        Command::MirrorCopy { source, target } => copy_status(mirror_copy(
            source,
            target,
            &copy_options(o, false),
            false,
            &mut copy_note,
        )),
        Command::MirrorStream { source, target } => {
            let co = copy_options(o, true);
            stop_on_signals(co.read.progress.clone(), SLAVE_KEEPS);
            let verbose = o.verbose > 0;
            let after = std::time::Duration::from_secs(15) + co.read.delay;
            let r = mirror_stream(source, target, &co, &mut |n| match n {
                CopyNote::LostLink => lost_link(0, after, verbose),
                n => copy_note(n),
            });
            if r.is_ok() {
                let giving_up = "mirror-stream: giving up, retrying cannot help";
                let _ = render(Failure::errx(giving_up).class("give-up", None));
            }
            copy_status(r)
        }
        Command::MirrorFanout {
            source,
            targets,
            stream,
        } => {
            let co = copy_options(o, *stream);
            if *stream {
                stop_on_signals(co.read.progress.clone(), SLAVE_KEEPS);
            }
            let verbose = o.verbose > 0;
            let after = std::time::Duration::from_secs(15) + co.read.delay;
            let r = mirror_fanout(source, targets, &co, *stream, &mut |i, n| match n {
                // A whole session waits; a target starts again at once.
                CopyNote::LostLink if i == 0 => lost_link(0, after, verbose),
                CopyNote::LostLink => lost_link(i, std::time::Duration::ZERO, verbose),
                CopyNote::Dropped(why) => copy_note(CopyNote::Dropped(format!(
                    "mirror-copy: target {i} ({}) dropped: {why}",
                    targets[i - 1].to_string_lossy()
                ))),
                n => copy_note(n),
            });
            if *stream && r.is_ok() {
                let giving_up = "mirror-stream: giving up, retrying cannot help";
                let _ = render(Failure::errx(giving_up).class("give-up", None));
            }
            fanout_status(r)
        }
        Command::PfsStatus { paths } => pfs(|out| pfs_cmd::pfs_status(paths, out)),
        Command::PfsMaster { path, options } => pfs(|out| {
            let new = PfsCreate {
                options,
                ..PfsCreate::default()
            };
            pfs_cmd::pfs_create(path, &new, out)
        }),
        Command::PfsSlave { path, options } => pfs(|out| {
            let new = PfsCreate {
                slave: true,
                options,
                ..PfsCreate::default()
            };
            pfs_cmd::pfs_create(path, &new, out)
        }),
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
            let s = bridge::import::import(dir, pfs, import_options(o), &mut io::stderr())
                .map_err(Failure::errx)?;
            summary(
                o.quiet > 0,
                format_args!(
                    "Imported {} into {pfs}: {} objects, {} changed, {} removed, {} bytes read, TID {:#018x}",
                    dir.display(), s.objects, s.changed, s.removed, s.bytes, s.tid
                ),
            )
        }
        Command::Export { source, dir } => {
            let s = if is_chain_url(source.as_path().as_os_str()) {
                let url = source.as_path().as_os_str();
                chain_cmd::export(url, dir, export_options(o), &mut io::stderr())
                    .map_err(chain_failure)?
            } else {
                bridge::export::export(source, dir, export_options(o), &mut io::stderr())
                    .map_err(Failure::errx)?
            };
            summary(
                o.quiet > 0,
                format_args!(
                    "Exported {source} as of TID {:#018x} into {}: {} objects, {} bytes",
                    s.tid,
                    dir.display(),
                    s.objects,
                    s.bytes
                ),
            )
        }
        Command::Snapls { paths } => {
            let mut out = io::stdout().lock();
            for path in paths {
                bridge::snapls::snapls(path, &mut out).map_err(Failure::errx)?;
            }
            Ok(())
        }
        Command::Mount { source, mountpoint } => {
            hammer_mirror::mount::mount(source, mountpoint, &o.mount_options())
                .map_err(Failure::errx)
        }
        Command::Umount { mountpoint } => {
            hammer_mirror::mount::umount(mountpoint).map_err(Failure::errx)
        }
        Command::Verify { source } if is_chain_url(source.as_path().as_os_str()) => {
            let url = source.as_path().as_os_str();
            match chain_cmd::verify(url, &mut io::stdout().lock()).map_err(chain_failure)? {
                0 => Ok(()),
                _ => Err(Failure::status(1)),
            }
        }
        Command::S3Prune { url, keep } => {
            let ro = copy_options(o, false).read;
            chain_cmd::prune(url, *keep, &ro, o.zstd_level(), &mut io::stderr())
                .map_err(chain_failure)
        }
        Command::Verify { source } => {
            // 0 clean, 1 problems found, 2 cannot read.
            match verify::verify(source, &mut io::stdout().lock()) {
                Ok(s) if s.problems == 0 => Ok(()),
                Ok(_) => Err(Failure::status(1)),
                Err(e) => Err(Failure {
                    status: 2,
                    ..Failure::errx(e)
                }),
            }
        }
        Command::MirrorVerify { master, slave } => {
            // 0 identical, 1 different, 2 cannot compare.
            fn error(e: impl std::fmt::Display) -> Failure {
                Failure {
                    status: 2,
                    ..Failure::errx(e)
                }
            }
            let master = parse_side(master).map_err(error)?;
            let slave = parse_side(slave).map_err(error)?;
            let ssh = SshOptions {
                compress: o.ssh_compress,
                port: o.ssh_port.clone(),
                splitup_text: None,
            };
            let outcome = verify::mirror_verify(&master, &slave, &ssh, &mut io::stdout().lock())
                .map_err(error)?;
            if o.verbose > 0 && o.quiet == 0 {
                for (role, (read, written)) in ["master", "slave"].iter().zip(outcome.bytes) {
                    eprintln!(
                        "mirror-verify: {role}'s side: {read} bytes received, {written} bytes sent"
                    );
                }
            }
            match (outcome.differences, outcome.problems) {
                (0, [0, 0]) => Ok(()),
                _ => Err(Failure::status(1)),
            }
        }
        Command::MirrorVerifyServe { fs } => {
            // What stopped the side was told to mirror-verify, which says it.
            match verify::serve(
                fs.as_path(),
                &mut io::stdin().lock(),
                &mut io::stdout().lock(),
            ) {
                Ok(()) => Ok(()),
                Err(verify::ServeError::Told(_)) => Err(Failure::status(2)),
                Err(e) => Err(Failure {
                    status: 2,
                    ..Failure::errx(e)
                }),
            }
        }
        Command::Help { topic } => {
            let text = cli::help(topic.as_deref()).map_err(Failure::errx)?;
            print_out(&text)
        }
        Command::Version => print_out(&cli::version()),
        Command::NotImplemented(name) => {
            Err(Failure::errx(format_args!("{name}: not implemented")))
        }
    }
}

/// Runs a pfs-* command on stdout, flushed before a failure is told.
fn pfs(command: impl FnOnce(&mut dyn Write) -> Result<(), PfsCmdError>) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    let r = command(&mut out);
    let _ = out.flush();
    r.map_err(pfs_failure)
}

fn pfs_failure(e: PfsCmdError) -> Failure {
    pfs_lines(e).class("pfs", None)
}

fn pfs_lines(e: PfsCmdError) -> Failure {
    match e {
        PfsCmdError::Reported => Failure::status(1),
        e @ PfsCmdError::NoStore(_) => Failure {
            lines: vec![Line::Say(e.to_string()), Line::Say(NO_STORE_HINT.into())],
            ..Failure::status(1)
        },
        e if e.is_plain() => Failure::of(Line::Say(e.to_string())),
        e => Failure::errx(e),
    }
}

/// import's and export's closing line, unless `-q`.
fn summary(quiet: bool, line: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    if quiet {
        return Ok(());
    }
    print_out(&format!("{line}\n"))
}

/// Text on stdout; failing to write it is a failure.
fn print_out(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::errx(strerror(&e)))
}

fn cmd_mirror_dump(header: bool, compressed: bool) -> Result<(), Failure> {
    let stdin = io::stdin().lock();
    chan::widen(&stdin);
    let stdout = io::stdout().lock();
    let stderr = io::stderr();
    let r = if compressed {
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

fn chain_failure(f: ChainFailure) -> Failure {
    Failure {
        status: f.status,
        ..Failure::errx(f.error)
    }
}

/// `ssh-remote <cmd> <target>`: run `$SSH_ORIGINAL_COMMAND` restricted to
/// that command and path prefix, in this process (no exec, no shell).
fn cmd_ssh_remote(commands: &OsStr, prefix: &Path) -> Result<(), Failure> {
    let original = std::env::var_os("SSH_ORIGINAL_COMMAND");
    match cli::ssh_remote_invocation(commands, prefix, original.as_deref()) {
        Ok(inv) => run(&inv),
        Err(SshRemoteError::Command(e)) => Err(cli_failure(e)),
        Err(e) => Err(Failure::errx(e)),
    }
}

/// mirror-copy's options, both sides telling `-j`.
fn copy_options(o: &GlobalOpts, stream: bool) -> CopyOptions {
    let mut co = o.copy_options(stream);
    co.read.events = events();
    co.write.events = events();
    co
}

fn import_options(o: &GlobalOpts) -> ImportOptions {
    ImportOptions {
        events: events(),
        ..o.import_options()
    }
}

fn export_options(o: &GlobalOpts) -> ExportOptions {
    ExportOptions {
        events: events(),
        ..o.export_options()
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

/// mirror-read and mirror-read-stream on stdin/stdout; `-z` compresses
/// the stream at that level.
fn cmd_mirror_read(
    name: &str,
    fs: &PathArg,
    ro: &ReadOptions,
    compress: Option<i32>,
) -> Result<(), Failure> {
    if io::stdout().is_terminal() {
        // As zfs send: a binary stream on a terminal helps nobody.
        return Err(Failure::errx(format_args!(
            "{name}: standard output is a terminal; redirect the stream to a file or a pipe"
        )));
    }
    let (input, output) = stdio()?;
    match compress {
        Some(level) => {
            let output = ZWriter::new(output, level)
                .map_err(|e| Failure::errx(format_args!("zstd: {}", strerror(&e))))?;
            mirror_read(fs, ro, input, output, &mut io::stderr())
        }
        None => mirror_read(fs, ro, input, output, &mut io::stderr()),
    }
    .map_err(mirror_failure)
}

/// A mirror command's failure; a slave that could not be created tells
/// why first.
fn mirror_failure(e: MirrorError) -> Failure {
    let line = if e.is_plain() {
        Line::Say(e.to_string())
    } else {
        Line::Errx(e.to_string())
    };
    let (class, errno) = (e.class(), e.errno());
    let mut f = match e {
        MirrorError::SlaveNotCreated(cause) => pfs_failure(cause),
        _ => Failure::status(1),
    };
    f.lines.push(line);
    f.status = 1;
    f.class(class, errno)
}

/// What a copy's sides have to tell, as they end.
fn copy_note(n: CopyNote) {
    let say = |line: Line, class| {
        let _ = render(Failure::of(line).class(class, None));
    };
    match n {
        CopyNote::Failed(e) => {
            let _ = render(mirror_failure(e));
        }
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
fn lost_link(target: usize, after: std::time::Duration, verbose: bool) {
    if verbose {
        if target == 0 {
            eprint!("\nLost Link\n");
        } else {
            eprintln!("Lost link to target {target}, reconnecting");
        }
    }
    let ev = events();
    ev.lost_link(target);
    ev.retry(target, after.as_secs_f64());
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
        Err(e) => {
            return Err(Failure {
                status: copy_exit::SETUP,
                ..Failure::errx(e)
            })
        }
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
        Err(e) => {
            return Err(Failure {
                status: copy_exit::SETUP,
                ..Failure::errx(e)
            })
        }
    };
    Err(Failure::status(status))
}

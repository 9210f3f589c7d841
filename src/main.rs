//! The `hammer` binary: parse the command line, dispatch, and turn errors
//! into the original's messages and exit codes.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use hammer_mirror::bridge::{self, export::ExportOptions, import::ImportOptions};
use hammer_mirror::cli::{self, CliError, Invocation, MIRROR_USAGE, USAGE};
use hammer_mirror::errno::strerror;
use hammer_mirror::mirror::chan;
use hammer_mirror::mirror::copy::{mirror_copy, mirror_stream};
use hammer_mirror::mirror::dump::{mirror_dump, DumpError};
use hammer_mirror::mirror::error::MirrorError;
use hammer_mirror::mirror::read::{mirror_read, ReadOptions};
use hammer_mirror::mirror::write::{mirror_write, WriteOptions};
use hammer_mirror::pfs_cmd::{self, CmdError};
use hammer_mirror::restrict;
use hammer_mirror::verify;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

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
        Err(e) => {
            let mut err = io::stderr().lock();
            if let Some(m) = e.message() {
                let _ = writeln!(err, "{m}");
            }
            let _ = err.write_all(USAGE.as_bytes());
            return ExitCode::FAILURE;
        }
    };
    match dispatch(&inv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
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
    }
}

/// Commands of the original's usage that this tool does not provide.
const OTHER_COMMANDS: &[&str] = &[
    "bstats",
    "iostats",
    "stats",
    "history",
    "namekey1",
    "namekey2",
    "namekey32",
    "cleanup",
    "abort-cleanup",
    "snapshot",
    "prune",
    "prune-everything",
    "rebalance",
    "reblock",
    "reblock-btree",
    "reblock-inodes",
    "reblock-dirs",
    "reblock-data",
    "version",
    "version-upgrade",
    "volume-add",
    "volume-del",
    "volume-list",
    "volume-blkdevs",
    "config",
    "viconfig",
    "snap",
    "snaplo",
    "snapq",
    "snaprm",
    "blockmap",
    "checkmap",
    "show",
    "show-undo",
    "recover",
    "strip",
    "dedup-simulate",
    "dedup",
];

fn dispatch(inv: &Invocation) -> Result<(), Failure> {
    restrict::check(inv).map_err(|e| Failure::Errx(e.to_string()))?;
    let cmd = inv.command.as_str();
    match cmd {
        "mirror-dump" => cmd_mirror_dump(&inv.args),
        "ssh-remote" => cmd_ssh_remote(&inv.args),
        "mirror-read" | "mirror-read-stream" | "mirror-write" => cmd_mirror(inv),
        "mirror-copy" | "mirror-stream" => cmd_mirror_copy(inv),
        "import" | "export" => cmd_bridge(inv),
        "snapls" => cmd_snapls(&inv.args),
        "verify" => cmd_verify(&inv.args),
        "pfs-status" | "pfs-master" | "pfs-slave" | "pfs-update" | "pfs-upgrade"
        | "pfs-downgrade" | "pfs-destroy" | "synctid" | "store-create" => cmd_pfs(inv),
        _ if OTHER_COMMANDS.contains(&cmd) => Err(Failure::Errx(format!("{cmd}: not implemented"))),
        _ => Err(Failure::Usage(USAGE)),
    }
}

fn cmd_pfs(inv: &Invocation) -> Result<(), Failure> {
    let args = &inv.args;
    let mut out = io::stdout().lock();
    let r = match inv.command.as_str() {
        "pfs-status" => pfs_cmd::pfs_status(args, &mut out),
        "pfs-master" => pfs_cmd::pfs_create(args, false, &mut out),
        "pfs-slave" => pfs_cmd::pfs_create(args, true, &mut out),
        "pfs-update" => pfs_cmd::pfs_update(args, &mut out),
        "pfs-upgrade" => pfs_cmd::pfs_upgrade(args, &mut out),
        "pfs-downgrade" => pfs_cmd::pfs_downgrade(args, &mut out),
        "pfs-destroy" => pfs_cmd::pfs_destroy(
            args,
            &inv.opts,
            &mut io::stdin().lock(),
            &mut out,
            Duration::from_secs(1),
        ),
        "synctid" => pfs_cmd::synctid(args, &mut out),
        _ => pfs_cmd::store_create(args),
    };
    let _ = out.flush();
    r.map_err(|e| match e {
        CmdError::Errx(m) => Failure::Errx(m),
        CmdError::Say(m) => Failure::Say(m),
        CmdError::Usage(u) => Failure::Usage(u),
        CmdError::Failed => Failure::Silent,
        CmdError::Output(e) => Failure::Errx(strerror(&e)),
    })
}

fn cmd_mirror_dump(args: &[String]) -> Result<(), Failure> {
    let header = match args {
        [] => false,
        [h] if h == "header" => true,
        _ => return Err(Failure::Usage(MIRROR_USAGE)),
    };
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
fn cmd_ssh_remote(args: &[String]) -> Result<(), Failure> {
    let [cmd, target] = args else {
        return Err(Failure::Usage(USAGE));
    };
    let original = std::env::var("SSH_ORIGINAL_COMMAND").ok();
    let inv = restrict::ssh_remote_invocation(cmd, target, original.as_deref())
        .map_err(|e| Failure::Errx(e.to_string()))?;
    dispatch(&inv)
}

/// mirror-read, mirror-read-stream and mirror-write on stdin/stdout.
fn cmd_mirror(inv: &Invocation) -> Result<(), Failure> {
    let o = &inv.opts;
    let (fs, begin) = match (inv.command.as_str(), inv.args.as_slice()) {
        ("mirror-write", [fs]) => (fs, None),
        ("mirror-read" | "mirror-read-stream", [fs]) => (fs, None),
        ("mirror-read" | "mirror-read-stream", [fs, b]) => (fs, Some(cli::strtoull(b).0)),
        _ => return Err(Failure::Usage(MIRROR_USAGE)),
    };
    if inv.command != "mirror-write" && io::stdout().is_terminal() {
        // As zfs send: a binary stream on a terminal helps nobody.
        return Err(Failure::Errx(format!(
            "{}: standard output is a terminal; redirect the stream to a file or a pipe",
            inv.command
        )));
    }
    let stdio = |fd: std::os::fd::BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .map(std::fs::File::from)
            .map_err(|e| Failure::Errx(format!("stdio: {}", strerror(&e))))
    };
    let input = stdio(io::stdin().as_fd())?;
    let output = stdio(io::stdout().as_fd())?;
    chan::widen(&input);
    chan::widen(&output);
    let mut diag = io::stderr();
    let r = if inv.command == "mirror-write" {
        mirror_write(fs, &WriteOptions::from_global(o), input, output, &mut diag)
    } else {
        let stream = inv.command == "mirror-read-stream";
        let ro = ReadOptions::from_global(o, stream, begin);
        mirror_read(fs, &ro, input, output, &mut diag)
    };
    r.map_err(mirror_failure)
}

fn mirror_failure(e: MirrorError) -> Failure {
    if e.is_plain() {
        Failure::Say(e.to_string())
    } else {
        Failure::Errx(e.to_string())
    }
}

/// mirror-copy and mirror-stream; their exit status names the failed side.
fn cmd_mirror_copy(inv: &Invocation) -> Result<(), Failure> {
    let [src, dst] = inv.args.as_slice() else {
        return Err(Failure::Usage(MIRROR_USAGE));
    };
    let mut diag = io::stderr();
    let r = if inv.command == "mirror-stream" {
        mirror_stream(src, dst, &inv.opts, &mut diag)
    } else {
        mirror_copy(src, dst, &inv.opts, false, &mut diag).map(|o| o.status)
    };
    match r {
        Ok(0) => Ok(()),
        Ok(code) => Err(Failure::Status(code)),
        Err(e) => Err(Failure::Errx(e.to_string())),
    }
}

/// `snapls <pfs> ...`: the TIDs each PFS can be exported as of.
fn cmd_snapls(args: &[String]) -> Result<(), Failure> {
    if args.is_empty() {
        return Err(Failure::Usage("hammer snapls <pfs-path> ...\n"));
    }
    let mut out = io::stdout().lock();
    for path in args {
        bridge::snapls::snapls(path, &mut out).map_err(|e| Failure::Errx(e.to_string()))?;
    }
    Ok(())
}

/// `verify <pfs>[@@<tid>]`: exit 0 clean, 1 problems found, 2 cannot
/// read (a usage error too: 1 would claim problems).
fn cmd_verify(args: &[String]) -> Result<(), Failure> {
    let [source] = args else {
        eprintln!("hammer verify <pfs-path>[@@<tid>]");
        return Err(Failure::Status(2));
    };
    match verify::verify(source, &mut io::stdout().lock()) {
        Ok(s) if s.problems == 0 => Ok(()),
        Ok(_) => Err(Failure::Status(1)),
        Err(e) => {
            eprintln!("hammer: {e}");
            Err(Failure::Status(2))
        }
    }
}

/// Usage of import and export.
const BRIDGE_USAGE: &str = "\
hammer import <dir> <pfs-path>
hammer [-F] export <pfs-path>[@@<tid>] <dir>
";

/// `import <dir> <pfs>` and `export <pfs>[@@<tid>] <dir>` on the store.
fn cmd_bridge(inv: &Invocation) -> Result<(), Failure> {
    let [a, b] = inv.args.as_slice() else {
        return Err(Failure::Usage(BRIDGE_USAGE));
    };
    let quiet = inv.opts.quiet > 0;
    let mut diag = io::stderr();
    let line = if inv.command == "import" {
        let s = bridge::import::import(Path::new(a), b, ImportOptions { quiet }, &mut diag)
            .map_err(|e| Failure::Errx(e.to_string()))?;
        format!(
            "Imported {a} into {b}: {} objects, {} changed, {} removed, {} bytes read, TID {:#018x}",
            s.objects, s.changed, s.removed, s.bytes, s.tid
        )
    } else {
        let opts = ExportOptions {
            force: inv.opts.force,
            quiet,
        };
        let s = bridge::export::export(a, Path::new(b), opts, &mut diag)
            .map_err(|e| Failure::Errx(e.to_string()))?;
        format!(
            "Exported {a} as of TID {:#018x} into {b}: {} objects, {} bytes",
            s.tid, s.objects, s.bytes
        )
    };
    if !quiet {
        println!("{line}");
    }
    Ok(())
}

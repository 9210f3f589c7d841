//! The command word's arguments as a typed `Command`: one variant per
//! command, each with the arguments it takes (cli.md §2-11), and the
//! readers of those arguments that the table's parsers share.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::completion::Shell;
use crate::bridge::exclude::ExcludeOptions;
use crate::cparse::strtoull;
use crate::mirror::fanout::MAX_TARGETS;
use crate::patharg::{PathArg, Place};
use crate::retention::grid::{Retain, Unit};

/// A command with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    MirrorRead {
        fs: PathArg,
        begin_tid: Option<u64>,
    },
    MirrorReadStream {
        fs: PathArg,
        begin_tid: Option<u64>,
    },
    MirrorWrite {
        fs: PathArg,
    },
    /// With `chain`, the objects of `s3://bucket/prefix[@@0x<tid>]`
    /// instead of standard input.
    MirrorDump {
        header: bool,
        chain: Option<OsString>,
    },
    /// Each side `[[user@]host:]<filesystem>` or a chain.
    MirrorCopy {
        source: Place,
        target: Place,
    },
    MirrorStream {
        source: Place,
        target: Place,
    },
    /// mirror-copy (mirror-stream with `stream`) to 2 to `MAX_TARGETS`
    /// targets: the source read once for all.
    MirrorFanout {
        source: Place,
        targets: Vec<Place>,
        stream: bool,
    },
    /// The paths in order; `.` when none was given.
    PfsStatus {
        paths: Vec<PathArg>,
    },
    PfsMaster {
        path: PathArg,
        options: Vec<OsString>,
    },
    PfsSlave {
        path: PathArg,
        options: Vec<OsString>,
    },
    PfsUpdate {
        path: PathArg,
        options: Vec<OsString>,
    },
    PfsUpgrade {
        path: PathArg,
    },
    PfsDowngrade {
        path: PathArg,
    },
    PfsDestroy {
        path: PathArg,
    },
    Synctid {
        fs: PathArg,
        quick: bool,
    },
    /// `ssh-remote <commands> <path-prefix>`.
    SshRemote {
        commands: OsString,
        prefix: PathBuf,
    },
    StoreCreate {
        dir: PathBuf,
    },
    /// `import [--exclude PATTERN]... [--exclude-from FILE]...
    /// [--one-file-system] <dir> <pfs>`.
    Import {
        dir: PathBuf,
        pfs: PathArg,
        excludes: ExcludeOptions,
    },
    /// `export <pfs>[@@<tid>] <dir> [<path-inside>...]`, or a chain's
    /// restore point.
    Export {
        source: Place,
        dir: PathBuf,
        inside: Vec<PathBuf>,
    },
    /// `snap`, `snaplo` or `snapq <path> [<note>]`.
    Snap {
        path: PathArg,
        note: Option<OsString>,
        kind: SnapKind,
    },
    /// `snapshot [<filesystem>] <snapshot-dir>`, `snapshot <filesystem>
    /// <snapshot-dir> [<note>]`.
    Snapshot {
        filesystem: Option<PathArg>,
        dir: PathArg,
        note: Option<OsString>,
    },
    /// `snaprm` with its paths or TIDs, read in turn as it runs.
    Snaprm {
        args: Vec<OsString>,
    },
    /// `config [<filesystem> [<configfile>]]` (more arguments are
    /// ignored, as by the original).
    Config {
        fs: Option<PathArg>,
        file: Option<PathArg>,
    },
    /// `viconfig [<filesystem>]`; `too_many` arguments are refused when
    /// it runs, with the original's message.
    Viconfig {
        fs: Option<PathArg>,
        too_many: bool,
    },
    /// `prune <softlink-dir>`, or `prune-everything <filesystem>` with
    /// `everything`.
    Prune {
        path: PathArg,
        everything: bool,
    },
    /// `reblock*` of `path` (the DO bits `what`, `fill` percent).
    Reblock {
        path: PathArg,
        what: u32,
        fill: u32,
    },
    /// `rebalance` or `dedup` (`word`) of `path`.
    NothingToDo {
        word: &'static str,
        path: PathArg,
    },
    /// `cleanup [<filesystem> ...]`.
    Cleanup {
        paths: Vec<PathArg>,
    },
    /// `abort-cleanup`.
    AbortCleanup,
    /// `snapls [<path> ...]`: the paths (`.` when none); with `changes`
    /// (`snapls --changes`), every TID each store PFS changed at.
    /// `space <pfs-path> ...`.
    Space {
        paths: Vec<PathArg>,
    },
    Snapls {
        paths: Vec<PathArg>,
        changes: bool,
    },
    /// `mount <pfs>[@@<tid>] <mountpoint>`.
    Mount {
        source: PathArg,
        mountpoint: PathBuf,
    },
    /// `umount <mountpoint>`.
    Umount {
        mountpoint: PathBuf,
    },
    /// `verify <pfs>[@@<tid>]`, or a chain.
    Verify {
        source: Place,
    },
    /// `mirror-verify <master> <slave>`, each `[[user@]host:]<pfs>`.
    MirrorVerify {
        master: OsString,
        slave: OsString,
    },
    /// `mirror-verify-serve <pfs>`: one PFS's side of a mirror-verify,
    /// speaking on stdin and stdout.
    MirrorVerifyServe {
        fs: PathArg,
    },
    /// `s3-prune s3://bucket/prefix [keep=<N>] [<unit>=<N> ...]`.
    S3Prune {
        url: OsString,
        retain: Retain,
    },
    /// `help [command]`, `-h`, `--help`, `<command> --help`.
    Help {
        topic: Option<OsString>,
    },
    /// `version` without an argument, `--version`: this tool's.
    Version,
    /// `completion <shell>`: the shell's completion script.
    Completion {
        shell: Shell,
    },
    /// A command of the original's that this tool does not provide.
    NotImplemented(&'static str),
}

/// Which of the three `snap` commands: where its softlink leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapKind {
    /// `snap`: to the snapshot of the filesystem's mount point.
    Base,
    /// `snaplo`: to the snapshot of the directory itself.
    Local,
    /// `snapq`: no softlink; the snapshot's path on standard output.
    Query,
}

/// `mirror-read <filesystem> [begin-tid]` (mirror-read-stream's with
/// `stream`): begin-tid in C's notation, nothing in it refused (cli.md §3).
pub(super) fn mirror_read(args: &[OsString], stream: bool) -> Option<Command> {
    let (fs, begin_tid) = match args {
        [fs] => (arg(fs), None),
        [fs, tid] => (arg(fs), Some(strtoull(tid.as_bytes(), 0).0)),
        _ => return None,
    };
    Some(match stream {
        false => Command::MirrorRead { fs, begin_tid },
        true => Command::MirrorReadStream { fs, begin_tid },
    })
}

/// `snap`'s, `snaplo`'s and `snapq`'s `<path> [<note>]`.
pub(super) fn snap(args: &[OsString], kind: SnapKind) -> Option<Command> {
    let (path, note) = match args {
        [path] => (path, None),
        [path, note] => (path, Some(note.clone())),
        _ => return None,
    };
    Some(Command::Snap {
        path: arg(path),
        note,
        kind,
    })
}

/// `snapshot`'s one to three arguments.
pub(super) fn snapshot(args: &[OsString]) -> Option<Command> {
    let (filesystem, dir, note) = match args {
        [dir] => (None, dir, None),
        [fs, dir] => (Some(arg(fs)), dir, None),
        [fs, dir, note] => (Some(arg(fs)), dir, Some(note.clone())),
        _ => return None,
    };
    Some(Command::Snapshot {
        filesystem,
        dir: arg(dir),
        note,
    })
}

/// `snapls [--changes] [<path> ...]`.
pub(super) fn snapls(args: &[OsString]) -> Option<Command> {
    let (changes, paths) = match args {
        [flag, paths @ ..] if flag == "--changes" => (true, paths),
        paths => (false, paths),
    };
    Some(Command::Snapls {
        paths: paths.iter().map(arg).collect(),
        changes,
    })
}

/// `keep=<N>`: how many of a chain's newest increments s3-prune keeps.
/// s3-prune's terms: `keep=<N>` and the grid's `<unit>=<N>` (cli.md
/// §23.3), at least one, each once, N decimal.
pub(super) fn retain_terms(words: &[OsString]) -> Option<Retain> {
    let mut r = Retain::default();
    let mut seen = Vec::new();
    for word in words {
        let (name, n) = word.to_str()?.split_once('=')?;
        if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) || seen.contains(&name) {
            return None;
        }
        seen.push(name);
        match name {
            "keep" => r.keep = Some(n.parse().ok()?),
            _ => {
                let unit = Unit::ALL.into_iter().find(|u| u.name() == name)?;
                r.grid.set(unit, n.parse().ok()?);
            }
        }
    }
    (!words.is_empty()).then_some(r)
}

pub(super) fn arg(word: &OsString) -> PathArg {
    PathArg::from(word.clone())
}

/// `<dirpath> [options]`: pfs-master's, pfs-slave's and pfs-update's.
pub(super) fn path_and_options(args: &[OsString]) -> Option<(PathArg, Vec<OsString>)> {
    let (path, options) = args.split_first()?;
    Some((arg(path), options.to_vec()))
}

/// `mirror-dump [header] [s3://...]`.
pub(super) fn mirror_dump(args: &[OsString]) -> Option<Command> {
    let (header, rest) = match args {
        [h, rest @ ..] if h == "header" => (true, rest),
        rest => (false, rest),
    };
    let chain = match rest {
        [] => None,
        [url] => match Place::of(url) {
            Place::Chain(url) => Some(url),
            Place::Pfs(_) => return None,
        },
        _ => return None,
    };
    Some(Command::MirrorDump { header, chain })
}

/// mirror-copy's and mirror-stream's `<source> <target>...`.
pub(super) fn mirror_copy(args: &[OsString], stream: bool) -> Option<Command> {
    let place = |w: &OsString| Place::of(w);
    Some(match args {
        [s, t] if stream => Command::MirrorStream {
            source: place(s),
            target: place(t),
        },
        [s, t] => Command::MirrorCopy {
            source: place(s),
            target: place(t),
        },
        [s, ts @ ..] if (2..=MAX_TARGETS).contains(&ts.len()) => Command::MirrorFanout {
            source: place(s),
            targets: ts.iter().map(place).collect(),
            stream,
        },
        _ => return None,
    })
}

/// import's arguments: its long options (`--exclude PATTERN` or
/// `--exclude=PATTERN`, the same for `--exclude-from`, and
/// `--one-file-system`, until `--` or the first other word), then exactly
/// `<dir> <pfs>` (cli.md §19).
pub(super) fn import(args: &[OsString]) -> Option<Command> {
    let mut excludes = ExcludeOptions::default();
    let mut rest = args.iter();
    let mut words = Vec::new();
    while let Some(a) = rest.next() {
        let b = a.as_bytes();
        let valued = |name: &[u8]| -> Option<Option<OsString>> {
            let tail = b.strip_prefix(name)?;
            match tail.strip_prefix(b"=") {
                Some(v) => Some(Some(OsStr::from_bytes(v).to_os_string())),
                None if tail.is_empty() => Some(None),
                None => None,
            }
        };
        if b == b"--" {
            words.extend(rest.cloned());
            break;
        } else if b == b"--one-file-system" {
            excludes.one_file_system = true;
        } else if let Some(v) = valued(b"--exclude-from") {
            excludes
                .from
                .push(v.or_else(|| rest.next().cloned())?.into());
        } else if let Some(v) = valued(b"--exclude") {
            excludes.patterns.push(v.or_else(|| rest.next().cloned())?);
        } else if b.starts_with(b"--") {
            return None;
        } else {
            words.push(a.clone());
            words.extend(rest.cloned());
            break;
        }
    }
    match words.as_slice() {
        [dir, pfs] => Some(Command::Import {
            dir: dir.into(),
            pfs: arg(pfs),
            excludes,
        }),
        _ => None,
    }
}

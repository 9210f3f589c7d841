//! The command word and its arguments as a typed `Command`: one variant
//! per command, each with the arguments it takes (cli.md §2-11), or the
//! usage text a wrong count of them gets.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::usage::{
    BRIDGE_USAGE, HELP_USAGE, MIRROR_USAGE, MIRROR_VERIFY_USAGE, MOUNT_USAGE, PFS_USAGE, S3_USAGE,
    SNAPLS_USAGE, STORE_CREATE_USAGE, SYNCTID_USAGE, USAGE, VERIFY_USAGE,
};
use super::CliError;
use crate::chain::url::is_chain_url;
use crate::cparse::strtoull;
use crate::mirror::fanout::MAX_TARGETS;
use crate::patharg::PathArg;

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
    /// Each side `[[user@]host:]<filesystem>`.
    MirrorCopy {
        source: OsString,
        target: OsString,
    },
    MirrorStream {
        source: OsString,
        target: OsString,
    },
    /// mirror-copy (mirror-stream with `stream`) to 2 to `MAX_TARGETS`
    /// targets: the source read once for all.
    MirrorFanout {
        source: OsString,
        targets: Vec<OsString>,
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
    Import {
        dir: PathBuf,
        pfs: PathArg,
    },
    Export {
        source: PathArg,
        dir: PathBuf,
    },
    Snapls {
        paths: Vec<PathArg>,
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
    /// `verify <pfs>[@@<tid>]`.
    Verify {
        source: PathArg,
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
    /// `s3-prune s3://bucket/prefix keep=<N>`.
    S3Prune {
        url: OsString,
        keep: usize,
    },
    /// `help [command]`, `-h`, `--help`, `<command> --help`.
    Help {
        topic: Option<OsString>,
    },
    /// `version` without an argument, `--version`: this tool's.
    Version,
    /// A command of the original's that this tool does not provide.
    NotImplemented(&'static str),
}

/// Commands of the original's usage that this tool does not provide.
pub const OTHER_COMMANDS: &[&str] = &[
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

/// begin-tid: C base auto-detection, without error checking (cli.md §3).
fn begin_tid(word: &OsStr) -> Option<u64> {
    Some(strtoull(word.as_bytes(), 0).0)
}

/// `keep=<N>`: how many of a chain's newest increments s3-prune keeps.
fn keep_count(word: &OsStr) -> Option<usize> {
    let n = word.to_str()?.strip_prefix("keep=")?;
    if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

fn arg(word: &OsString) -> PathArg {
    PathArg::from(word.clone())
}

fn paths(words: &[OsString]) -> Vec<PathArg> {
    words.iter().map(arg).collect()
}

impl Command {
    /// The command `word` with `args`; a wrong count of arguments is the
    /// usage error the original gives for it.
    pub fn parse(word: &OsStr, args: Vec<OsString>) -> Result<Command, CliError> {
        use Command::*;
        let owned = |s: &OsString| s.clone();
        let usage = |text| Err(CliError::Usage(text));
        // A word that is not UTF-8 is no command.
        let name = word.to_str().unwrap_or("");
        Ok(match (name, args.as_slice()) {
            // As words, not as options: getopt knows no long options.
            (_, [h]) if h == "--help" => Help {
                topic: Some(word.to_os_string()),
            },
            ("help", []) => Help { topic: None },
            ("help", [topic]) => Help {
                topic: Some(owned(topic)),
            },
            ("help", _) => return usage(HELP_USAGE),
            // `version <filesystem>` is the original's, not implemented.
            ("version", []) => Version,
            ("mirror-read", [fs]) => MirrorRead {
                fs: arg(fs),
                begin_tid: None,
            },
            ("mirror-read", [fs, b]) => MirrorRead {
                fs: arg(fs),
                begin_tid: begin_tid(b),
            },
            ("mirror-read-stream", [fs]) => MirrorReadStream {
                fs: arg(fs),
                begin_tid: None,
            },
            ("mirror-read-stream", [fs, b]) => MirrorReadStream {
                fs: arg(fs),
                begin_tid: begin_tid(b),
            },
            ("mirror-write", [fs]) => MirrorWrite { fs: arg(fs) },
            ("mirror-dump", []) => MirrorDump {
                header: false,
                chain: None,
            },
            ("mirror-dump", [h]) if h == "header" => MirrorDump {
                header: true,
                chain: None,
            },
            ("mirror-dump", [u]) if is_chain_url(u) => MirrorDump {
                header: false,
                chain: Some(owned(u)),
            },
            ("mirror-dump", [h, u]) if h == "header" && is_chain_url(u) => MirrorDump {
                header: true,
                chain: Some(owned(u)),
            },
            ("mirror-copy", [s, t]) => MirrorCopy {
                source: owned(s),
                target: owned(t),
            },
            ("mirror-stream", [s, t]) => MirrorStream {
                source: owned(s),
                target: owned(t),
            },
            ("mirror-copy" | "mirror-stream", [s, ts @ ..])
                if (2..=MAX_TARGETS).contains(&ts.len()) =>
            {
                MirrorFanout {
                    source: owned(s),
                    targets: ts.iter().map(owned).collect(),
                    stream: name == "mirror-stream",
                }
            }
            (
                "mirror-read" | "mirror-read-stream" | "mirror-write" | "mirror-dump"
                | "mirror-copy" | "mirror-stream",
                _,
            ) => return usage(MIRROR_USAGE),
            ("pfs-status", []) => PfsStatus {
                paths: vec![".".into()],
            },
            ("pfs-status", words) => PfsStatus {
                paths: paths(words),
            },
            ("pfs-master", [path, options @ ..]) => PfsMaster {
                path: arg(path),
                options: options.to_vec(),
            },
            ("pfs-slave", [path, options @ ..]) => PfsSlave {
                path: arg(path),
                options: options.to_vec(),
            },
            ("pfs-update", [path, options @ ..]) => PfsUpdate {
                path: arg(path),
                options: options.to_vec(),
            },
            // Extra arguments are ignored (cli.md §2).
            ("pfs-upgrade", [path, ..]) => PfsUpgrade { path: arg(path) },
            ("pfs-downgrade", [path, ..]) => PfsDowngrade { path: arg(path) },
            ("pfs-destroy", [path, ..]) => PfsDestroy { path: arg(path) },
            (
                "pfs-master" | "pfs-slave" | "pfs-update" | "pfs-upgrade" | "pfs-downgrade"
                | "pfs-destroy",
                [],
            ) => return usage(PFS_USAGE),
            ("synctid", [fs]) => Synctid {
                fs: arg(fs),
                quick: false,
            },
            ("synctid", [fs, q]) if q == "quick" => Synctid {
                fs: arg(fs),
                quick: true,
            },
            ("synctid", _) => return usage(SYNCTID_USAGE),
            ("ssh-remote", [c, p]) => SshRemote {
                commands: owned(c),
                prefix: owned(p).into(),
            },
            ("store-create", [dir]) => StoreCreate {
                dir: owned(dir).into(),
            },
            ("store-create", _) => return usage(STORE_CREATE_USAGE),
            ("import", [dir, pfs]) => Import {
                dir: owned(dir).into(),
                pfs: arg(pfs),
            },
            ("export", [source, dir]) => Export {
                source: arg(source),
                dir: owned(dir).into(),
            },
            ("import" | "export", _) => return usage(BRIDGE_USAGE),
            ("mount", [source, mountpoint]) => Mount {
                source: arg(source),
                mountpoint: owned(mountpoint).into(),
            },
            ("umount", [mountpoint]) => Umount {
                mountpoint: owned(mountpoint).into(),
            },
            ("mount" | "umount", _) => return usage(MOUNT_USAGE),
            ("snapls", []) => return usage(SNAPLS_USAGE),
            ("snapls", words) => Snapls {
                paths: paths(words),
            },
            ("verify", [source]) => Verify {
                source: arg(source),
            },
            ("verify", _) => return usage(VERIFY_USAGE),
            ("mirror-verify", [master, slave]) => MirrorVerify {
                master: owned(master),
                slave: owned(slave),
            },
            ("mirror-verify", _) => return usage(MIRROR_VERIFY_USAGE),
            ("mirror-verify-serve", [fs]) => MirrorVerifyServe { fs: arg(fs) },
            ("mirror-verify-serve", _) => return usage(MIRROR_VERIFY_USAGE),
            ("s3-prune", [u, k]) if is_chain_url(u) => match keep_count(k) {
                Some(keep) => S3Prune {
                    url: owned(u),
                    keep,
                },
                None => return usage(S3_USAGE),
            },
            ("s3-prune", _) => return usage(S3_USAGE),
            (other, _) => match OTHER_COMMANDS.iter().find(|&&c| c == other) {
                Some(name) => NotImplemented(name),
                None => return usage(USAGE),
            },
        })
    }

    /// The paths `-T` confines, or `None` for a command whose arguments are
    /// not known to be confinable (it is then refused under `-T`).
    pub fn confined_paths(&self) -> Option<Vec<&Path>> {
        use Command::*;
        match self {
            MirrorRead { fs, .. }
            | MirrorReadStream { fs, .. }
            | MirrorWrite { fs }
            | Synctid { fs, .. }
            | MirrorVerifyServe { fs } => Some(vec![fs.as_path()]),
            PfsMaster { path, .. }
            | PfsSlave { path, .. }
            | PfsUpdate { path, .. }
            | PfsUpgrade { path }
            | PfsDowngrade { path }
            | PfsDestroy { path } => Some(vec![path.as_path()]),
            PfsStatus { paths } => Some(paths.iter().map(PathArg::as_path).collect()),
            // A chain is read with this host's credentials: never for a
            // forced-command client.
            MirrorDump { chain: Some(_), .. } => None,
            MirrorDump { .. } | Help { .. } | Version => Some(Vec::new()),
            MirrorCopy { .. }
            | MirrorStream { .. }
            | MirrorFanout { .. }
            | SshRemote { .. }
            | StoreCreate { .. }
            | Import { .. }
            | Export { .. }
            | Snapls { .. }
            | Mount { .. }
            | Umount { .. }
            | Verify { .. }
            | MirrorVerify { .. }
            | S3Prune { .. }
            | NotImplemented(_) => None,
        }
    }

    /// The command word, as the events of `-j` name the command.
    pub fn word(&self) -> &'static str {
        use Command::*;
        match self {
            MirrorRead { .. } => "mirror-read",
            MirrorReadStream { .. } => "mirror-read-stream",
            MirrorWrite { .. } => "mirror-write",
            MirrorDump { .. } => "mirror-dump",
            MirrorCopy { .. } | MirrorFanout { stream: false, .. } => "mirror-copy",
            MirrorStream { .. } | MirrorFanout { stream: true, .. } => "mirror-stream",
            PfsStatus { .. } => "pfs-status",
            PfsMaster { .. } => "pfs-master",
            PfsSlave { .. } => "pfs-slave",
            PfsUpdate { .. } => "pfs-update",
            PfsUpgrade { .. } => "pfs-upgrade",
            PfsDowngrade { .. } => "pfs-downgrade",
            PfsDestroy { .. } => "pfs-destroy",
            Synctid { .. } => "synctid",
            SshRemote { .. } => "ssh-remote",
            StoreCreate { .. } => "store-create",
            Import { .. } => "import",
            Export { .. } => "export",
            Snapls { .. } => "snapls",
            Mount { .. } => "mount",
            Umount { .. } => "umount",
            Verify { .. } => "verify",
            MirrorVerify { .. } => "mirror-verify",
            MirrorVerifyServe { .. } => "mirror-verify-serve",
            S3Prune { .. } => "s3-prune",
            Help { .. } => "help",
            Version => "version",
            NotImplemented(word) => word,
        }
    }

    /// Whether the command creates its path when it does not exist
    /// (mirror-write by auto-creating the slave).
    pub fn creates_path(&self) -> bool {
        matches!(
            self,
            Command::MirrorWrite { .. } | Command::PfsMaster { .. } | Command::PfsSlave { .. }
        )
    }
}

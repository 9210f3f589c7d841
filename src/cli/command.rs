//! The command word and its arguments as a typed `Command`: one variant
//! per command, each with the arguments it takes (cli.md §2-11), or the
//! usage text a wrong count of them gets.

use super::usage::{
    BRIDGE_USAGE, MIRROR_USAGE, PFS_USAGE, SNAPLS_USAGE, STORE_CREATE_USAGE, SYNCTID_USAGE, USAGE,
};
use super::CliError;
use crate::cparse::strtoull;

/// A command with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    MirrorRead {
        fs: String,
        begin_tid: Option<u64>,
    },
    MirrorReadStream {
        fs: String,
        begin_tid: Option<u64>,
    },
    MirrorWrite {
        fs: String,
    },
    MirrorDump {
        header: bool,
    },
    MirrorCopy {
        source: String,
        target: String,
    },
    MirrorStream {
        source: String,
        target: String,
    },
    /// The paths in order; `.` when none was given.
    PfsStatus {
        paths: Vec<String>,
    },
    PfsMaster {
        path: String,
        options: Vec<String>,
    },
    PfsSlave {
        path: String,
        options: Vec<String>,
    },
    PfsUpdate {
        path: String,
        options: Vec<String>,
    },
    PfsUpgrade {
        path: String,
    },
    PfsDowngrade {
        path: String,
    },
    PfsDestroy {
        path: String,
    },
    Synctid {
        fs: String,
        quick: bool,
    },
    /// `ssh-remote <commands> <path-prefix>`.
    SshRemote {
        commands: String,
        prefix: String,
    },
    StoreCreate {
        dir: String,
    },
    Import {
        dir: String,
        pfs: String,
    },
    Export {
        source: String,
        dir: String,
    },
    Snapls {
        paths: Vec<String>,
    },
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
fn begin_tid(word: &str) -> Option<u64> {
    Some(strtoull(word.as_bytes(), 0).0)
}

impl Command {
    /// The command `word` with `args`; a wrong count of arguments is the
    /// usage error the original gives for it.
    pub fn parse(word: &str, args: Vec<String>) -> Result<Command, CliError> {
        use Command::*;
        let owned = |s: &String| s.clone();
        let usage = |text| Err(CliError::Usage(text));
        Ok(match (word, args.as_slice()) {
            ("mirror-read", [fs]) => MirrorRead {
                fs: owned(fs),
                begin_tid: None,
            },
            ("mirror-read", [fs, b]) => MirrorRead {
                fs: owned(fs),
                begin_tid: begin_tid(b),
            },
            ("mirror-read-stream", [fs]) => MirrorReadStream {
                fs: owned(fs),
                begin_tid: None,
            },
            ("mirror-read-stream", [fs, b]) => MirrorReadStream {
                fs: owned(fs),
                begin_tid: begin_tid(b),
            },
            ("mirror-write", [fs]) => MirrorWrite { fs: owned(fs) },
            ("mirror-dump", []) => MirrorDump { header: false },
            ("mirror-dump", [h]) if h == "header" => MirrorDump { header: true },
            ("mirror-copy", [s, t]) => MirrorCopy {
                source: owned(s),
                target: owned(t),
            },
            ("mirror-stream", [s, t]) => MirrorStream {
                source: owned(s),
                target: owned(t),
            },
            (
                "mirror-read" | "mirror-read-stream" | "mirror-write" | "mirror-dump"
                | "mirror-copy" | "mirror-stream",
                _,
            ) => return usage(MIRROR_USAGE),
            ("pfs-status", []) => PfsStatus {
                paths: vec![".".to_string()],
            },
            ("pfs-status", paths) => PfsStatus {
                paths: paths.to_vec(),
            },
            ("pfs-master", [path, options @ ..]) => PfsMaster {
                path: owned(path),
                options: options.to_vec(),
            },
            ("pfs-slave", [path, options @ ..]) => PfsSlave {
                path: owned(path),
                options: options.to_vec(),
            },
            ("pfs-update", [path, options @ ..]) => PfsUpdate {
                path: owned(path),
                options: options.to_vec(),
            },
            // Extra arguments are ignored (cli.md §2).
            ("pfs-upgrade", [path, ..]) => PfsUpgrade { path: owned(path) },
            ("pfs-downgrade", [path, ..]) => PfsDowngrade { path: owned(path) },
            ("pfs-destroy", [path, ..]) => PfsDestroy { path: owned(path) },
            (
                "pfs-master" | "pfs-slave" | "pfs-update" | "pfs-upgrade" | "pfs-downgrade"
                | "pfs-destroy",
                [],
            ) => return usage(PFS_USAGE),
            ("synctid", [fs]) => Synctid {
                fs: owned(fs),
                quick: false,
            },
            ("synctid", [fs, q]) if q == "quick" => Synctid {
                fs: owned(fs),
                quick: true,
            },
            ("synctid", _) => return usage(SYNCTID_USAGE),
            ("ssh-remote", [c, p]) => SshRemote {
                commands: owned(c),
                prefix: owned(p),
            },
            ("store-create", [dir]) => StoreCreate { dir: owned(dir) },
            ("store-create", _) => return usage(STORE_CREATE_USAGE),
            ("import", [dir, pfs]) => Import {
                dir: owned(dir),
                pfs: owned(pfs),
            },
            ("export", [source, dir]) => Export {
                source: owned(source),
                dir: owned(dir),
            },
            ("import" | "export", _) => return usage(BRIDGE_USAGE),
            ("snapls", []) => return usage(SNAPLS_USAGE),
            ("snapls", paths) => Snapls {
                paths: paths.to_vec(),
            },
            (other, _) => match OTHER_COMMANDS.iter().find(|&&c| c == other) {
                Some(name) => NotImplemented(name),
                None => return usage(USAGE),
            },
        })
    }

    /// The paths `-T` confines, or `None` for a command whose arguments are
    /// not known to be confinable (it is then refused under `-T`).
    pub fn confined_paths(&self) -> Option<Vec<&str>> {
        use Command::*;
        match self {
            MirrorRead { fs, .. }
            | MirrorReadStream { fs, .. }
            | MirrorWrite { fs }
            | Synctid { fs, .. } => Some(vec![fs]),
            PfsMaster { path, .. }
            | PfsSlave { path, .. }
            | PfsUpdate { path, .. }
            | PfsUpgrade { path }
            | PfsDowngrade { path }
            | PfsDestroy { path } => Some(vec![path]),
            PfsStatus { paths } => Some(paths.iter().map(String::as_str).collect()),
            MirrorDump { .. } => Some(Vec::new()),
            MirrorCopy { .. }
            | MirrorStream { .. }
            | SshRemote { .. }
            | StoreCreate { .. }
            | Import { .. }
            | Export { .. }
            | Snapls { .. }
            | NotImplemented(_) => None,
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

//! What the command line prints about itself: the original's usage texts,
//! printed on a usage error as it prints them (cli.md §2), those of this
//! tool's own commands, and the help (`-h`, `--help`, `hammer help
//! [command]`) and version, which tell what the command table holds.

use std::ffi::OsStr;

use super::table::{self, OTHER_COMMANDS};

// Each block is written once; the general usage repeats the others.
macro_rules! synctid_lines {
    () => {
        "hammer synctid <filesystem> [quick]\n"
    };
}

macro_rules! pfs_lines {
    () => {
        "\
hammer pfs-status <dirpath> ...
hammer pfs-master <dirpath> [options]
hammer pfs-slave <dirpath> [options]
hammer pfs-update <dirpath> [options]
hammer pfs-upgrade <dirpath>
hammer pfs-downgrade <dirpath>
hammer pfs-destroy <dirpath>
"
    };
}

macro_rules! mirror_lines {
    () => {
        "\
hammer mirror-read <filesystem> [begin-tid]
hammer mirror-read-stream <filesystem> [begin-tid]
hammer mirror-write <filesystem>
hammer mirror-dump [header]
hammer mirror-copy [[user@]host:]<filesystem> [[user@]host:]<filesystem>
hammer mirror-stream [[user@]host:]<filesystem> [[user@]host:]<filesystem>
"
    };
}

/// The general usage text (cli.md §2; the second line ends with a space).
pub const USAGE: &str = concat!(
    "\
hammer -h
hammer [-2ABFqrvXy] [-b bandwidth] [-C cachesize[:readahead]] 
       [-R restrictcmd] [-T restrictpath] [-c cyclefile]
       [-e scoreboardfile] [-f blkdevs] [-i delay] [-p ssh-port]
       [-S splitsize] [-t seconds] [-m memlimit] command [argument ...]
",
    synctid_lines!(),
    "\
hammer bstats [interval]
hammer iostats [interval]
hammer stats [interval]
hammer history[@offset[,len]] <file> ...
hammer namekey1 <path>
hammer namekey2 <path>
hammer namekey32 <path>
hammer cleanup [<filesystem> ...]
hammer abort-cleanup
hammer snapshot [<filesystem>] <snapshot-dir>
hammer snapshot <filesystem> <snapshot-dir> [<note>]
hammer prune <softlink-dir>
hammer prune-everything <filesystem>
hammer rebalance <filesystem> [saturation_percentage]
hammer reblock[-btree|-inodes|-dirs|-data] <filesystem> [fill_percentage]
",
    pfs_lines!(),
    mirror_lines!(),
    "\
hammer ssh-remote command filesystem
hammer version <filesystem>
hammer version-upgrade <filesystem> <version> [force]
hammer volume-add <device> <filesystem>
hammer volume-del <device> <filesystem>
hammer volume-list <filesystem>
hammer volume-blkdevs <filesystem>

HAMMER utility version 3+ commands:
hammer config [<filesystem> [<configfile>]]
hammer viconfig [<filesystem>]
hammer snap <path> [<note>]
hammer snaplo <path> [<note>]
hammer snapq <dir> [<note>]
hammer snaprm <path> ...
hammer snaprm <transid> ...
hammer snaprm <filesystem> <transid> ...
hammer snapls [<path> ...]

HAMMER utility version 4+ commands:
hammer -f blkdevs blockmap
hammer -f blkdevs checkmap
hammer -f blkdevs [-qqq] show [lo:objid]
hammer -f blkdevs show-undo
hammer -f blkdevs recover <target_dir> [full|quick]
hammer -f blkdevs strip

HAMMER utility version 5+ commands:
hammer dedup-simulate <filesystem>
hammer dedup <filesystem>
"
);

/// Usage for a wrong argument count of any mirror command.
pub const MIRROR_USAGE: &str = mirror_lines!();

/// Usage for the pfs-* commands.
pub const PFS_USAGE: &str = concat!(
    pfs_lines!(),
    "
options:
    sync-beg-tid=0x16llx
    sync-end-tid=0x16llx
    shared-uuid=0x16llx
    unique-uuid=0x16llx
    label=\"string\"
    snapshots=\"/path\"
    snapshots-clear
    prune-min=Nd
    prune-min=[Nd/]hh[:mm[:ss]]
"
);

/// Usage of synctid.
pub const SYNCTID_USAGE: &str = synctid_lines!();

/// The snapshot commands' usage (cli.md §13): snap, snaplo, snapq,
/// snaprm and snapshot print it for arguments they do not take.
pub const SNAPSHOT_USAGE: &str = "\
hammer snap <path> [<note>]\t\tcreate snapshot & link, points to
\t\t\t\t\tbase of PFS mount
hammer snaplo <path> [<note>]\t\tcreate snapshot & link, points to
\t\t\t\t\ttarget dir
hammer snapq <dir> [<note>]\t\tcreate snapshot, output path to stdout
hammer snaprm <path> ...\t\tdelete snapshots; filesystem is CWD
hammer snaprm <transid> ...\t\tdelete snapshots
hammer snaprm <filesystem> <transid> ...\tdelete snapshots
hammer snapls [<path> ...]\t\tlist available snapshots

NOTE: Snapshots are created in filesystem meta-data, any directory
      in a HAMMER filesystem or PFS may be specified.  If the path
      specified does not exist this function will also create a
      softlink.

      When deleting snapshots transaction ids may be directly specified
      or file paths to snapshot softlinks may be specified.  If a
      softlink is specified the softlink will also be deleted.

NOTE: The old 'hammer snapshot [<filesystem>] <snapshot-dir>' form
      is still accepted but is a deprecated form.  This form will
      work for older hammer versions.  The new forms only work for
      HAMMER version 3 or later filesystems.  HAMMER can be upgraded
      to version 3 in-place.
";

/// The prune commands' usage (cli.md §15), for any count of arguments
/// but one.
pub const PRUNE_USAGE: &str = "\
Badly formed prune command, use:
hammer prune <softlink-dir>
hammer prune-everything <filesystem>
";

/// A usage error: its text, printed on stderr, and its exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub text: &'static str,
    pub status: u8,
}

impl Usage {
    const fn of(text: &'static str) -> Usage {
        Usage { text, status: 1 }
    }

    /// The original's (cli.md §2).
    pub const GENERAL: Usage = Usage::of(USAGE);
    pub const MIRROR: Usage = Usage::of(MIRROR_USAGE);
    pub const PFS: Usage = Usage::of(PFS_USAGE);
    pub const SYNCTID: Usage = Usage::of(SYNCTID_USAGE);
    /// This tool's own commands'.
    pub const STORE_CREATE: Usage = Usage::of("hammer store-create <dir>\n");
    pub const BRIDGE: Usage = Usage::of(
        "\
hammer import [--exclude <pattern>]... [--exclude-from <file>]... [--one-file-system] <dir> <pfs-path>
hammer [-F] export <pfs-path>[@@<tid>] <dir> [<path-inside> ...]
",
    );
    pub const SPACE: Usage = Usage::of("hammer space <pfs-path> ...\n");
    /// verify's exit 1 would say problems were found: 2.
    pub const VERIFY: Usage = Usage {
        text: "hammer verify <pfs-path>[@@<tid>]\n",
        status: 2,
    };
    /// Exit 2, as verify's.
    pub const MIRROR_VERIFY: Usage = Usage {
        text: "\
hammer mirror-verify [[user@]host:]<master-pfs> [[user@]host:]<slave-pfs>
hammer mirror-verify-serve <pfs-path>
",
        status: 2,
    };
    pub const MOUNT: Usage = Usage::of(
        "\
hammer [-a] mount <pfs-path>[@@<tid>] <mountpoint>
hammer umount <mountpoint>
",
    );
    pub const S3: Usage = Usage::of(
        "hammer s3-prune s3://<bucket>[/<prefix>] [keep=<N>] [hourly=<N>] [daily=<N>] [weekly=<N>] [monthly=<N>] [yearly=<N>]\n",
    );
    pub const SNAPSHOT: Usage = Usage::of(SNAPSHOT_USAGE);
    pub const PRUNE: Usage = Usage::of(PRUNE_USAGE);
    pub const REBLOCK: Usage = Usage::of(
        "\
hammer reblock <filesystem> [fill_percentage]
hammer reblock-btree <filesystem> [fill_percentage]
hammer reblock-inodes <filesystem> [fill_percentage]
hammer reblock-dirs <filesystem> [fill_percentage]
hammer reblock-data <filesystem> [fill_percentage]
By default 100% is used.
",
    );
    pub const REBALANCE: Usage = Usage::of(
        "\
hammer rebalance <filesystem> [saturation_percentage]
saturation_percentage is 50%-100%, default is 85%.
",
    );
    pub const DEDUP: Usage = Usage::of(
        "\
hammer dedup-simulate <filesystem>
hammer dedup <filesystem>
",
    );
    pub const HELP: Usage = Usage::of("hammer help [command]\n");
    pub const COMPLETION: Usage = Usage::of("hammer completion bash|zsh|fish\n");
}

/// The options, as the overview lists them (and the completion scripts
/// describe them).
pub(super) const OPTIONS: &str = "\
Options (before the command):
  -2                two-way protocol (mirror-read, mirror-write)
  -a                mount lists @@ in its root
  -B                no prescan split of the first transfer
  -b bandwidth      mirror-read's bytes per second (k, m, g suffixes)
  -c cyclefile      where mirror-read or prune resumes
  -d                pfs-destroy without countdown
  -e scoreboardfile mirror-read's progress file
  -F                export into a non-empty directory
  -i delay          seconds between the batches of a stream (default 5)
  -j dest           JSON-lines events to a file, - (stderr) or fd:N
  -n                prune, cleanup: a dry run, telling what they would do
  -p ssh-port       ssh's port (mirror-copy, mirror-stream)
  -q, -v            quieter, more verbose
  -R cmds, -T path  restrictions (ssh-remote)
  -S splitsize      prescan chunk size (default 4g)
  -t seconds        stop mirror-read or prune after that long
  -w seconds        drop a target of several that stalls that long (300)
  -X                ssh compression
  -y                create a missing slave without asking
  -z                compress the stream with zstd (-zz, -zzz: harder)
  -A, -C, -f, -m, -r  accepted, unused
";

/// What `-h`, `--help` and `hammer help` print.
fn overview() -> String {
    let mut t = format!(
        "hammer-mirror {}: the replication commands of DragonFly BSD's hammer(8),\n\
         on HAMMER filesystems or on an embedded PFS store.\n\n\
         usage: hammer [options] command [argument ...]\n",
        env!("CARGO_PKG_VERSION")
    );
    for group in table::GROUPS {
        t.push_str(&format!("\n{}:\n", group.title));
        for e in group.entries {
            t.push_str(&format!("  hammer {}\n", e.synopsis));
        }
    }
    t.push('\n');
    t.push_str(OPTIONS);
    let others: Vec<&str> = OTHER_COMMANDS
        .iter()
        .map(|&c| {
            if c == "version" {
                "version <filesystem>"
            } else {
                c
            }
        })
        .collect();
    t.push_str(&format!(
        "\nNot implemented (other commands of DragonFly's hammer(8)): {}.\n",
        others.join(", ")
    ));
    t
}

/// Why `hammer help <name>` has nothing to say.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelpError {
    #[error("help: {0}: not implemented (a command of DragonFly's hammer(8) this tool does not provide)")]
    NotImplemented(&'static str),
    #[error("help: no such command: {0}")]
    Unknown(String),
}

/// What `hammer help [name]` prints: the overview, or for a command this
/// tool implements its usage line and what it does.
pub fn help(name: Option<&OsStr>) -> Result<String, HelpError> {
    let Some(name) = name else {
        return Ok(overview());
    };
    if let Some(e) = table::find(name) {
        return Ok(format!("usage: hammer {}\n\n{}", e.synopsis, e.help));
    }
    match OTHER_COMMANDS.iter().find(|&&c| OsStr::new(c) == name) {
        Some(c) => Err(HelpError::NotImplemented(c)),
        None => Err(HelpError::Unknown(name.to_string_lossy().into_owned())),
    }
}

/// What `hammer version` and `--version` print.
pub fn version() -> String {
    format!("hammer-mirror {}\n", env!("CARGO_PKG_VERSION"))
}

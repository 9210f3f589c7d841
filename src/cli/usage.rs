//! What the command line prints about itself: the original's usage texts,
//! printed on a usage error as it prints them (cli.md §2), those of this
//! tool's own commands, and the help (`-h`, `--help`, `hammer help
//! [command]`) and version, which tell what this tool implements.

use std::ffi::OsStr;

use super::command::OTHER_COMMANDS;

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

/// Usage of the store's own command.
pub const STORE_CREATE_USAGE: &str = "hammer store-create <dir>\n";

/// Usage of import and export.
pub const BRIDGE_USAGE: &str = "\
hammer import <dir> <pfs-path>
hammer [-F] export <pfs-path>[@@<tid>] <dir>
";

/// Usage of verify (its exit status is 2: 1 would say problems were found).
pub const VERIFY_USAGE: &str = "hammer verify <pfs-path>[@@<tid>]\n";

/// Usage of mirror-verify (exit 2, as verify's).
pub const MIRROR_VERIFY_USAGE: &str = "\
hammer mirror-verify [[user@]host:]<master-pfs> [[user@]host:]<slave-pfs>
hammer mirror-verify-serve <pfs-path>
";

/// Usage of mount and umount.
pub const MOUNT_USAGE: &str = "\
hammer [-a] mount <pfs-path>[@@<tid>] <mountpoint>
hammer umount <mountpoint>
";

/// Usage of s3-prune.
pub const S3_USAGE: &str = "hammer s3-prune s3://<bucket>[/<prefix>] keep=<N>\n";

/// Usage of snapls.
pub const SNAPLS_USAGE: &str = "hammer snapls <pfs-path> ...\n";

/// Usage of help.
pub const HELP_USAGE: &str = "hammer help [command]\n";

/// A command this tool implements, as help shows it.
pub struct CommandHelp {
    pub name: &'static str,
    /// Its usage line after `hammer `.
    pub synopsis: &'static str,
    /// What `hammer help <name>` says beneath the usage line.
    pub text: &'static str,
}

const fn cmd(name: &'static str, synopsis: &'static str, text: &'static str) -> CommandHelp {
    CommandHelp {
        name,
        synopsis,
        text,
    }
}

/// The commands, in groups, as the overview lists them.
pub const COMMANDS: &[(&str, &[CommandHelp])] = &[
    (
        "Mirroring",
        &[
            cmd(
                "mirror-read",
                "mirror-read <filesystem> [begin-tid]",
                "\
Writes the mirror stream of PFS <filesystem> to standard output, which
may not be a terminal: per batch two PFSD records, the REC, PASS and SKIP
records of its TID range, and SYNC (IDLE when there was nothing to send);
TERM ends the stream. The first transfer is cut into batches of about -S
bytes by a prescan (-B: none). begin-tid (0x hex, leading 0 octal) is
where the first batch starts. With -2 the target's replies are read from
standard input. -z writes the stream compressed (this tool's format).
Options: -2 -B -b bandwidth -c cyclefile -e scoreboardfile -q -S splitsize
-t seconds -v -z
",
            ),
            cmd(
                "mirror-read-stream",
                "mirror-read-stream <filesystem> [begin-tid]",
                "\
As mirror-read, then waits for new data and sends it, at most one batch
every -i seconds (default 5), until it is killed.
Options: those of mirror-read, -i delay
",
            ),
            cmd(
                "mirror-write",
                "mirror-write <filesystem>",
                "\
Applies the mirror stream on standard input to the slave PFS
<filesystem>, moving its sync point at each SYNC and printing
\"Source can update synctid to 0x<tid>\" on standard output (with -2 an
UPDATE record goes back instead). A missing slave is created, sharing the
source's uuid, after a question on /dev/tty, or at once with -y. -z
reads a compressed stream.
Options: -2 -q -v -y -z
",
            ),
            cmd(
                "mirror-dump",
                "mirror-dump [header] [s3://<bucket>[/<prefix>][@@<tid>]]",
                "\
Decodes the mirror stream on standard input and prints its REC, PASS and
SKIP records, two lines each; with header, the PFS block of its first
record. A stream that does not end after a TERM or a complete batch makes
it exit 1. -z reads a compressed stream. Given a chain in object storage,
it dumps the chain's objects up to <tid> (all by default), in order,
each checked against the chain's manifest.
",
            ),
            cmd(
                "mirror-copy",
                "mirror-copy [[user@]host:]<filesystem> [[user@]host:]<filesystem>",
                "\
Copies the first PFS to the second in two-way mode: a local side runs in
this process, a remote side is hammer run over ssh (or $HAMMER_RSH). A
missing target slave is created (-y: without asking). Exit status: 0;
1 refused arguments or no channel; 2 the source failed; 3 the target
failed; 4 both failed, each on its own.
With two to six targets the source is read once for all; a target that
fails is dropped and the others go on; exit 16 + a bit per failed target
(1 for the first, 2 for the second, 4 for the third, ...).
Options: those of mirror-read and mirror-write, -p ssh-port, -X (ssh
compression), -z (zstd between a local and a remote side, or two remote
ones; the remote hammer must be this tool)
A side may be a chain in object storage, s3://<bucket>[/<prefix>]: to
it, the PFS's changes since the chain's end are stored as one object and
the chain's manifest names it (exit 2 the PFS could not be read, 3 the
upload failed); from it, s3://...[@@<tid>] applies the chain up to <tid>
(default: its end) to a slave (exit 2 the chain could not be read, 3 the
slave refused it). -z stores the object compressed. Credentials and
region come from the AWS environment variables or ~/.aws profiles, the
server from HAMMER_S3_ENDPOINT.
",
            ),
            cmd(
                "mirror-stream",
                "mirror-stream [[user@]host:]<filesystem> [[user@]host:]<filesystem>",
                "\
As mirror-copy with a streaming source, reconnecting 15 seconds plus -i
after a lost link. It stops, with the copy's exit status, when a side
fails in a way no reconnection can mend.
Options: those of mirror-copy, -i delay
",
            ),
            cmd(
                "ssh-remote",
                "ssh-remote <command[,command...]> <path-prefix>",
                "\
For a forced command in authorized_keys: runs $SSH_ORIGINAL_COMMAND in
this process, admitting only the listed commands, paths whose PFS is
named inside <path-prefix>, the options -2 -v -q -y -t -S -B -i -b -z,
and words without shell syntax.
",
            ),
        ],
    ),
    (
        "PFSes",
        &[
            cmd(
                "pfs-status",
                "pfs-status [<dirpath> ...]",
                "\
Prints the id and configuration of the PFS of each path (default: .).
",
            ),
            cmd(
                "pfs-master",
                "pfs-master <dirpath> [options]",
                "\
Creates a master PFS and its link <dirpath>, then applies the options as
pfs-update does.
",
            ),
            cmd(
                "pfs-slave",
                "pfs-slave <dirpath> [options]",
                "\
Creates a slave PFS and its link <dirpath>, then applies the options as
pfs-update does.
",
            ),
            cmd(
                "pfs-update",
                "pfs-update <dirpath> [options]",
                "\
Changes the configuration of a PFS. Options: sync-beg-tid=<hex tid>,
sync-end-tid=<hex tid>, shared-uuid=<uuid>, unique-uuid=<uuid>,
label=<string>, snapshots=</path>, snapshots-clear,
prune-min=Nd or prune-min=[Nd/]hh[:mm[:ss]].
",
            ),
            cmd(
                "pfs-upgrade",
                "pfs-upgrade <dirpath>",
                "\
Makes a slave PFS a master, rolled back to its sync point.
",
            ),
            cmd(
                "pfs-downgrade",
                "pfs-downgrade <dirpath>",
                "\
Makes a master PFS a slave.
",
            ),
            cmd(
                "pfs-destroy",
                "pfs-destroy <dirpath>",
                "\
Destroys a PFS and removes its link, after one question (two for a
master) answered on standard input and a five-second countdown (-d: none).
",
            ),
            cmd(
                "synctid",
                "synctid <filesystem> [quick]",
                "\
Prints the TID up to which everything on the filesystem is durable
(quick: after one flush instead of two).
",
            ),
        ],
    ),
    (
        "Embedded store and plain files",
        &[
            cmd(
                "store-create",
                "store-create <dir>",
                "\
Makes an embedded PFS store, holding PFS#0, in the new or empty directory
<dir>, for hosts without HAMMER.
",
            ),
            cmd(
                "import",
                "import <dir> <pfs-path>",
                "\
Writes the tree <dir> into a master PFS of a store as one new TID;
unchanged files cost nothing, removed ones get a delete TID.
Options: -q
",
            ),
            cmd(
                "export",
                "[-F] export <pfs-path>[@@<tid>] <dir>",
                "\
Writes a PFS of a store as of <tid> (default: a slave's sync point, a
master's newest state) into the new or empty directory <dir> (-F: into a
non-empty one). <pfs-path> may be a chain, s3://<bucket>[/<prefix>]
[@@<tid>]: it is applied to a temporary store beside <dir>, removed after.
Options: -F -q
",
            ),
            cmd(
                "snapls",
                "snapls <pfs-path> ...",
                "\
Lists the TIDs a PFS of a store can be exported as of, oldest first, with
their time (UTC) and what changed.
",
            ),
            cmd(
                "mount",
                "[-a] mount <pfs-path>[@@<tid>] <mountpoint>",
                "\
Shows a store PFS read-only through FUSE, as of <tid> or, without one,
following its sync point; its root's `@@` directory holds one directory
per TID at which the PFS changed, each the tree as of that TID. `@@` is
reached by name and not listed (find, du, tar, rsync and cp -a walk the
tree alone) unless -a is given. Runs in the foreground until unmounted
(`hammer umount`, or SIGINT/SIGTERM).
Options: -a
",
            ),
            cmd(
                "umount",
                "umount <mountpoint>",
                "\
Unmounts what `hammer mount` mounted there; one left by a killed
`hammer mount` is detached, even with a process still inside it.
",
            ),
            cmd(
                "verify",
                "verify <pfs-path>[@@<tid>]",
                "\
Checks a PFS as of <tid> (default: its sync point) without writing: every
record's payload and CRC, key order and TIDs, the file tree, and on a store
its database and payload files. Exit 0 clean, 1 problems found, 2 cannot
read. Given a chain, s3://<bucket>[/<prefix>], it reads every object and
checks its size and checksum against the manifest, every record's CRC, the
shared uuid and the TID each object ends at, one line per object.
",
            ),
            cmd(
                "mirror-verify",
                "mirror-verify [[user@]host:]<master-pfs> [[user@]host:]<slave-pfs>",
                "\
Proves a slave holds what its master holds as of the slave's sync point,
and that verify finds nothing wrong with either, without writing either
and without moving the data: each side runs verify's checks on its
records and hashes them into a tree over the key space, the trees are
compared top-down and only the ranges that differ are compared record by
record. A remote side is reached by ssh as mirror-copy reaches one (-p,
-X, $HAMMER_RSH). Prints each side's problems (verify's lines), each
differing record, and `identical as of <tid>` only when there are none,
else a summary; -v adds the bytes exchanged with each side. Exit 0
identical, 1 different or problems found, 2 error.
",
            ),
            cmd(
                "mirror-verify-serve",
                "mirror-verify-serve <pfs-path>",
                "\
One PFS's side of a mirror-verify, which runs it through ssh on the host
holding the PFS; it speaks mirror-verify's protocol on stdin and stdout
and never writes the PFS. Admitted by ssh-remote, and confined by -T, as
the mirror commands are.
",
            ),
        ],
    ),
    (
        "Off-site copies in object storage",
        &[cmd(
            "s3-prune",
            "s3-prune s3://<bucket>[/<prefix>] keep=<N>",
            "\
Merges a chain's base and all but its newest <N> increments into a new
base (through a temporary store in the current directory), then deletes
the objects it replaced; the restore points before the new base are gone.
The manifest names the new base before anything is deleted. -z
compresses the new base.
",
        )],
    ),
    (
        "This help and the version",
        &[
            cmd(
                "help",
                "help [command]",
                "\
Prints the overview of the commands, or what one of them does; so do
-h, --help and <command> --help.
",
            ),
            cmd(
                "version",
                "version",
                "\
Prints this tool's version; so does --version. (version <filesystem>,
the HAMMER version of a filesystem, is not implemented.)
",
            ),
        ],
    ),
];

/// The options, as the overview lists them.
const OPTIONS: &str = "\
Options (before the command):
  -2                two-way protocol (mirror-read, mirror-write)
  -a                mount lists @@ in its root
  -B                no prescan split of the first transfer
  -b bandwidth      mirror-read's bytes per second (k, m, g suffixes)
  -c cyclefile      where mirror-read resumes
  -d                pfs-destroy without countdown
  -e scoreboardfile mirror-read's progress file
  -F                export into a non-empty directory
  -i delay          seconds between the batches of a stream (default 5)
  -j dest           JSON-lines events to a file, - (stderr) or fd:N
  -p ssh-port       ssh's port (mirror-copy, mirror-stream)
  -q, -v            quieter, more verbose
  -R cmds, -T path  restrictions (ssh-remote)
  -S splitsize      prescan chunk size (default 4g)
  -t seconds        stop mirror-read after that long
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
    for (group, commands) in COMMANDS {
        t.push_str(&format!("\n{group}:\n"));
        for c in *commands {
            t.push_str(&format!("  hammer {}\n", c.synopsis));
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
    let found = COMMANDS
        .iter()
        .flat_map(|(_, commands)| commands.iter())
        .find(|c| OsStr::new(c.name) == name);
    if let Some(c) = found {
        return Ok(format!("usage: hammer {}\n\n{}", c.synopsis, c.text));
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

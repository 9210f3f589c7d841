//! The command table: each command word this tool implements, declared
//! once with its synopsis and help, the usage a wrong count of its
//! arguments prints, what ssh-remote's `-T` admits of it, the parser that
//! makes its typed `Command` and the handler that runs it. The help, the
//! usage errors, the `-T` checks and the dispatcher all read it; so do the
//! checks of the manual and the README (tests/docs.rs).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

use super::command::Command::{self, *};
use super::command::{
    arg, import, mirror_copy, mirror_dump, mirror_read, path_and_options, retain_terms, snap,
    snapls, snapshot, SnapKind,
};
use super::completion::Shell;
use super::usage::Usage;
use crate::commands::{
    self, abort, bridge, chain, cleanup, config, mirror, mount, pfs, prune, reblock, snap, space,
    verify, Context, Failure,
};
use crate::patharg::Place;

/// One command word.
pub struct Entry {
    pub word: &'static str,
    /// Its usage line in the help, after `hammer `.
    pub synopsis: &'static str,
    /// What `hammer help <word>` says beneath that line.
    pub help: &'static str,
    /// What a wrong count of its arguments prints (the original's texts
    /// for the original's commands, cli.md §2).
    pub usage: Usage,
    pub remote: Remote,
    /// Its arguments as a typed command; `None`: not arguments it takes.
    pub parse: fn(&[OsString]) -> Option<Command>,
    pub run: Handler,
}

/// Runs a command its entry parsed.
pub type Handler = fn(&Context<'_>, &Command) -> Result<(), Failure>;

/// What ssh-remote's `-T` admits of a command (protocol.md §11): it is
/// checked before the command does anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remote {
    /// Refused whatever its arguments: they are not PFS paths `-T` can
    /// confine, or the command reaches beyond this host's PFSes.
    Refused,
    /// Admitted: the PFS each of `paths` opens must be named inside the
    /// prefix; with `creates`, a path that does not exist yet may be
    /// named by where its link would be made.
    Confined { paths: Paths, creates: bool },
}

impl Remote {
    /// Its first argument opens a PFS.
    pub const OPENS_FIRST: Remote = Remote::Confined {
        paths: Paths::First,
        creates: false,
    };
    /// Its first argument opens a PFS, or names one it creates.
    pub const CREATES_FIRST: Remote = Remote::Confined {
        paths: Paths::First,
        creates: true,
    };
    /// Each argument opens a PFS (`.` without one).
    pub const OPENS_EACH: Remote = Remote::Confined {
        paths: Paths::Each,
        creates: false,
    };
    /// No argument opens anything.
    pub const OPENS_NONE: Remote = Remote::Confined {
        paths: Paths::None,
        creates: false,
    };
}

/// Which arguments of a command open a PFS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paths {
    None,
    First,
    /// Each of them; `.` when there is none (pfs-status's default).
    Each,
}

/// The entries under one heading of the help.
pub struct Group {
    pub title: &'static str,
    pub entries: &'static [Entry],
}

/// Entries are the same when they are the same entry of the table.
impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Entry {}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Entry({})", self.word)
    }
}

/// A handler that takes the variants its entry's parser makes, bound by
/// these patterns.
macro_rules! handler {
    (|$cx:ident| $($variant:pat => $run:expr),+ $(,)?) => {
        |$cx, command| match command {
            $($variant => $run,)+
            _ => unreachable!("an entry runs only what its own parser made"),
        }
    };
    ($($variant:pat => $run:expr),+ $(,)?) => {
        handler!(|_cx| $($variant => $run),+)
    };
}

/// The groups, as the overview lists them.
pub static GROUPS: &[Group] = &[
    Group {
        title: "Mirroring",
        entries: MIRRORING,
    },
    Group {
        title: "PFSes",
        entries: PFSES,
    },
    Group {
        title: "Snapshots, configuration and pruning",
        entries: SNAPSHOTS,
    },
    Group {
        title: "Embedded store and plain files",
        entries: STORE,
    },
    Group {
        title: "Off-site copies in object storage",
        entries: OBJECT_STORAGE,
    },
    Group {
        title: "This help, the version and shell completion",
        entries: HELP,
    },
];

const MIRRORING: &[Entry] = &[
    Entry {
        word: "mirror-read",
        synopsis: "mirror-read <filesystem> [begin-tid]",
        help: "\
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
        usage: Usage::MIRROR,
        remote: Remote::OPENS_FIRST,
        parse: |a| mirror_read(a, false),
        run: handler!(|cx| MirrorRead { fs, begin_tid } => mirror::read(cx, fs, *begin_tid, false)),
    },
    Entry {
        word: "mirror-read-stream",
        synopsis: "mirror-read-stream <filesystem> [begin-tid]",
        help: "\
As mirror-read, then waits for new data and sends it, at most one batch
every -i seconds (default 5), until it is killed.
Options: those of mirror-read, -i delay
",
        usage: Usage::MIRROR,
        remote: Remote::OPENS_FIRST,
        parse: |a| mirror_read(a, true),
        run: handler!(|cx| MirrorReadStream { fs, begin_tid } => mirror::read(cx, fs, *begin_tid, true)),
    },
    Entry {
        word: "mirror-write",
        synopsis: "mirror-write <filesystem>",
        help: "\
Applies the mirror stream on standard input to the slave PFS
<filesystem>, moving its sync point at each SYNC and printing
\"Source can update synctid to 0x<tid>\" on standard output (with -2 an
UPDATE record goes back instead). A missing slave is created, sharing the
source's uuid, after a question on /dev/tty, or at once with -y. -z
reads a compressed stream.
Options: -2 -q -v -y -z
",
        usage: Usage::MIRROR,
        remote: Remote::CREATES_FIRST,
        parse: |a| match a {
            [fs] => Some(MirrorWrite { fs: arg(fs) }),
            _ => None,
        },
        run: handler!(|cx| MirrorWrite { fs } => mirror::write(cx, fs)),
    },
    Entry {
        word: "mirror-dump",
        synopsis: "mirror-dump [header] [s3://<bucket>[/<prefix>][@@<tid>]]",
        help: "\
Decodes the mirror stream on standard input and prints its REC, PASS and
SKIP records, two lines each; with header, the PFS block of its first
record. A stream that does not end after a TERM or a complete batch makes
it exit 1. -z reads a compressed stream. Given a chain in object storage,
it dumps the chain's objects up to <tid> (all by default), in order,
each checked against the chain's manifest.
",
        usage: Usage::MIRROR,
        remote: Remote::OPENS_NONE,
        parse: mirror_dump,
        run: handler!(|cx| MirrorDump { header, chain } => mirror::dump(cx, *header, chain.as_deref())),
    },
    Entry {
        word: "mirror-copy",
        synopsis: "mirror-copy [[user@]host:]<filesystem> [[user@]host:]<filesystem>",
        help: "\
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
        usage: Usage::MIRROR,
        remote: Remote::Refused,
        parse: |a| mirror_copy(a, false),
        run: handler!(|cx|
            MirrorCopy { source, target } => mirror::copy(cx, source, target, false),
            MirrorFanout { source, targets, stream } => mirror::fanout(cx, source, targets, *stream),
        ),
    },
    Entry {
        word: "mirror-stream",
        synopsis: "mirror-stream [[user@]host:]<filesystem> [[user@]host:]<filesystem>",
        help: "\
As mirror-copy with a streaming source, reconnecting 15 seconds plus -i
after a lost link. It stops, with the copy's exit status, when a side
fails in a way no reconnection can mend.
Options: those of mirror-copy, -i delay
",
        usage: Usage::MIRROR,
        remote: Remote::Refused,
        parse: |a| mirror_copy(a, true),
        run: handler!(|cx|
            MirrorStream { source, target } => mirror::copy(cx, source, target, true),
            MirrorFanout { source, targets, stream } => mirror::fanout(cx, source, targets, *stream),
        ),
    },
    Entry {
        word: "ssh-remote",
        synopsis: "ssh-remote <command[,command...]> <path-prefix>",
        help: "\
For a forced command in authorized_keys: runs $SSH_ORIGINAL_COMMAND in
this process, admitting only the listed commands, paths whose PFS is
named inside <path-prefix>, the options -2 -v -q -y -t -S -B -i -b -z,
and words without shell syntax.
",
        usage: Usage::GENERAL,
        remote: Remote::Refused,
        parse: |a| match a {
            [commands, prefix] => Some(SshRemote {
                commands: commands.clone(),
                prefix: prefix.into(),
            }),
            _ => None,
        },
        run: handler!(|cx| SshRemote { commands, prefix } => commands::ssh_remote(cx, commands, prefix)),
    },
];

const PFSES: &[Entry] = &[
    Entry {
        word: "pfs-status",
        synopsis: "pfs-status [<dirpath> ...]",
        help: "\
Prints the id and configuration of the PFS of each path (default: .).
",
        usage: Usage::PFS,
        remote: Remote::OPENS_EACH,
        parse: |a| match a {
            [] => Some(PfsStatus {
                paths: vec![".".into()],
            }),
            words => Some(PfsStatus {
                paths: words.iter().map(arg).collect(),
            }),
        },
        run: handler!(PfsStatus { paths } => pfs::on_stdout(|out| pfs::pfs_status(paths, out))),
    },
    Entry {
        word: "pfs-master",
        synopsis: "pfs-master <dirpath> [options]",
        help: "\
Creates a master PFS and its link <dirpath>, then applies the options as
pfs-update does.
",
        usage: Usage::PFS,
        remote: Remote::CREATES_FIRST,
        parse: |a| path_and_options(a).map(|(path, options)| PfsMaster { path, options }),
        run: handler!(PfsMaster { path, options } => pfs::create(path, options, false)),
    },
    Entry {
        word: "pfs-slave",
        synopsis: "pfs-slave <dirpath> [options]",
        help: "\
Creates a slave PFS and its link <dirpath>, then applies the options as
pfs-update does.
",
        usage: Usage::PFS,
        remote: Remote::CREATES_FIRST,
        parse: |a| path_and_options(a).map(|(path, options)| PfsSlave { path, options }),
        run: handler!(PfsSlave { path, options } => pfs::create(path, options, true)),
    },
    Entry {
        word: "pfs-update",
        synopsis: "pfs-update <dirpath> [options]",
        help: "\
Changes the configuration of a PFS. Options: sync-beg-tid=<hex tid>,
sync-end-tid=<hex tid>, shared-uuid=<uuid>, unique-uuid=<uuid>,
label=<string>, snapshots=</path>, snapshots-clear,
prune-min=Nd or prune-min=[Nd/]hh[:mm[:ss]].
",
        usage: Usage::PFS,
        remote: Remote::OPENS_FIRST,
        parse: |a| path_and_options(a).map(|(path, options)| PfsUpdate { path, options }),
        run: handler!(PfsUpdate { path, options } => pfs::on_stdout(|out| pfs::pfs_update(path, options, out))),
    },
    Entry {
        word: "pfs-upgrade",
        synopsis: "pfs-upgrade <dirpath>",
        help: "\
Makes a slave PFS a master, rolled back to its sync point.
",
        usage: Usage::PFS,
        remote: Remote::OPENS_FIRST,
        parse: // Extra arguments are ignored (cli.md §2).
        |a| a.first().map(|path| PfsUpgrade { path: arg(path) }),
        run: handler!(PfsUpgrade { path } => pfs::on_stdout(|out| pfs::pfs_upgrade(path, out))),
    },
    Entry {
        word: "pfs-downgrade",
        synopsis: "pfs-downgrade <dirpath>",
        help: "\
Makes a master PFS a slave.
",
        usage: Usage::PFS,
        remote: Remote::OPENS_FIRST,
        parse: |a| a.first().map(|path| PfsDowngrade { path: arg(path) }),
        run: handler!(PfsDowngrade { path } => pfs::on_stdout(|out| pfs::pfs_downgrade(path, out))),
    },
    Entry {
        word: "pfs-destroy",
        synopsis: "pfs-destroy <dirpath>",
        help: "\
Destroys a PFS and removes its link, after one question (two for a
master) answered on standard input and a five-second countdown (-d: none).
",
        usage: Usage::PFS,
        remote: Remote::OPENS_FIRST,
        parse: |a| a.first().map(|path| PfsDestroy { path: arg(path) }),
        run: handler!(|cx| PfsDestroy { path } => pfs::destroy(cx, path)),
    },
    Entry {
        word: "synctid",
        synopsis: "synctid <filesystem> [quick]",
        help: "\
Prints the TID up to which everything on the filesystem is durable
(quick: after one flush instead of two).
",
        usage: Usage::SYNCTID,
        remote: Remote::OPENS_FIRST,
        parse: |a| match a {
            [fs] => Some(Synctid {
                fs: arg(fs),
                quick: false,
            }),
            [fs, q] if q == "quick" => Some(Synctid {
                fs: arg(fs),
                quick: true,
            }),
            _ => None,
        },
        run: handler!(Synctid { fs, quick } => pfs::on_stdout(|out| pfs::synctid(fs, *quick, out))),
    },
];

const SNAPSHOTS: &[Entry] = &[
    Entry {
        word: "snap",
        synopsis: "snap <path> [<note>]",
        help: "\
Records a snapshot of the PFS holding <path>, with <note>, at its sync
point (after a synctid) and makes a softlink to it, leading to the
snapshot of the filesystem's mount point: <path> itself when it does not
exist, else snap-<date>-<time> in the directory <path>. On a store the
snapshot is recorded only (a store keeps no softlinks), which a line on
standard error says (-q: not).
",
        usage: Usage::SNAPSHOT,
        remote: Remote::OPENS_FIRST,
        parse: |a| snap(a, SnapKind::Base),
        run: handler!(|cx| Snap { path, note, kind } => snap::snap(cx, path, note.as_deref(), *kind)),
    },
    Entry {
        word: "snaplo",
        synopsis: "snaplo <path> [<note>]",
        help: "\
As snap, the softlink leading to the snapshot of the directory itself.
",
        usage: Usage::SNAPSHOT,
        remote: Remote::OPENS_FIRST,
        parse: |a| snap(a, SnapKind::Local),
        run: handler!(|cx| Snap { path, note, kind } => snap::snap(cx, path, note.as_deref(), *kind)),
    },
    Entry {
        word: "snapq",
        synopsis: "snapq <dir> [<note>]",
        help: "\
Records a snapshot of the PFS holding <dir>, with <note>, and prints the
path of <dir> as of it, <dir>@@0x<tid>, which export, mount and verify
take; no softlink.
",
        usage: Usage::SNAPSHOT,
        remote: Remote::OPENS_FIRST,
        parse: |a| snap(a, SnapKind::Query),
        run: handler!(|cx| Snap { path, note, kind } => snap::snap(cx, path, note.as_deref(), *kind)),
    },
    Entry {
        word: "snapshot",
        synopsis: "snapshot [<filesystem>] <snapshot-dir> [<note>]",
        help: "\
The older form: records a snapshot of <filesystem> (default: the one
holding <snapshot-dir>) and makes the softlink snap-<date>-<time> in the
directory <snapshot-dir>, or, when <snapshot-dir> does not exist, the
softlink named by it as a strftime(3) format, leading to
<filesystem>/@@0x<tid>; prints the softlink's path. A <note> needs the
<filesystem>.
",
        usage: Usage::SNAPSHOT,
        remote: Remote::Refused,
        parse: snapshot,
        run: handler!(Snapshot { filesystem, dir, note } => snap::snapshot(filesystem.as_deref(), dir, note.as_deref())),
    },
    Entry {
        word: "snaprm",
        synopsis: "snaprm <path>|<transaction_id> ...",
        help: "\
Deletes snapshots: each softlink given and its snapshot, each TID given
(of the PFS holding the current directory), or the TIDs given after a
PFS or directory: snaprm <filesystem> <transaction_id> ...
",
        usage: Usage::SNAPSHOT,
        remote: Remote::Refused,
        parse: |a| (!a.is_empty()).then(|| Snaprm { args: a.to_vec() }),
        run: handler!(Snaprm { args } => snap::snaprm(args)),
    },
    Entry {
        word: "snapls",
        synopsis: "snapls [--changes] [<path> ...]",
        help: "\
Lists the snapshots of the PFS holding each <path> (default: .), with
their time and note. With --changes, instead, every TID at which a PFS of
a store changed (each import, each change a slave received, each sync
point it reached), with what changed: all of them can be exported as of.
",
        usage: Usage::SNAPSHOT,
        remote: Remote::OPENS_EACH,
        parse: snapls,
        run: handler!(Snapls { paths, changes } => snap::snapls(paths, *changes)),
    },
    Entry {
        word: "config",
        synopsis: "config [<filesystem> [<configfile>]]",
        help: "\
Prints the configuration text of the PFS holding <filesystem> (default:
.), or with <configfile> replaces it by that file's text (at most 1022
bytes). The text is the PFS's own: mirroring neither sends nor changes it.
",
        usage: Usage::GENERAL,
        remote: Remote::Refused,
        parse: |a| {
            Some(Config {
                fs: a.first().map(arg),
                file: a.get(1).map(arg),
            })
        },
        run: handler!(Config { fs, file } => config::config(fs.as_deref(), file.as_deref())),
    },
    Entry {
        word: "viconfig",
        synopsis: "viconfig [<filesystem>]",
        help: "\
Edits the configuration text of the PFS holding <filesystem> (default: .)
with $EDITOR, else $VISUAL, else vi (split at blanks, run without a
shell), on a temporary copy holding the original's defaults when there is
none, and installs it if the editor wrote it.
",
        usage: Usage::GENERAL,
        remote: Remote::Refused,
        parse: |a| {
            Some(Viconfig {
                fs: a.first().map(arg),
                too_many: a.len() > 1,
            })
        },
        run: handler!(Viconfig { fs, too_many } => config::viconfig(fs.as_deref(), *too_many)),
    },
    Entry {
        word: "cleanup",
        synopsis: "cleanup [<filesystem> ...]",
        help: "\
Runs the directives of each PFS's configuration (hammer config): takes
and expires snapshots, prunes, reblocks, each once its period has passed
since its last successful run (-F: whatever the period), within its
max-runtime. A store's root stands for all its PFSes; without an argument,
the HAMMER mounts. Default configuration, written on the first run:
snapshots 1d 60d, prune 1d 5m, rebalance 1d 5m, reblock 1d 5m, recopy 30d
10m. `snapshots <period> <retention> [any] [hourly=N] [daily=N]
[weekly=N] [monthly=N] [yearly=N]` spares the grid's snapshots from the
expiry. Period and cycle files go to the PFS's snapshots directory
(pfs-status names it). Exit 1 when a PFS or a step failed. -n (on a
store) changes nothing and tells what each step that is due would do:
the snapshots it would take and expire, what prune would remove and
reblock give back. hammer abort-cleanup stops a running cleanup.
Options: -F -n -q -v -j file
",
        usage: Usage::GENERAL,
        remote: Remote::Refused,
        parse: |a| {
            Some(Cleanup {
                paths: a.iter().map(arg).collect(),
            })
        },
        run: handler!(|cx| Cleanup { paths } => cleanup::cleanup(cx, paths)),
    },
    Entry {
        word: "abort-cleanup",
        synopsis: "abort-cleanup",
        help: "\
Stops every running cleanup: each one holds its pidfile
hammer.cleanup.<pid>, locked, in /var/run (else $XDG_RUNTIME_DIR, else
/tmp/hammer-<uid>; $HAMMER_RUNDIR in place of all three), and gets
SIGTERM (`Terminated cleanup process <pid>`); every pidfile, live or
stale, is removed. The store is sound after a cleanup killed at any point;
the next cleanup does what this one left.
",
        usage: Usage::GENERAL,
        remote: Remote::Refused,
        // The original ignores arguments; a path here would read as
        // naming one cleanup, while every one is stopped.
        parse: |a| a.is_empty().then_some(AbortCleanup),
        run: handler!(AbortCleanup => abort::abort_cleanup()),
    },
    Entry {
        word: "prune",
        synopsis: "prune <softlink-dir>",
        help: "\
Destroys the history of a PFS that no snapshot keeps: the snapshots are
the softlinks ...@@0x<tid> in <softlink-dir> (all into one PFS) and that
PFS's snapshot records; given a PFS (or a directory without softlinks),
its records alone. History after the newest snapshot stays, and so does
any younger than the PFS's prune-min. Prints the buckets and the
statistics. -t seconds stops it after that long (resumed by the next run
with the same -c cyclefile). -n (on a store) changes nothing and tells
what it would remove and how much a reblock after it would give back;
-n -v lists each record with its path.
Options: -c cyclefile -n -t seconds -v
",
        usage: Usage::PRUNE,
        remote: Remote::OPENS_FIRST,
        parse: |a| match a {
            [path] => Some(Prune {
                path: arg(path),
                everything: false,
            }),
            _ => None,
        },
        run: handler!(|cx| Prune { path, everything } => prune::prune(cx, path, *everything)),
    },
    Entry {
        word: "prune-everything",
        synopsis: "prune-everything <filesystem>",
        help: "\
Destroys all the history of the PFS <filesystem> and deletes its snapshot
records (not softlinks): only its live state is left. -n (on a store)
changes nothing and tells what it would remove, as for prune.
Options: -c cyclefile -n -t seconds -v
",
        usage: Usage::PRUNE,
        remote: Remote::OPENS_FIRST,
        parse: |a| match a {
            [path] => Some(Prune {
                path: arg(path),
                everything: true,
            }),
            _ => None,
        },
        run: handler!(|cx| Prune { path, everything } => prune::prune(cx, path, *everything)),
    },
    Entry {
        word: "reblock",
        synopsis: "reblock <filesystem> [fill_percentage]",
        help: "\
Packs the PFS <filesystem> into less space: on a store, copies the
payloads its records still name into a new payload file that replaces
the old one (online: readers and writers go on), and gives the database's
free pages back. fill_percentage (default 100) reblocks the payload file
only when at least 100 - fill_percentage percent of it is free. -t
seconds stops it after that long; a copy cut short is dropped and the
next run (-c cyclefile records where it stopped) starts over.
Options: -c cyclefile -t seconds
",
        usage: Usage::REBLOCK,
        remote: Remote::OPENS_FIRST,
        parse: |a| reblock_args(a, crate::pfs::reblock::DO_FLAGS),
        run: handler!(|cx| Reblock { path, what, fill } => reblock::reblock(cx, path, *what, *fill)),
    },
    Entry {
        word: "reblock-btree",
        synopsis: "reblock-btree <filesystem> [fill_percentage]",
        help: "\
As reblock, the B-Tree only: on a store, the database's free pages.
Options: -c cyclefile -t seconds
",
        usage: Usage::REBLOCK,
        remote: Remote::OPENS_FIRST,
        parse: |a| reblock_args(a, crate::pfs::reblock::DO_BTREE),
        run: handler!(|cx| Reblock { path, what, fill } => reblock::reblock(cx, path, *what, *fill)),
    },
    Entry {
        word: "reblock-inodes",
        synopsis: "reblock-inodes <filesystem> [fill_percentage]",
        help: "\
As reblock, the inodes only: on a store they live in the database, so
as reblock-btree.
Options: -c cyclefile -t seconds
",
        usage: Usage::REBLOCK,
        remote: Remote::OPENS_FIRST,
        parse: |a| reblock_args(a, crate::pfs::reblock::DO_INODES),
        run: handler!(|cx| Reblock { path, what, fill } => reblock::reblock(cx, path, *what, *fill)),
    },
    Entry {
        word: "reblock-dirs",
        synopsis: "reblock-dirs <filesystem> [fill_percentage]",
        help: "\
As reblock, the directory entries only: on a store they live in the
database, so as reblock-btree.
Options: -c cyclefile -t seconds
",
        usage: Usage::REBLOCK,
        remote: Remote::OPENS_FIRST,
        parse: |a| reblock_args(a, crate::pfs::reblock::DO_DIRS),
        run: handler!(|cx| Reblock { path, what, fill } => reblock::reblock(cx, path, *what, *fill)),
    },
    Entry {
        word: "reblock-data",
        synopsis: "reblock-data <filesystem> [fill_percentage]",
        help: "\
As reblock, the data only: on a store, the payload file.
Options: -c cyclefile -t seconds
",
        usage: Usage::REBLOCK,
        remote: Remote::OPENS_FIRST,
        parse: |a| reblock_args(a, crate::pfs::reblock::DO_DATA),
        run: handler!(|cx| Reblock { path, what, fill } => reblock::reblock(cx, path, *what, *fill)),
    },
    Entry {
        word: "rebalance",
        synopsis: "rebalance <filesystem> [saturation_percentage]",
        help: "\
On HAMMER, rebalances the B-Tree of the filesystem. On a store it says
there is nothing to do (SQLite keeps its B-Tree balanced).
",
        usage: Usage::REBALANCE,
        remote: Remote::Refused,
        parse: |a| match a {
            [path] => Some(NothingToDo {
                word: "rebalance",
                path: arg(path),
            }),
            [path, pct] => {
                let (p, _) = crate::cparse::strtol(pct.as_encoded_bytes(), 0);
                (50..=100).contains(&p).then(|| NothingToDo {
                    word: "rebalance",
                    path: arg(path),
                })
            }
            _ => None,
        },
        run: handler!(NothingToDo { word, path } => reblock::nothing_to_do(word, path)),
    },
    Entry {
        word: "dedup",
        synopsis: "dedup <filesystem>",
        help: "\
On HAMMER, makes records with the same data share one copy of it. On a
store it says there is nothing to do (it shares no data between records).
",
        usage: Usage::DEDUP,
        remote: Remote::Refused,
        parse: |a| match a {
            [path] => Some(NothingToDo {
                word: "dedup",
                path: arg(path),
            }),
            _ => None,
        },
        run: handler!(NothingToDo { word, path } => reblock::nothing_to_do(word, path)),
    },
];

/// A reblock command's arguments: the filesystem and a fill percentage
/// (C `strtol`, base 0; default 100) from 0 to 100.
fn reblock_args(a: &[OsString], what: u32) -> Option<Command> {
    let fill = match a {
        [_] => 100,
        [_, pct] => crate::cparse::strtol(pct.as_encoded_bytes(), 0).0,
        _ => return None,
    };
    Some(Reblock {
        path: arg(a.first()?),
        what,
        fill: u32::try_from(fill).ok().filter(|&f| f <= 100)?,
    })
}

const STORE: &[Entry] = &[
    Entry {
        word: "store-create",
        synopsis: "store-create <dir>",
        help: "\
Makes an embedded PFS store, holding PFS#0, in the new or empty directory
<dir>, for hosts without HAMMER.
",
        usage: Usage::STORE_CREATE,
        remote: Remote::Refused,
        parse: |a| match a {
            [dir] => Some(StoreCreate { dir: dir.into() }),
            _ => None,
        },
        run: handler!(StoreCreate { dir } => pfs::on_stdout(|_| pfs::store_create(dir))),
    },
    Entry {
        word: "import",
        synopsis: "import [--exclude <pattern>]... [--exclude-from <file>]... [--one-file-system] <dir> <pfs-path>",
        help: "\
Writes the tree <dir> into a master PFS of a store as one new TID;
unchanged files cost nothing, removed ones get a delete TID. --exclude
leaves out what a gitignore-style pattern matches (the path inside
<dir>), --exclude-from reads such patterns from a file, and
--one-file-system does not enter directories of other filesystems.
Options: -q
",
        usage: Usage::BRIDGE,
        remote: Remote::Refused,
        parse: import,
        run: handler!(|cx| Import {
            dir,
            pfs,
            excludes
        } => bridge::import(cx, dir, pfs, excludes)),
    },
    Entry {
        word: "export",
        synopsis: "[-F] export <pfs-path>[@@<tid>] <dir> [<path-inside> ...]",
        help: "\
Writes a PFS of a store as of <tid> (default: a slave's sync point, a
master's newest state) into the new or empty directory <dir> (-F: into a
non-empty one); with paths inside the PFS, only those files or
directories and the directories leading to them. <tid> may be a date
(@@2026-12-05, @@2026-12-05T18:00[Z]). <pfs-path> may be a chain,
s3://<bucket>[/<prefix>][@@<tid>]: it is applied to a temporary store
beside <dir>, removed after. Options: -F -q
",
        usage: Usage::BRIDGE,
        remote: Remote::Refused,
        parse: |a| match a {
            [source, dir, inside @ ..] => Some(Export {
                source: Place::of(source),
                dir: dir.into(),
                inside: inside.iter().map(PathBuf::from).collect(),
            }),
            _ => None,
        },
        run: handler!(|cx| Export {
            source,
            dir,
            inside
        } => bridge::export(cx, source, dir, inside)),
    },
    Entry {
        word: "mount",
        synopsis: "[-a] mount <pfs-path>[@@<tid>] <mountpoint>",
        help: "\
Shows a store PFS read-only through FUSE, as of <tid> or, without one,
following its sync point; its root's `@@` directory holds one directory
per TID at which the PFS changed, each the tree as of that TID. `@@` is
reached by name and not listed (find, du, tar, rsync and cp -a walk the
tree alone) unless -a is given. Runs in the foreground until unmounted
(`hammer umount`, or SIGINT/SIGTERM). Root mounts with mount(2), another
user through fuse3's fusermount3, as sshfs does.
Options: -a
",
        usage: Usage::MOUNT,
        remote: Remote::Refused,
        parse: |a| match a {
            [source, mountpoint] => Some(Mount {
                source: arg(source),
                mountpoint: mountpoint.into(),
            }),
            _ => None,
        },
        run: handler!(|cx| Mount { source, mountpoint } => mount::mount(cx, source, mountpoint)),
    },
    Entry {
        word: "umount",
        synopsis: "umount <mountpoint>",
        help: "\
Unmounts what `hammer mount` mounted there; one left by a killed
`hammer mount` is detached, even with a process still inside it.
",
        usage: Usage::MOUNT,
        remote: Remote::Refused,
        parse: |a| match a {
            [mountpoint] => Some(Umount {
                mountpoint: mountpoint.into(),
            }),
            _ => None,
        },
        run: handler!(Umount { mountpoint } => mount::umount(mountpoint)),
    },
    Entry {
        word: "space",
        synopsis: "space <pfs-path> ...",
        help: "\
Tells how the bytes of each PFS of a store divide: live records, history,
the history no snapshot holds (prune gives it back), the history each
snapshot alone holds (gone once that snapshot is deleted and prune runs),
and the bytes of the payload file no record names (reblock gives them
back).
",
        usage: Usage::SPACE,
        remote: Remote::Refused,
        parse: |a| match a {
            [] => None,
            paths => Some(Space {
                paths: paths.iter().map(arg).collect(),
            }),
        },
        run: handler!(Space { paths } => space::space(paths)),
    },
    Entry {
        word: "verify",
        synopsis: "verify <pfs-path>[@@<tid>]",
        help: "\
Checks a PFS as of <tid> (default: its sync point) without writing: every
record's payload and CRC, key order and TIDs, the file tree, and on a store
its database and payload files. Exit 0 clean, 1 problems found, 2 cannot
read. Given a chain, s3://<bucket>[/<prefix>], it reads every object and
checks its size and checksum against the manifest, every record's CRC, the
shared uuid and the TID each object ends at, one line per object.
",
        usage: Usage::VERIFY,
        remote: Remote::Refused,
        parse: |a| match a {
            [source] => Some(Verify {
                source: Place::of(source),
            }),
            _ => None,
        },
        run: handler!(Verify { source } => verify::verify(source)),
    },
    Entry {
        word: "mirror-verify",
        synopsis: "mirror-verify [[user@]host:]<master-pfs> [[user@]host:]<slave-pfs>",
        help: "\
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
        usage: Usage::MIRROR_VERIFY,
        remote: Remote::Refused,
        parse: |a| match a {
            [master, slave] => Some(MirrorVerify {
                master: master.clone(),
                slave: slave.clone(),
            }),
            _ => None,
        },
        run: handler!(|cx| MirrorVerify { master, slave } => verify::mirror_verify(cx, master, slave)),
    },
    Entry {
        word: "mirror-verify-serve",
        synopsis: "mirror-verify-serve <pfs-path>",
        help: "\
One PFS's side of a mirror-verify, which runs it through ssh on the host
holding the PFS; it speaks mirror-verify's protocol on stdin and stdout
and never writes the PFS. Admitted by ssh-remote, and confined by -T, as
the mirror commands are.
",
        usage: Usage::MIRROR_VERIFY,
        remote: Remote::OPENS_FIRST,
        parse: |a| match a {
            [fs] => Some(MirrorVerifyServe { fs: arg(fs) }),
            _ => None,
        },
        run: handler!(MirrorVerifyServe { fs } => verify::serve(fs)),
    },
];

const OBJECT_STORAGE: &[Entry] = &[Entry {
    word: "s3-prune",
    synopsis: "s3-prune s3://<bucket>[/<prefix>] [keep=<N>] [hourly=<N>] [daily=<N>] [weekly=<N>] [monthly=<N>] [yearly=<N>]",
    help: "\
Keeps the restore points of a chain that keep=<N> (its newest <N>
increments and their base) and the retention grid (the newest point of
each of the <N> newest hours, days, ISO weeks, months or years, by the
time each object was stored) name, and the newest; merges each run of
objects between two kept points into one object (the oldest run into a
new base) through a temporary store in ~/.cache/hammer-mirror, then
deletes the objects it replaced. The manifest names the new objects
before anything is deleted. -z compresses the new objects.
",
    usage: Usage::S3,
    remote: Remote::Refused,
    parse: |a| match a {
        [url, terms @ ..] => match (Place::of(url), retain_terms(terms)) {
            (Place::Chain(url), Some(retain)) => Some(S3Prune { url, retain }),
            _ => None,
        },
        _ => None,
    },
    run: handler!(|cx| S3Prune { url, retain } => chain::prune(cx, url, retain)),
}];

const HELP: &[Entry] = &[
    Entry {
        word: "help",
        synopsis: "help [command]",
        help: "\
Prints the overview of the commands, or what one of them does; so do
-h, --help and <command> --help.
",
        usage: Usage::HELP,
        remote: Remote::OPENS_NONE,
        parse: |a| match a {
            [] => Some(Help { topic: None }),
            [topic] => Some(Help {
                topic: Some(topic.clone()),
            }),
            _ => None,
        },
        run: handler!(Help { topic } => commands::help(topic.as_deref())),
    },
    Entry {
        word: "version",
        synopsis: "version",
        help: "\
Prints this tool's version; so does --version. (version <filesystem>,
the HAMMER version of a filesystem, is not implemented.)
",
        usage: Usage::GENERAL,
        remote: Remote::OPENS_NONE,
        parse: // `version <filesystem>` is the original's (OTHER_COMMANDS).
        |a| a.is_empty().then_some(Version),
        run: handler!(Version => commands::version()),
    },
    Entry {
        word: "completion",
        synopsis: "completion bash|zsh|fish",
        help: "\
Prints the completion script of the shell: it completes the command
words, the options, the file -c, -e or -j takes and paths as arguments,
all as this help lists them. Installed for every user with
hammer completion bash | sudo install -D -m 644 /dev/stdin \\
    /usr/local/share/bash-completion/completions/hammer
(zsh and fish: README.md, Installing).
",
        usage: Usage::COMPLETION,
        remote: Remote::Refused,
        parse: |a| match a {
            [shell] => Shell::of(shell).map(|shell| Completion { shell }),
            _ => None,
        },
        run: handler!(Completion { shell } => commands::completion(*shell)),
    },
];

/// Commands of the original's usage that this tool does not provide.
pub const OTHER_COMMANDS: &[&str] = &[
    "bstats",
    "iostats",
    "stats",
    "history",
    "namekey1",
    "namekey2",
    "namekey32",
    "version",
    "version-upgrade",
    "volume-add",
    "volume-del",
    "volume-list",
    "volume-blkdevs",
    "blockmap",
    "checkmap",
    "show",
    "show-undo",
    "recover",
    "strip",
    "dedup-simulate",
];

/// What runs a command of `OTHER_COMMANDS`: refused under `-T` (its
/// arguments are unknown), and `not implemented` when run. It is in no
/// group: the help names these commands in one line.
pub static NOT_PROVIDED: Entry = Entry {
    word: "",
    synopsis: "",
    help: "",
    usage: Usage::GENERAL,
    remote: Remote::Refused,
    parse: |_| None,
    run: handler!(NotImplemented(word) => Err(Failure::errx(format_args!("{word}: not implemented")))),
};

/// Every entry, in the help's order.
pub fn entries() -> impl Iterator<Item = &'static Entry> {
    GROUPS.iter().flat_map(|g| g.entries)
}

/// The entry of a command word.
pub fn find(word: &OsStr) -> Option<&'static Entry> {
    entries().find(|e| OsStr::new(e.word) == word)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;
    use crate::cli::ssh_remote_invocation;
    use crate::pfs::store::Store;

    /// The command word of a usage or synopsis line: the first word after
    /// `hammer` and the options in brackets.
    fn word_of(line: &str) -> Option<&str> {
        let line = line.strip_prefix("hammer ").unwrap_or(line);
        line.split_whitespace().find(|w| !w.starts_with('['))
    }

    #[test]
    fn every_word_has_its_help_and_a_usage_line() {
        let mut seen = BTreeSet::new();
        for e in entries() {
            assert!(seen.insert(e.word), "{} twice", e.word);
            assert_eq!(word_of(e.synopsis), Some(e.word), "{}", e.synopsis);
            assert!(e.help.ends_with('\n') && e.help.len() > 20, "{}", e.word);
            // A line of the usage starts with the word, or (the old
            // `snapshot` form in the snapshot usage) quotes it.
            let mut lines = e.usage.text.lines();
            let quoted = format!("'hammer {} ", e.word);
            assert!(
                lines.any(|l| word_of(l) == Some(e.word) || l.contains(&quoted)),
                "{}'s usage names it nowhere: {}",
                e.word,
                e.usage.text
            );
        }
        // Of the original's other words, only `version <filesystem>`
        // shares a word with this tool's.
        let shared: Vec<&str> = OTHER_COMMANDS
            .iter()
            .copied()
            .filter(|w| seen.contains(w))
            .collect();
        assert_eq!(shared, ["version"]);
    }

    /// The man page's command entries: `.It Cm <word>`, also after global
    /// options in brackets (`.It Oo Fl F Oc Cm export`).
    #[test]
    fn the_manual_documents_every_command_word() {
        let man =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/hammer.8"))
                .unwrap();
        let mut documented = BTreeSet::new();
        for line in man.lines() {
            let Some(mut rest) = line.strip_prefix(".It ") else {
                continue;
            };
            while let Some(option) = rest.strip_prefix("Oo Fl ") {
                rest = option.split_once(" Oc ").map_or("", |(_, r)| r);
            }
            if let Some(word) = rest
                .strip_prefix("Cm ")
                .and_then(|r| r.split_whitespace().next())
            {
                documented.insert(word);
            }
        }
        let words: BTreeSet<&str> = entries().map(|e| e.word).collect();
        assert_eq!(documented, words);
    }

    /// ssh-remote's `-T` runs a command exactly when the table admits it,
    /// through the checks a forced command's client line goes through:
    /// every admitted command on a PFS named inside the prefix, and none
    /// with one outside it (but those that open no PFS); every other
    /// command refused even inside it.
    #[test]
    fn ssh_remote_admits_exactly_the_tables_commands() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s");
        Store::create(&store).unwrap();
        for client in ["a", "b"] {
            std::fs::create_dir(store.join(client)).unwrap();
        }
        std::os::unix::fs::symlink("@@PFS00001", store.join("a/pfs")).unwrap();
        std::os::unix::fs::symlink("@@PFS00002", store.join("b/pfs")).unwrap();
        let prefix = store.join("a");
        let run = |word: &str, args: Vec<String>| {
            let original = OsString::from(format!("hammer {word} {}", args.join(" ")));
            ssh_remote_invocation(OsStr::new(word), &prefix, Some(&original))
                .unwrap()
                .confine()
                .is_ok()
        };
        let (inside, outside) = (store.join("a/pfs"), store.join("b/pfs"));
        let mut admitted = Vec::new();
        for e in entries() {
            // Arguments the entry takes, of one shape or another.
            let shapes: [&[&str]; 5] = [&["p"], &["p", "p"], &[], &["s3://b", "keep=1"], &["bash"]];
            let shape = shapes
                .iter()
                .find(|s| {
                    let args: Vec<OsString> = s.iter().map(OsString::from).collect();
                    (e.parse)(&args).is_some()
                })
                .unwrap_or_else(|| panic!("no arguments of a known shape for {}", e.word));
            let with = |pfs: &Path| -> Vec<String> {
                let pick = |a: &&str| match *a {
                    "p" => pfs.display().to_string(),
                    a => a.to_string(),
                };
                shape.iter().map(pick).collect()
            };
            let confined = matches!(e.remote, Remote::Confined { .. });
            assert_eq!(run(e.word, with(&inside)), confined, "{}", e.word);
            let opens = !matches!(
                e.remote,
                Remote::Confined {
                    paths: Paths::None,
                    ..
                }
            );
            assert_eq!(run(e.word, with(&outside)), !opens, "{}", e.word);
            if confined {
                admitted.push(e.word);
            }
        }
        // What a forced command can be made to run: changed only on purpose.
        assert_eq!(
            admitted,
            [
                "mirror-read",
                "mirror-read-stream",
                "mirror-write",
                "mirror-dump",
                "pfs-status",
                "pfs-master",
                "pfs-slave",
                "pfs-update",
                "pfs-upgrade",
                "pfs-downgrade",
                "pfs-destroy",
                "synctid",
                "snap",
                "snaplo",
                "snapq",
                "snapls",
                "prune",
                "prune-everything",
                "reblock",
                "reblock-btree",
                "reblock-inodes",
                "reblock-dirs",
                "reblock-data",
                "mirror-verify-serve",
                "help",
                "version",
            ]
        );
    }
}

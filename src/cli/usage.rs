//! The usage texts: the original's, printed on a usage error (cli.md §2),
//! and those of this tool's own commands.

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

/// Usage of snapls.
pub const SNAPLS_USAGE: &str = "hammer snapls <pfs-path> ...\n";

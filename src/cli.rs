//! hammer(8)'s global options with BSD getopt semantics, its number parsers
//! and its usage texts (spec: cli.md §1-2).

use std::ffi::OsString;

use crate::cparse::{parse_cache_size, parse_size, strtol};

/// `getopt(3)` option string of hammer.c.
pub const OPTSTRING: &str = "b:c:de:hf:i:m:p:qrt:v2yABC:FR:S:T:X";

/// Default `-S`: 4 GiB.
pub const DEFAULT_SPLITUP: u64 = 4_294_967_296;
/// Default `-i`: seconds.
pub const DEFAULT_DELAY: i32 = 5;

/// The general usage text (cli.md §2; the second line ends with a space).
pub const USAGE: &str = "\
hammer -h
hammer [-2ABFqrvXy] [-b bandwidth] [-C cachesize[:readahead]] 
       [-R restrictcmd] [-T restrictpath] [-c cyclefile]
       [-e scoreboardfile] [-f blkdevs] [-i delay] [-p ssh-port]
       [-S splitsize] [-t seconds] [-m memlimit] command [argument ...]
hammer synctid <filesystem> [quick]
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
hammer pfs-status <dirpath> ...
hammer pfs-master <dirpath> [options]
hammer pfs-slave <dirpath> [options]
hammer pfs-update <dirpath> [options]
hammer pfs-upgrade <dirpath>
hammer pfs-downgrade <dirpath>
hammer pfs-destroy <dirpath>
hammer mirror-read <filesystem> [begin-tid]
hammer mirror-read-stream <filesystem> [begin-tid]
hammer mirror-write <filesystem>
hammer mirror-dump [header]
hammer mirror-copy [[user@]host:]<filesystem> [[user@]host:]<filesystem>
hammer mirror-stream [[user@]host:]<filesystem> [[user@]host:]<filesystem>
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
";

/// Usage for a wrong argument count of any mirror command.
pub const MIRROR_USAGE: &str = "\
hammer mirror-read <filesystem> [begin-tid]
hammer mirror-read-stream <filesystem> [begin-tid]
hammer mirror-write <filesystem>
hammer mirror-dump [header]
hammer mirror-copy [[user@]host:]<filesystem> [[user@]host:]<filesystem>
hammer mirror-stream [[user@]host:]<filesystem> [[user@]host:]<filesystem>
";

/// Usage for the pfs-* commands.
pub const PFS_USAGE: &str = "\
hammer pfs-status <dirpath> ...
hammer pfs-master <dirpath> [options]
hammer pfs-slave <dirpath> [options]
hammer pfs-update <dirpath> [options]
hammer pfs-upgrade <dirpath>
hammer pfs-downgrade <dirpath>
hammer pfs-destroy <dirpath>

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
";

/// Usage of synctid.
pub const SYNCTID_USAGE: &str = "hammer synctid <filesystem> [quick]\n";

/// The global options after parsing (hammer.c's `*Opt` globals).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalOpts {
    /// `-2`
    pub two_way: bool,
    /// `-y`
    pub yes: bool,
    /// `-b`, bytes per second, 0 = unlimited.
    pub bandwidth: u64,
    /// `-S`, bytes per prescan chunk.
    pub splitup: u64,
    /// `-S` as typed, forwarded to a remote source.
    pub splitup_text: Option<String>,
    /// `-c`
    pub cycle_file: Option<String>,
    /// `-d` count.
    pub debug: u32,
    /// `-e`
    pub scoreboard: Option<String>,
    /// `-i` seconds (C int, no validation in the original).
    pub delay: i32,
    /// `-m` as typed (dedup only).
    pub memlimit: Option<String>,
    /// `-p`
    pub ssh_port: Option<String>,
    /// Net of `-v` and `-q`.
    pub verbose: i32,
    pub quiet: i32,
    /// `-t` seconds, 0 = unlimited.
    pub timeout: i32,
    /// `-B`
    pub no_bulk: bool,
    /// `-C` cache size and read-ahead (raw-I/O commands only).
    pub cache: Option<(i64, i64)>,
    /// `-X`
    pub ssh_compress: bool,
    /// `-R`, first one only.
    pub restrict_cmd: Option<String>,
    /// `-T`, first one only.
    pub restrict_path: Option<String>,
    /// `-f`
    pub blkdevs: Option<String>,
    /// `-r`, `-A`, `-F`: accepted, unused by these commands.
    pub recurse: bool,
    pub all: bool,
    pub force: bool,
}

impl Default for GlobalOpts {
    fn default() -> Self {
        GlobalOpts {
            two_way: false,
            yes: false,
            bandwidth: 0,
            splitup: DEFAULT_SPLITUP,
            splitup_text: None,
            cycle_file: None,
            debug: 0,
            scoreboard: None,
            delay: DEFAULT_DELAY,
            memlimit: None,
            ssh_port: None,
            verbose: 0,
            quiet: 0,
            timeout: 0,
            no_bulk: false,
            cache: None,
            ssh_compress: false,
            restrict_cmd: None,
            restrict_path: None,
            blkdevs: None,
            recurse: false,
            all: false,
            force: false,
        }
    }
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub opts: GlobalOpts,
    pub command: String,
    pub args: Vec<String>,
}

/// Why the command line was refused; `main` prints it and the usage.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// `-h`: usage on stderr, exit 0.
    #[error("help requested")]
    Help,
    #[error("illegal option -- {0}")]
    IllegalOption(char),
    #[error("option requires an argument -- {0}")]
    MissingArgument(char),
    /// A malformed `-b`/`-S`/`-C` value: usage, exit 1, no message.
    #[error("bad option value")]
    BadValue,
    /// No command word: usage, exit 1.
    #[error("no command")]
    NoCommand,
    /// An argument that is not valid Unicode.
    #[error("argument is not valid UTF-8: {0}")]
    NotUnicode(String),
}

impl CliError {
    /// The message getopt prints before the usage, if any.
    pub fn message(&self) -> Option<String> {
        match self {
            CliError::IllegalOption(_) | CliError::MissingArgument(_) | CliError::NotUnicode(_) => {
                Some(format!("hammer: {self}"))
            }
            _ => None,
        }
    }
}

/// Whether option `c` takes an argument; `None` if hammer has no such option.
pub fn takes_argument(c: char) -> Option<bool> {
    let i = OPTSTRING.find(c).filter(|_| c != ':')?;
    Some(OPTSTRING[i + c.len_utf8()..].starts_with(':'))
}

/// Parses `argv` (program name first) the way BSD getopt does for
/// hammer.c: options stop at the first non-option word.
pub fn parse<I: IntoIterator<Item = OsString>>(argv: I) -> Result<Invocation, CliError> {
    let mut words = Vec::new();
    for a in argv.into_iter().skip(1) {
        match a.into_string() {
            Ok(s) => words.push(s),
            Err(os) => return Err(CliError::NotUnicode(os.to_string_lossy().into_owned())),
        }
    }
    let mut opts = GlobalOpts::default();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        if w == "--" {
            i += 1;
            break;
        }
        if !w.starts_with('-') || w == "-" {
            break;
        }
        let cluster: Vec<char> = w[1..].chars().collect();
        let mut j = 0;
        while j < cluster.len() {
            let c = cluster[j];
            j += 1;
            match takes_argument(c) {
                None => return Err(CliError::IllegalOption(c)),
                Some(false) => apply_flag(&mut opts, c)?,
                Some(true) => {
                    let value: String = if j < cluster.len() {
                        cluster[j..].iter().collect()
                    } else {
                        i += 1;
                        match words.get(i) {
                            Some(v) => v.clone(),
                            None => return Err(CliError::MissingArgument(c)),
                        }
                    };
                    apply_value(&mut opts, c, value)?;
                    j = cluster.len();
                }
            }
        }
        i += 1;
    }
    let mut rest = words.split_off(i.min(words.len())).into_iter();
    let command = rest.next().ok_or(CliError::NoCommand)?;
    Ok(Invocation {
        opts,
        command,
        args: rest.collect(),
    })
}

fn apply_flag(o: &mut GlobalOpts, c: char) -> Result<(), CliError> {
    match c {
        '2' => o.two_way = true,
        'y' => o.yes = true,
        'd' => o.debug += 1,
        'h' => return Err(CliError::Help),
        'q' => {
            if o.verbose > 0 {
                o.verbose -= 1;
            } else {
                o.quiet += 1;
            }
        }
        'v' => {
            if o.quiet > 0 {
                o.quiet -= 1;
            } else {
                o.verbose += 1;
            }
        }
        'r' => o.recurse = true,
        'A' => o.all = true,
        'B' => o.no_bulk = true,
        'F' => o.force = true,
        'X' => o.ssh_compress = true,
        _ => return Err(CliError::IllegalOption(c)),
    }
    Ok(())
}

fn apply_value(o: &mut GlobalOpts, c: char, v: String) -> Result<(), CliError> {
    match c {
        'b' => o.bandwidth = parse_size(v.as_bytes()).ok_or(CliError::BadValue)?,
        'S' => {
            o.splitup = parse_size(v.as_bytes()).ok_or(CliError::BadValue)?;
            o.splitup_text = Some(v);
        }
        'c' => o.cycle_file = Some(v),
        'e' => o.scoreboard = Some(v),
        'f' => o.blkdevs = Some(v),
        'i' => o.delay = strtol(v.as_bytes(), 0).0 as i32,
        'm' => o.memlimit = Some(v),
        'p' => o.ssh_port = Some(v),
        't' => o.timeout = strtol(v.as_bytes(), 0).0 as i32,
        'C' => o.cache = Some(parse_cache_size(v.as_bytes()).ok_or(CliError::BadValue)?),
        'R' => {
            o.restrict_cmd.get_or_insert(v);
        }
        'T' => {
            o.restrict_path.get_or_insert(v);
        }
        _ => return Err(CliError::IllegalOption(c)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Invocation, CliError> {
        parse(
            std::iter::once("hammer")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    }

    #[test]
    fn clustered_and_attached_options() {
        let inv = p(&["-vvy", "-b10m", "-S", "1g", "mirror-read", "/a", "-v"]).unwrap();
        assert_eq!(inv.opts.verbose, 2);
        assert!(inv.opts.yes);
        assert_eq!(inv.opts.bandwidth, 10 << 20);
        assert_eq!(inv.opts.splitup, 1 << 30);
        assert_eq!(inv.opts.splitup_text.as_deref(), Some("1g"));
        assert_eq!(inv.command, "mirror-read");
        assert_eq!(inv.args, vec!["/a", "-v"]);
    }

    #[test]
    fn double_dash_ends_options() {
        let inv = p(&["-v", "--", "-x"]).unwrap();
        assert_eq!(inv.command, "-x");
        assert_eq!(inv.opts.verbose, 1);
    }

    #[test]
    fn getopt_errors() {
        assert_eq!(p(&["-Z", "x"]), Err(CliError::IllegalOption('Z')));
        assert_eq!(p(&["-b"]), Err(CliError::MissingArgument('b')));
        assert_eq!(p(&["-v:"]), Err(CliError::IllegalOption(':')));
        assert_eq!(p(&[]), Err(CliError::NoCommand));
        assert_eq!(p(&["-v"]), Err(CliError::NoCommand));
        assert_eq!(p(&["-h", "-Z"]), Err(CliError::Help));
        assert_eq!(p(&["-b", "10x", "mirror-dump"]), Err(CliError::BadValue));
    }

    #[test]
    fn verbose_and_quiet_cancel() {
        let o = p(&["-vq", "x"]).unwrap().opts;
        assert_eq!((o.verbose, o.quiet), (0, 0));
        let o = p(&["-qqv", "x"]).unwrap().opts;
        assert_eq!((o.verbose, o.quiet), (0, 1));
    }

    #[test]
    fn first_restrictions_win() {
        let o = p(&["-R", "a", "-Rb", "-T/x", "-T", "/y", "c"])
            .unwrap()
            .opts;
        assert_eq!(o.restrict_cmd.as_deref(), Some("a"));
        assert_eq!(o.restrict_path.as_deref(), Some("/x"));
    }

    #[test]
    fn int_options_truncate_like_c() {
        let o = p(&["-i", "0x100000001", "-t", "-3", "x"]).unwrap().opts;
        assert_eq!(o.delay, 1);
        assert_eq!(o.timeout, -3);
    }
}

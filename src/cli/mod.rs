//! The command line: argv to the global options (BSD getopt, spec: cli.md
//! §1-2), the command table that declares every command word, the typed
//! `Command` its parsers make, ssh-remote's client command line and its
//! restrictions, and the usage and help texts. No library module below
//! the commands uses it.

mod command;
pub mod completion;
mod getopt;
mod hint;
mod remote;
mod restrict;
pub mod table;
mod usage;

use std::ffi::{OsStr, OsString};
use std::path::Path;

pub use command::{Command, SnapKind};
pub use getopt::{GlobalOpts, OPTSTRING};
pub use remote::{ssh_remote_invocation, SshRemoteError};
pub use restrict::RestrictError;
pub use table::Entry;
pub use usage::{
    help, version, HelpError, Usage, MIRROR_USAGE, PFS_USAGE, PRUNE_USAGE, SNAPSHOT_USAGE,
    SYNCTID_USAGE, USAGE,
};

use restrict::check_command;
pub(crate) use restrict::check_path;
use table::{Paths, Remote};

use crate::patharg::Place;

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub opts: GlobalOpts,
    /// The table's entry that parsed the command and runs it.
    pub entry: &'static Entry,
    pub command: Command,
    /// The command's arguments as typed, which `-T` confines.
    pub args: Vec<OsString>,
}

impl Invocation {
    /// The command word, as the events of `-j` name the command.
    pub fn word(&self) -> &'static str {
        match self.command {
            Command::NotImplemented(word) => word,
            _ => self.entry.word,
        }
    }

    /// `-T`: what the entry admits, checked before the command does
    /// anything (protocol.md §11).
    pub fn confine(&self) -> Result<(), RestrictError> {
        let Some(prefix) = &self.opts.restrict_path else {
            return Ok(());
        };
        let Remote::Confined { paths, creates } = self.entry.remote else {
            return Err(RestrictError::RestrictedTarget);
        };
        // A chain is read with this host's credentials: never for a
        // forced-command client.
        if self
            .args
            .iter()
            .any(|a| matches!(Place::of(a), Place::Chain(_)))
        {
            return Err(RestrictError::RestrictedTarget);
        }
        let opened: Vec<&Path> = match paths {
            Paths::None => Vec::new(),
            Paths::First => self.args.iter().take(1).map(Path::new).collect(),
            Paths::Each if self.args.is_empty() => vec![Path::new(".")],
            Paths::Each => self.args.iter().map(Path::new).collect(),
        };
        restrict::confine(prefix, &opened, creates)
    }
}

/// Why the command line was refused; `main` prints it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    #[error("illegal option -- {0}")]
    IllegalOption(char),
    #[error("option requires an argument -- {0}")]
    MissingArgument(char),
    /// A value the option cannot take: one line naming both, exit 1
    /// (the original printed the usage, or took whatever strtol made of it).
    #[error("option -{option}: invalid value '{value}': {expected}")]
    BadValue {
        option: char,
        value: String,
        expected: &'static str,
    },
    /// No command word: usage, exit 1.
    #[error("no command")]
    NoCommand,
    /// A wrong count of arguments: this usage.
    #[error("usage")]
    Usage(Usage),
    /// A command word no hammer has: named, with the closest one this
    /// tool implements, before the general usage.
    #[error("unknown command '{word}'{}", closest.map_or(String::new(), |c| format!("; did you mean '{c}'?")))]
    UnknownCommand {
        word: String,
        closest: Option<&'static str>,
    },
    /// An option written after the command word, which getopt (and so
    /// the original) reads as an argument: said before the command's usage.
    #[error("option '{option}' after the command word '{word}': options go first, as in 'hammer {option} {word} ...'")]
    OptionAfterCommand {
        option: String,
        word: String,
        usage: Usage,
    },
    /// `-R` does not admit the command word.
    #[error(transparent)]
    Restricted(RestrictError),
    /// `-n` with a command that has no dry run, and would run for real.
    #[error("-n (a dry run) is for prune, prune-everything and cleanup; '{0}' has none")]
    NoDryRun(&'static str),
}

/// The commands `-n` makes a dry run of (and help, which runs nothing).
const DRY_RUNS: &[&str] = &["prune", "prune-everything", "cleanup", "help"];

/// Parses `argv` (program name first) the way hammer.c does: getopt, the
/// `-R` check on the command word (before its arguments are looked at, as
/// the original), then the command and its arguments.
pub fn parse<I: IntoIterator<Item = OsString>>(argv: I) -> Result<Invocation, CliError> {
    let (opts, rest) = getopt::getopt(argv.into_iter().skip(1).collect())?;
    let mut rest = rest.into_iter();
    let word = rest.next().ok_or(CliError::NoCommand)?;
    if let Some(list) = &opts.restrict_cmd {
        check_command(list, &word).map_err(CliError::Restricted)?;
    }
    let args: Vec<OsString> = rest.collect();
    let misplaced = |usage: Usage, option: &OsStr| CliError::OptionAfterCommand {
        option: option.to_string_lossy().into_owned(),
        word: word.to_string_lossy().into_owned(),
        usage,
    };
    let (entry, command) = lookup(&word, &args).map_err(|usage| {
        if usage == Usage::GENERAL && table::find(&word).is_none() {
            return CliError::UnknownCommand {
                word: word.to_string_lossy().into_owned(),
                closest: hint::closest_command(&word),
            };
        }
        match args.iter().find(|a| hint::looks_like_options(a)) {
            Some(option) => misplaced(usage, option),
            None => CliError::Usage(usage),
        }
    })?;
    if opts.dry_run && !DRY_RUNS.contains(&entry.word) {
        return Err(CliError::NoDryRun(entry.word));
    }
    // `hammer pfs-status -v <pfs>`: an option where a path belongs, and no
    // file of that name. Not for a forced command's client, whose paths'
    // existence is not told.
    if let Some(first) = args.first() {
        if opts.restrict_path.is_none()
            && hint::looks_like_options(first)
            && Path::new(first).symlink_metadata().is_err()
        {
            return Err(misplaced(entry.usage, first));
        }
    }
    Ok(Invocation {
        opts,
        entry,
        command,
        args,
    })
}

/// The entry and the typed command of `word` with `args`. `<word>
/// --help` is help on it; arguments an entry does not take are its usage
/// error, unless the original has a command of that word too (`version
/// <filesystem>`): then they are that command, which this tool does not
/// provide.
fn lookup(word: &OsStr, args: &[OsString]) -> Result<(&'static Entry, Command), Usage> {
    // As words, not as options: getopt knows no long options.
    if let [h] = args {
        if h == "--help" {
            let help = Command::Help {
                topic: Some(word.to_os_string()),
            };
            return Ok((
                table::find(OsStr::new("help")).expect("help is a command"),
                help,
            ));
        }
    }
    let parsed = table::find(word).map(|e| (e, (e.parse)(args)));
    let other = table::OTHER_COMMANDS
        .iter()
        .find(|&&c| OsStr::new(c) == word);
    match (parsed, other) {
        (Some((entry, Some(command))), _) => Ok((entry, command)),
        (_, Some(name)) => Ok((&table::NOT_PROVIDED, Command::NotImplemented(name))),
        (Some((entry, None)), None) => Err(entry.usage),
        (None, None) => Err(Usage::GENERAL),
    }
}

/// For a command line `parse` refused: the `-j` sink its options name,
/// and its command word (empty without one), so that the refusal is told
/// there too.
pub fn events_of_refused<I: IntoIterator<Item = OsString>>(argv: I) -> Option<(OsString, String)> {
    let (opts, rest) = getopt::getopt(argv.into_iter().skip(1).collect()).ok()?;
    let word = rest
        .first()
        .map_or(String::new(), |w| w.to_string_lossy().into_owned());
    Some((opts.events?, word))
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::num::NonZeroU64;
    use std::path::Path;
    use std::time::Duration;

    use super::restrict::CLIENT_OPTIONS;
    use super::*;
    use crate::commands::Context;
    use crate::pfs::store::Store;

    fn p(args: &[&str]) -> Result<Invocation, CliError> {
        parse(
            std::iter::once("hammer")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    }

    /// What a command of these options is run with.
    fn context(opts: &GlobalOpts) -> Context<'_> {
        Context {
            opts,
            events: Default::default(),
            word: "hammer",
        }
    }

    #[test]
    fn clustered_and_attached_options() {
        let inv = p(&["-vvy", "-b10m", "-S", "1g", "mirror-read", "/a", "-v"]).unwrap();
        assert_eq!(inv.opts.verbose, 2);
        assert!(inv.opts.yes);
        assert_eq!(inv.opts.bandwidth, NonZeroU64::new(10 << 20));
        assert_eq!(inv.opts.splitup, 1 << 30);
        assert_eq!(inv.opts.splitup_text.as_deref(), Some(OsStr::new("1g")));
        // `-v` after the command is its begin-tid argument.
        assert_eq!(
            inv.command,
            Command::MirrorRead {
                fs: "/a".into(),
                begin_tid: Some(0)
            }
        );
    }

    #[test]
    fn double_dash_ends_options() {
        // `-x` is the command word, not an illegal option.
        assert_eq!(
            p(&["-v", "--", "-x"]),
            Err(CliError::UnknownCommand {
                word: "-x".into(),
                closest: None
            })
        );
        let inv = p(&["-v", "--", "mirror-dump"]).unwrap();
        assert_eq!(
            inv.command,
            Command::MirrorDump {
                header: false,
                chain: None
            }
        );
        assert_eq!(inv.opts.verbose, 1);
    }

    #[test]
    fn getopt_errors() {
        assert_eq!(p(&["-Z", "x"]), Err(CliError::IllegalOption('Z')));
        assert_eq!(p(&["-b"]), Err(CliError::MissingArgument('b')));
        assert_eq!(p(&["-v:"]), Err(CliError::IllegalOption(':')));
        assert_eq!(p(&[]), Err(CliError::NoCommand));
        assert_eq!(p(&["-v"]), Err(CliError::NoCommand));
        let help = Command::Help { topic: None };
        assert_eq!(p(&["-h", "-Z"]).unwrap().command, help);
        assert_eq!(p(&["-v", "--help", "-Z"]).unwrap().command, help);
        assert_eq!(p(&["--version"]).unwrap().command, Command::Version);
        assert_eq!(
            p(&["-b", "10x", "mirror-dump"]),
            Err(CliError::BadValue {
                option: 'b',
                value: "10x".into(),
                expected: "expected bytes per second, a number with an optional k, m or g"
            })
        );
    }

    #[test]
    fn a_makes_mount_list_its_history() {
        let shown = |args: &[&str]| {
            let opts = p(args).unwrap().opts;
            context(&opts).mount_options().show_history
        };
        assert!(shown(&["-a", "mount", "/s/pfs", "/mnt"]));
        assert!(!shown(&["mount", "/s/pfs", "/mnt"]));
    }

    #[test]
    fn n_is_a_dry_run_of_prune_and_cleanup_and_refused_elsewhere() {
        for word in ["prune", "prune-everything", "cleanup"] {
            assert!(p(&["-n", word, "/s/pfs"]).unwrap().opts.dry_run);
        }
        assert!(!p(&["prune", "/s/pfs"]).unwrap().opts.dry_run);
        assert!(p(&["-n", "help", "prune"]).is_ok());
        for args in [
            &["-n", "reblock", "/s/pfs"][..],
            &["-vn", "pfs-destroy", "/s/pfs"],
            &["-n", "snaprm", "/s/pfs", "0x1"],
            &["-n", "abort-cleanup"],
        ] {
            assert_eq!(p(args), Err(CliError::NoDryRun(args[1])), "{args:?}");
        }
        assert_eq!(
            CliError::NoDryRun("reblock").to_string(),
            "-n (a dry run) is for prune, prune-everything and cleanup; 'reblock' has none"
        );
    }

    #[test]
    fn verbose_and_quiet_cancel() {
        let o = p(&["-vq", "mirror-dump"]).unwrap().opts;
        assert_eq!((o.verbose, o.quiet), (0, 0));
        let o = p(&["-qqv", "mirror-dump"]).unwrap().opts;
        assert_eq!((o.verbose, o.quiet), (0, 1));
        let opts = p(&["-q", "-v", "mirror-dump"]).unwrap().opts;
        let c = context(&opts).copy_options();
        assert_eq!(
            (c.read.verbose, c.read.quiet, c.write.quiet),
            (0, false, false)
        );
    }

    #[test]
    fn first_restrictions_win() {
        let o = p(&[
            "-R",
            "mirror-dump",
            "-Rb",
            "-T/x",
            "-T",
            "/y",
            "mirror-dump",
        ])
        .unwrap()
        .opts;
        assert_eq!(o.restrict_cmd.as_deref(), Some(OsStr::new("mirror-dump")));
        assert_eq!(o.restrict_path.as_deref(), Some(Path::new("/x")));
    }

    /// The original truncated `-i 0x100000001` to 1 and took `-t -3` as
    /// 4294967293 seconds; both are refused now, naming the value.
    #[test]
    fn int_options_are_checked() {
        let o = p(&["-i", "0x10", "-t", "30", "mirror-dump"]).unwrap().opts;
        assert_eq!(o.delay, Duration::from_secs(16));
        assert_eq!(o.timeout, Some(Duration::from_secs(30)));
        // D19: a negative delay is none; -t 0 is no limit.
        let o = p(&["-i", "-1", "-t", "0", "mirror-dump"]).unwrap().opts;
        assert_eq!((o.delay, o.timeout), (Duration::ZERO, None));
        for (args, option) in [
            (&["-i", "0x100000001"][..], 'i'),
            (&["-t", "-3"], 't'),
            (&["-iabc"], 'i'),
        ] {
            let args = [args, &["mirror-dump"]].concat();
            assert!(
                matches!(p(&args), Err(CliError::BadValue { option: o, .. }) if o == option),
                "{args:?}"
            );
        }
    }

    #[test]
    fn wrong_argument_counts_are_the_commands_usage() {
        for (args, usage) in [
            (&["mirror-dump", "x"][..], Usage::MIRROR),
            (&["mirror-read"], Usage::MIRROR),
            (&["mirror-copy", "a"], Usage::MIRROR),
            (&["pfs-master"], Usage::PFS),
            (&["synctid", "a", "slow"], Usage::SYNCTID),
            (&["ssh-remote", "a"], Usage::GENERAL),
            (&["verify"], Usage::VERIFY),
        ] {
            assert_eq!(p(args), Err(CliError::Usage(usage)), "{args:?}");
        }
        assert_eq!(
            p(&["pfs-destroy", "a", "ignored"]).unwrap().command,
            Command::PfsDestroy { path: "a".into() }
        );
        assert_eq!(
            p(&["pfs-status"]).unwrap().command,
            Command::PfsStatus {
                paths: vec![".".into()]
            }
        );
        assert_eq!(
            p(&["iostats", "/x"]).unwrap().command,
            Command::NotImplemented("iostats")
        );
    }

    /// An unknown word is named with the closest command; an option after
    /// the command word is told where options go, whether it made the
    /// argument count wrong or stands where a path belongs.
    #[test]
    fn mistyped_command_lines_are_told_what_went_wrong() {
        assert_eq!(
            p(&["mirror-raed", "/a"]),
            Err(CliError::UnknownCommand {
                word: "mirror-raed".into(),
                closest: Some("mirror-read")
            })
        );
        let after = |word: &str, usage| {
            Err(CliError::OptionAfterCommand {
                option: "-v".into(),
                word: word.into(),
                usage,
            })
        };
        assert_eq!(
            p(&["mirror-dump", "-v"]),
            after("mirror-dump", Usage::MIRROR)
        );
        assert_eq!(
            p(&["pfs-status", "-v", "/nonexistent/a"]),
            after("pfs-status", Usage::PFS)
        );
        // As the original: a begin-tid of `-v` is 0.
        assert!(p(&["mirror-read", "/a", "-v"]).is_ok());
        // (A file named `-v` is a path: tests/integration/cli.rs.)
    }

    /// protocol.md §11: `-R` is checked on the command word before the
    /// command's arguments.
    #[test]
    fn restriction_comes_before_the_usage() {
        assert_eq!(
            p(&["-R", "mirror-write", "mirror-read"]),
            Err(CliError::Restricted(RestrictError::CommandMismatch))
        );
        assert_eq!(
            p(&["-R", "mirror-write,mirror-read", "mirror-read"]),
            Err(CliError::Usage(Usage::MIRROR))
        );
    }

    /// The options restrict.rs admits take arguments exactly as getopt
    /// reads them.
    #[test]
    fn client_options_agree_with_getopt() {
        for c in CLIENT_OPTIONS.chars().filter(|&c| c != ':') {
            let j = CLIENT_OPTIONS.find(c).unwrap();
            assert_eq!(
                getopt::takes_argument(c),
                Some(CLIENT_OPTIONS[j + 1..].starts_with(':')),
                "-{c}"
            );
        }
    }

    fn ssh_remote_invocation(
        commands: &str,
        prefix: &str,
        original: Option<&str>,
    ) -> Result<Invocation, SshRemoteError> {
        super::ssh_remote_invocation(
            OsStr::new(commands),
            Path::new(prefix),
            original.map(OsStr::new),
        )
    }

    fn inv(original: &str, prefix: &str) -> Result<Invocation, SshRemoteError> {
        ssh_remote_invocation("mirror-write", prefix, Some(original))
    }

    #[test]
    fn original_command_checks() {
        assert_eq!(
            ssh_remote_invocation("a", "/", None),
            Err(SshRemoteError::MissingEnv)
        );
        assert_eq!(inv("", "/"), Err(SshRemoteError::NullCommand));
        assert_eq!(inv("   ", "/"), Err(SshRemoteError::NullCommand));
        assert_eq!(inv("rm -rf /", "/"), Err(SshRemoteError::NotHammer));
    }

    #[test]
    fn d11_client_options_filtered() {
        let ok = inv("hammer -vv -y -2 -S 1g -t 30 mirror-write /b/x", "/").unwrap();
        assert_eq!(ok.command, Command::MirrorWrite { fs: "/b/x".into() });
        assert_eq!(
            ok.opts.restrict_cmd.as_deref(),
            Some(OsStr::new("mirror-write"))
        );
        assert_eq!(ok.opts.restrict_path.as_deref(), Some(Path::new("/")));
        assert_eq!(ok.opts.verbose, 2);
        let refused = |c| Err(SshRemoteError::Refused(RestrictError::OptionRefused(c)));
        assert_eq!(
            inv("hammer -c /etc/passwd mirror-write /b", "/"),
            refused('c')
        );
        assert_eq!(inv("hammer -2e/tmp/x mirror-write /b", "/"), refused('e'));
        assert_eq!(inv("hammer -T / mirror-write /b", "/b"), refused('T'));
        // Option-looking words after the command are arguments, not options.
        assert!(inv("hammer mirror-write -c", "/").is_ok());
        // A usage error is the command's own.
        assert_eq!(
            inv("hammer mirror-write", "/"),
            Err(SshRemoteError::Command(CliError::Usage(Usage::MIRROR)))
        );
        assert_eq!(
            inv("hammer -t", "/"),
            Err(SshRemoteError::BadCommandLine(CliError::MissingArgument(
                't'
            )))
        );
    }

    #[test]
    fn shell_syntax_refused() {
        for bad in [
            "/b/x;id", "/b/$(id)", "/b/'x'", "/b/`id`", "/b/a|b", "/b/\"q\"",
        ] {
            assert!(
                matches!(
                    inv(&format!("hammer -2 mirror-write {bad}"), "/"),
                    Err(SshRemoteError::Refused(RestrictError::IllegalWord(_)))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn restricted_command_list() {
        assert_eq!(
            inv("hammer mirror-read /x", "/"),
            Err(SshRemoteError::Command(CliError::Restricted(
                RestrictError::CommandMismatch
            )))
        );
        let i = ssh_remote_invocation(
            "mirror-write,mirror-read",
            "/",
            Some("hammer mirror-read /x"),
        );
        assert!(i.is_ok());
    }

    fn check(i: &Invocation) -> Result<(), RestrictError> {
        i.confine()
    }

    #[test]
    fn only_creating_commands_admit_a_missing_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s");
        Store::create(&store).unwrap();
        let prefix = store.to_str().unwrap().to_string();
        let new = store.join("new").display().to_string();
        for (cmd, ok) in [
            ("mirror-write", true),
            ("pfs-slave", true),
            ("pfs-master", true),
            ("mirror-read", false),
            ("pfs-status", false),
            ("synctid", false),
        ] {
            let i =
                ssh_remote_invocation(cmd, &prefix, Some(&format!("hammer {cmd} {new}"))).unwrap();
            let want = if ok {
                Ok(())
            } else {
                Err(RestrictError::RestrictedTarget)
            };
            assert_eq!(check(&i), want, "{cmd}");
        }
    }

    #[test]
    fn unknown_commands_cannot_pass_a_path_restriction() {
        let i = ssh_remote_invocation("iostats", "/", Some("hammer iostats /x")).unwrap();
        assert_eq!(check(&i), Err(RestrictError::RestrictedTarget));
        // Nor can cleanup, which acts on every PFS it is given.
        let i = ssh_remote_invocation("cleanup", "/", Some("hammer cleanup /x")).unwrap();
        assert_eq!(check(&i), Err(RestrictError::RestrictedTarget));
    }
}

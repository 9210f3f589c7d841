//! Restricted remote access: `ssh-remote` as an authorized_keys forced
//! command and the `-R` / `-T` checks (protocol.md §11), with D11 and D13
//! fixed: client options filtered, words validated, `-T` confining the PFS
//! a path opens, not its text, for every command it admits.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::cli::{self, Invocation};
use crate::pfs::getpfs::{pfs_place, PfsPlace};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestrictError {
    #[error("SSH_ORIGINAL_COMMAND env missing")]
    MissingEnv,
    #[error("hammer-remote: null command")]
    NullCommand,
    #[error("hammer-remote: Command not 'hammer'")]
    NotHammer,
    /// D11: options a client may not pass (they write files or change the
    /// restriction).
    #[error("hammer-remote: option -{0} not allowed")]
    OptionRefused(char),
    /// Shell metacharacters, quotes and the like: mirror-copy never sends
    /// them unquoted, so they can only come from a hostile client.
    #[error("hammer-remote: illegal character in '{0}'")]
    IllegalWord(String),
    #[error("hammer-remote: request does not match restricted command")]
    CommandMismatch,
    #[error("hammer-remote: restricted target")]
    RestrictedTarget,
    #[error("hammer-remote: '..' not allowed")]
    DotDot,
    /// The client's command line did not parse.
    #[error("hammer-remote: {0}")]
    BadCommandLine(String),
}

/// Options a remote client may pass through ssh-remote: the ones
/// mirror-copy and mirror-stream forward (protocol.md §10.1) and harmless
/// tuning. Everything else (`-c`, `-e` write files; `-R`, `-T` are the
/// restriction; `-f`, `-C`, `-m`, ...) is refused.
const CLIENT_OPTIONS: &str = "2vqytSBib";

/// Characters of a word that needs no quoting for a shell.
fn plain_word(w: &str) -> bool {
    w.bytes().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'_' | b'@' | b'%' | b'+' | b'=' | b':' | b',' | b'.' | b'/' | b'-'
            )
    })
}

/// Turns `$SSH_ORIGINAL_COMMAND` into the restricted invocation that
/// `hammer ssh-remote <cmd> <target>` runs in-process (no exec, no shell).
pub fn ssh_remote_invocation(
    restrict_cmd: &str,
    restrict_path: &str,
    original: Option<&str>,
) -> Result<Invocation, RestrictError> {
    let original = original.ok_or(RestrictError::MissingEnv)?;
    // D13: repeated separators no longer make empty words.
    let mut words = original
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty());
    let first = words.next().ok_or(RestrictError::NullCommand)?;
    if !first.contains("hammer") {
        return Err(RestrictError::NotHammer);
    }
    let client: Vec<&str> = words.collect();
    check_client_words(&client)?;
    let argv = ["hammer", "-R", restrict_cmd, "-T", restrict_path]
        .into_iter()
        .chain(client)
        .map(OsString::from);
    cli::parse(argv).map_err(|e| RestrictError::BadCommandLine(e.to_string()))
}

/// D11: every option word before the command must be an admitted option;
/// every word must be free of shell syntax.
fn check_client_words(words: &[&str]) -> Result<(), RestrictError> {
    let mut in_options = true;
    let mut expect_value = false;
    for w in words {
        if !plain_word(w) {
            return Err(RestrictError::IllegalWord((*w).to_string()));
        }
        if expect_value {
            expect_value = false;
            continue;
        }
        if !in_options || !w.starts_with('-') || *w == "-" {
            in_options = false;
            continue;
        }
        if *w == "--" {
            in_options = false;
            continue;
        }
        let cluster: Vec<char> = w[1..].chars().collect();
        for (i, &c) in cluster.iter().enumerate() {
            if !CLIENT_OPTIONS.contains(c) {
                return Err(RestrictError::OptionRefused(c));
            }
            if cli::takes_argument(c) == Some(true) {
                expect_value = i + 1 == cluster.len();
                break;
            }
        }
    }
    Ok(())
}

/// The path arguments of a command, for the `-T` check; `None` for a
/// command whose arguments are not known to be confinable.
fn path_args<'a>(command: &str, args: &'a [String]) -> Option<Vec<&'a str>> {
    let first = || args.first().map(String::as_str).into_iter().collect();
    match command {
        "mirror-read" | "mirror-read-stream" | "mirror-write" | "pfs-master" | "pfs-slave"
        | "pfs-update" | "pfs-upgrade" | "pfs-downgrade" | "pfs-destroy" | "synctid" => {
            Some(first())
        }
        "pfs-status" => Some(if args.is_empty() {
            vec!["."]
        } else {
            args.iter().map(String::as_str).collect()
        }),
        "mirror-dump" => Some(Vec::new()),
        _ => None,
    }
}

/// Commands that create their path when it does not exist (mirror-write
/// by auto-creating the slave).
fn creates_path(command: &str) -> bool {
    matches!(command, "mirror-write" | "pfs-master" | "pfs-slave")
}

/// The `-R` and `-T` checks, applied before any command runs (so nothing,
/// not even a two-way target's PFSD, goes out for a refused path).
pub fn check(inv: &Invocation) -> Result<(), RestrictError> {
    if let Some(list) = &inv.opts.restrict_cmd {
        if !list.split(',').any(|c| c == inv.command) {
            return Err(RestrictError::CommandMismatch);
        }
    }
    if let Some(prefix) = &inv.opts.restrict_path {
        let paths = path_args(&inv.command, &inv.args).ok_or(RestrictError::RestrictedTarget)?;
        for p in paths {
            check_path(Path::new(prefix), p, creates_path(&inv.command))?;
        }
    }
    Ok(())
}

/// The PFS that `path` opens must be named inside `prefix` (canonical):
/// by a PFS link lying there, or as the PFS whose root directory lies
/// there; a path that does not exist yet, only for a command that
/// `creates` it, by where its link would be made. `@@` references in the
/// path itself are refused: they name any PFS from anywhere.
pub fn check_path(prefix: &Path, path: &str, creates: bool) -> Result<(), RestrictError> {
    if Path::new(path)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(RestrictError::DotDot);
    }
    let prefix = canonical_or_parent(prefix).ok_or(RestrictError::RestrictedTarget)?;
    let admitted = match pfs_place(path) {
        Some(PfsPlace::Link(p) | PfsPlace::Root(p)) => p.starts_with(&prefix),
        Some(PfsPlace::Missing(p)) => creates && p.starts_with(&prefix),
        None => false,
    };
    if admitted {
        Ok(())
    } else {
        Err(RestrictError::RestrictedTarget)
    }
}

/// The prefix made canonical; one that is a store's PFS link (which
/// dangles) or does not exist yet, by its canonical parent.
fn canonical_or_parent(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name()?;
    Some(parent.canonicalize().ok()?.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfs::store::Store;

    fn inv(original: &str, prefix: &str) -> Result<Invocation, RestrictError> {
        ssh_remote_invocation("mirror-write", prefix, Some(original))
    }

    #[test]
    fn original_command_checks() {
        assert_eq!(
            ssh_remote_invocation("a", "/", None),
            Err(RestrictError::MissingEnv)
        );
        assert_eq!(inv("", "/"), Err(RestrictError::NullCommand));
        assert_eq!(inv("   ", "/"), Err(RestrictError::NullCommand));
        assert_eq!(inv("rm -rf /", "/"), Err(RestrictError::NotHammer));
    }

    #[test]
    fn d11_client_options_filtered() {
        let ok = inv("hammer -vv -y -2 -S 1g -t 30 mirror-write /b/x", "/").unwrap();
        assert_eq!(ok.command, "mirror-write");
        assert_eq!(ok.opts.restrict_cmd.as_deref(), Some("mirror-write"));
        assert_eq!(ok.opts.restrict_path.as_deref(), Some("/"));
        assert_eq!(ok.opts.verbose, 2);
        assert_eq!(
            inv("hammer -c /etc/passwd mirror-write /b", "/"),
            Err(RestrictError::OptionRefused('c'))
        );
        assert_eq!(
            inv("hammer -2e/tmp/x mirror-write /b", "/"),
            Err(RestrictError::OptionRefused('e'))
        );
        assert_eq!(
            inv("hammer -T / mirror-write /b", "/b"),
            Err(RestrictError::OptionRefused('T'))
        );
        // Option-looking words after the command are arguments, not options.
        assert!(inv("hammer mirror-write -c", "/").is_ok());
    }

    #[test]
    fn shell_syntax_refused() {
        for bad in [
            "/b/x;id", "/b/$(id)", "/b/'x'", "/b/`id`", "/b/a|b", "/b/\"q\"",
        ] {
            assert!(
                matches!(
                    inv(&format!("hammer -2 mirror-write {bad}"), "/"),
                    Err(RestrictError::IllegalWord(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn restricted_command_list() {
        let mut i = inv("hammer mirror-read /x", "/").unwrap();
        assert_eq!(check(&i), Err(RestrictError::CommandMismatch));
        i.opts.restrict_cmd = Some("mirror-write,mirror-read".into());
        i.opts.restrict_path = None;
        assert_eq!(check(&i), Ok(()));
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    #[test]
    fn d11_path_prefix_is_component_wise_and_canonical() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // The prefix is a store: its root, PFS#0's, lies inside it.
        Store::create(&root.join("backup")).unwrap();
        std::fs::create_dir(root.join("backupfoo")).unwrap();
        std::os::unix::fs::symlink(root, root.join("backup/escape")).unwrap();
        std::os::unix::fs::symlink("@@PFS00001", root.join("backup/pfs")).unwrap();
        let prefix = root.join("backup");
        let check = |p: &str| check_path(&prefix, s(&root.join(p)), true);
        assert_eq!(check("backup/new"), Ok(()));
        assert_eq!(check("backup/pfs"), Ok(()));
        assert_eq!(check("backup"), Ok(()));
        assert_eq!(check("backupfoo/x"), Err(RestrictError::RestrictedTarget));
        assert_eq!(
            check("backup/escape/x"),
            Err(RestrictError::RestrictedTarget)
        );
        assert_eq!(check("backup/../x"), Err(RestrictError::DotDot));
        assert_eq!(check("nope/x"), Err(RestrictError::RestrictedTarget));
    }

    /// One store, one directory per client: a client reaches the PFSes its
    /// links name and nothing else, whatever form its path takes.
    #[test]
    fn the_pfs_a_path_opens_is_judged_not_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("backup");
        Store::create(&store).unwrap();
        for c in ["clientA", "clientB", "clientA/sub"] {
            std::fs::create_dir(store.join(c)).unwrap();
        }
        let link = |target: &str, name: &str| {
            std::os::unix::fs::symlink(target, store.join(name)).unwrap()
        };
        link("@@PFS00001", "clientA/pfs");
        link("@@PFS00002", "clientB/pfs");
        link("../clientB/pfs", "clientA/alias");
        // A link the administrator put there names that PFS for the client.
        link("@@PFS00003", "clientA/granted");
        let prefix = store.join("clientA");
        let check = |p: &str, creates| check_path(&prefix, s(&store.join(p)), creates);
        for creates in [false, true] {
            for ok in [
                "clientA/pfs",
                "clientA/pfs/",
                "clientA/pfs//",
                "clientA/granted",
            ] {
                assert_eq!(check(ok, creates), Ok(()), "{ok}");
            }
            for refused in [
                "clientA/@@-1:00002",
                "clientA/@@-1:00002/",
                "clientA/@@0x0000000100000000:00002",
                "clientA/@@PFS00002",
                "clientA/@@-1:00001",
                "clientA/@@-1:00002/x",
                // Plain directories are PFS#0's, whose root is the store's.
                "clientA",
                "clientA/",
                "clientA/sub",
                "clientA/alias",
                "clientA/pfs/x",
                "clientB/pfs",
                "clientB/new",
            ] {
                assert_eq!(
                    check(refused, creates),
                    Err(RestrictError::RestrictedTarget),
                    "{refused}"
                );
            }
        }
        // A new slave or PFS, by the commands that create one.
        assert_eq!(check("clientA/new", true), Ok(()));
        assert_eq!(check("clientA/sub/new/", true), Ok(()));
        assert_eq!(
            check("clientA/new", false),
            Err(RestrictError::RestrictedTarget)
        );
        // The whole store as the prefix admits PFS#0 too; a prefix that is
        // a PFS link admits that link.
        assert_eq!(check_path(&store, s(&prefix), false), Ok(()));
        let pfs = store.join("clientA/pfs");
        assert_eq!(check_path(&pfs, s(&pfs), false), Ok(()));
        assert_eq!(
            check_path(&pfs, s(&store.join("clientB/pfs")), false),
            Err(RestrictError::RestrictedTarget)
        );
    }

    #[test]
    fn only_creating_commands_admit_a_missing_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s");
        Store::create(&store).unwrap();
        let prefix = s(&store).to_string();
        let new = store.join("new").display().to_string();
        for (cmd, ok) in [
            ("mirror-write", true),
            ("pfs-slave", true),
            ("pfs-master", true),
            ("mirror-read", false),
            ("pfs-status", false),
            ("synctid", false),
        ] {
            let mut i = inv(&format!("hammer {cmd} {new}"), &prefix).unwrap();
            i.opts.restrict_cmd = None;
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
        let mut i = inv("hammer cleanup /x", "/").unwrap();
        i.opts.restrict_cmd = None;
        assert_eq!(check(&i), Err(RestrictError::RestrictedTarget));
    }
}

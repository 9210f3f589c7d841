//! Restricted remote access (protocol.md §11), with D11 and D13 fixed: the
//! filter on a forced command's client words, and the `-R` / `-T` checks,
//! `-T` confining the PFS a path opens, not its text, for every command it
//! admits.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::pfs::getpfs::{pfs_place, PfsPlace};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestrictError {
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
}

/// Options a remote client may pass through ssh-remote, in getopt(3) form:
/// the ones mirror-copy and mirror-stream forward (protocol.md §10.1, and
/// this tool's `-z`) and harmless tuning. Everything else (`-c`, `-e` write files; `-R`, `-T`
/// are the restriction; `-f`, `-C`, `-m`, ...) is refused.
pub const CLIENT_OPTIONS: &str = "2vqyt:S:Bi:b:z";

/// Whether client option `c` is admitted, and if so whether it takes an
/// argument.
fn client_option(c: char) -> Option<bool> {
    let i = CLIENT_OPTIONS.find(c).filter(|_| c != ':')?;
    Some(CLIENT_OPTIONS[i + c.len_utf8()..].starts_with(':'))
}

/// Characters of a word that needs no quoting for a shell.
fn plain_word(w: &[u8]) -> bool {
    w.iter().all(|&c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'_' | b'@' | b'%' | b'+' | b'=' | b':' | b',' | b'.' | b'/' | b'-'
            )
    })
}

/// D11: every option word before the command must be an admitted option;
/// every word must be free of shell syntax.
pub fn check_client_words(words: &[&OsStr]) -> Result<(), RestrictError> {
    let mut in_options = true;
    let mut expect_value = false;
    for w in words {
        let w = w.as_bytes();
        if !plain_word(w) {
            return Err(RestrictError::IllegalWord(
                String::from_utf8_lossy(w).into_owned(),
            ));
        }
        if expect_value {
            expect_value = false;
            continue;
        }
        if !in_options || !w.starts_with(b"-") || w == b"-" {
            in_options = false;
            continue;
        }
        if w == b"--" {
            in_options = false;
            continue;
        }
        // A plain word is ASCII: each byte is an option letter.
        let cluster = &w[1..];
        for (i, &c) in cluster.iter().enumerate() {
            let c = char::from(c);
            match client_option(c) {
                None => return Err(RestrictError::OptionRefused(c)),
                Some(true) => {
                    expect_value = i + 1 == cluster.len();
                    break;
                }
                Some(false) => {}
            }
        }
    }
    Ok(())
}

/// `-R`: the command word must be one of the comma-separated `list`.
pub fn check_command(list: &OsStr, command: &OsStr) -> Result<(), RestrictError> {
    let command = command.as_bytes();
    if list.as_bytes().split(|&c| c == b',').any(|c| c == command) {
        Ok(())
    } else {
        Err(RestrictError::CommandMismatch)
    }
}

/// `-T`: every path a command opens must pass `check_path` under
/// `prefix`; a command that `creates` its path may name one that does not
/// exist yet. Applied before the command runs, so nothing, not even a
/// two-way target's PFSD, goes out for a refused path.
pub fn confine(prefix: &Path, paths: &[&Path], creates: bool) -> Result<(), RestrictError> {
    for p in paths {
        check_path(prefix, p, creates)?;
    }
    Ok(())
}

/// The PFS that `path` opens must be named inside `prefix` (canonical):
/// by a PFS link lying there, or as the PFS whose root directory lies
/// there; a path that does not exist yet, only for a command that
/// `creates` it, by where its link would be made. `@@` references in the
/// path itself are refused: they name any PFS from anywhere.
pub fn check_path(prefix: &Path, path: &Path, creates: bool) -> Result<(), RestrictError> {
    if path.components().any(|c| c == Component::ParentDir) {
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

    fn check_client_words(words: &[&str]) -> Result<(), RestrictError> {
        let words: Vec<&OsStr> = words.iter().map(OsStr::new).collect();
        super::check_client_words(&words)
    }

    fn check_command(list: &str, command: &str) -> Result<(), RestrictError> {
        super::check_command(OsStr::new(list), OsStr::new(command))
    }

    #[test]
    fn client_options_and_their_arguments() {
        assert_eq!(check_client_words(&["-vv", "-y", "-2", "-S", "1g"]), Ok(()));
        assert_eq!(check_client_words(&["-t30", "mirror-write", "-c"]), Ok(()));
        assert_eq!(
            check_client_words(&["-2e/tmp/x", "mirror-write"]),
            Err(RestrictError::OptionRefused('e'))
        );
        // A refused letter in an option's value is no option.
        assert_eq!(check_client_words(&["-S", "-c", "mirror-read"]), Ok(()));
        assert_eq!(
            check_client_words(&["-v:", "x"]),
            Err(RestrictError::OptionRefused(':'))
        );
    }

    #[test]
    fn restricted_command_list() {
        assert_eq!(
            check_command("mirror-write", "mirror-read"),
            Err(RestrictError::CommandMismatch)
        );
        assert_eq!(
            check_command("mirror-write,mirror-read", "mirror-read"),
            Ok(())
        );
        assert_eq!(
            check_command("mirror-write", "mirror-writ"),
            Err(RestrictError::CommandMismatch)
        );
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
        let check = |p: &str| check_path(&prefix, &root.join(p), true);
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
        let check = |p: &str, creates| check_path(&prefix, &store.join(p), creates);
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
        assert_eq!(check_path(&store, &prefix, false), Ok(()));
        let pfs = store.join("clientA/pfs");
        assert_eq!(check_path(&pfs, &pfs, false), Ok(()));
        assert_eq!(
            check_path(&pfs, &store.join("clientB/pfs"), false),
            Err(RestrictError::RestrictedTarget)
        );
    }
}

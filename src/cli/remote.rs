//! `ssh-remote`'s client command line: `$SSH_ORIGINAL_COMMAND` split into
//! words, filtered (restrict.rs) and parsed under the forced command's `-R`
//! and `-T` (protocol.md §11), with D11 and D13 fixed.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::restrict::{check_client_words, RestrictError};
use super::{parse, CliError, Invocation};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SshRemoteError {
    #[error("SSH_ORIGINAL_COMMAND env missing")]
    MissingEnv,
    #[error("hammer-remote: null command")]
    NullCommand,
    #[error("hammer-remote: Command not 'hammer'")]
    NotHammer,
    /// D11: a refused option or word.
    #[error(transparent)]
    Refused(#[from] RestrictError),
    /// The client's options did not parse.
    #[error("hammer-remote: {0}")]
    BadCommandLine(CliError),
    /// The client's command refused as it would be on a command line of
    /// its own (a usage error, `-R`).
    #[error(transparent)]
    Command(CliError),
}

/// Turns `$SSH_ORIGINAL_COMMAND` into the restricted invocation that
/// `hammer ssh-remote <cmd> <target>` runs in-process (no exec, no shell).
pub fn ssh_remote_invocation(
    restrict_cmd: &OsStr,
    restrict_path: &Path,
    original: Option<&OsStr>,
) -> Result<Invocation, SshRemoteError> {
    let original = original.ok_or(SshRemoteError::MissingEnv)?;
    // D13: repeated separators no longer make empty words.
    let mut words = original
        .as_bytes()
        .split(|c| b" \t\r\n".contains(c))
        .filter(|w| !w.is_empty())
        .map(OsStr::from_bytes);
    let first = words.next().ok_or(SshRemoteError::NullCommand)?;
    if !first.as_bytes().windows(6).any(|w| w == b"hammer") {
        return Err(SshRemoteError::NotHammer);
    }
    let client: Vec<&OsStr> = words.collect();
    check_client_words(&client)?;
    let argv = [
        OsStr::new("hammer"),
        OsStr::new("-R"),
        restrict_cmd,
        OsStr::new("-T"),
        restrict_path.as_os_str(),
    ]
    .into_iter()
    .chain(client)
    .map(OsStr::to_os_string);
    parse(argv).map_err(|e| match e {
        CliError::Usage(_)
        | CliError::UnknownCommand { .. }
        | CliError::OptionAfterCommand { .. }
        | CliError::Restricted(_) => SshRemoteError::Command(e),
        e => SshRemoteError::BadCommandLine(e),
    })
}

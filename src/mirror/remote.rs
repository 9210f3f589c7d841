//! `[[user@]host:]<fs>` arguments of mirror-copy / mirror-stream and the ssh
//! argument vector for a remote side (spec: protocol.md §10.1), with D6 and
//! D7 fixed.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::copy::CopyOptions;
use crate::patharg::PathArg;

/// How a remote side is reached (besides what mirror-copy forwards of the
/// source's and target's options).
#[derive(Clone, Debug, Default)]
pub struct SshOptions {
    /// `-X`: ssh compresses.
    pub compress: bool,
    /// `-p`: ssh's port.
    pub port: Option<OsString>,
    /// `-S` as typed, forwarded to a remote source.
    pub splitup_text: Option<OsString>,
}

/// A remote side: `[user@]host:path`, as bytes (so is ssh's argv).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSpec {
    pub user: Option<OsString>,
    pub host: OsString,
    pub path: OsString,
}

/// Where one side of a copy runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Side {
    Local(PathArg),
    Remote(RemoteSpec),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// D6: ssh would take such a word as an option.
    #[error("refusing remote host '{0}': a host may not begin with '-'")]
    DashHost(String),
    #[error("refusing remote user '{0}': a user may not begin with '-'")]
    DashUser(String),
    #[error("missing host name in '{0}'")]
    EmptyHost(String),
    #[error("missing user name in '{0}'")]
    EmptyUser(String),
}

/// Splits a side argument. A colon makes it remote unless what precedes
/// the colon cannot be a host: it contains a `/`, or starts with `@@` (a
/// HAMMER PFS path such as `@@-1:00001`) — D7. `@` only separates a user
/// when it comes before that colon.
pub fn parse_side(arg: &OsStr) -> Result<Side, RemoteError> {
    let bytes = arg.as_bytes();
    let local = || Ok(Side::Local(PathArg::from(arg.to_os_string())));
    let Some(colon) = bytes.iter().position(|&c| c == b':') else {
        return local();
    };
    let before = &bytes[..colon];
    if before.contains(&b'/') || before.starts_with(b"@@") {
        return local();
    }
    let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (user, host) = match before.iter().position(|&c| c == b'@') {
        Some(at) => (Some(&before[..at]), &before[at + 1..]),
        None => (None, before),
    };
    if host.is_empty() {
        return Err(RemoteError::EmptyHost(shown(bytes)));
    }
    if host.starts_with(b"-") {
        return Err(RemoteError::DashHost(shown(host)));
    }
    if let Some(u) = user {
        if u.is_empty() {
            return Err(RemoteError::EmptyUser(shown(bytes)));
        }
        if u.starts_with(b"-") {
            return Err(RemoteError::DashUser(shown(u)));
        }
    }
    let owned = |b: &[u8]| OsStr::from_bytes(b).to_os_string();
    Ok(Side::Remote(RemoteSpec {
        user: user.map(owned),
        host: owned(host),
        path: owned(&bytes[colon + 1..]),
    }))
}

/// What the remote hammer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Source { stream: bool },
    Target,
}

/// Quotes a word for the remote login shell, which re-parses the words ssh
/// joins with spaces (D6). Words made only of characters no shell treats
/// specially go as they are, so ordinary paths give the original's argv.
pub fn shell_word(w: &OsStr) -> OsString {
    let w = w.as_bytes();
    let plain = !w.is_empty()
        && w.iter().all(|&c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'_' | b'@' | b'%' | b'+' | b'=' | b':' | b',' | b'.' | b'/' | b'-'
                )
        });
    if plain {
        return OsStr::from_bytes(w).to_os_string();
    }
    let mut q = vec![b'\''];
    for &c in w {
        match c {
            b'\'' => q.extend_from_slice(b"'\\''"),
            c => q.push(c),
        }
    }
    q.push(b'\'');
    OsString::from_vec(q)
}

/// The argument vector exec'd for a remote side (program first).
pub fn ssh_argv(rsh: &OsStr, o: &CopyOptions, spec: &RemoteSpec, role: Role) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![rsh.into()];
    if o.ssh.compress {
        v.push("-C".into());
    }
    if let Some(user) = &spec.user {
        v.push("-l".into());
        v.push(user.clone());
    }
    v.push(spec.host.clone());
    if let Some(port) = &o.ssh.port {
        v.push("-p".into());
        v.push(port.clone());
    }
    v.push("hammer".into());
    match o.read.verbose {
        0 => {}
        1 => v.push("-v".into()),
        2 => v.push("-vv".into()),
        _ => v.push("-vvv".into()),
    }
    // Not forwarded by the original; a quiet copy wants its remote side
    // quiet too (an original hammer there takes -q as well).
    if o.read.quiet {
        v.push("-q".into());
    }
    if o.write.yes {
        v.push("-y".into());
    }
    // The source compresses; the target's one -z says to decompress.
    match (o.compress, role) {
        (0, _) => {}
        (n, Role::Source { .. }) => v.push(format!("-{}", "z".repeat(n.min(3) as usize)).into()),
        (_, Role::Target) => v.push("-z".into()),
    }
    v.push("-2".into());
    if let Role::Source { stream } = role {
        if let Some(t) = o.read.timeout {
            v.push("-t".into());
            v.push(t.as_secs().to_string().into());
        }
        if let Some(s) = &o.ssh.splitup_text {
            v.push("-S".into());
            v.push(shell_word(s));
        }
        v.push(
            if stream {
                "mirror-read-stream"
            } else {
                "mirror-read"
            }
            .into(),
        );
    } else {
        v.push("mirror-write".into());
    }
    v.push(shell_word(&spec.path));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The options of a copy, as `set` makes them.
    fn opts(set: impl FnOnce(&mut CopyOptions)) -> CopyOptions {
        let mut o = CopyOptions::default();
        set(&mut o);
        o
    }

    fn side(arg: &str) -> Result<Side, RemoteError> {
        parse_side(OsStr::new(arg))
    }

    fn remote(arg: &str) -> RemoteSpec {
        match side(arg).unwrap() {
            Side::Remote(r) => r,
            s => panic!("{arg} parsed as {s:?}"),
        }
    }

    /// The argument vector as text.
    fn ssh_argv(rsh: &str, o: &CopyOptions, spec: &RemoteSpec, role: Role) -> Vec<String> {
        super::ssh_argv(OsStr::new(rsh), o, spec, role)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    /// spec: protocol.md §10.1, first example.
    #[test]
    fn spec_example_stream_source() {
        // -v -X -p 2222 -t 3600 -S 1g
        let o = opts(|o| {
            o.read.verbose = 1;
            o.ssh.compress = true;
            o.ssh.port = Some("2222".into());
            o.read.timeout = Some(Duration::from_secs(3600));
            o.ssh.splitup_text = Some("1g".into());
        });
        let argv = ssh_argv(
            "ssh",
            &o,
            &remote("root@src:/pfs/a"),
            Role::Source { stream: true },
        );
        assert_eq!(
            argv.join(" "),
            "ssh -C -l root src -p 2222 hammer -v -2 -t 3600 -S 1g mirror-read-stream /pfs/a"
        );
    }

    /// spec: protocol.md §10.1, second example.
    #[test]
    fn spec_example_copy_target() {
        let argv = ssh_argv(
            "ssh",
            &opts(|o| o.write.yes = true),
            &remote("backup:/pfs/b"),
            Role::Target,
        );
        assert_eq!(
            argv,
            [
                "ssh",
                "backup",
                "hammer",
                "-y",
                "-2",
                "mirror-write",
                "/pfs/b"
            ]
        );
    }

    /// Beyond the original: a quiet copy asks its remote side for quiet.
    #[test]
    fn quiet_is_forwarded() {
        let quiet_yes = opts(|o| {
            o.read.quiet = true;
            o.write.quiet = true;
            o.write.yes = true;
        });
        let argv = ssh_argv("ssh", &quiet_yes, &remote("b:/p"), Role::Target);
        assert_eq!(argv.join(" "), "ssh b hammer -q -y -2 mirror-write /p");
        // -q -v: the two cancel (cli's verbose_and_quiet_cancel).
        let argv = ssh_argv("ssh", &opts(|_| ()), &remote("b:/p"), Role::Target);
        assert_eq!(argv.join(" "), "ssh b hammer -2 mirror-write /p");
    }

    #[test]
    fn verbosity_levels_and_rsh() {
        let argv = ssh_argv(
            "/opt/rsh",
            &opts(|o| o.read.verbose = 4),
            &remote("h:p"),
            Role::Source { stream: false },
        );
        assert_eq!(
            argv,
            ["/opt/rsh", "h", "hammer", "-vvv", "-2", "mirror-read", "p"]
        );
    }

    /// D7: PFS paths with a colon stay local; `@` after the colon is path.
    #[test]
    fn d7_local_colon_paths_and_late_at() {
        assert_eq!(
            side("@@-1:00001").unwrap(),
            Side::Local("@@-1:00001".into())
        );
        assert_eq!(
            side("/pfs/@@-1:00001").unwrap(),
            Side::Local("/pfs/@@-1:00001".into())
        );
        assert_eq!(side("./a:b").unwrap(), Side::Local("./a:b".into()));
        assert_eq!(
            remote("host:/pfs/@@0x100:00001"),
            RemoteSpec {
                user: None,
                host: "host".into(),
                path: "/pfs/@@0x100:00001".into()
            }
        );
        assert_eq!(remote("u@h:").path, "");
    }

    /// D6: an option-looking host or user is refused; odd paths are quoted.
    #[test]
    fn d6_dash_host_refused_and_paths_quoted() {
        assert_eq!(
            side("-oProxyCommand=x:/x"),
            Err(RemoteError::DashHost("-oProxyCommand=x".into()))
        );
        assert_eq!(side("-l@h:/x"), Err(RemoteError::DashUser("-l".into())));
        assert!(matches!(side(":/x"), Err(RemoteError::EmptyHost(_))));
        assert!(matches!(side("@h:/x"), Err(RemoteError::EmptyUser(_))));
        let argv = ssh_argv(
            "ssh",
            &opts(|_| ()),
            &remote("h:/a b;$(id)'x"),
            Role::Target,
        );
        assert_eq!(argv.last().unwrap(), r#"'/a b;$(id)'\''x'"#);
        assert_eq!(shell_word(OsStr::new("")), "''");
        assert_eq!(
            shell_word(OsStr::from_bytes(b"/p\xff")).as_bytes(),
            b"'/p\xff'"
        );
    }
}

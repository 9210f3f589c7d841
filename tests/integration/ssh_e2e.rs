//! mirror-copy, mirror-stream and ssh-remote over real ssh: an sshd on
//! 127.0.0.1 with throwaway keys, one plain key and one forced to
//! `hammer ssh-remote <commands> <prefix>`. Needs openssh-server, so the
//! tests are ignored unless asked for (`cargo test -- --include-ignored`;
//! `.ci/run` installs sshd and does).

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::common::*;

const SSHD: &str = "/usr/sbin/sshd";

struct Sshd {
    child: Child,
    dir: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

fn script(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Starts sshd in `dir`; the forced key may run `commands` (ssh-remote's
/// comma-separated list) on `prefix`.
fn start_sshd(dir: &Path, commands: &str, prefix: &Path) -> Sshd {
    assert!(
        Path::new(SSHD).exists(),
        "{SSHD} is not installed (apt-get install openssh-server openssh-client)"
    );
    fs::create_dir_all("/run/sshd").ok();
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_hammer"), bin.join("hammer")).unwrap();
    for k in ["host_key", "id", "forced"] {
        keygen(&dir.join(k));
    }
    let pubkey = |k: &str| fs::read_to_string(dir.join(format!("{k}.pub"))).unwrap();
    let env = format!("environment=\"PATH={}:/usr/bin:/bin\"", bin.display());
    fs::write(
        dir.join("authorized_keys"),
        format!(
            "{env} {}command=\"{} ssh-remote {commands} {}\",{env},no-pty {}",
            pubkey("id"),
            bin.join("hammer").display(),
            prefix.display(),
            pubkey("forced")
        ),
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fs::write(
        dir.join("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PidFile {}\nStrictModes no\nUsePAM no\nPermitRootLogin yes\n\
             PermitUserEnvironment yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nLogLevel ERROR\n",
            dir.join("host_key").display(),
            dir.join("authorized_keys").display(),
            dir.join("sshd.pid").display()
        ),
    )
    .unwrap();
    for (name, key) in [("ssh_config", "id"), ("ssh_config_forced", "forced")] {
        fs::write(
            dir.join(name),
            format!(
                "Host *\n  HostName 127.0.0.1\n  Port {port}\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
                 StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n",
                dir.join(key).display()
            ),
        )
        .unwrap();
    }
    script(
        &dir.join("rsh"),
        &format!("exec ssh -F {} \"$@\"", dir.join("ssh_config").display()),
    );
    script(
        &dir.join("rsh-forced"),
        &format!(
            "exec ssh -F {} \"$@\"",
            dir.join("ssh_config_forced").display()
        ),
    );
    // sshd's log goes to a file, not into the test output; it is shown
    // when sshd fails to start.
    let log = dir.join("sshd.log");
    let child = Command::new(SSHD)
        .arg("-D")
        .arg("-E")
        .arg(&log)
        .arg("-f")
        .arg(dir.join("sshd_config"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        "sshd to start",
        10,
        || TcpStream::connect(("127.0.0.1", port)).is_ok(),
        || fs::read_to_string(&log).unwrap_or_default(),
    );
    Sshd {
        child,
        dir: dir.to_path_buf(),
    }
}

impl Sshd {
    fn hammer(&self, rsh: &str, args: &[&str]) -> Output {
        hammer()
            .env("HAMMER_RSH", self.dir.join(rsh))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `hammer -y -i 0 mirror-copy <from> <to>` through the remote shell
    /// `rsh`, which must succeed.
    fn copy(&self, rsh: &str, from: &str, to: &str) {
        let out = self.hammer(rsh, &["-y", "-i", "0", "mirror-copy", from, to]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }

    /// Runs `command` on the server with the forced key.
    fn forced(&self, command: &str) -> Output {
        self.forced_with_input(command, b"")
    }

    /// Runs `command` on the server with the forced key, `input` on its
    /// standard input.
    fn forced_with_input(&self, command: &str, input: &[u8]) -> Output {
        run_with_input(
            Command::new("ssh")
                .arg("-F")
                .arg(self.dir.join("ssh_config_forced"))
                .args(["localhost", command]),
            input,
        )
    }
}

#[test]
#[ignore = "needs openssh-server's sshd on 127.0.0.1: cargo test -- --include-ignored, as .ci/run does"]
fn mirror_copy_and_stream_over_ssh() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    let sshd = start_sshd(&dir.path().join("ssh"), "mirror-write", &src);
    make_history(&src, 20, 3, 5000);
    let m = src.join("master").display().to_string();
    let s = src.join("slave").display().to_string();
    sshd.copy("rsh", &m, &format!("localhost:{s}"));
    assert_mirrored((&src, 1), (&src, 2));
    let t = make_history(&src, 20, 1, 100);
    // Remote source this time.
    let out = sshd.hammer(
        "rsh",
        &["-i", "0", "mirror-copy", &format!("root@localhost:{m}"), &s],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_mirrored((&src, 1), (&src, 2));
    assert!(sync_end(&src, 2) > t);

    let mut stream = hammer()
        .env("HAMMER_RSH", sshd.dir.join("rsh"))
        .args(["-i", "0", "mirror-stream", &m, &format!("localhost:{s}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = make_history(&src, 20, 1, 200);
    wait_for(
        "mirror-stream over ssh to follow",
        30,
        || sync_end(&src, 2) > t,
        String::new,
    );
    let _ = stream.kill();
    let _ = stream.wait();
    assert_mirrored((&src, 1), (&src, 2));
}

#[test]
#[ignore = "needs openssh-server's sshd on 127.0.0.1: cargo test -- --include-ignored, as .ci/run does"]
fn ssh_remote_forced_command_confines_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    let prefix = src.join("backup");
    fs::create_dir(&prefix).unwrap();
    let sshd = start_sshd(&dir.path().join("ssh"), "mirror-write", &prefix);
    make_history(&src, 5, 2, 1000);
    let m = src.join("master").display().to_string();
    // Allowed: a mirror-write inside the prefix (store links may live in a
    // subdirectory of the store).
    let slave = prefix.join("slave").display().to_string();
    sshd.copy("rsh-forced", &m, &format!("localhost:{slave}"));
    assert_mirrored((&src, 1), (&src, 2));

    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, prefix.join("escape")).unwrap();
    let p = prefix.display();
    let pwned = dir.path().join("pwned");
    let cases = [
        (
            format!("hammer -2 mirror-write {}/x", outside.display()),
            "hammer: hammer-remote: restricted target",
        ),
        (
            format!("hammer -2 mirror-write {p}/../x"),
            "hammer: hammer-remote: '..' not allowed",
        ),
        (
            format!("hammer -2 mirror-write {p}/escape/x"),
            "hammer: hammer-remote: restricted target",
        ),
        (
            format!("hammer -2 mirror-read {m}"),
            "hammer: hammer-remote: request does not match restricted command",
        ),
        (
            format!("hammer pfs-destroy {slave}"),
            "hammer: hammer-remote: request does not match restricted command",
        ),
        (
            format!("hammer -c {p}/cyc -2 mirror-write {slave}"),
            "hammer: hammer-remote: option -c not allowed",
        ),
        (
            format!("hammer -e {p}/sb -2 mirror-write {slave}"),
            "hammer: hammer-remote: option -e not allowed",
        ),
        (
            format!("hammer -2 mirror-write '{p}/a b'"),
            "hammer: hammer-remote: illegal character in",
        ),
        (
            format!("hammer -2 mirror-write {p}/x;touch {}", pwned.display()),
            "hammer: hammer-remote: illegal character in",
        ),
        (
            format!("hammer -2 mirror-write {p}/$(touch {})", pwned.display()),
            "hammer: hammer-remote: illegal character in",
        ),
        (
            format!("hammer -2 mirror-write \"{p}/q\""),
            "hammer: hammer-remote: illegal character in",
        ),
        (
            "rm -rf /".to_string(),
            "hammer: hammer-remote: Command not 'hammer'",
        ),
    ];
    for (cmd, want) in &cases {
        let out = sshd.forced(cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", text(&out.stderr));
        // A line of its own: the account's shell start-up files may write
        // before the forced command runs (a pyenv rehash that lost a race
        // with another session's, on a loaded machine).
        assert!(
            text(&out.stderr).lines().any(|l| l.starts_with(want)),
            "{cmd}: {}",
            text(&out.stderr)
        );
    }
    assert!(!pwned.exists());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert!(!prefix.join("cyc").exists() && !prefix.join("sb").exists());
    assert!(fs::symlink_metadata(prefix.join("x")).is_err());
}

/// Confinement of a forced command, over the path sshd runs: one store, a
/// directory per client, client A's key forced to `ssh-remote
/// mirror-read,mirror-write <store>/clientA`. No `@@` form, trailing `/` or
/// plain directory reads B's PFS, leaks its uuid in the two-way header or
/// writes into it; A's own requests, mirror-copy's included, still work.
#[test]
#[ignore = "needs openssh-server's sshd on 127.0.0.1: cargo test -- --include-ignored, as .ci/run does"]
fn ssh_remote_confines_the_pfs_a_path_opens() {
    use hammer_mirror::pfs::Pfs;
    let dir = tempfile::tempdir().unwrap();
    let store = two_clients(dir.path());
    let a = store.join("clientA");
    let sshd = start_sshd(&dir.path().join("ssh"), "mirror-read,mirror-write", &a);
    let b_before = (pfs_state(&store, 2), pfs_state(&store, 3));
    let b_uuid = open(&store, 3)
        .get_pseudofs()
        .unwrap()
        .shared_uuid
        .to_string();
    let wipe = wipe_stream(&store);
    let ad = a.display();
    let tid = sync_end(&store, 3);
    let mut attempts = Vec::new();
    for p in [
        format!("{ad}/@@-1:00002"),
        format!("{ad}/@@0x{tid:016x}:00003"),
        format!("{ad}/@@-1:00003/"),
        format!("{ad}/@@PFS00002"),
        format!("{ad}"),
        format!("{ad}/"),
    ] {
        attempts.push(format!("hammer mirror-read {p}"));
        attempts.push(format!("hammer -2 -y mirror-write {p}"));
        attempts.push(format!("hammer -y mirror-write {p}"));
    }
    for cmd in &attempts {
        let out = sshd.forced_with_input(cmd, &wipe);
        assert_eq!(
            (
                out.status.code(),
                text(&out.stderr).as_str(),
                out.stdout.len()
            ),
            (Some(1), "hammer: hammer-remote: restricted target\n", 0),
            "{cmd}"
        );
        assert!(!text(&out.stderr).contains(&b_uuid));
    }
    assert!((pfs_state(&store, 2), pfs_state(&store, 3)) == b_before);
    assert!(open(&store, 4).get_pseudofs().is_err(), "a PFS was created");

    // A's own: its master to a local slave and back to a new slave of its
    // own, through mirror-copy's remote sides.
    let local = new_store(dir.path(), "local");
    let copy = local.join("copy").display().to_string();
    sshd.copy("rsh-forced", &format!("localhost:{ad}/pfs"), &copy);
    assert_mirrored((&store, 1), (&local, 1));
    sshd.copy("rsh-forced", &copy, &format!("localhost:{ad}/slave"));
    assert_mirrored((&local, 1), (&store, 4));
    assert!((pfs_state(&store, 2), pfs_state(&store, 3)) == b_before);
}

#[test]
#[ignore = "needs openssh-server's sshd on 127.0.0.1: cargo test -- --include-ignored, as .ci/run does"]
fn mirror_verify_over_ssh_and_through_ssh_remote() {
    use hammer_mirror::ondisk::rectype;
    let dir = tempfile::tempdir().unwrap();
    let st = master_with_history(dir.path());
    let bk = new_store(dir.path(), "bk");
    let sshd = start_sshd(
        &dir.path().join("ssh"),
        "mirror-write,mirror-verify-serve",
        &bk,
    );
    let m = st.join("master").display().to_string();
    let s = bk.join("slave").display().to_string();
    sshd.copy("rsh", &m, &format!("localhost:{s}"));
    let tid = sync_end(&bk, 1);
    let identical = format!("identical as of {tid:#018x}\n");
    // A remote slave, a remote master, both remote; and through the
    // forced command, which admits mirror-verify-serve inside its prefix.
    for (rsh, a, b) in [
        ("rsh", m.clone(), format!("localhost:{s}")),
        ("rsh", format!("localhost:{m}"), s.clone()),
        (
            "rsh",
            format!("root@localhost:{m}"),
            format!("localhost:{s}"),
        ),
        ("rsh-forced", m.clone(), format!("localhost:{s}")),
    ] {
        let out = sshd.hammer(rsh, &["mirror-verify", &a, &b]);
        assert_eq!(out.status.code(), Some(0), "{a} {b}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), identical);
    }
    // -T: the master lies outside the forced command's prefix.
    let out = sshd.hammer(
        "rsh-forced",
        &["mirror-verify", &format!("localhost:{m}"), &s],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("hammer: hammer-remote: restricted target"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "hammer: mirror-verify: master localhost:{m}: ended without answering"
        )),
        "{err}"
    );
    // A damaged slave, found over ssh.
    let victim = &live(&bk, obj_of(&bk, "medium"), rectype::DATA)[0];
    flip_payload_byte(&bk, victim.boff.unwrap() + 100);
    let out = sshd.hammer(
        "rsh-forced",
        &["mirror-verify", &m, &format!("localhost:{s}")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let lines = text(&out.stdout);
    assert!(
        lines.starts_with("slave: lo=")
            && lines.contains(&format!(" obj={:016x} ", victim.leaf.base.obj_id))
            && lines.contains(": payload fails its data CRC\n")
            && lines.contains(": different data\n1 record differs")
            && lines.ends_with("; 1 problem on the slave\n"),
        "{lines}"
    );
}

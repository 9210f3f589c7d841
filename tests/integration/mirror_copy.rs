//! mirror-copy over a socketpair and through a remote-shell program:
//! convergence, exit statuses (D4), argv of the remote side, timeouts with
//! a cycle file (D1, D3).

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::common::*;

#[test]
fn copy_full_then_incremental() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 30, 4, 2000);
    let m = src.join("master");
    let s = src.join("slave");
    let copy = |opts: &[&str]| {
        let mut args = opts.to_vec();
        args.extend([
            "-i",
            "0",
            "mirror-copy",
            m.to_str().unwrap(),
            s.to_str().unwrap(),
        ]);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    };
    copy(&["-y"]);
    let t1 = assert_mirrored((&src, 1), (&src, 2));
    make_history(&src, 30, 3, 10);
    copy(&[]);
    let t2 = assert_mirrored((&src, 1), (&src, 2));
    assert!(t2 > t1);
    // Nothing new: a no-work batch, the slave stays equal.
    copy(&[]);
    // (The slave's own sync-point updates are TIDs of the store too, so
    // its sync point may move; its content must not.)
    assert!(assert_mirrored((&src, 1), (&src, 2)) >= t2);
}

/// spec: protocol.md D4, the exit status reports a failed side.
#[test]
fn d4_copy_exit_status_reports_failure() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 3, 1, 10);
    let m = src.join("master");
    ok(&["pfs-master", src.join("other").to_str().unwrap()]);
    let out = run(&[
        "-i",
        "0",
        "mirror-copy",
        m.to_str().unwrap(),
        src.join("other").to_str().unwrap(),
    ]);
    // The source refuses the target's header; the target then meets the
    // closed channel, which is no failure of its own.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "hammer: mirror-write: source and target have different shared-uuid's!\n"
    );
    let out = run(&[
        "-i",
        "0",
        "mirror-copy",
        "/nonexistent/a",
        m.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// spec: protocol.md D6 and D7 at the command line.
#[test]
fn d6_d7_side_arguments() {
    let out = run(&["mirror-copy", "-oProxyCommand=id:/a", "/b"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "hammer: refusing remote host '-oProxyCommand=id': a host may not begin with '-'\n"
    );
    // A colon after a slash, or in a PFS path, keeps the side local.
    let out = run(&["mirror-copy", "/no/such/@@-1:00001", "@@-1:00002"]);
    assert_stderr_has(&out, "Failed to open /no/such");
    let out = run(&["mirror-copy", "a"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("hammer mirror-read <filesystem> [begin-tid]\n"));
}

/// spec: protocol.md §10.1, the remote argument vector, end to end.
#[test]
fn remote_sides_through_hammer_rsh() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 10, 2, 500);
    let rsh = fake_rsh(dir.path());
    let m = src.join("master");
    let s = src.join("slave");
    let out = hammer()
        .env("HAMMER_RSH", &rsh)
        .args(["-y", "-i", "0", "-X", "-p", "2222", "-S", "1g"])
        .args([
            "mirror-copy",
            &format!("root@src:{}", m.display()),
            &format!("backup:{}", s.display()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_mirrored((&src, 1), (&src, 2));
    let log = fs::read_to_string(dir.path().join("rsh.log")).unwrap();
    let mut lines: Vec<&str> = log.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!(
                "-C -l root src -p 2222 hammer -y -2 -S 1g mirror-read {}",
                m.display()
            ),
            format!(
                "-C backup -p 2222 hammer -y -2 mirror-write {}",
                s.display()
            ),
        ]
    );
}

/// spec: protocol.md D1 and D3: a timed-out two-way copy ends cleanly,
/// leaves a resume point, and the rerun converges exactly.
#[test]
fn d1_d3_timeout_in_two_way_mode_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 40, 2, 60_000);
    let m = src.join("master");
    let s = src.join("slave");
    let cycle = dir.path().join("cycle");
    // Two-way (-B) with a cycle file.
    let copy = |opts: &[&str]| {
        let mut args = vec!["-i", "0", "-B", "-c", cycle.to_str().unwrap()];
        args.extend(opts);
        args.extend(["mirror-copy", m.to_str().unwrap(), s.to_str().unwrap()]);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        out
    };
    let out = copy(&["-y", "-t", "1", "-b", "1m"]);
    assert_stderr_has(&out, "interrupted by timer at");
    assert_stderr_has(&out, "updated for continuation");
    assert_stderr_has(&out, "Mirror-write: received termination request");
    // The slave's sync point did not move.
    assert_eq!(sync_end(&src, 2), 1);
    // Changes made meanwhile travel after the resumed range.
    let last = make_history(&src, 5, 1, 100);
    let out = copy(&[]);
    assert_stderr_has(&out, "Mirror-read: Resuming at object");
    assert_mirrored((&src, 1), (&src, 2));
    assert!(sync_end(&src, 2) > last);
    assert_stderr_has(&out, "Cyclefile");
}

/// The slave exists and its sync point is past TID `t`.
fn slave_synced(src: &std::path::Path, slave: &std::path::Path, t: u64) -> bool {
    std::fs::symlink_metadata(slave).is_ok() && sync_end(src, 2) > t
}

/// mirror-stream keeps the slave following the master, and after its
/// remote side is killed it reconnects and converges.
#[test]
fn mirror_stream_follows_and_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    let t = make_history(&src, 10, 2, 1000);
    let rsh = fake_rsh(dir.path());
    let m = src.join("master");
    let s = src.join("slave");
    let mut child = hammer()
        .env("HAMMER_RSH", &rsh)
        .args(["-y", "-i", "0", "-vv", "mirror-stream", m.to_str().unwrap()])
        .arg(format!("backup:{}", s.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stream.log")).unwrap())
        .spawn()
        .unwrap();
    let log = dir.path().join("stream.log");
    let diag = || {
        format!(
            "master {:x} slave {:x}\n{}",
            sync_end(&src, 1),
            sync_end(&src, 2),
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .replace('\r', "\n")
        )
    };
    wait_for("first sync", 30, || slave_synced(&src, &s, t), diag);
    let t = make_history(&src, 10, 1, 500);
    wait_for("streamed change", 30, || slave_synced(&src, &s, t), diag);
    assert_mirrored((&src, 1), (&src, 2));

    // Kill the remote side (the fake ssh, now running hammer mirror-write).
    let pids = std::process::Command::new("pgrep")
        .args(["-P", &child.id().to_string()])
        .output()
        .unwrap();
    let pids = text(&pids.stdout);
    assert!(!pids.trim().is_empty(), "no remote side running");
    for pid in pids.split_whitespace() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status();
    }
    let t = make_history(&src, 10, 1, 700);
    wait_for(
        "reconnect and converge",
        60,
        || slave_synced(&src, &s, t),
        diag,
    );
    assert_mirrored((&src, 1), (&src, 2));
    let _ = child.kill();
    let _ = child.wait();
}

/// D9 and a vanished remote: a remote shell that cannot start, or that
/// dies at once, is a clear error and a non-zero exit, never a hang.
#[test]
fn d9_remote_side_that_fails_to_start_or_dies() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 2, 1, 10);
    let m = src.join("master");
    let out = hammer()
        .env("HAMMER_RSH", dir.path().join("no-such-rsh"))
        .args(["mirror-copy", m.to_str().unwrap(), "host:/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_stderr_has(&out, "hammer: cannot start");
    let out = hammer()
        .env("HAMMER_RSH", "false")
        .args(["-i", "0", "mirror-copy", m.to_str().unwrap(), "host:/x"])
        .output()
        .unwrap();
    // The remote side failed, said so by us as it said nothing; the
    // source only met its dead channel (EPIPE or a short read), which is
    // not counted nor told.
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "hammer: mirror-copy: the remote target host:/x ended without a word (exit status: 1): \
         check that `false host hammer version` runs this hammer there\n"
    );
}

/// mirror-copy without a controlling terminal (so the slave question
/// cannot be answered), as from cron.
fn copy_without_terminal(args: &[&str]) -> std::process::Output {
    std::process::Command::new("setsid")
        .arg("--wait")
        .arg(env!("CARGO_BIN_EXE_hammer"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("setsid (util-linux) runs")
}

/// The exit status names the side whose own failure came first, with its
/// message alone; the other side, which then only lost its peer (short read,
/// broken pipe, connection reset), is neither counted nor heard.
#[test]
fn exit_status_names_the_side_that_failed_first() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 3, 1, 10);
    let m = src.join("master");
    let ms = m.to_str().unwrap();
    let expect = |out: std::process::Output, code: i32, stderr: &str| {
        assert_eq!(
            (out.status.code(), text(&out.stderr).as_str()),
            (Some(code), stderr)
        );
    };

    let missing = src.join("missing");
    let ok_slave = src.join("slave");
    ok(&[
        "pfs-slave",
        ok_slave.to_str().unwrap(),
        &format!("shared-uuid={}", shared_uuid(&m)),
    ]);
    expect(
        run(&[
            "-i",
            "0",
            "mirror-copy",
            missing.to_str().unwrap(),
            ok_slave.to_str().unwrap(),
        ]),
        2,
        &format!(
            "hammer: Failed to open {}: No such file or directory\n",
            missing.display()
        ),
    );

    let twin = src.join("twin");
    ok(&[
        "pfs-master",
        twin.to_str().unwrap(),
        &format!("shared-uuid={}", shared_uuid(&m)),
    ]);
    // The source announces its (empty) range before the target refuses.
    let out = run(&["-i", "0", "mirror-copy", ms, twin.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.starts_with("Mirror-read: Mirror ")
            && err.ends_with(
                "Mirror-read: No work to do\nhammer: mirror-write: target must be in slave mode\n"
            )
            && err.lines().count() == 3,
        "{err}"
    );

    let ssh = dir.path().join("ssh");
    fs::write(
        &ssh,
        "#!/bin/sh\necho 'ssh: Could not resolve hostname nohost: Name or service not known' >&2\nexit 255\n",
    )
    .unwrap();
    fs::set_permissions(&ssh, fs::Permissions::from_mode(0o755)).unwrap();
    let out = hammer()
        .env("HAMMER_RSH", &ssh)
        .args(["-i", "0", "mirror-copy", ms, "nohost:/backup/s"])
        .output()
        .unwrap();
    expect(
        out,
        3,
        "ssh: Could not resolve hostname nohost: Name or service not known\n",
    );

    let new = src.join("new");
    expect(
        copy_without_terminal(&["-i", "0", "mirror-copy", ms, new.to_str().unwrap()]),
        3,
        &format!(
            "PFS slave {} does not exist.\nDo you want to create a new slave PFS? [y/n] \
             No terminal for response\nhammer: Aborting operation\n",
            new.display()
        ),
    );
    assert!(fs::symlink_metadata(&new).is_err(), "no slave was created");
}

/// D10: a slave path with shell syntax is only a name; nothing runs.
#[test]
fn d10_slave_creation_runs_no_shell() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 2, 1, 10);
    let pwned = dir.path().join("pwned");
    let evil = src.join(format!("x';touch {};'", pwned.display()).replace('/', "_"));
    let out = run(&[
        "-y",
        "-i",
        "0",
        "mirror-copy",
        src.join("master").to_str().unwrap(),
        evil.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!pwned.exists());
    assert!(std::fs::symlink_metadata(&evil)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_mirrored((&src, 1), (&src, 2));
}

/// mirror-stream against a pair that no reconnection can mend (the target is a
/// master, a shared-uuid differs, a path is missing) stops at once with a clear
/// message and the copy's exit status, instead of retrying every 15 s for ever.
#[test]
fn mirror_stream_stops_on_a_permanent_error() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 3, 1, 10);
    let m = src.join("master");
    let twin = src.join("twin");
    ok(&[
        "pfs-master",
        twin.to_str().unwrap(),
        &format!("shared-uuid={}", shared_uuid(&m)),
    ]);
    let stranger = src.join("stranger");
    ok(&["pfs-slave", stranger.to_str().unwrap()]);
    let rsh = fake_rsh(dir.path());
    let cases: [(Vec<String>, i32, &str); 4] = [
        (
            vec![m.display().to_string(), twin.display().to_string()],
            3,
            "hammer: mirror-write: target must be in slave mode",
        ),
        (
            vec![m.display().to_string(), stranger.display().to_string()],
            2,
            "hammer: mirror-write: source and target have different shared-uuid's!",
        ),
        (
            vec![
                src.join("missing").display().to_string(),
                stranger.display().to_string(),
            ],
            2,
            "hammer: Failed to open",
        ),
        (
            vec![
                m.display().to_string(),
                format!("backup:{}", twin.display()),
            ],
            3,
            "hammer: mirror-write: target must be in slave mode",
        ),
    ];
    for (args, code, message) in cases {
        let child = hammer()
            .env("HAMMER_RSH", &rsh)
            .args(["-i", "0", "mirror-stream"])
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_output("mirror-stream to give up", 10, child);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(
            err.ends_with("hammer: mirror-stream: giving up, retrying cannot help\n"),
            "{args:?}: {err}"
        );
    }
}

/// SIGINT or SIGTERM ends mirror-stream with one line and 128 + the signal's
/// number; the slave keeps what its last SYNC committed.
#[test]
fn mirror_stream_stops_on_sigint_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    let rsh = fake_rsh(dir.path());
    let m = src.join("master");
    // A local target, then a remote one through the fake ssh.
    for (id, signal, code) in [(2, "INT", 130), (3, "TERM", 143)] {
        let t = make_history(&src, 10, 1, 500);
        let s = src.join(format!("slave{id}"));
        let target = if id == 2 {
            s.display().to_string()
        } else {
            format!("backup:{}", s.display())
        };
        let child = hammer()
            .env("HAMMER_RSH", &rsh)
            .args([
                "-y",
                "-i",
                "0",
                "mirror-stream",
                m.to_str().unwrap(),
                &target,
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let synced = || std::fs::symlink_metadata(&s).is_ok() && sync_end(&src, id) > t;
        wait_for("first sync", 30, synced, String::new);
        std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        let out = wait_output("mirror-stream to stop", 10, child);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert!(
            err.ends_with(&format!(
                "hammer: mirror-stream: stopped by SIG{signal}; the slave keeps what its last sync committed\n"
            )),
            "{err}"
        );
        assert_mirrored((&src, 1), (&src, id));
    }
}

/// A remote side that ends without a word (a remote shell that runs no
/// hammer) gets a line of ours and an `error` event, with the status the
/// side's failure gives (before: nothing at all, only the status).
#[test]
fn a_remote_side_that_ends_without_a_word_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let m = root.join("master").display().to_string();
    let events = dir.path().join("events.jsonl");
    for (src, dst, role, code) in [
        (
            m.clone(),
            format!("far:{}", root.join("sl").display()),
            "target",
            3,
        ),
        (
            format!("far:{m}"),
            root.join("sl").display().to_string(),
            "source",
            2,
        ),
    ] {
        let out = hammer()
            .env("HAMMER_RSH", "/bin/false")
            .args(["-j", events.to_str().unwrap(), "mirror-copy", &src, &dst])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
        let far = if role == "target" { &dst } else { &src };
        let line = format!(
            "hammer: mirror-copy: the remote {role} {far} ended without a word (exit status: 1): \
             check that `/bin/false far hammer version` runs this hammer there\n"
        );
        assert_eq!(text(&out.stderr), line);
        let ev = std::fs::read_to_string(&events).unwrap();
        assert!(
            ev.contains(r#""class":"remote""#) && ev.contains("ended without a word"),
            "{ev}"
        );
        std::fs::remove_file(&events).unwrap();
    }
}

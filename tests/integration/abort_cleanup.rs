//! `hammer abort-cleanup` and the pidfile of `hammer cleanup` through the
//! binary (spec: cli.md §25): a running cleanup holds
//! `hammer.cleanup.<pid>`, locked, and abort-cleanup stops it with SIGTERM
//! (the store still verifies) and removes the file; a stale pidfile is
//! removed with nothing signalled; names that are no cleanup's pid are
//! left alone; a cleanup that ends removes its own, and one that cannot
//! make it warns and goes on; ssh-remote's forced command refuses
//! abort-cleanup. Each test has a directory of its own (`HAMMER_RUNDIR`).

use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use nix::sys::signal::Signal;

use crate::common::*;

/// `hammer <args>` with its pidfiles in `rundir`.
fn in_rundir(rundir: &Path, args: &[&str]) -> Command {
    let mut c = hammer();
    c.env("HAMMER_RUNDIR", rundir)
        .args(args)
        .stdin(Stdio::null());
    c
}

/// `hammer cleanup <pfs>` started with its pidfile in `rundir`, its
/// output kept.
fn spawn_cleanup(rundir: &Path, pfs: &Path) -> std::process::Child {
    in_rundir(rundir, &["cleanup", pfs.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn abort_cleanup(rundir: &Path) -> Output {
    in_rundir(rundir, &["abort-cleanup"]).output().unwrap()
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A store with a master holding an import, and no configuration yet:
/// its cleanup's first write is the default configuration.
fn store(dir: &Path) -> std::path::PathBuf {
    let root = store_with_master(dir, "st");
    let t = tree(dir, [("f", b"one".to_vec()), ("g", b"two".to_vec())]);
    import(&t, &root.join("master"));
    root
}

/// A cleanup held at its first write by the store's write lock (which
/// this test takes), its pidfile made meanwhile: abort-cleanup sends it
/// SIGTERM, says so, and removes the pidfile; the store verifies, and the
/// next cleanup does the work.
#[test]
fn abort_cleanup_stops_a_running_cleanup_and_removes_its_pidfile() {
    let dir = tempfile::tempdir().unwrap();
    let root = store(dir.path());
    let m = root.join("master");
    let rundir = dir.path().join("run");
    fs::create_dir(&rundir).unwrap();
    let lock = db(&root);
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let child = spawn_cleanup(&rundir, &m);
    let pid = child.id();
    let pidfile = rundir.join(format!("hammer.cleanup.{pid}"));
    wait_for(
        "the cleanup's pidfile",
        120,
        || pidfile.exists(),
        || format!("{:?}", listing(&rundir)),
    );
    assert_eq!(fs::read_to_string(&pidfile).unwrap(), pid.to_string());

    let out = abort_cleanup(&rundir);
    assert_eq!(
        outcome(&out),
        (
            format!("Terminated cleanup process {pid}\n"),
            String::new(),
            0
        )
    );
    let out = wait_output("the aborted cleanup", 120, child);
    assert_eq!(
        out.status.signal(),
        Some(Signal::SIGTERM as i32),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).starts_with(&format!("cleanup {:<20} - handle PFS#1", m.display())),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(listing(&rundir), Vec::<String>::new());

    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    ok(&["verify", m.to_str().unwrap()]);
    let out = in_rundir(&rundir, &["cleanup", m.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("           snapshots - run\n"));
    // Its own pidfile went with it.
    assert_eq!(listing(&rundir), Vec::<String>::new());
    ok(&["verify", m.to_str().unwrap()]);
}

/// A pidfile no process holds locked is a stale one: removed, its pid
/// (here a live process's, reused) not signalled, nothing said.
#[test]
fn a_stale_pidfile_is_removed_and_its_pid_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut sleeper = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = sleeper.id();
    fs::write(
        dir.path().join(format!("hammer.cleanup.{pid}")),
        pid.to_string(),
    )
    .unwrap();
    let out = abort_cleanup(dir.path());
    assert_eq!(outcome(&out), (String::new(), String::new(), 0));
    assert_eq!(listing(dir.path()), Vec::<String>::new());
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the stale pid was signalled"
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

/// A name whose rest is no positive decimal pid is no cleanup's pidfile:
/// left alone, locked or not, and no signal sent (the original's strtol
/// made 0 of it, and kill(0) would have hit abort-cleanup's own process
/// group, this test's).
#[test]
fn names_that_are_no_cleanups_pid_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        ".hammer.cleanup.1",
        "hammer.cleanup.",
        "hammer.cleanup.-1",
        "hammer.cleanup.0",
        "hammer.cleanup.12abc",
        "hammer.cleanup.foo",
        "other",
    ];
    let mut held = Vec::new();
    for name in names {
        let f = File::create(dir.path().join(name)).unwrap();
        f.try_lock().unwrap();
        held.push(f);
    }
    let out = abort_cleanup(dir.path());
    assert_eq!(outcome(&out), (String::new(), String::new(), 0));
    assert_eq!(listing(dir.path()), names);
}

/// No directory, or no pidfile in it: nothing to do, exit 0.
#[test]
fn without_a_pidfile_there_is_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    for rundir in [dir.path().join("missing"), dir.path().to_path_buf()] {
        let out = abort_cleanup(&rundir);
        assert_eq!(outcome(&out), (String::new(), String::new(), 0));
    }
    // Arguments would read as naming one cleanup, where all are stopped.
    let out = in_rundir(dir.path(), &["abort-cleanup", "/backup"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("hammer -h\n"));
    let out = in_rundir(dir.path(), &["-n", "abort-cleanup"])
        .output()
        .unwrap();
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            "hammer: -n (a dry run) is for prune, prune-everything and cleanup; \
             'abort-cleanup' has none\n"
                .into(),
            1
        )
    );
}

/// A cleanup whose pidfile cannot be made says so as the original warns,
/// `Unable to open or create <path>: <why>`, and does its work all the
/// same (exit 0).
#[test]
fn a_cleanup_that_cannot_make_its_pidfile_warns_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = store(dir.path());
    let m = root.join("master");
    let rundir = dir.path().join("missing");
    let child = spawn_cleanup(&rundir, &m);
    let pid = child.id();
    let out = wait_output("the cleanup", 300, child);
    assert_eq!(
        text(&out.stderr),
        format!(
            "hammer: Unable to open or create {}/hammer.cleanup.{pid}: No such file or directory\n",
            rundir.display()
        )
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("           snapshots - run\n"));
    assert!(!rundir.exists());
}

/// Under ssh-remote's forced command, abort-cleanup is refused like the
/// other maintenance commands: a client cannot stop this host's cleanups.
#[test]
fn ssh_remote_refuses_abort_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let root = new_store(dir.path(), "st");
    let rundir = dir.path().join("run");
    fs::create_dir(&rundir).unwrap();
    let pidfile = rundir.join("hammer.cleanup.4242");
    fs::write(&pidfile, "4242").unwrap();
    let out = in_rundir(
        &rundir,
        &["ssh-remote", "abort-cleanup", root.to_str().unwrap()],
    )
    .env("SSH_ORIGINAL_COMMAND", "hammer abort-cleanup")
    .output()
    .unwrap();
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            "hammer: hammer-remote: restricted target\n".into(),
            1
        )
    );
    assert!(pidfile.exists());
}

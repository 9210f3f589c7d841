//! mirror-read | mirror-write end to end on store PFSes: full and
//! incremental copies, prescan chunks, -B, begin-tid, timeouts, cycle file.

use crate::common::*;
use hammer_mirror::pfs::Pfs;

#[test]
fn one_way_full_then_incremental() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    let dst = new_store(dir.path(), "dst");
    make_history(&src, 20, 4, 3000);
    let m = src.join("master");
    let s = dst.join("slave");
    let (r, w) = pipe(
        &["-i", "0", "mirror-read", m.to_str().unwrap()],
        &["-y", "mirror-write", s.to_str().unwrap()],
    );
    assert!(r.status.success(), "read: {}", text(&r.stderr));
    assert!(w.status.success(), "write: {}", text(&w.stderr));
    assert_stderr_has(&r, &format!("Mirror-read {} succeeded", m.display()));
    assert!(
        text(&w.stdout).starts_with("Source can update synctid to 0x"),
        "{}",
        text(&w.stdout)
    );
    assert_stderr_has(&w, "Auto create new slave PFS!");
    let t1 = assert_mirrored((&src, 1), (&dst, 1));

    // Changes travel incrementally: only records after the sync point.
    make_history(&src, 20, 2, 100);
    pipe_ok(
        &[
            "-i",
            "0",
            "mirror-read",
            m.to_str().unwrap(),
            &format!("{:#x}", t1 + 1),
        ],
        &["mirror-write", s.to_str().unwrap()],
    );
    let t2 = assert_mirrored((&src, 1), (&dst, 1));
    assert!(t2 > t1);
}

#[test]
fn prescan_splits_into_chunks_each_synced() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 10, 6, 20_000);
    let m = src.join("master");
    // Real TID ranges span many buckets; here history starts at the first
    // TID, so the whole range is a handful of TIDs.
    begin_at_first_tid(&src);
    let s = src.join("slave");
    let (r, w) = pipe_ok(
        &["-i", "0", "-S", "100k", "mirror-read", m.to_str().unwrap()],
        &["-y", "mirror-write", s.to_str().unwrap()],
    );
    assert_stderr_has(&r, "Prescan to break up bulk transfer");
    let syncs = text(&w.stdout).matches("Source can update synctid").count();
    assert!(syncs > 2, "{syncs} chunks: {}", text(&w.stdout));
    assert_mirrored((&src, 1), (&src, 2));
}

#[test]
fn stream_is_readable_by_mirror_dump() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 5, 2, 64);
    let m = src.join("master");
    let out = ok(&["-B", "mirror-read", m.to_str().unwrap()]);
    let d = run_with_input(hammer().arg("mirror-dump"), &out.stdout);
    assert!(d.status.success());
    assert_eq!(text(&d.stderr), "");
    assert!(
        text(&d.stdout).contains("Record lo=00010001"),
        "{}",
        text(&d.stdout)
    );
}

/// `-b` paces mirror-read's bulk output to within 20% of the limit.
#[test]
fn bandwidth_limit_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 80, 1, 60_000);
    let m = src.join("master");
    let t = std::time::Instant::now();
    let out = ok(&["-B", "-b", "1m", "mirror-read", m.to_str().unwrap()]);
    let secs = t.elapsed().as_secs_f64();
    let rate = out.stdout.len() as f64 / secs;
    let limit = 1048576.0;
    assert!(out.stdout.len() > 4 * 1048576, "{} bytes", out.stdout.len());
    assert!(
        (rate - limit).abs() / limit < 0.2,
        "{} bytes in {secs:.2}s = {rate:.0} B/s",
        out.stdout.len()
    );
}

/// A begin-tid argument overrides the start of the range; `-t` ends a
/// one-way run with TERM and no SYNC.
#[test]
fn begin_tid_and_one_way_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    let t1 = make_history(&src, 10, 2, 1000);
    make_history(&src, 10, 1, 1000);
    let m = src.join("master");
    let all = ok(&["-B", "mirror-read", m.to_str().unwrap()]);
    let late = ok(&[
        "-B",
        "mirror-read",
        m.to_str().unwrap(),
        &format!("{:#x}", t1 + 1),
    ]);
    assert!(late.stdout.len() < all.stdout.len());
    assert_stderr_has(&late, &format!("Mirror-read: Mirror {:016x} to", t1 + 1));

    make_history(&src, 80, 1, 60_000);
    let out = ok(&[
        "-B",
        "-t",
        "1",
        "-b",
        "1m",
        "mirror-read",
        m.to_str().unwrap(),
    ]);
    assert_stderr_has(&out, "interrupted by timer at");
    // The stream ends in TERM without a SYNC.
    let tail = &out.stdout[out.stdout.len() - 24..];
    assert_eq!(&tail[12..16], &[7, 0, 0, 0]);
    let sync = hammer_mirror::wire::Mrecord::Sync { tid: 1 }.to_vec();
    assert!(!out.stdout.windows(24).any(|w| w == sync.as_slice()));
}

/// A closed output pipe is a clear error, not a silent death by SIGPIPE.
#[test]
fn closed_pipe_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 40, 1, 60_000);
    let m = src.join("master");
    let mut r = hammer()
        .args(["-B", "mirror-read", m.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(r.stdout.take());
    let out = r.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("hammer: write_mrecord: Broken pipe")
            || err.contains(&format!(
                "hammer: Mirror-read {} failed: short write",
                m.display()
            )),
        "{err}"
    );
}

/// Without -y and without a terminal the slave is not created.
#[test]
fn auto_create_needs_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 2, 1, 10);
    let stream = ok(&["-B", "mirror-read", src.join("master").to_str().unwrap()]).stdout;
    let slave = src.join("slave");
    let out = run_with_input(
        std::process::Command::new("setsid").args([
            env!("CARGO_BIN_EXE_hammer"),
            "mirror-write",
            slave.to_str().unwrap(),
        ]),
        &stream,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "PFS slave {} does not exist.\nDo you want to create a new slave PFS? [y/n] No terminal for response\nhammer: Aborting operation\n",
            slave.display()
        )
    );
    assert!(std::fs::symlink_metadata(&slave).is_err());
}

/// D19: a negative -i is no delay, not a sleep of years; -e writes the
/// scoreboard.
#[test]
fn d19_negative_delay_and_scoreboard() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 3, 2, 100);
    let m = src.join("master");
    let sb = dir.path().join("scoreboard");
    let t = std::time::Instant::now();
    // A begin-tid past the end: "No work to do", then the -i sleep.
    let out = ok(&[
        "-B",
        "-i",
        "-1",
        "mirror-read",
        m.to_str().unwrap(),
        "0xffffffffffff",
    ]);
    assert!(t.elapsed().as_secs() < 3);
    assert_stderr_has(&out, "Mirror-read: No work to do");
    ok(&[
        "-e",
        sb.to_str().unwrap(),
        "mirror-read",
        m.to_str().unwrap(),
    ]);
    // The board ends with the final state, not a stale "Running" (which it
    // showed before).
    let board = std::fs::read_to_string(&sb).unwrap();
    assert!(board.starts_with("Finished"), "{board:?}");
    assert!(board.contains(" bytes sent, synced up to 0x"), "{board:?}");
    assert!(board.contains("Prescan 1 chunks"), "{board:?}");
}

/// The pipe between mirror-read and mirror-write holds 1 MiB, not the
/// default 64 KiB that made the two run in turn; mirror-read widens its
/// stdout and mirror-write its stdin, each on its own.
#[cfg(target_os = "linux")]
#[test]
fn each_side_widens_the_pipe_it_is_given() {
    use nix::fcntl::{fcntl, FcntlArg};
    use std::os::fd::AsRawFd;
    if std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .unwrap()
        .trim()
        < "1048576"
    {
        return; // A system that allows less keeps its pipe size.
    }
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 2, 1, 100);
    let m = src.join("master");
    let size = |fd: &std::os::fd::OwnedFd| fcntl(fd.as_raw_fd(), FcntlArg::F_GETPIPE_SZ).unwrap();

    let (r, w) = nix::unistd::pipe().unwrap();
    assert_eq!(size(&r), 65536);
    let out = hammer()
        .args(["-B", "mirror-read", m.to_str().unwrap()])
        .stdout(std::process::Stdio::from(w))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(size(&r), 1 << 20, "mirror-read's stdout");

    let (r, w) = nix::unistd::pipe().unwrap();
    drop(w); // mirror-write meets end of file at once, after widening.
    let out = hammer()
        .args([
            "-y",
            "mirror-write",
            dir.path().join("src/s").to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::from(r.try_clone().unwrap()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(size(&r), 1 << 20, "mirror-write's stdin");
}

/// The cycle file and the scoreboard are replaced through temporaries
/// created exclusively: a symlink planted where the temporary
/// `<file>.tmp.<pid>` used to be written is never followed. Pids are
/// handed out in order, so links are planted for the next few thousand.
#[test]
fn cycle_file_and_scoreboard_never_follow_planted_symlinks() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 3, 2, 100);
    let m = src.join("master");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let mut probe = std::process::Command::new("true").spawn().unwrap();
    let next = probe.id();
    probe.wait().unwrap();
    for pid in next..next + 3000 {
        for name in ["cycle", "sb"] {
            symlink(&victim, work.join(format!("{name}.tmp.{pid}"))).unwrap();
        }
    }
    let (cycle, sb) = (work.join("cycle"), work.join("sb"));
    ok(&[
        "-B",
        "-c",
        cycle.to_str().unwrap(),
        "-e",
        sb.to_str().unwrap(),
        "mirror-read",
        m.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    for f in [&cycle, &sb] {
        let meta = std::fs::symlink_metadata(f).unwrap();
        assert!(meta.file_type().is_file(), "{}", f.display());
    }
    assert_eq!(std::fs::metadata(&cycle).unwrap().len(), 48);
    assert!(std::fs::read_to_string(&sb)
        .unwrap()
        .starts_with("Finished"));
    // Nothing but the planted links, the cycle file and the scoreboard.
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 6000 + 2);
}

/// A slave whose creation fails ends mirror-write with exit 1 before
/// anything is answered or written (the original went on, into whatever
/// PFS the path then opened). A store's PFS link given with a trailing `/`
/// and an `@@` name of an existing slave are that slave, not missing ones.
#[test]
fn failed_slave_creation_ends_mirror_write() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    let dst = new_store(dir.path(), "dst");
    make_history(&src, 5, 2, 100);
    let m = src.join("master");
    let read = ["-i", "0", "mirror-read", m.to_str().unwrap()];
    let write = |fs: &str| {
        pipe(
            &read,
            &["-y", "mirror-write", &format!("{}/{fs}", dst.display())],
        )
    };
    let (r, w) = write("slave");
    assert!(r.status.success() && w.status.success());
    for fs in ["slave/", "@@-1:00001", "./@@-1:00001/"] {
        make_history(&src, 5, 1, 100);
        let (r, w) = write(fs);
        assert!(r.status.success(), "{fs}: {}", text(&r.stderr));
        assert!(w.status.success(), "{fs}: {}", text(&w.stderr));
        assert!(
            !text(&w.stderr).contains("does not exist"),
            "{fs}: {}",
            text(&w.stderr)
        );
        assert_mirrored((&src, 1), (&dst, 1));
        assert!(
            open(&dst, 2).get_pseudofs().is_err(),
            "{fs}: a PFS was created"
        );
    }
    let names: Vec<_> = std::fs::read_dir(&dst)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with(".hammer-store"))
        .collect();
    assert_eq!(names, ["slave"]);

    let d = dst.display();
    for (fs, why) in [
        (
            "new/",
            format!("hammer: Invalid PFS path {d}/new/ with trailing /"),
        ),
        (
            "nodir/s",
            format!("hammer: Cannot open directory {d}/nodir: No such file or directory"),
        ),
    ] {
        let (_, w) = write(fs);
        assert_eq!(w.status.code(), Some(1), "{fs}");
        assert_eq!(text(&w.stdout), "", "{fs}");
        assert_eq!(
            text(&w.stderr),
            format!(
                "PFS slave {d}/{fs} does not exist. Auto create new slave PFS!\n{why}\n\
                 hammer: Failed to create PFS\n"
            ),
            "{fs}"
        );
    }
    assert!(open(&dst, 2).get_pseudofs().is_err());
}

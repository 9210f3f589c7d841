//! Runs from cron and scripts: `-q` prints nothing on success, `-v` into a file
//! or pipe is one line per event with no terminal drawing, a run cut by `-t`
//! says it is incomplete and how to go on, and a one-way stream or a begin-tid
//! run sends (and counts in its prescan) only what is new.

use std::process::Stdio;

use crate::common::*;

/// mirror-read of `pfs` piped into mirror-write of `slave`, one-way, with
/// the same global options on both; returns (status, stdout, stderr) of
/// both as one text each.
fn pipe_copy(opts: &[&str], pfs: &str, slave: &str) -> (bool, String, String) {
    let side = |cmd, fs| [opts, &[cmd, fs]].concat();
    let (read, write) = pipe(&side("mirror-read", pfs), &side("mirror-write", slave));
    (
        read.status.success() && write.status.success(),
        text(&read.stdout) + &text(&write.stdout),
        text(&read.stderr) + &text(&write.stderr),
    )
}

#[test]
fn quiet_prints_nothing_on_success() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 5, 2, 3000);
    let m = src.join("master").display().to_string();
    let s = src.join("slave").display().to_string();
    ok(&["-y", "-i", "0", "mirror-copy", &m, &s]);
    // Nothing to do: before, three lines (Mirror ..., No work to do,
    // succeeded) went to cron's mail every run.
    let out = ok(&["-q", "-i", "0", "mirror-copy", &m, &s]);
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        (String::new(), String::new())
    );
    // With work to do, and one-way through a pipe.
    make_history(&src, 5, 1, 3000);
    let out = ok(&["-q", "-i", "0", "mirror-copy", &m, &s]);
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        (String::new(), String::new())
    );
    assert_mirrored((&src, 1), (&src, 2));
    let s2 = src.join("slave2").display().to_string();
    let (ok2, stdout, stderr) = pipe_copy(&["-q", "-y", "-i", "0"], &m, &s2);
    assert!(ok2, "{stderr}");
    assert_eq!((stdout, stderr), (String::new(), String::new()));
    // Errors still reach stderr.
    let out = run(&["-q", "-i", "0", "mirror-copy", &format!("{m}-missing"), &s]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "Failed to open");
}

#[test]
fn verbose_into_a_file_is_one_line_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 20, 2, 5000);
    let m = src.join("master").display().to_string();
    let s = src.join("slave").display().to_string();
    let out = ok(&["-y", "-v", "-i", "0", "mirror-copy", &m, &s]);
    let err = text(&out.stderr);
    assert!(!err.contains(['\r', '\u{8}']), "{err:?}");
    assert!(err.lines().any(|l| l == "Running"), "{err}");
    assert!(err.lines().any(|l| l.starts_with("scan obj=")), "{err}");
    assert!(err.lines().all(|l| !l.is_empty()), "{err:?}");
}

#[test]
fn a_run_cut_by_the_timer_says_it_is_incomplete_and_how_to_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 40, 2, 60_000);
    let m = src.join("master").display().to_string();
    let s = src.join("slave").display().to_string();
    let cycle = dir.path().join("cycle").display().to_string();
    let cut = |extra: &[&str]| {
        let mut args = vec!["-y", "-i", "0", "-B", "-t", "1", "-b", "1m"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["mirror-copy", &m, &s]);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    let err = cut(&["-c", &cycle]);
    assert!(
        err.contains(&format!(
            "the copy is incomplete (stopped by -t); run the same command again to resume from {cycle}"
        )),
        "{err}"
    );
    let err = cut(&[]);
    assert!(
        err.contains("the copy is incomplete (stopped by -t); run it again to go on"),
        "{err}"
    );
    // Never "succeeded" beside it (the original said both).
    assert!(!err.contains("succeeded"), "{err}");
    // Even -q says so: the copy did not finish.
    let err = cut(&["-q"]);
    assert!(err.contains("the copy is incomplete"), "{err}");
}

/// The REC records a mirror-read stream carries.
fn recs(stream: &[u8]) -> usize {
    let out = run_with_input(hammer().arg("mirror-dump"), stream);
    text(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("Record"))
        .count()
}

#[test]
fn a_one_way_stream_sends_each_change_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 30, 1, 2000);
    let m = src.join("master").display().to_string();
    let first = {
        let out = ok(&["mirror-read", &m]);
        recs(&out.stdout)
    };
    let child = hammer()
        .args(["-i", "1", "mirror-read-stream", &m])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // One more file version: the second batch carries only it.
    make_history(&src, 1, 1, 100);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .arg(&pid)
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let total = recs(&out.stdout);
    // Before, every batch sent the whole PFS again (2 * first + changes).
    assert!(total > first && total < first + 10, "{first} then {total}");
}

#[test]
fn a_begin_tid_run_prescans_what_it_sends() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    let t = make_history(&src, 30, 1, 20_000);
    make_history(&src, 1, 1, 100);
    let m = src.join("master").display().to_string();
    let out = ok(&["mirror-read", &m, &format!("{:#x}", t + 1)]);
    let err = text(&out.stderr);
    let summary = err
        .lines()
        .find(|l| l.starts_with("Prescan 1 chunks, total "))
        .unwrap_or_else(|| panic!("{err}"));
    // Only the last change: under a MByte, where the PFS holds 600 kB+.
    let bytes: u64 = summary
        .rsplit('(')
        .next()
        .and_then(|b| b.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(bytes < 20_000, "{summary}");
    assert!(recs(&out.stdout) <= 4, "{err}");
}

//! The progress line: on a terminal, without `-q` or `-v`, every long command
//! shows bytes and records (files) done, the rate and, once the total is known,
//! the percentage and ETA; the stream and the original's messages stay as they
//! were, whole lines above the line.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;

/// A master holding `mb` MiB of incompressible file data.
fn master_with(dir: &Path, mb: usize) -> std::path::PathBuf {
    let root = store_with_master(dir, "src");
    let mut rng = Rng(7);
    let t = tree(
        dir,
        [
            ("big", rng.bytes(mb << 20)),
            ("small/a", b"a".to_vec()),
            ("small/b", b"b".to_vec()),
        ],
    );
    import(&t, &root.join("master"));
    root
}

fn cmd(args: &[&str]) -> Command {
    let mut c = hammer();
    c.args(args).stdin(Stdio::null()).stdout(Stdio::null());
    c
}

/// The slave PFS#2 of `root` holds the tree `master_with` imported.
fn assert_copied(dir: &Path, root: &Path) {
    let out = dir.join("restored");
    ok(&[
        "-q",
        "export",
        root.join("slave").to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read(out.join("big")).unwrap(),
        fs::read(dir.join("tree/big")).unwrap()
    );
    assert_eq!(fs::read(out.join("small/b")).unwrap(), b"b");
}

/// The text a terminal shows of `seen` once every line clear and carriage
/// return has done its work is hard to model; these tests look for what
/// must and must not have been sent.
fn assert_line_shown(seen: &str, command: &str, unit: &str) {
    assert!(seen.contains(&format!("{command} ")), "{seen:?}");
    assert!(seen.contains(&format!(" {unit} ")), "{seen:?}");
    assert!(seen.contains("/s"), "no rate: {seen:?}");
}

fn assert_total_known(seen: &str) {
    assert!(seen.contains("% ") && seen.contains("ETA 00:"), "{seen:?}");
}

/// A message is written on a line of its own, never after the figures.
fn assert_whole_line(seen: &str, msg: &str) {
    let at = seen
        .find(msg)
        .unwrap_or_else(|| panic!("{msg:?} not in {seen:?}"));
    let before = &seen[..at];
    assert!(
        before.is_empty() || before.ends_with('\n') || before.ends_with("\x1b[2K"),
        "{msg:?} follows {:?}",
        &before[before.len().saturating_sub(80)..]
    );
}

#[test]
fn a_copy_shows_bytes_records_rate_percentage_and_eta() {
    let dir = tempfile::tempdir().unwrap();
    let root = master_with(dir.path(), 12);
    let m = root.join("master").display().to_string();
    let s = root.join("slave").display().to_string();
    // -b: long enough for the line to be drawn more than once.
    let (status, seen) = on_tty(cmd(&["-y", "-b", "8m", "mirror-copy", &m, &s]));
    assert!(status.success(), "{seen}");
    assert_line_shown(&seen, "mirror-copy", "records");
    assert_total_known(&seen);
    assert_whole_line(&seen, &format!("Mirror-read {m} succeeded"));
    assert_whole_line(&seen, "Prescan 1 chunks, total 12 MBytes");
    assert_copied(dir.path(), &root);
}

#[test]
fn quiet_hides_it_and_verbose_keeps_the_originals_drawing() {
    let dir = tempfile::tempdir().unwrap();
    let root = master_with(dir.path(), 4);
    let m = root.join("master").display().to_string();
    let s = root.join("slave").display().to_string();
    let (status, seen) = on_tty(cmd(&["-y", "-q", "mirror-copy", &m, &s]));
    assert!(status.success());
    assert_eq!(seen, "");
    let s2 = root.join("slave2").display().to_string();
    let (status, seen) = on_tty(cmd(&["-y", "-v", "mirror-copy", &m, &s2]));
    assert!(status.success(), "{seen}");
    assert!(
        !seen.contains("ETA") && !seen.contains(" records "),
        "{seen:?}"
    );
    assert!(seen.contains("\rscan obj="), "{seen:?}");
}

#[test]
fn the_stream_is_the_same_with_the_line_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let root = master_with(dir.path(), 6);
    let m = root.join("master").display().to_string();
    let plain = dir.path().join("plain.stream");
    let drawn = dir.path().join("drawn.stream");
    let mut c = cmd(&["mirror-read", &m]);
    c.stdout(fs::File::create(&plain).unwrap())
        .stderr(Stdio::null());
    assert!(c.status().unwrap().success());
    let mut c = cmd(&["mirror-read", &m]);
    c.stdout(fs::File::create(&drawn).unwrap());
    let (status, seen) = on_tty(c);
    assert!(status.success(), "{seen}");
    assert_line_shown(&seen, "mirror-read", "records");
    assert_total_known(&seen);
    assert_eq!(fs::read(&plain).unwrap(), fs::read(&drawn).unwrap());

    // mirror-write from that file knows its length.
    let s = root.join("slave").display().to_string();
    let mut c = cmd(&["-y", "mirror-write", &s]);
    c.stdin(fs::File::open(&drawn).unwrap());
    let (status, seen) = on_tty(c);
    assert!(status.success(), "{seen}");
    assert_line_shown(&seen, "mirror-write", "records");
    assert_total_known(&seen);
    assert_whole_line(&seen, "Creating PFS#2");
    assert_copied(dir.path(), &root);
}

#[test]
fn import_and_export_count_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let mut rng = Rng(9);
    let files: Vec<(String, Vec<u8>)> = (0..200)
        .map(|i| (format!("d{}/f{i}", i % 7), rng.bytes(40_000)))
        .collect();
    let t = tree(dir.path(), files);
    let pfs = root.join("master").display().to_string();
    let (status, seen) = on_tty(cmd(&["import", t.to_str().unwrap(), &pfs]));
    assert!(status.success(), "{seen}");
    assert_line_shown(&seen, "import", "files");
    let out = dir.path().join("out");
    let (status, seen) = on_tty(cmd(&["export", &pfs, out.to_str().unwrap()]));
    assert!(status.success(), "{seen}");
    assert_line_shown(&seen, "export", "files");
    assert_total_known(&seen);
    assert_eq!(
        fs::read(out.join("d3/f3")).unwrap(),
        fs::read(t.join("d3/f3")).unwrap()
    );
}

#[test]
fn a_stream_shows_it_waits_and_a_signal_clears_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = master_with(dir.path(), 2);
    let m = root.join("master").display().to_string();
    let s = root.join("slave").display().to_string();
    let (child, seen) = spawn_on_tty(cmd(&["-y", "-i", "0", "mirror-stream", &m, &s]));
    let newest = sync_end(&root, 1);
    wait_for(
        "the slave to catch up",
        30,
        || fs::symlink_metadata(root.join("slave")).is_ok() && sync_end(&root, 2) >= newest,
        String::new,
    );
    // The stream waits for the master to change; the line says so.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let mut child = child;
    assert_eq!(child.wait().unwrap().code(), Some(128 + 15));
    let seen = seen.join().unwrap();
    assert_line_shown(&seen, "mirror-stream", "records");
    assert!(seen.contains(" waiting"), "{seen:?}");
    assert_whole_line(&seen, "hammer: mirror-stream: stopped by SIGTERM");
}

//! `hammer -n cleanup` on a store (spec: cli.md §23.5): with snapshots to
//! expire and take, history to prune and a payload file to reblock, it
//! tells each step that is due, changes no byte of the store's files (the
//! snapshots directory not made, no configuration, period, cycle or
//! pidfile written), and what it says the prune and the reblock would do
//! is what the cleanup after it does, also night after night of simulated
//! time (faketime); steps not due are told as the run tells them; `-q`
//! prints nothing but failures. Through the kernel backend `-n` is refused
//! (kernel_backend.rs).

#![cfg(not(feature = "kernel-double"))]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::cleanup::{at, at_ok, cleanup_dir, pfs_lines, set_config, snapshots, DAY, JAN1};
use crate::common::*;

/// Every file, directory and symlink under `root` by path, with its bytes
/// (a link's target); but SQLite's shared-memory index (`-shm`), which any
/// reader may rewrite and which holds nothing the WAL does not.
fn state(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                out.insert(path.clone(), b"dir".to_vec());
                walk(&path, out);
            } else if kind.is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.insert(path, target.into_os_string().into_encoded_bytes());
            } else if !path.to_string_lossy().ends_with("-shm") {
                out.insert(path.clone(), fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &mut out);
    out
}

/// The numbers of each line of `out` holding `marker`, after it.
fn numbers(out: &str, marker: &str) -> Vec<Vec<u64>> {
    out.lines()
        .filter_map(|l| l.split_once(marker).map(|(_, rest)| rest))
        .map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .filter(|w| !w.is_empty())
                .map(|w| w.parse().unwrap())
                .collect()
        })
        .collect()
}

/// A dry run's `would prune <raw>/<scanned> ... (<entries> ...) and <bytes>`
/// against the prune's `Pruned` lines: the same records and bytes go; the
/// dry run counts every record of the range as scanned, where a prune
/// that its last one's memo lets visit only what changed since visits
/// fewer (cli.md §24).
fn assert_pruned_as_told(would: &[Vec<u64>], real: &[Vec<u64>], why: &str) {
    let gone = |v: &[Vec<u64>]| -> Vec<Vec<u64>> {
        v.iter().map(|n| [&n[..1], &n[2..]].concat()).collect()
    };
    assert_eq!(gone(would), gone(real), "{why}");
    assert!(would.iter().zip(real).all(|(w, r)| w[1] >= r[1]), "{why}");
}

/// `hammer <args>` with `TZ=UTC`, pidfiles in `rundir`.
fn utc(rundir: &Path, args: &[&str]) -> Output {
    hammer()
        .env("TZ", "UTC")
        .env("HAMMER_RUNDIR", rundir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// A store whose master has two imports of 40 files of 3000 bytes (in
/// the payload file), the second rewriting 20 of them and removing one,
/// and a configuration keeping the newest snapshot only (retention 0s,
/// `daily=1`): a cleanup expires the first import's snapshot, takes one,
/// prunes the first import's versions and reblocks the file. PFS#0 has no
/// configuration: a cleanup writes the default one.
fn history(dir: &Path) -> (PathBuf, PathBuf) {
    let root = store_with_master(dir, "st");
    let m = root.join("master");
    let mut rng = Rng(0xc1ea_0d2e_0001);
    let t = tree(dir, (0..40).map(|i| (format!("f{i}"), rng.bytes(3000))));
    import(&t, &m);
    for i in 0..20 {
        fs::write(t.join(format!("f{i}")), rng.bytes(3000)).unwrap();
    }
    fs::remove_file(t.join("f30")).unwrap();
    import(&t, &m);
    set_config(
        &m,
        "snapshots 1d 0s daily=1\nprune 1d 5m\nrebalance 1d 5m\nreblock 1d 5m\nrecopy 30d 10m\n",
    );
    // Both imports' snapshots older than the retention of 0 seconds.
    std::thread::sleep(Duration::from_millis(1100));
    (root, m)
}

#[test]
fn a_dry_run_changes_nothing_and_tells_what_the_cleanup_after_it_does() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m) = history(dir.path());
    let rs = root.to_str().unwrap();
    let snaps = snapshots(&m);
    assert_eq!(snaps.len(), 2);
    let before = state(&root);
    let size = payload_size(&root);

    // No pidfile either: its directory is missing, and nothing says so.
    let missing = dir.path().join("missing");
    let (dry, dry_err, code) = outcome(&utc(&missing, &["-n", "cleanup", rs]));
    assert_eq!(code, 0, "{dry}{dry_err}");
    assert!(state(&root) == before, "the dry run changed the store");
    assert!(!root.join(".hammer-store.cleanup").exists());
    assert_eq!(snapshots(&m), snaps);

    let at = |id| cleanup_dir(&root, id);
    let head = |path: &Path, id| {
        format!(
            "cleanup {:<20} - handle PFS#{id} using {}\n    would create {}\n",
            path.display(),
            at(id).display(),
            at(id).display()
        )
    };
    assert!(
        dry.starts_with(&(head(&root, 0) + "    would write the default configuration\n")),
        "{dry}"
    );
    let master = &dry[dry.find(&head(&m, 1)).expect("PFS#1 handled")..];
    let lines: Vec<&str> = master.lines().skip(2).collect();
    assert_eq!(lines[0], "           snapshots - would run");
    assert!(
        lines[1].starts_with(&format!("    would expire 0x{:016x} ", snaps[0].0)),
        "{master}"
    );
    assert!(
        lines[2].starts_with("    would take a snapshot at the sync point, past 0x"),
        "{master}"
    );
    assert_eq!(lines[3], "               prune - would run");
    assert!(
        lines[4].starts_with(&format!(
            "    Prune {}/: dry run: would prune ",
            m.display()
        )),
        "{master}"
    );
    assert_eq!(
        &lines[5..7],
        [
            "           rebalance - would run".to_string(),
            format!(
                "    Rebalance {}: nothing to do: a store's B-Tree is an SQLite database, \
                 which keeps itself balanced",
                m.display()
            )
        ]
    );
    assert_eq!(lines[7], "             reblock - would run");
    let freed = numbers(lines[8], "    Reblock would free ")[0].clone();
    assert_eq!(freed[1], size, "{master}");
    assert!(freed[0] * 20 > size, "too little to reblock: {master}");
    assert_eq!(
        &lines[9..],
        [
            "              recopy - would run".to_string(),
            format!("    Reblock would free 0 bytes of the payload file ({size} bytes now)")
        ]
    );

    // The cleanup then: each PFS's prune as told, the payload file as
    // told, the first import's snapshot gone.
    let (real, real_err, code) = outcome(&utc(dir.path(), &["-vv", "cleanup", rs]));
    assert_eq!(code, 0, "{real}{real_err}");
    assert_eq!(real_err, dry_err, "the warnings differ");
    let would = numbers(&dry, ": dry run: would prune ");
    // PFS#0's one snapshot, the one the cleanup takes, leaves its prune
    // nothing to do.
    assert_eq!(would.len(), 1, "{dry}");
    assert_pruned_as_told(
        &would,
        &numbers(&real, "Pruned "),
        &format!("{dry}\n{real}"),
    );
    assert!(would[0][0] > 20, "too little to prune: {dry}");
    assert_eq!(payload_size(&root), size - freed[0]);
    let left = snapshots(&m);
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(left[0].0, snaps[1].0);
    ok(&["verify", m.to_str().unwrap()]);

    // Again: each step skipped, told as the run tells it.
    let (dry, _, code) = outcome(&utc(&missing, &["-n", "cleanup", m.to_str().unwrap()]));
    let skip: Vec<(&str, &str)> = ["snapshots", "prune", "rebalance", "reblock", "recopy"]
        .into_iter()
        .map(|w| (w, "skip"))
        .collect();
    assert_eq!(
        (dry.as_str(), code),
        (pfs_lines(&m, &at(1), 1, &skip).as_str(), 0)
    );
    // Forced: every step would run, and no period, cycle or other file of
    // the store changes.
    let before = state(&root);
    let (dry, dry_err, code) = outcome(&utc(&missing, &["-F", "-n", "cleanup", rs]));
    assert_eq!(code, 0, "{dry}{dry_err}");
    assert!(
        state(&root) == before,
        "the forced dry run changed the store"
    );
    assert_eq!(dry.matches(" - would run\n").count(), 10, "{dry}");
    assert!(!dry.contains("would create"), "{dry}");
    let (real, _, code) = outcome(&utc(dir.path(), &["cleanup", m.to_str().unwrap()]));
    assert_eq!((real, code), (pfs_lines(&m, &at(1), 1, &skip), 0));
}

/// `-q`: nothing on stdout, only failures on stderr; a configuration that
/// does not read fails the dry run as it would the run, and nothing
/// changes either way.
#[test]
fn a_quiet_dry_run_tells_only_failures() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m) = history(dir.path());
    let rs = root.to_str().unwrap();
    let before = state(&root);
    let out = utc(dir.path(), &["-q", "-n", "cleanup", rs]);
    assert_eq!(outcome(&out), (String::new(), String::new(), 0));
    set_config(&m, "snapshots 1d 30d fortnightly=2\n");
    let before_bad = state(&root);
    assert!(before_bad != before);
    let (out, err, code) = outcome(&utc(dir.path(), &["-q", "-n", "cleanup", rs]));
    assert_eq!((out.as_str(), code), ("", 1));
    assert!(
        err.contains(&format!(
            "hammer cleanup {}: config: bad config: 'fortnightly=2'",
            m.display()
        )),
        "{err}"
    );
    assert!(state(&root) == before_bad, "the dry run changed the store");
}

/// Twenty simulated nights of an import (02:00) rewriting some files and
/// a cleanup (03:00) with `snapshots 1d 3d weekly=2`, prune and reblock:
/// each night the dry run just before the cleanup changes no byte of the
/// store, and its prune counts and payload file are what the cleanup then
/// prints and leaves (on the first night no prune: one snapshot alone;
/// some nights' reblock copies the file, others' free bytes are under its
/// 5%).
#[test]
#[ignore = "needs libfaketime (apt-get install faketime): cargo test -- --include-ignored, as .ci/run does"]
fn each_nights_dry_run_tells_that_nights_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let ms = m.to_str().unwrap();
    let mut rng = Rng(0xc1ea_0d2e_0002);
    let t = tree(dir.path(), [("f0", b"".to_vec())]);
    set_config(&m, "snapshots 1d 3d weekly=2\nprune 1d 5m\nreblock 1d 5m\n");
    let (mut pruned, mut reblocked) = (0, 0);
    for night in 0..20 {
        for i in 0..30 {
            if night == 0 || rng.below(4) == 0 {
                let size = 600 + rng.below(3000) as usize;
                fs::write(t.join(format!("f{i}")), rng.bytes(size)).unwrap();
            }
        }
        let ts = t.to_str().unwrap();
        at_ok(JAN1 + night * DAY + 7_200, &["import", ts, ms]);
        let now = JAN1 + night * DAY + 10_800;
        let before = state(&root);
        let size = payload_size(&root);
        let (dry, dry_err, code) = outcome(&at(now, &["-n", "cleanup", ms]));
        assert_eq!(code, 0, "night {night}: {dry}{dry_err}");
        assert!(state(&root) == before, "night {night}: the store changed");
        let (real, real_err, code) = outcome(&at(now, &["-vv", "cleanup", ms]));
        assert_eq!(code, 0, "night {night}: {real}{real_err}");
        assert_eq!(dry_err, real_err, "night {night}");
        let would = numbers(&dry, ": dry run: would prune ");
        assert_pruned_as_told(
            &would,
            &numbers(&real, "Pruned "),
            &format!("night {night}:\n{dry}\n{real}"),
        );
        pruned += would.iter().map(|w| w[0]).sum::<u64>();
        let freed = numbers(&dry, "    Reblock would free ");
        assert_eq!(freed.len(), 1, "night {night}: {dry}");
        assert_eq!(freed[0][1], size, "night {night}: {dry}");
        assert_eq!(
            payload_size(&root),
            size - freed[0][0],
            "night {night}: {dry}"
        );
        reblocked += freed[0][0];
    }
    assert!(
        pruned > 100 && reblocked > 100_000,
        "too little pruned, reblocked: {pruned}, {reblocked}"
    );
    ok(&["verify", ms]);
}

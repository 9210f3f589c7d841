//! `export <pfs>[@@<point>] <dir> <path-inside>...` through the binary:
//! only the named files and directories, with the directories leading to
//! them (modes and times included), as of any TID; refusals that name the
//! path and create nothing; a failed export that takes away the target it
//! made (spec: cli.md §17).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::common::*;
use crate::import_export::{add_entry, assert_same_tree, mutate, snapshot, Node};

/// What a partial export of `named` must hold of the tree `all`: each
/// named path with everything below it, and the directories on the way.
fn expected(all: &BTreeMap<PathBuf, Node>, named: &[PathBuf]) -> BTreeMap<PathBuf, Node> {
    all.iter()
        .filter(|(p, _)| named.iter().any(|n| p.starts_with(n) || n.starts_with(p)))
        .map(|(p, n)| (p.clone(), n.clone()))
        .collect()
}

#[test]
fn random_paths_of_random_trees_export_alone_at_every_tid() {
    for seed in [7u64, 0xfeed, 0xc0ffee] {
        let dir = tempfile::tempdir().unwrap();
        let master = store_with_master(dir.path(), "s").join("master");
        let tree = dir.path().join("tree");
        fs::create_dir(&tree).unwrap();
        let mut rng = Rng(seed);
        for _ in 0..10 {
            add_entry(&tree, &mut rng, 0);
        }
        let mut history = Vec::new();
        for g in 0..3 {
            if g > 0 {
                mutate(&tree, &mut rng);
            }
            history.push((import(&tree, &master), snapshot(&tree)));
        }
        let mut n = 0;
        for (tid, all) in &history {
            let paths: Vec<&PathBuf> = all.keys().filter(|p| !p.as_os_str().is_empty()).collect();
            for _ in 0..4 {
                let named: Vec<PathBuf> = (0..1 + rng.below(2))
                    .map(|_| (*rng.pick(&paths)).clone())
                    .collect();
                let out = dir.path().join(format!("out{n}"));
                n += 1;
                let mut args = vec![
                    "export".to_string(),
                    format!("{}@@{tid:#018x}", master.display()),
                    out.display().to_string(),
                ];
                args.extend(named.iter().map(|p| p.display().to_string()));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                ok(&args);
                assert_same_tree(
                    &expected(all, &named),
                    &snapshot(&out),
                    &format!("seed {seed:#x} @ {tid:#x}: {named:?}"),
                );
            }
        }
    }
}

#[test]
fn hard_links_named_twice_stay_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let master = store_with_master(dir.path(), "s").join("master");
    let t = tree(dir.path(), [("a/f", "shared"), ("b/other", "x")]);
    fs::hard_link(t.join("a/f"), t.join("b/g")).unwrap();
    import(&t, &master);
    let out = dir.path().join("out");
    let (m, o) = (master.to_str().unwrap(), out.to_str().unwrap());
    ok(&["export", m, o, "a/f", "/b/g"]);
    let (f, g) = (
        fs::metadata(out.join("a/f")).unwrap(),
        fs::metadata(out.join("b/g")).unwrap(),
    );
    assert_eq!((f.ino(), f.nlink()), (g.ino(), 2));
    assert!(!out.join("b/other").exists());
    // `.` and `/` name the whole tree.
    let whole = dir.path().join("whole");
    ok(&["export", m, whole.to_str().unwrap(), "."]);
    assert_same_tree(&snapshot(&t), &snapshot(&whole), "export of '.'");
}

#[test]
fn paths_not_in_the_pfs_are_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let master = store_with_master(dir.path(), "s").join("master");
    let t = tree(dir.path(), [("etc/passwd", "root:x:0:0")]);
    let tid = import(&t, &master);
    let m = master.to_str().unwrap();
    let out = dir.path().join("out");
    for (inside, line) in [
        (
            "etc/nope",
            format!("hammer: etc/nope: no such file or directory in {m} as of {tid:#018x}\n"),
        ),
        (
            "etc/passwd/x",
            format!(
                "hammer: etc/passwd/x: a component on the way is not a directory in {m} as of {tid:#018x}\n"
            ),
        ),
        (
            "etc/../../x",
            "hammer: etc/../../x: '..' is not a path inside the PFS\n".to_string(),
        ),
    ] {
        let got = run(&["export", &format!("{m}@@{tid:#018x}"), out.to_str().unwrap(), inside]);
        assert_eq!(
            (got.status.code(), text(&got.stderr)),
            (Some(1), line),
            "{inside}"
        );
        assert!(!out.exists(), "{inside}: the target was made");
    }
}

/// An export that fails after making its target removes it; a target
/// that was there (empty) stays.
#[test]
fn a_failed_export_takes_away_the_target_it_made() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let master = root.join("master");
    let t = tree(dir.path(), [("big", vec![7u8; 100_000])]);
    import(&t, &master);
    // The payload file loses its data: reading the file's blocks fails.
    let payload = root.join(".hammer-store.pfs00001.0");
    fs::OpenOptions::new()
        .write(true)
        .open(&payload)
        .unwrap()
        .set_len(100)
        .unwrap();
    let m = master.to_str().unwrap();
    for inside in [&[][..], &["big"][..]] {
        let out = dir.path().join("out");
        let mut args = vec!["export", m, out.to_str().unwrap()];
        args.extend(inside);
        let got = run(&args);
        assert_eq!(got.status.code(), Some(1), "{}", text(&got.stderr));
        assert_stderr_has(&got, ".hammer-store.pfs00001.0");
        assert!(!out.exists(), "{inside:?}: the target stayed");
        let there = dir.path().join("there");
        fs::create_dir(&there).unwrap();
        args[2] = there.to_str().unwrap();
        assert_eq!(run(&args).status.code(), Some(1));
        assert!(there.is_dir(), "{inside:?}: a target that was there went");
        fs::remove_dir(&there).unwrap();
    }
}

/// The parents of a named path get their own modes and times.
#[test]
fn parent_directories_keep_their_modes_and_times() {
    let dir = tempfile::tempdir().unwrap();
    let master = store_with_master(dir.path(), "s").join("master");
    let t = tree(
        dir.path(),
        [("etc/ssh/sshd_config", "Port 22"), ("etc/hosts", "h")],
    );
    let ssh = t.join("etc/ssh");
    fs::set_permissions(&ssh, std::os::unix::fs::PermissionsExt::from_mode(0o710)).unwrap();
    let when = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
    fs::File::open(&ssh)
        .unwrap()
        .set_times(fs::FileTimes::new().set_modified(when))
        .unwrap();
    import(&t, &master);
    let out = dir.path().join("out");
    ok(&[
        "export",
        master.to_str().unwrap(),
        out.to_str().unwrap(),
        "etc/ssh/sshd_config",
    ]);
    let got = fs::metadata(out.join("etc/ssh")).unwrap();
    assert_eq!((got.mode() & 0o7777, got.mtime()), (0o710, 1_500_000_000));
    assert_eq!(
        fs::read_to_string(out.join("etc/ssh/sshd_config")).unwrap(),
        "Port 22"
    );
    assert!(!out.join("etc/hosts").exists());
    assert!(Path::new(&out).join("etc").is_dir());
}

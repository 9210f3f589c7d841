//! import as a backup tool, through the binary: `--exclude`,
//! `--exclude-from` and `--one-file-system` leave parts of the tree out
//! (and what was imported of them is removed in the new TID); a file or
//! directory that cannot be read is skipped with a line naming it, the
//! rest is imported, and the exit status is 3 (spec: cli.md §19).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::*;
use crate::privacy::as_nobody;

/// The relative paths of the files and directories under `dir`.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn export_listing(pfs: &str, at: &Path) -> Vec<String> {
    ok(&["export", pfs, at.to_str().unwrap()]);
    listing(at)
}

#[test]
fn excludes_leave_out_what_they_match_and_remove_what_was_imported() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let m = root.join("master");
    let m = m.to_str().unwrap();
    let t = tree(
        dir.path(),
        [
            ("src/a.c", "a"),
            ("src/a.tmp", "t"),
            ("cache/x/big", "c"),
            ("srv/cache/keep", "k"),
            ("logs/x.log", "l"),
            ("logs/x.txt", "l"),
        ],
    );
    let t = t.to_str().unwrap();
    let first = import(Path::new(t), Path::new(m));
    let excludes = dir.path().join("excludes");
    fs::write(&excludes, "# logs but their text\nlogs/*.log\n\n").unwrap();
    let out = ok(&[
        "import",
        "--exclude",
        "*.tmp",
        "--exclude=/cache",
        "--exclude-from",
        excludes.to_str().unwrap(),
        t,
        m,
    ]);
    assert!(text(&out.stdout).starts_with(&format!("Imported {t} into {m}: ")));
    assert_eq!(
        export_listing(m, &dir.path().join("after")),
        [
            "logs",
            "logs/x.txt",
            "src",
            "src/a.c",
            "srv",
            "srv/cache",
            "srv/cache/keep"
        ]
    );
    // The excluded files are still in the history before.
    let old = dir.path().join("before");
    ok(&[
        "export",
        &format!("{m}@@{first:#018x}"),
        old.to_str().unwrap(),
    ]);
    assert!(old.join("src/a.tmp").is_file() && old.join("cache/x/big").is_file());
    // `--` ends the options: a tree named like one.
    let odd = dir.path().join("--exclude");
    fs::create_dir(&odd).unwrap();
    fs::write(odd.join("f"), "f").unwrap();
    let out = run(&["import", "--", odd.to_str().unwrap(), m]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn bad_patterns_and_options_are_refused_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let m = root.join("master");
    let (t, m) = (dir.path().to_str().unwrap(), m.to_str().unwrap());
    let sync = sync_end(&root, 1);
    for (args, want) in [
        (
            vec!["--exclude", "a{b"],
            "hammer: bad exclude pattern 'a{b': error parsing glob 'a{b': unclosed alternate group",
        ),
        (
            vec!["--exclude-from", "/nonexistent/list"],
            "hammer: /nonexistent/list: No such file or directory",
        ),
    ] {
        let mut all = vec!["import"];
        all.extend(&args);
        all.extend([t, m]);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_stderr_has(&out, want);
        assert_eq!(sync_end(&root, 1), sync, "{args:?}: something was imported");
    }
    // An unknown option, or one without its value: the usage.
    for args in [vec!["--exclud", "x"], vec!["--exclude"]] {
        let mut all = vec!["import"];
        all.extend(&args);
        if args.len() > 1 {
            all.extend([t, m]);
        }
        let out = run(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_stderr_has(&out, "hammer import [--exclude <pattern>]...");
    }
}

#[test]
#[ignore = "needs root: mounts a tmpfs (cargo test -- --include-ignored, as .ci/run does)"]
fn one_file_system_keeps_to_the_trees_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let m = root.join("master");
    let m = m.to_str().unwrap();
    let t = tree(dir.path(), [("here", "h")]);
    let mnt = Tmpfs::mount(&t.join("mnt"), 4);
    fs::write(t.join("mnt/there"), "t").unwrap();
    ok(&["import", t.to_str().unwrap(), m]);
    assert_eq!(
        export_listing(m, &dir.path().join("all")),
        ["here", "mnt", "mnt/there"]
    );
    ok(&["import", "--one-file-system", t.to_str().unwrap(), m]);
    // The mount point stays, empty.
    assert_eq!(export_listing(m, &dir.path().join("one")), ["here", "mnt"]);
    drop(mnt);
}

/// As a cron job would run it (`-q`, events to a file): a file and a
/// directory nobody may read are skipped with a line each, the rest is
/// imported, a file that had a version keeps it, and the exit status is
/// 3; the summary (without -q) counts them.
#[test]
#[ignore = "needs root (runuser): cargo test -- --include-ignored, as .ci/run does"]
fn unreadable_entries_are_skipped_and_the_run_says_partial() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    std::os::unix::fs::chown(&work, Some(65534), Some(65534)).unwrap();
    let t = tree(
        dir.path(),
        [("ok", "fine"), ("secret", "v1"), ("locked/inside", "x")],
    );
    for p in ["", "ok", "secret", "locked", "locked/inside"] {
        fs::set_permissions(t.join(p), fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(t.join("secret"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(t.join("ok"), fs::Permissions::from_mode(0o644)).unwrap();
    let (s, m) = (work.join("s"), work.join("s/m"));
    let ts = t.to_str().unwrap();
    for args in [
        vec!["store-create", s.to_str().unwrap()],
        vec!["pfs-master", m.to_str().unwrap()],
        vec!["-q", "import", ts, m.to_str().unwrap()],
    ] {
        let out = as_nobody(&work, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    // Now nobody may read neither the new secret nor the directory.
    fs::write(t.join("secret"), "v2").unwrap();
    fs::set_permissions(t.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(t.join("locked"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(t.join("new"), "n").unwrap();
    let events = work.join("events.jsonl");
    let out = as_nobody(
        &work,
        &[
            "-q",
            "-j",
            events.to_str().unwrap(),
            "import",
            ts,
            m.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "hammer: import: {ts}/secret: Permission denied; skipped, its previous version kept\n\
             hammer: import: {ts}/locked: Permission denied; skipped, its previous contents kept\n"
        )
    );
    let ev = fs::read_to_string(&events).unwrap();
    assert_eq!(ev.matches("\"event\":\"skipped\"").count(), 2, "{ev}");
    assert!(ev.contains("\"status\":3"), "{ev}");
    let out_dir = dir.path().join("out");
    ok(&["export", m.to_str().unwrap(), out_dir.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(out_dir.join("secret")).unwrap(), "v1");
    assert_eq!(
        fs::read_to_string(out_dir.join("locked/inside")).unwrap(),
        "x"
    );
    assert_eq!(fs::read_to_string(out_dir.join("new")).unwrap(), "n");
    // Without -q the summary counts them.
    let out = as_nobody(&work, &["import", ts, m.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stdout).contains(", 2 skipped, TID 0x"),
        "{}",
        text(&out.stdout)
    );
}

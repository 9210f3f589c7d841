//! The snapshot commands through the binary, on a store (and, built with
//! `kernel-double`, through the kernel backend and its double): snap,
//! snaplo, snapq, snapshot, snaprm and snapls with hammer(8)'s syntax,
//! output and exit statuses, what a store does instead of a softlink, and
//! import's snapshots (spec: cli.md §13).

use std::fs;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::common::*;

/// `hammer <args>` with the local time in UTC, in `cwd` when given.
fn at(cwd: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = hammer();
    cmd.env("TZ", "UTC").args(args).stdin(Stdio::null());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    cmd.output().unwrap()
}

fn tz(args: &[&str]) -> Output {
    at(None, args)
}

#[track_caller]
fn tz_ok(args: &[&str]) -> Output {
    let out = tz(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    out
}

/// (TID, note) of each line of a snapls listing of one path, after its
/// header, which must name `path` and `pfs`.
#[track_caller]
fn listed(out: &Output, path: &Path, pfs: u32) -> Vec<(u64, String)> {
    let listing = text(&out.stdout);
    let head = format!(
        "Snapshots on {}\tPFS#{pfs}\nTransaction ID\t\tTimestamp\t\tNote\n",
        path.display()
    );
    assert!(listing.starts_with(&head), "{listing}");
    listing[head.len()..]
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "{l}");
            assert!(f[1].ends_with(" UTC") && f[1].len() == 23, "{l}");
            let tid = u64::from_str_radix(f[0].strip_prefix("0x").unwrap(), 16).unwrap();
            (tid, f[2].to_string())
        })
        .collect()
}

fn snapls(pfs: &Path, id: u32) -> Vec<(u64, String)> {
    listed(&tz_ok(&["snapls", pfs.to_str().unwrap()]), pfs, id)
}

fn tid_of(path_line: &str) -> u64 {
    let hex = path_line.trim_end().rsplit("@@0x").next().unwrap();
    u64::from_str_radix(hex, 16).unwrap()
}

/// The files of a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn snapq_prints_a_path_export_takes_and_snapls_lists_the_notes() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let tree = tree(dir.path(), [("a", b"one".to_vec())]);
    let t1 = import(&tree, &m);
    let ms = m.to_str().unwrap();

    // Right after an import the PFS's sync point is the import's
    // snapshot's. A snapshot already there is no error, and keeps its
    // note, as on HAMMER.
    let s1 = sync_end(&root, 1);
    assert!(s1 > t1);
    let out = tz_ok(&["snapq", ms, "same state"]);
    assert_eq!(text(&out.stdout), format!("{}@@0x{s1:016x}\n", m.display()));
    assert_eq!(text(&out.stderr), "");

    // Another change (a new configuration) moves the sync point on.
    let cfg = dir.path().join("cfg");
    fs::write(&cfg, "prune 1d 5m\n").unwrap();
    ok(&["config", ms, cfg.to_str().unwrap()]);
    let out = tz_ok(&["snapq", ms, "before the change"]);
    let line = text(&out.stdout);
    assert!(
        line.starts_with(&format!("{}@@0x", m.display())) && line.ends_with('\n'),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);
    let q = tid_of(&line);
    // Taken at the master's sync point: everything it committed.
    assert!(q > s1, "{q:#x} {s1:#x}");

    // snap and snaplo record only on a store, and say so (-q: silently).
    let before = names(&root);
    let out = tz_ok(&["snap", ms]);
    assert_eq!(text(&out.stdout), "");
    let said = text(&out.stderr);
    assert!(
        said.starts_with("hammer snap: a store keeps no snapshot softlinks: snapshot 0x")
            && said
                .ends_with(" of PFS#1 recorded in its meta-data only (hammer snapls lists it)\n"),
        "{said}"
    );
    let out = tz_ok(&["-q", "snaplo", ms, "quiet one"]);
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        (String::new(), String::new())
    );
    // A name that does not exist names no softlink either.
    let missing = root.join("nolink");
    tz_ok(&["-q", "snap", missing.to_str().unwrap(), "in PFS#0"]);
    assert_eq!(names(&root), before, "no softlink made in the store");

    fs::write(tree.join("a"), b"two").unwrap();
    import(&tree, &m);
    let s2 = sync_end(&root, 1);
    let back = dir.path().join("back");
    ok(&["export", line.trim_end(), back.to_str().unwrap()]);
    assert_eq!(fs::read(back.join("a")).unwrap(), b"one");

    let snaps = snapls(&m, 1);
    let notes: Vec<&str> = snaps.iter().map(|s| s.1.as_str()).collect();
    let imported = format!("import {}", tree.display());
    assert_eq!(
        notes,
        [
            &imported[..],
            "before the change",
            "-",
            "quiet one",
            &imported[..],
        ],
        "{snaps:?}"
    );
    assert_eq!(
        snaps[0].0, s1,
        "an import's snapshot is at the sync point it leaves"
    );
    assert_eq!(snaps[4].0, s2);
    assert_eq!(snaps[1].0, q);
    assert!(snaps.windows(2).all(|w| w[0].0 < w[1].0), "{snaps:?}");
    // The missing name's directory is the store root: PFS#0, which is also
    // what snapls lists without a path in a directory of the store.
    let out = at(Some(&root), &["snapls"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let zero = listed(&out, Path::new("."), 0);
    assert_eq!(zero.len(), 1);
    assert_eq!(zero[0].1, "in PFS#0");
}

#[test]
fn snapshot_makes_softlinks_to_the_pfs_as_of_its_tid() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let tree = tree(dir.path(), [("f", b"first".to_vec())]);
    import(&tree, &m);
    let links = dir.path().join("snaps");
    fs::create_dir(&links).unwrap();

    // A change that is no import (which records a snapshot of its own),
    // for a snapshot at a TID of its own.
    let cfg = dir.path().join("cfg");
    fs::write(&cfg, "prune 1d 5m\n").unwrap();
    ok(&["config", m.to_str().unwrap(), cfg.to_str().unwrap()]);

    // Into a directory: snap-<date>-<time>, the path printed.
    let out = tz_ok(&[
        "snapshot",
        m.to_str().unwrap(),
        links.to_str().unwrap(),
        "daily",
    ]);
    let made = text(&out.stdout);
    let made = Path::new(made.trim_end());
    let name = made.file_name().unwrap().to_str().unwrap();
    assert!(
        made.parent() == Some(&links)
            && name.starts_with("snap-")
            && name.len() == "snap-20261128-1717".len(),
        "{made:?}"
    );
    let target = fs::read_link(made).unwrap();
    let target = target.to_str().unwrap();
    assert!(
        target.starts_with(&format!("{}/@@0x", m.display())),
        "{target}"
    );
    // A name of one's own, as a strftime format.
    let fmt = links.join("web-%Y");
    let out = tz_ok(&["snapshot", m.to_str().unwrap(), fmt.to_str().unwrap()]);
    let year = text(&out.stdout);
    assert!(
        year.trim_end()
            .starts_with(&format!("{}/web-2", links.display())),
        "{year}"
    );

    fs::write(tree.join("f"), b"second").unwrap();
    import(&tree, &m);
    // export, verify and mount read `<pfs>/@@0x<tid>`, HAMMER's path.
    let back = dir.path().join("back");
    ok(&["export", target, back.to_str().unwrap()]);
    assert_eq!(fs::read(back.join("f")).unwrap(), b"first");
    ok(&["verify", target]);
    let snaps = snapls(&m, 1);
    assert_eq!(
        snaps.iter().filter(|s| s.1 == "daily").count(),
        1,
        "{snaps:?}"
    );
    assert_eq!(
        snaps.iter().find(|s| s.1 == "daily").unwrap().0,
        tid_of(target)
    );

    // Without a filesystem: the one holding the directory, a store's root
    // for a directory of a store (PFS#0).
    let inner = root.join("snaps");
    fs::create_dir(&inner).unwrap();
    let out = tz_ok(&["snapshot", inner.to_str().unwrap()]);
    let link = fs::read_link(text(&out.stdout).trim_end()).unwrap();
    let canonical = root.canonicalize().unwrap();
    assert!(
        link.to_str()
            .unwrap()
            .starts_with(&format!("{}/@@0x", canonical.display())),
        "{link:?}"
    );
    assert_eq!(snapls(&root, 0).len(), 1);

    // The original's refusals, exit 2.
    let file = dir.path().join("plain");
    fs::write(&file, b"").unwrap();
    let out = tz(&["snapshot", m.to_str().unwrap(), file.to_str().unwrap()]);
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            format!("hammer: File {} already exists\n", file.display()),
            2
        )
    );
    let nowhere = dir.path().join("no/such/%Y");
    let out = tz(&["snapshot", nowhere.to_str().unwrap()]);
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            format!(
                "hammer: Unable to determine softlink dir {}\n",
                dir.path().join("no/such").display()
            ),
            2
        )
    );
}

/// A store's PFS link dangles: `snapshot` took it for a name not taken
/// and replaced it with its softlink, losing the PFS its name. It is
/// refused, nothing recorded, the link left (cli.md §13.2).
#[test]
fn snapshot_does_not_replace_a_pfs_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let tree = tree(dir.path(), [("f", b"first".to_vec())]);
    import(&tree, &m);
    let other = root.join("other");
    ok(&["pfs-master", other.to_str().unwrap()]);
    // A name the softlink's format comes to: `%%` is `%`.
    let percent = root.join("%");
    ok(&["pfs-master", percent.to_str().unwrap()]);
    let format = format!("{}/%%", root.display());
    let before = (snapls(&root, 0), snapls(&m, 1));
    for (args, link) in [
        (vec![m.to_str().unwrap()], &m),
        (vec![m.to_str().unwrap(), other.to_str().unwrap()], &other),
        (
            vec![m.to_str().unwrap(), other.to_str().unwrap(), "note"],
            &other,
        ),
        (vec![m.to_str().unwrap(), &format], &percent),
    ] {
        let mut all = vec!["snapshot"];
        all.extend(&args);
        let out = tz(&all);
        let link = link.display();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            text(&out.stderr),
            format!(
                "hammer: File {link} already exists: it is a PFS link, which a snapshot softlink may not replace\n"
            ),
            "{args:?}"
        );
        assert_eq!(text(&out.stdout), "");
    }
    assert_eq!(link_id(&m), Some(1));
    assert_eq!(link_id(&other), Some(2));
    assert_eq!(link_id(&percent), Some(3));
    assert_eq!((snapls(&root, 0), snapls(&m, 1)), before);
}

#[test]
fn snaprm_deletes_by_softlink_by_tid_and_after_a_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let ms = m.to_str().unwrap();
    let q = |note: &str| tid_of(&text(&tz_ok(&["snapq", ms, note]).stdout));
    let (a, b, c) = (q("a"), q("b"), q("c"));
    assert!(a < b && b < c);

    // <filesystem> <transaction_id> ...: a PFS link names its PFS.
    let out = tz_ok(&["snaprm", ms, &format!("0x{a:016x}"), &format!("{b:x}")]);
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        (String::new(), String::new())
    );
    let left: Vec<u64> = snapls(&m, 1).iter().map(|s| s.0).collect();
    assert_eq!(left, [c]);

    // A TID not there: a warning, and on to the next one.
    let out = tz_ok(&["snaprm", ms, &format!("{a:x}"), &format!("{c:x}")]);
    assert_eq!(
        text(&out.stderr),
        format!("Warning: hammer snaprm 0x{a:016x}: meta-data not found\n")
    );
    assert!(snapls(&m, 1).is_empty());

    // A softlink and its snapshot go together.
    let links = dir.path().join("snaps");
    fs::create_dir(&links).unwrap();
    let link = text(&tz_ok(&["snapshot", ms, links.to_str().unwrap(), "kept"]).stdout);
    let link = link.trim_end();
    assert_eq!(snapls(&m, 1).len(), 1);
    tz_ok(&["snaprm", link]);
    assert!(fs::symlink_metadata(link).is_err());
    assert!(snapls(&m, 1).is_empty());

    // A bare TID: of the PFS holding the current directory (the store
    // root here: PFS#0).
    let out = at(Some(&root), &["snapq", "."]);
    let zero = tid_of(&text(&out.stdout));
    assert_eq!(
        text(&out.stdout),
        format!("./@@0x{zero:016x}\n"),
        "{}",
        text(&out.stderr)
    );
    let out = at(Some(&root), &["snaprm", &format!("0x{zero:016x}")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(snapls(&root, 0).is_empty());

    // Neither a file nor a TID; mixed forms; nothing at all.
    let out = tz(&["snaprm", "not-a-tid"]);
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            "hammer: hammer snaprm: not a file or tid: not-a-tid: No such file or directory\n"
                .into(),
            2
        )
    );
    // A TID, then a directory: the TID's deletion stands, then the usage.
    let out = at(Some(&root), &["snaprm", "10", ms]);
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            format!(
                "Warning: hammer snaprm 0x0000000000000010: meta-data not found\n{SNAPSHOT_USAGE}"
            ),
            1
        )
    );
}

/// The snapshot usage, byte for byte (cli.md §13).
const SNAPSHOT_USAGE: &str = "\
hammer snap <path> [<note>]\t\tcreate snapshot & link, points to
\t\t\t\t\tbase of PFS mount
hammer snaplo <path> [<note>]\t\tcreate snapshot & link, points to
\t\t\t\t\ttarget dir
hammer snapq <dir> [<note>]\t\tcreate snapshot, output path to stdout
hammer snaprm <path> ...\t\tdelete snapshots; filesystem is CWD
hammer snaprm <transid> ...\t\tdelete snapshots
hammer snaprm <filesystem> <transid> ...\tdelete snapshots
hammer snapls [<path> ...]\t\tlist available snapshots

NOTE: Snapshots are created in filesystem meta-data, any directory
      in a HAMMER filesystem or PFS may be specified.  If the path
      specified does not exist this function will also create a
      softlink.

      When deleting snapshots transaction ids may be directly specified
      or file paths to snapshot softlinks may be specified.  If a
      softlink is specified the softlink will also be deleted.

NOTE: The old 'hammer snapshot [<filesystem>] <snapshot-dir>' form
      is still accepted but is a deprecated form.  This form will
      work for older hammer versions.  The new forms only work for
      HAMMER version 3 or later filesystems.  HAMMER can be upgraded
      to version 3 in-place.
";

#[test]
fn wrong_arguments_get_the_snapshot_usage_and_failures_exit_2() {
    for args in [
        &["snap"][..],
        &["snaplo", "a", "b", "c"],
        &["snapq"],
        &["snaprm"],
        &["snapshot"],
        &["snapshot", "a", "b", "c", "d"],
    ] {
        assert_eq!(
            outcome(&tz(args)),
            (String::new(), SNAPSHOT_USAGE.to_string(), 1),
            "{args:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // A directory on no HAMMER filesystem and in no store.
    let out = tz(&["snapq", d]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(
        &out,
        "hammer: Unable to create snapshot: Inappropriate ioctl for device\n",
    );
    assert_stderr_has(
        &out,
        "hint: that path is on no HAMMER filesystem and in no store",
    );
    let file = dir.path().join("f");
    fs::write(&file, b"").unwrap();
    let out = tz(&["snap", file.to_str().unwrap()]);
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            format!(
                "hammer: hammer snap: File {} exists and is not a directory\n",
                file.display()
            ),
            2
        )
    );
    let out = tz(&["snapls", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            format!(
                "hammer: hammer snapls: cannot open {}: No such file or directory\n",
                dir.path().join("nope").display()
            ),
            2
        )
    );
}

/// A slave's snapshots: its master's, mirrored; one of its own is taken at
/// its sync point, which export accepts (a later TID it refuses).
#[test]
fn a_slave_lists_its_masters_snapshots_and_snaps_at_its_sync_point() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let s = root.join("slave");
    let tree = tree(dir.path(), [("x", b"ex".to_vec())]);
    tz_ok(&["snapq", m.to_str().unwrap(), "on the master"]);
    import(&tree, &m);
    copy_quietly(&m, &s);
    let notes: Vec<String> = snapls(&s, 2).into_iter().map(|s| s.1).collect();
    assert_eq!(
        notes,
        ["on the master".into(), format!("import {}", tree.display())]
    );

    // The master moves on; the slave's snapshot is of what it holds.
    fs::write(tree.join("x"), b"changed").unwrap();
    import(&tree, &m);
    let line = text(&tz_ok(&["snapq", s.to_str().unwrap()]).stdout);
    assert_eq!(tid_of(&line), sync_end(&root, 2));
    let back = dir.path().join("back");
    ok(&["export", line.trim_end(), back.to_str().unwrap()]);
    assert_eq!(fs::read(back.join("x")).unwrap(), b"ex");
}

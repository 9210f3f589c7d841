//! Golden-style tests of the pfs-*, synctid and store-create commands on a
//! store: every text of cli.md §5-10, exit codes, and the protocol.md §15
//! defects fixed (D17, D18, D20).

use std::path::Path;

use crate::common::*;
use hammer_mirror::cli::{PFS_USAGE, SYNCTID_USAGE};

const SHARED: &str = "01234567-89ab-cdef-0123-456789abcdef";
const UNIQUE: &str = "fedcba98-7654-3210-aabb-001122334455";

/// Runs hammer in `dir` with `stdin`; (stdout, stderr, status).
fn hammer_in(dir: &Path, args: &[&str], stdin: &str) -> (String, String, i32) {
    outcome(&run_with_input(
        hammer().current_dir(dir).args(args),
        stdin.as_bytes(),
    ))
}

/// A fresh store in a temp dir; returns (tempdir, store path).
fn store() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let s = d.path().join("fs");
    let (o, e, c) = hammer_in(d.path(), &["store-create", "fs"], "");
    assert_eq!((o.as_str(), e.as_str(), c), ("", "", 0));
    (d, s)
}

/// The PFS block of PFS `id` of the store `s`; its snapshots-directory
/// line names the directory cleanup uses on a store.
fn block(s: &Path, id: u32, beg: &str, end: &str, label: &str, mode: &str) -> String {
    let dir = s
        .canonicalize()
        .unwrap()
        .join(format!(".hammer-store.cleanup/pfs{id:05}"));
    format!(
        "    sync-beg-tid=0x{beg}\n    sync-end-tid=0x{end}\n    shared-uuid={SHARED}\n    \
         unique-uuid={UNIQUE}\n    label=\"{label}\"\n    prune-min=00:00:00\n    \
         operating as a {mode}\n    snapshots directory defaults to {}\n",
        dir.display()
    )
}

/// Creates a PFS with fixed uuids; returns pfs-master/slave's stdout.
fn create(s: &Path, cmd: &str, name: &str, extra: &[&str]) -> String {
    let shared = format!("shared-uuid={SHARED}");
    let unique = format!("unique-uuid={UNIQUE}");
    let mut args = vec![cmd, name, &shared, &unique];
    args.extend_from_slice(extra);
    let (o, e, c) = hammer_in(s, &args, "");
    assert_eq!((e.as_str(), c), ("", 0), "{o}");
    o
}

#[test]
fn pfs_master_and_slave_output() {
    let (_d, s) = store();
    let o = create(&s, "pfs-master", "a", &["label=\"first\""]);
    assert_eq!(
        o,
        format!(
            "Creating PFS#1\tsucceeded!\na\n{}",
            block(
                &s,
                1,
                "0000000000000001",
                "0000000100000005",
                "first",
                "MASTER"
            )
        )
    );
    let o = create(&s, "pfs-slave", "b", &[]);
    assert_eq!(
        o,
        format!(
            "Creating PFS#2\tsucceeded!\nb\n{}",
            block(&s, 2, "0000000000000001", "0000000000000001", "", "SLAVE")
        )
    );
    assert_eq!(
        std::fs::read_link(s.join("b")).unwrap().to_str(),
        Some("@@PFS00002")
    );
}

#[test]
fn pfs_status_output_and_path_forms() {
    let (_d, s) = store();
    create(&s, "pfs-slave", "b", &[]);
    let want = |p: &str| {
        format!(
            "{p}\tPFS#1 {{\n{}}}\n",
            block(&s, 1, "0000000000000001", "0000000000000001", "", "SLAVE")
        )
    };
    for p in ["b", "b/", "@@-1:00001", "./@@0x0000000100000000:00001"] {
        assert_eq!(
            hammer_in(&s, &["pfs-status", p], ""),
            (want(p), String::new(), 0)
        );
    }
    // No argument means ".": the store root, PFS#0.
    let (o, _, c) = hammer_in(&s, &["pfs-status"], "");
    assert!(
        o.starts_with(".\tPFS#0 {\n    sync-beg-tid=0x0000000000000000\n"),
        "{o}"
    );
    assert!(o.contains("operating as a MASTER\n"));
    assert_eq!(c, 0);
}

#[test]
fn pfs_status_stops_at_the_first_bad_path() {
    let (_d, s) = store();
    create(&s, "pfs-master", "a", &[]);
    let (o, e, c) = hammer_in(&s, &["pfs-status", "a", "nosuch", "a"], "");
    assert!(o.starts_with("a\tPFS#1 {\n") && o.ends_with("}\n"));
    assert_eq!(o.matches("PFS#").count(), 1);
    assert_eq!(
        e,
        "hammer: Failed to open nosuch: No such file or directory\n"
    );
    assert_eq!(c, 1);
}

#[test]
fn pfs_status_of_a_missing_pfs() {
    let (_d, s) = store();
    let (o, e, c) = hammer_in(&s, &["pfs-status", "@@-1:00009"], "");
    assert_eq!(o, "");
    assert_eq!(e, "hammer: Cannot access .: No such file or directory\n");
    assert_eq!(c, 1);
}

/// The hint this tool adds after the original's message for a path on no HAMMER
/// filesystem and in no store.
const NO_STORE_HINT: &str = "hint: that path is on no HAMMER filesystem and in no store: \
     make a store with `hammer store-create <dir>` and PFSes in it with `hammer pfs-master <dir>/<name>`\n";

#[test]
fn path_outside_any_store() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().to_str().unwrap().to_string();
    let (o, e, c) = hammer_in(d.path(), &["pfs-status", &p], "");
    assert_eq!(o, "");
    assert_eq!(
        e,
        format!("hammer: Cannot access {p}: Inappropriate ioctl for device\n{NO_STORE_HINT}")
    );
    assert_eq!(c, 1);
    let (_, e, c) = hammer_in(d.path(), &["synctid", &p], "");
    assert_eq!(
        e,
        format!("hammer: Synctid {p} failed: Inappropriate ioctl for device\n{NO_STORE_HINT}")
    );
    assert_eq!(c, 1);
    let (o, e, c) = hammer_in(d.path(), &["pfs-master", "x"], "");
    assert_eq!(o, "");
    assert_eq!(
        e,
        format!(
            "You are attempting to access a PFS softlink from a PFS.  It may not represent the PFS\n\
             on the main filesystem mount that you expect!  You may only access PFS softlinks\n\
             via the main filesystem mount!\n{NO_STORE_HINT}"
        )
    );
    assert_eq!(c, 1);
}

#[test]
fn pfs_create_refusals() {
    let (_d, s) = store();
    create(&s, "pfs-master", "a", &[]);
    let err = |args: &[&str]| {
        let (o, e, c) = hammer_in(&s, args, "");
        assert_eq!((o.as_str(), c), ("", 1), "{e}");
        e
    };
    assert_eq!(
        err(&["pfs-master", "a"]),
        "hammer: Cannot create a, file exists!\n"
    );
    assert_eq!(
        err(&["pfs-slave", "new/"]),
        "hammer: Invalid PFS path new/ with trailing /\n"
    );
    assert_eq!(
        err(&["pfs-master", "nodir/x"]),
        "hammer: Cannot open directory nodir: No such file or directory\n"
    );
    assert_eq!(err(&["pfs-master"]), PFS_USAGE);
}

#[test]
fn pfs_create_with_bad_option_leaves_the_pfs() {
    let (_d, s) = store();
    let (o, e, c) = hammer_in(&s, &["pfs-master", "a", "bogus=1"], "");
    assert_eq!(o, "Creating PFS#1\tsucceeded!\na\n");
    assert_eq!((e.as_str(), c), ("hammer: invalid option: bogus\n", 1));
    assert!(s.join("a").symlink_metadata().is_ok());
}

#[test]
fn pfs_update_option_errors() {
    let (_d, s) = store();
    create(&s, "pfs-master", "a", &[]);
    let cases: &[(&str, &str)] = &[
        ("label", "hammer: option label requires an assignment\n"),
        (
            "shared-uuid=zz",
            "hammer: option shared-uuid: error parsing uuid zz\n",
        ),
        (
            "unique-uuid=zz",
            "hammer: option unique-uuid: error parsing uuid zz\n",
        ),
        ("label=\"abc", "hammer: option label: malformed string\n"),
        (
            "snapshots=rel",
            "option snapshots: 'rel' must be an absolute path\n",
        ),
        (
            "snapshots=",
            "option snapshots: '' must be an absolute path\n\
             use 'snapshots-clear' to unset snapshots dir\n",
        ),
        (
            // D17 fixed: the message names the option.
            "prune-min=5x",
            "hammer: option prune-min: illegal time spec, use Nd or [Nd/]hh[:mm[:ss]]\n",
        ),
        ("nosuch=1", "hammer: invalid option: nosuch\n"),
    ];
    for (opt, want) in cases {
        let (o, e, c) = hammer_in(&s, &["pfs-update", "a", opt], "");
        assert_eq!((o.as_str(), e.as_str(), c), ("a\n", *want, 1), "{opt}");
    }
    let long = format!("snapshots=/{}", "x".repeat(70));
    let (_, e, c) = hammer_in(&s, &["pfs-update", "a", &long], "");
    assert_eq!(
        (e.as_str(), c),
        (
            "hammer: option snapshots: path too long, 71 character limit\n",
            1
        )
    );
}

#[test]
fn pfs_update_applies_options_in_order() {
    let (_d, s) = store();
    create(&s, "pfs-slave", "b", &[]);
    let (o, e, c) = hammer_in(
        &s,
        &[
            "pfs-update",
            "b",
            "sync-beg-tid=0x10",
            "sync-end-tid=00000001061a8ba0",
            "label=x",
            "label=\"backup copy\"",
            "snapshots=/snap",
            "prune-min=1d/02:03:04",
        ],
        "",
    );
    assert_eq!((e.as_str(), c), ("", 0));
    assert_eq!(
        o,
        format!(
            "b\n    sync-beg-tid=0x0000000000000010\n    sync-end-tid=0x00000001061a8ba0\n    \
             shared-uuid={SHARED}\n    unique-uuid={UNIQUE}\n    label=\"backup copy\"\n    \
             snapshots=\"/snap\"\n    prune-min=1d/02:03:04\n    operating as a SLAVE\n"
        )
    );
    // D17 fixed: a bare snapshots-clear, as the usage shows it.
    let (o, _, c) = hammer_in(&s, &["pfs-update", "b", "snapshots-clear"], "");
    assert!(
        !o.contains("snapshots=")
            && o.contains("defaults to /")
            && o.contains(".hammer-store.cleanup/pfs")
    );
    assert_eq!(c, 0);
}

#[test]
fn upgrade_and_downgrade_texts() {
    let (_d, s) = store();
    create(&s, "pfs-master", "a", &["label=lab"]);
    let run = |args: &[&str]| hammer_in(&s, args, "");
    let ok = |m: &str| (m.to_string(), String::new(), 0);
    let fail = |m: &str| (String::new(), format!("hammer: {m}\n"), 1);
    assert_eq!(run(&["pfs-upgrade", "a"]), fail("It is already a master"));
    assert_eq!(
        run(&["pfs-downgrade", "a", "ignored"]),
        ok("pfs-downgrade of PFS#1 (lab) succeeded\n")
    );
    assert_eq!(run(&["pfs-downgrade", "a"]), fail("It is already a slave"));
    assert_eq!(
        run(&["pfs-upgrade", "a"]),
        ok("pfs-upgrade of PFS#1 (lab) succeeded\n")
    );
    assert_eq!(
        run(&["pfs-upgrade", "."]),
        fail("You cannot upgrade PFS#0 (It should already be a master)")
    );
    assert_eq!(
        run(&["pfs-downgrade", "."]),
        fail("You cannot downgrade PFS#0")
    );
    assert_eq!(
        run(&["pfs-upgrade"]),
        (String::new(), PFS_USAGE.to_string(), 1)
    );
    assert_eq!(
        run(&["pfs-downgrade"]),
        (String::new(), PFS_USAGE.to_string(), 1)
    );
}

#[test]
fn pfs_destroy_dialogue() {
    let (_d, s) = store();
    create(&s, "pfs-master", "a", &["label=lab"]);
    create(&s, "pfs-slave", "b", &[]);
    let ask = "You have requested that PFS#1 (lab) be destroyed\n\
               This will irrevocably destroy all data on this PFS!!!!!\n\
               Do you really want to do this? [y/n] ";
    let master = "This PFS is currently setup as a MASTER!\n\
                  Are you absolutely sure you want to destroy it? [y/n] ";
    let refused = "hammer: No action taken on PFS#1\n";
    assert_eq!(
        hammer_in(&s, &["-d", "pfs-destroy", "a"], "n\n"),
        (ask.to_string(), refused.to_string(), 1)
    );
    assert_eq!(
        hammer_in(&s, &["-d", "pfs-destroy", "a"], ""),
        (ask.to_string(), refused.to_string(), 1)
    );
    assert_eq!(
        hammer_in(&s, &["-d", "pfs-destroy", "a"], "yes\r\nno\n"),
        (format!("{ask}{master}"), refused.to_string(), 1)
    );
    assert_eq!(
        hammer_in(&s, &["-d", "pfs-destroy", "a"], "Y\nYES\n"),
        (
            format!("{ask}{master}Destroying PFS#1 (lab)\npfs-destroy of PFS#1 succeeded!\n"),
            String::new(),
            0
        )
    );
    assert!(s.join("a").symlink_metadata().is_err());
    // A slave asks once; without -d the countdown runs.
    let (o, e, c) = hammer_in(&s, &["pfs-destroy", "b/"], "y\n");
    assert_eq!(
        o,
        "You have requested that PFS#2 () be destroyed\n\
         This will irrevocably destroy all data on this PFS!!!!!\n\
         Do you really want to do this? [y/n] \
         Destroying PFS#2 () in 5 4 3 2 1.. starting destruction pass\n\
         pfs-destroy of PFS#2 succeeded!\n"
    );
    assert_eq!((e.as_str(), c), ("", 0));
    assert!(s.join("b").symlink_metadata().is_err());
    assert_eq!(
        hammer_in(&s, &["pfs-destroy", "."], ""),
        (
            String::new(),
            "hammer: You cannot destroy PFS#0\n\
             hint: PFS#0 is the filesystem itself, but it can be pruned to nothing: remove its \
             files, then `hammer prune-everything .` destroys all its history\n"
                .to_string(),
            1
        )
    );
    // The freed id is reused.
    assert!(create(&s, "pfs-master", "c", &[]).starts_with("Creating PFS#1\t"));
}

#[test]
fn synctid_texts() {
    let (_d, s) = store();
    assert_eq!(
        hammer_in(&s, &["synctid", "."], ""),
        ("0x0000000100000001\n".to_string(), String::new(), 0)
    );
    assert_eq!(
        hammer_in(&s, &["synctid", ".", "quick"], ""),
        ("0x0000000100000001\n".to_string(), String::new(), 0)
    );
    // pfs-master's SET and pfs-update's SET are a flush each (and every
    // TID allocation skips one, see alloc_tid).
    create(&s, "pfs-master", "a", &[]);
    assert_eq!(
        hammer_in(&s, &["synctid", "."], "").0,
        "0x0000000100000005\n"
    );
    for bad in [
        &["synctid"][..],
        &["synctid", ".", "slow"],
        &["synctid", ".", "quick", "x"],
    ] {
        assert_eq!(
            hammer_in(&s, bad, ""),
            (String::new(), SYNCTID_USAGE.to_string(), 1)
        );
    }
    assert_eq!(
        hammer_in(&s, &["synctid", "nosuch"], ""),
        (
            String::new(),
            "hammer: Unable to open nosuch: No such file or directory\n".to_string(),
            1
        )
    );
}

#[test]
fn d18_pfs_zero_reference_does_not_abort() {
    let (_d, s) = store();
    let (o, _, c) = hammer_in(&s, &["pfs-status", "@@-1:00000"], "");
    assert!(o.starts_with("@@-1:00000\tPFS#0 {\n"), "{o}");
    assert_eq!(c, 0);
}

#[test]
fn store_create_refuses_a_non_empty_directory() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("f"), b"x").unwrap();
    let (o, e, c) = hammer_in(d.path(), &["store-create", "."], "");
    assert_eq!(
        (o.as_str(), e.as_str(), c),
        (
            "",
            "hammer: store-create: .: directory exists and is not empty\n",
            1
        )
    );
    let (_, e, c) = hammer_in(d.path(), &["store-create"], "");
    assert_eq!((e.as_str(), c), ("hammer store-create <dir>\n", 1));
}

#[test]
fn corrupt_and_newer_stores_are_refused_clearly() {
    let (_d, s) = store();
    let db = s.join(hammer_mirror::pfs::store::DB_NAME);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA user_version=99").unwrap();
    drop(conn);
    let (o, e, c) = hammer_in(&s, &["pfs-status", "."], "");
    assert_eq!(o, "");
    assert_eq!(
        e,
        format!(
            "hammer: Cannot access .: store format version 99 is newer than this hammer \
             supports ({})\n",
            hammer_mirror::pfs::store::FORMAT_VERSION
        )
    );
    assert_eq!(c, 1);
    for f in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{f}", db.display()));
    }
    std::fs::write(&db, vec![0x5a; 16384]).unwrap();
    let (o, e, c) = hammer_in(&s, &["pfs-status", "."], "");
    assert_eq!(o, "");
    assert_eq!(
        e,
        "hammer: Cannot access .: store database: file is not a database\n"
    );
    assert_eq!(c, 1);
}

/// synctid works on every path form the other commands accept: the TID is
/// filesystem-wide, and on HAMMER any path of the filesystem opens (a PFS
/// link, `@@` names, a plain directory), not only the store root.
#[test]
fn synctid_on_every_path_form() {
    let (_d, s) = store();
    create(&s, "pfs-master", "a", &[]);
    create(&s, "pfs-slave", "b", &[]);
    std::fs::create_dir(s.join("sub")).unwrap();
    let (root_tid, _, _) = hammer_in(&s, &["synctid", "."], "");
    for p in [
        "a",
        "a/",
        "b",
        "@@-1:00001",
        "./@@0x0000000100000000:00002",
        "@@-1:00000",
        "sub",
        "sub/../a",
    ] {
        for args in [&["synctid", p][..], &["synctid", p, "quick"]] {
            assert_eq!(
                hammer_in(&s, args, ""),
                (root_tid.clone(), String::new(), 0),
                "{args:?}"
            );
        }
    }
    // A reference to no PFS does not open, as on HAMMER.
    assert_eq!(
        hammer_in(&s, &["synctid", "@@-1:00009"], ""),
        (
            String::new(),
            "hammer: Unable to open @@-1:00009: No such file or directory\n".to_string(),
            1
        )
    );
}

/// pfs-master's directory is opened as HAMMER opens it: a PFS link or `@@`
/// name reaches that PFS, which is not the main mount; a store's
/// `@@-1:00000` is no directory to hold a link. No PFS is created.
#[test]
fn pfs_create_in_a_pfs_is_refused() {
    let (_d, s) = store();
    create(&s, "pfs-master", "a", &[]);
    for p in ["a/x", "@@-1:00001/x"] {
        let (o, e, c) = hammer_in(&s, &["pfs-master", p], "");
        assert_eq!(
            (o.as_str(), e.as_str(), c),
            (
                "",
                "You are attempting to access a PFS softlink from a PFS.  It may not represent the PFS\n\
                 on the main filesystem mount that you expect!  You may only access PFS softlinks\n\
                 via the main filesystem mount!\n",
                1
            ),
            "{p}"
        );
    }
    let (o, e, c) = hammer_in(&s, &["pfs-slave", "@@-1:00000/x"], "");
    assert_eq!(
        (o.as_str(), e.as_str(), c),
        (
            "",
            "hammer: Cannot open directory @@-1:00000: No such file or directory\n",
            1
        )
    );
    let (_, e, c) = hammer_in(&s, &["pfs-status", "@@-1:00002"], "");
    assert_eq!(
        (e.as_str(), c),
        ("hammer: Cannot access .: No such file or directory\n", 1)
    );
}

/// A file named without a slash lies in "." (its parent is no "" to open).
#[test]
fn a_file_named_without_a_slash_is_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("st");
    crate::common::ok(&["store-create", root.to_str().unwrap()]);
    std::fs::write(root.join("file"), b"x").unwrap();
    let out = crate::common::hammer()
        .args(["pfs-status", "file"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::common::text(&out.stderr));
    assert!(crate::common::text(&out.stdout).starts_with("file\tPFS#0 {\n"));
}

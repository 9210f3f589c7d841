//! Mistakes a newcomer makes, caught with the fix named.

use crate::common::*;

/// The command line `args` run with a terminal as stdin, stdout and
/// stderr (util-linux `script`); returns what the terminal showed and the
/// exit status.
fn on_a_terminal(args: &[&str]) -> (String, Option<i32>) {
    let cmd = std::iter::once(env!("CARGO_BIN_EXE_hammer"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    (text(&out.stdout), out.status.code())
}

#[test]
fn mirror_read_refuses_to_write_binary_to_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 2, 1, 100);
    let m = src.join("master").display().to_string();
    for cmd in ["mirror-read", "mirror-read-stream"] {
        let (shown, code) = on_a_terminal(&[cmd, &m]);
        assert_eq!(code, Some(1), "{shown}");
        assert_eq!(
            shown.trim_end(),
            format!(
                "hammer: {cmd}: standard output is a terminal; redirect the stream to a file or a pipe"
            )
        );
    }
    // Redirected, it runs as before.
    let out = ok(&["mirror-read", &m]);
    assert!(!out.stdout.is_empty());
}

#[test]
fn a_pfs_is_not_copied_onto_itself() {
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 3, 1, 100);
    let m = src.join("master").display().to_string();
    let s = src.join("slave").display().to_string();
    ok(&["-y", "-q", "mirror-copy", &m, &s]);
    let before = (sync_end(&src, 1), sync_end(&src, 2));
    let at_id = src.join("@@-1:00002").display().to_string();
    for (a, b) in [(&m, &m), (&s, &s), (&s, &format!("{s}/")), (&s, &at_id)] {
        let out = run(&["-i", "0", "mirror-copy", a, b]);
        assert_eq!(
            (out.status.code(), text(&out.stderr)),
            (
                Some(1),
                format!("hammer: mirror-copy: {a} and {b} are the same PFS\n")
            )
        );
    }
    assert_eq!((sync_end(&src, 1), sync_end(&src, 2)), before);
}

/// A directory inside a store silently meant PFS#0: a second import "into"
/// another directory replaced the first one's tree. Now import, export and
/// snapls --changes take a PFS link, an `@@` name or the store root, nothing
/// else.
#[test]
fn import_and_export_refuse_a_plain_directory_of_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = new_store(dir.path(), "st");
    let plain = root.join("plaindir");
    std::fs::create_dir(&plain).unwrap();
    let tree = tree(dir.path(), [("f", b"data")]);
    let want = format!(
        "hammer: {p}: a plain directory of the store {r}, not a PFS: make one with \
         `hammer pfs-master <store>/<name>` and use that link, or give the store root {r} \
         for its PFS#0\n",
        p = plain.display(),
        r = root.canonicalize().unwrap().display()
    );
    let out = run(&["import", tree.to_str().unwrap(), plain.to_str().unwrap()]);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(1), want.clone())
    );
    let out = run(&[
        "export",
        plain.to_str().unwrap(),
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(1), want.clone())
    );
    let out = run(&["snapls", "--changes", plain.to_str().unwrap()]);
    assert_eq!((out.status.code(), text(&out.stderr)), (Some(1), want));
    // The store root, explicitly, is PFS#0.
    ok(&["import", tree.to_str().unwrap(), root.to_str().unwrap()]);
    let back = dir.path().join("back");
    ok(&["export", root.to_str().unwrap(), back.to_str().unwrap()]);
    assert_eq!(std::fs::read(back.join("f")).unwrap(), b"data");
}

#[test]
fn export_makes_only_its_target_and_no_tid_of_the_future() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    import(&tree(dir.path(), [("f", b"data")]), &m);

    let deep = dir.path().join("no/such/parent/out");
    let out = run(&["export", m.to_str().unwrap(), deep.to_str().unwrap()]);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (
            Some(1),
            format!(
                "hammer: {}: its parent directory does not exist (export makes only the target directory)\n",
                deep.display()
            )
        )
    );
    assert!(!dir.path().join("no").exists(), "no parents were made");

    let newest = sync_end(&root, 1);
    let future = newest + 0x1000;
    let out = run(&[
        "export",
        &format!("{}@@0x{future:016x}", m.display()),
        dir.path().join("f").to_str().unwrap(),
    ]);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (
            Some(1),
            format!(
                "hammer: TID 0x{future:016x} is beyond the master's newest 0x{newest:016x}: nothing is written as of it yet\n"
            )
        )
    );
    ok(&[
        "export",
        &format!("{}@@0x{newest:016x}", m.display()),
        dir.path().join("g").to_str().unwrap(),
    ]);
}

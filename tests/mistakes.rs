//! Mistakes a newcomer makes, caught with the fix named (issue 12.2).

mod common;

use common::*;

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

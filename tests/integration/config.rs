//! `config` and `viconfig` through the binary, on a store (and through the
//! kernel double under `kernel-double`): a PFS's configuration text shown,
//! replaced from a file and edited with `$EDITOR`, with the original's
//! default text, messages and exit statuses (spec: cli.md §14).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::common::*;

/// The original's text for a PFS without a configuration.
const DEFAULT: &str = "\
# No configuration present, here are some defaults
# you can uncomment.  Also remove these instructions
#
#snapshots 1d 60d
#prune     1d 5m
#rebalance 1d 5m
#dedup     1d 5m
#reblock   1d 5m
#recopy    30d 10m
";

/// `hammer <args>` with `EDITOR` set to `editor` (and `VISUAL` unset).
fn with_editor(editor: &str, args: &[&str]) -> Output {
    hammer()
        .env("EDITOR", editor)
        .env_remove("VISUAL")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// An editor script in `dir`: it records its arguments and the text it
/// was given in `<dir>/seen`, then runs `action` on the file (`$f`).
fn editor(dir: &Path, name: &str, action: &str) -> PathBuf {
    let script = dir.join(name);
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor f; do :; done\n{{ echo \"args: $*\"; cat \"$f\"; }} > '{seen}'\n{action}\n",
            seen = dir.join("seen").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn config_shows_and_replaces_a_pfs_s_own_text() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let ms = m.to_str().unwrap();

    let out = run(&["config", ms]);
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            "hammer: hammer config: no configuration found\n".into(),
            2
        )
    );

    let file = dir.path().join("cfg");
    let cfg = "snapshots 1d 60d\nprune     1d 5m\n";
    fs::write(&file, cfg).unwrap();
    let out = ok(&["config", ms, file.to_str().unwrap(), "ignored"]);
    assert_eq!((text_of(&out.stdout), text_of(&out.stderr)), ("", ""));
    assert_eq!(text(&ok(&["config", ms]).stdout), cfg);
    // PFS#0's is another: none, also as the current directory's.
    let out = hammer()
        .arg("config")
        .current_dir(&root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // At most 1022 bytes, as the original's one read of 1023 allows.
    fs::write(&file, vec![b'#'; 1023]).unwrap();
    let out = run(&["config", ms, file.to_str().unwrap()]);
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            "hammer: hammer config: config file too big, limit 1023 bytes\n".into(),
            2
        )
    );
    assert_eq!(text(&ok(&["config", ms]).stdout), cfg);
    fs::write(&file, vec![b'#'; 1022]).unwrap();
    ok(&["config", ms, file.to_str().unwrap()]);
    assert_eq!(ok(&["config", ms]).stdout, vec![b'#'; 1022]);

    let missing = dir.path().join("nofile");
    let out = run(&["config", ms, missing.to_str().unwrap()]);
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            format!(
                "hammer: hammer config: {}: No such file or directory\n",
                missing.display()
            ),
            2
        )
    );
    // A directory on no HAMMER filesystem and in no store.
    let out = run(&["config", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("hammer: hammer config: not a HAMMER filesystem!\nhint: "),
        "{}",
        text(&out.stderr)
    );
}

fn text_of(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

#[test]
fn viconfig_edits_a_copy_and_installs_what_the_editor_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let ms = m.to_str().unwrap();
    let seen = dir.path().join("seen");

    // An editor that leaves the file alone: nothing installed.
    let keep = editor(dir.path(), "keep", "exit 3");
    let out = with_editor(keep.to_str().unwrap(), &["viconfig", ms]);
    assert_eq!(
        outcome(&out),
        (
            "hammer viconfig: no changes were made\n".into(),
            String::new(),
            0
        )
    );
    // It was given the original's defaults, in a temporary file removed
    // after.
    let given = fs::read_to_string(&seen).unwrap();
    let (args, shown) = given.split_once('\n').unwrap();
    assert_eq!(shown, DEFAULT);
    let tmp = args.strip_prefix("args: ").unwrap();
    assert!(fs::metadata(tmp).is_err(), "{tmp} left behind");
    assert_eq!(run(&["config", ms]).status.code(), Some(2));

    // An editor that writes, with words of its own in $EDITOR (no shell).
    let write = editor(dir.path(), "write", "printf 'snapshots 1d 30d\\n' > \"$f\"");
    let cmd = format!("{} --flag", write.display());
    let out = with_editor(&cmd, &["viconfig", ms]);
    assert_eq!(
        (text(&out.stdout), text(&out.stderr), out.status.code()),
        (String::new(), String::new(), Some(0))
    );
    assert!(
        fs::read_to_string(&seen)
            .unwrap()
            .starts_with("args: --flag /"),
        "{}",
        fs::read_to_string(&seen).unwrap()
    );
    assert_eq!(text(&ok(&["config", ms]).stdout), "snapshots 1d 30d\n");
    // Next time the editor gets the text there is.
    with_editor(keep.to_str().unwrap(), &["viconfig", ms]);
    let given = fs::read_to_string(&seen).unwrap();
    assert_eq!(given.split_once('\n').unwrap().1, "snapshots 1d 30d\n");

    // Too much text is refused and the old text stays.
    let big = editor(
        dir.path(),
        "big",
        "head -c 2000 /dev/zero | tr '\\0' '#' > \"$f\"",
    );
    let out = with_editor(big.to_str().unwrap(), &["viconfig", ms]);
    assert_eq!(
        (text(&out.stderr), out.status.code()),
        (
            "hammer: hammer config: config file too big, limit 1023 bytes\n".into(),
            Some(2)
        )
    );
    assert_eq!(text(&ok(&["config", ms]).stdout), "snapshots 1d 30d\n");

    let out = run(&["viconfig", ms, ms]);
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            "hammer: hammer viconfig: 0 or 1 argument (<fs>) only\n".into(),
            1
        )
    );
    let out = with_editor("/nonexistent/editor", &["viconfig", ms]);
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            "hammer: hammer viconfig: cannot run /nonexistent/editor: No such file or directory\n"
                .into(),
            2
        )
    );
}

//! The command line against cli.md §1-2: getopt errors, usage texts and
//! exit codes, command dispatch.

use assert_cmd::Command;
use hammer_mirror::cli::table::entries;
use hammer_mirror::cli::{MIRROR_USAGE, USAGE};

fn hammer(args: &[&str]) -> (String, String, i32) {
    let out = Command::cargo_bin("hammer")
        .unwrap()
        .args(args)
        .write_stdin("")
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().unwrap_or(-1),
    )
}

/// The first three code blocks of cli.md §2 are the general, mirror and
/// pfs usage texts.
#[test]
fn usage_texts_match_spec() {
    let spec = std::fs::read_to_string(crate::common::fixture("spec/cli-usage.md")).unwrap();
    let blocks: Vec<&str> = spec
        .split("```\n")
        .skip(1)
        .step_by(2)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks[0], USAGE);
    assert_eq!(blocks[1], MIRROR_USAGE);
    assert_eq!(blocks[2], hammer_mirror::cli::PFS_USAGE);
    assert!(USAGE.lines().nth(1).unwrap().ends_with("[:readahead]] "));
}

/// Asked for, the help tells what this tool implements, on stdout, exit 0: `-h`
/// (which stops getopt, as the original's), `--help`, `hammer help`. The
/// original's usage texts are what a usage error prints (the tests below).
#[test]
fn help_is_the_overview_on_stdout_exit_0() {
    let (overview, err, code) = hammer(&["-h"]);
    assert_eq!((err.as_str(), code), ("", 0));
    for args in [
        &["-vh", "-Z"][..],
        &["--help"],
        &["-v", "--help", "x"],
        &["help"],
    ] {
        assert_eq!(
            hammer(args),
            (overview.clone(), String::new(), 0),
            "{args:?}"
        );
    }
    assert_ne!(overview, USAGE);
    // Every command of the table, by its synopsis.
    for e in entries() {
        let line = format!("\n  hammer {}\n", e.synopsis);
        assert!(overview.contains(&line), "{line}");
    }
    // The original's other commands, in one line at the end.
    let last = overview.lines().last().unwrap();
    assert!(last.starts_with("Not implemented"), "{last}");
    assert!(last.contains(" iostats, ") && last.contains(" version <filesystem>, "));
    assert!(!overview.lines().any(|l| l.starts_with("  hammer iostats")));
}

#[test]
fn help_for_one_command() {
    for e in entries() {
        let (text, err, code) = hammer(&["help", e.word]);
        assert_eq!((err.as_str(), code), ("", 0));
        let usage = format!("usage: hammer {}\n\n", e.synopsis);
        assert_eq!(text, format!("{usage}{}", e.help));
        assert_eq!(hammer(&[e.word, "--help"]), (text, String::new(), 0));
    }
    let (text, _, _) = hammer(&["help", "mirror-read"]);
    assert!(
        text.starts_with("usage: hammer mirror-read <filesystem> [begin-tid]\n\n"),
        "{text}"
    );
    assert_eq!(
        hammer(&["help", "iostats"]),
        (
            String::new(),
            "hammer: help: iostats: not implemented (a command of DragonFly's hammer(8) this tool does not provide)\n".into(),
            1
        )
    );
    assert_eq!(
        hammer(&["help", "frobnicate"]),
        (
            String::new(),
            "hammer: help: no such command: frobnicate\n".into(),
            1
        )
    );
    assert_eq!(
        hammer(&["help", "a", "b"]),
        (String::new(), "hammer help [command]\n".into(), 1)
    );
}

/// `hammer version` and `--version` are this tool's; the original's
/// `version <filesystem>` is not implemented.
#[test]
fn version() {
    let want = format!("hammer-mirror {}\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(hammer(&["version"]), (want.clone(), String::new(), 0));
    assert_eq!(hammer(&["--version"]), (want, String::new(), 0));
    assert_eq!(
        hammer(&["version", "/"]),
        (
            String::new(),
            "hammer: version: not implemented\n".into(),
            1
        )
    );
}

#[test]
fn illegal_option() {
    let want = format!("hammer: illegal option -- Z\n{USAGE}");
    assert_eq!(hammer(&["-Z", "mirror-dump"]), (String::new(), want, 1));
}

#[test]
fn missing_option_argument() {
    let want = format!("hammer: option requires an argument -- b\n{USAGE}");
    assert_eq!(hammer(&["-b"]), (String::new(), want, 1));
}

/// A bad option value is named in one line, exit 1 (the original printed the
/// whole usage for `-b`, `-S` and `-C`, and took whatever strtol made of `-i`
/// and `-t`).
#[test]
fn bad_option_values_are_named() {
    for (args, line) in [
        (
            &["-b", "10x", "mirror-dump"][..],
            "option -b: invalid value '10x': expected bytes per second, a number with an optional k, m or g",
        ),
        (
            &["-i", "abc", "mirror-dump"],
            "option -i: invalid value 'abc': expected whole seconds",
        ),
        (
            &["-t", "-5", "mirror-dump"],
            "option -t: invalid value '-5': expected whole seconds, 0 for no limit",
        ),
        (
            &["-vS1q", "mirror-dump"],
            "option -S: invalid value '1q': expected bytes, a number with an optional k, m or g",
        ),
        (
            &["-C", "5x", "mirror-dump"],
            "option -C: invalid value '5x': expected cachesize[:readahead], a number with an optional k or m",
        ),
        (
            &["-i", "4294967297", "mirror-dump"],
            "option -i: invalid value '4294967297': expected whole seconds",
        ),
    ] {
        let want = format!("hammer: {line}\n");
        assert_eq!(hammer(args), (String::new(), want, 1), "{args:?}");
    }
}

/// Values the original reads alike are still taken: `10kb` is 10 KiB, a
/// negative `-i` no delay (D19), `-t 0` no limit. mirror-dump then runs on
/// its empty input (D23: status 1).
#[test]
fn good_option_values_are_taken() {
    let (_, err, code) = hammer(&["-b10kb", "-i", "-1", "-t", "0", "-S", "0x10", "mirror-dump"]);
    assert_eq!(
        (err.as_str(), code),
        ("Mirror-dump: Did not get termination sync record\n", 1)
    );
}

#[test]
fn no_command_is_usage() {
    assert_eq!(hammer(&[]), (String::new(), USAGE.to_string(), 1));
    assert_eq!(hammer(&["-v"]), (String::new(), USAGE.to_string(), 1));
}

/// An unknown word is named (with the closest command, when one is
/// close) on a line before the original's usage; the status stays 1.
#[test]
fn unknown_words_are_named_before_the_usage() {
    for (word, line) in [
        ("frobnicate", "hammer: unknown command 'frobnicate'\n"),
        (
            "mirror-foo",
            "hammer: unknown command 'mirror-foo'; did you mean 'mirror-copy'?\n",
        ),
        (
            "mirror-raed",
            "hammer: unknown command 'mirror-raed'; did you mean 'mirror-read'?\n",
        ),
        ("mirror", "hammer: unknown command 'mirror'\n"),
    ] {
        assert_eq!(
            hammer(&[word]),
            (String::new(), format!("{line}{USAGE}"), 1),
            "{word}"
        );
    }
}

/// getopt stops at the command word (no permutation, as the original), so
/// an option after it is an argument; where that makes the command line
/// wrong, a line says options go first, before the command's usage.
#[test]
fn options_after_the_command_are_told_to_go_first() {
    let told = |word: &str| {
        format!(
            "hammer: option '-v' after the command word '{word}': options go first, \
             as in 'hammer -v {word} ...'\n"
        )
    };
    assert_eq!(
        hammer(&["mirror-dump", "-v"]),
        (
            String::new(),
            format!("{}{MIRROR_USAGE}", told("mirror-dump")),
            1
        )
    );
    assert_eq!(
        hammer(&["pfs-status", "-v", "/nonexistent"]),
        (
            String::new(),
            format!("{}{}", told("pfs-status"), hammer_mirror::cli::PFS_USAGE),
            1
        )
    );
    assert_eq!(
        hammer(&["mirror-dump", "header", "x"]),
        (String::new(), MIRROR_USAGE.to_string(), 1)
    );
    // A file named `-v` is a path like any other.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("-v")).unwrap();
    let out = Command::cargo_bin("hammer")
        .unwrap()
        .current_dir(dir.path())
        .args(["pfs-status", "-v"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("options go first"), "{err}");
    assert!(err.contains("-v"), "{err}");
}

/// mirror-dump runs on its empty input: the original's message and, D23
/// (an empty stream is incomplete), status 1.
#[test]
fn double_dash_ends_options() {
    let (_, err, code) = hammer(&["-v", "--", "mirror-dump"]);
    assert_eq!(
        (err.as_str(), code),
        ("Mirror-dump: Did not get termination sync record\n", 1)
    );
}

#[test]
fn commands_not_provided_fail_clearly() {
    let (out, err, code) = hammer(&["iostats"]);
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        ("", "hammer: iostats: not implemented\n", 1)
    );
}

//! The command line against cli.md §1-2: getopt errors, usage texts and
//! exit codes, command dispatch.

mod common;

use assert_cmd::Command;
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
    let spec = std::fs::read_to_string(common::fixture("spec/cli-usage.md")).unwrap();
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

#[test]
fn help_is_usage_on_stderr_exit_0() {
    assert_eq!(hammer(&["-h"]), (String::new(), USAGE.to_string(), 0));
    assert_eq!(
        hammer(&["-vh", "-Z"]),
        (String::new(), USAGE.to_string(), 0)
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

#[test]
fn bad_bandwidth_is_usage() {
    assert_eq!(
        hammer(&["-b", "10x", "mirror-dump"]),
        (String::new(), USAGE.to_string(), 1)
    );
}

#[test]
fn no_command_is_usage() {
    assert_eq!(hammer(&[]), (String::new(), USAGE.to_string(), 1));
    assert_eq!(hammer(&["-v"]), (String::new(), USAGE.to_string(), 1));
}

#[test]
fn unknown_and_mirror_prefixed_words_are_usage() {
    assert_eq!(
        hammer(&["frobnicate"]),
        (String::new(), USAGE.to_string(), 1)
    );
    assert_eq!(
        hammer(&["mirror-foo"]),
        (String::new(), USAGE.to_string(), 1)
    );
    assert_eq!(hammer(&["mirror"]), (String::new(), USAGE.to_string(), 1));
}

#[test]
fn options_after_the_command_are_arguments() {
    // No permutation: `-v` after the command is an argument of mirror-dump.
    assert_eq!(
        hammer(&["mirror-dump", "-v"]),
        (String::new(), MIRROR_USAGE.to_string(), 1)
    );
    assert_eq!(
        hammer(&["mirror-dump", "header", "x"]),
        (String::new(), MIRROR_USAGE.to_string(), 1)
    );
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
    let (out, err, code) = hammer(&["cleanup"]);
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        ("", "hammer: cleanup: not implemented\n", 1)
    );
}

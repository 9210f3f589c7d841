//! The manual and the README tell the truth about which commands exist
//! (first-hour issue, item 1): every command they name runs, none answers
//! `not implemented`, and each command this tool implements is documented
//! in both.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;

use common::*;

fn read(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

/// The overview `hammer help` prints.
fn overview() -> String {
    let (out, err, code) = run_in_empty_dir(&["help"]);
    assert_eq!((err.as_str(), code), ("", Some(0)), "hammer help");
    out
}

/// The commands this tool implements, as its help lists them.
fn implemented() -> BTreeSet<String> {
    let listed: BTreeSet<String> = overview()
        .lines()
        .filter_map(|l| l.strip_prefix("  hammer "))
        .map(|l| l.strip_prefix("[-F] ").unwrap_or(l))
        .map(|l| l.strip_prefix("[-a] ").unwrap_or(l))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    assert!(listed.len() >= 20, "{listed:?}");
    listed
}

/// The original's commands the help names as not implemented, in its last
/// line.
fn not_implemented() -> Vec<String> {
    let overview = overview();
    let last = overview.lines().last().unwrap();
    let (_, list) = last.split_once("): ").unwrap();
    list.trim_end_matches('.')
        .split(", ")
        .map(str::to_string)
        .collect()
}

/// The man page's command entries: `.It Cm <name>`, also after `Oo Fl F Oc`
/// or `Oo Fl a Oc`.
fn man_commands() -> BTreeSet<String> {
    read("man/hammer.8")
        .lines()
        .filter_map(|l| l.strip_prefix(".It "))
        .map(|l| l.strip_prefix("Oo Fl F Oc ").unwrap_or(l))
        .map(|l| l.strip_prefix("Oo Fl a Oc ").unwrap_or(l))
        .filter_map(|l| l.strip_prefix("Cm "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The README's code: fenced blocks and inline spans.
fn readme_code() -> Vec<String> {
    let text = read("README.md");
    let mut code = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            code.push(line.to_string());
        } else {
            code.extend(line.split('`').skip(1).step_by(2).map(str::to_string));
        }
    }
    code
}

/// The command word of every `hammer [options] <command>` in `code`.
fn hammer_commands(code: &[String]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for piece in code {
        let words: Vec<&str> = piece.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if !(*w == "hammer" || w.ends_with("/hammer")) {
                continue;
            }
            // Options, their bracketed forms and their values come first.
            let mut rest = words[i + 1..].iter().skip_while(|w| {
                w.starts_with('-')
                    || w.starts_with('[')
                    || w.ends_with(']')
                    || w.chars().all(|c| c.is_ascii_digit())
            });
            if let Some(word) = rest.next() {
                let name: String = word
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
                    .collect();
                if !name.is_empty() && name.starts_with(|c: char| c.is_ascii_lowercase()) {
                    found.insert(name);
                }
            }
        }
    }
    found
}

/// Runs `hammer <args>` in an empty directory, stdin empty; stdout,
/// stderr and status.
fn run_in_empty_dir(args: &[&str]) -> (String, String, Option<i32>) {
    let dir = tempfile::tempdir().unwrap();
    let out = hammer()
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (text(&out.stdout), text(&out.stderr), out.status.code())
}

fn assert_implemented(name: &str, named_by: &str) {
    let (out, err, code) = run_in_empty_dir(&[name]);
    assert!(
        !err.contains("not implemented") && !out.contains("not implemented"),
        "{named_by} names `{name}`, which answers: {err}"
    );
    let (help, err, code_help) = run_in_empty_dir(&["help", name]);
    assert_eq!(
        (err.as_str(), code_help),
        ("", Some(0)),
        "{named_by} names `{name}`, which has no help ({code:?})"
    );
    assert!(help.starts_with("usage: hammer "), "{help}");
}

#[test]
fn every_command_the_manual_names_is_implemented() {
    let named = man_commands();
    assert_eq!(named, implemented(), "the man page's command list");
    for name in &named {
        assert_implemented(name, "hammer.8");
    }
}

#[test]
fn every_command_the_readme_names_is_implemented() {
    let code = readme_code();
    let named = hammer_commands(&code);
    assert!(named.len() >= 10, "{named:?}");
    for name in &named {
        assert_implemented(name, "README.md");
    }
    // And the README tells of each of them, in code.
    for name in implemented() {
        assert!(
            code.iter().any(|c| c
                .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '-'))
                .any(|w| w == name)),
            "README.md does not name `{name}`"
        );
    }
}

/// What the help lists as not implemented answers so.
#[test]
fn the_originals_other_commands_answer_not_implemented() {
    let others = not_implemented();
    assert!(others.len() >= 30, "{others:?}");
    for listed in &others {
        // `version <filesystem>`: only with an argument.
        let args: Vec<&str> = listed
            .split(' ')
            .map(|w| if w.starts_with('<') { "/" } else { w })
            .collect();
        let name = args[0];
        let (_, err, code) = run_in_empty_dir(&args);
        assert_eq!(
            (err, code),
            (format!("hammer: {name}: not implemented\n"), Some(1)),
            "{name}"
        );
    }
}

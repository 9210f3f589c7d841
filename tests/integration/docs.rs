//! The documentation tells the truth: every command the command table
//! holds (which the manual documents) and the README names runs, none
//! answers `not implemented`, and each of them is in the README; every
//! document the code cites (a Markdown file, a section of it, a defect of
//! the original) is in the repository.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::*;

fn read(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

/// The overview `hammer help` prints.
fn overview() -> String {
    let (out, err, code) = run_in_empty_dir(&["help"]);
    assert_eq!((err.as_str(), code), ("", Some(0)), "hammer help");
    out
}

/// The commands this tool implements: the command table's words (the
/// help lists each, tests/cli.rs checks it).
fn implemented() -> BTreeSet<String> {
    let words: BTreeSet<String> = hammer_mirror::cli::table::entries()
        .map(|e| e.word.to_string())
        .collect();
    assert!(words.len() >= 20, "{words:?}");
    words
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
    // abort-cleanup looks for cleanups' pidfiles there: none.
    let out = hammer()
        .args(args)
        .current_dir(dir.path())
        .env("HAMMER_RUNDIR", dir.path())
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

/// The manual documents exactly the table's words (a unit test of
/// src/cli/table.rs checks it); each of them runs and has its help.
#[test]
fn every_command_of_the_table_is_implemented() {
    for name in &implemented() {
        assert_implemented(name, "the command table");
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
    assert!(others.len() >= 20, "{others:?}");
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

/// The repository's files by their path from its root, but `.git` and
/// build output.
fn repo_files() -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let name = entry.file_name();
            if entry.file_type().unwrap().is_dir() {
                if name != ".git" && name != "target" {
                    walk(root, &path, out);
                }
            } else {
                let rel = path.strip_prefix(root).unwrap();
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// The section numbers of a Markdown text: the first word of each heading
/// that starts with a digit (`## 4.` gives 4, `### 4.3 ...` gives 4.3).
fn section_numbers(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let Some(heading) = line.strip_prefix('#').filter(|_| !fenced) else {
            continue;
        };
        let first = heading.trim_start_matches('#').split_whitespace().next();
        if let Some(n) = first.filter(|w| w.starts_with(|c: char| c.is_ascii_digit())) {
            found.insert(n.trim_end_matches('.').to_string());
        }
    }
    found
}

/// One citation: a document, and a section of it or a defect.
#[derive(Debug)]
struct Cite {
    line: usize,
    /// The document as written (a path suffix); `None` for a section that
    /// follows no document's name.
    doc: Option<String>,
    section: Option<String>,
}

/// The section number after the section sign at `at`: digits, a letter
/// (4a), `.digits` parts, and the end of a range (3-5, 2.1-2.4) as a
/// second number.
fn section_after(chars: &[char], mut at: usize) -> (Vec<String>, usize) {
    let number = |at: &mut usize| {
        let mut n = String::new();
        while *at < chars.len() {
            let c = chars[*at];
            let part_starts = c == '.' && chars.get(*at + 1).is_some_and(char::is_ascii_digit);
            if c.is_ascii_digit() || part_starts || (c.is_ascii_lowercase() && !n.is_empty()) {
                n.push(c);
                *at += 1;
                if c.is_ascii_lowercase() {
                    break;
                }
            } else {
                break;
            }
        }
        n
    };
    while chars.get(at) == Some(&' ') {
        at += 1;
    }
    let first = number(&mut at);
    if first.is_empty() {
        return (Vec::new(), at);
    }
    let mut found = vec![first];
    if matches!(chars.get(at), Some('-' | '\u{2013}'))
        && chars.get(at + 1).is_some_and(char::is_ascii_digit)
    {
        at += 1;
        found.push(number(&mut at));
    }
    (found, at)
}

/// The citations of `text`, whose lines start at `lines[i].0` (a char
/// offset) and are line `lines[i].1` of their file. A section belongs to
/// the document named last before it in the same sentence or parenthesis.
fn citations(text: &str, lines: &[(usize, usize)]) -> Vec<Cite> {
    let chars: Vec<char> = text.chars().collect();
    let line_of = |at: usize| {
        let i = lines.partition_point(|&(start, _)| start <= at);
        lines[i.saturating_sub(1)].1
    };
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/');
    let mut cites = Vec::new();
    let mut doc: Option<String> = None;
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        let ends_name = chars[at..].starts_with(&['.', 'm', 'd'])
            && !chars.get(at + 3).is_some_and(|c| c.is_ascii_alphanumeric());
        if ends_name {
            let start = (0..at).rev().take_while(|&i| name_char(chars[i])).last();
            let name: String = chars[start.unwrap_or(at)..at + 3].iter().collect();
            let name = name.trim_start_matches(['.', '/']).to_string();
            if name.len() > 3 {
                cites.push(Cite {
                    line: line_of(at),
                    doc: Some(name.clone()),
                    section: None,
                });
                doc = Some(name);
            }
            at += 3;
        } else if c == '\u{a7}' {
            let (sections, next) = section_after(&chars, at + 1);
            for section in sections {
                cites.push(Cite {
                    line: line_of(at),
                    doc: doc.clone(),
                    section: Some(section),
                });
            }
            at = next.max(at + 1);
        } else if c == 'D'
            && (at == 0 || !chars[at - 1].is_ascii_alphanumeric())
            && chars.get(at + 1).is_some_and(char::is_ascii_digit)
        {
            let digits: String = chars[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            at += 1 + digits.len();
            if !chars.get(at).is_some_and(|c| c.is_ascii_alphanumeric()) {
                cites.push(Cite {
                    line: line_of(at),
                    doc: Some("protocol.md".to_string()),
                    section: Some(format!("D{digits}")),
                });
            }
        } else {
            let sentence_ends = c == '.' && chars.get(at + 1).is_none_or(|c| c.is_whitespace());
            if matches!(c, ')' | ';' | ':') || sentence_ends {
                doc = None;
            }
            at += 1;
        }
    }
    cites
}

/// The pieces of a source file read for citations, each with its lines:
/// every run of comment lines (`//` in Rust, `#` in shell) joined without
/// the comment markers, and every other line alone.
fn pieces(source: &str, comment: &str) -> Vec<(String, Vec<(usize, usize)>)> {
    let mut out: Vec<(String, Vec<(usize, usize)>)> = Vec::new();
    let mut in_comment = false;
    for (n, line) in source.lines().enumerate() {
        let trimmed = line.trim_start();
        let is_comment = trimmed.starts_with(comment);
        let body = if is_comment {
            trimmed
                .trim_start_matches(comment)
                .trim_start_matches(['/', '!'])
        } else {
            line
        };
        if !(is_comment && in_comment) {
            out.push((String::new(), Vec::new()));
        }
        let (text, lines) = out.last_mut().unwrap();
        lines.push((text.chars().count(), n + 1));
        text.push_str(body);
        text.push('\n');
        in_comment = is_comment;
    }
    out
}

/// Every citation in the code names a file of the repository, a section
/// heading of that file, or a defect of docs/protocol.md; a section number
/// follows the name of the document it is in. The docs' own citations
/// resolve too (a bare section there is one of the same document).
#[test]
fn every_citation_in_the_code_resolves() {
    let files = repo_files();
    let candidates = |doc: &str| -> Vec<PathBuf> {
        files
            .iter()
            .filter(|f| *f == doc || f.ends_with(&format!("/{doc}")))
            .map(|f| Path::new(env!("CARGO_MANIFEST_DIR")).join(f))
            .collect()
    };
    let protocol = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/protocol.md");
    let defects: BTreeSet<String> = std::fs::read_to_string(protocol)
        .unwrap_or_default()
        .split("**D")
        .skip(1)
        .map(|s| s.chars().take_while(char::is_ascii_digit).collect())
        .map(|n: String| format!("D{n}"))
        .collect();
    let mut scanned = 0;
    let mut bad = BTreeSet::new();
    for file in &files {
        let in_code = ["src/", "tests/", "benches/", "fuzz/"]
            .iter()
            .any(|d| file.starts_with(d));
        let comment = match file.rsplit_once('.').map(|(_, e)| e) {
            Some("rs") if in_code => "//",
            Some("sh") if in_code => "#",
            Some("md") if file.starts_with("docs/") => "",
            _ => continue,
        };
        scanned += 1;
        let source = read(file);
        let pieces = if comment.is_empty() {
            let lines: Vec<(usize, usize)> = source
                .lines()
                .scan(0, |at, l| {
                    let start = *at;
                    *at += l.chars().count() + 1;
                    Some(start)
                })
                .enumerate()
                .map(|(n, start)| (start, n + 1))
                .collect();
            vec![(source.clone(), lines)]
        } else {
            pieces(&source, comment)
        };
        for (text, lines) in &pieces {
            for cite in citations(text, lines) {
                let at = format!("{file}:{}", cite.line);
                // In the docs, a bare section is one of the same document.
                let doc = match (&cite.doc, comment.is_empty()) {
                    (Some(d), _) => d.clone(),
                    (None, true) => file.clone(),
                    (None, false) => {
                        let s = cite.section.unwrap_or_default();
                        bad.insert(format!("{at}: §{s} follows no document's name"));
                        continue;
                    }
                };
                let found = candidates(&doc);
                if found.is_empty() {
                    bad.insert(format!("{at}: {doc} is not in the repository"));
                    continue;
                }
                let Some(section) = cite.section else {
                    continue;
                };
                if section.starts_with('D') {
                    if !defects.contains(&section) {
                        bad.insert(format!("{at}: defect {section} is not in docs/protocol.md"));
                    }
                    continue;
                }
                let has = |p: &PathBuf| {
                    let text = std::fs::read_to_string(p).unwrap_or_default();
                    section_numbers(&text).contains(&section)
                };
                if !found.iter().any(has) {
                    bad.insert(format!("{at}: {doc} has no section {section}"));
                }
            }
        }
    }
    assert!(scanned > 100, "{scanned} files scanned");
    assert!(
        bad.is_empty(),
        "{} citations do not resolve:\n{}",
        bad.len(),
        bad.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn citations_are_found_with_their_sections() {
    let text = "See (spec: ioctl-abi.md \u{a7}1-6, kernel-semantics.md \u{a7}3.1, \u{a7}4a). Then \u{a7}2.5 alone, D19 and xD3.";
    let got: Vec<(Option<String>, Option<String>)> = citations(text, &[(0, 1)])
        .into_iter()
        .map(|c| (c.doc, c.section))
        .collect();
    let s = |d: Option<&str>, n: Option<&str>| (d.map(str::to_string), n.map(str::to_string));
    assert_eq!(
        got,
        [
            s(Some("ioctl-abi.md"), None),
            s(Some("ioctl-abi.md"), Some("1")),
            s(Some("ioctl-abi.md"), Some("6")),
            s(Some("kernel-semantics.md"), None),
            s(Some("kernel-semantics.md"), Some("3.1")),
            s(Some("kernel-semantics.md"), Some("4a")),
            s(None, Some("2.5")),
            s(Some("protocol.md"), Some("D19")),
        ]
    );
    let numbers = section_numbers("# T\n## 4. A\n### 4.3 B\n## 4a. C\n```\n## 9. no\n```\n");
    assert_eq!(
        numbers,
        BTreeSet::from(["4".into(), "4.3".into(), "4a".into()])
    );
}

/// The code blocks of a Markdown text, in order.
fn code_blocks(text: &str) -> Vec<String> {
    text.split("```")
        .skip(1)
        .step_by(2)
        .map(|b| b.split_once('\n').map_or("", |(_, body)| body).to_string())
        .collect()
}

/// docs/cli.md carries the original's usage texts and the worked example's
/// output exactly as the fixtures hold them.
#[test]
fn the_cli_document_quotes_the_fixtures() {
    let cli = read("docs/cli.md");
    let usage = &cli[cli.find("\n## 2.").unwrap()..cli.find("\n## 3.").unwrap()];
    let fixture = read("tests/fixtures/spec/cli-usage.md");
    assert_eq!(code_blocks(usage)[..3], code_blocks(&fixture)[..3]);
    let example = &cli[cli.find("\n### 4.3").unwrap()..cli.find("\n## 5.").unwrap()];
    let blocks = code_blocks(example);
    assert_eq!(blocks[0], read("tests/fixtures/example.plain.stdout"));
    assert_eq!(blocks[1], read("tests/fixtures/example.header.stdout"));
}

/// docs/chain-format.md tells a user to check an object with `xxh128sum`:
/// its example checksum is what the chain code computes (XXH3-128 as 32
/// hex digits, most significant first).
#[test]
fn the_chain_checksum_example_is_what_the_code_computes() {
    let doc = read("docs/chain-format.md");
    let (_, after) = doc
        .split_once("`xxh128sum tests/fixtures/example.stream`")
        .unwrap();
    let documented: String = after
        .split('`')
        .nth(1)
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = std::fs::read(crate::common::fixture("example.stream")).unwrap();
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&bytes);
    assert_eq!(documented, format!("{:032x}", h.digest128()));
}

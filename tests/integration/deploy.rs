//! The deployment files work: the completion scripts `hammer completion`
//! prints parse in their shells and complete the table's command words,
//! the systemd units of contrib/systemd pass `systemd-analyze verify` (a
//! typo'd directive does not), and their command lines, as systemd
//! expands them from the example configuration files, run: mirror-stream
//! copies and stops on SIGTERM with the status the unit counts as success,
//! the nightly job imports and cleans up. The tests that need zsh, fish or
//! systemd-analyze are ignored by default and fail when run without it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hammer_mirror::cli::table;

use crate::common::*;

const NEEDS: &str = "needs zsh, fish and systemd-analyze (apt-get install zsh fish systemd): cargo test -- --include-ignored, as .ci/run does";

const SYSTEMD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/systemd");

/// Where `tool` is in PATH; a test that needs it fails without it (never
/// a silent pass), naming the Debian package that has it.
fn needed(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{tool} is not installed: apt-get install {package} ({NEEDS})"))
}

/// `hammer completion <shell>`, written to `dir`.
fn completion(dir: &Path, shell: &str) -> PathBuf {
    let out = ok(&["completion", shell]);
    let file = dir.join(format!("hammer.{shell}"));
    fs::write(&file, &out.stdout).unwrap();
    file
}

#[track_caller]
fn succeeded(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// What bash's completion function offers for `words`, the last one being
/// completed, as bash calls it on a Tab.
fn bash_completes(script: &Path, dir: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let code = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _hammer; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &code])
        .current_dir(dir)
        .output()
        .unwrap();
    let mut got: Vec<String> = succeeded(&out, "bash")
        .lines()
        .map(str::to_string)
        .collect();
    got.retain(|l| !l.is_empty());
    got.sort();
    got
}

#[test]
fn the_bash_completion_completes_command_words_options_and_paths() {
    let dir = tempfile::tempdir().unwrap();
    let script = completion(dir.path(), "bash");
    succeeded(
        &Command::new("bash")
            .arg("-n")
            .arg(&script)
            .output()
            .unwrap(),
        "bash -n",
    );
    let files = dir.path().join("files");
    fs::create_dir(&files).unwrap();
    fs::write(files.join("pfs.cycle"), "").unwrap();
    fs::write(files.join("pfs two.cycle"), "").unwrap();
    let c = |words: &[&str]| bash_completes(&script, &files, words);
    assert_eq!(
        c(&["hammer", "mirror-r"]),
        ["mirror-read", "mirror-read-stream"]
    );
    // After options, and after an option's value in the next word.
    assert_eq!(
        c(&["hammer", "-qb", "100", "-v", "snapl"]),
        ["snaplo", "snapls"]
    );
    assert_eq!(c(&["hammer", "--", "synct"]), ["synctid"]);
    assert_eq!(c(&["hammer", "-z"]), ["-z"]);
    // A file where an option takes one, and as a command's argument.
    assert_eq!(c(&["hammer", "-c", "pfs"]), ["pfs two.cycle", "pfs.cycle"]);
    assert_eq!(c(&["hammer", "prune", "pfs."]), ["pfs.cycle"]);
    assert_eq!(c(&["hammer", "-b", "pf"]), Vec::<String>::new());
    // help takes a command word, completion a shell.
    assert_eq!(
        c(&["hammer", "help", "mirror-ver"]),
        ["mirror-verify", "mirror-verify-serve"]
    );
    assert_eq!(c(&["hammer", "completion", "z"]), ["zsh"]);
    // Every command word, and nothing else.
    let words: Vec<String> = table::entries().map(|e| e.word.to_string()).collect();
    let mut sorted = words.clone();
    sorted.sort();
    assert_eq!(c(&["hammer", ""]), sorted);
}

#[test]
#[ignore = "needs zsh, fish and systemd-analyze (apt-get install zsh fish systemd): cargo test -- --include-ignored, as .ci/run does"]
fn the_zsh_completion_completes_command_words() {
    let zsh = needed("zsh", "zsh");
    let dir = tempfile::tempdir().unwrap();
    let script = completion(dir.path(), "zsh");
    succeeded(
        &Command::new(&zsh).arg("-n").arg(&script).output().unwrap(),
        "zsh -n",
    );
    // Sourced after compinit (as `source <(hammer completion zsh)` in a
    // .zshrc), it is the completion of hammer.
    let code = format!(
        "autoload -U compinit; compinit -u -D; source '{}'; print -r -- ${{_comps[hammer]}}",
        script.display()
    );
    let out = Command::new(&zsh)
        .args(["-f", "-c", &code])
        .output()
        .unwrap();
    assert_eq!(succeeded(&out, "zsh"), "_hammer\n", "{}", text(&out.stderr));
    // Typed with Tabs into an interactive zsh on a pseudo-terminal: what
    // the terminal shows.
    let typed = |line: &str| -> String {
        let driver = dir.path().join("driver.zsh");
        fs::write(
            &driver,
            format!(
                r#"zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PROMPT='> '; autoload -U compinit; compinit -u -D; source '{}'; setopt nobeep"
zpty -w -n z $'{line}\t\t'
local all= chunk
for i in {{1..30}}; do
    zpty -r -t z chunk && all+=$chunk
    sleep 0.1
done
zpty -d z
print -r -- "$all"
"#,
                script.display()
            ),
        )
        .unwrap();
        let out = Command::new(&zsh)
            .arg("-f")
            .arg(&driver)
            .env("HOME", dir.path())
            .output()
            .unwrap();
        succeeded(&out, "zsh on a pseudo-terminal")
    };
    let shown = typed("hammer mirror-r");
    for want in [
        "-- mirror-read <filesystem> [begin-tid]",
        "-- mirror-read-stream <filesystem> [begin-tid]",
    ] {
        assert!(shown.contains(want), "{want:?} not in {shown:?}");
    }
    let shown = typed("hammer -qb 10 synct");
    assert!(shown.contains("hammer -qb 10 synctid"), "{shown:?}");
}

#[test]
#[ignore = "needs zsh, fish and systemd-analyze (apt-get install zsh fish systemd): cargo test -- --include-ignored, as .ci/run does"]
fn the_fish_completion_completes_command_words() {
    let fish = needed("fish", "fish");
    let dir = tempfile::tempdir().unwrap();
    let script = completion(dir.path(), "fish");
    succeeded(
        &Command::new(&fish).arg("-n").arg(&script).output().unwrap(),
        "fish -n",
    );
    let completes = |line: &str| -> Vec<String> {
        let code = format!("source '{}'; complete -C '{line}'", script.display());
        let out = Command::new(&fish)
            .args(["--no-config", "-c", &code])
            .env("HOME", dir.path())
            .output()
            .unwrap();
        succeeded(&out, "fish")
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        completes("hammer mirror-r"),
        ["mirror-read", "mirror-read-stream"]
    );
    assert_eq!(completes("hammer -qb 100 synct"), ["synctid"]);
    assert_eq!(completes("hammer completion z"), ["zsh"]);
    assert_eq!(
        completes("hammer help pfs-d"),
        ["pfs-destroy", "pfs-downgrade"]
    );
}

/// The units of contrib/systemd, by name.
fn units() -> BTreeMap<String, String> {
    fs::read_dir(SYSTEMD)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "service" || e == "timer")
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// `systemd-analyze verify` of `units` written to `dir`, with the binary
/// path of their commands made to exist (it checks that it does): what it
/// says, empty when it found nothing.
fn verify(dir: &Path, units: &BTreeMap<String, String>) -> String {
    let analyze = needed("systemd-analyze", "systemd");
    let bin = dir.join("hammer");
    if !bin.exists() {
        fs::copy(env!("CARGO_BIN_EXE_hammer"), &bin).unwrap();
    }
    let mut files = Vec::new();
    for (name, text) in units {
        let file = dir.join(name);
        fs::write(
            &file,
            text.replace("/usr/local/bin/hammer", bin.to_str().unwrap()),
        )
        .unwrap();
        files.push(file);
    }
    // --man=no: the manual page named by Documentation= need not be
    // installed here. It runs without systemd as PID 1 (in a container).
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .args(&files)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    match out.status.success() {
        true => said,
        false => format!("exit {:?}: {said}", out.status.code()),
    }
}

#[test]
#[ignore = "needs zsh, fish and systemd-analyze (apt-get install zsh fish systemd): cargo test -- --include-ignored, as .ci/run does"]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let units = units();
    let names: Vec<&str> = units.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "hammer-mirror-stream@.service",
            "hammer-nightly@.service",
            "hammer-nightly@.timer"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(verify(dir.path(), &units), "");
    // The check sees a typo'd directive (systemd 252 only warns of it,
    // with exit status 0).
    let mut typo = units.clone();
    let stream = typo.get_mut("hammer-mirror-stream@.service").unwrap();
    *stream = stream.replace("Restart=on-failure", "Restat=on-failure");
    let said = verify(dir.path(), &typo);
    assert!(said.contains("Restat"), "{said}");
}

/// `KEY=value` lines of an EnvironmentFile.
fn environment(file: &str) -> BTreeMap<String, String> {
    fs::read_to_string(Path::new(SYSTEMD).join(file))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The ExecStart lines of a unit as systemd runs them for `instance`:
/// `%i` replaced, `$VAR` split into words (none when empty), `${VAR}` one
/// word; the binary the test's, and /var/lib/hammer `state`.
fn exec_starts(
    unit: &str,
    instance: &str,
    env: &BTreeMap<String, String>,
    state: &Path,
) -> Vec<Vec<String>> {
    let text = fs::read_to_string(Path::new(SYSTEMD).join(unit)).unwrap();
    let var = |name: &str| {
        env.get(name)
            .unwrap_or_else(|| panic!("{unit}: ${name} is not in the example configuration"))
            .clone()
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .map(|line| {
            let line = line
                .replace("%i", instance)
                .replace("/var/lib/hammer", state.to_str().unwrap());
            let mut argv = Vec::new();
            for word in line.split_whitespace() {
                if let Some(name) = word.strip_prefix("${").and_then(|w| w.strip_suffix('}')) {
                    argv.push(var(name));
                } else if let Some(name) = word.strip_prefix('$') {
                    argv.extend(var(name).split_whitespace().map(str::to_string));
                } else {
                    argv.push(word.to_string());
                }
            }
            assert_eq!(argv[0], "/usr/local/bin/hammer", "{unit}: {line}");
            argv[0] = env!("CARGO_BIN_EXE_hammer").to_string();
            argv
        })
        .collect()
}

/// The mirror-stream unit's command line, with its example configuration
/// (a local master and a slave to create), copies and ends on SIGTERM
/// (systemctl stop) with the status the unit counts as success.
#[test]
fn the_mirror_stream_unit_runs_and_stops_with_its_success_status() {
    let unit = "hammer-mirror-stream@.service";
    let text = fs::read_to_string(Path::new(SYSTEMD).join(unit)).unwrap();
    for line in ["SuccessExitStatus=143", "Restart=on-failure"] {
        assert!(text.lines().any(|l| l == line), "{unit}: no {line}");
    }
    let dir = tempfile::tempdir().unwrap();
    let src = store_with_master(dir.path(), "src");
    make_history(&src, 5, 1, 200);
    let slave = src.join("slave");
    let mut env = environment("mirror-stream.conf");
    env.insert("SOURCE".into(), src.join("master").display().to_string());
    env.insert("TARGET".into(), slave.display().to_string());
    let argv = exec_starts(unit, "web", &env, dir.path()).remove(0);
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        "mirror-stream to make the slave",
        20,
        || {
            run(&["pfs-status", slave.to_str().unwrap()])
                .status
                .success()
        },
        || "no slave yet".into(),
    );
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let out = wait_output("mirror-stream to stop", 20, child);
    assert_eq!(out.status.code(), Some(143), "{argv:?}: {}", text_of(&out));
}

fn text_of(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// The nightly unit's command lines, with its example configuration
/// pointed at a tree and a master PFS, import the tree and clean the PFS
/// up (a snapshot, prune, reblock).
#[test]
fn the_nightly_unit_imports_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_master(dir.path(), "store");
    let t = tree(dir.path(), [("a", b"one\n".to_vec())]);
    let mut env = environment("nightly.conf");
    env.insert("DIR".into(), t.display().to_string());
    env.insert("PFS".into(), store.join("master").display().to_string());
    let commands = exec_starts("hammer-nightly@.service", "web", &env, dir.path());
    let words: Vec<&str> = commands
        .iter()
        .filter_map(|a| a.iter().find(|w| table::find(w.as_ref()).is_some()))
        .map(String::as_str)
        .collect();
    assert_eq!(words, ["import", "cleanup"], "{commands:?}");
    for argv in &commands {
        // The pidfile of cleanup in the test's own directory, as hammer()'s.
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .env("HAMMER_RUNDIR", dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{argv:?}: {}", text_of(&out));
    }
    let restored = dir.path().join("restored");
    ok(&[
        "export",
        store.join("master").to_str().unwrap(),
        restored.to_str().unwrap(),
    ]);
    assert_eq!(fs::read(restored.join("a")).unwrap(), b"one\n");
    // cleanup wrote the default configuration and ran every step.
    let root = store.canonicalize().unwrap();
    let periods = root.join(".hammer-store.cleanup/pfs00001");
    for step in ["snapshots", "prune", "reblock"] {
        assert!(periods.join(format!(".{step}.period")).is_file(), "{step}");
    }
}

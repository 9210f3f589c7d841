//! `-j`, the JSON-lines events: every line of real runs of each long command
//! parsed as JSON against the schema (version 1): `start` first, `end` last
//! with the process's exit status, `batch` and `sync` between, `error` before
//! the `end` of a failing run, `lost-link` then `retry` when mirror-stream
//! loses its link; `-j -` and `-j fd:N`; ssh-remote refuses a client's -j.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::*;
use serde_json::Value;

/// Every line of `path`, parsed, each checked against the schema.
fn events(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap();
    text.lines().map(|l| check(l, path)).collect()
}

fn tid_field(v: &Value, key: &str) {
    let t = v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}"));
    assert!(t.len() == 18 && t.starts_with("0x"), "{key}: {t}");
    u64::from_str_radix(&t[2..], 16).unwrap();
}

/// One line against schema v1: the common fields, then each event's.
fn check(line: &str, from: &Path) -> Value {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e} ({from:?})"));
    assert_eq!(v["v"], 1, "{line}");
    assert!(v["time"].as_f64().unwrap() > 1.7e9, "{line}");
    assert!(v["command"].is_string(), "{line}");
    if let Some(side) = v.get("side") {
        assert!(side == "source" || side == "target", "{line}");
    }
    match v["event"].as_str().unwrap() {
        "start" => {
            assert!(v["pfs"].is_string(), "{line}");
            assert!(v["pfs_id"].is_u64(), "{line}");
            assert!(v["shared_uuid"].is_string(), "{line}");
            for k in ["begin_tid", "end_tid"] {
                if !v[k].is_null() {
                    tid_field(&v, k);
                }
            }
            assert!(
                v["planned_bytes"].is_null() || v["planned_bytes"].is_u64(),
                "{line}"
            );
        }
        "batch" => {
            tid_field(&v, "begin_tid");
            tid_field(&v, "end_tid");
            assert!(v["records"].is_u64() && v["bytes"].is_u64(), "{line}");
            assert!(v["seconds"].as_f64().unwrap() >= 0.0, "{line}");
        }
        "sync" => tid_field(&v, "tid"),
        "lost-link" => assert!(v["target"].is_u64(), "{line}"),
        "dropped" => assert!(v["count"].as_u64().unwrap() > 0, "{line}"),
        "retry" => {
            assert!(v["target"].is_u64(), "{line}");
            assert!(v["after_seconds"].as_f64().unwrap() >= 0.0, "{line}");
        }
        "error" => {
            assert!(v["class"].is_string() && v["message"].is_string(), "{line}");
            assert!(v["errno"].is_null() || v["errno"].is_i64(), "{line}");
        }
        "end" => {
            assert!(v["status"].is_u64() && v["seconds"].is_f64(), "{line}");
            for k in ["batches", "records", "bytes"] {
                assert!(v["totals"][k].is_u64(), "{line}");
            }
        }
        other => panic!("unknown event {other}: {line}"),
    }
    v
}

fn kinds(ev: &[Value]) -> Vec<&str> {
    ev.iter().map(|v| v["event"].as_str().unwrap()).collect()
}

/// start first, end last with `status`, and nothing after it.
fn assert_framed(ev: &[Value], command: &str, status: i32) {
    let k = kinds(ev);
    assert_eq!(k.first(), Some(&"start"), "{k:?}");
    assert_eq!(k.last(), Some(&"end"), "{k:?}");
    assert_eq!(k.iter().filter(|e| **e == "end").count(), 1, "{k:?}");
    assert_eq!(ev.last().unwrap()["status"], status);
    assert!(ev.iter().all(|v| v["command"] == command), "{ev:?}");
}

fn with_stdio(args: &[&str], input: Option<&Path>, output: Option<&Path>) -> Output {
    let mut c = hammer();
    c.args(args);
    c.stdin(input.map_or(Stdio::null(), |p| Stdio::from(fs::File::open(p).unwrap())));
    if let Some(p) = output {
        c.stdout(fs::File::create(p).unwrap());
    }
    c.output().unwrap()
}

#[test]
fn each_long_command_writes_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let j = |name: &str| dir.path().join(format!("{name}.jsonl"));
    let m = root.join("master").display().to_string();
    let t = tree(
        dir.path(),
        [("a", b"alpha".repeat(5000)), ("d/b", b"beta".to_vec())],
    );

    ok(&[
        "-j",
        j("import").to_str().unwrap(),
        "import",
        t.to_str().unwrap(),
        &m,
    ]);
    let ev = events(&j("import"));
    assert_framed(&ev, "import", 0);
    assert_eq!(kinds(&ev), ["start", "batch", "sync", "end"]);

    let stream = dir.path().join("stream");
    let out = with_stdio(
        &["-j", j("read").to_str().unwrap(), "mirror-read", &m],
        None,
        Some(&stream),
    );
    assert!(out.status.success());
    let ev = events(&j("read"));
    assert_framed(&ev, "mirror-read", 0);
    assert!(kinds(&ev).contains(&"batch"));
    assert_eq!(ev[0]["side"], "source");
    assert!(ev[0]["planned_bytes"].as_u64().unwrap() > 25_000);

    let s = root.join("slave").display().to_string();
    let out = with_stdio(
        &["-y", "-j", j("write").to_str().unwrap(), "mirror-write", &s],
        Some(&stream),
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ev = events(&j("write"));
    assert_framed(&ev, "mirror-write", 0);
    assert_eq!(ev[0]["side"], "target");
    assert_eq!(ev[0]["planned_bytes"], fs::metadata(&stream).unwrap().len());
    let sync = ev.iter().find(|v| v["event"] == "sync").unwrap();
    assert_eq!(
        u64::from_str_radix(&sync["tid"].as_str().unwrap()[2..], 16).unwrap(),
        sync_end(&root, 2)
    );

    let s2 = root.join("slave2").display().to_string();
    ok(&[
        "-y",
        "-j",
        j("copy").to_str().unwrap(),
        "mirror-copy",
        &m,
        &s2,
    ]);
    let ev = events(&j("copy"));
    assert_framed(&ev, "mirror-copy", 0);
    let sides: Vec<&str> = ev.iter().filter_map(|v| v["side"].as_str()).collect();
    assert!(
        sides.contains(&"source") && sides.contains(&"target"),
        "{sides:?}"
    );
    // The end counts the stream once, as the source sent it.
    let sent: u64 = ev
        .iter()
        .filter(|v| v["event"] == "batch" && v["side"] == "source")
        .map(|v| v["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(ev.last().unwrap()["totals"]["bytes"], sent);

    let out_dir = dir.path().join("out");
    ok(&[
        "-j",
        j("export").to_str().unwrap(),
        "export",
        &s2,
        out_dir.to_str().unwrap(),
    ]);
    let ev = events(&j("export"));
    assert_framed(&ev, "export", 0);
    assert_eq!(ev[0]["planned_bytes"], 25_004);

    // Appended to: a second run adds its own start..end.
    ok(&[
        "-j",
        j("export").to_str().unwrap(),
        "-F",
        "export",
        &s2,
        out_dir.to_str().unwrap(),
    ]);
    let ev = events(&j("export"));
    assert_eq!(kinds(&ev).iter().filter(|k| **k == "end").count(), 2);
}

#[test]
fn a_failing_run_tells_its_error_then_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let j = dir.path().join("e.jsonl");
    let missing = root.join("nope").display().to_string();
    let out = with_stdio(
        &["-j", j.to_str().unwrap(), "mirror-read", &missing],
        None,
        Some(&dir.path().join("x")),
    );
    assert_eq!(out.status.code(), Some(1));
    let ev = events(&j);
    assert_eq!(kinds(&ev), ["error", "end"]);
    assert_eq!(ev[0]["class"], "pfs");
    assert_eq!(ev[0]["errno"], 2);
    assert_eq!(
        ev[0]["message"].as_str().unwrap(),
        text(&out.stderr).trim_end()
    );
    assert_eq!(ev[1]["status"], 1);

    // A copy whose target is a master: the target's failure, exit 3.
    make_history(&root, 3, 1, 100);
    let other = root.join("other").display().to_string();
    ok(&["pfs-master", &other]);
    let j2 = dir.path().join("c.jsonl");
    let m = root.join("master").display().to_string();
    let out = run(&["-j", j2.to_str().unwrap(), "mirror-copy", &m, &other]);
    let ev = events(&j2);
    let status = out.status.code().unwrap();
    assert_ne!(status, 0);
    assert_eq!(ev.last().unwrap()["status"], status);
    assert!(kinds(&ev).contains(&"error"), "{:?}", kinds(&ev));

    // A usage error.
    let j3 = dir.path().join("u.jsonl");
    let out = run(&["-j", j3.to_str().unwrap(), "mirror-read"]);
    assert_eq!(out.status.code(), Some(1));
    let ev = events(&j3);
    assert_eq!(kinds(&ev), ["error", "end"]);
    assert_eq!(ev[0]["class"], "usage");
}

#[test]
fn dash_is_stderr_and_fd_is_a_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    make_history(&root, 3, 1, 100);
    let m = root.join("master").display().to_string();
    let s = root.join("slave").display().to_string();
    let out = run(&["-q", "-y", "-j", "-", "mirror-copy", &m, &s]);
    assert!(out.status.success());
    let lines: Vec<Value> = text(&out.stderr)
        .lines()
        .map(|l| check(l, Path::new("-")))
        .collect();
    assert_framed(&lines, "mirror-copy", 0);

    // fd:3, as a script's `3>file` gives it.
    let f = dir.path().join("fd3");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' -q -j fd:3 mirror-copy '{m}' '{s}' 3>'{}'",
            env!("CARGO_BIN_EXE_hammer"),
            f.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_framed(&events(&f), "mirror-copy", 0);

    let out = run(&["-j", "fd:x", "pfs-status", &m]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "hammer: -j fd:x: Bad file descriptor\n");
}

#[test]
fn ssh_remote_refuses_a_clients_j() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let m = root.join("master").display().to_string();
    let evil = dir.path().join("written");
    let out = hammer()
        .args(["ssh-remote", "mirror-read", root.to_str().unwrap()])
        .env(
            "SSH_ORIGINAL_COMMAND",
            format!("hammer -j {} mirror-read {m}", evil.display()),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "hammer: hammer-remote: option -j not allowed\n"
    );
    assert!(!evil.exists());
}

#[test]
fn a_stream_that_loses_its_link_says_so_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    make_history(&root, 5, 1, 500);
    // A remote shell whose first connection dies after a second.
    let rsh = dir.path().join("rsh");
    fs::write(
        &rsh,
        format!(
            "#!/bin/sh\nwhile [ \"$1\" != hammer ]; do shift; done\nshift\nif [ ! -e '{d}/once' ]; then touch '{d}/once'; '{h}' \"$@\" & p=$!; sleep 1; kill -9 $p; exit 1; fi\nexec '{h}' \"$@\"\n",
            d = dir.path().display(),
            h = env!("CARGO_BIN_EXE_hammer")
        ),
    )
    .unwrap();
    fs::set_permissions(&rsh, fs::Permissions::from_mode(0o755)).unwrap();
    let j = dir.path().join("s.jsonl");
    let m = root.join("master").display().to_string();
    let target = format!("far:{}", root.join("slave").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hammer"))
        .env("HAMMER_RSH", &rsh)
        .args([
            "-q",
            "-y",
            "-i",
            "0",
            "-j",
            j.to_str().unwrap(),
            "mirror-stream",
            &m,
            &target,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // New records once the link is lost: the first connection may have
    // copied everything there was before it was killed (on a loaded
    // machine), and the reconnected stream must have a batch to send.
    wait_for(
        "the stream to lose its link",
        60,
        || {
            fs::read_to_string(&j)
                .unwrap_or_default()
                .contains(r#""event":"retry""#)
        },
        String::new,
    );
    let newest = make_history(&root, 5, 1, 500);
    // The slave's sync point moves at SYNC, before the source has its
    // acknowledgement and tells its batch: wait for both.
    let batch_after_retry = || {
        let log = fs::read_to_string(&j).unwrap_or_default();
        log.split_once(r#""event":"retry""#)
            .is_some_and(|(_, after)| after.contains(r#""event":"batch""#))
    };
    wait_for(
        "the stream to reconnect and sync",
        60,
        || {
            fs::symlink_metadata(root.join("slave")).is_ok()
                && sync_end(&root, 2) >= newest
                && batch_after_retry()
        },
        String::new,
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(143));
    let ev = events(&j);
    let k = kinds(&ev);
    let lost = k
        .iter()
        .position(|e| *e == "lost-link")
        .unwrap_or_else(|| panic!("{k:?}"));
    assert_eq!(k[lost + 1], "retry");
    assert_eq!(ev[lost + 1]["after_seconds"], 15.0);
    assert!(k[lost + 2..].contains(&"batch"), "{k:?}");
    assert_eq!(k.last(), Some(&"end"));
    assert_eq!(ev.last().unwrap()["status"], 143);
}

/// Runs `hammer -j <dest> pfs-status <pfs>` (in `sh -c`, for the
/// descriptor redirections in `redirect`), waiting at most a minute.
fn status_with_events(dest: &str, pfs: &str, redirect: &str) -> Output {
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec '{}' -j '{dest}' pfs-status '{pfs}' {redirect}",
            env!("CARGO_BIN_EXE_hammer"),
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output("a -j run to end", 60, child)
}

#[test]
fn a_fifo_without_a_reader_never_holds_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let m = root.join("master").display().to_string();
    let fifo = dir.path().join("events.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // Before: open(2) of the FIFO waited for a reader that never came.
    let out = status_with_events(fifo.to_str().unwrap(), &m, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("PFS#1"), "{}", text(&out.stdout));
}

#[test]
fn fd_n_is_written_itself_and_must_be_open_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let m = root.join("master").display().to_string();

    // A descriptor passed read-only: refused, its file untouched (before,
    // /dev/fd/3 was reopened for writing and the events appended).
    let file = dir.path().join("read-only");
    fs::write(&file, b"keep\n").unwrap();
    let out = status_with_events("fd:3", &m, &format!("3<'{}'", file.display()));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "hammer: -j fd:3: descriptor not open for writing\n"
    );
    assert_eq!(fs::read(&file).unwrap(), b"keep\n");

    // A socket cannot be reopened through /dev/fd at all: the events go
    // to the descriptor itself.
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let out = hammer()
        .args(["-j", "fd:0", "pfs-status", &m])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut got = String::new();
    std::io::Read::read_to_string(&mut &ours, &mut got).unwrap();
    let lines: Vec<Value> = got.lines().map(|l| check(l, Path::new("fd:0"))).collect();
    assert_eq!(kinds(&lines), ["end"]);
}

#[test]
fn no_event_file_is_created_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let m = root.join("master").display().to_string();
    let planted = dir.path().join("elsewhere");
    let link = dir.path().join("events.jsonl");
    std::os::unix::fs::symlink(&planted, &link).unwrap();
    let out = run(&["-j", link.to_str().unwrap(), "pfs-status", &m]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "hammer: -j {}: a symlink to a file that does not exist; not created through it\n",
            link.display()
        )
    );
    assert!(!planted.exists(), "the link's target was created");

    // A link to a file that exists is followed, as before.
    fs::write(&planted, b"").unwrap();
    let out = run(&["-j", link.to_str().unwrap(), "pfs-status", &m]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(kinds(&events(&planted)), ["end"]);
}

/// The README's `-j -` example (`-q -j - mirror-read ... 2>events.jsonl`)
/// gives a stderr of JSON lines alone.
#[test]
fn the_readmes_stderr_example_is_json_alone() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    make_history(&root, 5, 1, 500);
    let m = root.join("master").display().to_string();
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains("hammer -q -j - mirror-read /backup/store/web 2>events.jsonl >web.stream")
    );
    let out = run(&["-q", "-j", "-", "mirror-read", &m]);
    assert!(out.status.success());
    let lines: Vec<Value> = text(&out.stderr)
        .lines()
        .map(|l| check(l, Path::new("-")))
        .collect();
    assert_framed(&lines, "mirror-read", 0);
}

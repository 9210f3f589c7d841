//! mirror-copy and mirror-stream to several targets: the source read once, each
//! target ending where a separate mirror-copy would have, a target that dies
//! dropped while the others converge, and the exit status naming the targets
//! that failed.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The PFS number the link `root/name` names (`@@PFS0000N`).
fn id(root: &Path, name: &str) -> u32 {
    link_id(&root.join(name)).unwrap()
}

/// A record: localization type, obj_id, key, rec_type, create and delete
/// TIDs, data CRC, payload.
type Record = (u32, i64, i64, u16, u64, u64, u32, Vec<u8>);

/// Every record of a PFS, deleted ones included, without the PFS number's
/// bits of its localization.
fn records(root: &Path, id: u32) -> Vec<Record> {
    let mut v = Vec::new();
    open(root, id)
        .for_each_record(|l, d| {
            let b = &l.base;
            v.push((
                b.localization & 0xFFFF,
                b.obj_id,
                b.key,
                b.rec_type,
                b.create_tid,
                b.delete_tid,
                l.data_crc,
                d.to_vec(),
            ));
        })
        .unwrap();
    v
}

#[test]
fn targets_at_different_sync_points_end_as_separate_copies_would() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let m = s(&root.join("master"));
    let copy = |dst: &str| {
        ok(&["-q", "-y", "-i", "0", "mirror-copy", &m, dst]);
    };
    let slave = |name: &str| s(&root.join(name));
    // a (PFS#2) and its twin ra (PFS#3) are one generation behind, b and
    // rb (PFS#4, #5) two generations behind at the end; c and rc are new.
    make_history(&root, 12, 1, 3000);
    copy(&slave("b"));
    copy(&slave("rb"));
    make_history(&root, 12, 1, 3000);
    copy(&slave("a"));
    copy(&slave("ra"));
    let last = make_history(&root, 12, 1, 3000);
    let out = run(&[
        "-y",
        "-i",
        "0",
        "mirror-copy",
        &m,
        &slave("a"),
        &slave("b"),
        &slave("c"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Separate copies of the same master state.
    for twin in ["ra", "rb", "rc"] {
        copy(&slave(twin));
    }
    let id = |name: &str| id(&root, name);
    for (fanned, separate) in [("a", "ra"), ("b", "rb"), ("c", "rc")] {
        assert_mirrored((&root, 1), (&root, id(fanned)));
        assert!(
            records(&root, id(fanned)) == records(&root, id(separate)),
            "{fanned} differs from {separate}"
        );
        assert!(sync_end(&root, id(fanned)) >= last);
    }
}

#[test]
fn a_target_killed_mid_copy_is_dropped_and_the_others_converge() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    // 12 MB at 4 MB/s: the copy lasts about three seconds.
    let last = make_history(&root, 300, 1, 40_000);
    let rsh = fake_rsh(dir.path());
    let m = s(&root.join("master"));
    let child = Command::new(env!("CARGO_BIN_EXE_hammer"))
        .env("HAMMER_RSH", &rsh)
        .args(["-y", "-i", "0", "-b", "4m", "mirror-copy", &m])
        .args([
            s(&root.join("a")),
            format!("far:{}", s(&root.join("b"))),
            s(&root.join("c")),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid_file = dir.path().join("pid.0");
    wait_for("the remote target", 30, || pid_file.exists(), String::new);
    std::thread::sleep(Duration::from_millis(1200));
    let pid = fs::read_to_string(&pid_file).unwrap();
    Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    // Target 2 failed: 16 + bit 1.
    assert_eq!(out.status.code(), Some(18), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "hammer: mirror-copy: target 2 (far:{}) dropped",
            s(&root.join("b"))
        )),
        "{err}"
    );
    for name in ["a", "c"] {
        let id = id(&root, name);
        assert!(sync_end(&root, id) >= last, "{name}");
        assert_mirrored((&root, 1), (&root, id));
    }
}

/// Runs a copy of `root`'s master to `a`, `far:b` (through `rsh`) and
/// `c` with `-w 2`; when `stop_after` is given, stops the remote target
/// (SIGSTOP: it neither reads nor answers) that long after it started.
/// Returns the copy's outcome once it ended (before: it never did).
fn copy_with_a_stalled_target(
    dir: &Path,
    root: &Path,
    rsh: &Path,
    stop_after: Option<Duration>,
) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_hammer"))
        .env("HAMMER_RSH", rsh)
        .args(["-y", "-i", "0", "-b", "4m", "-w", "2", "mirror-copy"])
        .args([
            s(&root.join("master")),
            s(&root.join("a")),
            format!("far:{}", s(&root.join("b"))),
            s(&root.join("c")),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(after) = stop_after {
        let pid_file = dir.join("pid.0");
        wait_for("the remote target", 30, || pid_file.exists(), String::new);
        std::thread::sleep(after);
        let pid = fs::read_to_string(&pid_file).unwrap();
        Command::new("kill")
            .args(["-STOP", pid.trim()])
            .status()
            .unwrap();
    }
    wait_output("the copy to drop its stalled target and end", 120, child)
}

/// The copy ended with target 2 dropped for standing still (`doing`
/// nothing for 2 s), and the local targets hold the master.
fn assert_stalled_target_dropped(root: &Path, out: &std::process::Output, last: u64, doing: &str) {
    // Target 2 failed: 16 + bit 1.
    assert_eq!(out.status.code(), Some(18), "{}", text(&out.stderr));
    assert_stderr_has(
        out,
        &format!(
            "hammer: mirror-copy: target 2 (far:{}) dropped: it {doing} nothing for 2 s",
            s(&root.join("b"))
        ),
    );
    for name in ["a", "c"] {
        let id = id(root, name);
        assert!(sync_end(root, id) >= last, "{name}");
        assert_mirrored((root, 1), (root, id));
    }
}

#[test]
fn a_target_that_never_answers_is_dropped_after_w_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let last = make_history(&root, 20, 1, 4000);
    // A remote side that stops itself before it reads a byte.
    let rsh = dir.path().join("stopped-rsh");
    fs::write(&rsh, "#!/bin/sh\nkill -STOP $$\n").unwrap();
    fs::set_permissions(&rsh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = copy_with_a_stalled_target(dir.path(), &root, &rsh, None);
    assert_stalled_target_dropped(&root, &out, last, "answered");
}

#[test]
fn a_target_that_stops_reading_mid_copy_is_dropped_after_w_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    // 12 MB at 4 MB/s: the copy lasts about three seconds; the stop at
    // 1.2 s is mid-batch, and the relay's writes to it then stand still.
    let last = make_history(&root, 300, 1, 40_000);
    let rsh = fake_rsh(dir.path());
    let out =
        copy_with_a_stalled_target(dir.path(), &root, &rsh, Some(Duration::from_millis(1200)));
    assert_stalled_target_dropped(&root, &out, last, "took");
}

#[test]
fn remote_targets_and_compression() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    make_history(&root, 20, 2, 5000);
    let rsh = fake_rsh(dir.path());
    let m = s(&root.join("master"));
    let out = Command::new(env!("CARGO_BIN_EXE_hammer"))
        .env("HAMMER_RSH", &rsh)
        .args(["-q", "-y", "-z", "mirror-copy", &format!("src:{m}")])
        .args([format!("b1:{}", s(&root.join("x"))), s(&root.join("y"))])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let log = fs::read_to_string(dir.path().join("rsh.log")).unwrap();
    assert!(
        log.contains(&format!("src hammer -q -y -z -2 mirror-read {m}")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "b1 hammer -q -y -z -2 mirror-write {}",
            s(&root.join("x"))
        )),
        "{log}"
    );
    for name in ["x", "y"] {
        assert_mirrored((&root, 1), (&root, id(&root, name)));
    }
}

#[test]
fn a_target_of_another_pfs_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    make_history(&root, 5, 1, 1000);
    // A slave of another master: different shared uuid.
    ok(&["pfs-slave", &s(&root.join("other"))]);
    let m = s(&root.join("master"));
    let out = run(&[
        "-y",
        "mirror-copy",
        &m,
        &s(&root.join("good")),
        &s(&root.join("other")),
    ]);
    assert_eq!(out.status.code(), Some(16 + 2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("source and target have different shared-uuid's!"));
    assert_mirrored((&root, 1), (&root, id(&root, "good")));
}

#[test]
fn the_arguments_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let m = s(&root.join("master"));
    let a = s(&root.join("a"));
    // The same PFS twice.
    ok(&["pfs-slave", &a]);
    let out = run(&["mirror-copy", &m, &a, &format!("{a}/")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("are the same PFS"),
        "{}",
        text(&out.stderr)
    );
    // Seven targets: the mirror usage, as for any wrong count.
    let seven: Vec<String> = (0..7).map(|i| s(&root.join(format!("t{i}")))).collect();
    let mut args = vec!["mirror-copy", m.as_str()];
    args.extend(seven.iter().map(String::as_str));
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("hammer mirror-copy [[user@]host:]"),
        "{}",
        text(&out.stderr)
    );
}

/// `hammer -y -i 0 <args> mirror-stream` of `root`'s master to `a` and
/// `far:b` (through `rsh`), its stderr in a file: the child, that file
/// and the remote target's argument.
fn stream_to_a_and_far_b(
    dir: &Path,
    root: &Path,
    rsh: &Path,
    args: &[&str],
) -> (std::process::Child, std::path::PathBuf, String) {
    let far = format!("far:{}", s(&root.join("b")));
    let log = dir.join("stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_hammer"))
        .env("HAMMER_RSH", rsh)
        .args(["-y", "-i", "0"])
        .args(args)
        .arg("mirror-stream")
        .args([s(&root.join("master")), s(&root.join("a")), far.clone()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (child, log, far)
}

/// A small batch on `root`'s master every two seconds (each given time to
/// arrive) until `done` holds, at most a minute; `newest` follows the
/// master's newest TID.
fn batches_until(
    root: &Path,
    what: &str,
    newest: &mut u64,
    mut done: impl FnMut(u64) -> bool,
    diag: impl Fn() -> String,
) {
    wait_for(
        what,
        60,
        || {
            std::thread::sleep(Duration::from_secs(2));
            if done(*newest) {
                return true;
            }
            *newest = make_history(root, 2, 1, 100);
            false
        },
        diag,
    );
}

/// Whether the target `name` of `root` holds its master up to `tid`.
fn synced(root: &Path, name: &str, tid: u64) -> bool {
    fs::symlink_metadata(root.join(name)).is_ok() && sync_end(root, id(root, name)) >= tid
}

#[test]
fn a_stream_goes_on_without_a_lost_target_and_takes_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    make_history(&root, 10, 1, 2000);
    let rsh = fake_rsh(dir.path());
    let (mut child, log, _) = stream_to_a_and_far_b(dir.path(), &root, &rsh, &["-v"]);
    let said = || fs::read_to_string(&log).unwrap_or_default();
    let synced = |name: &str, tid: u64| synced(&root, name, tid);
    let first = sync_end(&root, 1);
    wait_for(
        "both targets",
        30,
        || synced("a", first) && synced("b", first),
        said,
    );
    let pid = fs::read_to_string(dir.path().join("pid.0")).unwrap();
    Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    // The other target goes on at once.
    let second = make_history(&root, 10, 1, 2000);
    wait_for("target 1 alone", 30, || synced("a", second), said);
    // The lost one is started again 15 s after it was found gone, at the
    // next batch.
    let mut newest = second;
    batches_until(
        &root,
        "target 2 back",
        &mut newest,
        |t| synced("b", t),
        said,
    );
    assert!(
        fs::read_to_string(dir.path().join("rsh.log"))
            .unwrap()
            .lines()
            .count()
            >= 2
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let err = said();
    assert_eq!(status.code(), Some(143), "{err}");
    assert!(err.contains("Lost link to target 2, reconnecting"), "{err}");
    assert_mirrored((&root, 1), (&root, id(&root, "a")));
}

/// A lost target that cannot be started again (its remote shell is gone)
/// is told, with its reason and an `error` event, and tried again later;
/// before, the failed start was dropped without a word and the target
/// never came back.
#[test]
fn a_target_that_cannot_be_started_again_is_told_and_tried_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    make_history(&root, 10, 1, 2000);
    let rsh = fake_rsh(dir.path());
    let events = dir.path().join("events.jsonl");
    let j = ["-j", events.to_str().unwrap()];
    let (mut child, log, far) = stream_to_a_and_far_b(dir.path(), &root, &rsh, &j);
    let said = || fs::read_to_string(&log).unwrap_or_default();
    let synced = |name: &str, tid: u64| synced(&root, name, tid);
    let first = sync_end(&root, 1);
    wait_for(
        "both targets",
        30,
        || synced("a", first) && synced("b", first),
        said,
    );
    // The remote side dies, and its shell can no longer be started.
    fs::set_permissions(&rsh, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let pid = fs::read_to_string(dir.path().join("pid.0")).unwrap();
    Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    let mut newest = make_history(&root, 10, 1, 2000);
    let told = format!("hammer: mirror-copy: target 2 ({far}) dropped: cannot start it again: ");
    batches_until(
        &root,
        "the failed start to be told",
        &mut newest,
        |_| said().contains(&told),
        said,
    );
    assert!(synced("a", newest) || sync_end(&root, id(&root, "a")) > first);
    let ev = fs::read_to_string(&events).unwrap();
    assert!(
        ev.contains(r#""class":"dropped""#) && ev.contains("cannot start it again"),
        "{ev}"
    );
    // Its shell back, it is started again at a later batch.
    fs::set_permissions(&rsh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    batches_until(
        &root,
        "target 2 back",
        &mut newest,
        |t| synced("b", t),
        said,
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(143), "{}", said());
}

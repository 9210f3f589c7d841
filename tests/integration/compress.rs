//! `-z`: a zstd-compressed stream between two sides of this tool, to a file and
//! back, over a remote shell, refused cleanly by a remote original, and checked
//! frame by frame on the way in.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::*;
use hammer_mirror::wire::zframe::MAGIC;

/// A master holding text (compressible) and some random bytes; returns
/// the store root and the tree imported.
fn master(dir: &Path) -> (PathBuf, PathBuf) {
    let root = store_with_master(dir, "src");
    let mut rng = Rng(5);
    let line = b"Jan  1 00:00:00 host kernel: hammer: mirror-write succeeded\n";
    let t = tree(
        dir,
        [
            ("log/messages", line.repeat(40_000)),
            ("log/old", line.repeat(9_000)),
            ("bin/blob", rng.bytes(200_000)),
        ],
    );
    import(&t, &root.join("master"));
    (root, t)
}

/// `hammer args...` with stdin from `input` and stdout to `output`.
fn with_files(args: &[&str], input: Option<&Path>, output: Option<&Path>) -> Output {
    let mut c = hammer();
    c.args(args);
    c.stdin(match input {
        Some(p) => Stdio::from(fs::File::open(p).unwrap()),
        None => Stdio::null(),
    });
    if let Some(p) = output {
        c.stdout(fs::File::create(p).unwrap());
    }
    c.output().unwrap()
}

fn assert_ok(out: &Output) {
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The slave `name` of `root` holds `t`.
fn assert_restores(dir: &Path, root: &Path, name: &str, t: &Path) {
    let out = dir.join(format!("restored-{name}"));
    ok(&[
        "-q",
        "export",
        root.join(name).to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    for f in ["log/messages", "log/old", "bin/blob"] {
        assert_eq!(
            fs::read(out.join(f)).unwrap(),
            fs::read(t.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn a_compressed_stream_file_dumps_and_applies_as_the_plain_one() {
    let dir = tempfile::tempdir().unwrap();
    let (root, t) = master(dir.path());
    let m = root.join("master").display().to_string();
    let plain = dir.path().join("plain");
    let z = dir.path().join("stream.z");
    assert_ok(&with_files(&["mirror-read", &m], None, Some(&plain)));
    assert_ok(&with_files(&["-z", "mirror-read", &m], None, Some(&z)));
    let (plain_len, z_len) = (
        fs::metadata(&plain).unwrap().len(),
        fs::metadata(&z).unwrap().len(),
    );
    assert!(z_len * 4 < plain_len, "{z_len} of {plain_len}");
    assert_eq!(fs::read(&z).unwrap()[..8], MAGIC);

    let dump_plain = with_files(&["mirror-dump"], Some(&plain), None);
    let dump_z = with_files(&["-z", "mirror-dump"], Some(&z), None);
    assert_ok(&dump_z);
    assert_eq!(dump_plain.stdout, dump_z.stdout);

    assert_ok(&with_files(
        &[
            "-z",
            "-y",
            "mirror-write",
            root.join("slave").to_str().unwrap(),
        ],
        Some(&z),
        None,
    ));
    assert_restores(dir.path(), &root, "slave", &t);

    // -zzz: smaller still, read back by one -z.
    let zzz = dir.path().join("stream.zzz");
    assert_ok(&with_files(&["-zzz", "mirror-read", &m], None, Some(&zzz)));
    assert!(fs::metadata(&zzz).unwrap().len() <= z_len);
    let dump = with_files(&["-z", "mirror-dump"], Some(&zzz), None);
    assert_eq!(dump.stdout, dump_plain.stdout);
}

#[test]
fn damage_is_named_and_nothing_of_it_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = master(dir.path());
    let m = root.join("master").display().to_string();
    let z = dir.path().join("stream.z");
    assert_ok(&with_files(&["-z", "mirror-read", &m], None, Some(&z)));
    let good = fs::read(&z).unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "flipped",
            {
                let mut b = good.clone();
                let mid = b.len() / 2;
                b[mid] ^= 0x20;
                b
            },
            "hammer: read_mrecords: compressed stream: frame at byte ",
        ),
        (
            "cut",
            good[..good.len() / 2].to_vec(),
            "compressed stream: truncated frame at byte ",
        ),
        (
            "plain",
            {
                let p = dir.path().join("p");
                assert_ok(&with_files(&["mirror-read", &m], None, Some(&p)));
                fs::read(&p).unwrap()
            },
            "compressed stream: no -z header",
        ),
    ];
    for (name, bytes, want) in cases {
        let f = dir.path().join(name);
        fs::write(&f, &bytes).unwrap();
        let slave = root.join(format!("slave-{name}"));
        let out = with_files(
            &["-z", "-y", "mirror-write", slave.to_str().unwrap()],
            Some(&f),
            None,
        );
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(want),
            "{name}: {}",
            text(&out.stderr)
        );
        // The batch the damage is in never reached its SYNC.
        if fs::symlink_metadata(&slave).is_ok() {
            let id = link_id(&slave).unwrap();
            assert_eq!(sync_end(&root, id), 1, "{name}");
        }
        let dump = with_files(&["-z", "mirror-dump"], Some(&f), None);
        assert_ne!(dump.status.code(), Some(0), "{name}");
    }
}

/// A -z stream given to mirror-dump or mirror-write without -z says so and
/// what to do, and nothing else (before: "bad signature", then a second
/// error about a record that does not exist, from mirror-dump).
#[test]
fn a_z_stream_read_without_z_says_to_add_z() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = master(dir.path());
    let m = root.join("master").display().to_string();
    let z = dir.path().join("stream.z");
    assert_ok(&with_files(&["-z", "mirror-read", &m], None, Some(&z)));
    let said = "read_mrecord: bad signature: this is a -z stream (compressed): add -z to read it\n";
    for args in [
        vec!["mirror-dump"],
        vec!["mirror-dump", "header"],
        vec!["-y", "mirror-write", root.join("slave").to_str().unwrap()],
    ] {
        let out = with_files(&args, Some(&z), None);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&out.stderr), said, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(fs::symlink_metadata(root.join("slave")).is_err());
}

/// A frame head whose lengths are damaged is one error: before, the
/// reader went on from the bad frame's body and reported a second frame
/// at a byte where none begins.
#[test]
fn a_bad_frame_head_is_one_error() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = master(dir.path());
    let m = root.join("master").display().to_string();
    let z = dir.path().join("stream.z");
    assert_ok(&with_files(&["-z", "mirror-read", &m], None, Some(&z)));
    let mut bad = fs::read(&z).unwrap();
    // The first frame's stored length (bytes 12..16 of the stream).
    bad[MAGIC.len() + 4] ^= 0xff;
    bad[MAGIC.len() + 6] ^= 0x7f;
    let f = dir.path().join("bad.z");
    fs::write(&f, &bad).unwrap();
    let dump = with_files(&["-z", "mirror-dump"], Some(&f), None);
    assert_eq!(dump.status.code(), Some(1));
    let err = text(&dump.stderr);
    assert_eq!(err.matches("compressed stream").count(), 1, "{err}");
    assert!(err.contains("frame at byte 8 "), "{err}");
}

fn copy_via(rsh: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hammer"))
        .env("HAMMER_RSH", rsh)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn mirror_copy_compresses_towards_and_from_a_remote_side() {
    let dir = tempfile::tempdir().unwrap();
    let (root, t) = master(dir.path());
    let rsh = fake_rsh(dir.path());
    let m = root.join("master").display().to_string();
    let s = root.join("slave").display().to_string();
    assert_ok(&copy_via(
        &rsh,
        &["-y", "-z", "mirror-copy", &m, &format!("backup:{s}")],
    ));
    assert_restores(dir.path(), &root, "slave", &t);
    let s2 = root.join("slave2").display().to_string();
    assert_ok(&copy_via(
        &rsh,
        &["-y", "-zz", "mirror-copy", &format!("src:{m}"), &s2],
    ));
    assert_restores(dir.path(), &root, "slave2", &t);
    let s3 = root.join("slave3").display().to_string();
    assert_ok(&copy_via(
        &rsh,
        &["-y", "mirror-copy", &format!("src:{m}"), &s3],
    ));
    let log = fs::read_to_string(dir.path().join("rsh.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], format!("backup hammer -y -z -2 mirror-write {s}"));
    assert_eq!(lines[1], format!("src hammer -y -zz -2 mirror-read {m}"));
    // Without -z, the remote command line is the original's.
    assert_eq!(lines[2], format!("src hammer -y -2 mirror-read {m}"));
}

#[test]
fn a_remote_original_refuses_z_and_the_copy_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = master(dir.path());
    // What an original hammer(8) does with -z.
    let rsh = dir.path().join("original-rsh");
    fs::write(
        &rsh,
        "#!/bin/sh\necho 'hammer: illegal option -- z' >&2\necho 'usage: hammer [-2ABFqrvXy] [-b bandwidth] ...' >&2\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(&rsh, fs::Permissions::from_mode(0o755)).unwrap();
    let m = root.join("master").display().to_string();
    let why = "hammer: mirror-copy: the remote side refused -z: it is not hammer-mirror";
    let out = copy_via(&rsh, &["-z", "mirror-copy", &m, "old:/backup/slave"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("hammer: illegal option -- z\n"));
    assert!(text(&out.stderr).contains(why), "{}", text(&out.stderr));
    // mirror-stream gives up at once instead of retrying every 15 s.
    let out = copy_via(&rsh, &["-z", "mirror-stream", &m, "old:/backup/slave"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(why));
    assert!(text(&out.stderr).contains("giving up"));
}

#[test]
fn ssh_remote_admits_z() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = master(dir.path());
    let m = root.join("master").display().to_string();
    let out = hammer()
        .args(["ssh-remote", "mirror-read", root.to_str().unwrap()])
        .env("SSH_ORIGINAL_COMMAND", format!("hammer -z mirror-read {m}"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ok(&out);
    assert_eq!(out.stdout[..8], MAGIC);
}

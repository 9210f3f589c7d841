//! Arguments that are not UTF-8: the original takes bytes, so do PFS paths,
//! import sources and export targets here, from argv to the system call. Paths
//! written on stdout as the original writes them are the bytes given; messages
//! show them as `Path::display` does.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::common::*;

/// `base` with a byte that is not UTF-8 appended to its last component.
fn odd(base: &Path, tail: &[u8]) -> PathBuf {
    let mut b = base.as_os_str().as_bytes().to_vec();
    b.extend_from_slice(tail);
    PathBuf::from(OsString::from_vec(b))
}

fn hammer_os(args: &[&OsStr]) -> Output {
    hammer().args(args).stdin(Stdio::null()).output().unwrap()
}

fn succeeded(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pfs_paths_are_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("st");
    ok(&["store-create", store.to_str().unwrap()]);
    let pfs = odd(&store.join("p"), b"\xff");

    let label = OsStr::from_bytes(b"label=\xe9t\xe9");
    let out = hammer_os(&["pfs-master".as_ref(), pfs.as_os_str(), label]);
    succeeded(&out, "pfs-master");
    // The path line is the bytes given, as the original's printf("%s").
    let mut want = b"Creating PFS#1\tsucceeded!\n".to_vec();
    want.extend_from_slice(pfs.as_os_str().as_bytes());
    want.push(b'\n');
    assert!(out.stdout.starts_with(&want), "{}", text(&out.stdout));
    assert_eq!(
        fs::read_link(&pfs).unwrap().as_os_str(),
        OsStr::new("@@PFS00001")
    );

    let out = hammer_os(&["pfs-status".as_ref(), pfs.as_os_str()]);
    succeeded(&out, "pfs-status");
    let mut want = pfs.as_os_str().as_bytes().to_vec();
    want.extend_from_slice(b"\tPFS#1 {\n");
    assert!(out.stdout.starts_with(&want), "{}", text(&out.stdout));

    let out = hammer_os(&["synctid".as_ref(), pfs.as_os_str()]);
    succeeded(&out, "synctid");

    // A slave of a name that is not UTF-8 either, fed by mirror-copy.
    make_history(&store, 3, 2, 100);
    let slave = odd(&store.join("s"), b"\xfe");
    let out = hammer_os(&[
        "-y".as_ref(),
        "mirror-copy".as_ref(),
        pfs.as_os_str(),
        slave.as_os_str(),
    ]);
    succeeded(&out, "mirror-copy");
    assert_mirrored((&store, 1), (&store, 2));

    // Messages show such a path as Path::display does.
    let missing = odd(&store.join("q"), b"\xff");
    let out = hammer_os(&["pfs-status".as_ref(), missing.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "hammer: Failed to open {}: No such file or directory\n",
            missing.display()
        )
    );

    let out = assert_cmd::Command::cargo_bin("hammer")
        .unwrap()
        .args(["-d".as_ref(), "pfs-destroy".as_ref(), slave.as_os_str()])
        .write_stdin(&b"y\n"[..])
        .output()
        .unwrap();
    succeeded(&out, "pfs-destroy");
    assert!(fs::symlink_metadata(&slave).is_err(), "the link is removed");
}

#[test]
fn import_sources_and_export_targets_are_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_master(dir.path(), "st");
    let master = store.join("master");
    let src = odd(&dir.path().join("src"), b"\xff");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("plain"), b"one").unwrap();
    fs::write(odd(&src.join("name"), b"\xfe"), b"two").unwrap();

    let out = hammer_os(&["import".as_ref(), src.as_os_str(), master.as_os_str()]);
    succeeded(&out, "import");
    let line = text(&out.stdout);
    assert!(
        line.starts_with(&format!("Imported {} into ", src.display())),
        "{line}"
    );

    let target = odd(&dir.path().join("out"), b"\xfe");
    let out = hammer_os(&["export".as_ref(), master.as_os_str(), target.as_os_str()]);
    succeeded(&out, "export");
    assert_eq!(fs::read(target.join("plain")).unwrap(), b"one");
    assert_eq!(
        fs::read(odd(&target.join("name"), b"\xfe")).unwrap(),
        b"two"
    );

    // A PFS path that is not UTF-8, with an @@<tid> suffix.
    let odd_link = odd(&store.join("m"), b"\xff");
    std::os::unix::fs::symlink("@@PFS00001", &odd_link).unwrap();
    let tid = sync_end(&store, 1);
    let mut source = odd_link.as_os_str().to_os_string();
    source.push(format!("@@{tid:#018x}"));
    let again = dir.path().join("again");
    let out = hammer_os(&["export".as_ref(), &source, again.as_os_str()]);
    succeeded(&out, "export @@tid");
    assert_eq!(fs::read(again.join("plain")).unwrap(), b"one");
}

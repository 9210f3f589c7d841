//! Faults injected at the stream seams, without processes: import reading
//! a source file's contents through `FailAfter` (short reads, EOF and EIO
//! at every offset class) fails cleanly and leaves the PFS, and its
//! payload file, as they were.

mod common;

use std::fs::{self, File};
use std::path::Path;

use common::*;
use hammer_mirror::bridge::import::{import_with, ImportOptions, ImportSummary};
use hammer_mirror::bridge::BridgeError;

const EIO: i32 = 5;

/// Offsets where a fault lands in a different place of import's reading:
/// the first byte, around a 16 KiB block and the 1 MiB read window.
const IMPORT_OFFSETS: [usize; 9] = [
    0,
    1,
    16383,
    16384,
    16385,
    (1 << 20) - 1,
    1 << 20,
    (1 << 20) + 1,
    (3 << 19) - 1,
];

/// A tree with an empty file, small ones and one of 1.5 MiB (records of
/// 16 KiB and 64 KiB blocks), its bytes telling where they are.
fn source_tree(dir: &Path) -> std::path::PathBuf {
    let tree = dir.join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    let bytes = |n: usize, salt: u8| -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8) ^ ((i >> 9) as u8) ^ salt)
            .collect()
    };
    fs::write(tree.join("empty"), b"").unwrap();
    fs::write(tree.join("small"), bytes(100, 1)).unwrap();
    fs::write(tree.join("sub/block"), bytes(16384 + 5, 2)).unwrap();
    fs::write(tree.join("sub/large"), bytes(3 << 19, 3)).unwrap();
    tree
}

/// Imports `tree` into `pfs`, each file read through what `wrap` makes
/// of it.
fn import_through(
    tree: &Path,
    pfs: &Path,
    wrap: &dyn Fn(&File) -> FailAfter<&File>,
) -> Result<ImportSummary, BridgeError> {
    let mut diag = Vec::new();
    import_with(
        tree,
        pfs.to_str().unwrap(),
        ImportOptions { quiet: true },
        &mut diag,
        &mut |f| Box::new(wrap(f)),
    )
}

/// The files of `dir` (relative path, bytes), recursively.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn exported(pfs: &Path, target: &Path) -> Vec<(String, Vec<u8>)> {
    ok(&["export", pfs.to_str().unwrap(), target.to_str().unwrap()]);
    files(target)
}

/// Short reads of any size import exactly the bytes of the files.
#[test]
fn import_through_short_reads_stores_the_files_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let tree = source_tree(dir.path());
    for (i, chunk) in [1usize, 7, 4093, 65537].into_iter().enumerate() {
        let root = store_with_master(dir.path(), &format!("s{i}"));
        let master = root.join("master");
        import_through(&tree, &master, &|f| FailAfter::short(f, chunk)).unwrap();
        let out = dir.path().join(format!("out{i}"));
        assert!(exported(&master, &out) == files(&tree), "chunk {chunk}");
    }
}

/// EIO at any offset of a file: the import fails naming the file, the
/// PFS is as it was and the payload bytes it appended (1 MiB at a time)
/// are given back; a rerun imports everything.
#[test]
fn import_failing_with_eio_anywhere_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tree = source_tree(dir.path());
    let root = store_with_master(dir.path(), "s");
    let master = root.join("master");
    let before = as_of(&root, 1, u64::MAX);
    let sync = sync_end(&root, 1);
    for n in IMPORT_OFFSETS {
        let e = import_through(&tree, &master, &|f| FailAfter::new(f, n, Fault::Errno(EIO)))
            .unwrap_err();
        assert!(
            matches!(&e, BridgeError::Io { source, .. } if source.raw_os_error() == Some(EIO)),
            "at {n}: {e}"
        );
        assert!(as_of(&root, 1, u64::MAX) == before, "at {n}");
        assert_eq!(sync_end(&root, 1), sync, "at {n}: a TID was spent");
        assert_no_payload_tail(&root, 1);
    }
    import_through(&tree, &master, &|f| FailAfter::short(f, usize::MAX)).unwrap();
    assert!(exported(&master, &dir.path().join("out")) == files(&tree));
}

/// A file that ends early without its stat changing (a short file on a
/// filesystem that misreports its size) is read again like a file that
/// changed, and never imported with zeros in place of its tail.
#[test]
fn import_of_a_file_ending_early_fails_instead_of_storing_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let tree = source_tree(dir.path());
    let root = store_with_master(dir.path(), "s");
    let master = root.join("master");
    let before = as_of(&root, 1, u64::MAX);
    for n in IMPORT_OFFSETS {
        let e = import_through(&tree, &master, &|f| FailAfter::new(f, n, Fault::Eof)).unwrap_err();
        assert!(
            matches!(&e, BridgeError::Unstable { tries: 5, .. }),
            "at {n}: {e}"
        );
        assert!(as_of(&root, 1, u64::MAX) == before, "at {n}");
    }
}

//! Faults injected at the stream seams, without processes, through
//! `FailAfter` (short reads and writes, EOF and EIO at every offset
//! class): mirror-write reading a stream, mirror-read writing one and
//! reading its target's replies, import reading a source file's contents.
//! Each fails cleanly, leaves the slave as of its sync point equal to the
//! master then (and a PFS and its payload file as they were), and a rerun
//! converges.

use std::fs::{self, File};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::common::*;
use hammer_mirror::bridge::import::{import_with, ImportOptions, ImportSummary};
use hammer_mirror::bridge::BridgeError;
use hammer_mirror::mirror::error::MirrorError;
use hammer_mirror::mirror::read::{mirror_read, ReadOptions};
use hammer_mirror::mirror::write::{mirror_write, WriteOptions};
use hammer_mirror::patharg::PathArg;
use hammer_mirror::pfs::Pfs;
use hammer_mirror::wire::{doalign, mrec_type, PFSD_REC_SIZE, UPDATE_REC_SIZE};

const EIO: i32 = 5;

/// A store with a master of about 1.3 MB in 4 TIDs, split by the prescan
/// into several batches of at most 256 KiB.
fn master_with_batches(dir: &Path) -> PathBuf {
    let root = store_with_master(dir, "s");
    make_history(&root, 30, 4, 20_000);
    begin_at_first_tid(&root);
    root
}

fn read_options(two_way: bool) -> ReadOptions {
    ReadOptions {
        two_way,
        splitup: 256 << 10,
        ..ReadOptions::default()
    }
}

/// The one-way stream of the master of `root`.
fn stream_of(root: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let master = root.join("master");
    mirror_read(
        &PathArg::from(master.as_path()),
        &read_options(false),
        io::empty(),
        &mut out,
        &mut io::sink(),
    )
    .unwrap();
    out
}

/// Offsets where a cut lands in a different place of a stream: inside and
/// around the headers, the first records, every batch end (SYNC) and the
/// TERM, and every 64 KiB in between.
fn stream_offsets(stream: &[u8]) -> Vec<usize> {
    let ends = record_ends(stream);
    let mut at = vec![0, 1, 15, 16, 17];
    for (i, &(rt, end)) in ends.iter().enumerate() {
        if i < 4 || matches!(rt, mrec_type::SYNC | mrec_type::TERM | mrec_type::PFSD) {
            at.extend([end - 1, end, end + 1]);
        }
    }
    at.extend(
        (1..)
            .map(|k| k * (64 << 10))
            .take_while(|&o| o < stream.len()),
    );
    at.retain(|&o| o < stream.len());
    at.sort_unstable();
    at.dedup();
    at
}

fn write_options() -> WriteOptions {
    WriteOptions {
        yes: true,
        ..WriteOptions::default()
    }
}

/// Checks the slave (PFS#2, created by the first write) against the
/// master as of its sync point, and that no payload bytes are left past
/// the committed ones.
fn slave_consistent(root: &Path) {
    if root.join("slave").symlink_metadata().is_ok() && sync_end(root, 2) > 1 {
        assert_mirrored((root, 1), (root, 2));
        assert_no_payload_tail(root, 2);
    }
}

/// mirror-write reading a stream that ends or fails at every offset
/// class: an error, a slave as of its sync point equal to the master then
/// (whole batches only), and a rerun that converges. Short reads of any
/// size apply the stream as it is.
#[test]
fn mirror_write_with_its_input_cut_anywhere_keeps_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let root = master_with_batches(dir.path());
    let stream = stream_of(&root);
    let syncs = record_ends(&stream)
        .iter()
        .filter(|r| r.0 == mrec_type::SYNC)
        .count();
    assert!(syncs >= 3, "{syncs} batches");
    let slave = root.join("slave");
    let fs = &PathArg::from(slave.as_path());
    let offsets = stream_offsets(&stream);
    for &n in &offsets {
        for fault in [Fault::Eof, Fault::Errno(EIO)] {
            let input = FailAfter::new(&stream[..], n, fault);
            let r = mirror_write(fs, &write_options(), input, io::sink(), &mut io::sink());
            assert!(r.is_err(), "cut at {n} ({fault:?}) succeeded");
            slave_consistent(&root);
        }
    }
    for chunk in [1, 13, 4096] {
        let input = FailAfter::short(&stream[..], chunk);
        mirror_write(fs, &write_options(), input, io::sink(), &mut io::sink()).unwrap();
        assert!(assert_mirrored((&root, 1), (&root, 2)) > 1);
    }
}

/// mirror-read writing into an output that fails or stops taking bytes at
/// every offset class: an error, and what reached the output is exactly
/// the start of the stream it writes whole (short writes included).
#[test]
fn mirror_read_with_its_output_cut_anywhere_sends_a_prefix_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let root = master_with_batches(dir.path());
    let stream = stream_of(&root);
    let master = root.join("master");
    let fs = &PathArg::from(master.as_path());
    let read = |out: &mut dyn io::Write| {
        mirror_read(fs, &read_options(false), io::empty(), out, &mut io::sink())
    };
    for chunk in [1, 7, 4096] {
        let mut out = FailAfter::short(Vec::new(), chunk);
        read(&mut out).unwrap();
        assert!(out.into_inner() == stream, "short writes of {chunk}");
    }
    for n in stream_offsets(&stream) {
        for fault in [Fault::Eof, Fault::Errno(EIO)] {
            let mut out = FailAfter::new(Vec::new(), n, fault);
            let e = read(&mut out).unwrap_err();
            assert!(
                matches!(e, MirrorError::Write(_) | MirrorError::ShortWrite { .. }),
                "at {n}: {e}"
            );
            let sent = out.into_inner();
            assert!(sent == stream[..n], "at {n} ({fault:?}): not a prefix");
        }
    }
}

/// Destroys the slave PFS#2 and removes its link, for a copy from scratch.
fn remove_slave(root: &Path) {
    let slave = root.join("slave");
    if slave.symlink_metadata().is_ok() {
        open(root, 2).destroy().unwrap();
        fs::remove_file(slave).unwrap();
    }
}

/// Two-way: mirror-read reading its target's replies (PFSD and UPDATE per
/// batch) cut at every offset class fails exactly when it needed a reply
/// past the cut, and the target, a mirror-write on the other end, keeps
/// whole batches; a whole run copies everything.
#[test]
fn mirror_read_with_its_replies_cut_anywhere_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let root = master_with_batches(dir.path());
    let master = root.join("master");
    let slave = root.join("slave");
    let pfsd = doalign(PFSD_REC_SIZE);
    let update = doalign(UPDATE_REC_SIZE);
    let batch = pfsd + update;
    let mut offsets = vec![0, 1, pfsd - 1, pfsd, pfsd + 1, batch - 1, batch + 1];
    offsets.extend([2 * batch - 1, 2 * batch, 2 * batch + pfsd + 3]);
    offsets.push(usize::MAX);
    for n in offsets {
        for fault in [Fault::Eof, Fault::Errno(EIO)] {
            remove_slave(&root);
            let (source_end, target_end) = UnixStream::pair().unwrap();
            let target = {
                let fs = PathArg::from(slave.as_path());
                std::thread::spawn(move || {
                    let o = WriteOptions {
                        two_way: true,
                        ..write_options()
                    };
                    let input = target_end.try_clone().unwrap();
                    mirror_write(&fs, &o, input, target_end, &mut io::sink())
                })
            };
            let mut replies = FailAfter::new(source_end.try_clone().unwrap(), n, fault).chunked(5);
            let r = mirror_read(
                &PathArg::from(master.as_path()),
                &read_options(true),
                &mut replies,
                &source_end,
                &mut io::sink(),
            );
            source_end.shutdown(std::net::Shutdown::Both).unwrap();
            let _ = target.join().unwrap();
            assert_eq!(
                r.is_err(),
                replies.tripped(),
                "replies cut at {n} ({fault:?}): {r:?}"
            );
            slave_consistent(&root);
        }
    }
    // The last, uncut run copied everything.
    assert_mirrored((&root, 1), (&root, 2));
    assert!(as_of(&root, 2, u64::MAX) == as_of(&root, 1, u64::MAX));
}

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
    let bytes = |n: usize, salt: u8| -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8) ^ ((i >> 9) as u8) ^ salt)
            .collect()
    };
    tree(
        dir,
        [
            ("empty", bytes(0, 0)),
            ("small", bytes(100, 1)),
            ("sub/block", bytes(16384 + 5, 2)),
            ("sub/large", bytes(3 << 19, 3)),
        ],
    )
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
        &PathArg::from(pfs),
        ImportOptions::default(),
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

/// Asserts the master holds each file of `tree` whole or not at all
/// (never a torn one), and exactly `skipped` of them not; the payload
/// file holds nothing past its committed size.
fn assert_whole_or_skipped(root: &Path, master: &Path, tree: &Path, out: &Path, skipped: u64) {
    let got = exported(master, out);
    let want = files(tree);
    for (name, bytes) in &got {
        let w = want.iter().find(|(n, _)| n == name);
        assert!(
            w.is_some_and(|(_, b)| b == bytes),
            "{name} was imported torn or from nowhere"
        );
    }
    assert_eq!((want.len() - got.len()) as u64, skipped, "{got:?}");
    assert_no_payload_tail(root, 1);
}

/// EIO at any offset of a file: that file is skipped (its previous
/// version, here none, stays) and the rest of the tree imported; the
/// payload bytes the skipped file appended are taken back; a rerun
/// imports everything.
#[test]
fn a_file_failing_with_eio_is_skipped_and_the_rest_imported() {
    let dir = tempfile::tempdir().unwrap();
    let tree = source_tree(dir.path());
    for (i, n) in IMPORT_OFFSETS.into_iter().enumerate() {
        let root = store_with_master(dir.path(), &format!("s{i}"));
        let master = root.join("master");
        let s = import_through(&tree, &master, &|f| FailAfter::new(f, n, Fault::Errno(EIO)))
            .unwrap_or_else(|e| panic!("at {n}: {e}"));
        assert!(s.skipped > 0 || n > 3 << 19, "at {n}: nothing skipped");
        let out = dir.path().join(format!("out{i}"));
        assert_whole_or_skipped(&root, &master, &tree, &out, s.skipped);
        let s = import_through(&tree, &master, &|f| FailAfter::short(f, usize::MAX)).unwrap();
        assert_eq!(s.skipped, 0);
        let again = dir.path().join(format!("again{i}"));
        assert!(exported(&master, &again) == files(&tree), "at {n}");
    }
}

/// A file that ends early without its stat changing (a short file on a
/// filesystem that misreports its size) is read again like a file that
/// changed, and then skipped: never imported with zeros in place of its
/// tail. A file that had a version keeps it.
#[test]
fn a_file_ending_early_is_skipped_instead_of_storing_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let tree = source_tree(dir.path());
    let root = store_with_master(dir.path(), "s");
    let master = root.join("master");
    import_through(&tree, &master, &|f| FailAfter::short(f, usize::MAX)).unwrap();
    // Every file rewritten, so each is read again.
    for (name, _) in files(&tree) {
        let p = tree.join(&name);
        let mut bytes = fs::read(&p).unwrap();
        bytes.iter_mut().for_each(|b| *b ^= 0x5a);
        fs::write(&p, bytes).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for (i, n) in IMPORT_OFFSETS.into_iter().enumerate() {
        let s = import_through(&tree, &master, &|f| FailAfter::new(f, n, Fault::Eof))
            .unwrap_or_else(|e| panic!("at {n}: {e}"));
        let out = dir.path().join(format!("x{i}"));
        let got = exported(&master, &out);
        let want = files(&tree);
        // Each file is the new one whole, or the old one kept.
        let mut kept = 0;
        for (name, bytes) in &got {
            let new = want.iter().find(|(n, _)| n == name).map(|(_, b)| b);
            if new != Some(bytes) {
                kept += 1;
                let unflipped: Vec<u8> = bytes.iter().map(|b| b ^ 0x5a).collect();
                assert_eq!(new, Some(&unflipped), "at {n}: {name} torn");
            }
        }
        assert_eq!(got.len(), want.len(), "at {n}");
        assert!(s.skipped > 0 || n >= 3 << 19, "at {n}: nothing skipped");
        assert!(kept as u64 <= s.skipped, "at {n}");
        assert_no_payload_tail(&root, 1);
    }
}

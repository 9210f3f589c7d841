//! `hammer verify`: a clean master with history
//! and its slave verify clean; each class of damage, made on a copy of a
//! store, is reported with the record's key and exit status 1, and one
//! unreadable payload hides none of the rest; what cannot be read at all
//! exits 2 and never says "0 problems" (as a scrub that could not read a
//! device once reported a clean pool).

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;
use hammer_mirror::ondisk::rectype;
use hammer_mirror::pfs::store::DB_NAME;
use hammer_mirror::wire::crc::crc32c;
use rusqlite::params;

/// A copy of a master with history, to damage, in `dir/copy`.
fn copy_of_master(dir: &Path) -> PathBuf {
    copy_store(&master_with_history(dir), &dir.join("copy"))
}

/// `hammer verify <arg>`: exit status, stdout, stderr.
fn verify(arg: &Path) -> (i32, String, String) {
    let out = run(&["verify", arg.to_str().unwrap()]);
    (
        out.status.code().unwrap(),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// The summary line's counts: records, inodes, entries, bytes, problems.
fn summary(stdout: &str) -> [u64; 5] {
    let line = stdout.lines().last().unwrap();
    let n: Vec<u64> = line
        .split(", ")
        .map(|f| f.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(n.len(), 5, "{line}");
    [n[0], n[1], n[2], n[3], n[4]]
}

/// Asserts a damaged copy verifies with exit 1 and shows `line`.
fn assert_problem(pfs: &Path, line: &str) -> String {
    let (code, out, err) = verify(pfs);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.lines().any(|l| l == line), "want {line}\n{out}{err}");
    out
}

#[test]
fn a_master_with_history_and_its_slave_verify_clean() {
    let dir = tempfile::tempdir().unwrap();
    let (root, first) = history(dir.path());
    let m = root.join("master");
    let sync = sync_end(&root, 1);
    let (code, out, err) = verify(&m);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "Verifying {} (PFS#1) as of {sync:#018x}\n",
            m.display()
        )),
        "{out}"
    );
    let [records, inodes, entries, bytes, problems] = summary(&out);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_eq!(problems, 0);
    // Every version: both imports' records, the removed file's included.
    assert_eq!(records, rows(&root).len() as u64);
    assert_eq!((inodes, entries), (7, 6), "{out}");
    assert!(bytes > 1_250_000, "{out}");

    // As of the first import: the removed file is back.
    let (code, out, _) = verify(Path::new(&format!("{}@@{first:#018x}", m.display())));
    assert_eq!(code, 0, "{out}");
    assert_eq!(summary(&out)[1..3], [8, 7], "{out}");

    let s = root.join("slave");
    copy_quietly(&m, &s);
    let (code, slave_out, err) = verify(&s);
    assert_eq!(code, 0, "{slave_out}{err}");
    assert!(
        slave_out.starts_with(&format!(
            "Verifying {} (PFS#2) as of {:#018x}\n",
            s.display(),
            sync_end(&root, 2)
        )),
        "{slave_out}"
    );
    // A mirror holds the same records.
    assert_eq!(summary(&slave_out), [records, inodes, entries, bytes, 0]);

    let (code, out, _) = verify(&root);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with(&format!("Verifying {} (PFS#0)", root.display())));
}

#[test]
fn a_flipped_byte_in_the_payload_file_fails_the_data_crc() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    let medium = live(&root, obj_of(&root, "medium"), rectype::DATA);
    let victim = &medium[1];
    flip_payload_byte(&root, victim.boff.unwrap() + 100);
    let out = assert_problem(
        &root.join("master"),
        &format!(
            "{}: payload fails its data CRC",
            problem_at(&root, &victim.leaf)
        ),
    );
    assert_eq!(summary(&out)[4], 1, "{out}");
}

#[test]
fn a_flipped_byte_in_an_inline_payload_fails_the_data_crc() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    let ino = &live(&root, obj_of(&root, "empty"), rectype::INODE)[0];
    let mut data = ino.data.clone().unwrap();
    // nlinks: inside the 112 bytes the CRC covers, and no other check's.
    data[72] ^= 0x10;
    set_data(&root, ino, &data);
    let out = assert_problem(
        &root.join("master"),
        &format!(
            "{}: payload fails its data CRC",
            problem_at(&root, &ino.leaf)
        ),
    );
    assert_eq!(summary(&out)[4], 1, "{out}");
}

#[test]
fn a_dropped_inode_row_leaves_file_data_without_an_inode() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    let sync = sync_end(&root, 1);
    let inner = obj_of(&root, "inner");
    let ino = &live(&root, inner, rectype::INODE)[0];
    db(&root)
        .execute("DELETE FROM rec WHERE k = ?1", [&ino.k])
        .unwrap();
    let data = &live(&root, inner, rectype::DATA)[0];
    let out = assert_problem(
        &root.join("master"),
        &format!(
            "{}: file data of object {inner:#018x}, which has no inode as of {sync:#018x}",
            problem_at(&root, &data.leaf)
        ),
    );
    // Its entry in sub/ names it too.
    assert!(
        out.contains(&format!("entry 'inner' names object {inner:#018x}")),
        "{out}"
    );
}

#[test]
fn an_entry_whose_inode_row_is_gone_is_an_orphan() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    let sync = sync_end(&root, 1);
    let empty = obj_of(&root, "empty");
    let ino = &live(&root, empty, rectype::INODE)[0];
    db(&root)
        .execute("DELETE FROM rec WHERE k = ?1", [&ino.k])
        .unwrap();
    let entry = entry_named(&root, "empty");
    let out = assert_problem(
        &root.join("master"),
        &format!(
            "{}: entry 'empty' names object {empty:#018x}, which has no inode as of {sync:#018x}",
            problem_at(&root, &entry.leaf)
        ),
    );
    assert_eq!(summary(&out)[4], 1, "{out}");
}

#[test]
fn a_truncated_payload_file_reports_every_payload_past_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let clean = master_with_history(dir.path());
    let (_, clean_out, _) = verify(&clean.join("master"));
    let root = copy_store(&clean, &dir.path().join("copy"));
    let file = root.join(".hammer-store.pfs00001.0");
    let cut = fs::metadata(&file).unwrap().len() / 2;
    fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let lost: Vec<Row> = rows(&root)
        .into_iter()
        .filter(|r| {
            r.boff
                .is_some_and(|o| o as u64 + r.leaf.data_len as u64 > cut)
        })
        .collect();
    assert!(lost.len() > 10, "{}", lost.len());
    let (code, out, err) = verify(&root.join("master"));
    assert_eq!(code, 1, "{out}{err}");
    for r in &lost {
        let o = r.boff.unwrap() as u64;
        let line = format!(
            "{}: payload at bytes {o}..{} of .hammer-store.pfs00001.0 lies beyond the file's end at {cut} (truncated)",
            problem_at(&root, &r.leaf),
            o + r.leaf.data_len as u64
        );
        assert!(out.lines().any(|l| l == line), "want {line}\n{out}");
    }
    // Every record was still read: none hidden behind the first loss.
    let (s, c) = (summary(&out), summary(&clean_out));
    assert_eq!(s[..3], c[..3], "{out}");
    assert_eq!(s[4], lost.len() as u64, "{out}");
}

#[test]
fn a_payload_beyond_the_committed_size_hides_none_of_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    let committed: i64 = db(&root)
        .query_row("SELECT size FROM blob WHERE pfs = 1", [], |r| r.get(0))
        .unwrap();
    // The first block of `big` now points past the committed size; a later
    // block of the same file gets a flipped byte.
    let big = live(&root, obj_of(&root, "big"), rectype::DATA);
    let (moved, flipped) = (&big[0], &big[big.len() - 2]);
    db(&root)
        .execute(
            "UPDATE rec SET boff = ?1 WHERE k = ?2",
            params![committed - 10, &moved.k],
        )
        .unwrap();
    // And one names no place at all.
    let nowhere = &big[3];
    db(&root)
        .execute("UPDATE rec SET boff = -5 WHERE k = ?1", [&nowhere.k])
        .unwrap();
    flip_payload_byte(&root, flipped.boff.unwrap());
    let len = moved.leaf.data_len as i64;
    let out = assert_problem(
        &root.join("master"),
        &format!(
            "{}: payload at bytes {}..{} of .hammer-store.pfs00001.0 lies beyond the committed size {committed}",
            problem_at(&root, &moved.leaf),
            committed - 10,
            committed - 10 + len
        ),
    );
    assert!(
        out.contains(&format!(
            "{}: payload fails its data CRC",
            problem_at(&root, &flipped.leaf)
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{}: payload offset -5 or length 16384 is negative",
            problem_at(&root, &nowhere.leaf)
        )),
        "{out}"
    );
    assert_eq!(summary(&out)[4], 3, "{out}");
}

#[test]
fn records_with_impossible_tids_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    let big = live(&root, obj_of(&root, "big"), rectype::DATA);
    let mut deleted_first = big[3].leaf;
    deleted_first.base.delete_tid = deleted_first.base.create_tid;
    set_leaf(&root, &big[3], &deleted_first);
    let mut never_created = big[6].leaf;
    never_created.base.create_tid = 0;
    set_leaf(&root, &big[6], &never_created);
    assert_problem(
        &root.join("master"),
        &format!(
            "{}: deleted at or before its creation (create_tid >= delete_tid)",
            problem_at(&root, &deleted_first)
        ),
    );
    let out = assert_problem(
        &root.join("master"),
        &format!("{}: create_tid is 0", problem_at(&root, &never_created)),
    );
    assert_eq!(summary(&out)[4], 2, "{out}");
}

#[test]
fn a_payload_of_the_wrong_length_and_an_undecodable_inode_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    let empty = obj_of(&root, "empty");
    let ino = &live(&root, empty, rectype::INODE)[0];
    db(&root)
        .execute(
            "UPDATE rec SET data = substr(data, 1, 100) WHERE k = ?1",
            [&ino.k],
        )
        .unwrap();
    assert_problem(
        &root.join("master"),
        &format!(
            "{}: payload is 100 bytes, its leaf says 128",
            problem_at(&root, &ino.leaf)
        ),
    );
    let out = assert_problem(
        &root.join("master"),
        &format!(
            "{}: payload is not a version-1 inode of 128 bytes",
            problem_at(&root, &ino.leaf)
        ),
    );
    // And so the entry names no inode.
    assert!(out.contains("entry 'empty' names object"), "{out}");
    assert_eq!(summary(&out)[4], 3, "{out}");
}

#[test]
fn a_data_record_ending_before_its_length_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    let first = &live(&root, obj_of(&root, "big"), rectype::DATA)[0];
    let mut leaf = first.leaf;
    leaf.base.key = 100;
    set_leaf(&root, first, &leaf);
    let out = assert_problem(
        &root.join("master"),
        &format!(
            "{}: data record of 16384 bytes cannot end at offset 100",
            problem_at(&root, &leaf)
        ),
    );
    assert_eq!(summary(&out)[4], 1, "{out}");
}

#[test]
fn a_leaf_that_cannot_be_read_stops_the_scan_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    let last = rows(&root).pop().unwrap();
    db(&root)
        .execute("UPDATE rec SET leaf = x'00112233' WHERE k = ?1", [&last.k])
        .unwrap();
    let (code, out, err) = verify(&root.join("master"));
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.starts_with("hammer: verify: cannot read the records from lo=")
            && err.ends_with(": Input/output error; they were not checked\n"),
        "{err}"
    );
    assert!(!out.contains("problems"), "{out}");
}

#[test]
fn file_data_beyond_the_inode_size_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    let medium = obj_of(&root, "medium");
    let ino = &live(&root, medium, rectype::INODE)[0];
    // Size 100 with a CRC that matches: only the data records disagree.
    let mut data = ino.data.clone().unwrap();
    data[80..88].copy_from_slice(&100u64.to_le_bytes());
    let mut leaf = ino.leaf;
    leaf.data_crc = crc32c(&data[..112]);
    set_data(&root, ino, &data);
    set_leaf(&root, ino, &leaf);
    let blocks = live(&root, medium, rectype::DATA);
    assert_eq!(blocks.len(), 2);
    let out = assert_problem(
        &root.join("master"),
        &format!(
            "{}: data up to offset 32768 lies beyond the file's size 100 (its last block ends at 112)",
            problem_at(&root, &blocks[1].leaf)
        ),
    );
    assert_eq!(summary(&out)[4], 2, "{out}");
}

#[test]
fn records_out_of_key_order_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    let big = live(&root, obj_of(&root, "big"), rectype::DATA);
    let (before, row) = (&big[4], &big[5]);
    // The leaf says an earlier offset than the row's place in the table.
    let mut leaf = row.leaf;
    leaf.base.key = before.leaf.base.key - 1;
    set_leaf(&root, row, &leaf);
    let out = assert_problem(
        &root.join("master"),
        &format!(
            "{}: out of key order after the record before it ({})",
            problem_at(&root, &leaf),
            key_text(&before.leaf)
        ),
    );
    assert_eq!(summary(&out)[4], 1, "{out}");
}

#[test]
fn the_database_quick_check_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    // A constraint PFS#1's row of the payload file table violates: a
    // database SQLite finds inconsistent that still reads.
    db(&root)
        .execute_batch(
            "PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = 'CREATE TABLE blob(pfs INTEGER PRIMARY KEY, \
             gen INTEGER NOT NULL, size INTEGER NOT NULL CHECK(pfs <> 1))' WHERE name = 'blob';",
        )
        .unwrap();
    let out = assert_problem(
        &root.join("master"),
        "store database: CHECK constraint failed in blob",
    );
    assert_eq!(summary(&out)[4], 1, "{out}");
}

#[test]
fn what_cannot_be_read_exits_2_without_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let root = master_with_history(dir.path());
    let m = root.join("master");
    let garbage = copy_store(&root, &dir.path().join("garbage"));
    // Garbage alone: no WAL whose pages would still make a database.
    for wal in ["-wal", "-shm"] {
        let _ = fs::remove_file(garbage.join(format!("{DB_NAME}{wal}")));
    }
    fs::write(garbage.join(DB_NAME), vec![0x5a; 8192]).unwrap();
    let plain = root.join("plain");
    fs::create_dir(&plain).unwrap();
    let beyond = format!("{}@@0xffffffffffffffff", m.display());
    let cases: [(&Path, &str); 5] = [
        (&root.join("missing"), "Failed to open"),
        (dir.path(), "Cannot access"),
        (&garbage.join("master"), "file is not a database"),
        (&plain, "a plain directory of the store"),
        (Path::new(&beyond), "beyond the master's newest"),
    ];
    for (path, want) in cases {
        let (code, out, err) = verify(path);
        assert_eq!(code, 2, "{path:?}: {out}{err}");
        assert!(err.starts_with("hammer: ") && err.contains(want), "{err}");
        assert!(!out.contains("problems"), "{path:?}: {out}");
    }
    let out = run(&["verify"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), "hammer verify <pfs-path>[@@<tid>]\n");
}

/// Each damaged record names its file: by its path as of the TID
/// verified, or as no longer linked then (a file removed since).
#[test]
fn damaged_records_name_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    let sync = sync_end(&root, 1);
    // `small` was removed by the second import: its records are history.
    let small = rows(&root)
        .into_iter()
        .find(|r| {
            r.leaf.base.rec_type == rectype::DATA && r.leaf.base.delete_tid != 0 && r.data.is_some()
        })
        .expect("the removed file's data record");
    let mut data = small.data.clone().unwrap();
    data[7] ^= 1;
    set_data(&root, &small, &data);
    let inner = &live(&root, obj_of(&root, "inner"), rectype::DATA)[0];
    flip_payload_byte(&root, inner.boff.unwrap() + 3);
    let out = assert_problem(
        &root.join("master"),
        &format!(
            "{} (no longer linked as of {sync:#018x}): payload fails its data CRC",
            key_text(&small.leaf)
        ),
    );
    assert!(
        out.contains(&format!(
            "{} /sub/inner: payload fails its data CRC",
            key_text(&inner.leaf)
        )),
        "{out}"
    );
    assert_eq!(summary(&out)[4], 2, "{out}");
}

/// export names the file of each damaged record too, by its path inside
/// the PFS, and still writes the rest (exit 1).
#[test]
fn export_names_the_file_of_a_damaged_record() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    let medium = live(&root, obj_of(&root, "medium"), rectype::DATA);
    flip_payload_byte(&root, medium[1].boff.unwrap() + 5);
    let ino = &live(&root, obj_of(&root, "empty"), rectype::INODE)[0];
    db(&root)
        .execute(
            "UPDATE rec SET data = substr(data, 1, 100) WHERE k = ?1",
            [&ino.k],
        )
        .unwrap();
    let out_dir = dir.path().join("out");
    let out = run(&[
        "export",
        root.join("master").to_str().unwrap(),
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let b = &medium[1].leaf.base;
    assert_stderr_has(
        &out,
        &format!(
            "hammer: export: object {:#018x} data record {:#018x}: payload fails its CRC (/medium)\n",
            b.obj_id, b.key
        ),
    );
    assert_stderr_has(
        &out,
        &format!(
            "hammer: export: inode {:#018x}: payload is not a version-1 inode of 128 bytes (/empty)\n",
            ino.leaf.base.obj_id
        ),
    );
    assert!(out_dir.join("sub/inner").is_file());
}

/// What a store's prune memo vouches for (store-format.md §3, §7) is
/// checked: a deleted record whose change TID was raised without being
/// listed in `raised`, and a memo whose buckets would destroy a record
/// below the TID it vouches for, are each reported; either would make
/// the next prune keep history its snapshots let go.
#[test]
fn a_prune_memo_that_vouches_for_what_is_not_so_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = copy_of_master(dir.path());
    let m = root.join("master");
    ok(&["prune", m.to_str().unwrap()]);
    let (code, out, err) = verify(&m);
    assert_eq!(code, 0, "{out}{err}");
    let memo: Vec<u8> = db(&root)
        .query_row("SELECT value FROM meta WHERE name = 'prune 1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(memo[24], 1, "the prune left a complete memo");
    let deleted: Vec<Row> = rows(&root)
        .into_iter()
        .filter(|r| r.leaf.base.delete_tid != 0 && r.leaf.base.rec_type == rectype::DATA)
        .collect();
    assert!(deleted.len() >= 2, "the history deletes file data");
    let raised = &deleted[0];
    let d = raised.leaf.base.delete_tid;
    db(&root)
        .execute(
            "UPDATE rec SET mtid = ?1 WHERE k = ?2",
            params![&(d + 1).to_be_bytes()[..], &raised.k],
        )
        .unwrap();
    let out = assert_problem(
        &m,
        &format!(
            "{}: store prune memo: deleted, its change TID raised above its delete TID, and not \
             listed in `raised`: a prune after a snapshot expires could keep it",
            problem_at(&root, &raised.leaf)
        ),
    );
    assert_eq!(summary(&out)[4], 1, "{out}");
    // One bucket from TID 1 to the memo's w: every deleted record below
    // it is one those buckets destroy.
    let mut one_bucket = memo[..25].to_vec();
    one_bucket.extend_from_slice(&1u64.to_be_bytes());
    one_bucket.extend_from_slice(&memo[16..24]);
    db(&root)
        .execute(
            "UPDATE meta SET value = ?1 WHERE name = 'prune 1'",
            params![one_bucket],
        )
        .unwrap();
    let out = assert_problem(
        &m,
        &format!(
            "{}: store prune memo: its buckets destroy it, yet it lies below the TID the memo \
             vouches for: the next prune would keep it",
            problem_at(&root, &deleted[1].leaf)
        ),
    );
    assert!(summary(&out)[4] >= 2, "{out}");
}

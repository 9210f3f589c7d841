//! `hammer mirror-verify` (operator's view, item 4): a master with history
//! and its slave (in another store) are identical as of the slave's sync
//! point, in few bytes; each kind of difference made on the slave behind
//! the store's back (a flipped payload byte, a record gone, a record the
//! master lacks, a differing delete_tid, different data with a valid CRC)
//! is found and named by its key, exit 1; pairs that cannot be compared
//! exit 2 with the reason. Over real ssh: tests/ssh_e2e.rs.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use hammer_mirror::ondisk::{rectype, LeafElm, LOCALIZE_MASK};
use hammer_mirror::wire::crc::crc32c;

/// A master with history (PFS#1 of `dir/st`) and its slave, PFS#1 of the
/// store `dir/sl`. Returns both store roots.
fn pair(dir: &Path) -> (PathBuf, PathBuf) {
    let st = master_with_history(dir);
    let sl = new_store(dir, "sl");
    copy_quietly(&st.join("master"), &sl.join("slave"));
    (st, sl)
}

/// `hammer mirror-verify <st>/master <sl>/slave` with `opts` before it:
/// exit status, stdout, stderr.
fn mirror_verify(opts: &[&str], st: &Path, sl: &Path) -> (i32, String, String) {
    let (m, s) = (st.join("master"), sl.join("slave"));
    let mut args = opts.to_vec();
    args.extend(["mirror-verify", m.to_str().unwrap(), s.to_str().unwrap()]);
    let out = run(&args);
    (
        out.status.code().unwrap(),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// A record's key as mirror-verify prints it: without the PFS bits (a
/// master and its slave are different PFSes), with the delete_tid.
fn key_of(leaf: &LeafElm) -> String {
    let mut l = *leaf;
    l.base.localization &= LOCALIZE_MASK;
    key_text(&l)
}

/// Asserts the pair differs in exactly `lines` (one per record).
fn assert_differs(st: &Path, sl: &Path, lines: &[String]) {
    let tid = sync_end(sl, 1);
    let (code, out, err) = mirror_verify(&[], st, sl);
    assert_eq!(code, 1, "{out}{err}");
    let got: Vec<&str> = out.lines().collect();
    let (last, found) = got.split_last().unwrap();
    assert_eq!(found, lines, "{out}");
    let n = lines.len();
    let records = if n == 1 {
        "1 record differs".to_string()
    } else {
        format!("{n} records differ")
    };
    assert!(
        last.starts_with(&format!("{records} as of {tid:#018x}, in ")),
        "{out}"
    );
    assert!(err.is_empty(), "{err}");
}

#[test]
fn a_slave_and_its_master_are_identical_in_few_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (st, sl) = pair(dir.path());
    let tid = sync_end(&sl, 1);
    let (code, out, err) = mirror_verify(&["-v"], &st, &sl);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, format!("identical as of {tid:#018x}\n"));
    // Each side: its hello and one top node, one request.
    for side in ["master", "slave"] {
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("mirror-verify: {side}'s side: ")))
            .unwrap_or_else(|| panic!("{err}"));
        let n: Vec<u64> = line
            .split(": ")
            .nth(2)
            .unwrap()
            .split(", ")
            .map(|f| f.split(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(n[0] < 1000 && n[1] < 100, "{line}");
    }
    // Without -v: stdout only.
    let (code, out2, err) = mirror_verify(&[], &st, &sl);
    assert_eq!((code, out2, err), (0, out, String::new()));
}

#[test]
fn a_flipped_payload_byte_on_the_slave_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let (st, sl) = pair(dir.path());
    let medium = live(&sl, obj_of(&sl, "medium"), rectype::DATA);
    let victim = &medium[0];
    flip_payload_byte(&sl, victim.boff.unwrap() + 100);
    assert_differs(
        &st,
        &sl,
        &[format!(
            "{}: data fails its CRC on the slave",
            key_of(&victim.leaf)
        )],
    );
}

#[test]
fn different_data_with_a_valid_crc_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let (st, sl) = pair(dir.path());
    let ino = &live(&sl, obj_of(&sl, "empty"), rectype::INODE)[0];
    let mut data = ino.data.clone().unwrap();
    data[72] ^= 0x10;
    set_data(&sl, ino, &data);
    // The CRC made again, as a careless or hostile writer would.
    let mut leaf = ino.leaf;
    leaf.data_crc = crc32c(&data[..112]);
    set_leaf(&sl, ino, &leaf);
    assert_differs(
        &st,
        &sl,
        &[format!("{}: different data", key_of(&ino.leaf))],
    );
}

#[test]
fn a_record_missing_on_the_slave_and_one_extra_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let (st, sl) = pair(dir.path());
    let big = live(&sl, obj_of(&sl, "big"), rectype::DATA);
    let gone = &big[3];
    db(&sl)
        .execute("DELETE FROM rec WHERE k = ?1", [&gone.k])
        .unwrap();
    // On the master this time: the slave holds a record the master lacks.
    let inner = live(&st, obj_of(&st, "inner"), rectype::DATA);
    let lacking = &inner[0];
    db(&st)
        .execute("DELETE FROM rec WHERE k = ?1", [&lacking.k])
        .unwrap();
    let mut want = [
        (gone.leaf, "missing on the slave"),
        (lacking.leaf, "extra on the slave"),
    ];
    want.sort_by_key(|(l, _)| (l.base.localization & LOCALIZE_MASK, l.base.obj_id));
    let lines: Vec<String> = want
        .iter()
        .map(|(l, what)| format!("{}: {what}", key_of(l)))
        .collect();
    assert_differs(&st, &sl, &lines);
}

#[test]
fn a_differing_delete_tid_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let (st, sl) = pair(dir.path());
    let tid = sync_end(&sl, 1);
    let ino = &live(&sl, obj_of(&sl, "medium"), rectype::INODE)[0];
    let mut leaf = ino.leaf;
    leaf.base.delete_tid = tid;
    set_leaf(&sl, ino, &leaf);
    // The master's version, not deleted, names the record.
    assert_differs(
        &st,
        &sl,
        &[format!(
            "{}: different delete_tid (master 0x0000000000000000, slave {tid:#018x})",
            key_of(&ino.leaf)
        )],
    );
}

#[test]
fn a_newer_batch_on_the_master_is_not_a_difference() {
    let dir = tempfile::tempdir().unwrap();
    let (st, sl) = pair(dir.path());
    // The master moves on; the slave is compared as of its sync point.
    let tree = dir.path().join("tree");
    std::fs::write(tree.join("later"), b"written after the copy").unwrap();
    ok(&[
        "import",
        tree.to_str().unwrap(),
        st.join("master").to_str().unwrap(),
    ]);
    let (code, out, err) = mirror_verify(&[], &st, &sl);
    assert_eq!(code, 0, "{out}{err}");
    // And after an incremental copy, as of the new sync point.
    copy_quietly(&st.join("master"), &sl.join("slave"));
    let tid = sync_end(&sl, 1);
    let (code, out, err) = mirror_verify(&[], &st, &sl);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, format!("identical as of {tid:#018x}\n"));
}

#[test]
fn pairs_that_cannot_be_compared_exit_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (st, sl) = pair(dir.path());
    let (m, s) = (st.join("master"), sl.join("slave"));
    let (m, s) = (m.to_str().unwrap(), s.to_str().unwrap());
    let other = store_with_master(dir.path(), "other");
    let o = other.join("master");
    let o = o.to_str().unwrap();
    let copy_of_other = other.join("slave");
    copy_quietly(Path::new(o), &copy_of_other);
    let nope = dir.path().join("nope");
    let cases = [
        (
            vec![s, m],
            format!("hammer: mirror-verify: {m} is not a slave PFS: give the master first, its slave second\n"),
        ),
        (
            vec![o, s],
            format!(
                "hammer: mirror-verify: {o} and {s} are not a master and its slave: \
                 their shared uuids {} and {} differ\n",
                shared_uuid(Path::new(o)),
                shared_uuid(Path::new(s))
            ),
        ),
        (
            vec![s, s],
            format!("hammer: mirror-verify: {s} and {s} are the same PFS\n"),
        ),
        (
            vec![m, nope.to_str().unwrap()],
            format!(
                "hammer: mirror-verify: slave {}: Failed to open {}: No such file or directory\n",
                nope.display(),
                nope.display()
            ),
        ),
        (
            vec![m],
            "hammer mirror-verify [[user@]host:]<master-pfs> [[user@]host:]<slave-pfs>\n"
                .to_string(),
        ),
    ];
    for (args, want) in cases {
        let mut argv = vec!["mirror-verify"];
        argv.extend(&args);
        let out = run(&argv);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.starts_with(&want), "{args:?}: want {want}got {err}");
    }
    // The slave of another master compared with it: fine.
    let (code, _, err) = {
        let out = run(&["mirror-verify", o, copy_of_other.to_str().unwrap()]);
        (out.status.code().unwrap(), (), text(&out.stderr))
    };
    assert_eq!(code, 0, "{err}");
}

#[test]
fn the_serving_side_refuses_hostile_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (st, _) = pair(dir.path());
    let m = st.join("master");
    // A request of an unknown kind, then nothing.
    let mut req = Vec::new();
    req.extend(0x99u32.to_le_bytes());
    req.extend(0u32.to_le_bytes());
    req.extend(0u64.to_le_bytes());
    let out = run_with_input(
        hammer().args(["mirror-verify-serve", m.to_str().unwrap()]),
        &req,
    );
    assert_eq!(out.status.code(), Some(2));
    // Its hello (16 + 300 bytes), then an ERROR naming the problem.
    let answer = &out.stdout[316..];
    assert_eq!(&answer[..4], &4u32.to_le_bytes());
    assert_eq!(
        String::from_utf8_lossy(&answer[16..]),
        "bad request: unknown message kind 0x99"
    );
    // Nodes asked before a scan.
    let mut req = Vec::new();
    req.extend(0x11u32.to_le_bytes());
    req.extend(0u32.to_le_bytes());
    req.extend(0u64.to_le_bytes());
    let out = run_with_input(
        hammer().args(["mirror-verify-serve", m.to_str().unwrap()]),
        &req,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("bad request: nodes asked before a scan")
    );
    // A closed channel before any request: a clean end.
    let out = run_with_input(
        hammer().args(["mirror-verify-serve", m.to_str().unwrap()]),
        b"",
    );
    assert_eq!(out.status.code(), Some(0));
}

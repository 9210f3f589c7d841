//! `hammer mirror-verify` (operator's view, item 4): a master with history
//! and its slave (in another store) are identical as of the slave's sync
//! point, in few bytes; each kind of difference made on the slave behind
//! the store's back (a flipped payload byte, a record gone, a record the
//! master lacks, a differing delete_tid, different data with a valid CRC)
//! is found and named by its key, exit 1; whatever `hammer verify` reports
//! of either side is reported too, even where both sides hold the same,
//! locally and through an ssh-remote forced command; pairs that cannot be
//! compared exit 2 with the reason; a hostile client cannot make the
//! serving side grow. Over real ssh: tests/ssh_e2e.rs.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Stdio};

use crate::common::*;
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
    mirror_verify_via(Via::Local, opts, st, sl)
}

/// How mirror-verify reaches the pair's sides.
#[derive(Clone, Copy)]
enum Via<'a> {
    Local,
    /// The master as a remote side, through this stand-in for ssh.
    RemoteMaster(&'a Path),
    RemoteSlave(&'a Path),
}

/// `mirror_verify` with a side reached as `via` says.
fn mirror_verify_via(via: Via<'_>, opts: &[&str], st: &Path, sl: &Path) -> (i32, String, String) {
    let (m, s) = (st.join("master"), sl.join("slave"));
    let (m, s) = (m.display().to_string(), s.display().to_string());
    let (m, s, rsh) = match via {
        Via::Local => (m, s, None),
        Via::RemoteMaster(rsh) => (format!("localhost:{m}"), s, Some(rsh)),
        Via::RemoteSlave(rsh) => (m, format!("localhost:{s}"), Some(rsh)),
    };
    let mut cmd = hammer();
    cmd.args(opts).args(["mirror-verify", &m, &s]);
    if let Some(rsh) = rsh {
        cmd.env("HAMMER_RSH", rsh);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap(),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// A stand-in for ssh that runs the remote command as sshd runs the
/// authorized_keys forced command `hammer ssh-remote mirror-verify-serve
/// <prefix>`: the client's command line in SSH_ORIGINAL_COMMAND.
fn forced_rsh(dir: &Path, prefix: &Path) -> PathBuf {
    let script = dir.join("forced-rsh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nwhile [ \"$1\" != hammer ]; do shift; done\nSSH_ORIGINAL_COMMAND=\"$*\" exec '{}' ssh-remote mirror-verify-serve '{}'\n",
            env!("CARGO_BIN_EXE_hammer"),
            prefix.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// A record's key as mirror-verify prints it: without the PFS bits (a
/// master and its slave are different PFSes), with the delete_tid.
fn key_of(leaf: &LeafElm) -> String {
    let mut l = *leaf;
    l.base.localization &= LOCALIZE_MASK;
    key_text(&l)
}

/// A line of what `hammer verify` reports of the side `role` (the PFS#1
/// of store `root`), as mirror-verify prints it: verify's own line after
/// the side's name.
fn problem(role: &str, root: &Path, leaf: &LeafElm, what: &str) -> String {
    format!("{role}: {}: {what}", problem_at(root, leaf))
}

/// Asserts the pair differs in exactly `lines` (one per record) and shows
/// `problems` first (each side's, as `problem` makes them).
fn assert_found(st: &Path, sl: &Path, problems: &[String], lines: &[String]) {
    check_found(mirror_verify(&[], st, sl), sync_end(sl, 1), problems, lines);
}

/// Asserts a mirror-verify run (exit status, stdout, stderr) found
/// `problems` and `lines` as of `tid`, and nothing else.
fn check_found(
    (code, out, err): (i32, String, String),
    tid: u64,
    problems: &[String],
    lines: &[String],
) {
    assert_eq!(code, 1, "{out}{err}");
    let got: Vec<&str> = out.lines().collect();
    let (last, found) = got.split_last().unwrap();
    let want: Vec<&String> = problems.iter().chain(lines).collect();
    assert_eq!(found, want, "{out}");
    let records = match lines.len() {
        0 => format!("no record differs as of {tid:#018x}"),
        1 => format!("1 record differs as of {tid:#018x}, in "),
        n => format!("{n} records differ as of {tid:#018x}, in "),
    };
    assert!(last.starts_with(&records), "{out}");
    let on = |role: &str| {
        problems
            .iter()
            .filter(|p| p.starts_with(&format!("{role}: ")))
            .count()
    };
    let counts: Vec<String> = [("master", on("master")), ("slave", on("slave"))]
        .into_iter()
        .filter(|&(_, n)| n > 0)
        .map(|(role, n)| match n {
            1 => format!("1 problem on the {role}"),
            n => format!("{n} problems on the {role}"),
        })
        .collect();
    if counts.is_empty() {
        assert!(!last.contains(';'), "{out}");
    } else {
        assert!(last.ends_with(&format!("; {}", counts.join(", "))), "{out}");
    }
    assert!(err.is_empty(), "{err}");
}

/// Asserts the pair differs in exactly `lines` (one per record), neither
/// side with a problem.
fn assert_differs(st: &Path, sl: &Path, lines: &[String]) {
    assert_found(st, sl, &[], lines);
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
    assert_found(
        &st,
        &sl,
        &[problem(
            "slave",
            &sl,
            &victim.leaf,
            "payload fails its data CRC",
        )],
        &[format!("{}: different data", key_of(&victim.leaf))],
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
    let obj = obj_of(&sl, "medium");
    let ino = &live(&sl, obj, rectype::INODE)[0];
    let mut leaf = ino.leaf;
    leaf.base.delete_tid = tid;
    set_leaf(&sl, ino, &leaf);
    // As of the TID the slave's file has no inode: what verify of the
    // slave says of its data and of its entry.
    let no_inode = format!("which has no inode as of {tid:#018x}");
    let mut problems: Vec<String> = live(&sl, obj, rectype::DATA)
        .iter()
        .map(|d| {
            let what = format!("file data of object {obj:#018x}, {no_inode}");
            problem("slave", &sl, &d.leaf, &what)
        })
        .collect();
    let what = format!("entry 'medium' names object {obj:#018x}, {no_inode}");
    problems.push(problem(
        "slave",
        &sl,
        &entry_named(&sl, "medium").leaf,
        &what,
    ));
    // The master's version, not deleted, names the record.
    assert_found(
        &st,
        &sl,
        &problems,
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

/// A record whose payload fails its data CRC (one bit of the leaf's
/// data_crc flipped: the payload itself is the master's) is what `hammer
/// verify` of that side reports, and so does mirror-verify, on either
/// side, local or remote through a forced command. Before, the digest left
/// data_crc out and CRCs were checked only in ranges that differed: the
/// pair was "identical", exit 0.
#[test]
fn a_record_failing_its_data_crc_is_never_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (st, sl) = pair(dir.path());
    let rsh = forced_rsh(dir.path(), dir.path());
    for (role, root) in [("slave", &sl), ("master", &st)] {
        let victim = &live(root, obj_of(root, "medium"), rectype::DATA)[0];
        let mut leaf = victim.leaf;
        leaf.data_crc ^= 1 << 7;
        set_leaf(root, victim, &leaf);
        let (code, out, _) = run_verify(&root.join(role));
        assert_eq!(code, 1, "{out}");
        let want = [problem(
            role,
            root,
            &victim.leaf,
            "payload fails its data CRC",
        )];
        for via in [Via::Local, Via::RemoteMaster(&rsh), Via::RemoteSlave(&rsh)] {
            let run = mirror_verify_via(via, &[], &st, &sl);
            check_found(run, sync_end(&sl, 1), &want, &[]);
        }
        set_leaf(root, victim, &victim.leaf);
    }
    let (code, out, err) = mirror_verify(&[], &st, &sl);
    assert_eq!(code, 0, "{out}{err}");
}

/// `hammer verify <pfs>`: exit status, stdout, stderr.
fn run_verify(pfs: &Path) -> (i32, String, String) {
    let out = run(&["verify", pfs.to_str().unwrap()]);
    (
        out.status.code().unwrap(),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// Damage the slave copied from its master (here: the inode of a file
/// gone from both, behind the stores' backs) leaves the two PFSes holding
/// the same records: no difference, but verify of each reports it, and so
/// does mirror-verify for each. Before: "identical", exit 0.
#[test]
fn damage_both_sides_share_is_reported_for_each() {
    let dir = tempfile::tempdir().unwrap();
    let (st, sl) = pair(dir.path());
    let tid = sync_end(&sl, 1);
    let mut want = Vec::new();
    for (role, root) in [("master", &st), ("slave", &sl)] {
        let ino = &live(root, obj_of(root, "inner"), rectype::INODE)[0];
        let entry = entry_named(root, "inner");
        db(root)
            .execute("DELETE FROM rec WHERE k = ?1", [&ino.k])
            .unwrap();
        let (code, out, _) = run_verify(&root.join(role));
        assert_eq!(code, 1, "{out}");
        // verify's own lines, in its order, each after the side's name.
        let lines: Vec<String> = out
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("lo="))
            .map(|l| format!("{role}: {l}"))
            .collect();
        let data = &live(root, ino.leaf.base.obj_id, rectype::DATA)[0];
        let orphan = format!(
            "entry 'inner' names object {:#018x}, which has no inode as of {tid:#018x}",
            ino.leaf.base.obj_id
        );
        assert!(
            lines.contains(&problem(role, root, &entry.leaf, &orphan)),
            "{out}"
        );
        let no_inode = format!(
            "file data of object {:#018x}, which has no inode as of {tid:#018x}",
            ino.leaf.base.obj_id
        );
        assert!(
            lines.contains(&problem(role, root, &data.leaf, &no_inode)),
            "{out}"
        );
        want.extend(lines);
    }
    assert_found(&st, &sl, &want, &[]);
}

/// A request to mirror-verify-serve, as a hostile client writes it: its
/// head and `entries`.
fn request(kind: u32, count: u32, arg: u64, entries: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(16 + entries.len());
    b.extend(kind.to_le_bytes());
    b.extend(count.to_le_bytes());
    b.extend(arg.to_le_bytes());
    b.extend(entries);
    b
}

/// A key range on the wire: `(after, last]`, `None` for an open end.
fn range(after: Option<[u8; 30]>, last: Option<[u8; 30]>) -> [u8; 64] {
    let mut r = [0; 64];
    r[..30].copy_from_slice(&after.unwrap_or([0; 30]));
    r[30..60].copy_from_slice(&last.unwrap_or([0; 30]));
    r[60] = u8::from(after.is_some());
    r[61] = u8::from(last.is_some());
    r
}

/// `n` ranges in key order and apart, each holding a key or two.
fn ranges_apart(n: u64) -> Vec<u8> {
    let key = |i: u64| {
        let mut k = [0; 30];
        k[..8].copy_from_slice(&i.to_be_bytes());
        k
    };
    (0..n)
        .flat_map(|i| range(Some(key(4 * i)), Some(key(4 * i + 2))))
        .collect()
}

/// Reads one answer of mirror-verify-serve: messages up to a NODES that is
/// not a full one (4096 nodes), an empty DIGESTS or an ERROR (`true`), or
/// the end of its output (`false`).
fn read_answer(out: &mut ChildStdout) -> bool {
    loop {
        let mut head = [0; 16];
        if out.read_exact(&mut head).is_err() {
            return false;
        }
        let kind = u32::from_le_bytes(head[..4].try_into().unwrap());
        let count = u32::from_le_bytes(head[4..8].try_into().unwrap()) as u64;
        let size = match kind {
            2 => 48,
            3 => 56,
            _ => 1,
        };
        let mut sink = std::io::sink();
        if std::io::copy(&mut out.take(count * size), &mut sink).unwrap() != count * size {
            return false;
        }
        match kind {
            2 if count != 4096 => return true,
            3 if count == 0 => return true,
            4 => return true,
            _ => {}
        }
    }
}

/// A hostile client of mirror-verify-serve, through an ssh-remote forced
/// command, sends the largest requests a side takes (and one larger than
/// that, and one whose ranges overlap): the serving process stays within
/// 64 MiB. Before, a side held a request's ranges and its whole answer:
/// one NODES_OF of 2^20 ranges (64 MiB on the wire) took it to hundreds
/// of MiB.
#[test]
fn a_hostile_client_cannot_make_the_serving_side_grow() {
    let dir = tempfile::tempdir().unwrap();
    let st = master_with_history(dir.path());
    let m = st.join("master");
    let tid = sync_end(&st, 1);
    let mut child = hammer()
        .args(["ssh-remote", "mirror-verify-serve"])
        .arg(dir.path())
        .env(
            "SSH_ORIGINAL_COMMAND",
            format!("hammer mirror-verify-serve {}", m.display()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poll = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering::Relaxed;
            while !done.load(Relaxed) {
                if let Some(kib) = rss::status_kib(pid, "VmHWM") {
                    peak.fetch_max(kib, Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    let sample = || {
        if let Some(kib) = rss::status_kib(pid, "VmHWM") {
            peak.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let mut input = child.stdin.take().unwrap();
    let mut output = child.stdout.take().unwrap();
    let mut hello = [0; 316];
    output.read_exact(&mut hello).unwrap();
    let max = 1 << 16;
    let all = range(None, None);
    for req in [
        request(0x10, 0, tid, &[]),
        // The most ranges a request may hold, for nodes and for records.
        request(0x11, max, 0, &ranges_apart(max.into())),
        request(0x12, max, 0, &ranges_apart(max.into())),
        request(0x11, 1, 0, &all),
    ] {
        input.write_all(&req).unwrap();
        input.flush().unwrap();
        assert!(read_answer(&mut output));
        sample();
    }
    // Then more than that, and ranges that overlap (each the whole key
    // space): refused on a bounded side, which ends there.
    for (count, entries) in [(1u32 << 20, all.repeat(1 << 20)), (2, all.repeat(2))] {
        let sent = input.write_all(&request(0x11, count, 0, &entries));
        let answered = sent.is_ok() && input.flush().is_ok() && read_answer(&mut output);
        sample();
        if !answered {
            break;
        }
    }
    drop(input);
    let status = child.wait().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    poll.join().unwrap();
    let kib = peak.load(std::sync::atomic::Ordering::Relaxed);
    assert!(kib > 0, "no VmHWM read");
    assert!(
        kib <= 64 * 1024,
        "the serving side reached {kib} KiB ({status})"
    );
}

/// Where a case of `single_bit_damage_verify_reports_is_never_identical`
/// flips its bit.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// Any bit of the record's leaf (its key, TIDs, sizes, CRC, ...).
    Leaf,
    /// A bit of the leaf's data_crc.
    DataCrc,
    /// A bit of the leaf's data_len.
    DataLen,
    /// A bit of the payload, inline or in the payload file.
    Payload,
}

/// Flips bit `bit` (taken modulo the target's size) of `row` of the
/// store `root` as `damage` says.
fn flip_bit(root: &Path, row: &Row, damage: Damage, bit: usize) {
    let mut raw = [0; LeafElm::SIZE];
    row.leaf.encode(&mut raw);
    let mut leaf = |at: usize| {
        raw[at / 8] ^= 1 << (at % 8);
        set_leaf(root, row, &LeafElm::decode(&raw));
    };
    let len = usize::try_from(row.leaf.data_len).unwrap_or(0);
    match damage {
        Damage::Leaf => leaf(bit % (8 * LeafElm::SIZE)),
        Damage::DataCrc => leaf(8 * 60 + bit % 32),
        Damage::DataLen => leaf(8 * 56 + bit % 32),
        Damage::Payload if len == 0 => leaf(bit % (8 * LeafElm::SIZE)),
        Damage::Payload => match (&row.data, row.boff) {
            (Some(data), _) if !data.is_empty() => {
                let mut data = data.clone();
                let at = bit % (8 * data.len());
                data[at / 8] ^= 1 << (at % 8);
                set_data(root, row, &data);
            }
            (_, Some(boff)) => {
                let file = root.join(".hammer-store.pfs00001.0");
                let mut bytes = fs::read(&file).unwrap();
                let at = bit % (8 * len);
                bytes[boff as usize + at / 8] ^= 1 << (at % 8);
                fs::write(&file, bytes).unwrap();
            }
            _ => leaf(bit % (8 * LeafElm::SIZE)),
        },
    }
}

/// Property: one bit flipped anywhere in one record of the master or of
/// the slave (its leaf, its data_crc or data_len, its payload) never
/// leaves the pair "identical" (exit 0) when `hammer verify` of the
/// damaged side reports it. On the old code a flipped data_crc bit did.
#[test]
fn single_bit_damage_verify_reports_is_never_identical() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let dir = tempfile::tempdir().unwrap();
    let (st, sl) = pair(dir.path());
    // verify's default TID is the one mirror-verify compares as of.
    assert_eq!(sync_end(&st, 1), sync_end(&sl, 1));
    let (mrows, srows) = (rows(&st), rows(&sl));
    let damage = prop_oneof![
        Just(Damage::Leaf),
        Just(Damage::DataCrc),
        Just(Damage::DataLen),
        Just(Damage::Payload),
    ];
    let case = (
        any::<bool>(),
        any::<prop::sample::Index>(),
        damage,
        any::<usize>(),
    );
    let reported = std::cell::Cell::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case, |(on_master, row, damage, bit)| {
            let case_dir = tempfile::tempdir_in(dir.path()).unwrap();
            let (name, from, rows) = if on_master {
                ("master", &st, &mrows)
            } else {
                ("slave", &sl, &srows)
            };
            let copy = copy_store(from, &case_dir.path().join("store"));
            flip_bit(&copy, row.get(rows), damage, bit);
            let (code, out, err) = run_verify(&copy.join(name));
            let (st, sl) = if on_master {
                (&copy, &sl)
            } else {
                (&st, &copy)
            };
            let (mcode, mout, merr) = mirror_verify(&[], st, sl);
            if code != 0 {
                reported.set(reported.get() + 1);
                prop_assert!(
                    mcode != 0 && !mout.contains("identical"),
                    "verify of the {name}:\n{out}{err}mirror-verify:\n{mout}{merr}"
                );
            }
            Ok(())
        })
        .unwrap();
    // Not vacuous: most damage is found.
    assert!(reported.get() >= 8, "{} cases reported", reported.get());
}

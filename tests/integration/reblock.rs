//! `reblock` through the binary, on a store (and through the kernel double
//! under `kernel-double`): after prune-everything the space comes back,
//! the PFS reads the same, a reblock cut by `-t` or killed changes nothing
//! and a rerun finishes, and readers see the same records across one
//! (spec: cli.md §20, store-format.md §5.1).

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use hammer_mirror::ondisk::LeafElm;

/// What a store may hold besides the payloads: its database, WAL and
/// index, whatever the size of the PFS.
const FIXED_OVERHEAD: u64 = 8 << 20;

/// `len` bytes no other call with another `seed` makes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A master in a new store holding `files` files of `size` bytes, all but
/// the first quarter rewritten twice, then pruned of its history: most of
/// its payload file is named by no record. Returns the store, the master
/// and the tree it holds.
fn pruned_master(dir: &Path, files: u64, size: usize) -> (PathBuf, PathBuf, PathBuf) {
    let root = store_with_master(dir, "st");
    let m = root.join("master");
    let t = tree(dir, (0..files).map(|f| (format!("f{f}"), noise(f, size))));
    fs::create_dir(t.join("sub")).unwrap();
    fs::write(t.join("sub/small"), b"small file").unwrap();
    import(&t, &m);
    for round in 1..3 {
        for f in files / 4..files {
            fs::write(t.join(format!("f{f}")), noise(round * 1000 + f, size)).unwrap();
        }
        import(&t, &m);
    }
    ok(&["prune-everything", m.to_str().unwrap()]);
    (root, m, t)
}

/// The payload files of the store at `root`.
fn payload_files(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".hammer-store.pfs")
        })
        .collect();
    v.sort();
    v
}

/// The bytes of every file in the store directory.
fn store_bytes(root: &Path) -> u64 {
    fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// The payload bytes PFS#1's records name in its payload file (those
/// larger than a row keeps).
fn live_payload_bytes(root: &Path) -> u64 {
    let mut n = 0;
    open(root, 1)
        .for_each_record(|_, d| {
            if d.len() > 512 {
                n += d.len() as u64;
            }
        })
        .unwrap();
    n
}

/// Exports `pfs` to a new directory under `dir` and says whether it holds
/// exactly `tree`'s files.
fn exports_as(dir: &Path, pfs: &Path, tree: &Path, n: &mut u32) -> bool {
    *n += 1;
    let to = dir.join(format!("export{n}"));
    ok(&["export", pfs.to_str().unwrap(), to.to_str().unwrap()]);
    same_tree(tree, &to)
}

fn same_tree(a: &Path, b: &Path) -> bool {
    let names = |d: &Path| {
        let mut v: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let (na, nb) = (names(a), names(b));
    na == nb
        && na.iter().all(|n| {
            let (pa, pb) = (a.join(n), b.join(n));
            if pa.is_dir() {
                pb.is_dir() && same_tree(&pa, &pb)
            } else {
                fs::read(&pa).unwrap() == fs::read(&pb).unwrap()
            }
        })
}

fn mirror_read(m: &Path) -> Vec<u8> {
    ok(&["mirror-read", m.to_str().unwrap()]).stdout
}

fn reblock_child(args: &[&str]) -> Child {
    hammer()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn after_prune_everything_a_reblock_gives_the_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m, t) = pruned_master(dir.path(), 40, 50_000);
    let ms = m.to_str().unwrap();
    let live = live_payload_bytes(&root);
    let [before] = payload_files(&root).try_into().unwrap();
    let before_len = fs::metadata(&before).unwrap().len();
    assert!(before_len > 2 * live, "{before_len} {live}");
    let stream = mirror_read(&m);
    let out = ok(&["reblock", ms]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("reblock start 8000000000000000:0000\nfree level 0/8388608\n")
            && stdout.contains(&format!("Reblock {ms} succeeded\nReblocked:\n"))
            && stdout.contains(&format!("    {live}/{live} data bytes\n")),
        "{stdout}"
    );
    let [after] = payload_files(&root).try_into().unwrap();
    let after_len = fs::metadata(&after).unwrap().len();
    assert_ne!(after, before);
    assert!(after_len * 100 <= live * 115 + 65536, "{after_len} {live}");
    let total = store_bytes(&root);
    assert!(
        total * 100 <= live * 115 + FIXED_OVERHEAD * 100,
        "{total} {live}"
    );
    ok(&["verify", ms]);
    assert!(exports_as(dir.path(), &m, &t, &mut 0));
    assert_eq!(mirror_read(&m), stream);
    // The PFS goes on taking writes.
    fs::write(t.join("new"), noise(77, 30_000)).unwrap();
    import(&t, &m);
    assert!(exports_as(dir.path(), &m, &t, &mut 1));
    // reblock-btree leaves the payload file as it is.
    let out = ok(&["reblock-btree", ms]);
    assert!(text(&out.stdout).contains("    0/0 data bytes\n"));
    assert_eq!(payload_files(&root).len(), 1);
}

/// A cycle file holding a key REBLOCK refuses (PFS bits in its
/// localization) is passed over with a line saying so: the reblock runs
/// whole and succeeds.
#[test]
fn a_cycle_file_with_an_invalid_key_is_cleared_not_failed_on() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m, t) = pruned_master(dir.path(), 4, 1 << 20);
    let ms = m.to_str().unwrap();
    let cycle = dir.path().join("cycle");
    let mut file = vec![0u8; 48];
    file[36..40].copy_from_slice(&0x0005_0001u32.to_le_bytes());
    fs::write(&cycle, &file).unwrap();
    let files = payload_files(&root);
    let out = run(&["-c", cycle.to_str().unwrap(), "reblock", ms]);
    let (stdout, stderr, code) = outcome(&out);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stderr,
        format!("cycle-file {}: clearing invalid key\n", cycle.display())
    );
    assert!(
        stdout.contains(&format!("Reblock {ms} succeeded\n")),
        "{stdout}"
    );
    assert!(fs::metadata(&cycle).is_err());
    assert_ne!(payload_files(&root), files);
    assert!(exports_as(dir.path(), &m, &t, &mut 2));
}

/// `-t`: a reblock still copying when its time is up stops with nothing
/// changed and says where it was; with `-c` it saves that, and the next
/// run starts over and finishes. The cycle file is a FIFO the test holds
/// shut until the time is up; the PFS holds more than one call copies.
#[test]
fn a_reblock_cut_by_its_timeout_changes_nothing_and_the_next_run_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m, t) = pruned_master(dir.path(), 8, 12 << 20);
    let ms = m.to_str().unwrap();
    let stream = mirror_read(&m);
    let files = payload_files(&root);
    let cycle = dir.path().join("cycle");
    nix::unistd::mkfifo(&cycle, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let child = reblock_child(&["-t", "1", "-c", cycle.to_str().unwrap(), "reblock", ms]);
    std::thread::sleep(Duration::from_millis(1500));
    drop(fs::OpenOptions::new().write(true).open(&cycle).unwrap());
    let out = wait_output("the reblock", 300, child);
    let (stdout, stderr, code) = outcome(&out);
    assert_eq!(code, 0, "{stderr}");
    let cut = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("Reblock {ms} interrupted by timer at ")))
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_string();
    let saved = fs::read(&cycle).unwrap();
    assert_eq!(saved.len(), 48);
    let obj = i64::from_le_bytes(saved[0..8].try_into().unwrap());
    let lo = u32::from_le_bytes(saved[36..40].try_into().unwrap());
    assert_eq!(cut, format!("{obj:016x}:{lo:04x}"));
    assert_eq!(
        payload_files(&root),
        files,
        "the copy is gone, the file kept"
    );
    ok(&["verify", ms]);
    assert!(exports_as(dir.path(), &m, &t, &mut 0));

    let out = ok(&["-c", cycle.to_str().unwrap(), "reblock", ms]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!("reblock start {obj:016x}:{lo:04x}\n"))
            && stdout.contains(&format!("Reblock {ms} succeeded\n")),
        "{stdout}"
    );
    assert!(fs::metadata(&cycle).is_err());
    let live = live_payload_bytes(&root);
    let [after] = payload_files(&root).try_into().unwrap();
    assert!(fs::metadata(&after).unwrap().len() * 100 <= live * 115 + 65536);
    ok(&["verify", ms]);
    assert!(exports_as(dir.path(), &m, &t, &mut 1));
    assert_eq!(mirror_read(&m), stream);
}

/// A master whose history is half pruned, so that a reblock has room to
/// give back in both the payload file and the database: 12 files in the
/// payload file and 60 kept in rows, four imports rewriting most of them,
/// the middle two snapshots deleted and pruned. Returns the store, the
/// master and the two snapshots kept.
fn half_pruned_master(dir: &Path) -> (PathBuf, PathBuf, Vec<u64>) {
    let root = store_with_master(dir, "base");
    let m = root.join("master");
    let t = dir.join("tree");
    for round in 0..4u64 {
        for f in 0..12 {
            if round == 0 || f % 4 != 0 {
                let p = t.join(format!("big/f{f}"));
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(p, noise(round * 100 + f, 20_000 + 15_000 * f as usize)).unwrap();
            }
        }
        for f in 0..60 {
            if round == 0 || f % 3 != 0 {
                let p = t.join(format!("small/d{}/s{f}", f % 4));
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(p, noise(round * 1000 + f, 200 + 5 * f as usize)).unwrap();
            }
        }
        import(&t, &m);
    }
    let ms = m.to_str().unwrap();
    let listed = text(&ok(&["snapls", ms]).stdout);
    let snaps: Vec<u64> = listed
        .lines()
        .skip(2)
        .map(|l| u64::from_str_radix(&l[2..18], 16).unwrap())
        .collect();
    for s in &snaps[1..3] {
        ok(&["snaprm", ms, &format!("{s:#018x}")]);
    }
    ok(&["prune", ms]);
    (root, m, vec![snaps[0], snaps[3]])
}

/// One system call of a run: its name, the how-manieth call of that name
/// it is (counted from 1, as strace's `when=` counts), and strace's line
/// for it (descriptors shown with their paths).
struct Call {
    /// Its place in the run.
    at: usize,
    name: String,
    nth: usize,
    line: String,
}

/// The system calls `hammer args...` makes, in order, under strace.
fn calls_of(args: &[&str]) -> Vec<Call> {
    let log = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("strace")
        .args(["-f", "-y", "-qq", "-o"])
        .arg(log.path())
        .arg(env!("CARGO_BIN_EXE_hammer"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut seen = std::collections::HashMap::<String, usize>::new();
    fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .filter_map(|l| {
            // `<pid> <name>(<arguments>) = <result>`, the pid padded.
            let (_, call) = l.trim_start().split_once(' ')?;
            let name = call.trim_start().split_once('(')?.0;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return None;
            }
            let nth = seen.entry(name.to_string()).or_default();
            *nth += 1;
            Some(Call {
                at: 0,
                name: name.to_string(),
                nth: *nth,
                line: l.to_string(),
            })
        })
        .enumerate()
        .map(|(at, c)| Call { at, ..c })
        .collect()
}

/// Runs `hammer args...` under strace, which sends it SIGKILL as it
/// enters the `nth` call of `name`; whether it died so (rather than
/// ending first).
fn killed_at(name: &str, nth: usize, args: &[&str]) -> bool {
    let out = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={name}"))
        .arg("-e")
        .arg(format!("inject={name}:signal=KILL:when={nth}"))
        .arg(env!("CARGO_BIN_EXE_hammer"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // strace ends as its tracee did.
    out.status.signal() == Some(nix::sys::signal::Signal::SIGKILL as i32)
}

/// Up to `n` of `calls`, spread evenly over them.
fn spread<'c>(calls: &[&'c Call], n: usize) -> Vec<&'c Call> {
    let n = n.min(calls.len());
    (0..n).map(|i| calls[i * calls.len() / n]).collect()
}

/// `n` of `calls` (or all there are), in their order: every sync,
/// truncation, removal and lock of the reblock's own (the moments that
/// decide what a crash keeps), then two thirds of the rest (more if
/// there are too few reads, fewer if too few others) of the calls that
/// change something or take a lock, and reads, each spread evenly: the
/// copy reads its source in many small calls and writes a chunk at a time.
fn points_in(calls: &[&Call], n: usize) -> Vec<(String, usize)> {
    let must = ["fsync", "fdatasync", "ftruncate", "unlink", "flock"];
    let reads = [
        "pread64",
        "read",
        "newfstatat",
        "statx",
        "lseek",
        "getdents64",
    ];
    let kind = |c: &&Call| {
        if must.contains(&c.name.as_str()) {
            0
        } else if reads.contains(&c.name.as_str()) {
            2
        } else {
            1
        }
    };
    let of = |k| -> Vec<&Call> { calls.iter().copied().filter(|c| kind(c) == k).collect() };
    let (mut chosen, acts, looks) = (of(0), of(1), of(2));
    let left = n.saturating_sub(chosen.len());
    chosen.extend(spread(
        &acts,
        (left * 2 / 3).max(left.saturating_sub(looks.len())),
    ));
    let left = n.saturating_sub(chosen.len());
    chosen.extend(spread(&looks, left));
    chosen.sort_by_key(|c| c.at);
    chosen.iter().map(|c| (c.name.clone(), c.nth)).collect()
}

/// Every record of PFS#1 (history too), with its payload, in key order.
fn all_records(root: &Path) -> Vec<(LeafElm, Vec<u8>)> {
    let mut v = Vec::new();
    open(root, 1)
        .for_each_record(|l, d| v.push((*l, d.to_vec())))
        .unwrap();
    v
}

/// The payload bytes the rows of PFS#1 name in its payload file.
fn named_bytes(root: &Path) -> u64 {
    rows(root)
        .iter()
        .filter(|r| r.boff.is_some())
        .map(|r| r.leaf.data_len as u64)
        .sum()
}

/// SIGKILL at 56 points of a reblock, each the entry to one system call
/// on the store's files (strace's fault injection, so that a point does
/// not move with the machine's load), spread over its four stretches:
/// until the copy's file is made (the lock, the sweep, the rows read),
/// until the copy is synced (its reads and chunk writes, the switch
/// transaction's start), until the old file is removed (the switch's WAL
/// writes and commit), and after (the transaction giving the database's
/// pages back, the checkpoint, the truncation); every sync, removal,
/// truncation and lock among them. Each time the records are as they
/// were, the store verifies, each snapshot kept exports as before, and a
/// rerun of reblock finishes: one payload file holding exactly the
/// payloads rows name, no free page left in the database.
#[test]
#[ignore = "needs strace: cargo test -- --include-ignored, as .ci/run does"]
fn a_reblock_killed_at_any_of_56_system_calls_leaves_a_sound_store_and_a_rerun_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _, snaps) = half_pruned_master(dir.path());
    // Every run is on a fresh copy at the same path, so it makes the same
    // system calls.
    let root = dir.path().join("cut");
    let m = root.join("master");
    let ms = m.to_str().unwrap();
    let fresh = || {
        if root.exists() {
            fs::remove_dir_all(&root).unwrap();
        }
        copy_store(&base, &root);
    };
    fresh();
    let records = all_records(&root);
    let mut wanted = Vec::new();
    for (i, tid) in snaps.iter().enumerate() {
        let to = dir.path().join(format!("want{i}"));
        ok(&[
            "export",
            &format!("{ms}@@{tid:#018x}"),
            to.to_str().unwrap(),
        ]);
        wanted.push((*tid, to));
    }
    fresh();
    let calls = calls_of(&["reblock", ms]);
    let store = root.display().to_string();
    let at = |what: &str, found: &dyn Fn(&Call) -> bool| {
        calls
            .iter()
            .position(found)
            .unwrap_or_else(|| panic!("no {what} among the reblock's {} calls", calls.len()))
    };
    let copy_file = ".hammer-store.pfs00001.4294967296";
    let copy = at("new payload file", &|c| {
        c.line.contains(copy_file) && c.line.contains("O_EXCL")
    });
    let switch = at("sync of the copy", &|c| {
        c.name == "fdatasync" && c.line.contains(copy_file)
    });
    let give_back = at("removal of the old file", &|c| {
        c.name == "unlink" && c.line.contains(".hammer-store.pfs00001.0")
    });
    let on_store = |range: std::ops::Range<usize>| -> Vec<&Call> {
        calls[range]
            .iter()
            // A descriptor or a path of the store; not the command line or
            // what is printed, which name it too.
            .filter(|c| {
                c.name != "execve"
                    && (c.line.contains(&format!("<{store}"))
                        || c.line.contains(&format!("\"{store}")))
            })
            .collect()
    };
    let mut points = Vec::new();
    for (range, n) in [
        (0..copy, 8),
        (copy..switch, 18),
        (switch..give_back, 14),
        (give_back..calls.len(), 16),
    ] {
        let phase = on_store(range);
        assert!(phase.len() >= n, "{} calls", phase.len());
        points.extend(points_in(&phase, n));
    }
    assert_eq!(points.len(), 56, "{points:?}");

    let mut n = 0;
    for (name, nth) in &points {
        fresh();
        assert!(
            killed_at(name, *nth, &["reblock", ms]),
            "call {nth} of {name} was not reached"
        );
        let at = format!("killed entering call {nth} of {name}");
        assert!(all_records(&root) == records, "{at}: the records changed");
        let out = run(&["verify", ms]);
        assert!(out.status.success(), "{at}: {}", text(&out.stdout));
        for (tid, want) in &wanted {
            n += 1;
            let to = dir.path().join(format!("export{n}"));
            ok(&[
                "export",
                &format!("{ms}@@{tid:#018x}"),
                to.to_str().unwrap(),
            ]);
            assert!(same_tree(want, &to), "{at}: {tid:#x} exports otherwise");
            fs::remove_dir_all(&to).unwrap();
        }
        ok(&["reblock", ms]);
        let [file] = payload_files(&root)
            .try_into()
            .unwrap_or_else(|f: Vec<PathBuf>| panic!("{at}: payload files after the rerun: {f:?}"));
        assert_eq!(
            fs::metadata(&file).unwrap().len(),
            named_bytes(&root),
            "{at}"
        );
        let free: i64 = db(&root)
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap();
        assert_eq!(free, 0, "{at}: free pages left");
        assert!(all_records(&root) == records, "{at}: the records changed");
    }
}

/// Readers and writers across a reblock of the PFS they read: a
/// mirror-read and exports running meanwhile read exactly what they read
/// before, a mirror-copy from it and an import into another PFS of the
/// store work.
#[test]
fn readers_and_writers_running_across_a_reblock_work() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m, t) = pruned_master(dir.path(), 8, 12 << 20);
    let ms = m.to_str().unwrap();
    let other = root.join("other");
    ok(&["pfs-master", other.to_str().unwrap()]);
    let t2 = dir.path().join("tree2");
    fs::create_dir(&t2).unwrap();
    fs::write(t2.join("g"), noise(99, 3 << 20)).unwrap();
    let stream = mirror_read(&m);
    let child = reblock_child(&["reblock", ms]);
    let mut n = 0;
    assert_eq!(mirror_read(&m), stream);
    import(&t2, &other);
    copy_quietly(&m, &root.join("slave"));
    assert!(exports_as(dir.path(), &m, &t, &mut n));
    let out = wait_output("the reblock", 300, child);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // (Its stream now differs: the import moved the store's sync point.)
    assert!(exports_as(dir.path(), &m, &t, &mut n));
    assert!(exports_as(dir.path(), &root.join("slave"), &t, &mut n));
    assert!(exports_as(dir.path(), &other, &t2, &mut n));
    ok(&["verify", ms]);
}

/// Under ssh-remote, reblock runs when listed and on a PFS inside the
/// prefix only; rebalance and dedup say what they do.
#[test]
fn reblock_is_confined_like_prune_and_rebalance_and_dedup_say_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let root = new_store(dir.path(), "st");
    fs::create_dir(root.join("a")).unwrap();
    ok(&["pfs-master", root.join("a/pfs").to_str().unwrap()]);
    ok(&["pfs-master", root.join("other").to_str().unwrap()]);
    let remote = |cmd: &str| {
        hammer()
            .args([
                "ssh-remote",
                "reblock,prune",
                root.join("a").to_str().unwrap(),
            ])
            .env("SSH_ORIGINAL_COMMAND", cmd)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let inside = root.join("a/pfs");
    let out = remote(&format!("hammer reblock {}", inside.display()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(" succeeded\n"));
    let out = remote(&format!("hammer reblock {}", root.join("other").display()));
    assert!(!out.status.success());
    let out = remote(&format!("hammer reblock-data {}", inside.display()));
    assert!(!out.status.success(), "not listed");

    let out = ok(&["rebalance", inside.to_str().unwrap()]);
    assert_eq!(
        text(&out.stdout),
        format!(
            "Rebalance {}: nothing to do: a store's B-Tree is an SQLite database, \
             which keeps itself balanced\n",
            inside.display()
        )
    );
    let out = ok(&["dedup", inside.to_str().unwrap()]);
    assert!(text(&out.stdout).contains(": nothing to do: "));
    let (_, stderr, code) = outcome(&run(&["reblock", inside.to_str().unwrap(), "101"]));
    assert_eq!(code, 1);
    assert!(stderr.ends_with("By default 100% is used.\n"), "{stderr}");
}

/// ENOSPC while copying: the reblock fails, its copy is removed, the
/// store is as it was; with space freed, the next one finishes.
#[test]
fn a_reblock_out_of_space_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fs_ = Tmpfs::mount(&dir.path().join("small"), 40);
    let (root, m, t) = pruned_master(&fs_.0, 8, 1 << 20);
    let ms = m.to_str().unwrap();
    let stream = mirror_read(&m);
    let files = payload_files(&root);
    // Room for half the live payloads.
    let s = nix::sys::statvfs::statvfs(&fs_.0).unwrap();
    let free = s.blocks_available() as u64 * s.fragment_size() as u64;
    let filler = fs_.0.join("filler");
    fs::write(&filler, vec![0u8; (free - (4 << 20)) as usize]).unwrap();
    let (stdout, stderr, code) = outcome(&run(&["reblock", ms]));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("Reblock {ms} failed: ")) && stdout.contains("No space left"),
        "{stdout}"
    );
    assert_eq!(payload_files(&root), files);
    fs::remove_file(&filler).unwrap();
    ok(&["verify", ms]);
    assert!(exports_as(dir.path(), &m, &t, &mut 0));
    ok(&["reblock", ms]);
    assert_eq!(payload_files(&root).len(), 1);
    assert!(exports_as(dir.path(), &m, &t, &mut 1));
    assert_eq!(mirror_read(&m), stream);
}

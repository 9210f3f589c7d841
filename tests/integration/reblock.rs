//! `reblock` through the binary, on a store (and through the kernel double
//! under `kernel-double`): after prune-everything the space comes back,
//! the PFS reads the same, a reblock cut by `-t` or killed changes nothing
//! and a rerun finishes, and readers see the same records across one
//! (spec: cli.md §20, store-format.md §5.1).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::*;

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

/// SIGKILL at several points of a reblock: each time the store verifies
/// and exports the same tree, and the next reblock removes what the
/// killed one left and finishes.
#[test]
fn a_killed_reblock_leaves_a_sound_store_and_a_rerun_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m, t) = pruned_master(dir.path(), 8, 12 << 20);
    let ms = m.to_str().unwrap();
    let stream = mirror_read(&m);
    let mut n = 0;
    // From before the copy begins to after the switch (about half a
    // second in a debug build).
    for delay in [0, 20, 60, 120, 200, 300, 450, 700] {
        let child = reblock_child(&["reblock", ms]);
        std::thread::sleep(Duration::from_millis(delay));
        signal(&child, nix::sys::signal::Signal::SIGKILL);
        wait_output("the killed reblock", 60, child);
        ok(&["verify", ms]);
        assert!(
            exports_as(dir.path(), &m, &t, &mut n),
            "killed after {delay} ms"
        );
        assert_eq!(mirror_read(&m), stream);
    }
    ok(&["reblock", ms]);
    let live = live_payload_bytes(&root);
    let [after] = payload_files(&root).try_into().unwrap();
    assert!(fs::metadata(&after).unwrap().len() * 100 <= live * 115 + 65536);
    ok(&["verify", ms]);
    assert!(exports_as(dir.path(), &m, &t, &mut n));
    assert_eq!(mirror_read(&m), stream);
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

//! `hammer mount`: a store PFS through FUSE, read-only. The
//! tree under `@@/<tid>` equals an export as of that TID (contents, types,
//! modes, owners, sizes, times, symlinks, hard links), a large file reads
//! back whole, a slave's mount follows its sync point, every change is
//! refused with EROFS, and SIGTERM unmounts; `find` over a mount walks
//! what export writes (`@@` is reached by name, listed with -a), a listing
//! read while mirror-write commits misses nothing, memory follows the
//! inodes the kernel holds, and a killed mount is cleared. Needs root and
//! /dev/fuse (`.ci/run` runs these tests as root).

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use crate::common::*;

const NEEDS: &str = "needs root and /dev/fuse: cargo test -- --include-ignored, as .ci/run does";

/// A running `hammer mount`, unmounted (by SIGTERM) when dropped.
struct Mounted {
    child: Child,
    at: PathBuf,
}

fn is_mounted(at: &Path) -> bool {
    // The parent, as a killed mount's own path no longer resolves.
    let at = at
        .parent()
        .unwrap()
        .canonicalize()
        .unwrap()
        .join(at.file_name().unwrap());
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(at.to_str().unwrap()))
}

fn mount(source: &str, at: &Path) -> Mounted {
    mount_with(&[], source, at)
}

/// `hammer <options> mount <source> <at>`, once it is mounted.
fn mount_with(options: &[&str], source: &str, at: &Path) -> Mounted {
    assert!(Path::new("/dev/fuse").exists(), "{NEEDS}");
    // A killed mount's path exists and does not resolve.
    if let Err(e) = fs::create_dir_all(at) {
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    }
    // Its stderr in a file beside the mount point, shown if it fails.
    let log = at.with_extension("log");
    let child = hammer()
        .args(options)
        .args(["mount", source, at.to_str().unwrap()])
        .stdin(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for(
        "the mount",
        10,
        || is_mounted(at),
        || fs::read_to_string(&log).unwrap_or_default(),
    );
    Mounted {
        child,
        at: at.to_path_buf(),
    }
}

impl Mounted {
    /// SIGTERM, then the exit status (within a minute); the mount must be
    /// gone.
    fn terminate(&mut self) -> i32 {
        signal(&self.child, nix::sys::signal::Signal::SIGTERM);
        let mut status = None;
        wait_for(
            "the mount to end on SIGTERM",
            60,
            || {
                status = self.child.try_wait().unwrap();
                status.is_some()
            },
            || fs::read_to_string(self.at.with_extension("log")).unwrap_or_default(),
        );
        let status = status.unwrap();
        assert!(!is_mounted(&self.at), "still mounted after SIGTERM");
        status.code().unwrap_or(-1)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

/// Asserts the trees at `a` (the mount) and `b` (an export) are the same:
/// names, types, modes, owners, sizes, mtimes, symlink targets, file
/// contents, and hard links as shared inode numbers.
fn assert_same_tree(a: &Path, b: &Path) {
    let mut links_a: Vec<(u64, PathBuf)> = Vec::new();
    let mut links_b: Vec<(u64, PathBuf)> = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let entries = names(&a.join(&rel));
        assert_eq!(
            entries,
            names(&b.join(&rel)),
            "entries of {}",
            rel.display()
        );
        for name in entries {
            let r = rel.join(&name);
            let (pa, pb) = (a.join(&r), b.join(&r));
            let (ma, mb) = (
                fs::symlink_metadata(&pa).unwrap(),
                fs::symlink_metadata(&pb).unwrap(),
            );
            let shown = r.display();
            assert_eq!(ma.mode(), mb.mode(), "mode of {shown}");
            assert_eq!(
                (ma.uid(), ma.gid()),
                (mb.uid(), mb.gid()),
                "owner of {shown}"
            );
            assert_eq!(ma.file_type(), mb.file_type(), "type of {shown}");
            if ma.file_type().is_symlink() {
                assert_eq!(fs::read_link(&pa).unwrap(), fs::read_link(&pb).unwrap());
                continue;
            }
            assert_eq!(
                (ma.mtime(), ma.mtime_nsec()),
                (mb.mtime(), mb.mtime_nsec()),
                "mtime of {shown}"
            );
            if ma.is_dir() {
                stack.push(r);
            } else if ma.is_file() {
                assert_eq!(ma.len(), mb.len(), "size of {shown}");
                assert!(
                    fs::read(&pa).unwrap() == fs::read(&pb).unwrap(),
                    "contents of {shown}"
                );
                assert_eq!(ma.nlink(), mb.nlink(), "links of {shown}");
                links_a.push((ma.ino(), r.clone()));
                links_b.push((mb.ino(), r));
            }
        }
    }
    // The same paths share an inode on both sides.
    let groups = |mut v: Vec<(u64, PathBuf)>| {
        v.sort();
        let mut g: Vec<Vec<PathBuf>> = Vec::new();
        let mut last = None;
        for (ino, p) in v {
            if last == Some(ino) {
                g.last_mut().unwrap().push(p);
            } else {
                g.push(vec![p]);
            }
            last = Some(ino);
        }
        g.iter_mut().for_each(|x| x.sort());
        g.sort();
        g
    };
    assert_eq!(groups(links_a), groups(links_b), "hard links");
}

/// A master with three imports of history: files of several sizes, a
/// sparse file, a hard link, a FIFO, short and long symlinks, a
/// subdirectory; then changes and removals. Returns the store root and
/// the tree.
fn master_with_files(dir: &Path) -> PathBuf {
    let root = store_with_master(dir, "st");
    let t = dir.join("tree");
    fs::create_dir_all(t.join("sub/deeper")).unwrap();
    fs::write(t.join("small"), b"hello\n").unwrap();
    fs::write(t.join("medium"), vec![7u8; 20_000]).unwrap();
    fs::write(
        t.join("sub/deeper/big"),
        (0..1_500_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let sparse = fs::File::create(t.join("sparse")).unwrap();
    sparse.set_len(3_000_000).unwrap();
    std::os::unix::fs::FileExt::write_at(&sparse, b"end", 3_000_000).unwrap();
    fs::hard_link(t.join("small"), t.join("sub/hard")).unwrap();
    nix::unistd::mkfifo(
        &t.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    symlink("small", t.join("short-link")).unwrap();
    symlink(
        "a/target/well/beyond/twenty-four/bytes",
        t.join("long-link"),
    )
    .unwrap();
    let m = root.join("master");
    import(&t, &m);
    fs::write(t.join("medium"), b"now short").unwrap();
    fs::remove_file(t.join("short-link")).unwrap();
    fs::write(t.join("sub/new"), b"new file").unwrap();
    import(&t, &m);
    fs::remove_dir_all(t.join("sub/deeper")).unwrap();
    import(&t, &m);
    root
}

/// The TIDs `snapls --changes` lists for `pfs`.
fn tids(pfs: &Path) -> Vec<String> {
    let out = ok(&["snapls", "--changes", pfs.to_str().unwrap()]);
    text(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("0x"))
                .map(str::to_string)
        })
        .collect()
}

#[test]
#[ignore = "needs root and /dev/fuse: cargo test -- --include-ignored, as .ci/run does"]
fn the_tree_as_of_each_tid_equals_its_export() {
    let dir = tempfile::tempdir().unwrap();
    let root = master_with_files(dir.path());
    let m = root.join("master");
    let mnt = dir.path().join("mnt");
    let _mounted = mount(m.to_str().unwrap(), &mnt);
    let tids = tids(&m);
    assert!(tids.len() >= 4, "{tids:?}");
    assert_eq!(names(&mnt.join("@@")), tids);
    for tid in &tids {
        let ex = dir.path().join(format!("ex-{tid}"));
        ok(&[
            "-q",
            "export",
            &format!("{}@@{tid}", m.display()),
            ex.to_str().unwrap(),
        ]);
        assert_same_tree(&mnt.join("@@").join(tid), &ex);
    }
    // The mount's own tree is the newest (`@@` is not listed).
    let newest = dir.path().join(format!("ex-{}", tids.last().unwrap()));
    assert_eq!(names(&mnt), names(&newest));
    assert_eq!(fs::read(mnt.join("medium")).unwrap(), b"now short");
    // diff -r agrees (it cannot compare FIFOs: they are compared above).
    let tid = &tids[1];
    let out = std::process::Command::new("diff")
        .args(["-r", "--no-dereference", "--exclude=fifo"])
        .arg(mnt.join("@@").join(tid))
        .arg(dir.path().join(format!("ex-{tid}")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
#[ignore = "needs root and /dev/fuse: cargo test -- --include-ignored, as .ci/run does"]
fn a_100_mb_file_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let t = dir.path().join("tree");
    fs::create_dir(&t).unwrap();
    let mut rng = Rng(15);
    let bytes: Vec<u8> = (0..100 << 20).map(|_| rng.next() as u8).collect();
    fs::write(t.join("big"), &bytes).unwrap();
    let m = root.join("master");
    import(&t, &m);
    let mnt = dir.path().join("mnt");
    let _mounted = mount(m.to_str().unwrap(), &mnt);
    let read = fs::read(mnt.join("big")).unwrap();
    assert_eq!(read.len(), bytes.len());
    assert!(read == bytes, "contents differ");
}

#[test]
#[ignore = "needs root and /dev/fuse: cargo test -- --include-ignored, as .ci/run does"]
fn a_slaves_mount_follows_its_sync_point() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let t = dir.path().join("tree");
    fs::create_dir(&t).unwrap();
    fs::write(t.join("f"), b"first").unwrap();
    let m = root.join("master");
    let s = root.join("slave");
    import(&t, &m);
    copy_quietly(&m, &s);
    let mnt = dir.path().join("mnt");
    let _mounted = mount(s.to_str().unwrap(), &mnt);
    assert_eq!(fs::read(mnt.join("f")).unwrap(), b"first");
    fs::write(t.join("f"), b"second").unwrap();
    fs::write(t.join("g"), b"new").unwrap();
    import(&t, &m);
    // The master moved; the slave has not: its mount shows the same.
    assert_eq!(fs::read(mnt.join("f")).unwrap(), b"first");
    copy_quietly(&m, &s);
    wait_for(
        "the slave's mount to follow",
        10,
        || fs::read(mnt.join("f")).is_ok_and(|d| d == b"second") && mnt.join("g").exists(),
        String::new,
    );
    // Its history lists the new sync point.
    let n = fs::read_dir(mnt.join("@@")).unwrap().count();
    assert!(n >= 2, "{n}");
}

/// A signal that finds the mount in use says so and leaves it served; the
/// next one, once it is free, ends it (before: the first signal's failed
/// unmount went unsaid, and no later signal ended the mount).
#[test]
#[ignore = "needs root and /dev/fuse: cargo test -- --include-ignored, as .ci/run does"]
fn a_mount_in_use_is_told_and_a_later_signal_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = master_with_files(dir.path());
    let m = root.join("master");
    let mnt = dir.path().join("mnt");
    let mut mounted = mount(m.to_str().unwrap(), &mnt);
    let log = mnt.with_extension("log");
    let held = fs::File::open(mnt.join("small")).unwrap();
    signal(&mounted.child, nix::sys::signal::Signal::SIGTERM);
    wait_for(
        "the mount to say it is in use",
        30,
        || {
            fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("still mounted: Device or resource busy")
        },
        || fs::read_to_string(&log).unwrap_or_default(),
    );
    assert!(is_mounted(&mnt));
    assert_eq!(fs::read(mnt.join("small")).unwrap(), b"hello\n");
    drop(held);
    assert_eq!(mounted.terminate(), 0);
}

#[test]
#[ignore = "needs root and /dev/fuse: cargo test -- --include-ignored, as .ci/run does"]
fn every_change_is_refused_and_sigterm_unmounts() {
    let dir = tempfile::tempdir().unwrap();
    let root = master_with_files(dir.path());
    let m = root.join("master");
    let mnt = dir.path().join("mnt");
    let mut mounted = mount(m.to_str().unwrap(), &mnt);
    let erofs = |r: std::io::Result<()>| {
        let e = r.expect_err("a change went through");
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
    };
    erofs(fs::write(mnt.join("new"), b"x"));
    erofs(
        fs::OpenOptions::new()
            .append(true)
            .open(mnt.join("small"))
            .map(drop),
    );
    erofs(fs::rename(mnt.join("small"), mnt.join("renamed")));
    erofs(fs::remove_file(mnt.join("small")));
    erofs(fs::create_dir(mnt.join("d")));
    erofs(fs::remove_dir(mnt.join("sub")));
    erofs(fs::set_permissions(
        mnt.join("small"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    ));
    erofs(symlink("x", mnt.join("@@/ln")));
    assert_eq!(fs::read(mnt.join("small")).unwrap(), b"hello\n");
    assert_eq!(mounted.terminate(), 0);
    // Nothing was written: the store verifies clean with the same TIDs.
    let out = run(&["verify", m.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(fs::metadata(mnt.join("small")).is_err_and(|e| e.kind() == ErrorKind::NotFound));
}

#[test]
fn a_pfs_that_cannot_be_mounted_is_refused_before_mounting() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let nope = root.join("nope");
    let out = run(&["mount", nope.to_str().unwrap(), mnt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("hammer: mount: "),
        "{}",
        text(&out.stderr)
    );
    let beyond = format!("{}@@0x7fffffffffffffff", root.join("master").display());
    let out = run(&["mount", &beyond, mnt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("beyond the master's newest"),
        "{}",
        text(&out.stderr)
    );
    // A date before the PFS's first point (cli.md §16).
    let early = format!("{}@@1999-12-31", root.join("master").display());
    let out = run(&["mount", &early, mnt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("@@1999-12-31 is before the first point the PFS can be read as of: @@"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["mount", root.join("master").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "hammer [-a] mount <pfs-path>[@@<tid>] <mountpoint>\nhammer umount <mountpoint>\n"
    );
}

#[test]
#[ignore = "needs root and /dev/fuse: cargo test -- --include-ignored, as .ci/run does"]
fn names_export_would_refuse_are_hidden_and_reported_once() {
    use hammer_mirror::model::format::{direntry, parse_direntry};
    let dir = tempfile::tempdir().unwrap();
    // damage.rs's master: its entry `small` renamed behind the store's back.
    let root = crate::common::master_with_history(dir.path());
    let entry = entry_named(&root, "medium");
    let (obj, lo, _) = parse_direntry(entry.data.as_deref().unwrap()).unwrap();
    set_data(&root, &entry, &direntry(obj, lo >> 16, b"bad/name"));
    let mnt = dir.path().join("mnt");
    let mounted = mount(root.join("master").to_str().unwrap(), &mnt);
    for _ in 0..2 {
        let listed = names(&mnt);
        assert!(
            !listed.iter().any(|n| n.contains("name") || n == "medium"),
            "{listed:?}"
        );
        assert!(listed.iter().any(|n| n == "big"), "{listed:?}");
    }
    drop(mounted);
    let log = fs::read_to_string(mnt.with_extension("log")).unwrap();
    assert_eq!(
        log.matches("entry 'bad/name' hidden: name contains '/'")
            .count(),
        1,
        "{log}"
    );
}

#[test]
#[ignore = "needs root and /dev/fuse: cargo test -- --include-ignored, as .ci/run does"]
fn an_import_running_meanwhile_is_never_seen_half_applied() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let t = dir.path().join("tree");
    fs::create_dir(&t).unwrap();
    // 64 KiB: four 16 KiB data records, all rewritten by each import.
    let generation = |n: u8| vec![n; 65536];
    fs::write(t.join("f"), generation(0)).unwrap();
    let m = root.join("master");
    import(&t, &m);
    let mnt = dir.path().join("mnt");
    let _mounted = mount(m.to_str().unwrap(), &mnt);
    let writer = {
        let (t, m) = (t.clone(), m.clone());
        std::thread::spawn(move || {
            for n in 1..=40u8 {
                fs::write(t.join("f"), generation(n)).unwrap();
                import(&t, &m);
            }
        })
    };
    let mut seen = std::collections::BTreeSet::new();
    while !writer.is_finished() {
        let d = fs::read(mnt.join("f")).unwrap();
        assert_eq!(d.len(), 65536);
        assert!(d.iter().all(|&b| b == d[0]), "a read mixes generations");
        seen.insert(d[0]);
    }
    writer.join().unwrap();
    assert!(seen.len() > 1, "the reads saw no import: {seen:?}");
}

#[test]
#[ignore = "needs root and /dev/fuse: cargo test -- --include-ignored, as .ci/run does"]
fn a_listing_made_while_mirror_write_commits_misses_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let t = dir.path().join("tree");
    let d = t.join("d");
    fs::create_dir_all(&d).unwrap();
    let kept: Vec<String> = (0..10_000).map(|i| format!("keep-{i:05}")).collect();
    for name in &kept {
        fs::write(d.join(name), b"").unwrap();
    }
    for i in 0..2_000 {
        fs::write(d.join(format!("gone-{i:04}")), b"").unwrap();
    }
    let (m, s) = (root.join("master"), root.join("slave"));
    import(&t, &m);
    copy_quietly(&m, &s);
    let mnt = dir.path().join("mnt");
    let _mounted = mount(s.to_str().unwrap(), &mnt);
    let mut listing = fs::read_dir(mnt.join("d")).unwrap();
    let mut listed: Vec<String> = listing
        .by_ref()
        .take(3_000)
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    // Between two reads of the listing, the slave loses 2,000 files and
    // gains 200.
    for i in 0..2_000 {
        fs::remove_file(d.join(format!("gone-{i:04}"))).unwrap();
    }
    for i in 0..200 {
        fs::write(d.join(format!("new-{i:03}")), b"").unwrap();
    }
    import(&t, &m);
    copy_quietly(&m, &s);
    wait_for(
        "the slave's mount to follow",
        10,
        || mnt.join("d/new-000").exists() && !mnt.join("d/gone-0000").exists(),
        String::new,
    );
    listed.extend(listing.map(|e| e.unwrap().file_name().into_string().unwrap()));
    let n = listed.len();
    listed.sort();
    listed.dedup();
    assert_eq!(listed.len(), n, "names listed twice");
    let missing: Vec<&String> = kept
        .iter()
        .filter(|k| listed.binary_search(k).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} files in both states not listed, first {:?}",
        missing.len(),
        kept.len(),
        missing.first()
    );
}

/// A field of /proc/<pid>/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    rss::status_kib(pid, field).unwrap()
}

/// Asks the kernel to drop the dentries and inodes it caches: it then
/// forgets those of the mount.
fn drop_caches() {
    fs::write("/proc/sys/vm/drop_caches", "2").unwrap();
}

/// Every entry of every directory under `dir`, stat'ed (as find -ls).
fn stat_all(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if fs::symlink_metadata(e.path()).unwrap().is_dir() {
            stat_all(&e.path());
        }
    }
}

#[test]
#[ignore = "needs root and /dev/fuse: cargo test -- --include-ignored, as .ci/run does"]
fn memory_follows_the_inodes_the_kernel_holds() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let t = dir.path().join("tree");
    fs::create_dir(&t).unwrap();
    for i in 0..4_000 {
        fs::write(t.join(format!("f{i}")), b"").unwrap();
    }
    let m = root.join("master");
    // 25 TIDs: 100,000 inodes under `@@`.
    for g in 0..25 {
        fs::write(t.join("f0"), format!("{g}")).unwrap();
        import(&t, &m);
    }
    let mnt = dir.path().join("mnt");
    let mounted = mount(m.to_str().unwrap(), &mnt);
    let pid = mounted.child.id();
    // The store's page cache warmed by one view, then given back.
    let history = mnt.join("@@");
    stat_all(&history.join(names(&history).last().unwrap()));
    drop_caches();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let base = status_kib(pid, "VmRSS");
    stat_all(&mnt.join("@@"));
    let peak = status_kib(pid, "VmHWM");
    assert!(
        peak >= base + 2048,
        "browsing 100,000 inodes took {base} -> {peak} KiB"
    );
    // Asked again every 2 s (wait_for polls every 50 ms): the kernel may
    // keep what is in use at the moment it is asked.
    let mut polls = 0;
    wait_for(
        "the mount to give back its inodes",
        60,
        || {
            if polls % 40 == 0 {
                drop_caches();
            }
            polls += 1;
            status_kib(pid, "VmRSS") < base + (peak - base) / 2
        },
        || {
            let now = status_kib(pid, "VmRSS");
            format!("resident {base} KiB, {peak} KiB at most, now {now} KiB")
        },
    );
}

/// `find <dir>`'s paths below `dir`, sorted.
fn find(dir: &Path) -> Vec<String> {
    let out = std::process::Command::new("find")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut paths: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| l[dir.to_str().unwrap().len()..].to_string())
        .collect();
    paths.sort();
    paths
}

#[test]
#[ignore = "needs root and /dev/fuse: cargo test -- --include-ignored, as .ci/run does"]
fn find_over_a_mount_walks_what_export_writes_and_at_at_is_reached_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = master_with_files(dir.path());
    let m = root.join("master");
    let tids = tids(&m);
    // The first import's (the first TID is the PFS's creation).
    let (first, newest) = (&tids[1], tids.last().unwrap());
    let ex = dir.path().join("ex");
    ok(&["-q", "export", m.to_str().unwrap(), ex.to_str().unwrap()]);
    let mnt = dir.path().join("mnt");
    let mounted = mount(m.to_str().unwrap(), &mnt);
    assert_eq!(find(&mnt), find(&ex));
    // `@@` is not listed, and still there by name.
    assert_eq!(names(&mnt.join("@@")), tids);
    assert_eq!(
        fs::read(mnt.join("@@").join(first).join("medium")).unwrap(),
        vec![7u8; 20_000]
    );
    drop(mounted);
    // A mount as of a TID is its export.
    let ex_first = dir.path().join("ex-first");
    let at_first = format!("{}@@{first}", m.display());
    ok(&["-q", "export", &at_first, ex_first.to_str().unwrap()]);
    let mounted = mount(&at_first, &mnt);
    assert_eq!(find(&mnt), find(&ex_first));
    drop(mounted);
    // -a lists it.
    let _mounted = mount_with(&["-a"], m.to_str().unwrap(), &mnt);
    let mut want = names(&ex);
    want.push("@@".into());
    want.sort();
    assert_eq!(names(&mnt), want);
    assert!(names(&mnt.join("@@")).contains(newest));
}

#[test]
#[ignore = "needs root and /dev/fuse: cargo test -- --include-ignored, as .ci/run does"]
fn a_killed_mount_is_cleared_by_the_next_mount_and_by_umount() {
    use nix::sys::signal::Signal::SIGKILL;
    let dir = tempfile::tempdir().unwrap();
    let root = master_with_files(dir.path());
    let m = root.join("master");
    let mnt = dir.path().join("mnt");
    let kill = |mut mounted: Mounted| {
        signal(&mounted.child, SIGKILL);
        mounted.child.wait().unwrap();
        // Once the attributes the kernel keeps for a second are stale.
        wait_for(
            "the killed mount to answer ENOTCONN",
            10,
            || fs::metadata(&mnt).is_err_and(|e| e.raw_os_error() == Some(libc::ENOTCONN)),
            String::new,
        );
    };
    kill(mount(m.to_str().unwrap(), &mnt));
    // Mounted again on the dead one (listed as mounted meanwhile).
    let mounted = mount(m.to_str().unwrap(), &mnt);
    wait_for(
        "the new mount",
        10,
        || fs::read(mnt.join("small")).is_ok_and(|d| d == b"hello\n"),
        || fs::read_to_string(mnt.with_extension("log")).unwrap_or_default(),
    );
    let log = fs::read_to_string(mnt.with_extension("log")).unwrap();
    assert!(
        log.contains("cleared a mount whose server was gone"),
        "{log}"
    );
    // Killed while a process works inside: umount clears it all the same.
    let mut inside = std::process::Command::new("sleep")
        .arg("600")
        .current_dir(mnt.join("sub"))
        .spawn()
        .unwrap();
    kill(mounted);
    let out = run(&["umount", mnt.to_str().unwrap()]);
    inside.kill().unwrap();
    inside.wait().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!is_mounted(&mnt));
    assert!(fs::read_dir(&mnt).unwrap().next().is_none());
}

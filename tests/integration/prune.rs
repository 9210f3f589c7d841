//! `prune` and `prune-everything` through the binary, on a store (and
//! through the kernel double under `kernel-double`): the history between
//! the snapshots kept goes, their views stay, with the original's output
//! lines, `-c` and `-t`, prune-min, `-T`, and PFS#0 pruned to nothing
//! (spec: cli.md §15, kernel-semantics.md §6.1).

use std::fs;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::common::*;
use hammer_mirror::ondisk::LOCALIZE_INODE;

fn tz(args: &[&str]) -> Output {
    hammer()
        .env("TZ", "UTC")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The file `f` of `pfs` as of `tid`.
fn f_as_of(dir: &Path, pfs: &Path, tid: u64, n: &mut u32) -> Vec<u8> {
    *n += 1;
    let to = dir.join(format!("x{n}"));
    ok(&[
        "export",
        &format!("{}@@0x{tid:016x}", pfs.display()),
        to.to_str().unwrap(),
    ]);
    fs::read(to.join("f")).unwrap_or_default()
}

/// The records of PFS `id` in the store at `root`, deleted ones included.
fn all_records(root: &Path, id: u32) -> usize {
    let mut n = 0;
    open(root, id).for_each_record(|_, _| n += 1).unwrap();
    n
}

/// Five imports of a changing file `f` into a new master; returns the
/// store root, the master and its five snapshots.
fn five_generations(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u64>) {
    let root = store_with_master(dir, "st");
    let m = root.join("master");
    let t = tree(dir, [("f", b"gen0".to_vec())]);
    import(&t, &m);
    for g in 1..5 {
        fs::write(t.join("f"), format!("gen{g}")).unwrap();
        fs::write(t.join(format!("tmp{g}")), b"passing").unwrap();
        if g > 1 {
            fs::remove_file(t.join(format!("tmp{}", g - 1))).unwrap();
        }
        import(&t, &m);
    }
    let snaps = snapshot_tids(&m);
    assert_eq!(snaps.len(), 5);
    (root, m, snaps)
}

#[test]
fn prune_keeps_the_views_of_the_snapshots_left_and_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m, snaps) = five_generations(dir.path());
    let ms = m.to_str().unwrap();
    // Keep the first, the third and the last.
    ok(&[
        "snaprm",
        ms,
        &format!("0x{:016x}", snaps[1]),
        &format!("0x{:016x}", snaps[3]),
    ]);
    let before = all_records(&root, 1);
    let out = tz(&["prune", ms]);
    let fs_name = format!("{ms}/");
    let (stdout, stderr, code) = outcome(&out);
    assert_eq!((stderr.as_str(), code), ("", 0));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..6],
        [
            format!("TID {:016x} - {:016x}", snaps[2], snaps[4]).as_str(),
            &format!("TID {:016x} - {:016x}", snaps[0], snaps[2]),
            &format!("TID {:016x} - {:016x}", 1, snaps[0]),
            &format!("Prune {fs_name}: 3 snapshots"),
            &format!(
                "Prune {fs_name}: objspace 8000000000000000:0000 7fffffffffffffff:ffff pfs_id 1"
            ),
            &format!("Prune {fs_name}: prune_min is 0d/00:00:00"),
        ],
        "{stdout}"
    );
    assert_eq!(lines[6], format!("Prune {fs_name} succeeded"));
    let stats = lines[7];
    assert_eq!(lines.len(), 8, "{stdout}");
    let after = all_records(&root, 1);
    assert!(after < before, "{before} -> {after}");
    // "Pruned <raw>/<scanned> records (<entries> directory entries) and
    // <bytes> bytes": raw records and entries are what went.
    let words: Vec<&str> = stats.split(['/', ' ', '(']).collect();
    let (raw, scanned, entries): (usize, usize, usize) = (
        words[1].parse().unwrap(),
        words[2].parse().unwrap(),
        words[5].parse().unwrap(),
    );
    assert_eq!(
        (raw + entries, scanned),
        (before - after, before),
        "{stats}"
    );
    assert!(entries > 0 && stats.ends_with(" bytes"), "{stats}");
    // The views kept are whole (those between them lost what changed).
    let mut n = 0;
    for i in [0, 2, 4] {
        let f = f_as_of(dir.path(), &m, snaps[i], &mut n);
        assert_eq!(f, format!("gen{i}").as_bytes(), "snapshot {i}");
    }
    ok(&["verify", ms]);
    // Nothing more to prune; on a store, with the same snapshots and no
    // change since, nothing to visit either (store-format.md §7).
    let out = tz(&["prune", ms]);
    assert!(
        text(&out.stdout).ends_with(&format!(
            "Prune {fs_name} succeeded\nPruned 0/0 records (0 directory entries) and 0 bytes\n"
        )),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(all_records(&root, 1), after);
}

/// A store's root is PFS#0 and holds the PFS links: they are no snapshot
/// softlinks (the original read `@@PFS00001` as a snapshot at TID 0), so a
/// prune of the root follows PFS#0's snapshot records.
#[test]
fn a_prune_of_pfs0_follows_its_snapshot_records_not_the_pfs_links_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let t = tree(dir.path(), [("f", b"gen0".to_vec())]);
    for g in 0..3 {
        fs::write(t.join("f"), format!("gen{g}")).unwrap();
        import(&t, &root);
    }
    let snaps = snapshot_tids(&root);
    assert_eq!(snaps.len(), 3);
    let rs = root.to_str().unwrap();
    ok(&["snaprm", rs, &format!("0x{:016x}", snaps[1])]);
    let before = all_records(&root, 0);
    let out = tz(&["prune", rs]);
    let (stdout, stderr, code) = outcome(&out);
    assert_eq!((stderr.as_str(), code), ("", 0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            format!("TID {:016x} - {:016x}", snaps[0], snaps[2]).as_str(),
            &format!("TID {:016x} - {:016x}", 1, snaps[0]),
            &format!("Prune {rs}/: 2 snapshots"),
        ],
        "{stdout}"
    );
    assert!(all_records(&root, 0) < before, "{stdout}");
    let mut n = 0;
    for i in [0, 2] {
        let f = f_as_of(dir.path(), &root, snaps[i], &mut n);
        assert_eq!(f, format!("gen{i}").as_bytes(), "snapshot {i}");
    }
    ok(&["verify", rs]);
}

#[test]
fn prune_reads_softlinks_into_one_pfs_and_refuses_several() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m, snaps) = five_generations(dir.path());
    let ms = m.to_str().unwrap();
    // Only the softlinks and the last import's record say what to keep.
    for s in &snaps[..4] {
        ok(&["snaprm", ms, &format!("{s:x}")]);
    }
    let links = dir.path().join("snaps");
    fs::create_dir(&links).unwrap();
    std::os::unix::fs::symlink(format!("{ms}/@@0x{:016x}", snaps[1]), links.join("a")).unwrap();
    std::os::unix::fs::symlink(format!("{ms}/@@0x{:016x}", snaps[2]), links.join("b")).unwrap();
    fs::write(links.join("not-a-link"), b"").unwrap();
    let out = tz(&["prune", links.to_str().unwrap()]);
    let (stdout, stderr, code) = outcome(&out);
    assert_eq!((stderr.as_str(), code), ("", 0));
    assert!(
        stdout.starts_with(&format!(
            "TID {:016x} - {:016x}\nTID {:016x} - {:016x}\nTID {:016x} - {:016x}\nPrune {ms}/: 3 snapshots\n",
            snaps[2], snaps[4], snaps[1], snaps[2], 1, snaps[1]
        )),
        "{stdout}"
    );
    let mut n = 0;
    assert_eq!(f_as_of(dir.path(), &m, snaps[1], &mut n), b"gen1");
    assert_eq!(f_as_of(dir.path(), &m, snaps[2], &mut n), b"gen2");

    // A softlink into another PFS.
    ok(&["pfs-master", root.join("other").to_str().unwrap()]);
    std::os::unix::fs::symlink(
        format!("{}/@@0x0000000100000001", root.join("other").display()),
        links.join("c"),
    )
    .unwrap();
    let out = tz(&["prune", links.to_str().unwrap()]);
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            "hammer: Currently only one HAMMER filesystem may be specified in the softlink scan\n"
                .into(),
            1
        )
    );

    // A directory without softlinks names its own filesystem: here a
    // plain directory of the store, PFS#0, without snapshots.
    let plain = root.join("plain");
    fs::create_dir(&plain).unwrap();
    let out = tz(&["prune", plain.to_str().unwrap()]);
    assert_eq!(
        outcome(&out),
        (
            format!("Prune {}/: 0 snapshots\n", plain.display()),
            "No snapshots found\n".into(),
            0
        )
    );
    for args in [&["prune"][..], &["prune", "a", "b"], &["prune-everything"]] {
        assert_eq!(
            outcome(&tz(args)),
            (
                String::new(),
                "Badly formed prune command, use:\nhammer prune <softlink-dir>\n\
                 hammer prune-everything <filesystem>\n"
                    .into(),
                1
            ),
            "{args:?}"
        );
    }
}

#[test]
fn prune_min_holds_the_young_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m, _) = five_generations(dir.path());
    let ms = m.to_str().unwrap();
    ok(&["pfs-update", ms, "prune-min=1d/02:03:04"]);
    let before = all_records(&root, 1);
    let out = tz(&["prune", ms]);
    assert_eq!(
        outcome(&out),
        (
            format!(
                "Prune {ms}/: prune_min: Will not clean between the teeth of the first 5 snapshots\n\
                 Prune {ms}/: 0 snapshots\n"
            ),
            "No snapshots found\n".into(),
            0
        )
    );
    assert_eq!(all_records(&root, 1), before);
}

#[test]
fn prune_everything_leaves_the_live_state_and_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m, snaps) = five_generations(dir.path());
    let ms = m.to_str().unwrap();
    let out = tz(&["prune-everything", ms]);
    let (stdout, stderr, code) = outcome(&out);
    assert_eq!((stderr.as_str(), code), ("", 0));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..4],
        [
            format!("Prune {ms}/: EVERYTHING").as_str(),
            &format!("Prune {ms}/: objspace 8000000000000000:0000 7fffffffffffffff:ffff pfs_id 1"),
            &format!("Prune {ms}/: prune_min is 0d/00:00:00"),
            &format!("Prune {ms}/ succeeded"),
        ],
        "{stdout}"
    );
    assert!(snapshot_tids(&m).is_empty());
    let mut live = 0;
    open(&root, 1)
        .for_each_record(|l, _| {
            assert_eq!(l.base.delete_tid, 0, "{l:?}");
            live += 1;
        })
        .unwrap();
    assert!(live > 0);
    let mut n = 0;
    assert_eq!(f_as_of(dir.path(), &m, snaps[4], &mut n), b"gen4");
    ok(&["verify", ms]);

    // PFS#0 cannot be destroyed, and says how to empty it instead.
    let out = run(&["-d", "pfs-destroy", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_has(
        &out,
        "hint: PFS#0 is the filesystem itself, but it can be pruned to nothing",
    );
    // Its files removed (an import of an empty tree), its history goes.
    let t = tree(dir.path(), [("zero", b"0".to_vec())]);
    import(&t, &root);
    fs::remove_file(t.join("zero")).unwrap();
    import(&t, &root);
    ok(&["prune-everything", root.to_str().unwrap()]);
    let mut deleted = 0;
    open(&root, 0)
        .for_each_record(|l, _| deleted += usize::from(l.base.delete_tid != 0))
        .unwrap();
    assert_eq!(deleted, 0);
    assert!(snapshot_tids(&root).is_empty());
}

#[test]
fn a_cycle_file_resumes_a_prune_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m, _) = five_generations(dir.path());
    let ms = m.to_str().unwrap();
    // A cycle file of an earlier run that stopped at the inode records of
    // object 2: the prune starts there, and the records above (the
    // MISC ones: entries and data) keep their history.
    let cycle = dir.path().join("cycle");
    let mut key = [0u8; 40];
    key[0..8].copy_from_slice(&2i64.to_le_bytes());
    key[36..40].copy_from_slice(&LOCALIZE_INODE.to_le_bytes());
    let mut file = key.to_vec();
    file.extend_from_slice(&0u64.to_le_bytes());
    fs::write(&cycle, &file).unwrap();
    let before = all_records(&root, 1);
    let out = tz(&["-c", cycle.to_str().unwrap(), "prune-everything", ms]);
    assert!(
        text(&out.stdout).contains(&format!(
            "Prune {ms}/: objspace 8000000000000000:0000 0000000000000002:0001 pfs_id 1\n"
        )),
        "{}",
        text(&out.stdout)
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Finished: the cycle file is gone; a run without it prunes the rest.
    assert!(fs::metadata(&cycle).is_err());
    let middle = all_records(&root, 1);
    assert!(middle < before, "{before} {middle}");
    ok(&["prune-everything", ms]);
    assert!(all_records(&root, 1) < middle);
}

/// A cycle file holding a key PRUNE refuses (a damaged file: PFS bits in
/// its localization) is passed over with a line saying so, as a file too
/// short for a key is: the prune runs whole and succeeds, where the
/// kernel's EINVAL would have failed this run and every later one.
#[test]
fn a_cycle_file_with_an_invalid_key_is_cleared_not_failed_on() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m, _) = five_generations(dir.path());
    let ms = m.to_str().unwrap();
    let cycle = dir.path().join("cycle");
    let mut file = vec![0u8; 48];
    file[36..40].copy_from_slice(&0x0005_0001u32.to_le_bytes());
    fs::write(&cycle, &file).unwrap();
    let before = all_records(&root, 1);
    let out = tz(&["-c", cycle.to_str().unwrap(), "prune-everything", ms]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!("cycle-file {}: clearing invalid key\n", cycle.display())
    );
    assert!(
        text(&out.stdout).contains(&format!(
            "Prune {ms}/: objspace 8000000000000000:0000 7fffffffffffffff:ffff pfs_id 1\n"
        )),
        "{}",
        text(&out.stdout)
    );
    assert!(fs::metadata(&cycle).is_err());
    let after = all_records(&root, 1);
    assert!(after < before, "{before} {after}");
    ok(&["prune-everything", ms]);
    assert_eq!(all_records(&root, 1), after);
}

/// `-t`: a prune still running when the time is up stops between two
/// calls, saves where it was in the cycle file, and the next run goes on
/// from there. The cycle file is a FIFO the test holds shut until the
/// time is up, so the prune starts late; its PFS has more records than
/// one call visits.
#[test]
fn a_prune_cut_by_its_timeout_resumes_from_its_cycle_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let ms = m.to_str().unwrap();
    make_history(&root, 34_000, 2, 16);
    let before = all_records(&root, 1);
    assert!(before > 1 << 16, "{before}");
    let cycle = dir.path().join("cycle");
    nix::unistd::mkfifo(&cycle, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let child = hammer()
        .args([
            "-t",
            "1",
            "-c",
            cycle.to_str().unwrap(),
            "prune-everything",
            ms,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // An empty cycle file: removed as an old version, the defaults kept.
    drop(fs::OpenOptions::new().write(true).open(&cycle).unwrap());
    let out = wait_output("the prune", 120, child);
    let (stdout, stderr, code) = outcome(&out);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stderr,
        format!("cycle-file {}: clearing old version\n", cycle.display())
    );
    let cut = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("Prune {ms}/ interrupted by timer at ")))
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_string();
    let saved = fs::read(&cycle).unwrap();
    assert_eq!(saved.len(), 48);
    let obj = i64::from_le_bytes(saved[0..8].try_into().unwrap());
    let lo = u32::from_le_bytes(saved[36..40].try_into().unwrap());
    assert_eq!(cut, format!("{obj:016x} {lo:04x}"));
    let middle = all_records(&root, 1);
    assert!(middle < before, "{before} {middle}");

    let out = tz(&["-c", cycle.to_str().unwrap(), "prune-everything", ms]);
    assert!(
        text(&out.stdout).contains(&format!(
            "objspace 8000000000000000:0000 {obj:016x}:{lo:04x} pfs_id 1\n"
        )) && text(&out.stdout).contains(&format!("Prune {ms}/ succeeded\n")),
        "{}",
        text(&out.stdout)
    );
    assert!(fs::metadata(&cycle).is_err());
    let mut deleted = 0;
    open(&root, 1)
        .for_each_record(|l, _| deleted += usize::from(l.base.delete_tid != 0))
        .unwrap();
    assert_eq!(deleted, 0);
}

/// Under ssh-remote's `-T`, prune and prune-everything reach the PFSes
/// named inside the prefix and no other: not through a softlink directory
/// (a directory of a store is PFS#0's), not by naming another's PFS.
#[test]
fn a_restricted_prune_reaches_no_pfs_outside_its_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let root = new_store(dir.path(), "st");
    fs::create_dir(root.join("a")).unwrap();
    fs::create_dir(root.join("b")).unwrap();
    let mine = root.join("a/pfs");
    let theirs = root.join("b/pfs");
    ok(&["pfs-master", mine.to_str().unwrap()]);
    ok(&["pfs-master", theirs.to_str().unwrap()]);
    let t = tree(dir.path(), [("f", b"x".to_vec())]);
    import(&t, &theirs);
    let tid = snapshot_tids(&theirs)[0];
    // A softlink directory inside the prefix leading to another's PFS.
    let links = root.join("a/links");
    fs::create_dir(&links).unwrap();
    std::os::unix::fs::symlink(
        format!("{}/@@0x{tid:016x}", theirs.display()),
        links.join("s"),
    )
    .unwrap();
    let prefix = root.join("a");
    let restricted = |args: &[&str]| {
        let line = format!("hammer {}", args.join(" "));
        hammer()
            .env("SSH_ORIGINAL_COMMAND", line)
            .args([
                "ssh-remote",
                "prune,prune-everything",
                prefix.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = restricted(&["prune", links.to_str().unwrap()]);
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            "hammer: hammer-remote: restricted target\n".into(),
            1
        )
    );
    let out = restricted(&["prune-everything", theirs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(snapshot_tids(&theirs), [tid]);
    let out = restricted(&["prune-everything", mine.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// SIGKILL at 50 points of a prune of thousands of prunable records (it
/// commits in short transactions): each time the store verifies, the
/// snapshot's view is whole, and a rerun ends where an uncut prune does.
#[test]
fn a_prune_killed_anywhere_leaves_a_sound_store_and_a_rerun_converges() {
    let dir = tempfile::tempdir().unwrap();
    let base = store_with_master(dir.path(), "base");
    let m = base.join("master");
    // Four imports of 2,000 files, most rewritten each time; the middle
    // two snapshots deleted, so their versions lie between the first and
    // the last one's and go.
    let t = tree(
        dir.path(),
        (0..2000).map(|i| (format!("d{}/f{i}", i % 20), format!("v0 {i}"))),
    );
    for g in 0..4 {
        if g > 0 {
            for i in (0..2000).filter(|i| i % 3 != 0) {
                fs::write(t.join(format!("d{}/f{i}", i % 20)), format!("v{g} {i}")).unwrap();
            }
        }
        import(&t, &m);
    }
    let snaps = snapshot_tids(&m);
    for middle in &snaps[1..3] {
        ok(&["snaprm", m.to_str().unwrap(), &format!("{middle:#018x}")]);
    }
    let snap = snaps[3];
    let views = [as_of(&base, 1, snaps[0]), as_of(&base, 1, snap)];
    // An uncut prune: the state every cut one must reach, and how long
    // it takes, to spread the kills over.
    let whole = copy_store(&base, &dir.path().join("whole"));
    let started = std::time::Instant::now();
    ok(&["prune", whole.join("master").to_str().unwrap()]);
    let took = started.elapsed().as_micros() as u64;
    let end = all_records(&whole, 1);
    let before = all_records(&base, 1);
    assert!(
        end + 2000 < before,
        "too little to prune: {before} -> {end}"
    );
    for i in 0..50u64 {
        let root = copy_store(&base, &dir.path().join(format!("cut{i}")));
        let m = root.join("master");
        let child = hammer()
            .args(["prune", m.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = std::time::Duration::from_micros(took * i / 50);
        kill_after("the killed prune", delay, child);
        ok(&["verify", m.to_str().unwrap()]);
        for (tid, view) in [snaps[0], snap].iter().zip(&views) {
            assert!(
                as_of(&root, 1, *tid) == *view,
                "cut {i}: a snapshot's view changed"
            );
        }
        ok(&["prune", m.to_str().unwrap()]);
        assert_eq!(all_records(&root, 1), end, "cut {i}");
        fs::remove_dir_all(&root).unwrap();
    }
}

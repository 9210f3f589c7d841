//! `prune -n` and `prune-everything -n` on a store: on random histories
//! with snapshots they tell exactly what the prune then does, and what a
//! reblock after it gives back to the byte, while changing nothing — the
//! store's files, its snapshot records, the cycle file; `-v` names each
//! record that would go with its path (spec: cli.md §24). Through the
//! kernel backend `-n` is refused (kernel_backend.rs).

#![cfg(not(feature = "kernel-double"))]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;
use hammer_mirror::ondisk::{rectype, LOCALIZE_MISC};

/// Every file of the store directory by name, with its bytes; but
/// SQLite's shared-memory index (`-shm`), which any reader may rewrite and
/// which holds nothing the WAL does not.
fn store_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .filter(|(name, _)| !name.ends_with("-shm"))
        .collect()
}

/// The numbers in the line of `stdout` holding `prefix`, after it.
fn numbers(stdout: &str, prefix: &str) -> Vec<u64> {
    let line = stdout
        .lines()
        .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no {prefix:?} in\n{stdout}"));
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect()
}

/// What `Pruned <n>/<m> records (<d> directory entries) and <b> bytes`
/// counts, or the dry run's `would prune` line after `prefix`.
fn counts(stdout: &str, prefix: &str) -> [u64; 4] {
    numbers(stdout, prefix).try_into().unwrap()
}

/// `Reblock would then free <f> bytes of the payload file (<s> bytes
/// now)`: (f, s).
fn freed(stdout: &str) -> (u64, u64) {
    match numbers(stdout, "Reblock would then free ")[..] {
        [f, s] => (f, s),
        ref other => panic!("{other:?}"),
    }
}

/// A history of `rounds` imports of a tree of files of every payload size
/// (kept in a row, or in the payload file), each round writing, rewriting,
/// moving and removing some at random; each import leaves a snapshot
/// record. Returns the store, its master and the snapshots' TIDs.
fn random_history(dir: &Path, rng: &mut Rng, rounds: usize) -> (PathBuf, PathBuf, Vec<u64>) {
    let root = store_with_master(dir, "st");
    let m = root.join("master");
    let t = dir.join("tree");
    let mut files: Vec<PathBuf> = Vec::new();
    let mut made = 0;
    for _ in 0..rounds {
        for _ in 0..1 + rng.below(12) {
            let name = PathBuf::from(format!("d{}/f{made}", rng.below(4)));
            made += 1;
            files.push(name);
        }
        for f in &files {
            let size = match rng.below(4) {
                0 => 1 + rng.below(400) as usize,
                1 => 600 + rng.below(3000) as usize,
                _ => 8_000 + rng.below(40_000) as usize,
            };
            if rng.below(3) > 0 || !t.join(f).exists() {
                fs::create_dir_all(t.join(f).parent().unwrap()).unwrap();
                fs::write(t.join(f), rng.bytes(size)).unwrap();
            }
        }
        // Some go, some move to another directory.
        for _ in 0..rng.below(4) {
            if files.len() > 2 {
                let f = files.remove(rng.below(files.len() as u64) as usize);
                if rng.below(2) == 0 {
                    fs::remove_file(t.join(&f)).unwrap();
                } else {
                    let to = PathBuf::from(format!("d{}/m{made}", rng.below(4)));
                    made += 1;
                    fs::create_dir_all(t.join(&to).parent().unwrap()).unwrap();
                    fs::rename(t.join(&f), t.join(&to)).unwrap();
                    files.push(to);
                }
            }
        }
        import(&t, &m);
    }
    let snaps = snapshot_tids(&m);
    assert_eq!(snaps.len(), rounds);
    (root, m, snaps)
}

/// On random histories, some snapshots deleted, with and without a
/// cycle file: `-n` prints the lines the prune prints before its PRUNE,
/// then exactly the counts the prune then reports, and the payload bytes
/// the prune and a reblock then give back; the store is byte for byte as
/// it was, its snapshots and the cycle file too.
#[test]
fn a_dry_run_tells_what_prune_and_reblock_then_do_and_changes_nothing() {
    let mut rng = Rng(0xd2a7_5eed_0001);
    for case in 0..6u64 {
        let dir = tempfile::tempdir().unwrap();
        let (root, m, snaps) = random_history(dir.path(), &mut rng, 4 + case as usize % 3);
        let ms = m.to_str().unwrap();
        let everything = case % 2 == 1;
        // Keep the first, the last and a few between.
        for s in &snaps[1..snaps.len() - 1] {
            if rng.below(2) == 0 {
                ok(&["snaprm", ms, &format!("{s:#018x}")]);
            }
        }
        let word = if everything {
            "prune-everything"
        } else {
            "prune"
        };
        let mut args = vec![word.to_string(), ms.to_string()];
        let cycle = dir.path().join("cycle");
        if case >= 3 {
            // A cycle file of a run that stopped in the middle of the
            // file data: both runs start there.
            let objs: BTreeSet<i64> = rows(&root)
                .iter()
                .map(|r| r.leaf.base.obj_id)
                .filter(|&o| o > 1)
                .collect();
            let obj = *objs.iter().nth(objs.len() / 2).unwrap();
            let mut file = vec![0u8; 48];
            file[0..8].copy_from_slice(&obj.to_le_bytes());
            file[36..40].copy_from_slice(&LOCALIZE_MISC.to_le_bytes());
            fs::write(&cycle, &file).unwrap();
            args.splice(
                0..0,
                ["-c".to_string(), cycle.to_str().unwrap().to_string()],
            );
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let snapls = ok(&["snapls", ms]).stdout;
        let before = store_files(&root);
        let cycle_before = fs::read(&cycle).ok();

        let dry_args: Vec<&str> = ["-n"].into_iter().chain(args.iter().copied()).collect();
        let (dry, stderr, code) = outcome(&run(&dry_args));
        assert_eq!((stderr.as_str(), code), ("", 0), "case {case}: {dry}");
        assert!(
            store_files(&root) == before,
            "case {case}: the store changed"
        );
        assert_eq!(ok(&["snapls", ms]).stdout, snapls, "case {case}");
        assert_eq!(fs::read(&cycle).ok(), cycle_before, "case {case}");

        let (real, stderr, code) = outcome(&run(&args));
        assert_eq!((stderr.as_str(), code), ("", 0), "case {case}: {real}");
        let head = |out: &str, end: &str| {
            let lines: Vec<String> = out.lines().map(str::to_string).collect();
            let at = lines.iter().position(|l| l.starts_with(end)).unwrap();
            lines[..at].to_vec()
        };
        let fs_name = format!("Prune {ms}/");
        assert_eq!(
            head(&dry, &format!("{fs_name}: dry run: ")),
            head(&real, &format!("{fs_name} succeeded")),
            "case {case}"
        );
        let would = counts(&dry, ": dry run: would prune ");
        let did = counts(&real, "Pruned ");
        assert_eq!(would, did, "case {case}:\n{dry}\n{real}");
        assert!(did[0] > 0, "case {case}: nothing pruned:\n{real}");
        if everything {
            assert!(ok(&["snapls", ms]).stdout.len() < snapls.len());
        }

        let (free, size) = freed(&dry);
        assert_eq!(size, payload_size(&root), "case {case}");
        ok(&["reblock", ms]);
        assert_eq!(
            size - payload_size(&root),
            free,
            "case {case}: reblock gave back another amount"
        );
        ok(&["verify", ms]);
    }
}

/// `-n -v`: one line per record the prune then removes — exactly those —
/// with its key as verify prints it and where it was as of its creation:
/// a file's path, the path a directory entry named.
#[test]
fn a_verbose_dry_run_names_each_record_and_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let ms = m.to_str().unwrap();
    let t = tree(
        dir.path(),
        [
            ("docs/a.txt", vec![1u8; 2000]),
            ("docs/b.txt", vec![2u8; 100]),
            ("old/name", vec![3u8; 700]),
        ],
    );
    import(&t, &m);
    // Between the first snapshot and the last: a.txt rewritten twice, a
    // scratch file made and removed, old/name moved.
    fs::write(t.join("docs/a.txt"), vec![4u8; 3000]).unwrap();
    fs::create_dir(t.join("tmp")).unwrap();
    fs::write(t.join("tmp/scratch"), vec![5u8; 900]).unwrap();
    fs::rename(t.join("old/name"), t.join("docs/renamed")).unwrap();
    import(&t, &m);
    fs::write(t.join("docs/a.txt"), vec![6u8; 4000]).unwrap();
    fs::remove_file(t.join("tmp/scratch")).unwrap();
    import(&t, &m);
    fs::write(t.join("docs/a.txt"), vec![7u8; 5000]).unwrap();
    import(&t, &m);
    for s in &snapshot_tids(&m)[1..3] {
        ok(&["snaprm", ms, &format!("{s:#018x}")]);
    }
    let a = obj_of(&root, "a.txt");
    let rows_before = rows(&root);

    let out = ok(&["-n", "-v", "prune", ms]);
    let stdout = text(&out.stdout);
    let listed: BTreeMap<String, String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Would prune "))
        .map(|l| {
            let at = l.find(" /").or_else(|| l.find(" (")).unwrap();
            (l[..at].to_string(), l[at + 1..].to_string())
        })
        .collect();
    let [n, _, d, _] = counts(&stdout, ": dry run: would prune ");
    assert_eq!(listed.len() as u64, n + d, "{stdout}");

    ok(&["prune", ms]);
    let after: BTreeSet<Vec<u8>> = rows(&root).into_iter().map(|r| r.k).collect();
    let gone: BTreeMap<String, _> = rows_before
        .iter()
        .filter(|r| !after.contains(&r.k))
        .map(|r| (key_text(&r.leaf), r.leaf.base))
        .collect();
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        gone.keys().collect::<Vec<_>>(),
        "{stdout}"
    );
    let mut seen = BTreeSet::new();
    for (key, b) in &gone {
        let place = listed[key].as_str();
        if b.obj_id == a {
            assert_eq!(place, "/docs/a.txt", "{key}");
        } else if b.rec_type == rectype::DIRENTRY {
            // The scratch file's entry, in tmp as of its making.
            assert_eq!(place, "/tmp/scratch", "{key}");
        } else if b.obj_id == 1 {
            assert_eq!(place, "/", "{key}");
        }
        seen.insert(place.to_string());
    }
    // tmp's inode changed when scratch went.
    for p in ["/docs/a.txt", "/tmp/scratch", "/tmp"] {
        assert!(seen.contains(p), "no record of {p} in\n{stdout}");
    }
}

/// Records of objects no directory entry leads to (written below the
/// file tree's level) are named so, as of their creation TID.
#[test]
fn a_record_of_no_linked_object_is_said_to_be_unlinked() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    make_history(&root, 10, 3, 1000);
    let out = ok(&["-n", "-v", "prune-everything", m.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Would prune "))
        .collect();
    assert!(!lines.is_empty(), "{stdout}");
    for l in lines {
        let tids = l.split("tids=").nth(1).unwrap();
        let create = &tids[..16];
        assert!(
            l.ends_with(&format!(" (no longer linked as of 0x{create})")),
            "{l}"
        );
    }
}

/// `-n` makes a dry run of prune, prune-everything and cleanup only:
/// another command is refused before it does anything.
#[test]
fn n_with_another_command_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let t = tree(dir.path(), [("f", b"x".to_vec())]);
    import(&t, &m);
    let snaps = ok(&["snapls", m.to_str().unwrap()]).stdout;
    let out = run(&["-n", "snaprm", m.to_str().unwrap(), "0x1"]);
    assert_eq!(
        outcome(&out),
        (
            String::new(),
            "hammer: -n (a dry run) is for prune, prune-everything and cleanup; 'snaprm' has none\n"
                .into(),
            1
        )
    );
    assert_eq!(ok(&["snapls", m.to_str().unwrap()]).stdout, snaps);
}

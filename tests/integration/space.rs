//! `hammer space` through the binary: what it says prune and reblock
//! give back is what they give back, to the byte, and each snapshot's
//! own bytes are what pruning after deleting it removes (spec: cli.md
//! §22).

use std::fs;
use std::path::Path;

use crate::common::*;

/// The counts of one `space` line: (records, bytes) after `label`.
fn counts(report: &str, label: &str) -> (u64, u64) {
    let at = report
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {report}"));
    let words: Vec<&str> = report[at + label.len()..].split_whitespace().collect();
    (
        words[0].parse().unwrap(),
        words[2].trim_end_matches([',', ';']).parse().unwrap(),
    )
}

fn space(pfs: &Path) -> String {
    text(&ok(&["space", pfs.to_str().unwrap()]).stdout)
}

/// `Pruned <n>/<m> records (...) and <b> bytes`: (n, b).
fn pruned(pfs: &Path) -> (u64, u64) {
    let out = text(&ok(&["prune", pfs.to_str().unwrap()]).stdout);
    let line = out.lines().find(|l| l.starts_with("Pruned ")).unwrap();
    let w: Vec<&str> = line.split_whitespace().collect();
    (
        w[1].split('/').next().unwrap().parse().unwrap(),
        w[w.len() - 2].parse().unwrap(),
    )
}

#[test]
fn what_space_says_prune_and_reblock_give_back_they_give_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "s");
    let m = root.join("master");
    let t = tree(dir.path(), [("a", vec![1u8; 5000]), ("b", vec![2u8; 300])]);
    import(&t, &m);
    fs::write(t.join("a"), vec![3u8; 7000]).unwrap();
    import(&t, &m);
    fs::remove_file(t.join("a")).unwrap();
    import(&t, &m);
    let before = space(&m);
    assert!(
        before.starts_with(&format!("{} (PFS#1): live ", m.display())),
        "{before}"
    );
    let unheld = counts(&before, "held by no snapshot: ");
    let history = counts(&before, "; history ");
    assert!(history.1 >= 12_000, "{before}");
    // prune removes exactly what no snapshot holds.
    assert_eq!(pruned(&m), unheld, "{before}");
    let after = space(&m);
    assert_eq!(counts(&after, "held by no snapshot: "), (0, 0), "{after}");
    assert_eq!(
        counts(&after, "; history "),
        (history.0 - unheld.0, history.1 - unheld.1)
    );
    // The first import's snapshot alone holds the first `a`: deleted and
    // pruned, exactly that goes.
    let snaps = text(&ok(&["snapls", m.to_str().unwrap()]).stdout);
    let first = snaps
        .lines()
        .nth(2)
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_string();
    let alone = counts(&after, &format!("snapshot {first} alone holds "));
    assert!(alone.1 >= 5000, "{after}");
    ok(&["snaprm", m.to_str().unwrap(), &first]);
    assert_eq!(pruned(&m), alone);
    // Its payload is now in no record: reblock gives exactly that back.
    let freed = space(&m);
    let file = |r: &str| counts(r, "payload file: ");
    let line = freed.lines().last().unwrap().to_string();
    let idle: u64 = line
        .split(", ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(idle >= 5000, "{freed}");
    let size = file(&freed).0;
    ok(&["reblock", m.to_str().unwrap()]);
    let compact = space(&m);
    assert_eq!(file(&compact).0, size - idle, "{compact}");
    assert!(compact.ends_with(", 0 of them in no record (reblock gives them back)\n"));
}

#[test]
fn a_path_that_is_no_pfs_of_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["space", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_has(&out, "that path is on no HAMMER filesystem and in no store");
    let out = run(&["space"]);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(1), "hammer space <pfs-path> ...\n".into())
    );
}

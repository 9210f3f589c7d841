//! `hammer snapls --changes` on the store: every TID a PFS can be exported
//! as of, newest last, on a master (its imports) and on a slave (what it
//! received and the sync points it reached, none beyond) (cli.md §13.4).

use std::fs;

use crate::common::*;

/// `hammer snapls --changes <pfs>` in UTC, which must succeed.
fn changes(pfs: &std::path::Path) -> std::process::Output {
    let out = hammer()
        .env("TZ", "UTC")
        .args(["snapls", "--changes", pfs.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

/// (TID, note) of each row of a snapls listing, after its two heading lines.
fn rows(out: &str) -> Vec<(u64, String)> {
    out.lines()
        .skip(2)
        .map(|l| {
            let mut f = l.split('\t');
            let tid = u64::from_str_radix(f.next().unwrap().trim_start_matches("0x"), 16).unwrap();
            let time = f.next().unwrap();
            assert!(time.ends_with(" UTC") && time.len() == 23, "{l}");
            (tid, f.next().unwrap().to_string())
        })
        .collect()
}

#[test]
fn snapls_lists_each_import_and_each_sync_point() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let tree = tree(dir.path(), [("a", vec![1u8; 3000])]);
    let t1 = import(&tree, &m);
    fs::write(tree.join("b"), b"bee").unwrap();
    fs::remove_file(tree.join("a")).unwrap();
    let t2 = import(&tree, &m);

    let out = changes(&m);
    let listing = text(&out.stdout);
    assert!(
        listing.starts_with(&format!(
            "Snapshots on {}\tPFS#1\nTransaction ID\t\tTimestamp\t\tNote\n",
            m.display()
        )),
        "{listing}"
    );
    let master = rows(&listing);
    let tids: Vec<u64> = master.iter().map(|r| r.0).collect();
    assert!(
        tids.windows(2).all(|w| w[0] < w[1]),
        "newest last: {listing}"
    );
    assert!(tids.contains(&t1) && tids.ends_with(&[t2]), "{listing}");
    let note2 = &master.last().unwrap().1;
    assert!(note2.contains("deleted"), "{listing}");
    // Every TID listed can be exported as of.
    for (i, tid) in tids.iter().enumerate() {
        let to = dir.path().join(format!("x{i}"));
        ok(&[
            "export",
            &format!("{}@@0x{tid:016x}", m.display()),
            to.to_str().unwrap(),
        ]);
    }

    let s = root.join("slave");
    copy_quietly(&m, &s);
    let sync = sync_end(&root, 2);
    fs::write(tree.join("c"), b"sea").unwrap();
    let t3 = import(&tree, &m);
    let out = changes(&s);
    let slave = rows(&text(&out.stdout));
    assert!(slave.iter().any(|r| r.0 == t1) && slave.iter().any(|r| r.0 == t2));
    assert!(
        slave
            .iter()
            .any(|r| r.0 == sync && r.1.starts_with("sync point")),
        "{slave:?}"
    );
    // t3 is not on the slave yet: nothing beyond its sync point is listed.
    assert!(slave.iter().all(|r| r.0 <= sync && r.0 != t3), "{slave:?}");

    let out = run(&["snapls", "--changes", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
}

/// A PFS link retargeted while a command resolves it: import, export and
/// snapls resolve the path once, so a run works on the PFS the link named
/// then or fails as getpfs fails for a PFS that is not there. They used to
/// check the path, throw that handle away and resolve it again, and could
/// pass the check on one PFS and then open another.
#[test]
fn a_link_retargeted_during_snapls_is_resolved_once() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let link = root.join("flip");
    // The link exists before the first snapls, whichever thread runs first.
    std::os::unix::fs::symlink("@@PFS00001", &link).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, link, tmp) = (stop.clone(), link.clone(), root.join("flip.tmp"));
        std::thread::spawn(move || {
            // PFS#1 is the master; PFS#2 does not exist.
            for target in ["@@PFS00001", "@@PFS00002"].iter().cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                std::os::unix::fs::symlink(target, &tmp).unwrap();
                fs::rename(&tmp, &link).unwrap();
            }
        })
    };
    let outs: Vec<_> = (0..100)
        .map(|_| run(&["snapls", "--changes", link.to_str().unwrap()]))
        .collect();
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    let gone = format!(
        "hammer: Cannot access {}: No such file or directory\n",
        root.display()
    );
    let listed = outs.iter().filter(|o| o.status.success()).count();
    for out in &outs {
        if out.status.success() {
            assert!(text(&out.stdout).contains("\tPFS#1\n"), "{out:?}");
        } else {
            assert_eq!(text(&out.stderr), gone);
        }
    }
    assert!(
        0 < listed && listed < outs.len(),
        "{listed} of {} listed",
        outs.len()
    );
}

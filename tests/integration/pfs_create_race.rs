//! PFS creations at the same time in one store (two mirror-writes
//! auto-creating slaves, scripts running pfs-master in parallel) each get
//! a PFS of their own: before, two could pick the same free id and the
//! second SET overwrote the first, leaving two links to one PFS.

// Through the kernel backend a creation is GET then SET, as on HAMMER,
// whose ioctls have no exclusive create: the original's race is kept there.
#![cfg(not(feature = "kernel-double"))]

use std::collections::BTreeSet;
use std::fs;
use std::process::Stdio;

use crate::common::*;

#[test]
fn creations_at_once_get_a_pfs_each() {
    let dir = tempfile::tempdir().unwrap();
    let root = new_store(dir.path(), "s");
    for round in 0..3 {
        let names: Vec<String> = (0..8).map(|i| format!("r{round}p{i}")).collect();
        let children: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let cmd = if i % 2 == 0 {
                    "pfs-master"
                } else {
                    "pfs-slave"
                };
                hammer()
                    .args([cmd, root.join(n).to_str().unwrap()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
    }
    let mut ids = BTreeSet::new();
    let mut uuids = BTreeSet::new();
    for e in fs::read_dir(&root).unwrap() {
        let path = e.unwrap().path();
        let Some(id) = link_id(&path) else {
            continue;
        };
        assert!(ids.insert(id), "two links name PFS#{id}");
        let status = ok(&["pfs-status", path.to_str().unwrap()]);
        let status = text(&status.stdout);
        let unique = status
            .lines()
            .find(|l| l.contains("unique-uuid="))
            .unwrap()
            .to_string();
        assert!(uuids.insert(unique), "{status}");
    }
    assert_eq!(ids.len(), 24);
}

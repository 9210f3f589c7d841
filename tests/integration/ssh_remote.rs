//! ssh-remote exactly as sshd runs an authorized_keys forced command,
//! `hammer ssh-remote <commands> <prefix>` with the client's command line
//! in SSH_ORIGINAL_COMMAND, without sshd (tests/ssh_e2e.rs goes through a
//! real one): `-T` confines the PFS a path opens, not the path's text.

use std::path::Path;
use std::process::Output;

use crate::common::*;
use hammer_mirror::ondisk::PseudofsData;
use hammer_mirror::pfs::Pfs;
use hammer_mirror::wire::record::PFSD_OFF_DATA;

const REFUSED: &str = "hammer: hammer-remote: restricted target\n";

/// `hammer ssh-remote mirror-read,mirror-write <prefix>` running `command`
/// with `input` on its standard input.
fn forced(prefix: &Path, command: &str, input: &[u8]) -> Output {
    run_with_input(
        hammer()
            .args([
                "ssh-remote",
                "mirror-read,mirror-write",
                prefix.to_str().unwrap(),
            ])
            .env("SSH_ORIGINAL_COMMAND", command),
        input,
    )
}

fn assert_refused(out: &Output, command: &str, want: &str) {
    assert_eq!(
        (
            out.status.code(),
            text(&out.stderr).as_str(),
            out.stdout.len()
        ),
        (Some(1), want, 0),
        "{command}"
    );
}

/// The paths by which client A (prefix `<store>/clientA`) could name PFS
/// `id` of someone else.
fn references(store: &Path, id: u32) -> Vec<String> {
    let a = store.join("clientA").display().to_string();
    let tid = sync_end(store, id);
    let mut v = Vec::new();
    for name in [
        format!("@@-1:{id:05}"),
        format!("@@0x{tid:016x}:{id:05}"),
        format!("@@PFS{id:05}"),
    ] {
        v.push(format!("{a}/{name}"));
        v.push(format!("{a}/{name}/"));
        v.push(format!("{a}/./{name}//"));
    }
    v
}

/// Item 1, read: no `@@` form, trailing `/` or plain directory gets client
/// A another client's PFS (or PFS#0, the store's own).
#[test]
fn reading_another_clients_pfs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = two_clients(dir.path());
    let a = store.join("clientA");
    let mut paths = references(&store, 2);
    paths.extend(references(&store, 3));
    let ad = a.display();
    paths.extend([
        format!("{ad}"),
        format!("{ad}/"),
        format!("{ad}/."),
        store.join("clientB/pfs").display().to_string(),
        store.display().to_string(),
    ]);
    for p in &paths {
        for cmd in [
            format!("hammer mirror-read {p}"),
            format!("hammer -B mirror-read {p} 0x1"),
        ] {
            assert_refused(&forced(&a, &cmd, b""), &cmd, REFUSED);
        }
    }
    let cmd = format!("hammer mirror-read {ad}/../clientB/pfs");
    assert_refused(
        &forced(&a, &cmd, b""),
        &cmd,
        "hammer: hammer-remote: '..' not allowed\n",
    );
}

/// Item 1, uuid leak and write: a two-way mirror-write sends the target's
/// PFSD (its shared uuid) before reading anything, and a stream with that
/// uuid SKIPping the whole key space wiped the target. Refused before
/// either, whatever the path's form; B's slave and the store stay as they
/// were.
#[test]
fn writing_another_clients_pfs_is_refused_before_its_header_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let store = two_clients(dir.path());
    let a = store.join("clientA");
    let wipe = wipe_stream(&store);
    let before = pfs_state(&store, 3);
    let b_uuid = open(&store, 3).get_pseudofs().unwrap().shared_uuid;
    let mut paths = references(&store, 3);
    paths.push(a.display().to_string());
    paths.push(format!("{}/", a.display()));
    for p in &paths {
        for opts in ["-2 -y", "-y", "-2"] {
            let cmd = format!("hammer {opts} mirror-write {p}");
            let out = forced(&a, &cmd, &wipe);
            assert_refused(&out, &cmd, REFUSED);
            assert!(!text(&out.stderr).contains(&b_uuid.to_string()));
        }
    }
    assert!(pfs_state(&store, 3) == before, "B's slave changed");
    assert!(open(&store, 4).get_pseudofs().is_err(), "a PFS was created");
    let in_a: Vec<_> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(in_a, ["pfs"]);
}

/// What the restriction is for still works: client A reads its master and
/// creates and updates its own slave, by the forms mirror-copy sends.
#[test]
fn the_clients_own_pfses_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = two_clients(dir.path());
    let a = store.join("clientA");
    let b_before = (pfs_state(&store, 2), pfs_state(&store, 3));
    let own_uuid = open(&store, 1).get_pseudofs().unwrap().shared_uuid;
    let ad = a.display();
    for p in [format!("{ad}/pfs"), format!("{ad}/pfs/")] {
        let cmd = format!("hammer -v mirror-read {p}");
        let read = forced(&a, &cmd, b"");
        assert_eq!(read.status.code(), Some(0), "{cmd}: {}", text(&read.stderr));
        let pfsd = &read.stdout[PFSD_OFF_DATA..PFSD_OFF_DATA + PseudofsData::SIZE];
        let pfsd = PseudofsData::decode(pfsd.try_into().unwrap());
        assert_eq!(pfsd.shared_uuid, own_uuid, "{cmd}");
        // A new slave, then an update of it.
        let cmd = format!("hammer -y mirror-write {ad}/slave");
        let write = forced(&a, &cmd, &read.stdout);
        assert_eq!(
            write.status.code(),
            Some(0),
            "{cmd}: {}",
            text(&write.stderr)
        );
        assert_mirrored((&store, 1), (&store, 4));
        make_history_in(&store, 1, 5, 1, 100);
    }
    assert!((pfs_state(&store, 2), pfs_state(&store, 3)) == b_before);
}

//! Which history a PFS keeps: the userland half of `hammer prune` (the
//! original's cmd_softprune.c), as a library the commands call. It finds
//! the snapshots to keep — softlinks `…@@0x<tid>` in a directory, and the
//! PFS's snapshot records — turns them into HAMMERIOC_PRUNE's elements
//! exactly as the original does, and drives a prune call by call with its
//! resume point, so a `-t` deadline or a `-c` cycle file can stop it and
//! go on later (kernel-semantics.md §6, §6.1; ioctl-abi.md §9, §11). On a
//! store it also tells what a prune would do without doing it (`DryRun`,
//! `prune -n`).

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::cparse::strtoull;
use crate::ondisk::SnapshotData;
use crate::pfs::getpfs::parse_pfs_ref;
use crate::pfs::retain::MAX_TID;
use crate::pfs::{Pfs, PruneElm, PruneReq, Result, SnapshotReq};

mod dry_run;
pub mod grid;
#[cfg(test)]
mod props;
pub mod schedule;

pub use dry_run::DryRun;

/// A snapshot to keep: its TID and when it was taken, in seconds since the
/// epoch (0 when unknown; prune-min passes over such a snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapTime {
    pub tid: u64,
    pub time: i64,
}

impl From<&SnapshotData> for SnapTime {
    /// A snapshot record's TID and time (its `ts` counts µs).
    fn from(s: &SnapshotData) -> Self {
        SnapTime {
            tid: s.tid,
            time: i64::try_from(s.ts / 1_000_000).unwrap_or(i64::MAX),
        }
    }
}

/// HAMMERIOC_PRUNE's elements for a set of snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Softprune {
    /// Newest first; empty when there is nothing to prune.
    pub elms: Vec<PruneElm>,
    /// How many of the newest snapshots prune-min took out of the list
    /// (the original says it "will not clean between the teeth of the
    /// first N snapshots"); 0 when it took none.
    pub held_by_prune_min: usize,
}

/// The elements `hammer prune` gives the kernel for the snapshots `snaps`,
/// with the PFS's `prune_min` (seconds) at the time `now`, as the
/// original's finalization builds them:
///
/// 1. sorted by TID, newest first; a TID seen twice counts once (the
///    first one given keeps its time);
/// 2. each snapshot's bucket runs from its TID to the next newer one's,
///    the newest's to HAMMER_MAX_TID;
/// 3. with a non-zero `prune_min`, looking from the oldest snapshot
///    towards the newest, the first one taken less than `prune_min`
///    seconds before `now` and every newer one are dropped (snapshots of
///    unknown time passed over), and the newest left gets HAMMER_MAX_TID
///    as its end;
/// 4. the newest bucket is dropped: all history after the newest snapshot
///    kept stays, fine-grained;
/// 5. if any bucket is left, one more from TID 1 to the oldest snapshot:
///    history before it is pruned whole;
/// 6. each bucket's `mod_tid` is its length, so that a record goes when
///    its whole life lies in one bucket.
pub fn softprune_elms(snaps: &[SnapTime], prune_min: i32, now: i64) -> Softprune {
    let mut sorted = snaps.to_vec();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.tid));
    sorted.dedup_by_key(|s| s.tid);
    // (beg_tid, end_tid, time) until step 6 sets mod_tid.
    let mut elms: Vec<(u64, u64, i64)> = Vec::with_capacity(sorted.len() + 1);
    for s in &sorted {
        let end = elms.last().map_or(MAX_TID, |e| e.0);
        elms.push((s.tid, end, s.time));
    }
    let mut held = 0;
    if prune_min != 0 {
        let young = elms
            .iter()
            .rposition(|e| e.2 != 0 && now.wrapping_sub(e.2) < i64::from(prune_min));
        if let Some(i) = young {
            held = i + 1;
            elms.drain(..held);
            if let Some(first) = elms.first_mut() {
                first.1 = MAX_TID;
            }
        }
    }
    if !elms.is_empty() {
        elms.remove(0);
    }
    if let Some(oldest) = elms.last().map(|e| e.0) {
        elms.push((1, oldest, 0));
    }
    Softprune {
        elms: elms
            .into_iter()
            .map(|(beg_tid, end_tid, _)| PruneElm {
                beg_tid,
                end_tid,
                mod_tid: end_tid.wrapping_sub(beg_tid),
            })
            .collect(),
        held_by_prune_min: held,
    }
}

/// A snapshot softlink: `name` in its directory, pointing at `fs`@@`tid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotLink {
    pub name: OsString,
    /// The filesystem (or PFS) path before the `@@`, relative links taken
    /// from the directory.
    pub fs: PathBuf,
    pub tid: u64,
    /// The earlier of the link's ctime and mtime, in seconds.
    pub time: i64,
}

/// The target a snapshot link holds, read as the original reads it: the
/// last `@` must follow another; the TID is what follows `@@`, read as
/// `strtoull(…, 0)` does (`0x` hex, a leading 0 octal, else decimal, 0
/// when there is no number); the path is what precedes it, after `dir/`
/// unless it starts with `/`. `None` for any other text.
pub fn parse_snapshot_link(dir: &Path, target: &[u8]) -> Option<(PathBuf, u64)> {
    let at = target.iter().rposition(|&c| c == b'@')?;
    if at == 0 || target[at - 1] != b'@' {
        return None;
    }
    let prefix = &target[..at - 1];
    let tid = strtoull(&target[at + 1..], 0).0;
    let fs = if target.first() == Some(&b'/') {
        PathBuf::from(OsString::from_vec(prefix.to_vec()))
    } else {
        let mut p = dir.as_os_str().as_bytes().to_vec();
        p.push(b'/');
        p.extend_from_slice(prefix);
        PathBuf::from(OsString::from_vec(p))
    };
    Some((fs, tid))
}

/// Whether a link's text ends in a PFS name (`getpfs::parse_pfs_ref`).
fn names_a_pfs(target: &[u8]) -> bool {
    let name = target.rsplit(|&c| c == b'/').next().unwrap_or(target);
    name.windows(2)
        .rposition(|w| w == b"@@")
        .is_some_and(|at| parse_pfs_ref(&name[at..]).is_some())
}

/// The original reads a link into a buffer of MAXPATHLEN − 1 bytes.
const LINK_MAX: usize = 1023;

/// The snapshot softlinks directly in `dir` (not its subdirectories),
/// in directory order: every symbolic link whose target
/// `parse_snapshot_link` reads; anything else is passed over, and so is a
/// PFS link (its text ending in `@@PFS%05d`, `@@-1:%05d` or
/// `@@0x%016x:%05d`), which the original took for a snapshot at TID 0 or
/// 0xffffffffffffffff: a store's root holds its PFS links, and a prune
/// of PFS#0 (there, the root) would have let them stand in for its
/// snapshot records (cli.md §15).
pub fn scan_snapshot_links(dir: &Path) -> io::Result<Vec<SnapshotLink>> {
    let mut links = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.file_type().is_symlink() {
            continue;
        }
        let Ok(target) = fs::read_link(&path) else {
            continue;
        };
        let bytes = target.as_os_str().as_bytes();
        let bytes = &bytes[..bytes.len().min(LINK_MAX)];
        if names_a_pfs(bytes) {
            continue;
        }
        if let Some((fs, tid)) = parse_snapshot_link(dir, bytes) {
            links.push(SnapshotLink {
                name: entry.file_name(),
                fs,
                tid,
                time: meta.ctime().min(meta.mtime()),
            });
        }
    }
    Ok(links)
}

/// Every live snapshot record of the PFS, as the original's prune lists
/// them: GET_SNAPSHOT from the start, each call continuing after the last
/// snapshot of the one before, until EOF (or an empty answer, where
/// snapls stops). In signed key order, as the kernel returns them.
pub fn snapshot_records(pfs: &dyn Pfs) -> Result<Vec<SnapshotData>> {
    let mut req = SnapshotReq::default();
    let mut all = Vec::new();
    loop {
        pfs.get_snapshots(&mut req)?;
        if let Some(e) = req.error {
            return Err(e.into());
        }
        all.extend_from_slice(req.held());
        if req.eof || req.count == 0 {
            return Ok(all);
        }
    }
}

/// How a driven prune ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PruneEnd {
    /// The whole range was scanned.
    Finished,
    /// `go_on` said stop: `req.key_cur` is where the next run starts (as
    /// its `key_end`; the original keeps it in the `-c` cycle file).
    Stopped,
}

/// Runs `req` on `pfs` call by call: after each call that stopped early
/// (HEAD_INTR: a signal on HAMMER, a call's work bound on the store),
/// `go_on` decides whether to go on from `key_cur`. The statistics add up
/// in `req.stats`.
pub fn prune_until(
    pfs: &mut dyn Pfs,
    req: &mut PruneReq,
    mut go_on: impl FnMut(&PruneReq) -> bool,
) -> Result<PruneEnd> {
    loop {
        pfs.prune(req)?;
        if !req.interrupted {
            return Ok(PruneEnd::Finished);
        }
        if !go_on(req) {
            return Ok(PruneEnd::Stopped);
        }
        req.key_end = req.key_cur;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tid: u64, time: i64) -> SnapTime {
        SnapTime { tid, time }
    }

    fn elm(beg_tid: u64, end_tid: u64) -> PruneElm {
        PruneElm {
            beg_tid,
            end_tid,
            mod_tid: end_tid - beg_tid,
        }
    }

    /// hammer(8)'s example: three snapshots, no prune-min.
    #[test]
    fn three_snapshots_make_three_buckets_below_the_newest() {
        let snaps = [
            at(0x10d2cd13f3fde98f, 0),
            at(0x10d2cd05b7270d16, 0),
            at(0x10d2cd222adee364, 0),
        ];
        let s = softprune_elms(&snaps, 0, 0);
        assert_eq!(
            s.elms,
            [
                elm(0x10d2cd13f3fde98f, 0x10d2cd222adee364),
                elm(0x10d2cd05b7270d16, 0x10d2cd13f3fde98f),
                elm(1, 0x10d2cd05b7270d16),
            ]
        );
        assert_eq!(s.held_by_prune_min, 0);
    }

    /// One snapshot leaves no bucket: its own goes (history after the
    /// newest stays) and the one before it is only added when a bucket is
    /// left, so the original finds "No snapshots found" and prunes
    /// nothing; a second snapshot makes two.
    #[test]
    fn one_snapshot_prunes_nothing_two_prune_before_the_newest() {
        assert_eq!(softprune_elms(&[at(500, 10)], 0, 0), Softprune::default());
        assert_eq!(softprune_elms(&[], 0, 0), Softprune::default());
        let s = softprune_elms(&[at(500, 10), at(900, 20)], 0, 0);
        assert_eq!(s.elms, [elm(500, 900), elm(1, 500)]);
    }

    #[test]
    fn duplicates_count_once() {
        let s = softprune_elms(&[at(300, 1), at(200, 1), at(300, 2), at(100, 1)], 0, 0);
        assert_eq!(s.elms, [elm(200, 300), elm(100, 200), elm(1, 100)]);
    }

    /// prune-min keeps the newest snapshots' history whole: the oldest
    /// snapshot younger than prune-min and every newer one leave the list.
    #[test]
    fn prune_min_holds_the_young_snapshots() {
        let now = 1_000_000;
        let day = 86_400;
        // TIDs grow with time; the two youngest are within 2 days.
        let snaps = [
            at(100, now - 10 * day),
            at(200, now - 5 * day),
            at(300, now - 3 * day),
            at(400, now - day),
            at(500, now - 3600),
        ];
        let s = softprune_elms(&snaps, 2 * day as i32, now);
        assert_eq!(s.held_by_prune_min, 2);
        // 300 became the newest (its bucket to MAX_TID, then dropped).
        assert_eq!(s.elms, [elm(200, 300), elm(100, 200), elm(1, 100)]);
        // A young snapshot older (by TID) than old ones holds those after
        // it too, as the original scans from the oldest.
        let odd = [
            at(100, now - 10 * day),
            at(200, now - 60),
            at(300, now - 5 * day),
            at(400, now - 6 * day),
        ];
        let s = softprune_elms(&odd, day as i32, now);
        assert_eq!((s.held_by_prune_min, s.elms), (3, vec![]));
        // Unknown times are passed over.
        let s = softprune_elms(&[at(100, 0), at(200, now)], day as i32, now);
        assert_eq!((s.held_by_prune_min, s.elms), (1, vec![]));
        let s = softprune_elms(&[at(100, now - 5 * day), at(200, 0)], day as i32, now);
        assert_eq!(
            (s.held_by_prune_min, s.elms),
            (0, vec![elm(100, 200), elm(1, 100)])
        );
    }

    #[test]
    fn links_are_read_as_the_original_reads_them() {
        let dir = Path::new("/snaps");
        assert_eq!(
            parse_snapshot_link(dir, b"/usr/obj/@@0x10d2cd05b7270d16"),
            Some((PathBuf::from("/usr/obj/"), 0x10d2cd05b7270d16))
        );
        assert_eq!(
            parse_snapshot_link(dir, b"../fs@@0x0000000100000010"),
            Some((PathBuf::from("/snaps/../fs"), 0x1_0000_0010))
        );
        // strtoull with base 0: decimal and octal too, 0 without digits.
        assert_eq!(parse_snapshot_link(dir, b"/a@@42").unwrap().1, 42);
        assert_eq!(parse_snapshot_link(dir, b"/a@@017").unwrap().1, 0o17);
        assert_eq!(parse_snapshot_link(dir, b"/a@@x").unwrap().1, 0);
        // The last @ decides.
        assert_eq!(
            parse_snapshot_link(dir, b"/a@@1@@2").unwrap(),
            (PathBuf::from("/a@@1"), 2)
        );
        for bad in [&b"/a@0x10"[..], b"@x", b"/plain", b"/a@@1@x"] {
            assert_eq!(parse_snapshot_link(dir, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_directory_scan_finds_only_snapshot_links() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::os::unix::fs::symlink("/fs/@@0x0000000100000020", p.join("snap1")).unwrap();
        std::os::unix::fs::symlink("rel@@0x30", p.join("snap2")).unwrap();
        std::os::unix::fs::symlink("/elsewhere", p.join("other")).unwrap();
        fs::write(p.join("file@@0x40"), b"").unwrap();
        fs::create_dir(p.join("sub")).unwrap();
        std::os::unix::fs::symlink("/fs/@@0x50", p.join("sub/deeper")).unwrap();
        // PFS links, as a store's root and a HAMMER /pfs directory hold.
        std::os::unix::fs::symlink("@@PFS00001", p.join("pfs")).unwrap();
        std::os::unix::fs::symlink("/fs/@@-1:00002", p.join("master")).unwrap();
        std::os::unix::fs::symlink("@@0x0000000100000060:00003", p.join("slave")).unwrap();
        let mut links = scan_snapshot_links(p).unwrap();
        links.sort_by_key(|l| l.tid);
        let got: Vec<_> = links
            .iter()
            .map(|l| (l.name.clone(), l.fs.clone(), l.tid))
            .collect();
        assert_eq!(
            got,
            [
                ("snap2".into(), p.join("rel"), 0x30),
                ("snap1".into(), PathBuf::from("/fs/"), 0x1_0000_0020),
            ]
        );
        assert!(links.iter().all(|l| l.time > 0));
        assert!(scan_snapshot_links(&p.join("missing")).is_err());
    }

    /// The rule's one exception to "views at snapshots survive": a record
    /// created exactly at a snapshot's TID and deleted before the next
    /// snapshot is visible as of the first and goes (kernel-semantics.md
    /// §6).
    #[test]
    fn a_record_created_exactly_at_a_snapshot_tid_goes() {
        let s = softprune_elms(&[at(100, 0), at(200, 0), at(300, 0)], 0, 0);
        let goes = |c, d| crate::pfs::retain::prunes(false, &s.elms, c, d);
        assert!(goes(100, 150), "visible as of 100, yet pruned");
        assert!(!goes(99, 150) && !goes(100, 200) && !goes(150, 250));
        assert!(goes(101, 199) && goes(50, 99));
        // After the newest snapshot everything stays.
        assert!(!goes(300, 310) && !goes(250, 310));
    }

    /// A driven prune stops when told to and goes on from key_cur to the
    /// same end as one that is not stopped.
    #[test]
    fn a_stopped_prune_goes_on_from_key_cur() {
        use crate::ondisk::{rectype, LOCALIZE_MISC};
        use crate::pfs::store::{RecordId, Store};
        let d = tempfile::tempdir().unwrap();
        let mut store = Store::create(&d.path().join("s")).unwrap();
        store.set_pfs_id(1);
        store.set_pseudofs(&Default::default()).unwrap();
        for round in 0..2u8 {
            let mut t = store.begin().unwrap();
            for obj in 0..40 {
                let id = RecordId {
                    localization: LOCALIZE_MISC,
                    obj_id: 0x100 + obj,
                    rec_type: rectype::DATA,
                    key: 0x4000,
                };
                t.put(&id, 2, &[round; 10]).unwrap();
            }
            t.commit().unwrap();
        }
        store.set_prune_bounds(4, 5);
        let mut req = PruneReq::new(true, Vec::new());
        let mut calls = 0;
        let end = prune_until(&mut store, &mut req, |_| {
            calls += 1;
            calls < 3
        });
        assert_eq!(end.unwrap(), PruneEnd::Stopped);
        assert!(req.stats.raw_records > 0 && req.stats.raw_records < 40);
        // As a cycle file carries it: key_cur becomes the next key_end.
        let mut next = PruneReq::new(true, Vec::new());
        next.key_end = req.key_cur;
        assert_eq!(
            prune_until(&mut store, &mut next, |_| true).unwrap(),
            PruneEnd::Finished
        );
        assert_eq!(req.stats.raw_records + next.stats.raw_records, 40);
        let mut live = 0;
        store
            .for_each_record(|l, _| {
                assert_eq!(l.base.delete_tid, 0);
                live += 1;
            })
            .unwrap();
        assert_eq!(live, 41, "40 files and the root");
    }

    #[test]
    fn snapshot_times_are_seconds() {
        let s = SnapshotData::new(7, 1_700_000_000_999_999, b"");
        assert_eq!(SnapTime::from(&s), at(7, 1_700_000_000));
        let far = SnapshotData::new(7, u64::MAX, b"");
        assert_eq!(SnapTime::from(&far).time, (u64::MAX / 1_000_000) as i64);
    }
}

//! What a PFS keeps and forgets: the requests of HAMMER's snapshot, config
//! and prune ioctls as `trait Pfs` takes them, and the rule by which
//! HAMMERIOC_PRUNE decides that a record goes (kernel-semantics.md §2.6,
//! §6; ioctl-abi.md §9-11). Every backend applies the one `prunes` here.

use nix::errno::Errno;

use crate::ondisk::{BaseElm, SnapshotData, LOCALIZE_MASK, LOCALIZE_PSEUDOFS_MASK};

/// `HAMMER_SNAPS_PER_IOCTL`.
pub const SNAPS_PER_CALL: usize = 16;
/// `HAMMER_MAX_PRUNE_ELMS`.
pub const MAX_PRUNE_ELMS: usize = 1024 * 1024 / 24;
/// `HAMMER_MAX_TID`.
pub const MAX_TID: u64 = u64::MAX;

/// The in/out fields of `hammer_ioc_snapshot` (ioctl-abi.md §9).
///
/// ADD and DEL work on `snaps[index..count]` and leave `index` on the
/// first snapshot they could not add (EEXIST) or delete (ENOENT), that
/// errno in `error`. GET wants `index` 0; it continues after
/// `snaps[count - 1]` (from the start when `count` is 0), returns up to 16
/// live snapshots in `count` and `snaps`, and sets `eof` when none follows
/// them. Like the kernel's flag, `eof` is only ever set: a caller starting
/// a new listing clears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotReq {
    pub index: u32,
    pub count: u32,
    pub snaps: [SnapshotData; SNAPS_PER_CALL],
    /// Out: `head.error`, the failure at `snaps[index]`.
    pub error: Option<Errno>,
    /// In/out: `HAMMER_IOC_SNAPSHOT_EOF` in `head.flags`.
    pub eof: bool,
}

impl Default for SnapshotReq {
    fn default() -> Self {
        SnapshotReq {
            index: 0,
            count: 0,
            snaps: [SnapshotData::default(); SNAPS_PER_CALL],
            error: None,
            eof: false,
        }
    }
}

impl SnapshotReq {
    /// A request for ADD or DEL of `snaps` (at most 16).
    pub fn of(snaps: &[SnapshotData]) -> Option<Self> {
        let mut req = SnapshotReq::default();
        req.snaps.get_mut(..snaps.len())?.copy_from_slice(snaps);
        req.count = snaps.len() as u32;
        Some(req)
    }

    /// The snapshots `count` says the request holds.
    pub fn held(&self) -> &[SnapshotData] {
        let n = (self.count as usize).min(SNAPS_PER_CALL);
        &self.snaps[..n]
    }

    /// ADD and DEL's checks: EINVAL for more than 16 snapshots or an
    /// `index` beyond `count`.
    pub fn check_change(&self) -> Result<(), Errno> {
        if self.count as usize > SNAPS_PER_CALL || self.index > self.count {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// GET's checks: EINVAL for a non-zero `index` or more than 16.
    pub fn check_get(&self) -> Result<(), Errno> {
        if self.index != 0 || self.count as usize > SNAPS_PER_CALL {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// The lowest record key GET returns: past the last snapshot the
    /// caller holds, as a signed key (`None`: nothing lies past it; the
    /// kernel's `+ 1` would overflow there).
    pub fn get_from(&self) -> Option<i64> {
        match self.count {
            0 => Some(i64::MIN),
            n => (self.snaps[n as usize - 1].tid as i64).checked_add(1),
        }
    }
}

/// `struct hammer_ioc_prune_elm`: one pruning bucket set. Records whose
/// whole life lies within `[beg_tid, end_tid]` and within one `mod_tid`
/// step from `beg_tid` go (kernel-semantics.md §6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneElm {
    pub beg_tid: u64,
    pub end_tid: u64,
    pub mod_tid: u64,
}

/// The statistics `hammer_ioc_prune` carries; PRUNE adds to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PruneStats {
    /// Records visited.
    pub scan_records: i64,
    /// Records destroyed other than directory entries.
    pub raw_records: i64,
    /// Directory entries destroyed.
    pub dir_records: i64,
    /// Payload bytes of the records destroyed.
    pub bytes: i64,
    /// Always 0: the kernel stopped realigning records in 2008.
    pub realignments: i64,
    /// The smallest create_tid visited (the tool starts it at MAX_TID).
    pub oldest_tid: u64,
}

impl Default for PruneStats {
    fn default() -> Self {
        PruneStats {
            scan_records: 0,
            raw_records: 0,
            dir_records: 0,
            bytes: 0,
            realignments: 0,
            oldest_tid: MAX_TID,
        }
    }
}

/// The in/out fields of `hammer_ioc_prune` (ioctl-abi.md §11).
///
/// The scan goes backwards over the PFS's records from the end of the
/// object `key_end` names (its localization type and obj_id; the other
/// fields are not read) down to the start of the object `key_beg` names.
/// `key_cur` comes back on the last record visited (localization type
/// only). `interrupted` (HAMMER_IOC_HEAD_INTR) says the scan stopped
/// before its end — a signal on HAMMER, the work bound of one call on the
/// store — and `key_cur` is where to go on: call again with `key_end =
/// key_cur` (the object there is scanned again from its end, harmlessly).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneReq {
    /// `HAMMER_IOC_PRUNE_ALL`: every deleted record goes; `elms` must be
    /// empty.
    pub all: bool,
    /// The buckets, newest first (as `retention::softprune_elms` builds
    /// them).
    pub elms: Vec<PruneElm>,
    pub key_beg: BaseElm,
    pub key_end: BaseElm,
    /// Out: the last record visited.
    pub key_cur: BaseElm,
    /// In/out: added to by each call.
    pub stats: PruneStats,
    /// Out: `HAMMER_IOC_HEAD_INTR`.
    pub interrupted: bool,
}

/// The keys a prune or reblock of a whole PFS runs between, as the
/// original's templates set them: the lowest localization and obj_id to
/// the highest.
pub fn whole_pfs() -> (BaseElm, BaseElm) {
    let beg = BaseElm {
        obj_id: i64::MIN,
        ..BaseElm::default()
    };
    let end = BaseElm {
        obj_id: i64::MAX,
        localization: LOCALIZE_MASK,
        ..BaseElm::default()
    };
    (beg, end)
}

impl PruneReq {
    /// A prune of a whole PFS, as the tool's template starts one: key_beg
    /// at the lowest localization and obj_id, key_end at the highest.
    pub fn new(all: bool, elms: Vec<PruneElm>) -> Self {
        let (key_beg, key_end) = whole_pfs();
        PruneReq {
            all,
            elms,
            key_beg,
            key_end,
            key_cur: BaseElm::default(),
            stats: PruneStats::default(),
            interrupted: false,
        }
    }

    /// The kernel's checks, in its order, before anything is scanned:
    /// too many elements, PFS bits in a key, key_beg after key_end (by
    /// localization, then obj_id), elements with PRUNE_ALL. Then one of
    /// this tool's: an element with `mod_tid` 0 whose `end_tid` lies above
    /// its `beg_tid`, the only kind a record can reach the division with
    /// (the kernel would divide by zero). One with `end_tid` at or below
    /// `beg_tid` ends the search before dividing, and softprune makes one
    /// when the oldest snapshot is TID 1.
    pub fn check(&self) -> Result<(), Errno> {
        let (beg, end) = (&self.key_beg, &self.key_end);
        if self.elms.len() > MAX_PRUNE_ELMS
            || (beg.localization | end.localization) & LOCALIZE_PSEUDOFS_MASK != 0
            || beg.localization > end.localization
            || (beg.localization == end.localization && beg.obj_id > end.obj_id)
            || (self.all && !self.elms.is_empty())
            || self
                .elms
                .iter()
                .any(|e| e.mod_tid == 0 && e.end_tid > e.beg_tid)
        {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// Whether a record living over `[create_tid, delete_tid)` goes.
    pub fn prunes(&self, create_tid: u64, delete_tid: u64) -> bool {
        prunes(self.all, &self.elms, create_tid, delete_tid)
    }
}

/// HAMMERIOC_PRUNE's rule (`prune_should_delete`, kernel-semantics.md §6):
/// with `all`, every deleted record; else the first element, newest
/// first, whose end the record does not pass decides: it goes when
/// deleted, created at or after `beg_tid`, deleted at or before `end_tid`
/// and both TIDs fall in the same `mod_tid` step from `beg_tid`. A record
/// created at or after an element's `end_tid`, or deleted after it, ends
/// the search (the elements are meant to be sorted, newest first). A live
/// record never goes. An element a record can reach the division with
/// has a `mod_tid` other than 0 (`PruneReq::check`).
pub fn prunes(all: bool, elms: &[PruneElm], create_tid: u64, delete_tid: u64) -> bool {
    if all {
        return delete_tid != 0;
    }
    for e in elms {
        if create_tid >= e.end_tid || delete_tid > e.end_tid {
            break;
        }
        if delete_tid != 0
            && create_tid >= e.beg_tid
            && delete_tid <= e.end_tid
            && (create_tid - e.beg_tid) / e.mod_tid == (delete_tid - e.beg_tid) / e.mod_tid
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elm(beg_tid: u64, end_tid: u64, mod_tid: u64) -> PruneElm {
        PruneElm {
            beg_tid,
            end_tid,
            mod_tid,
        }
    }

    /// kernel-semantics.md §6: one bucket each, modulo steps, the loop's
    /// end, live records.
    #[test]
    fn the_rule_is_the_kernels() {
        let elms = [elm(100, 200, 100), elm(1, 100, 99)];
        // Inside one bucket.
        assert!(prunes(false, &elms, 100, 150));
        assert!(prunes(false, &elms, 120, 199));
        assert!(prunes(false, &elms, 1, 99));
        // Deleted exactly at the end: the next step (it is gone as of
        // end_tid already, and was visible before).
        assert!(!prunes(false, &elms, 120, 200));
        // Across a snapshot.
        assert!(!prunes(false, &elms, 50, 150));
        // Live records never.
        assert!(!prunes(false, &elms, 120, 0));
        assert!(!prunes(true, &elms, 120, 0));
        assert!(prunes(true, &[], 5, 6));
        // Newer than every bucket: the first element ends the search.
        assert!(!prunes(false, &elms, 250, 260));
        assert!(!prunes(false, &elms, 150, 250));
        // A finer step splits a bucket.
        let fine = [elm(100, 200, 10)];
        assert!(prunes(false, &fine, 101, 109));
        assert!(!prunes(false, &fine, 105, 111));
        // Unsorted elements: the first one the record passes ends the
        // search, as in the kernel.
        let unsorted = [elm(1, 100, 99), elm(100, 200, 100)];
        assert!(!prunes(false, &unsorted, 120, 150));
    }

    #[test]
    fn checks_in_the_kernels_order() {
        let ok = PruneReq::new(false, vec![elm(1, 10, 9)]);
        assert_eq!(ok.check(), Ok(()));
        let mut r = ok.clone();
        r.key_end.localization |= 0x1_0000;
        assert_eq!(r.check(), Err(Errno::EINVAL));
        let mut r = ok.clone();
        r.key_beg.localization = 2;
        r.key_end.localization = 1;
        assert_eq!(r.check(), Err(Errno::EINVAL));
        let mut r = ok.clone();
        r.key_beg.localization = 1;
        r.key_end.localization = 1;
        r.key_beg.obj_id = 5;
        r.key_end.obj_id = 4;
        assert_eq!(r.check(), Err(Errno::EINVAL));
        r.key_end.obj_id = 5;
        assert_eq!(r.check(), Ok(()));
        let mut r = ok.clone();
        r.all = true;
        assert_eq!(r.check(), Err(Errno::EINVAL));
        r.elms.clear();
        assert_eq!(r.check(), Ok(()));
        let r = PruneReq::new(false, vec![elm(1, 10, 0)]);
        assert_eq!(r.check(), Err(Errno::EINVAL));
        // No record reaches the division of an empty bucket.
        let r = PruneReq::new(false, vec![elm(1, 1, 0)]);
        assert_eq!(r.check(), Ok(()));
        assert!(!r.prunes(1, 2) && !r.prunes(5, 9));
        let r = PruneReq::new(false, vec![elm(1, 10, 9); MAX_PRUNE_ELMS + 1]);
        assert_eq!(r.check(), Err(Errno::EINVAL));
    }

    #[test]
    fn get_continues_after_the_last_snapshot_held() {
        let mut r = SnapshotReq::default();
        assert_eq!(r.get_from(), Some(i64::MIN));
        r.count = 2;
        r.snaps[1].tid = 0x10;
        assert_eq!(r.get_from(), Some(0x11));
        r.snaps[1].tid = i64::MAX as u64;
        assert_eq!(r.get_from(), None);
        r.snaps[1].tid = u64::MAX;
        assert_eq!(r.get_from(), Some(0));
        assert!(SnapshotReq::of(&[SnapshotData::default(); 17]).is_none());
        let r = SnapshotReq::of(&[SnapshotData::default(); 3]).unwrap();
        assert_eq!((r.count, r.held().len()), (3, 3));
        assert_eq!(r.check_change(), Ok(()));
        assert_eq!(r.check_get(), Ok(()));
        let bad = SnapshotReq { index: 4, ..r };
        assert_eq!(bad.check_change(), Err(Errno::EINVAL));
        assert_eq!(bad.check_get(), Err(Errno::EINVAL));
    }
}

//! The request of HAMMER's reblock ioctl as `trait Pfs` takes it: what to
//! reblock, how full a block may be to be left alone, where the scan is,
//! and the counts it adds to (ioctl-abi.md §12).

use nix::errno::Errno;

use super::retain::whole_pfs;
use crate::ondisk::{BaseElm, LOCALIZE_PSEUDOFS_MASK};

/// `HAMMER_IOC_DO_BTREE`: reblock B-Tree nodes (in `head.flags`).
pub const DO_BTREE: u32 = 0x0002_0000;
/// `HAMMER_IOC_DO_INODES`: reblock inode records.
pub const DO_INODES: u32 = 0x0004_0000;
/// `HAMMER_IOC_DO_DATA`: reblock data records' payloads.
pub const DO_DATA: u32 = 0x0008_0000;
/// `HAMMER_IOC_DO_DIRS`: reblock directory entries.
pub const DO_DIRS: u32 = 0x0010_0000;
/// `HAMMER_IOC_DO_FLAGS`: everything (`hammer reblock`).
pub const DO_FLAGS: u32 = DO_BTREE | DO_INODES | DO_DATA | DO_DIRS;
/// `HAMMER_BIGBLOCK_SIZE`: the unit `free_level` counts in.
pub const BIGBLOCK_SIZE: i32 = 8 << 20;

/// The counts `hammer_ioc_reblock` carries; each call adds to them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReblockStats {
    /// B-Tree nodes checked (the store: database pages).
    pub btree_count: i64,
    /// Data segments checked (the store: payloads in the payload file).
    pub data_count: i64,
    pub data_byte_count: i64,
    /// B-Tree nodes moved (the store: database pages given back).
    pub btree_moves: i64,
    /// Data segments moved (the store: payloads copied to a compacted
    /// payload file).
    pub data_moves: i64,
    pub data_byte_moves: i64,
}

/// The in/out fields of `hammer_ioc_reblock` (ioctl-abi.md §12). The scan
/// goes forward from `key_beg` to `key_end`; `interrupted`
/// (HAMMER_IOC_HEAD_INTR) says it stopped before the end, `key_cur` on
/// where to go on from (call again with `key_beg = key_cur`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReblockReq {
    /// The `DO_*` bits of `head.flags`.
    pub what: u32,
    /// Blocks with at least this many free bytes (of `BIGBLOCK_SIZE`)
    /// are reblocked; 0 reblocks everything.
    pub free_level: i32,
    pub key_beg: BaseElm,
    pub key_end: BaseElm,
    /// Out: where the scan stopped.
    pub key_cur: BaseElm,
    /// In/out: added to by each call.
    pub stats: ReblockStats,
    /// Out: `HAMMER_IOC_HEAD_INTR`.
    pub interrupted: bool,
}

impl ReblockReq {
    /// A reblock of a whole PFS as hammer(8) starts one: key_beg at the
    /// lowest localization and obj_id, key_end at the highest, and the
    /// free level of `fill` percent (0 to 100).
    pub fn new(what: u32, fill: u32) -> Self {
        let kept = i64::from(fill.min(100)) * i64::from(BIGBLOCK_SIZE) / 100;
        let (key_beg, key_end) = whole_pfs();
        ReblockReq {
            what,
            free_level: (BIGBLOCK_SIZE - kept as i32).max(0),
            key_beg,
            key_end,
            key_cur: BaseElm::default(),
            stats: ReblockStats::default(),
            interrupted: false,
        }
    }

    /// The kernel's checks before anything is scanned, each an EINVAL:
    /// PFS bits in a key's localization, key_beg's obj_id not below
    /// key_end's, a free level outside 0 to a big-block.
    pub fn check(&self) -> Result<(), Errno> {
        let (beg, end) = (&self.key_beg, &self.key_end);
        if (beg.localization | end.localization) & LOCALIZE_PSEUDOFS_MASK != 0
            || beg.obj_id >= end.obj_id
            || !(0..=BIGBLOCK_SIZE).contains(&self.free_level)
        {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_free_level_is_the_share_of_a_big_block_left_free() {
        assert_eq!(ReblockReq::new(DO_FLAGS, 100).free_level, 0);
        assert_eq!(ReblockReq::new(DO_FLAGS, 0).free_level, BIGBLOCK_SIZE);
        assert_eq!(ReblockReq::new(DO_DATA, 90).free_level, 838_861);
    }

    #[test]
    fn keys_with_pfs_bits_or_out_of_order_and_odd_levels_are_refused() {
        let ok = ReblockReq::new(DO_FLAGS, 100);
        assert_eq!(ok.check(), Ok(()));
        let mut r = ok.clone();
        r.key_beg.localization = 0x0001_0000;
        assert_eq!(r.check(), Err(Errno::EINVAL));
        let mut r = ok.clone();
        r.key_beg.obj_id = i64::MAX;
        assert_eq!(r.check(), Err(Errno::EINVAL));
        let mut r = ok;
        r.free_level = BIGBLOCK_SIZE + 1;
        assert_eq!(r.check(), Err(Errno::EINVAL));
    }
}

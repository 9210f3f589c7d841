//! The HAMMER ioctl ABI of DragonFly x86_64: `#[repr(C)]` request structs
//! and BSD `_IOWR` request codes (spec: ioctl-abi.md), shared by the kernel
//! backend and its test double.
//!
//! The structures are the kernel's in-memory ABI: host-endian integers with
//! C alignment, the embedded `hammer_base_elm` in its little-endian layout
//! (DragonFly runs little-endian only). The `zerocopy` derives prove what
//! each can be: the pointer-free ones have no padding (`IntoBytes`), the
//! two with user pointers may be all zeros (`FromZeros`), as the original
//! clears them before filling them in.

use std::mem::{align_of, offset_of, size_of};

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::ondisk::{BaseElmLe, ConfigData, PseudofsData, SnapshotDataLe};

/// `HAMMER_IOC_MIRROR_NODATA`: MIRROR_READ omits data payloads.
pub const IOC_MIRROR_NODATA: i32 = 0x0000_0001;
/// `HAMMER_IOC_HEAD_ERROR`: `head.error` holds a fatal error.
pub const IOC_HEAD_ERROR: i32 = 0x0000_8000;
/// `HAMMER_IOC_HEAD_INTR`: interrupted, returned early "successfully".
pub const IOC_HEAD_INTR: i32 = 0x0001_0000;

/// `struct hammer_ioc_head` (ioctl-abi.md §2).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct IocHead {
    pub flags: i32,
    pub error: i32,
    pub reserved01: [i32; 4],
}

/// `struct hammer_ioc_pseudofs_rw` (ioctl-abi.md §3). `ondisk` points at a
/// 292-byte packed `hammer_pseudofs_data`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromZeros, KnownLayout, Immutable)]
pub struct IocPseudofsRw {
    pub head: IocHead,
    pub pfs_id: i32,
    pub bytes: u32,
    pub version: u32,
    pub reserved01: u32,
    pub ondisk: *mut [u8; PseudofsData::SIZE],
}

/// `struct hammer_ioc_mirror_rw` (ioctl-abi.md §4).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromZeros, KnownLayout, Immutable)]
pub struct IocMirrorRw {
    pub head: IocHead,
    pub key_beg: BaseElmLe,
    pub key_end: BaseElmLe,
    pub key_cur: BaseElmLe,
    pub tid_beg: u64,
    pub tid_end: u64,
    pub ubuf: *mut u8,
    pub count: i32,
    pub size: i32,
    pub pfs_id: i32,
    pub reserved01: i32,
    pub shared_uuid: [u8; 16],
}

/// `struct hammer_ioc_synctid` (ioctl-abi.md §5).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct IocSynctid {
    pub head: IocHead,
    pub op: i32,
    /// The C compiler's padding before `tid`, made explicit.
    pub pad: u32,
    pub tid: u64,
}

/// `enum hammer_synctid_op`.
pub mod synctid_op {
    pub const NONE: i32 = 0;
    pub const ASYNC: i32 = 1;
    pub const SYNC1: i32 = 2;
    pub const SYNC2: i32 = 3;
}

/// `struct hammer_ioc_version` (ioctl-abi.md §6).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct IocVersion {
    pub head: IocHead,
    pub cur_version: u32,
    pub min_version: u32,
    pub wip_version: u32,
    pub max_version: u32,
    pub description: [u8; 64],
}

/// `HAMMER_SNAPS_PER_IOCTL`: the snapshots one snapshot request carries.
pub const SNAPS_PER_IOCTL: usize = 16;
/// `HAMMER_IOC_SNAPSHOT_EOF`: GET_SNAPSHOT found no snapshot after those
/// it returned.
pub const IOC_SNAPSHOT_EOF: i32 = 0x0000_0008;

/// `struct hammer_ioc_snapshot` (ioctl-abi.md §9). The array holds the
/// snapshot records' payload bytes; C aligns it (and the structure) to 8,
/// which `pad` and `align(8)` make explicit.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct IocSnapshot {
    pub head: IocHead,
    pub reserved01: i32,
    pub index: u32,
    pub count: u32,
    /// The C compiler's padding before `snaps`, made explicit.
    pub pad: u32,
    pub snaps: [SnapshotDataLe; SNAPS_PER_IOCTL],
}

/// `struct hammer_ioc_config` (ioctl-abi.md §10).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct IocConfig {
    pub head: IocHead,
    pub reserved01: u32,
    pub reserved02: u32,
    pub reserved03: [u64; 4],
    pub config: ConfigData,
}

/// `HAMMER_IOC_PRUNE_ALL` (in `head.flags`): prune every deleted record.
pub const IOC_PRUNE_ALL: i32 = 0x0000_0001;
/// `HAMMER_MAX_PRUNE_ELMS`: the most elements one PRUNE takes.
pub const MAX_PRUNE_ELMS: usize = 1024 * 1024 / size_of::<IocPruneElm>();

/// `struct hammer_ioc_prune_elm` (ioctl-abi.md §11).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct IocPruneElm {
    pub beg_tid: u64,
    pub end_tid: u64,
    pub mod_tid: u64,
}

/// `struct hammer_ioc_prune` (ioctl-abi.md §11). `elms` points at `nelms`
/// elements in the caller's memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromZeros, KnownLayout, Immutable)]
pub struct IocPrune {
    pub head: IocHead,
    pub nelms: i32,
    pub reserved01: i32,
    pub key_beg: BaseElmLe,
    pub key_end: BaseElmLe,
    pub key_cur: BaseElmLe,
    pub stat_scanrecords: i64,
    pub stat_rawrecords: i64,
    pub stat_dirrecords: i64,
    pub stat_bytes: i64,
    pub stat_realignments: i64,
    pub stat_oldest_tid: u64,
    pub reserved02: [i64; 6],
    pub elms: *mut IocPruneElm,
}

/// `struct hammer_ioc_reblock` (ioctl-abi.md §12). The `HAMMER_IOC_DO_*`
/// bits of `head.flags` say what to reblock (`crate::pfs::reblock`).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromZeros, KnownLayout, Immutable)]
pub struct IocReblock {
    pub head: IocHead,
    pub free_level: i32,
    pub reserved01: u32,
    pub key_beg: BaseElmLe,
    pub key_end: BaseElmLe,
    pub key_cur: BaseElmLe,
    pub btree_count: i64,
    pub reserved02: i64,
    pub data_count: i64,
    pub data_byte_count: i64,
    pub btree_moves: i64,
    pub reserved03: i64,
    pub data_moves: i64,
    pub data_byte_moves: i64,
    pub allpfs: i16,
    pub vol_no: i16,
    pub reserved04: i32,
}

/// 4.4BSD `_IOWR(group, num, len)` (sys/sys/ioccom.h), not Linux's layout.
pub const fn iowr(group: u8, num: u8, len: usize) -> u32 {
    const IOC_INOUT: u32 = 0xC000_0000;
    const IOCPARM_MASK: u32 = 0x1fff;
    IOC_INOUT | (((len as u32) & IOCPARM_MASK) << 16) | ((group as u32) << 8) | num as u32
}

pub const HAMMERIOC_PRUNE: u32 = iowr(b'h', 1, size_of::<IocPrune>());
pub const HAMMERIOC_REBLOCK: u32 = iowr(b'h', 3, size_of::<IocReblock>());
pub const HAMMERIOC_SYNCTID: u32 = iowr(b'h', 4, size_of::<IocSynctid>());
pub const HAMMERIOC_SET_PSEUDOFS: u32 = iowr(b'h', 5, size_of::<IocPseudofsRw>());
pub const HAMMERIOC_GET_PSEUDOFS: u32 = iowr(b'h', 6, size_of::<IocPseudofsRw>());
pub const HAMMERIOC_MIRROR_READ: u32 = iowr(b'h', 7, size_of::<IocMirrorRw>());
pub const HAMMERIOC_MIRROR_WRITE: u32 = iowr(b'h', 8, size_of::<IocMirrorRw>());
pub const HAMMERIOC_UPG_PSEUDOFS: u32 = iowr(b'h', 9, size_of::<IocPseudofsRw>());
pub const HAMMERIOC_DGD_PSEUDOFS: u32 = iowr(b'h', 10, size_of::<IocPseudofsRw>());
pub const HAMMERIOC_RMR_PSEUDOFS: u32 = iowr(b'h', 11, size_of::<IocPseudofsRw>());
pub const HAMMERIOC_WAI_PSEUDOFS: u32 = iowr(b'h', 12, size_of::<IocPseudofsRw>());
pub const HAMMERIOC_GET_VERSION: u32 = iowr(b'h', 13, size_of::<IocVersion>());
pub const HAMMERIOC_ADD_SNAPSHOT: u32 = iowr(b'h', 18, size_of::<IocSnapshot>());
pub const HAMMERIOC_DEL_SNAPSHOT: u32 = iowr(b'h', 19, size_of::<IocSnapshot>());
pub const HAMMERIOC_GET_SNAPSHOT: u32 = iowr(b'h', 20, size_of::<IocSnapshot>());
pub const HAMMERIOC_GET_CONFIG: u32 = iowr(b'h', 21, size_of::<IocConfig>());
pub const HAMMERIOC_SET_CONFIG: u32 = iowr(b'h', 22, size_of::<IocConfig>());

// Layout proofs against ioctl-abi.md (LP64).
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<IocHead>() == 24 && align_of::<IocHead>() == 4);

    assert!(size_of::<IocPseudofsRw>() == 48 && align_of::<IocPseudofsRw>() == 8);
    assert!(offset_of!(IocPseudofsRw, pfs_id) == 24);
    assert!(offset_of!(IocPseudofsRw, bytes) == 28);
    assert!(offset_of!(IocPseudofsRw, version) == 32);
    assert!(offset_of!(IocPseudofsRw, reserved01) == 36);
    assert!(offset_of!(IocPseudofsRw, ondisk) == 40);

    assert!(size_of::<IocMirrorRw>() == 200 && align_of::<IocMirrorRw>() == 8);
    assert!(offset_of!(IocMirrorRw, key_beg) == 0x18);
    assert!(offset_of!(IocMirrorRw, key_end) == 0x40);
    assert!(offset_of!(IocMirrorRw, key_cur) == 0x68);
    assert!(offset_of!(IocMirrorRw, tid_beg) == 0x90);
    assert!(offset_of!(IocMirrorRw, tid_end) == 0x98);
    assert!(offset_of!(IocMirrorRw, ubuf) == 0xa0);
    assert!(offset_of!(IocMirrorRw, count) == 0xa8);
    assert!(offset_of!(IocMirrorRw, size) == 0xac);
    assert!(offset_of!(IocMirrorRw, pfs_id) == 0xb0);
    assert!(offset_of!(IocMirrorRw, reserved01) == 0xb4);
    assert!(offset_of!(IocMirrorRw, shared_uuid) == 0xb8);

    assert!(size_of::<IocSynctid>() == 40 && align_of::<IocSynctid>() == 8);
    assert!(offset_of!(IocSynctid, op) == 24);
    assert!(offset_of!(IocSynctid, tid) == 32);

    assert!(size_of::<IocVersion>() == 104 && align_of::<IocVersion>() == 4);
    assert!(offset_of!(IocVersion, cur_version) == 24);
    assert!(offset_of!(IocVersion, min_version) == 28);
    assert!(offset_of!(IocVersion, wip_version) == 32);
    assert!(offset_of!(IocVersion, max_version) == 36);
    assert!(offset_of!(IocVersion, description) == 40);

    assert!(size_of::<IocSnapshot>() == 2088 && align_of::<IocSnapshot>() == 8);
    assert!(offset_of!(IocSnapshot, reserved01) == 24);
    assert!(offset_of!(IocSnapshot, index) == 28);
    assert!(offset_of!(IocSnapshot, count) == 32);
    assert!(offset_of!(IocSnapshot, snaps) == 40);

    assert!(size_of::<IocConfig>() == 1088 && align_of::<IocConfig>() == 8);
    assert!(offset_of!(IocConfig, reserved01) == 24);
    assert!(offset_of!(IocConfig, reserved02) == 28);
    assert!(offset_of!(IocConfig, reserved03) == 32);
    assert!(offset_of!(IocConfig, config) == 64);

    assert!(size_of::<IocPruneElm>() == 24 && align_of::<IocPruneElm>() == 8);
    assert!(offset_of!(IocPruneElm, end_tid) == 8 && offset_of!(IocPruneElm, mod_tid) == 16);
    assert!(MAX_PRUNE_ELMS == 43690);

    assert!(size_of::<IocPrune>() == 256 && align_of::<IocPrune>() == 8);
    assert!(offset_of!(IocPrune, nelms) == 24);
    assert!(offset_of!(IocPrune, reserved01) == 28);
    assert!(offset_of!(IocPrune, key_beg) == 32);
    assert!(offset_of!(IocPrune, key_end) == 72);
    assert!(offset_of!(IocPrune, key_cur) == 112);
    assert!(offset_of!(IocPrune, stat_scanrecords) == 152);
    assert!(offset_of!(IocPrune, stat_rawrecords) == 160);
    assert!(offset_of!(IocPrune, stat_dirrecords) == 168);
    assert!(offset_of!(IocPrune, stat_bytes) == 176);
    assert!(offset_of!(IocPrune, stat_realignments) == 184);
    assert!(offset_of!(IocPrune, stat_oldest_tid) == 192);
    assert!(offset_of!(IocPrune, reserved02) == 200);
    assert!(offset_of!(IocPrune, elms) == 248);

    assert!(size_of::<IocReblock>() == 224 && align_of::<IocReblock>() == 8);
    assert!(offset_of!(IocReblock, free_level) == 24);
    assert!(offset_of!(IocReblock, reserved01) == 28);
    assert!(offset_of!(IocReblock, key_beg) == 32);
    assert!(offset_of!(IocReblock, key_end) == 72);
    assert!(offset_of!(IocReblock, key_cur) == 112);
    assert!(offset_of!(IocReblock, btree_count) == 152);
    assert!(offset_of!(IocReblock, reserved02) == 160);
    assert!(offset_of!(IocReblock, data_count) == 168);
    assert!(offset_of!(IocReblock, data_byte_count) == 176);
    assert!(offset_of!(IocReblock, btree_moves) == 184);
    assert!(offset_of!(IocReblock, reserved03) == 192);
    assert!(offset_of!(IocReblock, data_moves) == 200);
    assert!(offset_of!(IocReblock, data_byte_moves) == 208);
    assert!(offset_of!(IocReblock, allpfs) == 216);
    assert!(offset_of!(IocReblock, vol_no) == 218);
    assert!(offset_of!(IocReblock, reserved04) == 220);
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The DragonFly values of ioctl-abi.md §1, hard-coded there.
    #[test]
    fn request_codes_match_dragonfly() {
        assert_eq!(HAMMERIOC_SYNCTID, 0xC028_6804);
        assert_eq!(HAMMERIOC_SET_PSEUDOFS, 0xC030_6805);
        assert_eq!(HAMMERIOC_GET_PSEUDOFS, 0xC030_6806);
        assert_eq!(HAMMERIOC_MIRROR_READ, 0xC0C8_6807);
        assert_eq!(HAMMERIOC_MIRROR_WRITE, 0xC0C8_6808);
        assert_eq!(HAMMERIOC_UPG_PSEUDOFS, 0xC030_6809);
        assert_eq!(HAMMERIOC_DGD_PSEUDOFS, 0xC030_680A);
        assert_eq!(HAMMERIOC_RMR_PSEUDOFS, 0xC030_680B);
        assert_eq!(HAMMERIOC_WAI_PSEUDOFS, 0xC030_680C);
        assert_eq!(HAMMERIOC_GET_VERSION, 0xC068_680D);
        assert_eq!(HAMMERIOC_PRUNE, 0xC100_6801);
        assert_eq!(HAMMERIOC_REBLOCK, 0xC0E0_6803);
        assert_eq!(HAMMERIOC_ADD_SNAPSHOT, 0xC828_6812);
        assert_eq!(HAMMERIOC_DEL_SNAPSHOT, 0xC828_6813);
        assert_eq!(HAMMERIOC_GET_SNAPSHOT, 0xC828_6814);
        assert_eq!(HAMMERIOC_GET_CONFIG, 0xC440_6815);
        assert_eq!(HAMMERIOC_SET_CONFIG, 0xC440_6816);
        // Not used here, but pins the BSD (not Linux) encoding of the size.
        assert_eq!(iowr(b'h', 28, 48), 0xC030_681C);
    }
}

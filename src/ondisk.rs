//! HAMMER's nested on-media structures (base_elm, leaf_elm, pseudofs_data,
//! inode data, direntry head, snapshot and config data, uuid): each laid
//! out once as a little-endian
//! `zerocopy` struct whose size and offsets are proven against the spec
//! (wire-format.md §5, kernel-semantics.md §2), and decoded into a plain
//! struct of native integers that the rest of the code works with.

use std::fmt;
use std::mem::{offset_of, size_of};
use std::ops::Range;

use zerocopy::little_endian::{I32, I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// B-Tree record types (`HAMMER_RECTYPE_*`).
pub mod rectype {
    pub const INODE: u16 = 0x0001;
    pub const DATA: u16 = 0x0010;
    pub const DIRENTRY: u16 = 0x0011;
    pub const DB: u16 = 0x0012;
    pub const EXT: u16 = 0x0013;
    pub const FIX: u16 = 0x0014;
    pub const PFS: u16 = 0x0015;
    pub const SNAPSHOT: u16 = 0x0016;
    pub const CONFIG: u16 = 0x0017;
}

/// Object types (`HAMMER_OBJTYPE_*`, kernel-semantics.md §1.7), in a
/// leaf's key and in inode data.
pub mod objtype {
    pub const DIRECTORY: u8 = 1;
    pub const REGFILE: u8 = 2;
    pub const DBFILE: u8 = 3;
    pub const FIFO: u8 = 4;
    pub const CDEV: u8 = 5;
    pub const BDEV: u8 = 6;
    pub const SOFTLINK: u8 = 7;
    pub const SOCKET: u8 = 9;
}

/// `btype` of a leaf element: `'R'`.
pub const BTREE_TYPE_RECORD: u8 = b'R';

/// Localization types (low 16 bits of `localization`).
pub const LOCALIZE_INODE: u32 = 0x0000_0001;
pub const LOCALIZE_MISC: u32 = 0x0000_0002;
pub const LOCALIZE_MASK: u32 = 0x0000_FFFF;
pub const LOCALIZE_PSEUDOFS_MASK: u32 = 0xFFFF_0000;

/// `struct hammer_base_elm`: a B-Tree key (wire-format.md §5.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BaseElm {
    pub obj_id: i64,
    pub key: i64,
    pub create_tid: u64,
    pub delete_tid: u64,
    pub rec_type: u16,
    pub obj_type: u8,
    pub btype: u8,
    pub localization: u32,
}

/// The bytes of a `hammer_base_elm`, on media, on the wire and inside the
/// ioctl structures (which embed it at offsets that are multiples of 8, so
/// the kernel's alignment adds no padding around it).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct BaseElmLe {
    pub obj_id: I64,
    pub key: I64,
    pub create_tid: U64,
    pub delete_tid: U64,
    pub rec_type: U16,
    pub obj_type: u8,
    pub btype: u8,
    pub localization: U32,
}

impl BaseElm {
    pub const SIZE: usize = size_of::<BaseElmLe>();

    /// The tool's "key_beg init": the lowest key of a PFS scan.
    pub const KEY_BEG_INIT: BaseElm = BaseElm {
        obj_id: i64::MIN,
        key: i64::MIN,
        create_tid: 1,
        delete_tid: 0,
        rec_type: 0,
        obj_type: 0,
        btype: 0,
        localization: 0,
    };

    /// The tool's "key_end init": the highest key of a PFS scan.
    pub const KEY_END_INIT: BaseElm = BaseElm {
        obj_id: i64::MAX,
        key: i64::MAX,
        create_tid: u64::MAX,
        delete_tid: 0,
        rec_type: 0xFFFF,
        obj_type: 0,
        btype: 0,
        localization: LOCALIZE_MASK,
    };

    pub fn decode(b: &[u8; Self::SIZE]) -> Self {
        let raw: BaseElmLe = zerocopy::transmute!(*b);
        raw.into()
    }

    pub fn encode(&self, b: &mut [u8; Self::SIZE]) {
        *b = zerocopy::transmute!(BaseElmLe::from(*self));
    }
}

impl From<BaseElmLe> for BaseElm {
    fn from(e: BaseElmLe) -> Self {
        BaseElm {
            obj_id: e.obj_id.get(),
            key: e.key.get(),
            create_tid: e.create_tid.get(),
            delete_tid: e.delete_tid.get(),
            rec_type: e.rec_type.get(),
            obj_type: e.obj_type,
            btype: e.btype,
            localization: e.localization.get(),
        }
    }
}

impl From<BaseElm> for BaseElmLe {
    fn from(e: BaseElm) -> Self {
        BaseElmLe {
            obj_id: e.obj_id.into(),
            key: e.key.into(),
            create_tid: e.create_tid.into(),
            delete_tid: e.delete_tid.into(),
            rec_type: e.rec_type.into(),
            obj_type: e.obj_type,
            btype: e.btype,
            localization: e.localization.into(),
        }
    }
}

/// `struct hammer_btree_leaf_elm` (wire-format.md §5.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LeafElm {
    pub base: BaseElm,
    pub create_ts: u32,
    pub delete_ts: u32,
    pub data_offset: u64,
    pub data_len: i32,
    pub data_crc: u32,
}

/// The bytes of a `hammer_btree_leaf_elm`.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct LeafElmLe {
    pub base: BaseElmLe,
    pub create_ts: U32,
    pub delete_ts: U32,
    pub data_offset: U64,
    pub data_len: I32,
    pub data_crc: U32,
}

impl LeafElm {
    pub const SIZE: usize = size_of::<LeafElmLe>();

    pub fn decode(b: &[u8; Self::SIZE]) -> Self {
        let raw: LeafElmLe = zerocopy::transmute!(*b);
        LeafElm {
            base: raw.base.into(),
            create_ts: raw.create_ts.get(),
            delete_ts: raw.delete_ts.get(),
            data_offset: raw.data_offset.get(),
            data_len: raw.data_len.get(),
            data_crc: raw.data_crc.get(),
        }
    }

    pub fn encode(&self, b: &mut [u8; Self::SIZE]) {
        let raw = LeafElmLe {
            base: self.base.into(),
            create_ts: self.create_ts.into(),
            delete_ts: self.delete_ts.into(),
            data_offset: self.data_offset.into(),
            data_len: self.data_len.into(),
            data_crc: self.data_crc.into(),
        };
        *b = zerocopy::transmute!(raw);
    }
}

/// `hammer_uuid_t`: DragonFly's `struct uuid` in its in-memory byte order
/// (first three fields little-endian, wire-format.md §5.3), which is what
/// the `uuid` crate calls the little-endian byte form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HammerUuid(pub [u8; 16]);

impl HammerUuid {
    pub const SIZE: usize = 16;

    /// Parses the tool's text form `%08x-%04x-%04x-%02x%02x-%012x`.
    pub fn parse(text: &str) -> Option<Self> {
        let u = uuid::Uuid::try_parse(text).ok()?;
        Some(HammerUuid(u.to_bytes_le()))
    }

    /// A fresh random uuid (DragonFly uses time-based ones; any unique value
    /// serves, the tool only compares them).
    pub fn new_random() -> Self {
        HammerUuid(uuid::Uuid::new_v4().to_bytes_le())
    }
}

impl fmt::Display for HammerUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        uuid::Uuid::from_bytes_le(self.0).hyphenated().fmt(f)
    }
}

/// `mirror_flags` bits.
pub const PFSD_SLAVE: i32 = 0x0000_0001;
pub const PFSD_DELETED: i32 = 0x8000_0000_u32 as i32;

/// `struct hammer_pseudofs_data` (292 bytes, packed; wire-format.md §5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PseudofsData {
    pub sync_low_tid: u64,
    pub sync_beg_tid: u64,
    pub sync_end_tid: u64,
    pub sync_beg_ts: u64,
    pub sync_end_ts: u64,
    pub shared_uuid: HammerUuid,
    pub unique_uuid: HammerUuid,
    pub reserved01: i32,
    pub mirror_flags: i32,
    pub label: [u8; 64],
    pub snapshots: [u8; 64],
    pub reserved02: i32,
    pub reserved03: i32,
    pub reserved04: i32,
    pub prune_min: i32,
    pub prune_max: i32,
    pub reserved: [i32; 16],
}

/// The bytes of a `hammer_pseudofs_data`.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct PseudofsDataLe {
    pub sync_low_tid: U64,
    pub sync_beg_tid: U64,
    pub sync_end_tid: U64,
    pub sync_beg_ts: U64,
    pub sync_end_ts: U64,
    pub shared_uuid: [u8; 16],
    pub unique_uuid: [u8; 16],
    pub reserved01: I32,
    pub mirror_flags: I32,
    pub label: [u8; 64],
    pub snapshots: [u8; 64],
    pub reserved02: I32,
    pub reserved03: I32,
    pub reserved04: I32,
    pub prune_min: I32,
    pub prune_max: I32,
    pub reserved: [I32; 16],
}

impl Default for PseudofsData {
    fn default() -> Self {
        PseudofsData {
            sync_low_tid: 0,
            sync_beg_tid: 0,
            sync_end_tid: 0,
            sync_beg_ts: 0,
            sync_end_ts: 0,
            shared_uuid: HammerUuid::default(),
            unique_uuid: HammerUuid::default(),
            reserved01: 0,
            mirror_flags: 0,
            label: [0; 64],
            snapshots: [0; 64],
            reserved02: 0,
            reserved03: 0,
            reserved04: 0,
            prune_min: 0,
            prune_max: 0,
            reserved: [0; 16],
        }
    }
}

impl PseudofsData {
    pub const SIZE: usize = size_of::<PseudofsDataLe>();

    pub fn decode(b: &[u8; Self::SIZE]) -> Self {
        let raw: PseudofsDataLe = zerocopy::transmute!(*b);
        PseudofsData {
            sync_low_tid: raw.sync_low_tid.get(),
            sync_beg_tid: raw.sync_beg_tid.get(),
            sync_end_tid: raw.sync_end_tid.get(),
            sync_beg_ts: raw.sync_beg_ts.get(),
            sync_end_ts: raw.sync_end_ts.get(),
            shared_uuid: HammerUuid(raw.shared_uuid),
            unique_uuid: HammerUuid(raw.unique_uuid),
            reserved01: raw.reserved01.get(),
            mirror_flags: raw.mirror_flags.get(),
            label: raw.label,
            snapshots: raw.snapshots,
            reserved02: raw.reserved02.get(),
            reserved03: raw.reserved03.get(),
            reserved04: raw.reserved04.get(),
            prune_min: raw.prune_min.get(),
            prune_max: raw.prune_max.get(),
            reserved: raw.reserved.map(|r| r.get()),
        }
    }

    pub fn encode(&self, b: &mut [u8; Self::SIZE]) {
        *b = self.to_bytes();
    }

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let raw = PseudofsDataLe {
            sync_low_tid: self.sync_low_tid.into(),
            sync_beg_tid: self.sync_beg_tid.into(),
            sync_end_tid: self.sync_end_tid.into(),
            sync_beg_ts: self.sync_beg_ts.into(),
            sync_end_ts: self.sync_end_ts.into(),
            shared_uuid: self.shared_uuid.0,
            unique_uuid: self.unique_uuid.0,
            reserved01: self.reserved01.into(),
            mirror_flags: self.mirror_flags.into(),
            label: self.label,
            snapshots: self.snapshots,
            reserved02: self.reserved02.into(),
            reserved03: self.reserved03.into(),
            reserved04: self.reserved04.into(),
            prune_min: self.prune_min.into(),
            prune_max: self.prune_max.into(),
            reserved: self.reserved.map(I32::new),
        };
        zerocopy::transmute!(raw)
    }

    pub fn is_slave(&self) -> bool {
        self.mirror_flags & PFSD_SLAVE != 0
    }

    /// The label up to its first NUL (at most 64 bytes).
    pub fn label_bytes(&self) -> &[u8] {
        c_str(&self.label)
    }

    /// The snapshots directory up to its first NUL (at most 64 bytes).
    pub fn snapshots_bytes(&self) -> &[u8] {
        c_str(&self.snapshots)
    }

    /// Stores `s` as a C string truncated to 63 bytes plus NUL.
    pub fn set_label(&mut self, s: &[u8]) {
        set_c_str(&mut self.label, s);
    }

    pub fn set_snapshots(&mut self, s: &[u8]) {
        set_c_str(&mut self.snapshots, s);
    }
}

fn c_str(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

fn set_c_str(field: &mut [u8; 64], s: &[u8]) {
    *field = [0; 64];
    let n = s.len().min(63);
    field[..n].copy_from_slice(&s[..n]);
}

/// The bytes of a `hammer_inode_data`, the payload of an INODE record
/// (kernel-semantics.md §2.1). The uid and gid are uuids whose bytes
/// 12..15 hold the Unix id.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct InodeDataLe {
    pub version: U16,
    pub mode: U16,
    pub uflags: U32,
    pub rmajor: U32,
    pub rminor: U32,
    pub ctime: U64,
    pub parent_obj_id: I64,
    pub uid: [u8; 12],
    pub uid_unix: U32,
    pub gid: [u8; 12],
    pub gid_unix: U32,
    pub obj_type: u8,
    pub cap_flags: u8,
    pub reserved01: U16,
    pub reserved02: U32,
    pub nlinks: U64,
    pub size: U64,
    pub symlink: [u8; 24],
    pub mtime: U64,
    pub atime: U64,
}

impl InodeDataLe {
    /// `HAMMER_INODE_DATA_VERSION`.
    pub const VERSION: u16 = 1;
    /// The bytes of an INODE record's payload.
    pub const SIZE: usize = size_of::<Self>();
    /// `HAMMER_INODE_CRCSIZE`: `data_crc` covers the bytes before `mtime`,
    /// which HAMMER updates in place.
    pub const CRC_LEN: usize = offset_of!(Self, mtime);
}

/// `cap_flags` of an inode: bits 0-1 the directory hash algorithm, bit 2
/// (`DIR_LOCAL_INO`) directory entries in INODE localization.
pub const CAP_DIRHASH_MASK: u8 = 0x03;
pub const CAP_DIRHASH_ALG1: u8 = 0x01;
pub const CAP_DIR_LOCAL_INO: u8 = 0x04;

/// The fixed head of a `hammer_direntry_data`, followed by the name
/// (kernel-semantics.md §2.2).
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DirentryHeadLe {
    pub obj_id: I64,
    /// The target's PFS: `pfs_id << 16`.
    pub localization: U32,
    pub reserved01: U32,
}

impl DirentryHeadLe {
    /// Where a payload holds `localization`, which MIRROR_WRITE overwrites
    /// in place (kernel-semantics.md §4.6) whatever the payload's length
    /// past it.
    pub const LOCALIZATION: Range<usize> =
        offset_of!(Self, localization)..offset_of!(Self, reserved01);
}

/// `struct hammer_snapshot_data`: the payload of a SNAPSHOT record (128
/// bytes, kernel-semantics.md §2.6) and an element of the snapshot ioctls'
/// array (ioctl-abi.md §9), which the kernel copies to and from the record
/// byte for byte.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SnapshotDataLe {
    pub tid: U64,
    pub ts: U64,
    pub reserved01: U64,
    pub reserved02: U64,
    pub label: [u8; 64],
    pub reserved03: [U64; 4],
}

/// A snapshot as its record holds it: the TID it names (the record's key),
/// when it was taken (µs since the epoch, from the tool) and a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotData {
    pub tid: u64,
    pub ts: u64,
    pub reserved01: u64,
    pub reserved02: u64,
    pub label: [u8; 64],
    pub reserved03: [u64; 4],
}

impl Default for SnapshotData {
    fn default() -> Self {
        SnapshotData {
            tid: 0,
            ts: 0,
            reserved01: 0,
            reserved02: 0,
            label: [0; 64],
            reserved03: [0; 4],
        }
    }
}

impl SnapshotData {
    pub const SIZE: usize = size_of::<SnapshotDataLe>();

    /// The snapshot named `tid`, taken at `ts` µs, labelled `label`
    /// (truncated to 63 bytes, as the tool's snprintf leaves it).
    pub fn new(tid: u64, ts: u64, label: &[u8]) -> Self {
        let mut s = SnapshotData {
            tid,
            ts,
            ..Default::default()
        };
        set_c_str(&mut s.label, label);
        s
    }

    pub fn decode(b: &[u8; Self::SIZE]) -> Self {
        let raw: SnapshotDataLe = zerocopy::transmute!(*b);
        raw.into()
    }

    /// A record's payload as the kernel hands it out: its first 128
    /// bytes, zeros where it is shorter (the kernel would copy whatever
    /// follows the payload in its buffer; kernel-semantics.md §2.6).
    pub fn from_payload(data: &[u8]) -> Self {
        let mut b = [0u8; Self::SIZE];
        let n = data.len().min(Self::SIZE);
        b[..n].copy_from_slice(&data[..n]);
        Self::decode(&b)
    }

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        zerocopy::transmute!(SnapshotDataLe::from(*self))
    }

    /// The label up to its first NUL, never more than its 64 bytes (a
    /// record from a stream may hold a label without one).
    pub fn label_bytes(&self) -> &[u8] {
        c_str(&self.label)
    }
}

impl From<SnapshotDataLe> for SnapshotData {
    fn from(s: SnapshotDataLe) -> Self {
        SnapshotData {
            tid: s.tid.get(),
            ts: s.ts.get(),
            reserved01: s.reserved01.get(),
            reserved02: s.reserved02.get(),
            label: s.label,
            reserved03: s.reserved03.map(|r| r.get()),
        }
    }
}

impl From<SnapshotData> for SnapshotDataLe {
    fn from(s: SnapshotData) -> Self {
        SnapshotDataLe {
            tid: s.tid.into(),
            ts: s.ts.into(),
            reserved01: s.reserved01.into(),
            reserved02: s.reserved02.into(),
            label: s.label,
            reserved03: s.reserved03.map(U64::new),
        }
    }
}

/// `struct hammer_config_data`: the payload of a CONFIG record, 1024 bytes
/// of text ending in NUL (kernel-semantics.md §2.6), the configuration
/// `hammer cleanup` reads.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct ConfigData {
    pub text: [u8; 1024],
}

impl Default for ConfigData {
    fn default() -> Self {
        ConfigData { text: [0; 1024] }
    }
}

impl ConfigData {
    pub const SIZE: usize = size_of::<Self>();

    /// `text` followed by NULs, if it leaves room for one NUL (at most
    /// 1023 bytes, the original's limit).
    pub fn from_text(text: &[u8]) -> Option<Self> {
        if text.len() >= Self::SIZE {
            return None;
        }
        let mut c = ConfigData::default();
        c.text[..text.len()].copy_from_slice(text);
        Some(c)
    }

    /// A record's payload as the kernel hands it out: its first 1024
    /// bytes, zeros where it is shorter.
    pub fn from_payload(data: &[u8]) -> Self {
        let mut c = ConfigData::default();
        let n = data.len().min(Self::SIZE);
        c.text[..n].copy_from_slice(&data[..n]);
        c
    }

    /// The text up to its first NUL (all 1024 bytes when there is none).
    pub fn text_bytes(&self) -> &[u8] {
        c_str(&self.text)
    }
}

// Layout proofs against wire-format.md §5 and kernel-semantics.md §2
// (the offsets are the spec's tables).
const _: () = {
    assert!(size_of::<BaseElmLe>() == 40);
    assert!(offset_of!(BaseElmLe, key) == 0x08 && offset_of!(BaseElmLe, create_tid) == 0x10);
    assert!(offset_of!(BaseElmLe, delete_tid) == 0x18);
    assert!(offset_of!(BaseElmLe, rec_type) == 0x20 && offset_of!(BaseElmLe, obj_type) == 0x22);
    assert!(offset_of!(BaseElmLe, btype) == 0x23 && offset_of!(BaseElmLe, localization) == 0x24);

    assert!(size_of::<LeafElmLe>() == 64);
    assert!(offset_of!(LeafElmLe, create_ts) == 0x28 && offset_of!(LeafElmLe, delete_ts) == 0x2c);
    assert!(offset_of!(LeafElmLe, data_offset) == 0x30 && offset_of!(LeafElmLe, data_len) == 0x38);
    assert!(offset_of!(LeafElmLe, data_crc) == 0x3c);

    assert!(size_of::<PseudofsDataLe>() == 292);
    assert!(offset_of!(PseudofsDataLe, sync_beg_tid) == 0x08);
    assert!(offset_of!(PseudofsDataLe, sync_end_tid) == 0x10);
    assert!(offset_of!(PseudofsDataLe, sync_beg_ts) == 0x18);
    assert!(offset_of!(PseudofsDataLe, sync_end_ts) == 0x20);
    assert!(offset_of!(PseudofsDataLe, shared_uuid) == 0x28);
    assert!(offset_of!(PseudofsDataLe, unique_uuid) == 0x38);
    assert!(offset_of!(PseudofsDataLe, reserved01) == 0x48);
    assert!(offset_of!(PseudofsDataLe, mirror_flags) == 0x4c);
    assert!(offset_of!(PseudofsDataLe, label) == 0x50);
    assert!(offset_of!(PseudofsDataLe, snapshots) == 0x90);
    assert!(offset_of!(PseudofsDataLe, reserved02) == 0xd0);
    assert!(offset_of!(PseudofsDataLe, prune_min) == 0xdc);
    assert!(offset_of!(PseudofsDataLe, prune_max) == 0xe0);
    assert!(offset_of!(PseudofsDataLe, reserved) == 0xe4);

    assert!(size_of::<InodeDataLe>() == 128);
    assert!(offset_of!(InodeDataLe, mode) == 2 && offset_of!(InodeDataLe, uflags) == 4);
    assert!(offset_of!(InodeDataLe, rmajor) == 8 && offset_of!(InodeDataLe, rminor) == 12);
    assert!(offset_of!(InodeDataLe, ctime) == 16 && offset_of!(InodeDataLe, parent_obj_id) == 24);
    assert!(offset_of!(InodeDataLe, uid) == 32 && offset_of!(InodeDataLe, uid_unix) == 44);
    assert!(offset_of!(InodeDataLe, gid) == 48 && offset_of!(InodeDataLe, gid_unix) == 60);
    assert!(offset_of!(InodeDataLe, obj_type) == 64 && offset_of!(InodeDataLe, cap_flags) == 65);
    assert!(offset_of!(InodeDataLe, reserved01) == 66 && offset_of!(InodeDataLe, reserved02) == 68);
    assert!(offset_of!(InodeDataLe, nlinks) == 72 && offset_of!(InodeDataLe, size) == 80);
    assert!(offset_of!(InodeDataLe, symlink) == 88 && offset_of!(InodeDataLe, mtime) == 112);
    assert!(offset_of!(InodeDataLe, atime) == 120);
    assert!(InodeDataLe::CRC_LEN == 112);

    assert!(size_of::<SnapshotDataLe>() == 128);
    assert!(offset_of!(SnapshotDataLe, ts) == 8);
    assert!(offset_of!(SnapshotDataLe, reserved01) == 16);
    assert!(offset_of!(SnapshotDataLe, reserved02) == 24);
    assert!(offset_of!(SnapshotDataLe, label) == 32);
    assert!(offset_of!(SnapshotDataLe, reserved03) == 96);

    assert!(size_of::<ConfigData>() == 1024);

    assert!(size_of::<DirentryHeadLe>() == 16);
    assert!(offset_of!(DirentryHeadLe, localization) == 8);
    assert!(DirentryHeadLe::LOCALIZATION.start == 8 && DirentryHeadLe::LOCALIZATION.end == 12);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_round_trip_matches_spec_example() {
        let u = HammerUuid::parse("01234567-89ab-cdef-0123-456789abcdef").unwrap();
        assert_eq!(
            u.0,
            [
                0x67, 0x45, 0x23, 0x01, 0xab, 0x89, 0xef, 0xcd, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
                0xcd, 0xef
            ]
        );
        assert_eq!(u.to_string(), "01234567-89ab-cdef-0123-456789abcdef");
        assert!(HammerUuid::parse("not-a-uuid").is_none());
    }

    #[test]
    fn base_elm_field_offsets() {
        let e = BaseElm {
            obj_id: 0x0102030405060708,
            key: -2,
            create_tid: 0x1112131415161718,
            delete_tid: 0x2122232425262728,
            rec_type: 0x3132,
            obj_type: 0x33,
            btype: 0x34,
            localization: 0x41424344,
        };
        let mut b = [0u8; 40];
        e.encode(&mut b);
        assert_eq!(b[0], 0x08);
        assert_eq!(&b[8..16], &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(b[16], 0x18);
        assert_eq!(b[24], 0x28);
        assert_eq!(&b[32..34], &[0x32, 0x31]);
        assert_eq!(b[34], 0x33);
        assert_eq!(b[35], 0x34);
        assert_eq!(&b[36..40], &[0x44, 0x43, 0x42, 0x41]);
        assert_eq!(BaseElm::decode(&b), e);
    }

    #[test]
    fn leaf_elm_round_trip() {
        let l = LeafElm {
            base: BaseElm::KEY_END_INIT,
            create_ts: 0x5a5a5a5a,
            delete_ts: 7,
            data_offset: 0xa000000000000000,
            data_len: 16,
            data_crc: 0x42d3119e,
        };
        let mut b = [0u8; 64];
        l.encode(&mut b);
        assert_eq!(&b[60..64], &[0x9e, 0x11, 0xd3, 0x42]);
        assert_eq!(&b[56..60], &[16, 0, 0, 0]);
        assert_eq!(LeafElm::decode(&b), l);
    }

    /// kernel-semantics.md §2.6: the snapshot payload's fields at their
    /// offsets, little-endian.
    #[test]
    fn snapshot_data_layout_and_label() {
        let mut s = SnapshotData::new(0x0000_0001_0000_00a0, 0x0102_0304_0506_0708, b"nightly");
        s.reserved03[3] = 0x55;
        let b = s.to_bytes();
        assert_eq!(&b[0..8], &0x0000_0001_0000_00a0u64.to_le_bytes());
        assert_eq!(&b[8..16], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&b[32..40], b"nightly\0");
        assert_eq!(b[120], 0x55);
        assert_eq!(SnapshotData::decode(&b), s);
        assert_eq!(s.label_bytes(), b"nightly");
        // A label of 64 bytes without NUL stops at the field's end.
        let mut full = b;
        full[32..96].fill(b'x');
        assert_eq!(SnapshotData::decode(&full).label_bytes(), &[b'x'; 64]);
        // A short payload reads as zeros past its end, a long one is cut.
        assert_eq!(SnapshotData::from_payload(&b[..10]).tid, s.tid);
        assert_eq!(SnapshotData::from_payload(&b[..10]).ts, 0x0708);
        assert_eq!(
            SnapshotData::from_payload(&[b.as_slice(), &[9; 7]].concat()),
            s
        );
        // The tool's snprintf: 63 bytes and a NUL.
        assert_eq!(SnapshotData::new(1, 2, &[b'y'; 80]).label_bytes().len(), 63);
    }

    #[test]
    fn config_text_keeps_room_for_its_nul() {
        let c = ConfigData::from_text(b"snapshots 1d 60d\n").unwrap();
        assert_eq!(c.text_bytes(), b"snapshots 1d 60d\n");
        assert!(ConfigData::from_text(&[b'a'; 1023]).is_some());
        assert!(ConfigData::from_text(&[b'a'; 1024]).is_none());
        assert_eq!(
            ConfigData::from_payload(&[b'z'; 2000]).text_bytes().len(),
            1024
        );
        assert_eq!(ConfigData::from_payload(b"ab").text_bytes(), b"ab");
    }

    #[test]
    fn pseudofs_data_round_trip_and_label() {
        let mut p = PseudofsData {
            sync_end_tid: 0x00000001061a8ba0,
            prune_min: 86400,
            mirror_flags: PFSD_SLAVE,
            ..Default::default()
        };
        p.set_label(&[b'x'; 100]);
        assert_eq!(p.label_bytes().len(), 63);
        let b = p.to_bytes();
        assert_eq!(&b[0xdc..0xe0], &86400i32.to_le_bytes());
        assert_eq!(PseudofsData::decode(&b), p);
        assert!(p.is_slave());
    }
}

//! HAMMER's nested on-media structures (base_elm, leaf_elm, pseudofs_data,
//! uuid) as explicit little-endian byte layouts; spec: wire-format.md §5.

use std::fmt;

/// Reads a little-endian integer of the given type at a fixed offset.
macro_rules! le_get {
    ($ty:ty, $buf:expr, $off:expr) => {{
        let mut b = [0u8; std::mem::size_of::<$ty>()];
        b.copy_from_slice(&$buf[$off..$off + std::mem::size_of::<$ty>()]);
        <$ty>::from_le_bytes(b)
    }};
}

/// Writes a little-endian integer at a fixed offset.
macro_rules! le_put {
    ($buf:expr, $off:expr, $val:expr) => {{
        let b = $val.to_le_bytes();
        $buf[$off..$off + b.len()].copy_from_slice(&b);
    }};
}
pub(crate) use {le_get, le_put};

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

impl BaseElm {
    pub const SIZE: usize = 40;
    pub const OFF_OBJ_ID: usize = 0;
    pub const OFF_KEY: usize = 8;
    pub const OFF_CREATE_TID: usize = 16;
    pub const OFF_DELETE_TID: usize = 24;
    pub const OFF_REC_TYPE: usize = 32;
    pub const OFF_OBJ_TYPE: usize = 34;
    pub const OFF_BTYPE: usize = 35;
    pub const OFF_LOCALIZATION: usize = 36;

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
        BaseElm {
            obj_id: le_get!(i64, b, Self::OFF_OBJ_ID),
            key: le_get!(i64, b, Self::OFF_KEY),
            create_tid: le_get!(u64, b, Self::OFF_CREATE_TID),
            delete_tid: le_get!(u64, b, Self::OFF_DELETE_TID),
            rec_type: le_get!(u16, b, Self::OFF_REC_TYPE),
            obj_type: b[Self::OFF_OBJ_TYPE],
            btype: b[Self::OFF_BTYPE],
            localization: le_get!(u32, b, Self::OFF_LOCALIZATION),
        }
    }

    pub fn encode(&self, b: &mut [u8; Self::SIZE]) {
        le_put!(b, Self::OFF_OBJ_ID, self.obj_id);
        le_put!(b, Self::OFF_KEY, self.key);
        le_put!(b, Self::OFF_CREATE_TID, self.create_tid);
        le_put!(b, Self::OFF_DELETE_TID, self.delete_tid);
        le_put!(b, Self::OFF_REC_TYPE, self.rec_type);
        b[Self::OFF_OBJ_TYPE] = self.obj_type;
        b[Self::OFF_BTYPE] = self.btype;
        le_put!(b, Self::OFF_LOCALIZATION, self.localization);
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

impl LeafElm {
    pub const SIZE: usize = 64;
    pub const OFF_BASE: usize = 0;
    pub const OFF_CREATE_TS: usize = 40;
    pub const OFF_DELETE_TS: usize = 44;
    pub const OFF_DATA_OFFSET: usize = 48;
    pub const OFF_DATA_LEN: usize = 56;
    pub const OFF_DATA_CRC: usize = 60;

    pub fn decode(b: &[u8; Self::SIZE]) -> Self {
        let mut base = [0u8; BaseElm::SIZE];
        base.copy_from_slice(&b[..BaseElm::SIZE]);
        LeafElm {
            base: BaseElm::decode(&base),
            create_ts: le_get!(u32, b, Self::OFF_CREATE_TS),
            delete_ts: le_get!(u32, b, Self::OFF_DELETE_TS),
            data_offset: le_get!(u64, b, Self::OFF_DATA_OFFSET),
            data_len: le_get!(i32, b, Self::OFF_DATA_LEN),
            data_crc: le_get!(u32, b, Self::OFF_DATA_CRC),
        }
    }

    pub fn encode(&self, b: &mut [u8; Self::SIZE]) {
        let mut base = [0u8; BaseElm::SIZE];
        self.base.encode(&mut base);
        b[..BaseElm::SIZE].copy_from_slice(&base);
        le_put!(b, Self::OFF_CREATE_TS, self.create_ts);
        le_put!(b, Self::OFF_DELETE_TS, self.delete_ts);
        le_put!(b, Self::OFF_DATA_OFFSET, self.data_offset);
        le_put!(b, Self::OFF_DATA_LEN, self.data_len);
        le_put!(b, Self::OFF_DATA_CRC, self.data_crc);
    }
}

/// `hammer_uuid_t`: DragonFly's `struct uuid` in its in-memory byte order
/// (first three fields little-endian, wire-format.md §5.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HammerUuid(pub [u8; 16]);

impl HammerUuid {
    pub const SIZE: usize = 16;

    /// Parses the tool's text form `%08x-%04x-%04x-%02x%02x-%012x`.
    pub fn parse(text: &str) -> Option<Self> {
        let u = uuid::Uuid::try_parse(text).ok()?;
        // `uuid` stores RFC order (big-endian fields); HAMMER stores the first
        // three fields little-endian.
        let (d1, d2, d3, d4) = u.as_fields();
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&d1.to_le_bytes());
        b[4..6].copy_from_slice(&d2.to_le_bytes());
        b[6..8].copy_from_slice(&d3.to_le_bytes());
        b[8..16].copy_from_slice(d4);
        Some(HammerUuid(b))
    }

    /// A fresh random uuid (DragonFly uses time-based ones; any unique value
    /// serves, the tool only compares them).
    pub fn new_random() -> Self {
        let u = uuid::Uuid::new_v4();
        let (d1, d2, d3, d4) = u.as_fields();
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&d1.to_le_bytes());
        b[4..6].copy_from_slice(&d2.to_le_bytes());
        b[6..8].copy_from_slice(&d3.to_le_bytes());
        b[8..16].copy_from_slice(d4);
        HammerUuid(b)
    }
}

impl fmt::Display for HammerUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            le_get!(u32, b, 0),
            le_get!(u16, b, 4),
            le_get!(u16, b, 6),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
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
    pub const SIZE: usize = 292;
    pub const OFF_SYNC_LOW_TID: usize = 0;
    pub const OFF_SYNC_BEG_TID: usize = 8;
    pub const OFF_SYNC_END_TID: usize = 16;
    pub const OFF_SYNC_BEG_TS: usize = 24;
    pub const OFF_SYNC_END_TS: usize = 32;
    pub const OFF_SHARED_UUID: usize = 40;
    pub const OFF_UNIQUE_UUID: usize = 56;
    pub const OFF_RESERVED01: usize = 72;
    pub const OFF_MIRROR_FLAGS: usize = 76;
    pub const OFF_LABEL: usize = 80;
    pub const OFF_SNAPSHOTS: usize = 144;
    pub const OFF_RESERVED02: usize = 208;
    pub const OFF_RESERVED03: usize = 212;
    pub const OFF_RESERVED04: usize = 216;
    pub const OFF_PRUNE_MIN: usize = 220;
    pub const OFF_PRUNE_MAX: usize = 224;
    pub const OFF_RESERVED: usize = 228;

    pub fn decode(b: &[u8; Self::SIZE]) -> Self {
        let mut shared = [0u8; 16];
        shared.copy_from_slice(&b[Self::OFF_SHARED_UUID..Self::OFF_SHARED_UUID + 16]);
        let mut unique = [0u8; 16];
        unique.copy_from_slice(&b[Self::OFF_UNIQUE_UUID..Self::OFF_UNIQUE_UUID + 16]);
        let mut label = [0u8; 64];
        label.copy_from_slice(&b[Self::OFF_LABEL..Self::OFF_LABEL + 64]);
        let mut snapshots = [0u8; 64];
        snapshots.copy_from_slice(&b[Self::OFF_SNAPSHOTS..Self::OFF_SNAPSHOTS + 64]);
        let mut reserved = [0i32; 16];
        for (i, r) in reserved.iter_mut().enumerate() {
            *r = le_get!(i32, b, Self::OFF_RESERVED + 4 * i);
        }
        PseudofsData {
            sync_low_tid: le_get!(u64, b, Self::OFF_SYNC_LOW_TID),
            sync_beg_tid: le_get!(u64, b, Self::OFF_SYNC_BEG_TID),
            sync_end_tid: le_get!(u64, b, Self::OFF_SYNC_END_TID),
            sync_beg_ts: le_get!(u64, b, Self::OFF_SYNC_BEG_TS),
            sync_end_ts: le_get!(u64, b, Self::OFF_SYNC_END_TS),
            shared_uuid: HammerUuid(shared),
            unique_uuid: HammerUuid(unique),
            reserved01: le_get!(i32, b, Self::OFF_RESERVED01),
            mirror_flags: le_get!(i32, b, Self::OFF_MIRROR_FLAGS),
            label,
            snapshots,
            reserved02: le_get!(i32, b, Self::OFF_RESERVED02),
            reserved03: le_get!(i32, b, Self::OFF_RESERVED03),
            reserved04: le_get!(i32, b, Self::OFF_RESERVED04),
            prune_min: le_get!(i32, b, Self::OFF_PRUNE_MIN),
            prune_max: le_get!(i32, b, Self::OFF_PRUNE_MAX),
            reserved,
        }
    }

    pub fn encode(&self, b: &mut [u8; Self::SIZE]) {
        le_put!(b, Self::OFF_SYNC_LOW_TID, self.sync_low_tid);
        le_put!(b, Self::OFF_SYNC_BEG_TID, self.sync_beg_tid);
        le_put!(b, Self::OFF_SYNC_END_TID, self.sync_end_tid);
        le_put!(b, Self::OFF_SYNC_BEG_TS, self.sync_beg_ts);
        le_put!(b, Self::OFF_SYNC_END_TS, self.sync_end_ts);
        b[Self::OFF_SHARED_UUID..Self::OFF_SHARED_UUID + 16].copy_from_slice(&self.shared_uuid.0);
        b[Self::OFF_UNIQUE_UUID..Self::OFF_UNIQUE_UUID + 16].copy_from_slice(&self.unique_uuid.0);
        le_put!(b, Self::OFF_RESERVED01, self.reserved01);
        le_put!(b, Self::OFF_MIRROR_FLAGS, self.mirror_flags);
        b[Self::OFF_LABEL..Self::OFF_LABEL + 64].copy_from_slice(&self.label);
        b[Self::OFF_SNAPSHOTS..Self::OFF_SNAPSHOTS + 64].copy_from_slice(&self.snapshots);
        le_put!(b, Self::OFF_RESERVED02, self.reserved02);
        le_put!(b, Self::OFF_RESERVED03, self.reserved03);
        le_put!(b, Self::OFF_RESERVED04, self.reserved04);
        le_put!(b, Self::OFF_PRUNE_MIN, self.prune_min);
        le_put!(b, Self::OFF_PRUNE_MAX, self.prune_max);
        for (i, r) in self.reserved.iter().enumerate() {
            le_put!(b, Self::OFF_RESERVED + 4 * i, *r);
        }
    }

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        self.encode(&mut b);
        b
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

// Layout proofs against wire-format.md §5 (offsets are the spec's tables).
const _: () = {
    assert!(BaseElm::OFF_LOCALIZATION + 4 == BaseElm::SIZE);
    assert!(BaseElm::OFF_REC_TYPE == 0x20 && BaseElm::OFF_OBJ_TYPE == 0x22);
    assert!(BaseElm::OFF_BTYPE == 0x23 && BaseElm::OFF_LOCALIZATION == 0x24);
    assert!(LeafElm::OFF_CREATE_TS == 0x28 && LeafElm::OFF_DELETE_TS == 0x2c);
    assert!(LeafElm::OFF_DATA_OFFSET == 0x30 && LeafElm::OFF_DATA_LEN == 0x38);
    assert!(LeafElm::OFF_DATA_CRC == 0x3c && LeafElm::OFF_DATA_CRC + 4 == LeafElm::SIZE);
    assert!(PseudofsData::OFF_SHARED_UUID == 0x28 && PseudofsData::OFF_UNIQUE_UUID == 0x38);
    assert!(PseudofsData::OFF_MIRROR_FLAGS == 0x4c && PseudofsData::OFF_LABEL == 0x50);
    assert!(PseudofsData::OFF_SNAPSHOTS == 0x90 && PseudofsData::OFF_RESERVED02 == 0xd0);
    assert!(PseudofsData::OFF_PRUNE_MIN == 0xdc && PseudofsData::OFF_PRUNE_MAX == 0xe0);
    assert!(PseudofsData::OFF_RESERVED == 0xe4);
    assert!(PseudofsData::OFF_RESERVED + 64 == PseudofsData::SIZE);
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

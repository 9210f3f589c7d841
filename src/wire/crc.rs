//! The stream's two CRCs: the head CRC (always CRC-32) and the leaf data CRC
//! (CRC-32 or CRC-32C by volume version); spec: wire-format.md §4.

use crate::ondisk::{rectype, InodeDataLe};

/// Classic CRC-32 (ISO-HDLC, zlib), HAMMER's `crc32()`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// CRC-32C (Castagnoli), HAMMER's `iscsi_crc32()`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// `offsetof(hammer_inode_data, mtime)`: inode data CRCs stop there.
pub const INODE_CRC_LEN: usize = InodeDataLe::CRC_LEN;
/// `sizeof(hammer_inode_data)`.
pub const INODE_DATA_SIZE: usize = InodeDataLe::SIZE;

/// Which CRC the source volume uses for leaf data (version >= 7: CRC-32C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataCrcKind {
    Crc32,
    Crc32c,
}

impl DataCrcKind {
    fn apply(self, data: &[u8]) -> u32 {
        match self {
            DataCrcKind::Crc32 => crc32(data),
            DataCrcKind::Crc32c => crc32c(data),
        }
    }
}

/// The `data_crc` a HAMMER kernel stores for a leaf's payload: the whole
/// payload, except that an inode covers only its first 112 bytes and an
/// inode payload of the wrong size has CRC 0.
pub fn leaf_data_crc(kind: DataCrcKind, rec_type: u16, data: &[u8]) -> u32 {
    if data.is_empty() {
        return 0;
    }
    if rec_type == rectype::INODE {
        if data.len() != INODE_DATA_SIZE {
            return 0;
        }
        return kind.apply(&data[..INODE_CRC_LEN]);
    }
    kind.apply(data)
}

/// The userland readers' data check: a record passes if either variant
/// matches, because a reader never learns the source's volume version.
pub fn data_crc_matches(rec_type: u16, data: &[u8], data_crc: u32) -> bool {
    leaf_data_crc(DataCrcKind::Crc32c, rec_type, data) == data_crc
        || leaf_data_crc(DataCrcKind::Crc32, rec_type, data) == data_crc
}

#[cfg(test)]
mod tests {
    use super::*;

    // wire-format.md §4.3
    #[test]
    fn spec_test_vectors() {
        assert_eq!(crc32(b"123456789"), 0xCBF43926);
        assert_eq!(crc32c(b"123456789"), 0xE3069283);
        assert_eq!(crc32(b"0123456789abcdef"), 0x68C4F033);
        assert_eq!(crc32c(b"0123456789abcdef"), 0x42D3119E);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32(b"hello"), 0x3610A686);
        let inode: Vec<u8> = (0u8..128).collect();
        assert_eq!(crc32(&inode[..112]), 0x39D06C94);
        assert_eq!(crc32c(&inode[..112]), 0xA19460B1);
        assert_eq!(crc32c(&inode), 0x30D9C515);
        assert_eq!(
            leaf_data_crc(DataCrcKind::Crc32c, rectype::INODE, &inode),
            0xA19460B1
        );
        assert_eq!(
            leaf_data_crc(DataCrcKind::Crc32, rectype::INODE, &inode[..120]),
            0
        );
        assert_eq!(crc32(&[0x10, 0, 0, 0, 7, 0, 0, 0]), 0x844ED6FB);
    }

    #[test]
    fn either_variant_is_accepted() {
        assert!(data_crc_matches(rectype::DATA, b"hello", 0x3610A686));
        assert!(data_crc_matches(
            rectype::DATA,
            b"0123456789abcdef",
            0x42D3119E
        ));
        assert!(!data_crc_matches(
            rectype::DATA,
            b"0123456789abcdef",
            0xdeadbeef
        ));
    }
}

//! The HAMMER v1 mirror stream: mrecord constants, CRCs, record encoding and
//! the two stream readers (spec: wire-format.md).

pub mod crc;
pub mod reader;
pub mod record;
pub mod writer;
pub mod zframe;

pub use reader::{BatchError, BatchErrorKind, MrecordReader, ReadError, ReadErrorKind};
pub use record::{Head, Mrecord, RawRecord};
pub use writer::MrecordWriter;

/// `HAMMER_IOC_MIRROR_SIGNATURE`: bytes `72 72 d9 4d` on the wire.
pub const SIGNATURE: u32 = 0x4dd9_7272;
/// The byte-swapped signature; defined by HAMMER but accepted by no reader.
pub const SIGNATURE_REV: u32 = 0x7272_d94d;

/// `HAMMER_MREC_HEADSIZE`.
pub const HEAD_SIZE: usize = 16;
/// `HAMMER_MREC_CRCOFF`: the head CRC covers `[CRC_OFF, rec_size)`.
pub const CRC_OFF: usize = 8;
/// `HAMMER_HEAD_ALIGN`.
pub const HEAD_ALIGN: u32 = 8;

/// `HAMMER_XBUFSIZE`: the largest `data_len` of a REC.
pub const XBUF_SIZE: u32 = 65536;
/// `sizeof(union hammer_ioc_mrecord_any)`.
pub const MRECORD_ANY_SIZE: u32 = 320;
/// The largest legal `rec_size` (320 + 65536).
pub const MAX_REC_SIZE: u32 = MRECORD_ANY_SIZE + XBUF_SIZE;
/// The smallest legal `rec_size` (a bare head).
pub const MIN_REC_SIZE: u32 = HEAD_SIZE as u32;
/// `SERIALBUF_SIZE`: the tool's I/O buffer and the largest batch.
pub const SERIALBUF_SIZE: usize = 524_288;

/// Record types (low byte of `type`).
pub mod mrec_type {
    pub const RESERVED: u32 = 0;
    pub const REC: u32 = 1;
    pub const PFSD: u32 = 2;
    pub const UPDATE: u32 = 3;
    pub const SYNC: u32 = 4;
    pub const SKIP: u32 = 5;
    pub const PASS: u32 = 6;
    pub const TERM: u32 = 7;
    pub const IDLE: u32 = 8;

    /// `HAMMER_MRECF_CRC_ERROR`.
    pub const CRC_ERROR: u32 = 0x8000_0000;
    /// `HAMMER_MRECF_DATA_CRC_BAD`.
    pub const DATA_CRC_BAD: u32 = 0x4000_0000;
    /// `HAMMER_MRECF_RECD_CRC_BAD`.
    pub const RECD_CRC_BAD: u32 = 0x2000_0000;
    /// `HAMMER_MRECF_NODATA`.
    pub const NODATA: u32 = 0x1000_0000;

    pub const REC_BADCRC: u32 = REC | CRC_ERROR;
    pub const REC_NODATA: u32 = REC | NODATA;

    /// `HAMMER_MRECF_TYPE_LOMASK`: the type alone.
    pub const LOMASK: u32 = 0x0000_00FF;
    /// `HAMMER_MRECF_TYPE_MASK`: the type plus CRC_ERROR.
    pub const MASK: u32 = 0x8000_00FF;
}

/// Sizes of the fixed records (wire-format.md §7).
pub const PFSD_REC_SIZE: u32 = 316;
pub const UPDATE_REC_SIZE: u32 = 24;
pub const REC_HEAD_SIZE: u32 = 80;
pub const PASS_REC_SIZE: u32 = 80;
pub const SKIP_REC_SIZE: u32 = 96;

/// `HAMMER_IOC_PSEUDOFS_VERSION`.
pub const PSEUDOFS_VERSION: u32 = 1;

/// `HAMMER_HEAD_DOALIGN`: the bytes a record of `rec_size` occupies.
/// Computed in 64 bits so it never wraps (the original's 32-bit wrap is D14).
pub const fn doalign(rec_size: u32) -> usize {
    ((rec_size as u64 + (HEAD_ALIGN as u64 - 1)) & !(HEAD_ALIGN as u64 - 1)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_match_spec() {
        assert_eq!(MAX_REC_SIZE, 65856);
        assert_eq!(doalign(316), 320);
        assert_eq!(doalign(85), 88);
        assert_eq!(doalign(24), 24);
        assert_eq!(doalign(u32::MAX), 0x1_0000_0000);
        assert_eq!(mrec_type::REC_BADCRC, 0x8000_0001);
        assert_eq!(mrec_type::REC_NODATA, 0x1000_0001);
    }
}

//! HAMMER's record payloads for files: inode data, directory entries and
//! their name keys, data block layout (spec: kernel-semantics.md §2.1-2.4).

use zerocopy::{FromBytes, IntoBytes};

// The inode's own vocabulary, defined with its layout.
pub use crate::ondisk::{objtype, CAP_DIRHASH_ALG1, CAP_DIRHASH_MASK, CAP_DIR_LOCAL_INO};
use crate::ondisk::{DirentryHeadLe, InodeDataLe};
use crate::wire::crc::{crc32, INODE_DATA_SIZE};

/// `HAMMER_INODE_DATA_VERSION`.
pub const INODE_VERSION: u16 = InodeDataLe::VERSION;
/// Longest symlink target kept inside the inode (`ext.symlink`).
pub const INLINE_SYMLINK_MAX: usize = 24;
/// `HAMMER_FIXKEY_SYMLINK`: key of the FIX record of a long symlink.
pub const FIXKEY_SYMLINK: i64 = 1;
/// `hammer_direntry_data` before the name.
pub const DIRENTRY_HEAD: usize = std::mem::size_of::<DirentryHeadLe>();
/// `HAMMER_BUFSIZE`, `HAMMER_XBUFSIZE`, `HAMMER_XDEMARC`.
pub const BUFSIZE: u64 = 16384;
pub const XBUFSIZE: u64 = 65536;
pub const XDEMARC: u64 = 1 << 20;

/// `hammer_inode_data` (128 bytes), decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InodeData {
    pub mode: u16,
    pub uflags: u32,
    pub rmajor: u32,
    pub rminor: u32,
    pub ctime: u64,
    pub parent_obj_id: i64,
    pub uid: u32,
    pub gid: u32,
    pub obj_type: u8,
    pub cap_flags: u8,
    pub nlinks: u64,
    pub size: u64,
    pub symlink: [u8; INLINE_SYMLINK_MAX],
    pub mtime: u64,
    pub atime: u64,
}

impl InodeData {
    pub fn encode(&self) -> [u8; INODE_DATA_SIZE] {
        let raw = InodeDataLe {
            version: INODE_VERSION.into(),
            mode: self.mode.into(),
            uflags: self.uflags.into(),
            rmajor: self.rmajor.into(),
            rminor: self.rminor.into(),
            ctime: self.ctime.into(),
            parent_obj_id: self.parent_obj_id.into(),
            uid: [0; 12],
            uid_unix: self.uid.into(),
            gid: [0; 12],
            gid_unix: self.gid.into(),
            obj_type: self.obj_type,
            cap_flags: self.cap_flags,
            reserved01: 0.into(),
            reserved02: 0.into(),
            nlinks: self.nlinks.into(),
            size: self.size.into(),
            symlink: self.symlink,
            mtime: self.mtime.into(),
            atime: self.atime.into(),
        };
        zerocopy::transmute!(raw)
    }

    /// None unless the payload is a 128-byte inode of version 1.
    pub fn decode(d: &[u8]) -> Option<InodeData> {
        let raw = InodeDataLe::read_from_bytes(d).ok()?;
        (raw.version.get() == INODE_VERSION).then(|| InodeData {
            mode: raw.mode.get(),
            uflags: raw.uflags.get(),
            rmajor: raw.rmajor.get(),
            rminor: raw.rminor.get(),
            ctime: raw.ctime.get(),
            parent_obj_id: raw.parent_obj_id.get(),
            uid: raw.uid_unix.get(),
            gid: raw.gid_unix.get(),
            obj_type: raw.obj_type,
            cap_flags: raw.cap_flags,
            nlinks: raw.nlinks.get(),
            size: raw.size.get(),
            symlink: raw.symlink,
            mtime: raw.mtime.get(),
            atime: raw.atime.get(),
        })
    }

    /// Equal except for atime, which HAMMER updates in place without a
    /// new record version (kernel-semantics.md §2.1).
    pub fn same_but_atime(&self, other: &InodeData) -> bool {
        InodeData {
            atime: other.atime,
            ..*self
        } == *other
    }
}

/// The `hammer_direntry_data` payload of an entry named `name` for object
/// `obj_id` of PFS `pfs_id`.
pub fn direntry(obj_id: i64, pfs_id: u32, name: &[u8]) -> Vec<u8> {
    let head = DirentryHeadLe {
        obj_id: obj_id.into(),
        localization: (pfs_id << 16).into(),
        reserved01: 0.into(),
    };
    let mut d = Vec::with_capacity(DIRENTRY_HEAD + name.len());
    d.extend_from_slice(head.as_bytes());
    d.extend_from_slice(name);
    d
}

/// A decoded directory entry payload: target obj_id, its localization, name.
pub fn parse_direntry(d: &[u8]) -> Option<(i64, u32, &[u8])> {
    let (head, name) = DirentryHeadLe::read_from_prefix(d).ok()?;
    Some((head.obj_id.get(), head.localization.get(), name))
}

/// The name key of `name` in a directory with `cap_flags` (kernel-semantics.md
/// §2.2).
pub fn namekey(cap_flags: u8, name: &[u8]) -> i64 {
    let key: u64 = if cap_flags & CAP_DIRHASH_MASK == CAP_DIRHASH_ALG1 {
        let hi = name
            .split(|c| matches!(c, b'.' | b'-' | b'_' | b'~'))
            .filter(|s| !s.is_empty())
            .fold(0u32, |acc, s| acc.wrapping_add(crc32(s)))
            & 0x7FFF_FFFF;
        let c = crc32(name);
        let m = c ^ (c << 16);
        let k = (u64::from(hi) << 32) | u64::from(m & 0xFFFF_0000);
        if k >> 32 == 0 {
            k | 0x1_0000_0000
        } else {
            k
        }
    } else {
        match u64::from(crc32(name) & 0x7FFF_FFFF) << 32 {
            0 => 0x1_0000_0000,
            k => k,
        }
    };
    key as i64
}

/// How many keys after the name key a create may probe (kernel-semantics.md
/// §2.2).
pub fn collision_budget(cap_flags: u8) -> i64 {
    if cap_flags & CAP_DIRHASH_MASK == CAP_DIRHASH_ALG1 {
        0x00FF_FFFF
    } else {
        0xFFFF_FFFF
    }
}

/// The DATA record a file of `size` bytes has for the block holding
/// `offset`: its start and length (kernel-semantics.md §2.3). A file of at most
/// 8192 bytes is one record of its size rounded to 16 bytes.
pub fn block_at(offset: u64, size: u64) -> (u64, u64) {
    if size <= BUFSIZE / 2 {
        return (0, (size + 15) & !15);
    }
    let bs = if offset < XDEMARC { BUFSIZE } else { XBUFSIZE };
    (offset - offset % bs, bs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namekeys_match_spec_vectors() {
        let v: &[(&[u8], u64, u64)] = &[
            (b"a", 0x68b7be4300000000, 0x68b7be4356f40000),
            (b"README", 0x77cd417500000000, 0x77cd417536b80000),
            (b"hello.txt", 0x1260cebb00000000, 0x524805cbdcdb0000),
            (b"foo_bar-baz~1", 0x07eadc2100000000, 0x7f73e61adbcb0000),
            (b".", 0x0ed4e24200000000, 0x00000001ec960000),
            (b"", 0x0000000100000000, 0x0000000100000000),
            (b"@@PFS00001", 0x20bc367300000000, 0x20bc367396cf0000),
        ];
        for &(name, alg0, alg1) in v {
            assert_eq!(namekey(0x04, name) as u64, alg0, "{name:?}");
            assert_eq!(namekey(0x05, name) as u64, alg1, "{name:?}");
        }
    }

    #[test]
    fn blocks_follow_hammer_buffer_sizes() {
        assert_eq!(block_at(0, 1), (0, 16));
        assert_eq!(block_at(0, 8192), (0, 8192));
        assert_eq!(block_at(0, 8193), (0, 16384));
        assert_eq!(block_at(20000, 30000), (16384, 16384));
        assert_eq!(
            block_at(XDEMARC - 1, 2 * XDEMARC),
            (XDEMARC - BUFSIZE, BUFSIZE)
        );
        assert_eq!(
            block_at(XDEMARC + 70000, 2 * XDEMARC),
            (XDEMARC + 65536, 65536)
        );
    }

    #[test]
    fn inode_round_trip_and_id_placement() {
        let i = InodeData {
            mode: 0o4755,
            uid: 1000,
            gid: 0x0102_0304,
            obj_type: objtype::REGFILE,
            nlinks: 2,
            size: 12345,
            mtime: 7,
            atime: 8,
            ctime: 9,
            parent_obj_id: 1,
            ..Default::default()
        };
        let d = i.encode();
        assert_eq!(&d[44..48], &1000u32.to_le_bytes());
        assert_eq!(&d[32..44], &[0u8; 12]);
        assert_eq!(InodeData::decode(&d), Some(i));
        assert!(i.same_but_atime(&InodeData { atime: 99, ..i }));
        assert!(!i.same_but_atime(&InodeData { mtime: 99, ..i }));
        assert_eq!(InodeData::decode(&d[..127]), None);
    }

    #[test]
    fn direntry_round_trip() {
        let d = direntry(0x1_0000_0042, 3, b"name");
        assert_eq!(d.len(), 20);
        assert_eq!(
            parse_direntry(&d),
            Some((0x1_0000_0042, 0x30000, &b"name"[..]))
        );
        assert_eq!(parse_direntry(&d[..15]), None);
    }
}

//! The order-preserving 30-byte record key: memcmp order of the bytes is
//! `hammer_btree_cmp` order (spec: kernel-semantics.md §1.2).

use std::mem::size_of;
use std::ops::RangeInclusive;

use zerocopy::big_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::ondisk::BaseElm;

/// The compared fields in comparison order, each big-endian so that byte
/// order is numeric order: signed fields with the sign bit flipped,
/// create_tid minus one so that 0 (infinity) sorts last.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct KeyBe {
    localization: U32,
    obj_id: U64,
    rec_type: U16,
    key: U64,
    create_tid: U64,
}

/// Length of an encoded key.
pub const KEY_LEN: usize = size_of::<KeyBe>();
const _: () = assert!(KEY_LEN == 30);

/// An encoded key (`KeyBe`'s bytes).
pub type RecKey = [u8; KEY_LEN];

const SIGN: u64 = 0x8000_0000_0000_0000;

/// Encodes the five compared fields of `e`; delete_tid, obj_type and btype
/// are not part of a record's identity.
pub fn encode(e: &BaseElm) -> RecKey {
    zerocopy::transmute!(KeyBe {
        localization: e.localization.into(),
        obj_id: ((e.obj_id as u64) ^ SIGN).into(),
        rec_type: e.rec_type.into(),
        key: ((e.key as u64) ^ SIGN).into(),
        create_tid: e.create_tid.wrapping_sub(1).into(),
    })
}

/// The compared fields of an encoded key (other fields zero).
pub fn decode(k: &RecKey) -> BaseElm {
    let f: KeyBe = zerocopy::transmute!(*k);
    BaseElm {
        localization: f.localization.get(),
        obj_id: (f.obj_id.get() ^ SIGN) as i64,
        rec_type: f.rec_type.get(),
        key: (f.key.get() ^ SIGN) as i64,
        create_tid: f.create_tid.get().wrapping_add(1),
        ..Default::default()
    }
}

/// The keys `[first, end)` of every record whose localization lies in
/// `lo`: keys start with it, so the range ends where the next one begins,
/// or past every key.
pub fn localization_range(lo: RangeInclusive<u32>) -> ([u8; 4], Vec<u8>) {
    let end = match lo.end().checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        None => vec![0xFF; KEY_LEN + 1],
    };
    (lo.start().to_be_bytes(), end)
}

/// A TID as an index value whose byte order is its unsigned order.
pub fn tid_bytes(tid: u64) -> [u8; 8] {
    tid.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    /// `hammer_btree_cmp` written out as the kernel does it, field by field.
    pub fn btree_cmp(a: &BaseElm, b: &BaseElm) -> Ordering {
        a.localization
            .cmp(&b.localization)
            .then(a.obj_id.cmp(&b.obj_id))
            .then(a.rec_type.cmp(&b.rec_type))
            .then(a.key.cmp(&b.key))
            .then(match (a.create_tid, b.create_tid) {
                (0, 0) => Ordering::Equal,
                (0, _) => Ordering::Greater,
                (_, 0) => Ordering::Less,
                (x, y) => x.cmp(&y),
            })
    }

    fn elm(lo: u32, obj: i64, rt: u16, key: i64, ct: u64) -> BaseElm {
        BaseElm {
            localization: lo,
            obj_id: obj,
            rec_type: rt,
            key,
            create_tid: ct,
            ..Default::default()
        }
    }

    #[test]
    fn extremes_sort_as_hammer_btree_cmp() {
        let vals_i = [i64::MIN, -1, 0, 1, i64::MAX];
        let vals_u = [
            0u64,
            1,
            2,
            0x7fff_ffff_ffff_ffff,
            0x8000_0000_0000_0000,
            u64::MAX,
        ];
        let mut all = Vec::new();
        for &lo in &[0u32, 1, 0xffff, 0x1_0001, u32::MAX] {
            for &o in &vals_i {
                for &rt in &[0u16, 1, 0xffff] {
                    for &k in &vals_i {
                        for &ct in &vals_u {
                            all.push(elm(lo, o, rt, k, ct));
                        }
                    }
                }
            }
        }
        for a in all.iter().step_by(7) {
            for b in all.iter().step_by(5) {
                assert_eq!(encode(a).cmp(&encode(b)), btree_cmp(a, b), "{a:?} {b:?}");
            }
        }
        for a in &all {
            assert_eq!(decode(&encode(a)), *a);
        }
    }

    #[test]
    fn identity_ignores_non_compared_fields() {
        let mut a = elm(2, 5, 0x10, 7, 9);
        let k = encode(&a);
        a.delete_tid = 99;
        a.obj_type = 3;
        a.btype = b'R';
        assert_eq!(encode(&a), k);
    }
}

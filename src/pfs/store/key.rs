//! The order-preserving 30-byte record key: memcmp order of the bytes is
//! `hammer_btree_cmp` order (spec: kernel-semantics.md §1.2).

use crate::ondisk::BaseElm;

/// Length of an encoded key.
pub const KEY_LEN: usize = 30;

/// An encoded key: localization, obj_id, rec_type, key, create_tid, each
/// big-endian, signed fields with the sign bit flipped, create_tid minus
/// one so that 0 (infinity) sorts last.
pub type RecKey = [u8; KEY_LEN];

const SIGN: u64 = 0x8000_0000_0000_0000;

/// Encodes the five compared fields of `e`; delete_tid, obj_type and btype
/// are not part of a record's identity.
pub fn encode(e: &BaseElm) -> RecKey {
    let mut k = [0u8; KEY_LEN];
    k[0..4].copy_from_slice(&e.localization.to_be_bytes());
    k[4..12].copy_from_slice(&((e.obj_id as u64) ^ SIGN).to_be_bytes());
    k[12..14].copy_from_slice(&e.rec_type.to_be_bytes());
    k[14..22].copy_from_slice(&((e.key as u64) ^ SIGN).to_be_bytes());
    k[22..30].copy_from_slice(&e.create_tid.wrapping_sub(1).to_be_bytes());
    k
}

/// The compared fields of an encoded key (other fields zero).
pub fn decode(k: &RecKey) -> BaseElm {
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&k[o..o + 8]);
        u64::from_be_bytes(b)
    };
    BaseElm {
        localization: u32::from_be_bytes([k[0], k[1], k[2], k[3]]),
        obj_id: (u64_at(4) ^ SIGN) as i64,
        rec_type: u16::from_be_bytes([k[12], k[13]]),
        key: (u64_at(14) ^ SIGN) as i64,
        create_tid: u64_at(22).wrapping_add(1),
        ..Default::default()
    }
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

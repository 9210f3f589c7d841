//! Hashing of the integer keys import and verify index per object
//! (object ids, device and inode numbers): one folded multiply per word
//! instead of SipHash's rounds, keyed at random per map as std's are.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

/// A map keyed by ids.
pub type IdMap<K, V> = HashMap<K, V, IdState>;
/// A set of ids.
pub type IdSet<K> = HashSet<K, IdState>;

/// The random keys of one map's hasher. They keep the hash of an id
/// unknown to whoever chose the ids (a stream's sender picks object ids),
/// so no one can line many of them up in one bucket.
#[derive(Clone, Copy, Debug)]
pub struct IdState {
    seed: u64,
    mul: u64,
}

impl Default for IdState {
    fn default() -> Self {
        // std's per-map random keys, drawn through SipHash of two words.
        let random = RandomState::new();
        IdState {
            seed: random.hash_one(0u8),
            mul: random.hash_one(1u8) | 1,
        }
    }
}

impl BuildHasher for IdState {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            h: self.seed,
            mul: self.mul,
        }
    }
}

pub struct IdHasher {
    h: u64,
    mul: u64,
}

/// The 128-bit product's halves folded together: every input bit
/// reaches the low bits (the bucket) and the high ones (hashbrown's tag).
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.h = folded_multiply(self.h ^ x, self.mul);
    }

    fn write_i64(&mut self, x: i64) {
        self.write_u64(x as u64);
    }

    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }

    fn finish(&self) -> u64 {
        self.h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_hashes_alike_in_one_map_and_differently_in_another() {
        let (a, b) = (IdState::default(), IdState::default());
        assert_eq!(a.hash_one(42i64), a.hash_one(42i64));
        assert_ne!(a.hash_one(42i64), a.hash_one(43i64));
        assert_ne!(a.hash_one(42i64), b.hash_one(42i64));
        assert_ne!(a.hash_one((1u64, 2u64)), a.hash_one((2u64, 1u64)));
    }

    #[test]
    fn ids_a_sender_lines_up_still_spread_over_the_buckets() {
        // Ids a multiple of a large power of two apart: the pattern that
        // puts an unkeyed multiplicative hash's ids in one bucket.
        let state = IdState::default();
        let mut buckets = [0u32; 1024];
        for i in 0..65_536i64 {
            let h = state.hash_one(i << 40);
            buckets[(h & 1023) as usize] += 1;
        }
        // 64 a bucket on average.
        assert!(
            buckets.iter().all(|&n| (16..=160).contains(&n)),
            "{buckets:?}"
        );
        let mut tags = [0u32; 128];
        for i in 0..65_536i64 {
            tags[(state.hash_one(i << 40) >> 57) as usize] += 1;
        }
        assert!(tags.iter().all(|&n| (256..=768).contains(&n)), "{tags:?}");
    }

    #[test]
    fn maps_keyed_by_ids_work_as_std_ones() {
        let mut m: IdMap<(u64, u64), i64> = IdMap::default();
        for i in 0..1000u64 {
            m.insert((i, i * 7), i as i64);
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.get(&(10, 70)), Some(&10));
        let s: IdSet<i64> = (0..10).collect();
        assert!(s.contains(&9) && !s.contains(&10));
    }
}

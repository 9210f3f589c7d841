//! Hashing of the integer keys import and verify index per object
//! (object ids, device and inode numbers): foldhash, folded multiplies
//! instead of SipHash's rounds, seeded at random per map as std's maps
//! are, so that whoever chose the ids (a stream's sender picks object
//! ids) cannot line many of them up in one bucket. Its quality variant:
//! with the fast one, ids 2^40 apart left most buckets empty for about
//! one seed in 150 (the test below failed 2 runs in 300; 0 in 300 since).

use std::collections::{HashMap, HashSet};

/// A map keyed by ids.
pub type IdMap<K, V> = HashMap<K, V, IdState>;
/// A set of ids.
pub type IdSet<K> = HashSet<K, IdState>;

/// A map's hasher: a new random seed for each, and a final folded
/// multiply that spreads ids lined up on high bits.
pub type IdState = foldhash::quality::RandomState;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

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

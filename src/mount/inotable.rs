//! The inodes the kernel holds of a mount, by number: an open-addressing
//! table in an anonymous mapping of its own, so that its memory goes back
//! to the system as the kernel forgets them (malloc keeps the blocks freed
//! in the middle of its heap, and serves from there blocks up to the size
//! of the largest one it ever gave back).

use std::io;

use memmap2::MmapMut;

/// A slot is four native-endian words: the number (0: empty), the view,
/// the object, the lookups the kernel holds.
const WORDS: usize = 4;
const SLOT_BYTES: usize = WORDS * 8;
/// The fewest slots a table has: one page.
const MIN_SLOTS: usize = 4096 / SLOT_BYTES;

/// What the kernel holds of one inode: its (view, object) and how many
/// lookups of it it has not forgotten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub node: (u64, i64),
    pub lookups: u64,
}

/// Numbers (never 0) to what the kernel holds of them: linear probing
/// from a number's low bits (numbers are keyed hashes), a power of two
/// of slots at most half full, moved to a smaller mapping once at most an
/// eighth full, and no mapping while empty.
#[derive(Default)]
pub struct InoTable {
    map: Option<MmapMut>,
    len: usize,
}

fn read(m: &[u8], slot: usize) -> [u64; WORDS] {
    let mut s = [0; WORDS];
    for (w, word) in s.iter_mut().enumerate() {
        let at = (slot * WORDS + w) * 8;
        let mut b = [0; 8];
        b.copy_from_slice(&m[at..at + 8]);
        *word = u64::from_ne_bytes(b);
    }
    s
}

fn write(m: &mut [u8], slot: usize, s: [u64; WORDS]) {
    for (w, word) in s.iter().enumerate() {
        let at = (slot * WORDS + w) * 8;
        m[at..at + 8].copy_from_slice(&word.to_ne_bytes());
    }
}

fn mask(m: &[u8]) -> usize {
    m.len() / SLOT_BYTES - 1
}

/// The slot holding `ino`, or the empty one it would go in (there is one:
/// a table is at most half full).
fn find(m: &[u8], ino: u64) -> (usize, bool) {
    let mask = mask(m);
    let mut at = ino as usize & mask;
    loop {
        match read(m, at)[0] {
            k if k == ino => return (at, true),
            0 => return (at, false),
            _ => at = (at + 1) & mask,
        }
    }
}

/// Empties slot `hole`, moving back the slots after it that probing would
/// no longer reach.
fn remove_at(m: &mut [u8], mut hole: usize) {
    let mask = mask(m);
    let mut at = hole;
    loop {
        at = (at + 1) & mask;
        let s = read(m, at);
        if s[0] == 0 {
            break;
        }
        // It may fill the hole unless its home lies after the hole.
        let home = s[0] as usize & mask;
        if at.wrapping_sub(home) & mask >= at.wrapping_sub(hole) & mask {
            write(m, hole, s);
            hole = at;
        }
    }
    write(m, hole, [0; WORDS]);
}

/// A new mapping of `slots` slots holding the entries of `old`.
fn moved(old: Option<&[u8]>, slots: usize) -> io::Result<MmapMut> {
    let mut new = MmapMut::map_anon(slots * SLOT_BYTES)?;
    if let Some(old) = old {
        for slot in 0..=mask(old) {
            let s = read(old, slot);
            if s[0] != 0 {
                let (at, _) = find(&new, s[0]);
                write(&mut new, at, s);
            }
        }
    }
    Ok(new)
}

impl InoTable {
    pub fn get(&self, ino: u64) -> Option<Held> {
        let m = self.map.as_deref()?;
        let (at, found) = find(m, ino);
        let [_, view, obj_id, lookups] = read(m, at);
        found.then_some(Held {
            node: (view, obj_id as i64),
            lookups,
        })
    }

    /// Counts one more lookup of `ino`, the number of `node`; fails only
    /// if the table had to grow and no memory could be mapped.
    pub fn hold(&mut self, ino: u64, node: (u64, i64)) -> io::Result<()> {
        if let Some(m) = self.map.as_deref_mut() {
            let (at, found) = find(m, ino);
            if found {
                let mut s = read(m, at);
                s[3] = s[3].saturating_add(1);
                write(m, at, s);
                return Ok(());
            }
        }
        let slots = self.map.as_deref().map_or(0, |m| mask(m) + 1);
        let mut map = match self.map.take() {
            Some(m) if (self.len + 1) * 2 <= slots => m,
            old => match moved(old.as_deref(), (slots * 2).max(MIN_SLOTS)) {
                Ok(new) => new,
                Err(e) => {
                    self.map = old;
                    return Err(e);
                }
            },
        };
        let (at, _) = find(&map, ino);
        write(&mut map, at, [ino, node.0, node.1 as u64, 1]);
        self.map = Some(map);
        self.len += 1;
        Ok(())
    }

    /// Takes `lookups` lookups of `ino` off; returns its node if that was
    /// the last of them (it is then gone).
    pub fn forget(&mut self, ino: u64, lookups: u64) -> Option<(u64, i64)> {
        let m = self.map.as_deref_mut()?;
        let (at, found) = find(m, ino);
        if !found {
            return None;
        }
        let mut s = read(m, at);
        s[3] = s[3].saturating_sub(lookups);
        if s[3] > 0 {
            write(m, at, s);
            return None;
        }
        remove_at(m, at);
        self.len -= 1;
        let slots = mask(m) + 1;
        if self.len == 0 {
            self.map = None;
        } else if slots > MIN_SLOTS && self.len * 8 <= slots {
            // Kept as it is if no smaller mapping can be had.
            let smaller = (self.len * 4).next_power_of_two().max(MIN_SLOTS);
            if let Ok(new) = moved(Some(m), smaller) {
                self.map = Some(new);
            }
        }
        Some((s[1], s[2] as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn slots(t: &InoTable) -> usize {
        t.map.as_deref().map_or(0, |m| mask(m) + 1)
    }

    /// Random holds and forgets of a few numbers (so that they crowd into
    /// runs and wrap around the table's end) against a map.
    #[test]
    fn holds_and_forgets_as_a_map_does() {
        let mut t = InoTable::default();
        let mut model: HashMap<u64, Held> = HashMap::new();
        let mut rng = crate::rng::Rng(0x9e37_79b9_7f4a_7c15);
        let mut next = || rng.next();
        for round in 0..200_000u64 {
            let r = next();
            // Numbers crowd at each end of a small table.
            let ino = match r % 3 {
                0 => 1 + r % 300,
                1 => (r >> 8) % 300 + (1 << 20) - 300,
                _ => r >> 1,
            }
            .max(1);
            // Mostly holds while filling, mostly forgets while emptying.
            let filling = (round / 50_000) % 2 == 0;
            if (r >> 60 < 10) == filling {
                let node = (ino ^ 0x55, !(ino as i64));
                t.hold(ino, node).unwrap();
                model
                    .entry(ino)
                    .or_insert(Held { node, lookups: 0 })
                    .lookups += 1;
            } else {
                let n = 1 + (r >> 40) % 2;
                let gone = t.forget(ino, n);
                let want = match model.get_mut(&ino) {
                    Some(h) if h.lookups <= n => model.remove(&ino).map(|h| h.node),
                    Some(h) => {
                        h.lookups -= n;
                        None
                    }
                    None => None,
                };
                assert_eq!(gone, want, "round {round}");
            }
            assert_eq!(t.len, model.len());
            assert!(t.len * 2 <= slots(&t));
            if round % 997 == 0 {
                for (ino, h) in &model {
                    assert_eq!(t.get(*ino), Some(*h), "round {round}");
                }
            }
        }
        for (ino, h) in &model {
            assert_eq!(t.get(*ino), Some(*h));
        }
    }

    #[test]
    fn the_mapping_follows_what_is_held() {
        let mut t = InoTable::default();
        assert_eq!(t.get(5), None);
        assert_eq!(t.forget(5, 1), None);
        for ino in 1..=100_000 {
            t.hold(ino * 0x9e37_79b9, (1, ino as i64)).unwrap();
        }
        assert!(slots(&t) >= 200_000);
        for ino in 1..=99_000 {
            assert_eq!(t.forget(ino * 0x9e37_79b9, 1), Some((1, ino as i64)));
        }
        // An eighth full at most after each forget.
        assert!(slots(&t) <= 8 * 1000, "{}", slots(&t));
        for ino in 99_001..=100_000 {
            t.forget(ino * 0x9e37_79b9, 1);
        }
        assert!(t.map.is_none());
    }
}

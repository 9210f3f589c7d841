//! What `hammer mirror-verify` compares of a record (its key without the
//! PFS bits, its delete_tid and a hash of its content), and the tree of
//! hashes over the key space those digests fold into: nodes whose ends are
//! chosen by the hash of a record's key, so both sides cut at the same
//! keys whatever else differs.

use std::cmp::Ordering;

use crate::ondisk::{rectype, BaseElm, DirentryHeadLe, LeafElm, LOCALIZE_MASK};
use crate::pfs::store::{encode_key, RecKey};
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// Levels of the tree, 0 (the leaves' parents) to `TOP`.
pub const TOP: u32 = 3;

/// A record ends its level-0 node when the hash of its key is a multiple
/// of this (about this many records per node); a level-k node ends where
/// it is a multiple of `LEAF_SPAN * FANOUT^k`.
const LEAF_SPAN: u64 = 256;
const FANOUT: u64 = 32;

/// Length of a record's content hash and of a node's hash (XXH3-128:
/// mirror-verify finds damage and mistakes; a hostile side could lie about
/// its hashes whatever they are, so a cryptographic hash would buy
/// nothing but time).
pub const CONTENT_LEN: usize = 16;
pub const HASH_LEN: usize = 16;

/// One record version as mirror-verify compares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordDigest {
    /// The record's identity, localization without the PFS bits: a master
    /// and its slave are different PFSes.
    pub key: RecKey,
    /// 0 when not deleted as of the TID compared (MIRROR_READ clears a
    /// later one, kernel-semantics.md §3.2).
    pub delete_tid: u64,
    /// The leaf's other fields and the payload bytes (or that it could
    /// not be read), hashed.
    pub content: [u8; CONTENT_LEN],
}

impl RecordDigest {
    /// The digest of a record read with its payload (`None` when it could
    /// not be read). Whether the payload passes its data CRC is verify's
    /// check, which each side runs on the records it hashes.
    pub fn new(leaf: &LeafElm, data: Option<&[u8]>) -> Self {
        let b = &leaf.base;
        let key = encode_key(&BaseElm {
            localization: b.localization & LOCALIZE_MASK,
            ..*b
        });
        let mut h = Xxh3::new();
        // data_offset is where the payload lies in one PFS, not content.
        h.update(&[b.obj_type, b.btype]);
        h.update(&leaf.create_ts.to_le_bytes());
        // A version deleted after the TID compared reads as live
        // (delete_tid cleared) but keeps its delete_ts.
        let delete_ts = if b.delete_tid == 0 { 0 } else { leaf.delete_ts };
        h.update(&delete_ts.to_le_bytes());
        h.update(&leaf.data_len.to_le_bytes());
        // Not data_crc: MIRROR_WRITE rewrites a directory entry's target
        // PFS in its payload and its CRC with it (kernel-semantics.md §4.6).
        match data {
            Some(d) => {
                h.update(&[1]);
                let field = DirentryHeadLe::LOCALIZATION;
                match (b.rec_type == rectype::DIRENTRY, d.get(field.clone())) {
                    (true, Some(_)) => {
                        h.update(&d[..field.start]);
                        h.update(&d[field.end..]);
                    }
                    _ => {
                        h.update(d);
                    }
                }
            }
            None => {
                h.update(&[0]);
            }
        }
        RecordDigest {
            key,
            delete_tid: b.delete_tid,
            content: h.digest128().to_le_bytes(),
        }
    }

    /// The bytes a level-0 node's hash folds in for this record.
    fn fold_into(&self, h: &mut Xxh3) {
        h.update(&self.key);
        h.update(&self.delete_tid.to_le_bytes());
        h.update(&self.content);
    }
}

/// How many levels a record's key ends: 0 (none) to `TOP + 1` (all).
fn levels_ended(key: &RecKey) -> u32 {
    let h = xxh3_64(key);
    let mut span = LEAF_SPAN;
    let mut n = 0;
    while n <= TOP && h.is_multiple_of(span) {
        n += 1;
        span *= FANOUT;
    }
    n
}

/// One node: the records after the previous node's last key up to and
/// including `last` (`None`: up to the end of the key space).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub last: Option<RecKey>,
    pub hash: [u8; HASH_LEN],
}

impl Node {
    fn fold_into(&self, h: &mut Xxh3) {
        h.update(&[u8::from(self.last.is_some())]);
        h.update(self.last.as_ref().map_or(&[][..], |k| &k[..]));
        h.update(&self.hash);
    }
}

/// The tree of a PFS: its nodes, level by level, each level in key order.
#[derive(Debug)]
pub struct Tree {
    levels: Vec<Vec<Node>>,
}

impl Tree {
    /// The nodes of `level` that end inside `r`, in order.
    pub fn nodes_in(&self, level: u32, r: &KeyRange) -> &[Node] {
        let nodes = self
            .levels
            .get(level as usize)
            .map_or(&[][..], Vec::as_slice);
        // Nodes are in order of their ends, `None` last.
        let from = nodes.partition_point(|n| !r.after_is_before(&n.last));
        let n = nodes[from..]
            .iter()
            .take_while(|n| r.holds_end(&n.last))
            .count();
        &nodes[from..from + n]
    }
}

/// Folds a PFS's digests, in key order, into its tree.
pub struct TreeBuilder {
    hashers: Vec<Xxh3>,
    levels: Vec<Vec<Node>>,
}

impl Default for TreeBuilder {
    fn default() -> Self {
        TreeBuilder {
            hashers: (0..=TOP).map(|_| Xxh3::new()).collect(),
            levels: (0..=TOP).map(|_| Vec::new()).collect(),
        }
    }
}

impl TreeBuilder {
    pub fn take(&mut self, d: &RecordDigest) {
        d.fold_into(&mut self.hashers[0]);
        let ended = levels_ended(&d.key);
        self.cut(ended, Some(d.key));
    }

    /// Ends the node of each of the lowest `n` levels at `last`, each
    /// folding into its parent.
    fn cut(&mut self, n: u32, last: Option<RecKey>) {
        for level in 0..n as usize {
            let node = Node {
                last,
                hash: self.hashers[level].digest128().to_le_bytes(),
            };
            self.hashers[level].reset();
            if let Some(parent) = self.hashers.get_mut(level + 1) {
                node.fold_into(parent);
            }
            self.levels[level].push(node);
        }
    }

    /// The tree, each level's last node open-ended (and possibly empty).
    pub fn finish(mut self) -> Tree {
        self.cut(TOP + 1, None);
        Tree {
            levels: self.levels,
        }
    }
}

/// A key range `(after, last]` (`None`: from the start / to the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRange {
    pub after: Option<RecKey>,
    pub last: Option<RecKey>,
}

impl KeyRange {
    /// The whole key space.
    pub const ALL: KeyRange = KeyRange {
        after: None,
        last: None,
    };

    pub fn contains(&self, k: &RecKey) -> bool {
        self.after.is_none_or(|a| *k > a) && self.last.is_none_or(|l| *k <= l)
    }

    /// Whether a node ending at `end` starts after this range's start.
    fn after_is_before(&self, end: &Option<RecKey>) -> bool {
        match (self.after, end) {
            (None, _) | (Some(_), None) => true,
            (Some(a), Some(e)) => *e > a,
        }
    }

    /// Whether a node ending at `end` (`None`: the end of the key space)
    /// ends inside this range.
    fn holds_end(&self, end: &Option<RecKey>) -> bool {
        end_order(end, &self.last) != Ordering::Greater
    }
}

/// Node ends in key order, `None` (the end of the key space) last.
fn end_order(a: &Option<RecKey>, b: &Option<RecKey>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// The parts of `ranges` whose records may differ, given each side's nodes
/// of one level inside them (`a` and `b`, as `Tree::nodes_in` gives them).
/// The space between two node ends both sides have is the same when both
/// hold one node there with the same hash; otherwise (an end on one side
/// only, or a different hash) it is to be looked at more closely.
/// Adjacent differing parts are merged.
pub fn differing_ranges(ranges: &[KeyRange], a: &[Node], b: &[Node]) -> Vec<KeyRange> {
    let mut out: Vec<KeyRange> = Vec::new();
    let (mut a, mut b) = (a, b);
    for r in ranges {
        let na = a.iter().take_while(|n| r.holds_end(&n.last)).count();
        let nb = b.iter().take_while(|n| r.holds_end(&n.last)).count();
        differing_in(r, &a[..na], &b[..nb], &mut out);
        a = &a[na..];
        b = &b[nb..];
    }
    out
}

/// Descends the two trees from their top levels `top` (each side's nodes
/// of level `TOP`): at each level below, `ask` gives each side's nodes of
/// that level in the ranges still differing. Returns the ranges whose
/// records differ (empty: the trees are the same).
pub fn descend<E>(
    top: (Vec<Node>, Vec<Node>),
    mut ask: impl FnMut(u32, &[KeyRange]) -> Result<(Vec<Node>, Vec<Node>), E>,
) -> Result<Vec<KeyRange>, E> {
    let mut ranges = differing_ranges(&[KeyRange::ALL], &top.0, &top.1);
    for level in (0..TOP).rev() {
        if ranges.is_empty() {
            break;
        }
        let (a, b) = ask(level, &ranges)?;
        ranges = differing_ranges(&ranges, &a, &b);
    }
    Ok(ranges)
}

/// `differing_ranges` within one range `r`.
fn differing_in(r: &KeyRange, a: &[Node], b: &[Node], out: &mut Vec<KeyRange>) {
    let mut push = |after: Option<RecKey>, last: Option<RecKey>| match out.last_mut() {
        Some(prev) if prev.last == after && after.is_some() => prev.last = last,
        _ => out.push(KeyRange { after, last }),
    };
    let (mut i, mut j) = (0, 0);
    let mut after = r.after;
    // Each step takes the nodes up to the next end both sides share; the
    // range's own end, shared by construction, closes the last step.
    while i < a.len() || j < b.len() {
        let (mut na, mut nb) = (0, 0);
        let end = loop {
            let ea = a.get(i + na).map_or(r.last, |n| n.last);
            let eb = b.get(j + nb).map_or(r.last, |n| n.last);
            match end_order(&ea, &eb) {
                Ordering::Equal => {
                    na += usize::from(i + na < a.len());
                    nb += usize::from(j + nb < b.len());
                    break ea;
                }
                Ordering::Less => na += 1,
                Ordering::Greater => nb += 1,
            }
        };
        let same = na == 1 && nb == 1 && a[i].hash == b[j].hash;
        if !same {
            push(after, end);
        }
        after = end;
        i += na;
        j += nb;
        if end == r.last {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(last: Option<u8>, hash: u8) -> Node {
        Node {
            last: last.map(|k| [k; 30]),
            hash: [hash; HASH_LEN],
        }
    }

    fn range(after: Option<u8>, last: Option<u8>) -> KeyRange {
        KeyRange {
            after: after.map(|k| [k; 30]),
            last: last.map(|k| [k; 30]),
        }
    }

    #[test]
    fn same_nodes_have_no_differing_range() {
        let a = [node(Some(1), 1), node(Some(5), 2), node(None, 3)];
        assert!(differing_ranges(&[KeyRange::ALL], &a, &a).is_empty());
    }

    #[test]
    fn a_different_hash_is_its_node_only() {
        let a = [node(Some(1), 1), node(Some(5), 2), node(None, 3)];
        let b = [node(Some(1), 1), node(Some(5), 9), node(None, 3)];
        assert_eq!(
            differing_ranges(&[KeyRange::ALL], &a, &b),
            [range(Some(1), Some(5))]
        );
    }

    #[test]
    fn an_end_on_one_side_only_spans_to_the_next_shared_one() {
        let a = [node(Some(1), 1), node(Some(5), 2), node(None, 3)];
        let b = [
            node(Some(1), 1),
            node(Some(3), 7),
            node(Some(5), 8),
            node(None, 3),
        ];
        assert_eq!(
            differing_ranges(&[KeyRange::ALL], &a, &b),
            [range(Some(1), Some(5))]
        );
    }

    #[test]
    fn the_first_and_last_nodes_and_adjacent_ones_merge() {
        let a = [node(Some(1), 1), node(Some(5), 2), node(None, 3)];
        let b = [node(Some(1), 9), node(Some(5), 9), node(None, 9)];
        assert_eq!(differing_ranges(&[KeyRange::ALL], &a, &b), [KeyRange::ALL]);
    }

    #[test]
    fn ranges_are_compared_apart_and_keep_their_starts() {
        let ranges = [range(Some(1), Some(5)), range(Some(9), None)];
        let a = [node(Some(3), 1), node(Some(5), 2), node(None, 3)];
        let b = [node(Some(3), 1), node(Some(5), 7), node(None, 4)];
        assert_eq!(
            differing_ranges(&ranges, &a, &b),
            [range(Some(3), Some(5)), range(Some(9), None)]
        );
        // A side with no node in a range (all its records gone).
        let b = [node(Some(5), 2), node(None, 3)];
        assert_eq!(differing_ranges(&ranges, &a, &b), [range(Some(1), Some(5))]);
    }

    /// A synthetic record: its key from `i`, its content from `v`.
    fn record(i: u64, v: u8) -> RecordDigest {
        let mut key = [0; 30];
        key[..8].copy_from_slice(&i.to_be_bytes());
        RecordDigest {
            key,
            delete_tid: 0,
            content: [v; CONTENT_LEN],
        }
    }

    /// The nodes of `level` of `t` in `ranges`, as a side answers.
    fn nodes_of(t: &Tree, level: u32, ranges: &[KeyRange]) -> Vec<Node> {
        ranges
            .iter()
            .flat_map(|r| t.nodes_in(level, r))
            .copied()
            .collect()
    }

    fn tree_of(records: impl Iterator<Item = RecordDigest>) -> Tree {
        let mut t = TreeBuilder::default();
        records.for_each(|d| t.take(&d));
        t.finish()
    }

    /// Enough records for every level to have several nodes: the
    /// descent finds each difference and little else.
    #[test]
    fn the_descent_finds_each_difference_and_little_else() {
        const N: u64 = 1_000_000;
        let (changed, gone, extra) = (1_234, 500_000, 999_999_u64);
        let a = tree_of((0..N).map(|i| record(i * 2, 0)));
        let b = tree_of((0..N).filter(|&i| i != gone).flat_map(|i| {
            let v = u8::from(i == changed);
            let more = (i == extra).then(|| record(i * 2 + 1, 0));
            std::iter::once(record(i * 2, v)).chain(more)
        }));
        let sizes: Vec<usize> = a.levels.iter().map(Vec::len).collect();
        assert!(sizes[TOP as usize - 1] > 1, "{sizes:?} nodes per level");
        let top = (
            nodes_of(&a, TOP, &[KeyRange::ALL]),
            nodes_of(&b, TOP, &[KeyRange::ALL]),
        );
        let mut asked = 0;
        let ranges = descend(top, |level, ranges| {
            let both = (nodes_of(&a, level, ranges), nodes_of(&b, level, ranges));
            asked += both.0.len() + both.1.len();
            Ok::<_, ()>(both)
        })
        .unwrap();
        for k in [changed * 2, gone * 2, extra * 2 + 1] {
            assert!(
                ranges.iter().any(|r| r.contains(&record(k, 0).key)),
                "{k} not in {ranges:?}"
            );
        }
        let inside = (0..2 * N)
            .filter(|&k| ranges.iter().any(|r| r.contains(&record(k, 0).key)))
            .count();
        assert!(
            inside < 3 * 8 * LEAF_SPAN as usize,
            "{inside} keys to compare"
        );
        assert!(asked < 3 * 2 * 4 * FANOUT as usize, "{asked} nodes asked");
        // The same trees: nothing to descend into.
        let same = (
            nodes_of(&a, TOP, &[KeyRange::ALL]),
            nodes_of(&a, TOP, &[KeyRange::ALL]),
        );
        let none = descend(same, |_, _| -> Result<_, ()> { unreachable!() }).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn nodes_in_picks_each_ranges_nodes() {
        let mut t = TreeBuilder::default();
        t.cut(1, Some([1; 30]));
        t.cut(1, Some([3; 30]));
        t.cut(1, Some([5; 30]));
        let tree = t.finish();
        let ends = |ranges: &[KeyRange]| -> Vec<Option<u8>> {
            nodes_of(&tree, 0, ranges)
                .iter()
                .map(|n| n.last.map(|k| k[0]))
                .collect()
        };
        assert_eq!(ends(&[KeyRange::ALL]), [Some(1), Some(3), Some(5), None]);
        assert_eq!(ends(&[range(Some(1), Some(5))]), [Some(3), Some(5)]);
        assert_eq!(
            ends(&[range(None, Some(1)), range(Some(5), None)]),
            [Some(1), None]
        );
        // The top level has one open-ended node.
        assert_eq!(tree.nodes_in(TOP, &KeyRange::ALL).len(), 1);
    }
}

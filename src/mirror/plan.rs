//! What each mirror-read batch covers, decided without I/O from what the
//! driver (`read.rs`) has read: the TID range after the target's sync
//! point or the previous chunk, a cycle file's resume point (D3), the
//! prescan's chunks (protocol.md §5, D2) and what follows a batch.

use super::cycle::CyclePoint;
use super::prescan::HistEntry;
use crate::ondisk::{BaseElm, PseudofsData};

/// How a run proceeds from batch to batch (the original's tri-state
/// `streaming` variable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// mirror-read: one batch, then TERM.
    Once,
    /// mirror-read whose prescan cut the transfer: one batch per chunk.
    Chunked,
    /// mirror-read-stream: batches for ever, waiting for new data.
    Stream,
}

impl Mode {
    pub fn new(stream: bool) -> Self {
        if stream {
            Mode::Stream
        } else {
            Mode::Once
        }
    }

    /// The original's `streaming != 0`: progress lines and chunks apply.
    pub fn batches(self) -> bool {
        self != Mode::Once
    }

    /// A prescan cut the transfer: a single run walks its chunks.
    pub fn chunked(self) -> Self {
        match self {
            Mode::Once => Mode::Chunked,
            m => m,
        }
    }
}

/// The key and TID range one batch scans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub key_beg: BaseElm,
    pub tid_beg: u64,
    pub tid_end: u64,
}

impl Range {
    /// The last TID this range covered once sent: its end, or just before
    /// its start when it was empty.
    pub fn covered_to(&self) -> u64 {
        if self.tid_beg < self.tid_end {
            self.tid_end
        } else {
            self.tid_beg.saturating_sub(1)
        }
    }
}

/// The range of a batch before any cycle file or prescan: from just after
/// the target's sync point (two-way) or what the previous batch of this
/// run covered (one-way), never below the source's sync_beg_tid, up to the
/// source's sync point. Also returns the target's sync point as the source
/// sees it (`tid_beg - 1` before clamping).
pub fn initial_range(
    target_sync_end: Option<u64>,
    previous_covered: Option<u64>,
    source: &PseudofsData,
) -> (Range, u64) {
    let after = match (target_sync_end, previous_covered) {
        (Some(t), _) => t.wrapping_add(1),
        (None, Some(e)) => e.saturating_add(1),
        (None, None) => 0,
    };
    let range = Range {
        key_beg: BaseElm::KEY_BEG_INIT,
        tid_beg: after.max(source.sync_beg_tid),
        tid_end: source.sync_end_tid,
    };
    (range, after.wrapping_sub(1))
}

/// D3: the range a cycle file's point resumes, if it continues exactly an
/// interrupted batch that the target has not moved past: a key past the
/// start, a saved end TID within today's range and, two-way, a start right
/// after the target's sync point.
pub fn resume(
    point: &CyclePoint,
    range: &Range,
    two_way: bool,
    target_sync_end: u64,
) -> Option<Range> {
    let end = point.tid_end?;
    let continues = point.key != BaseElm::KEY_BEG_INIT
        && (!two_way || point.tid == target_sync_end.wrapping_add(1))
        && point.tid <= end
        && end <= range.tid_end;
    continues.then_some(Range {
        key_beg: point.key,
        tid_beg: point.tid,
        tid_end: end,
    })
}

/// Whether a cycle file's point was written for continuation (an
/// interrupted batch) rather than by a complete run.
pub fn is_continuation(point: &CyclePoint) -> bool {
    point.tid_end.is_some()
}

/// The chunks of the current prescan: chunk k ends at `entries[k].tid`.
#[derive(Debug)]
pub struct Chunks {
    entries: Vec<HistEntry>,
    index: usize,
}

impl Chunks {
    /// `entries` as the prescan reduced them: the range's start, then each
    /// chunk's end; at least two entries.
    pub fn new(entries: Vec<HistEntry>) -> Option<Self> {
        (entries.len() >= 2).then_some(Chunks { entries, index: 0 })
    }

    /// Moves to the next chunk: its end TID and the bytes the prescan
    /// counted for it.
    pub fn advance(&mut self) -> (u64, u64) {
        self.index = (self.index + 1).min(self.entries.len() - 1);
        (
            self.entries[self.index].tid,
            self.entries[self.index - 1].bytes,
        )
    }

    /// The chunk sent last was the final one.
    pub fn done(&self) -> bool {
        self.index == self.entries.len() - 1
    }
}

/// What follows a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Send TERM and end.
    Finish,
    /// Run the next batch at once (a resumed range, the next chunk).
    Next,
    /// The last chunk is done: forget the prescan (D2); then finish a
    /// single run or wait for new data.
    ChunksDone,
    /// Wait for the sync point to move, then run the next batch.
    Wait,
}

/// The decision after a batch, in the original's order.
pub fn after_batch(interrupted: bool, resumed: bool, chunks: Option<&Chunks>, mode: Mode) -> After {
    if interrupted {
        return After::Finish;
    }
    if resumed {
        return After::Next;
    }
    match chunks {
        Some(c) if !c.done() => After::Next,
        Some(_) => After::ChunksDone,
        None if mode == Mode::Stream => After::Wait,
        None => After::Finish,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(beg: u64, end: u64) -> PseudofsData {
        PseudofsData {
            sync_beg_tid: beg,
            sync_end_tid: end,
            ..Default::default()
        }
    }

    #[test]
    fn a_range_starts_after_the_target_or_the_last_chunk_never_below_sync_beg() {
        let s = source(0x10, 0x500);
        let (r, t) = initial_range(Some(0x200), Some(0x300), &s);
        assert_eq!((r.tid_beg, r.tid_end, t), (0x201, 0x500, 0x200));
        assert_eq!(r.key_beg, BaseElm::KEY_BEG_INIT);
        let (r, t) = initial_range(None, Some(0x300), &s);
        assert_eq!((r.tid_beg, t), (0x301, 0x300));
        let (r, t) = initial_range(None, None, &s);
        assert_eq!((r.tid_beg, t), (0x10, u64::MAX));
        assert_eq!(r.covered_to(), 0x500);
        let empty = Range {
            tid_beg: 0x600,
            ..r
        };
        assert_eq!(empty.covered_to(), 0x5ff);
        // A target at the top of the TID space wraps as in C.
        let (r, _) = initial_range(Some(u64::MAX), None, &s);
        assert_eq!(r.tid_beg, 0x10);
    }

    #[test]
    fn d3_a_resume_point_must_continue_the_interrupted_batch() {
        let key = BaseElm {
            obj_id: 0x1_0000_0042,
            ..BaseElm::KEY_BEG_INIT
        };
        let range = Range {
            key_beg: BaseElm::KEY_BEG_INIT,
            tid_beg: 0x101,
            tid_end: 0x900,
        };
        let p = CyclePoint {
            key,
            tid: 0x101,
            tid_end: Some(0x800),
        };
        let r = resume(&p, &range, true, 0x100).unwrap();
        assert_eq!((r.key_beg, r.tid_beg, r.tid_end), (key, 0x101, 0x800));
        // The target moved on since: start over.
        assert_eq!(resume(&p, &range, true, 0x180), None);
        // One-way the target is unknown; the range still has to fit.
        assert!(resume(&p, &range, false, 0x180).is_some());
        let beyond = Range {
            tid_end: 0x7ff,
            ..range
        };
        assert_eq!(resume(&p, &beyond, false, 0), None);
        // A complete run's point, or one at the start key, resumes nothing.
        for q in [
            CyclePoint { tid_end: None, ..p },
            CyclePoint {
                key: BaseElm::KEY_BEG_INIT,
                ..p
            },
            CyclePoint { tid: 0x801, ..p },
        ] {
            assert_eq!(resume(&q, &range, false, 0), None, "{q:?}");
        }
        assert!(is_continuation(&p) && !is_continuation(&CyclePoint { tid_end: None, ..p }));
    }

    fn chunks(ends: &[(u64, u64)]) -> Chunks {
        Chunks::new(
            ends.iter()
                .map(|&(tid, bytes)| HistEntry { tid, bytes })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn chunks_are_walked_once_each_with_the_bytes_before_them() {
        let mut c = chunks(&[(0x100, 10), (0x200, 20), (0x300, 30)]);
        assert!(!c.done());
        assert_eq!(c.advance(), (0x200, 10));
        assert_eq!(c.advance(), (0x300, 20));
        assert!(c.done());
        assert!(Chunks::new(vec![HistEntry { tid: 1, bytes: 0 }]).is_none());
    }

    #[test]
    fn what_follows_a_batch() {
        let mut c = chunks(&[(1, 0), (2, 0), (3, 0)]);
        c.advance();
        assert_eq!(
            after_batch(true, true, Some(&c), Mode::Stream),
            After::Finish
        );
        assert_eq!(after_batch(false, true, None, Mode::Once), After::Next);
        assert_eq!(
            after_batch(false, false, Some(&c), Mode::Chunked),
            After::Next
        );
        c.advance();
        assert_eq!(
            after_batch(false, false, Some(&c), Mode::Chunked),
            After::ChunksDone
        );
        assert_eq!(after_batch(false, false, None, Mode::Stream), After::Wait);
        assert_eq!(after_batch(false, false, None, Mode::Once), After::Finish);
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::new(false).chunked(), Mode::Chunked);
        assert_eq!(Mode::new(true).chunked(), Mode::Stream);
        assert!(!Mode::Once.batches() && Mode::Chunked.batches() && Mode::Stream.batches());
    }
}

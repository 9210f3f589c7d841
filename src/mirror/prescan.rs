//! The prescan histogram that cuts a bulk transfer into chunks of about
//! `-S` bytes (protocol.md §5), with D19's bucket overflow fixed by 128-bit
//! arithmetic.

use crate::ondisk::LeafElm;
use crate::wire::{doalign, mrec_type};

/// `HIST_COUNT`: buckets across the TID range.
pub const HIST_COUNT: u64 = 1_048_576;

/// One chunk boundary: the chunk ends at `tid` (inclusive) and the bytes
/// counted before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistEntry {
    pub tid: u64,
    pub bytes: u64,
}

/// Bucket counters for one prescan of `[beg, end]`.
pub struct Prescan {
    beg: u64,
    end: u64,
    cnt: Vec<u64>,
    /// Bytes counted in all.
    pub total: u64,
    /// Bytes counted since the last progress report.
    pub accum: u64,
}

impl Prescan {
    /// `None` when the range is empty (`beg >= end`): there is nothing to
    /// split (D2: the caller must not read entries of an earlier prescan).
    pub fn new(beg: u64, end: u64) -> Option<Self> {
        (beg < end).then(|| Prescan {
            beg,
            end,
            cnt: vec![0; HIST_COUNT as usize + 1],
            total: 0,
            accum: 0,
        })
    }

    /// Which bucket a TID falls in; a TID exactly on a boundary belongs to
    /// the earlier chunk because chunk ends are inclusive.
    fn bucket(&self, t: u64) -> usize {
        let span = u128::from(self.end - self.beg);
        let mut i = u128::from(t - self.beg) * u128::from(HIST_COUNT) / span;
        let tx = u128::from(self.beg) + i * span / u128::from(HIST_COUNT);
        if u128::from(t) == tx && i > 0 {
            i -= 1;
        }
        i as usize
    }

    fn add(&mut self, t: u64, len: u64) {
        let b = self.bucket(t);
        self.cnt[b] += len;
        self.total += len;
        self.accum += len;
    }

    /// Counts one record of a NODATA MIRROR_READ: its deletion and its
    /// creation, each where it falls in the range, with the data it would
    /// carry in a real transfer.
    pub fn add_record(&mut self, rtype: u32, rec_size: u32, leaf: &LeafElm) {
        if !matches!(rtype & mrec_type::LOMASK, mrec_type::REC | mrec_type::PASS) {
            return;
        }
        let data = doalign(leaf.data_len.max(0) as u32) as u64;
        let size = doalign(rec_size) as u64;
        let d = leaf.base.delete_tid;
        if d != 0 && (self.beg..=self.end).contains(&d) {
            let len = if rtype == mrec_type::REC {
                size.saturating_sub(data)
            } else {
                size
            };
            self.add(d, len);
        }
        let c = leaf.base.create_tid;
        if c != 0 && (self.beg..=self.end).contains(&c) {
            let len = if rtype == mrec_type::REC_NODATA {
                size + data
            } else {
                size
            };
            self.add(c, len);
        }
    }

    /// Reduces the buckets to chunk boundaries of at least `splitup` bytes.
    /// The last entry is `{end, u64::MAX}`; chunk k (1-based) ends at
    /// `result[k].tid`.
    pub fn reduce(&self, splitup: u64) -> Vec<HistEntry> {
        let span = u128::from(self.end - self.beg);
        let mut hist = vec![HistEntry {
            tid: self.beg,
            bytes: self.cnt[0],
        }];
        for i in 1..HIST_COUNT {
            if hist.last().is_some_and(|h| h.bytes >= splitup) {
                let tid =
                    (u128::from(self.beg) + u128::from(i) * span / u128::from(HIST_COUNT)) as u64;
                // A range narrower than HIST_COUNT maps many buckets to one
                // TID; the original then made empty chunks, and an empty
                // chunk ended a one-way run early. Boundaries only advance.
                if hist.last().is_some_and(|h| h.tid < tid) {
                    hist.push(HistEntry { tid, bytes: 0 });
                }
            }
            if let Some(h) = hist.last_mut() {
                h.bytes += self.cnt[i as usize];
            }
        }
        hist.push(HistEntry {
            tid: self.end,
            bytes: u64::MAX,
        });
        hist
    }
}

/// The summary said after a prescan: `Prescan %d chunks, total %ju MBytes
/// (a, b, c, ...)`.
pub fn summary(hist: &[HistEntry], total: u64) -> String {
    let res = hist.len() - 1;
    let shown: Vec<String> = hist[..res.min(3)]
        .iter()
        .map(|h| h.bytes.to_string())
        .collect();
    format!(
        "Prescan {} chunks, total {} MBytes ({}{})",
        res,
        total / 1_048_576,
        shown.join(", "),
        if res > 3 { ", ..." } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ondisk::BaseElm;

    fn leaf(create_tid: u64, delete_tid: u64, data_len: i32) -> LeafElm {
        LeafElm {
            base: BaseElm {
                create_tid,
                delete_tid,
                ..Default::default()
            },
            data_len,
            ..Default::default()
        }
    }

    #[test]
    fn empty_range_has_no_histogram() {
        assert!(Prescan::new(5, 5).is_none());
        assert!(Prescan::new(6, 5).is_none());
    }

    #[test]
    fn boundary_tid_goes_to_earlier_bucket() {
        let p = Prescan::new(0, HIST_COUNT * 2).unwrap();
        assert_eq!(p.bucket(0), 0);
        assert_eq!(p.bucket(1), 0);
        assert_eq!(p.bucket(2), 0);
        assert_eq!(p.bucket(3), 1);
        assert_eq!(p.bucket(HIST_COUNT * 2), HIST_COUNT as usize - 1);
    }

    /// D19: ranges of 2^44 TIDs and more no longer overflow.
    #[test]
    fn d19_wide_ranges() {
        let beg = 0x0000_0001_0000_0000;
        let end = u64::MAX - 1;
        let p = Prescan::new(beg, end).unwrap();
        assert_eq!(p.bucket(end), HIST_COUNT as usize - 1);
        let mid = beg + (end - beg) / 2;
        assert!((p.bucket(mid) as i64 - (HIST_COUNT / 2) as i64).abs() <= 1);
    }

    #[test]
    fn chunks_of_splitup_bytes() {
        let mut p = Prescan::new(1, 1001).unwrap();
        // 100 records of 16 KiB data at TIDs 10, 20, ..., 1000.
        for k in 1..=100u64 {
            p.add_record(mrec_type::REC_NODATA, 80, &leaf(k * 10, 0, 16384));
        }
        assert_eq!(p.total, 100 * (80 + 16384));
        let hist = p.reduce(10 * 16464);
        // 10 chunks of 10 records, an empty one opened after the last full
        // bucket (as the original reduces), then the end marker.
        assert_eq!(hist.len(), 12);
        assert!(hist[..10].iter().all(|h| h.bytes == 10 * 16464));
        assert_eq!(hist[10].bytes, 0);
        assert_eq!(
            *hist.last().unwrap(),
            HistEntry {
                tid: 1001,
                bytes: u64::MAX
            }
        );
        // Chunk ends are increasing TIDs inside the range.
        assert!(hist.windows(2).all(|w| w[0].tid < w[1].tid));
        assert_eq!(
            summary(&hist, p.total),
            "Prescan 11 chunks, total 1 MBytes (164640, 164640, 164640, ...)"
        );
    }

    #[test]
    fn narrow_ranges_give_strictly_increasing_boundaries() {
        let mut p = Prescan::new(100, 106).unwrap();
        for t in 100..=106 {
            p.add_record(mrec_type::REC_NODATA, 80, &leaf(t, 0, 1000));
        }
        let hist = p.reduce(1);
        assert!(hist.windows(2).all(|w| w[0].tid < w[1].tid), "{hist:?}");
        assert_eq!(hist.first().unwrap().tid, 100);
        assert_eq!(hist.last().unwrap().tid, 106);
        assert_eq!(hist.len(), 7);
    }

    #[test]
    fn deletions_count_without_data_and_skips_are_ignored() {
        let mut p = Prescan::new(1, 100).unwrap();
        p.add_record(mrec_type::REC, 80, &leaf(0, 50, 0));
        p.add_record(mrec_type::PASS, 80, &leaf(0, 60, 128));
        p.add_record(mrec_type::SKIP, 96, &leaf(10, 0, 0));
        p.add_record(mrec_type::REC_NODATA, 80, &leaf(200, 0, 16));
        assert_eq!(p.total, 160);
    }
}

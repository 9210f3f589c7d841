//! `hammer s3-prune s3://... [keep=<N>] [<unit>=<N> ...]`: the restore
//! points to keep (the newest N increments' and the retention grid's,
//! cli.md §23.3), and every run of objects between two kept points merged
//! into one new object (through a temporary store), the oldest run into a
//! new base. The manifest names the new objects only once they are
//! complete, and the old objects are deleted only after.

use std::io::{self, Write};
use std::path::Path;

use super::lock::Writer;
use super::manifest::{object_name, Manifest, Span};
use super::push::{upload_recorded, Pushed};
use super::restore::{apply, sweep, Scratch};
use super::{Chain, ChainError};
use crate::mirror::read::ReadOptions;
use crate::mirror::write::WriteOptions;
use crate::retention::grid::Retain;

/// One new object, and the objects it replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    pub object: Pushed,
    pub removed: Vec<String>,
}

/// The runs of objects (first and last index) between kept points that
/// hold more than one object: each becomes one object ending at its kept
/// point.
fn runs(kept: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &k) in kept.iter().enumerate() {
        if k {
            if i > start {
                out.push((start, i));
            }
            start = i + 1;
        }
    }
    out
}

/// Merges every run of objects between the restore points `retain` keeps;
/// empty when there is nothing to merge. The temporary store is made in
/// `scratch_dir`; the new objects are read from it with `ro`'s settings
/// (-S, -B, -b), compressed at `level` (-z).
pub fn prune(
    chain: &Chain,
    retain: &Retain,
    scratch_dir: &Path,
    ro: &ReadOptions,
    level: Option<i32>,
    diag: &mut dyn Write,
) -> Result<Vec<Merged>, ChainError> {
    // Whether or not there is anything to merge, a killed prune's store goes.
    sweep(scratch_dir);
    // A chain that is not there is told before anything is written.
    chain.existing()?;
    let (w, m) = Writer::begin(chain, "s3-prune")?;
    let mut m = m.ok_or_else(|| ChainError::NoChain(chain.url.to_string()))?;
    w.clean(&mut m, diag)?;
    let spans = m.spans();
    let times: Vec<Option<u64>> = m.objects.iter().map(|o| o.time).collect();
    let runs = runs(&retain.kept(&times));
    let Some(&(_, last)) = runs.last() else {
        return Ok(Vec::new());
    };
    let scratch = Scratch::new(scratch_dir, &m)?;
    let wo = WriteOptions {
        yes: true,
        quiet: true,
        ..WriteOptions::default()
    };
    apply(chain, Some(spans[last].end), &scratch.slave, &wo, diag)?;
    let quiet = ReadOptions {
        quiet: true,
        ..ro.clone()
    };
    let mut written = Vec::new();
    for &(first, last) in &runs {
        let span = Span {
            beg: spans[first].beg,
            end: spans[last].end,
        };
        let name = object_name(&m.shared_uuid, span, level.is_some());
        let w = upload_recorded(
            &w,
            &m,
            &scratch.slave,
            &quiet,
            span,
            level,
            &name,
            &mut io::sink(),
        )?;
        written.push((first, last, span, name, w));
    }
    // The new manifest: each run replaced by its object, which keeps the
    // time of the restore point it ends at.
    let mut merged = Manifest::new(&m.shared_uuid);
    let mut done = Vec::new();
    let mut next = 0;
    for (first, last, span, name, w) in written {
        merged
            .objects
            .extend(m.objects[next..first].iter().cloned());
        merged.push(span, w.size, w.xxh3, level.is_some());
        if let Some(o) = merged.objects.last_mut() {
            o.time = m.objects[last].time;
        }
        done.push(Merged {
            object: Pushed {
                name,
                span,
                size: w.size,
            },
            removed: m.objects[first..=last]
                .iter()
                .map(|o| o.name.clone())
                .collect(),
        });
        next = last + 1;
    }
    merged.objects.extend(m.objects[next..].iter().cloned());
    w.publish(&merged)?;
    for old in done.iter().flat_map(|d| &d.removed) {
        chain.bucket.delete(&chain.key(old))?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::grid::{Grid, Unit};

    #[test]
    fn keep_n_keeps_the_newest_increments_and_their_base() {
        let r = Retain {
            keep: Some(2),
            grid: Grid::default(),
        };
        let kept = r.kept(&[None; 6]);
        assert_eq!(kept, [false, false, false, true, true, true]);
        assert_eq!(runs(&kept), [(0, 3)]);
        // keep=0: everything into one base.
        let r = Retain { keep: Some(0), ..r };
        assert_eq!(runs(&r.kept(&[None; 3])), [(0, 2)]);
        // More kept than there are: nothing to merge.
        let r = Retain { keep: Some(9), ..r };
        assert_eq!(runs(&r.kept(&[None; 3])), []);
        assert_eq!(r.text(), "keep=9");
    }

    #[test]
    fn the_grid_keeps_points_by_time_and_runs_between_them_merge() {
        std::env::set_var("TZ", "UTC");
        let day = 86_400u64;
        // 2027-01-01 and a point a day for 70 days.
        let times: Vec<Option<u64>> = (0..70).map(|d| Some(1_798_761_600 + d * day)).collect();
        let mut grid = Grid::default();
        grid.set(Unit::Monthly, 3);
        let r = Retain { keep: None, grid };
        let kept = r.kept(&times);
        let at: Vec<usize> = (0..70).filter(|&i| kept[i]).collect();
        // The newest of January (day 30), February (58) and March (69).
        assert_eq!(at, [30, 58, 69]);
        assert_eq!(runs(&kept), [(0, 30), (31, 58), (59, 69)]);
        // An object without a time cannot be placed: kept.
        let mut times = times;
        times[40] = None;
        let kept = r.kept(&times);
        assert!(kept[40]);
        assert_eq!(runs(&kept), [(0, 30), (31, 40), (41, 58), (59, 69)]);
        let both = Retain {
            keep: Some(1),
            grid,
        };
        assert_eq!(both.text(), "keep=1 monthly=3");
    }
}

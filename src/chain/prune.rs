//! `hammer s3-prune s3://... keep=<N>`: the chain's oldest objects merged
//! into one new base (through a temporary store), so that all but the
//! newest N increments can be deleted. The manifest names the new base
//! only once it is complete, and the old objects are deleted only after.

use std::io::{self, Write};
use std::path::Path;

use super::lock::Writer;
use super::manifest::{object_name, Manifest, Span};
use super::push::{upload_recorded, Pushed};
use super::restore::{apply, sweep, Scratch};
use super::{Chain, ChainError};
use crate::mirror::read::ReadOptions;
use crate::mirror::write::WriteOptions;

/// What a prune did: the new base, and the objects it replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pruned {
    pub base: Pushed,
    pub removed: Vec<String>,
}

/// Keeps the newest `keep` increments and merges everything before them
/// into a new base; `None` when there is nothing to merge. The temporary
/// store is made in `scratch_dir`; the base is read from it with `ro`'s
/// settings (-S, -B, -b), compressed at `level` (-z).
pub fn prune(
    chain: &Chain,
    keep: usize,
    scratch_dir: &Path,
    ro: &ReadOptions,
    level: Option<i32>,
    diag: &mut dyn Write,
) -> Result<Option<Pruned>, ChainError> {
    // Whether or not there is anything to merge, a killed prune's store goes.
    sweep(scratch_dir);
    // A chain that is not there is told before anything is written.
    chain.existing()?;
    let (w, m) = Writer::begin(chain, "s3-prune")?;
    let mut m = m.ok_or_else(|| ChainError::NoChain(chain.url.to_string()))?;
    w.clean(&mut m, diag)?;
    let spans = m.spans();
    // The base and the increments up to index `last` become one.
    let Some(last) = spans.len().checked_sub(keep + 1).filter(|&l| l > 0) else {
        return Ok(None);
    };
    let span = Span {
        beg: 0,
        end: spans[last].end,
    };
    let scratch = Scratch::new(scratch_dir, &m)?;
    let wo = WriteOptions {
        yes: true,
        quiet: true,
        ..WriteOptions::default()
    };
    apply(chain, Some(span.end), &scratch.slave, &wo, diag)?;
    let name = object_name(&m.shared_uuid, span, level.is_some());
    let quiet = ReadOptions {
        quiet: true,
        ..ro.clone()
    };
    let written = upload_recorded(
        &w,
        &m,
        &scratch.slave,
        &quiet,
        span,
        level,
        &name,
        &mut io::sink(),
    )?;
    let removed: Vec<String> = m.objects.drain(..=last).map(|o| o.name).collect();
    let mut merged = Manifest::new(&m.shared_uuid);
    merged.push(span, written.size, written.xxh3, level.is_some());
    merged.objects.append(&mut m.objects);
    w.publish(&merged)?;
    for old in &removed {
        chain.bucket.delete(&chain.key(old))?;
    }
    Ok(Some(Pruned {
        base: Pushed {
            name,
            span,
            size: written.size,
        },
        removed,
    }))
}

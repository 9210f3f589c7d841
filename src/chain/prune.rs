//! `hammer s3-prune s3://... keep=<N>`: the chain's oldest objects merged
//! into one new base (through a temporary store), so that all but the
//! newest N increments can be deleted. The manifest names the new base
//! only once it is complete, and the old objects are deleted only after.

use std::io::{self, Write};
use std::path::Path;

use super::manifest::{object_name, Manifest, Span};
use super::push::Pushed;
use super::restore::{apply, Scratch};
use super::{Chain, ChainError};
use crate::mirror::read::{mirror_read_synced, ReadOptions};
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
/// settings (-S, -B, -b).
pub fn prune(
    chain: &Chain,
    keep: usize,
    scratch_dir: &Path,
    ro: &ReadOptions,
    diag: &mut dyn Write,
) -> Result<Option<Pruned>, ChainError> {
    let mut m = chain.existing()?;
    chain.clean(&mut m, diag)?;
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
    let name = object_name(&m.shared_uuid, span);
    let mut w = chain.bucket.writer(&chain.key(&name), Box::new(|_| Ok(())));
    let ro = ReadOptions {
        begin_tid: Some(0),
        end_tid: Some(span.end),
        quiet: true,
        two_way: false,
        stream: false,
        cycle_file: None,
        timeout: None,
        ..ro.clone()
    };
    if let Err(e) = mirror_read_synced(&scratch.slave, &ro, io::empty(), &mut w, &mut io::sink()) {
        return Err(match w.error() {
            Some(s3) => ChainError::S3(s3.clone()),
            None => e.into(),
        });
    }
    let written = w.finish()?;
    let read = m.clone();
    let removed: Vec<String> = m.objects.drain(..=last).map(|o| o.name).collect();
    let mut merged = Manifest::new(&m.shared_uuid);
    merged.push(span, written.size, written.xxh3);
    merged.objects.append(&mut m.objects);
    chain.save_over(&read, &merged)?;
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

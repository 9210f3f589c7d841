//! Incremental stream chains in S3-compatible object storage: each run of
//! `mirror-copy <pfs> s3://bucket/prefix` stores one mirror-read stream
//! object, and a manifest names the chain's objects in TID order, so a
//! chain can be restored into a slave, exported, dumped, verified or
//! pruned without a HAMMER host at the other end.

pub mod awsconf;
pub mod client;
#[cfg(test)]
mod double;
pub mod lock;
pub mod manifest;
pub(crate) mod prune;
pub(crate) mod push;
pub(crate) mod restore;
#[cfg(test)]
mod tests;
pub(crate) mod url;

use client::{Bucket, Meta, S3Error};
use manifest::{ChainObject, Manifest, ManifestError, Span, MANIFEST, MANIFEST_LIMIT};
use url::{ChainUrl, UrlError};

use crate::bridge::point::{choose, Moment};
use crate::mirror::error::MirrorError;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error("{url}: {source}")]
    Manifest { url: String, source: ManifestError },
    #[error("{0}: no chain here (no manifest.json)")]
    NoChain(String),
    #[error("{url}: the chain is of PFS shared-uuid {chain}, not of {pfs} ({uuid})")]
    OtherPfs {
        url: String,
        chain: String,
        pfs: String,
        uuid: String,
    },
    #[error("{url}: another run is writing this chain ({why}); nothing of this run was added")]
    Busy { url: String, why: String },
    #[error("{0}: the chain has no complete object yet")]
    Empty(String),
    #[error("{url}: no restore point at {tid:#018x}; the chain has {points}")]
    NoPoint {
        url: String,
        tid: u64,
        points: String,
    },
    #[error("{url}: object {name}: {why}")]
    Corrupt {
        url: String,
        name: String,
        why: String,
    },
    #[error("{0}")]
    Slave(String),
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error("{0}")]
    Local(String),
}

impl ChainError {
    /// Whether a later run may succeed where this one failed (a network
    /// failure), as opposed to a refusal that will not change.
    pub fn transient(&self) -> bool {
        matches!(self, ChainError::S3(e) if e.transient())
    }

    /// Whether another run holds the chain (a later run may get it).
    pub fn busy(&self) -> bool {
        matches!(self, ChainError::Busy { .. })
    }
}

/// A chain's bucket and place in it.
pub struct Chain {
    pub url: ChainUrl,
    pub bucket: Bucket,
}

impl Chain {
    /// Opens the bucket `url` names, with the settings of the environment.
    pub fn open(url: &ChainUrl) -> Result<Self, ChainError> {
        let settings = awsconf::settings(&|k| std::env::var(k).ok())?;
        Ok(Chain {
            url: url.base(),
            bucket: Bucket::open(&url.bucket, &settings)?,
        })
    }

    pub fn key(&self, name: &str) -> String {
        self.url.key(name)
    }

    /// The manifest, if the chain has begun.
    pub fn manifest(&self) -> Result<Option<Manifest>, ChainError> {
        Ok(self.manifest_with_meta()?.map(|(m, _)| m))
    }

    /// The manifest with its ETag and time, if the chain has begun.
    pub fn manifest_with_meta(&self) -> Result<Option<(Manifest, Meta)>, ChainError> {
        let got = self
            .bucket
            .get_with_meta(&self.key(MANIFEST), MANIFEST_LIMIT)?;
        let Some((bytes, meta)) = got else {
            return Ok(None);
        };
        Manifest::parse(&bytes)
            .map(|m| Some((m, meta)))
            .map_err(|source| ChainError::Manifest {
                url: self.url.to_string(),
                source,
            })
    }

    /// The manifest of a chain that must exist.
    pub fn existing(&self) -> Result<Manifest, ChainError> {
        self.manifest()?
            .ok_or_else(|| ChainError::NoChain(self.url.to_string()))
    }

    /// The restore point `@@<date>` names: the end TID of the newest
    /// object stored at or before that moment, and when it was stored
    /// (cli.md §16). Objects of a chain made before their times were kept
    /// are no candidates.
    pub fn point_at(&self, m: &Manifest, moment: &Moment) -> Result<(u64, i64), ChainError> {
        let all = m.dated_points();
        if all.is_empty() {
            return Err(ChainError::Local(format!(
                "{}: the manifest keeps no object's time (a chain written before they \
                 were kept): give the restore point as @@0x<tid>",
                self.url
            )));
        }
        let c = choose(moment, &all, &self.url.base().to_string())
            .map_err(|e| ChainError::Local(e.to_string()))?;
        Ok((c.tid, c.secs))
    }

    /// The objects to apply to reach the URL's restore point (the chain's
    /// end without one): a point must be one of the objects' end TIDs.
    pub fn upto(
        &self,
        m: &Manifest,
        tid: Option<u64>,
    ) -> Result<Vec<(ChainObject, Span)>, ChainError> {
        if m.objects.is_empty() {
            return Err(ChainError::Empty(self.url.to_string()));
        }
        let all: Vec<(ChainObject, Span)> = m.objects.iter().cloned().zip(m.spans()).collect();
        let Some(tid) = tid else {
            return Ok(all);
        };
        match all.iter().position(|(_, s)| s.end == tid) {
            Some(i) => Ok(all[..=i].to_vec()),
            None => Err(ChainError::NoPoint {
                url: self.url.to_string(),
                tid,
                points: points(m),
            }),
        }
    }
}

/// The restore points of a chain, for messages.
pub fn points(m: &Manifest) -> String {
    let ends: Vec<String> = m.objects.iter().map(|o| o.end_tid.clone()).collect();
    match ends.len() {
        0 => "none".to_string(),
        _ => ends.join(", "),
    }
}

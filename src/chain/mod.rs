//! Incremental stream chains in S3-compatible object storage: each run of
//! `mirror-copy <pfs> s3://bucket/prefix` stores one mirror-read stream
//! object, and a manifest names the chain's objects in TID order, so a
//! chain can be restored into a slave, exported, dumped, verified or
//! pruned without a HAMMER host at the other end.

pub mod awsconf;
pub mod client;
pub mod cmd;
#[cfg(test)]
mod double;
pub mod manifest;
pub mod prune;
pub mod push;
pub mod restore;
#[cfg(test)]
mod tests;
pub mod url;

use std::io::Write;

use client::{Bucket, S3Error};
use manifest::{ChainObject, Manifest, ManifestError, Span, MANIFEST, MANIFEST_LIMIT};
use url::{ChainUrl, UrlError};

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
    #[error(
        "{0}: the chain changed while this run wrote it (another run at the same time?); \
         nothing of this run was added"
    )]
    Changed(String),
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
}

/// A chain's bucket and place in it.
pub struct Chain {
    pub url: ChainUrl,
    pub bucket: Bucket,
}

impl Chain {
    /// Opens the bucket `url` names, with the settings of the environment.
    pub fn open(url: &ChainUrl) -> Result<Self, ChainError> {
        let settings = awsconf::settings(&|k| std::env::var(k).ok());
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
        let Some(bytes) = self.bucket.get_small(&self.key(MANIFEST), MANIFEST_LIMIT)? else {
            return Ok(None);
        };
        Manifest::parse(&bytes)
            .map(Some)
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

    /// Replaces the manifest (one PUT: readers see the old or the new).
    pub fn save(&self, m: &Manifest) -> Result<(), ChainError> {
        Ok(self.bucket.put_small(&self.key(MANIFEST), m.to_json())?)
    }

    /// Replaces the manifest `read` (as this run read it) with `new`,
    /// unless the chain's objects changed meanwhile: the store offers no
    /// atomic compare-and-swap (Garage ignores If-Match on PUT), so this
    /// narrows a concurrent run's window to the moment between the two
    /// requests instead of the whole upload.
    pub fn save_over(&self, read: &Manifest, new: &Manifest) -> Result<(), ChainError> {
        let now = self.existing_or_empty(read)?;
        if now.objects != read.objects || now.shared_uuid != read.shared_uuid {
            return Err(ChainError::Changed(self.url.to_string()));
        }
        self.save(new)
    }

    fn existing_or_empty(&self, read: &Manifest) -> Result<Manifest, ChainError> {
        Ok(self
            .manifest()?
            .unwrap_or_else(|| Manifest::new(&read.shared_uuid)))
    }

    /// Aborts the uploads a failed run left and deletes objects of the
    /// chain's uuid that the manifest does not name (a run killed after
    /// its upload but before its manifest). Rewrites the manifest only if
    /// it named pending uploads.
    pub fn clean(&self, m: &mut Manifest, diag: &mut dyn Write) -> Result<(), ChainError> {
        while let Some(p) = m.pending.first().cloned() {
            self.bucket.abort_upload(&self.key(&p.name), &p.upload_id)?;
            m.pending.remove(0);
            self.save(m)?;
            let _ = writeln!(
                diag,
                "{}: aborted an unfinished upload of {}",
                self.url, p.name
            );
        }
        let dir = self.key(&m.shared_uuid);
        for obj in self.bucket.list(&dir)? {
            let named = m.objects.iter().any(|o| self.key(&o.name) == obj.key);
            if !named {
                self.bucket.delete(&obj.key)?;
                let _ = writeln!(
                    diag,
                    "{}: removed {} (no manifest names it)",
                    self.url, obj.key
                );
            }
        }
        Ok(())
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

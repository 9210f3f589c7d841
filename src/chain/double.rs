//! The chain's object store in unit tests: object_store's `InMemory`
//! behind a wrapper that misbehaves as real servers do when told to
//! (ignore conditional writes as Garage does, refuse one, store a PUT and
//! lose its answer, answer late, list late, hold a write, die mid-upload).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::memory::InMemory;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartId, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// The objects and the multipart uploads still open, shared by every
/// wrapper of one test (one per simulated run). Uploads are kept here, not
/// by `InMemory`, whose `put_part` panics on a part that overtakes one
/// before it.
#[derive(Debug, Default)]
pub struct Shared {
    pub mem: InMemory,
    pub open_uploads: Mutex<HashMap<String, BTreeMap<usize, Bytes>>>,
    pub uploads_started: AtomicU32,
}

/// A one-shot signal between a held request and the test.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<(bool, bool)>,
    cond: Condvar,
}

impl Gate {
    /// Blocks the caller (a held request) until `open`; tells `reached`.
    fn pass(&self) {
        let mut s = self.state.lock().unwrap();
        s.0 = true;
        self.cond.notify_all();
        while !s.1 {
            s = self.cond.wait(s).unwrap();
        }
    }

    pub fn wait_reached(&self) {
        let mut s = self.state.lock().unwrap();
        while !s.0 {
            s = self.cond.wait(s).unwrap();
        }
    }

    pub fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.cond.notify_all();
    }
}

type Hook = Box<dyn FnOnce() + Send>;

/// What a wrapper does wrong; all off by default.
#[derive(Default)]
pub struct Faults {
    /// Conditional PUTs are plain ones (Garage 2.5).
    pub ignore_conditions: bool,
    /// Conditional PUTs of a key ending so are refused (another writer won).
    pub refuse_conditional: Option<String>,
    /// A PUT of a key ending so is stored, then answered with an error.
    pub lose_answer: Option<String>,
    /// Listings show the objects as they were when this was set.
    pub lagging: Option<Vec<ObjectMeta>>,
    /// A PUT of a key ending so waits for the gate once it is stored.
    pub hold: Option<(String, Arc<Gate>)>,
    /// Every PUT takes this long to be answered (a server that hangs).
    pub slow: Option<std::time::Duration>,
    /// Run once, before the first DELETE is carried out.
    pub on_delete: Option<Hook>,
    /// After this many parts, every request fails (the network is gone).
    pub parts_left: Option<u32>,
    pub dead: bool,
}

/// One run's view of the shared store.
pub struct Double {
    pub shared: Arc<Shared>,
    pub faults: Mutex<Faults>,
}

impl fmt::Debug for Double {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Double")
    }
}

impl fmt::Display for Double {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Double")
    }
}

fn gone() -> object_store::Error {
    object_store::Error::Generic {
        store: "Double",
        source: "error sending request: Connection refused".into(),
    }
}

impl Double {
    pub fn new(shared: &Arc<Shared>, faults: Faults) -> Self {
        Double {
            shared: shared.clone(),
            faults: Mutex::new(faults),
        }
    }

    fn alive(&self) -> Result<()> {
        match self.faults.lock().unwrap().dead {
            true => Err(gone()),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl ObjectStore for Double {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.alive()?;
        let mut opts = opts;
        let (lose, hold) = {
            let f = self.faults.lock().unwrap();
            let ends = |s: &Option<String>| {
                s.as_ref()
                    .is_some_and(|s| location.as_ref().ends_with(s.as_str()))
            };
            if opts.mode != PutMode::Overwrite {
                if f.ignore_conditions {
                    opts.mode = PutMode::Overwrite;
                } else if ends(&f.refuse_conditional) {
                    return Err(object_store::Error::Precondition {
                        path: location.to_string(),
                        source: "refused by the test".into(),
                    });
                }
            }
            let hold = match &f.hold {
                Some((s, g)) if location.as_ref().ends_with(s.as_str()) => Some(g.clone()),
                _ => None,
            };
            (ends(&f.lose_answer), hold)
        };
        let slow = self.faults.lock().unwrap().slow;
        if let Some(d) = slow {
            tokio::time::sleep(d).await;
        }
        let r = self.shared.mem.put_opts(location, payload, opts).await?;
        if let Some(g) = hold {
            g.pass();
        }
        if lose {
            return Err(gone());
        }
        Ok(r)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.alive()?;
        self.shared.mem.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.alive()?;
        self.shared.mem.get_opts(location, options).await
    }

    async fn delete(&self, location: &Path) -> Result<()> {
        self.alive()?;
        let hook = self.faults.lock().unwrap().on_delete.take();
        if let Some(h) = hook {
            h();
        }
        self.shared.mem.delete(location).await
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if let Err(e) = self.alive() {
            return futures::stream::once(async { Err(e) }).boxed();
        }
        let lagging = self.faults.lock().unwrap().lagging.clone();
        match lagging {
            Some(old) => {
                let prefix = prefix.map(|p| format!("{p}/")).unwrap_or_default();
                let old: Vec<Result<ObjectMeta>> = old
                    .into_iter()
                    .filter(|m| m.location.as_ref().starts_with(&prefix))
                    .map(Ok)
                    .collect();
                futures::stream::iter(old).boxed()
            }
            None => self.shared.mem.list(prefix),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.alive()?;
        self.shared.mem.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> Result<()> {
        self.alive()?;
        self.shared.mem.copy(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> Result<()> {
        self.alive()?;
        self.shared.mem.copy_if_not_exists(from, to).await
    }
}

#[async_trait]
impl MultipartStore for Double {
    async fn create_multipart(&self, _path: &Path) -> Result<MultipartId> {
        self.alive()?;
        let n = self.shared.uploads_started.fetch_add(1, Ordering::Relaxed);
        let id = format!("upload-{n}");
        let mut open = self.shared.open_uploads.lock().unwrap();
        open.insert(id.clone(), BTreeMap::new());
        Ok(id)
    }

    async fn put_part(
        &self,
        path: &Path,
        id: &MultipartId,
        part_idx: usize,
        data: PutPayload,
    ) -> Result<PartId> {
        self.alive()?;
        {
            let mut f = self.faults.lock().unwrap();
            if let Some(n) = f.parts_left.as_mut() {
                if *n == 0 {
                    f.dead = true;
                    return Err(gone());
                }
                *n -= 1;
            }
        }
        let mut open = self.shared.open_uploads.lock().unwrap();
        let parts = open.get_mut(id).ok_or_else(|| no_upload(path))?;
        parts.insert(part_idx, Bytes::from(data));
        Ok(PartId {
            content_id: part_idx.to_string(),
        })
    }

    async fn complete_multipart(
        &self,
        path: &Path,
        id: &MultipartId,
        parts: Vec<PartId>,
    ) -> Result<PutResult> {
        self.alive()?;
        let mut whole = Vec::new();
        {
            let open = self.shared.open_uploads.lock().unwrap();
            let stored = open.get(id).ok_or_else(|| no_upload(path))?;
            for p in &parts {
                let idx: usize = p.content_id.parse().map_err(|_| no_upload(path))?;
                whole.extend_from_slice(stored.get(&idx).ok_or_else(|| no_upload(path))?);
            }
        }
        let r = self.shared.mem.put(path, PutPayload::from(whole)).await?;
        self.shared.open_uploads.lock().unwrap().remove(id);
        Ok(r)
    }

    async fn abort_multipart(&self, path: &Path, id: &MultipartId) -> Result<()> {
        self.alive()?;
        match self.shared.open_uploads.lock().unwrap().remove(id) {
            Some(_) => Ok(()),
            None => Err(no_upload(path)),
        }
    }
}

fn no_upload(path: &Path) -> object_store::Error {
    object_store::Error::NotFound {
        path: path.to_string(),
        source: "NoSuchUpload".into(),
    }
}

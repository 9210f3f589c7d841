//! One bucket of an object store through blocking calls: any async
//! `object_store` store with multipart uploads (S3 in use, an in-memory
//! one or a failure-injecting wrapper in tests), driven by a runtime of
//! this module's own, with bounded buffers both ways (parts in flight,
//! chunks queued).

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, PutMode, PutOptions,
    PutPayload, RetryConfig, UpdateVersion,
};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use xxhash_rust::xxh3::Xxh3;

use super::awsconf::S3Settings;

/// Bytes of one multipart part (S3 wants >= 5 MiB but for the last).
pub const PART_SIZE: usize = 8 << 20;
/// Parts uploading at once: memory is about `(1 + this) * PART_SIZE`.
const PARTS_IN_FLIGHT: usize = 2;
/// Downloaded chunks queued ahead of the reader.
const CHUNKS_QUEUED: usize = 8;
/// Times a download broken off mid-object is resumed where it broke.
const RESUMES: u32 = 5;

#[derive(Debug, Clone, thiserror::Error)]
pub enum S3Error {
    /// The client cannot be set up (no credentials, a bad endpoint).
    #[error("{0}")]
    Settings(String),
    #[error("{what}: {why}")]
    Request {
        what: String,
        why: String,
        /// A network failure that outlasted the retries (a later run may
        /// succeed), not a refusal.
        transient: bool,
    },
    /// The object is not the one expected: of another length than the
    /// manifest records, or replaced while it was read.
    #[error("{0}")]
    Mismatch(String),
    /// No such object.
    #[error("{0}: no such object")]
    Missing(String),
    /// A conditional write was refused: the object is not as it was read.
    #[error("{0}: changed since it was read")]
    Conflict(String),
}

impl S3Error {
    pub fn transient(&self) -> bool {
        matches!(
            self,
            S3Error::Request {
                transient: true,
                ..
            }
        )
    }
}

/// What the server's answer means, in words a user can act on.
fn classify(what: String, e: &object_store::Error) -> S3Error {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    let code = text
        .split_once("<Code>")
        .and_then(|(_, r)| r.split_once("</Code>"))
        .map(|(c, _)| c.to_string());
    let (why, transient) = match code.as_deref() {
        Some("NoSuchBucket") => ("no such bucket".to_string(), false),
        Some(
            c @ ("InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "AccessDenied"
            | "Forbidden"
            | "InvalidSignature"
            | "AuthorizationHeaderMalformed"),
        ) => (
            format!(
                "the server refused the credentials ({c}): check AWS_ACCESS_KEY_ID, \
                 AWS_SECRET_ACCESS_KEY, AWS_REGION or the profile"
            ),
            false,
        ),
        Some(c) => (format!("the server answered {c}"), false),
        None if matches!(e, object_store::Error::NotFound { .. }) => {
            return S3Error::Missing(what);
        }
        None if text.contains("error sending request")
            || text.contains("onnect")
            || text.contains("timed out")
            || text.contains("Timeout") =>
        {
            // object_store repeats the request line in its source chain;
            // the reason (DNS, TLS, refused) is at the chain's end.
            let line = e.to_string();
            let first = line.split(" - ").next().unwrap_or(&line);
            let first = first.strip_prefix("Generic S3 error: ").unwrap_or(first);
            let first = first.split(", max_retries").next().unwrap_or(first);
            (
                format!("cannot reach the server: {}; {first}", innermost(e)),
                true,
            )
        }
        None => (text.chars().take(300).collect(), false),
    };
    S3Error::Request {
        what,
        why,
        transient,
    }
}

/// The object key as typed: `Path::from` would percent-encode non-ASCII
/// and `~ # % [ ] ? * ^ " |`, storing a chain where other S3 tools do not
/// look for it. What `parse` refuses (a control character, an empty part)
/// the URL parser refused first.
fn path(key: &str) -> Key {
    Key::parse(key).unwrap_or_else(|_| Key::from(key))
}

/// Why a request never reached an answer: the causes below the HTTP
/// client's own ("dns error: failed to lookup ...", "received corrupt
/// message ...", "tcp connect error: Connection refused"), each cause once.
fn innermost(e: &dyn std::error::Error) -> String {
    let mut chain = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    let client = chain
        .iter()
        .rposition(|t| t.contains("client error") || t.contains("error sending request"));
    let tail = match client {
        Some(i) if i + 1 < chain.len() => &chain[i + 1..],
        _ => &chain[chain.len() - 1..],
    };
    let mut parts: Vec<&str> = Vec::new();
    for t in tail {
        if !parts.last().is_some_and(|p| p.ends_with(t.as_str())) {
            parts.push(t);
        }
    }
    parts.join(": ")
}

/// Whether the error is S3's "no such key" (a missing bucket is not).
fn not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. }) && !format!("{e:?}").contains("NoSuchBucket")
}

/// Told a multipart upload's id before its first part is sent.
pub type OnStart<'a> = Box<dyn FnMut(&str) -> Result<(), S3Error> + 'a>;

/// How a PUT may replace what is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Put {
    Overwrite,
    /// Only if there is no such object (If-None-Match: *).
    Create,
    /// Only if the object still has this ETag (If-Match).
    Replace(String),
}

/// What a GET or HEAD tells of an object beside its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub etag: Option<String>,
    /// Last modified, by the server's clock: milliseconds since 1970.
    pub modified_ms: i64,
}

impl Meta {
    fn of(m: &object_store::ObjectMeta) -> Self {
        Meta {
            etag: m.e_tag.clone(),
            modified_ms: m.last_modified.timestamp_millis(),
        }
    }
}

/// An object as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

/// What the chain needs of a store: objects, plus multipart uploads whose
/// ids a run can record and a later run abort.
pub trait ObjectStorage: ObjectStore + MultipartStore {}

impl<T: ObjectStore + MultipartStore> ObjectStorage for T {}

/// A bucket and the client that reaches it (a clone shares both).
#[derive(Clone)]
pub struct Bucket {
    rt: Arc<Runtime>,
    s3: Arc<dyn ObjectStorage>,
    name: String,
    part_size: usize,
    /// How long a small request may take, retries included (`None`: as
    /// long as the retry timeout lets it).
    deadline: Option<Duration>,
}

impl Bucket {
    pub fn open(bucket: &str, s: &S3Settings) -> Result<Self, S3Error> {
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        match (&s.access_key_id, &s.secret_access_key) {
            (Some(id), Some(secret)) => {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
                if let Some(t) = &s.session_token {
                    b = b.with_token(t);
                }
            }
            // A non-AWS server has no instance metadata to ask.
            _ if s.endpoint.is_some() => {
                return Err(S3Error::Settings(format!(
                    "no credentials for s3://{bucket}: set AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY, or keys in ~/.aws/credentials [{}]",
                    s.profile
                )))
            }
            _ => {}
        }
        if let Some(r) = &s.region {
            b = b.with_region(r);
        }
        let mut client = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(10))
            .with_timeout(Duration::from_secs(300));
        if let Some(e) = &s.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(S3Error::Settings(format!(
                    "endpoint {e}: not an http:// or https:// URL"
                )));
            }
            client = client.with_allow_http(e.starts_with("http://"));
            b = b
                .with_endpoint(e.trim_end_matches('/'))
                .with_virtual_hosted_style_request(false);
        }
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(10),
                base: 2.0,
            },
            // The time is the limit, as the setting says: ten retries
            // with backoff took 4-6 s whatever it was.
            max_retries: usize::MAX,
            retry_timeout: s.retry_timeout,
        };
        let s3 = b
            .with_client_options(client)
            .with_retry(retry)
            .build()
            .map_err(|e| S3Error::Settings(format!("s3://{bucket}: {e}")))?;
        Self::over(Arc::new(s3), bucket)
    }

    /// The bucket `name` as `store` holds it (tests: an in-memory store).
    pub fn over(store: Arc<dyn ObjectStorage>, name: &str) -> Result<Self, S3Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hammer-s3")
            .enable_all()
            .build()
            .map_err(|e| S3Error::Settings(format!("cannot start the S3 client: {e}")))?;
        Ok(Bucket {
            rt: Arc::new(rt),
            s3: store,
            name: name.to_string(),
            part_size: PART_SIZE,
            deadline: None,
        })
    }

    /// Small parts, so that a test's small stream is a multipart upload.
    #[cfg(test)]
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes;
        self
    }

    /// The same bucket, whose small requests (get, put, delete) give up
    /// after `d`: for work that must not wait out the retry timeout.
    pub fn within(&self, d: Duration) -> Bucket {
        Bucket {
            deadline: Some(d),
            ..self.clone()
        }
    }

    fn what(&self, verb: &str, key: &str) -> String {
        format!("{verb} s3://{}/{key}", self.name)
    }

    /// Runs a small request to its end, or to the deadline.
    fn block<T>(
        &self,
        what: &str,
        request: impl std::future::Future<Output = Result<T, S3Error>>,
    ) -> Result<T, S3Error> {
        let Some(d) = self.deadline else {
            return self.rt.block_on(request);
        };
        // Made inside the runtime: its timer is the runtime's.
        self.rt
            .block_on(async { tokio::time::timeout(d, request).await })
            .unwrap_or_else(|_| {
                Err(S3Error::Request {
                    what: what.to_string(),
                    why: format!("cannot reach the server: no answer within {d:?}"),
                    transient: true,
                })
            })
    }

    /// A small object whole (at most `limit` bytes), `None` if missing.
    pub fn get_small(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, S3Error> {
        Ok(self.get_with_meta(key, limit)?.map(|(b, _)| b))
    }

    /// A small object whole with its ETag and time, `None` if missing.
    pub fn get_with_meta(&self, key: &str, limit: u64) -> Result<Option<(Vec<u8>, Meta)>, S3Error> {
        let what = self.what("get", key);
        self.block(&what.clone(), async {
            let r = match self.s3.get(&path(key)).await {
                Ok(r) => r,
                Err(e) if not_found(&e) => return Ok(None),
                Err(e) => return Err(classify(what, &e)),
            };
            if r.meta.size > limit {
                return Err(S3Error::Request {
                    what,
                    why: format!("{} bytes, more than {limit}", r.meta.size),
                    transient: false,
                });
            }
            let meta = Meta::of(&r.meta);
            r.bytes()
                .await
                .map(|b| Some((b.to_vec(), meta)))
                .map_err(|e| classify(what, &e))
        })
    }

    /// The object's ETag and time, `None` if missing.
    pub fn head(&self, key: &str) -> Result<Option<Meta>, S3Error> {
        let what = self.what("head", key);
        match self.rt.block_on(self.s3.head(&path(key))) {
            Ok(m) => Ok(Some(Meta::of(&m))),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(classify(what, &e)),
        }
    }

    pub fn put_small(&self, key: &str, data: Vec<u8>) -> Result<(), S3Error> {
        self.put(key, data, Put::Overwrite).map(drop)
    }

    /// Writes a small object as `mode` allows: the new ETag, if the server
    /// told one. A refused condition is `S3Error::Conflict`.
    pub fn put(&self, key: &str, data: Vec<u8>, mode: Put) -> Result<Option<String>, S3Error> {
        let what = self.what("put", key);
        let mode = match mode {
            Put::Overwrite => PutMode::Overwrite,
            Put::Create => PutMode::Create,
            Put::Replace(etag) => PutMode::Update(UpdateVersion {
                e_tag: Some(etag),
                version: None,
            }),
        };
        let request = async {
            let r = self
                .s3
                .put_opts(&path(key), PutPayload::from(data), PutOptions::from(mode))
                .await;
            match r {
                Ok(r) => Ok(r.e_tag),
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => Err(S3Error::Conflict(what.clone())),
                // AWS S3's answer to two conditional writes at once.
                Err(e) if format!("{e:?}").contains("ConditionalRequestConflict") => {
                    Err(S3Error::Conflict(what.clone()))
                }
                Err(e) => Err(classify(what.clone(), &e)),
            }
        };
        self.block(&what, request)
    }

    /// Deletes `key`; one already gone is not an error.
    pub fn delete(&self, key: &str) -> Result<(), S3Error> {
        let what = self.what("delete", key);
        let request = async {
            match self.s3.delete(&path(key)).await {
                Err(e) if !not_found(&e) => Err(classify(what.clone(), &e)),
                _ => Ok(()),
            }
        };
        self.block(&what, request)
    }

    /// Every object whose key starts with `prefix/`.
    pub fn list(&self, prefix: &str) -> Result<Vec<Listed>, S3Error> {
        let what = self.what("list", prefix);
        self.rt.block_on(async {
            let prefix = (!prefix.is_empty()).then(|| path(prefix));
            let mut stream = self.s3.list(prefix.as_ref());
            let mut all = Vec::new();
            while let Some(m) = stream.next().await {
                let m = m.map_err(|e| classify(what.clone(), &e))?;
                all.push(Listed {
                    key: m.location.to_string(),
                    size: m.size,
                });
            }
            Ok(all)
        })
    }

    /// Aborts multipart upload `id` of `key`; one already gone is fine.
    pub fn abort_upload(&self, key: &str, id: &str) -> Result<(), S3Error> {
        let what = self.what("abort the upload of", key);
        match self
            .rt
            .block_on(self.s3.abort_multipart(&path(key), &id.to_string()))
        {
            Err(e) if !not_found(&e) && !format!("{e:?}").contains("NoSuchUpload") => {
                Err(classify(what, &e))
            }
            _ => Ok(()),
        }
    }

    /// Reads `key` as a byte stream, resuming a download that breaks off.
    pub fn reader(&self, key: &str) -> ObjectReader {
        self.reader_sized(key, None)
    }

    /// Reads `key`, which must be `size` bytes long (when given): an
    /// object of another length fails before its first byte is passed on.
    pub fn reader_sized(&self, key: &str, size: Option<u64>) -> ObjectReader {
        let (tx, rx) = mpsc::channel(CHUNKS_QUEUED);
        let task = self.rt.spawn(fetch(
            self.s3.clone(),
            path(key),
            size,
            self.what("get", key),
            tx,
        ));
        ObjectReader {
            rx,
            cur: Bytes::new(),
            task,
            error: None,
        }
    }

    /// Writes `key`: one PUT if it stays under a part, a multipart upload
    /// otherwise, whose id is first handed to `started`.
    pub fn writer<'a>(&'a self, key: &str, started: OnStart<'a>) -> ObjectWriter<'a> {
        ObjectWriter {
            bucket: self,
            key: path(key),
            name: key.to_string(),
            buf: Vec::with_capacity(self.part_size),
            upload: None,
            started,
            parts: JoinSet::new(),
            done: Vec::new(),
            size: 0,
            hash: Xxh3::new(),
            error: None,
        }
    }
}

async fn fetch(
    s3: Arc<dyn ObjectStorage>,
    key: Key,
    mut size: Option<u64>,
    what: String,
    tx: mpsc::Sender<Result<Bytes, S3Error>>,
) {
    let mut pos: u64 = 0;
    let mut resumes = 0;
    let mut etag = None;
    loop {
        // A resumed download must be of the same object.
        let opts = GetOptions {
            range: (pos > 0).then_some(GetRange::Offset(pos)),
            if_match: etag.clone(),
            ..Default::default()
        };
        let failure = match s3.get_opts(&key, opts).await {
            Ok(r) if size.is_some_and(|s| s != r.meta.size) => {
                let why = match pos {
                    0 => format!(
                        "{what}: {} bytes, the manifest records {}",
                        r.meta.size,
                        size.unwrap_or_default()
                    ),
                    _ => format!("{what}: the object was replaced while it was read"),
                };
                let _ = tx.send(Err(S3Error::Mismatch(why))).await;
                return;
            }
            Err(object_store::Error::Precondition { .. }) if pos > 0 => {
                let why = format!("{what}: the object was replaced while it was read");
                let _ = tx.send(Err(S3Error::Mismatch(why))).await;
                return;
            }
            Ok(r) => {
                size = Some(r.meta.size);
                etag = etag.or(r.meta.e_tag.clone());
                let mut stream = r.into_stream();
                loop {
                    match stream.next().await {
                        None => return,
                        Some(Ok(b)) => {
                            pos += b.len() as u64;
                            if tx.send(Ok(b)).await.is_err() {
                                return;
                            }
                        }
                        Some(Err(e)) => break classify(what.clone(), &e),
                    }
                }
            }
            Err(e) => classify(what.clone(), &e),
        };
        // The request itself was retried by the client; a body that broke
        // off is asked again from where it stopped.
        if pos == 0 || !failure.transient() || resumes == RESUMES {
            let _ = tx.send(Err(failure)).await;
            return;
        }
        resumes += 1;
        tokio::time::sleep(Duration::from_millis(500 << resumes)).await;
    }
}

/// An object's bytes as `Read`.
pub struct ObjectReader {
    rx: mpsc::Receiver<Result<Bytes, S3Error>>,
    cur: Bytes,
    task: tokio::task::JoinHandle<()>,
    error: Option<S3Error>,
}

impl ObjectReader {
    /// What failed the last read, in full.
    pub fn error(&self) -> Option<&S3Error> {
        self.error.as_ref()
    }
}

impl Read for ObjectReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => {
                    let err = io::Error::other(e.to_string());
                    self.error = Some(e);
                    return Err(err);
                }
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What an upload wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub size: u64,
    /// XXH3-128 of the bytes, as 32 hex digits.
    pub xxh3: String,
}

/// An object being written, as `Write`; `finish` completes it. Dropped
/// unfinished, a multipart upload is aborted.
pub struct ObjectWriter<'a> {
    bucket: &'a Bucket,
    key: Key,
    name: String,
    buf: Vec<u8>,
    upload: Option<String>,
    started: OnStart<'a>,
    parts: JoinSet<Result<(usize, PartId), S3Error>>,
    done: Vec<Option<PartId>>,
    size: u64,
    hash: Xxh3,
    error: Option<S3Error>,
}

impl ObjectWriter<'_> {
    /// What failed the last write, in full.
    pub fn error(&self) -> Option<&S3Error> {
        self.error.as_ref()
    }

    fn what(&self) -> String {
        self.bucket.what("upload", &self.name)
    }

    /// Sends the buffer as the next part, once at most `PARTS_IN_FLIGHT`
    /// others are still on their way.
    fn send_part(&mut self) -> Result<(), S3Error> {
        let id = match &self.upload {
            Some(id) => id.clone(),
            None => {
                let what = self.what();
                let id = self
                    .bucket
                    .rt
                    .block_on(self.bucket.s3.create_multipart(&self.key))
                    .map_err(|e| classify(what, &e))?;
                self.upload = Some(id.clone());
                (self.started)(&id)?;
                id
            }
        };
        while self.parts.len() >= PARTS_IN_FLIGHT {
            self.join_one()?;
        }
        let idx = self.done.len();
        self.done.push(None);
        let data = PutPayload::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(self.bucket.part_size),
        ));
        let (s3, key, what) = (self.bucket.s3.clone(), self.key.clone(), self.what());
        let _guard = self.bucket.rt.enter();
        self.parts.spawn(async move {
            s3.put_part(&key, &id, idx, data)
                .await
                .map(|p| (idx, p))
                .map_err(|e| classify(what, &e))
        });
        Ok(())
    }

    fn join_one(&mut self) -> Result<(), S3Error> {
        let what = self.what();
        match self.bucket.rt.block_on(self.parts.join_next()) {
            None => Ok(()),
            Some(Ok(Ok((idx, part)))) => {
                self.done[idx] = Some(part);
                Ok(())
            }
            Some(Ok(Err(e))) => Err(e),
            Some(Err(e)) => Err(S3Error::Request {
                what,
                why: e.to_string(),
                transient: false,
            }),
        }
    }

    /// Completes the object.
    pub fn finish(mut self) -> Result<Written, S3Error> {
        let r = self.complete();
        if let Err(e) = &r {
            self.error = Some(e.clone());
        }
        r
    }

    fn complete(&mut self) -> Result<Written, S3Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let what = self.what();
        if self.upload.is_none() {
            let data = PutPayload::from(std::mem::take(&mut self.buf));
            self.bucket
                .rt
                .block_on(self.bucket.s3.put(&self.key, data))
                .map_err(|e| classify(what, &e))?;
        } else {
            if !self.buf.is_empty() {
                self.send_part()?;
            }
            while !self.parts.is_empty() {
                self.join_one()?;
            }
            let parts: Vec<PartId> = self.done.drain(..).flatten().collect();
            let id = self.upload.take().unwrap_or_default();
            let r = self
                .bucket
                .rt
                .block_on(self.bucket.s3.complete_multipart(&self.key, &id, parts));
            if let Err(e) = r {
                self.upload = Some(id);
                return Err(classify(what, &e));
            }
        }
        Ok(Written {
            size: self.size,
            xxh3: format!("{:032x}", self.hash.digest128()),
        })
    }
}

impl Write for ObjectWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(e) = &self.error {
            return Err(io::Error::other(e.to_string()));
        }
        let part = self.bucket.part_size;
        let n = data.len().min(part - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.hash.update(&data[..n]);
        self.size += n as u64;
        if self.buf.len() == part {
            if let Err(e) = self.send_part() {
                let err = io::Error::other(e.to_string());
                self.error = Some(e);
                return Err(err);
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ObjectWriter<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.upload.take() {
            self.parts.abort_all();
            // Best effort: a run killed here leaves the id in the manifest's
            // pending entry, which the next run aborts.
            let _ = self.bucket.abort_upload(&self.name, &id);
        }
    }
}

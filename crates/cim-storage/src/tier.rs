//! One S3 tier through the `object_store` crate: keys, reads, writes,
//! listings and deletes, each failure classified by [`crate::quirks`].
//!
//! Every item lives under `<prefix><kind>/…` and is named by the CID of its
//! bytes (manifests also carry their index, so a listing is the chain in
//! order). Nothing here decides what is verified: the callers
//! ([`crate::copy`], [`crate::scrub`]) hash what they read.

use std::fmt;
use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use ::object_store::local::LocalFileSystem;
use ::object_store::path::Path;
use ::object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig, WriteMultipart,
};
use bytes::Bytes;
use cim_cid::{Cid, RawHasher, cid_from_digest};
use cim_storage_api::{ItemKind, TierName};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::error::{Error, Result, TierProblem};
use crate::quirks;
use crate::settings::TierSettings;

/// An item a listing found: its key and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The key, relative to the tier's prefix (e.g. `objects/bafk…`).
    pub key: String,
    /// Bytes.
    pub size: u64,
}

/// Counters of what was written, for the status and metrics.
#[derive(Debug, Default)]
pub struct TierCounters {
    /// Items written.
    pub written: AtomicU64,
    /// Bytes written.
    pub written_bytes: AtomicU64,
    /// Writes skipped because the tier held the item already.
    pub skipped_present: AtomicU64,
    /// Bytes read.
    pub read_bytes: AtomicU64,
}

/// One S3 tier. Cheap to clone.
#[derive(Clone)]
pub struct Tier {
    inner: Arc<Inner>,
}

struct Inner {
    name: TierName,
    store: Arc<dyn ObjectStore>,
    /// A directory tier's bucket directory (checked by [`Tier::check`]).
    directory: Option<std::path::PathBuf>,
    /// Prepended to every key: `<bucket>/` on a directory tier (whose
    /// store is rooted at the endpoint's directory), else empty.
    base: String,
    endpoint: String,
    bucket: String,
    prefix: String,
    conditional_put: bool,
    part_bytes: usize,
    last_error: Mutex<Option<String>>,
    counters: TierCounters,
}

impl fmt::Debug for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tier")
            .field("name", &self.inner.name)
            .field("endpoint", &self.inner.endpoint)
            .field("bucket", &self.inner.bucket)
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

/// Reads a credential file: its content without surrounding white space.
fn read_secret(tier: TierName, what: &str, path: &FsPath) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
        key: format!("storage.{tier}.{what}"),
        reason: format!("cannot read {}: {e}", path.display()),
    })?;
    let secret = text.trim().to_owned();
    if secret.is_empty() {
        return Err(Error::Config {
            key: format!("storage.{tier}.{what}"),
            reason: format!("{} is empty", path.display()),
        });
    }
    Ok(secret)
}

impl Tier {
    /// A tier as `settings` describe it, with credentials read from their
    /// files. Nothing is sent yet; [`Tier::check`] does.
    pub fn open(name: TierName, settings: &TierSettings, part_bytes: u64) -> Result<Self> {
        if let Some(dir) = settings.directory() {
            return Self::open_directory(name, settings, dir, part_bytes);
        }
        let missing =
            |what: &str| Error::Config { key: format!("storage.{name}.{what}"), reason: "is required".to_owned() };
        let access_key = read_secret(
            name,
            "access_key_file",
            settings.access_key_file.as_deref().ok_or_else(|| missing("access_key_file"))?,
        )?;
        let secret_key = read_secret(
            name,
            "secret_key_file",
            settings.secret_key_file.as_deref().ok_or_else(|| missing("secret_key_file"))?,
        )?;
        let client = ClientOptions::new()
            .with_allow_http(settings.allow_http)
            .with_timeout(Duration::from_secs(settings.timeout_secs))
            .with_connect_timeout(Duration::from_secs(settings.connect_timeout_secs));
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(10),
                base: 2.0,
            },
            max_retries: settings.max_retries,
            retry_timeout: Duration::from_secs(settings.retry_timeout_secs),
        };
        let store = AmazonS3Builder::new()
            .with_endpoint(&settings.endpoint)
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(access_key)
            .with_secret_access_key(secret_key)
            .with_allow_http(settings.allow_http)
            .with_virtual_hosted_style_request(false)
            .with_conditional_put(if settings.conditional_put {
                S3ConditionalPut::ETagMatch
            } else {
                S3ConditionalPut::Disabled
            })
            .with_client_options(client)
            .with_retry(retry)
            .build()
            .map_err(|e| Error::Config { key: format!("storage.{name}"), reason: e.to_string() })?;
        Ok(Self {
            inner: Arc::new(Inner {
                name,
                store: Arc::new(store),
                directory: None,
                base: String::new(),
                endpoint: settings.endpoint.clone(),
                bucket: settings.bucket.clone(),
                prefix: settings.prefix.clone(),
                conditional_put: settings.conditional_put,
                part_bytes: usize::try_from(part_bytes).unwrap_or(usize::MAX),
                last_error: Mutex::new(None),
                counters: TierCounters::default(),
            }),
        })
    }

    /// A directory tier (development and tests; [`crate::quirks`]): the
    /// endpoint's directory must exist, the bucket is a subdirectory of it,
    /// checked by [`Tier::check`] like an S3 bucket. Writes are fsynced.
    fn open_directory(name: TierName, settings: &TierSettings, dir: &FsPath, part_bytes: u64) -> Result<Self> {
        let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| Error::Config {
            key: format!("storage.{name}.endpoint"),
            reason: format!("directory {}: {e}", dir.display()),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                name,
                store: Arc::new(store.with_fsync(true)),
                directory: Some(dir.join(&settings.bucket)),
                base: format!("{}/", settings.bucket),
                endpoint: settings.endpoint.clone(),
                bucket: settings.bucket.clone(),
                prefix: settings.prefix.clone(),
                conditional_put: settings.conditional_put,
                part_bytes: usize::try_from(part_bytes).unwrap_or(usize::MAX),
                last_error: Mutex::new(None),
                counters: TierCounters::default(),
            }),
        })
    }

    /// `warm` or `cold`.
    pub fn name(&self) -> TierName {
        self.inner.name
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// What was written and read.
    pub fn counters(&self) -> &TierCounters {
        &self.inner.counters
    }

    /// The last request's error, if it failed.
    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error.lock().expect("tier error lock").clone()
    }

    /// The key of an item: `objects/<cid>`, `segments/<cid>`,
    /// `manifests/<index, 12 digits>-<cid>`.
    pub fn key(kind: ItemKind, cid: &Cid, index: Option<u64>) -> String {
        match (kind, index) {
            (ItemKind::Manifests, Some(index)) => format!("manifests/{index:012}-{cid}"),
            _ => format!("{kind}/{cid}"),
        }
    }

    /// The CID (and manifest index) a key names, if it is one of ours.
    pub fn parse_key(key: &str) -> Option<(ItemKind, Cid, Option<u64>)> {
        let (kind, name) = key.split_once('/')?;
        let kind = ItemKind::ALL.into_iter().find(|k| k.as_str() == kind)?;
        if kind == ItemKind::Manifests {
            let (index, cid) = name.split_once('-')?;
            if index.len() != 12 || !index.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            return Some((kind, cid.parse().ok()?, Some(index.parse().ok()?)));
        }
        Some((kind, name.parse().ok()?, None))
    }

    fn path(&self, key: &str) -> Path {
        Path::from(format!("{}{}{key}", self.inner.base, self.inner.prefix))
    }

    /// Records how the last request went, and classifies its error.
    fn outcome<T>(&self, op: &'static str, key: &str, result: ::object_store::Result<T>) -> Result<T> {
        match result {
            Ok(value) => {
                *self.inner.last_error.lock().expect("tier error lock") = None;
                Ok(value)
            }
            Err(error) => {
                let problem = quirks::classify(&error);
                let error =
                    Error::Tier { tier: self.inner.name, op, key: key.to_owned(), problem, reason: error.to_string() };
                if !matches!(problem, TierProblem::NotFound | TierProblem::AlreadyExists) {
                    *self.inner.last_error.lock().expect("tier error lock") = Some(error.to_string());
                }
                Err(error)
            }
        }
    }

    /// Checks that the bucket exists and the credentials are accepted, by
    /// listing at most one key under the prefix.
    pub async fn check(&self) -> Result<()> {
        if let Some(dir) = &self.inner.directory {
            // A directory store lists a missing directory as empty and
            // creates it on a write: ask the file system.
            let found = tokio::fs::metadata(dir).await;
            if !found.as_ref().is_ok_and(std::fs::Metadata::is_dir) {
                let reason = match found {
                    Ok(_) => format!("{} is not a directory", dir.display()),
                    Err(e) => format!("directory {}: {e}", dir.display()),
                };
                let error = Error::Tier {
                    tier: self.inner.name,
                    op: "list",
                    key: String::new(),
                    problem: TierProblem::NoSuchBucket,
                    reason,
                };
                *self.inner.last_error.lock().expect("tier error lock") = Some(error.to_string());
                return Err(error);
            }
        }
        let prefix = Path::from(format!("{}{}", self.inner.base, self.inner.prefix).trim_end_matches('/'));
        let mut listing = self.inner.store.list(Some(&prefix));
        let first = listing.next().await.transpose();
        self.outcome("list", "", first).map(|_| ())
    }

    /// The size of an item, or `None` when the tier does not hold it.
    pub async fn head(&self, key: &str) -> Result<Option<u64>> {
        let result = self.inner.store.head(&self.path(key)).await;
        match self.outcome("head", key, result) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(Error::Tier { problem: TierProblem::NotFound, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Writes an item held in memory. With `create_only`, an item already
    /// there is left alone and `Ok(false)` returned (by a conditional put
    /// where the provider supports it, else by asking first).
    pub async fn put(&self, key: &str, bytes: Bytes, create_only: bool) -> Result<bool> {
        let len = bytes.len() as u64;
        if create_only && !self.inner.conditional_put && self.head(key).await?.is_some() {
            self.inner.counters.skipped_present.fetch_add(1, Ordering::Relaxed);
            return Ok(false);
        }
        let mode = if create_only && self.inner.conditional_put { PutMode::Create } else { PutMode::Overwrite };
        let options = PutOptions { mode, ..PutOptions::default() };
        let result = self.inner.store.put_opts(&self.path(key), PutPayload::from(bytes), options).await;
        match self.outcome("put", key, result) {
            Ok(_) => {
                self.inner.counters.written.fetch_add(1, Ordering::Relaxed);
                self.inner.counters.written_bytes.fetch_add(len, Ordering::Relaxed);
                Ok(true)
            }
            Err(Error::Tier { problem: TierProblem::AlreadyExists, .. }) => {
                self.inner.counters.skipped_present.fetch_add(1, Ordering::Relaxed);
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// Writes an item from a stream of chunks as a multipart upload (parts
    /// of `copy.part_bytes`, a few in flight). A failed upload is aborted,
    /// so no part of it stays visible. Multipart uploads cannot be
    /// conditional: callers ask first ([`Tier::head`]).
    pub async fn put_stream<E>(
        &self,
        key: &str,
        mut chunks: BoxStream<'_, std::result::Result<Bytes, E>>,
    ) -> Result<u64>
    where
        E: Into<Error>,
    {
        let upload = self.inner.store.put_multipart(&self.path(key)).await;
        let upload = self.outcome("put", key, upload)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.inner.part_bytes);
        let mut written = 0;
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    let _ = writer.abort().await;
                    return Err(error.into());
                }
            };
            if let Err(error) = writer.wait_for_capacity(4).await {
                let _ = writer.abort().await;
                return self.outcome("put", key, Err(error));
            }
            written += chunk.len() as u64;
            writer.put(chunk);
        }
        let finished = writer.finish().await;
        self.outcome("put", key, finished)?;
        self.inner.counters.written.fetch_add(1, Ordering::Relaxed);
        self.inner.counters.written_bytes.fetch_add(written, Ordering::Relaxed);
        Ok(written)
    }

    /// An item's bytes as a stream, with its size; `None` when absent.
    pub async fn get_stream(&self, key: &str) -> Result<Option<(u64, BoxStream<'static, Result<Bytes>>)>> {
        let result = self.inner.store.get_opts(&self.path(key), GetOptions::default()).await;
        let got = match self.outcome("get", key, result) {
            Ok(got) => got,
            Err(Error::Tier { problem: TierProblem::NotFound, .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        let size = got.meta.size;
        let tier = self.clone();
        let key = key.to_owned();
        let stream = got
            .into_stream()
            .map(move |chunk| {
                let chunk = tier.outcome("get", &key, chunk)?;
                tier.inner.counters.read_bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                Ok(chunk)
            })
            .boxed();
        Ok(Some((size, stream)))
    }

    /// A whole item in memory; `None` when absent.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let Some((size, mut stream)) = self.get_stream(key).await? else { return Ok(None) };
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        Ok(Some(Bytes::from(bytes)))
    }

    /// Part of an item and the item's size; `None` when absent.
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Option<(u64, Bytes)>> {
        let options = GetOptions { range: Some(GetRange::Bounded(range)), ..GetOptions::default() };
        let result = self.inner.store.get_opts(&self.path(key), options).await;
        let got = match self.outcome("get", key, result) {
            Ok(got) => got,
            Err(Error::Tier { problem: TierProblem::NotFound, .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        let size = got.meta.size;
        let bytes = got.bytes().await;
        let bytes = self.outcome("get", key, bytes)?;
        self.inner.counters.read_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(Some((size, bytes)))
    }

    /// Reads an item and hashes it with `codec`: the CID its bytes have and
    /// their size; `None` when absent.
    pub async fn hash(&self, key: &str, codec: u64) -> Result<Option<(Cid, u64)>> {
        let Some((_, mut stream)) = self.get_stream(key).await? else { return Ok(None) };
        let mut hasher = RawHasher::default();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
        }
        let size = hasher.len();
        Ok(Some((cid_from_digest(codec, &hasher.digest()), size)))
    }

    /// Deletes an item; deleting an absent one is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let result = self.inner.store.delete(&self.path(key)).await;
        match self.outcome("delete", key, result) {
            Ok(()) | Err(Error::Tier { problem: TierProblem::NotFound, .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Every item of `kind`, by key order.
    pub async fn list(&self, kind: ItemKind) -> Result<Vec<Listed>> {
        let prefix = self.path(kind.as_str());
        let strip = format!("{}{}", self.inner.base, self.inner.prefix);
        let mut listing = self.inner.store.list(Some(&prefix));
        let mut items = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = self.outcome("list", kind.as_str(), meta)?;
            let full = meta.location.to_string();
            let key = full.strip_prefix(&strip).unwrap_or(&full).to_owned();
            items.push(Listed { key, size: meta.size });
        }
        items.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_cid() {
        let cid = cim_cid::raw_cid(b"x");
        let key = Tier::key(ItemKind::Objects, &cid, None);
        assert_eq!(key, format!("objects/{cid}"));
        assert_eq!(Tier::parse_key(&key), Some((ItemKind::Objects, cid, None)));
        let manifest = cim_cid::dag_cbor_cid(b"\xa0");
        let key = Tier::key(ItemKind::Manifests, &manifest, Some(42));
        assert_eq!(key, format!("manifests/000000000042-{manifest}"));
        assert_eq!(Tier::parse_key(&key), Some((ItemKind::Manifests, manifest, Some(42))));
        assert_eq!(Tier::parse_key("manifests/42-x"), None);
        assert_eq!(Tier::parse_key("other/x"), None);
        assert_eq!(Tier::parse_key("objects/not-a-cid"), None);
    }
}

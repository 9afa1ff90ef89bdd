//! KV helpers for components: JSON values, per-bucket and per-key TTLs, and
//! watches, over JetStream KV buckets named under the store's namespace.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result, StoreConfig, provision, retry};

/// How a KV bucket keeps its entries. Provisioning creates a bucket with
/// these options ([`KvBucket::provision`]); a component attaching to it
/// ([`KvBucket::open`]) states the same options, and the two must agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvOptions {
    /// What the bucket holds, for operators (not compared when attaching).
    pub description: String,
    /// Revisions kept per key (1–64).
    pub history: i64,
    /// Entries expire this long after their last write, all alike.
    pub ttl: Option<Duration>,
    /// Allow a TTL per write ([`KvBucket::put_with_ttl`],
    /// [`KvBucket::create_with_ttl`]); entries removed by a TTL leave markers
    /// that watchers see as removals, kept this long.
    pub per_key_ttl_markers: Option<Duration>,
}

impl Default for KvOptions {
    fn default() -> Self {
        Self { description: String::new(), history: 1, ttl: None, per_key_ttl_markers: None }
    }
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvChange {
    /// The key was written.
    Put {
        /// The key.
        key: String,
        /// Its new value.
        value: Bytes,
        /// The bucket revision of the write.
        revision: u64,
    },
    /// The key was deleted, purged or expired.
    Removed {
        /// The key.
        key: String,
        /// The bucket revision of the removal.
        revision: u64,
    },
}

/// A KV bucket. Cheap to clone.
#[derive(Debug, Clone)]
pub struct KvBucket {
    store: kv::Store,
    js: jetstream::Context,
}

impl KvBucket {
    /// Attaches to `<namespace>-<name>`, which provisioning created: only
    /// reads its configuration and checks that it keeps entries as
    /// `options` say. A component's way to open its bucket: its NATS user
    /// may not create or change streams.
    ///
    /// # Errors
    /// [`Error::NotProvisioned`] when the bucket does not exist;
    /// [`Error::Incompatible`] when it is kept otherwise than `options` say.
    pub async fn open(
        client: async_nats::Client,
        config: &StoreConfig,
        name: &str,
        options: KvOptions,
    ) -> Result<Self> {
        config.validate()?;
        let js = jetstream::new(client);
        let bucket = format!("{}-{name}", config.namespace);
        let store = provision::attach_kv_bucket(&js, config, &bucket, &options).await?;
        Ok(Self { store, js })
    }

    /// Creates `<namespace>-<name>` with `options`, or adapts an existing
    /// bucket to them: the admin's path (provisioning).
    pub async fn provision(
        client: async_nats::Client,
        config: &StoreConfig,
        name: &str,
        options: KvOptions,
    ) -> Result<Self> {
        config.validate()?;
        let js = jetstream::new(client);
        let bucket = format!("{}-{name}", config.namespace);
        let store = provision::provision_kv_bucket(&js, config, &bucket, &options).await?;
        Ok(Self { store, js })
    }

    /// The underlying async-nats bucket, for what these helpers do not cover.
    pub fn inner(&self) -> &kv::Store {
        &self.store
    }

    /// Writes a value; returns the revision.
    pub async fn put(&self, key: &str, value: Bytes) -> Result<u64> {
        self.store.put(key, value).await.map_err(|e| Error::nats("writing a KV entry", e))
    }

    /// Writes a value as JSON.
    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<u64> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::nats("encoding a KV entry", e))?;
        self.put(key, bytes.into()).await
    }

    /// Writes a value that the server removes `ttl` after this write
    /// unless it is written again (a liveness entry: every rewrite starts a
    /// new TTL); returns the revision. Needs
    /// [`KvOptions::per_key_ttl_markers`]; `ttl` is whole seconds, at least 1.
    pub async fn put_with_ttl(&self, key: &str, value: Bytes, ttl: Duration) -> Result<u64> {
        let valid = !key.is_empty()
            && !key.starts_with('.')
            && !key.ends_with('.')
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b));
        if !valid {
            return Err(Error::nats("writing a KV entry", format!("{key:?} is not a valid key")));
        }
        let secs = ttl.as_secs().max(1);
        let subject = format!("{}{key}", self.store.put_prefix.as_deref().unwrap_or(&self.store.prefix));
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_TTL, secs.to_string().as_str());
        let ack = self
            .js
            .publish_with_headers(subject.clone(), headers, value)
            .await
            .map_err(|e| Error::nats("writing a KV entry", e))?;
        retry::unless_denied(&subject, ack.into_future())
            .await
            .map(|ack| ack.sequence)
            .map_err(|e| Error::nats("writing a KV entry", e))
    }

    /// Writes a value as JSON with a TTL ([`KvBucket::put_with_ttl`]).
    pub async fn put_json_with_ttl<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) -> Result<u64> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::nats("encoding a KV entry", e))?;
        self.put_with_ttl(key, bytes.into(), ttl).await
    }

    /// Creates a key that expires after `ttl` unless written again; fails if
    /// it exists. Needs [`KvOptions::per_key_ttl_markers`].
    pub async fn create_with_ttl(&self, key: &str, value: Bytes, ttl: Duration) -> Result<u64> {
        self.store.create_with_ttl(key, value, ttl).await.map_err(|e| Error::nats("creating a KV entry", e))
    }

    /// Reads a value.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.store.get(key).await.map_err(|e| Error::nats("reading a KV entry", e))
    }

    /// Reads a JSON value.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get(key).await? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::nats("decoding a KV entry", e)),
            None => Ok(None),
        }
    }

    /// Deletes a key.
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.store.delete(key).await.map_err(|e| Error::nats("deleting a KV entry", e))
    }

    /// Every live key.
    pub async fn keys(&self) -> Result<Vec<String>> {
        let keys = self.store.keys().await.map_err(|e| Error::nats("listing KV keys", e))?;
        keys.try_collect().await.map_err(|e| Error::nats("listing KV keys", e))
    }

    /// The current value of every key matching `pattern` (NATS wildcards),
    /// then every change as it happens.
    pub async fn watch(&self, pattern: &str) -> Result<BoxStream<'static, Result<KvChange>>> {
        let watch = self.store.watch_with_history(pattern).await.map_err(|e| Error::nats("watching a KV bucket", e))?;
        Ok(watch
            .map(|entry| {
                let entry = entry.map_err(|e| Error::nats("watching a KV bucket", e))?;
                Ok(match entry.operation {
                    kv::Operation::Put => {
                        KvChange::Put { key: entry.key, value: entry.value, revision: entry.revision }
                    }
                    kv::Operation::Delete | kv::Operation::Purge => {
                        KvChange::Removed { key: entry.key, revision: entry.revision }
                    }
                })
            })
            .boxed())
    }
}

//! KV helpers for components: JSON values, per-bucket and per-key TTLs, and
//! watches, over JetStream KV buckets named under the store's namespace.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result, StoreConfig, provision};

/// How a KV bucket keeps its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvOptions {
    /// Revisions kept per key (1–64).
    pub history: i64,
    /// Entries expire this long after their last write (a liveness TTL).
    pub ttl: Option<Duration>,
    /// Allow a TTL per entry ([`KvBucket::create_with_ttl`]); deletions by
    /// TTL leave markers that watchers see, kept this long.
    pub per_key_ttl_markers: Option<Duration>,
}

impl Default for KvOptions {
    fn default() -> Self {
        Self { history: 1, ttl: None, per_key_ttl_markers: None }
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
}

impl KvBucket {
    /// Opens `<namespace>-<name>`, creating it with `options` if missing.
    pub async fn open(
        client: async_nats::Client,
        config: &StoreConfig,
        name: &str,
        options: KvOptions,
    ) -> Result<Self> {
        config.validate()?;
        let js = jetstream::new(client);
        let store = provision::kv_bucket(
            &js,
            config,
            kv::Config {
                bucket: format!("{}-{name}", config.namespace),
                history: options.history,
                max_age: options.ttl.unwrap_or_default(),
                limit_markers: options.per_key_ttl_markers,
                ..Default::default()
            },
        )
        .await?;
        Ok(Self { store })
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

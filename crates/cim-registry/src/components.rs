//! Live components in a JetStream KV bucket, `<namespace>-components`, one
//! key `<name>.<instance>` per running instance.
//!
//! The bucket is provisioned, not created here: the registry's NATS user
//! may not create or change streams, so provisioning (`cim provision`)
//! creates it as `components.toml` says (`[buckets.components]`), and the
//! registry attaches to it, stating the same options.
//!
//! Liveness: every registration and heartbeat is written with the
//! registry's TTL as its own (`Nats-TTL`; the bucket allows a TTL per
//! write), and a rewrite starts a new one, so an entry lives for one TTL
//! after its last heartbeat and then the server removes it, by itself, with
//! no sweeper to run or to fail. The bucket keeps removal markers, so a
//! watcher sees an expiry as a removal. The TTL is the registry's setting
//! alone: the bucket's configuration does not depend on it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cim_registry_api::{ComponentQuery, ComponentRecord, Graph, GraphEdge, GraphNode, Registration, capability};
use cim_runtime::config::check_token;
use cim_store::{KvBucket, KvChange, KvOptions, StoreConfig};
use futures::stream::{BoxStream, StreamExt};

use crate::error::{Error, Result};
use crate::glob;

/// Name of the bucket below the store's namespace.
pub const COMPONENTS_BUCKET: &str = "components";

/// A change to the live components, as [`Directory::watch`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentChange {
    /// An instance registered or beat.
    Seen(Box<ComponentRecord>),
    /// An instance deregistered or expired.
    Gone {
        /// Component name.
        name: String,
        /// The instance.
        instance_id: String,
    },
}

/// The directory of live components. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Directory {
    bucket: KvBucket,
    ttl: Duration,
}

fn key(name: &str, instance_id: &str) -> String {
    format!("{name}.{instance_id}")
}

fn invalid(what: &'static str, value: &str, reason: String) -> Error {
    Error::InvalidName { what, value: value.to_owned(), reason }
}

impl Directory {
    /// How the bucket keeps its entries: `[buckets.components]` of
    /// `components.toml`, which provisioning creates it with.
    pub fn bucket_options() -> KvOptions {
        KvOptions {
            description:
                "CIM live components: <name>.<instance> -> its registration, removed one TTL after its last heartbeat"
                    .to_owned(),
            history: 1,
            ttl: None,
            per_key_ttl_markers: Some(Duration::from_secs(60)),
        }
    }

    /// Attaches to the provisioned bucket; each entry lives `ttl` after its
    /// last write.
    ///
    /// # Errors
    /// The bucket is missing (`cim_store::Error::NotProvisioned`) or kept
    /// otherwise than [`Directory::bucket_options`] (`Incompatible`).
    pub async fn open(client: async_nats::Client, store: &StoreConfig, ttl: Duration) -> Result<Self> {
        let bucket = KvBucket::open(client, store, COMPONENTS_BUCKET, Self::bucket_options()).await?;
        Ok(Self { bucket, ttl })
    }

    /// The TTL of an entry after its last heartbeat.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Records a registration or heartbeat.
    pub async fn register(&self, registration: Registration) -> Result<()> {
        check_token("name", &registration.name, 64)
            .map_err(|e| invalid("component name", &registration.name, e.reason))?;
        check_token("instance_id", &registration.instance_id, 64)
            .map_err(|e| invalid("instance id", &registration.instance_id, e.reason))?;
        let record = ComponentRecord { registration, last_seen: cim_store::Timestamp::now().to_string() };
        let key = key(&record.registration.name, &record.registration.instance_id);
        self.bucket.put_json_with_ttl(&key, &record, self.ttl).await?;
        Ok(())
    }

    /// Removes an instance; `false` when it was not there.
    pub async fn deregister(&self, name: &str, instance_id: &str) -> Result<bool> {
        check_token("name", name, 64).map_err(|e| invalid("component name", name, e.reason))?;
        check_token("instance_id", instance_id, 64).map_err(|e| invalid("instance id", instance_id, e.reason))?;
        let key = key(name, instance_id);
        let present = self.bucket.get(&key).await?.is_some();
        if present {
            self.bucket.delete(&key).await?;
        }
        Ok(present)
    }

    /// Live instances matching `query`, sorted by name and instance: the
    /// name by glob, the capability by subject tokens
    /// ([`cim_registry_api::capability`]).
    pub async fn list(&self, query: &ComponentQuery) -> Result<Vec<ComponentRecord>> {
        if let Some(pattern) = &query.capability {
            capability::check(pattern).map_err(|e| invalid("capability pattern", pattern, e.to_string()))?;
        }
        let mut records = Vec::new();
        for key in self.bucket.keys().await? {
            // A key can expire between listing and reading it.
            let Some(record) = self.bucket.get_json::<ComponentRecord>(&key).await? else { continue };
            let registration = &record.registration;
            let name_ok = query.name.as_deref().is_none_or(|pattern| glob::matches(pattern, &registration.name));
            let capability_ok = query
                .capability
                .as_deref()
                .is_none_or(|pattern| registration.capabilities.iter().any(|c| capability::matches(pattern, c)));
            if name_ok && capability_ok {
                records.push(record);
            }
        }
        records.sort_by(|a, b| {
            (&a.registration.name, &a.registration.instance_id)
                .cmp(&(&b.registration.name, &b.registration.instance_id))
        });
        Ok(records)
    }

    /// Components and the schema types flowing between them.
    pub async fn graph(&self) -> Result<Graph> {
        let records = self.list(&ComponentQuery::default()).await?;
        let mut nodes: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
        let mut produces: BTreeSet<(&str, &str)> = BTreeSet::new();
        let mut consumes: BTreeSet<(&str, &str)> = BTreeSet::new();
        for record in &records {
            let registration = &record.registration;
            let node = nodes.entry(&registration.name).or_default();
            node.0.insert(&registration.instance_id);
            node.1.extend(registration.capabilities.iter().map(String::as_str));
            produces.extend(registration.schemas.produces.iter().map(|s| (registration.name.as_str(), s.as_str())));
            consumes.extend(registration.schemas.consumes.iter().map(|s| (registration.name.as_str(), s.as_str())));
        }
        let edges = produces
            .iter()
            .flat_map(|&(from, schema)| {
                consumes.iter().filter(move |&&(_, consumed)| consumed == schema).map(move |&(to, _)| GraphEdge {
                    from: from.to_owned(),
                    to: to.to_owned(),
                    schema: schema.to_owned(),
                })
            })
            .collect();
        let nodes = nodes
            .into_iter()
            .map(|(name, (instances, capabilities))| GraphNode {
                name: name.to_owned(),
                instances: instances.into_iter().map(str::to_owned).collect(),
                capabilities: capabilities.into_iter().map(str::to_owned).collect(),
            })
            .collect();
        Ok(Graph { nodes, edges })
    }

    /// Every live instance, then each registration, heartbeat, departure
    /// and expiry as it happens.
    pub async fn watch(&self) -> Result<BoxStream<'static, Result<ComponentChange>>> {
        let changes = self.bucket.watch(">").await?;
        Ok(changes
            .filter_map(|change| async move {
                match change {
                    Ok(KvChange::Put { value, .. }) => {
                        // Entries not written by a registry are skipped.
                        serde_json::from_slice::<ComponentRecord>(&value)
                            .ok()
                            .map(|record| Ok(ComponentChange::Seen(Box::new(record))))
                    }
                    Ok(KvChange::Removed { key, .. }) => {
                        let (name, instance_id) = key.split_once('.')?;
                        Some(Ok(ComponentChange::Gone { name: name.to_owned(), instance_id: instance_id.to_owned() }))
                    }
                    Err(error) => Some(Err(Error::from(error))),
                }
            })
            .boxed())
    }
}

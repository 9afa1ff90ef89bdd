//! Provisioning a NATS server for a deployment (feature `provision`): as
//! the admin user, the store's event stream, object bucket and names
//! bucket, and every component's KV bucket with its configuration from
//! `components.toml` (`[buckets.<name>]`). Components only attach to what
//! this creates: their NATS users may not create, update, purge or delete
//! streams (docs/spec/permissions.md).
//!
//! What runs it: `cim provision` (and so `cim-provision.service` on NixOS),
//! `cim up`, and the tests that start components on a fresh server.

use std::time::Duration;

use cim_store::{EventStore, KvBucket, KvOptions, NamedObjects, ObjectStore, StoreConfig};

use crate::{Bucket, Deployment};

/// What [`provision`] created or checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// The store namespace.
    pub namespace: String,
    /// The event stream.
    pub events_stream: String,
    /// The object store bucket.
    pub objects_bucket: String,
    /// The names bucket.
    pub names_bucket: String,
    /// Each component's bucket: its full name and its owner.
    pub buckets: Vec<(String, String)>,
}

impl Bucket {
    /// The options provisioning creates the bucket with, and the component
    /// attaching to it must state.
    pub fn options(&self) -> KvOptions {
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        KvOptions {
            description: self.description.clone(),
            history: self.history,
            ttl: secs(self.ttl_secs),
            per_key_ttl_markers: secs(self.per_key_ttl_markers_secs),
        }
    }
}

/// Creates what is missing, and adapts what exists, of everything the
/// deployment's components and the CLI use in `store`'s namespace. Run it
/// connected as the admin user; it is idempotent.
///
/// # Errors
/// As [`EventStore::provision`], [`ObjectStore::provision`],
/// [`NamedObjects::provision`] and [`KvBucket::provision`]: a refusal to
/// this user is [`cim_store::Error::PermissionDenied`].
pub async fn provision(
    client: async_nats::Client,
    store: &StoreConfig,
    deployment: &Deployment,
) -> Result<Provisioned, cim_store::Error> {
    let events = EventStore::provision(client.clone(), store.clone()).await?;
    let objects = ObjectStore::provision(client.clone(), store).await?;
    NamedObjects::provision(objects, client.clone(), store).await?;
    let mut buckets = Vec::new();
    for bucket in deployment.buckets().values() {
        KvBucket::provision(client.clone(), store, &bucket.name, bucket.options()).await?;
        buckets.push((bucket.bucket(&store.namespace), bucket.owner.clone()));
    }
    let names = events.names();
    Ok(Provisioned {
        namespace: store.namespace.clone(),
        events_stream: names.events_stream.clone(),
        objects_bucket: names.objects_bucket.clone(),
        names_bucket: names.names_bucket.clone(),
        buckets,
    })
}

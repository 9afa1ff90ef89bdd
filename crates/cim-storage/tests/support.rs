//! A NATS server and two real S3 servers (SeaweedFS as warm, s3s-fs as
//! cold), a store namespace, and the manager's settings pointing at them.

use std::collections::BTreeMap;
use std::sync::Arc;

use cim_cid::{AggregateKey, Ipld, NewEvent};
use cim_storage::settings::TierSettings;
use cim_storage::{Manager, StorageMetrics, StorageSettings};
use cim_storage_api::TierName;
use cim_store::{EventStore, ExpectedVersion, ObjectStore, StoreConfig};
use cim_test_support::{NatsServer, S3Server, unique_name};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore as _, ObjectStoreExt, PutPayload};
use tempfile::TempDir;

pub const WARM_BUCKET: &str = "cim-warm";
pub const COLD_BUCKET: &str = "cim-cold";

/// Everything a test needs.
pub struct Env {
    pub nats: NatsServer,
    pub warm: S3Server,
    pub cold: S3Server,
    pub dir: TempDir,
    pub store: StoreConfig,
    pub settings: StorageSettings,
}

impl Env {
    pub async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (nats, warm, cold) = tokio::join!(NatsServer::start(), S3Server::seaweedfs(), S3Server::s3s_fs());
        warm.create_bucket(WARM_BUCKET);
        cold.create_bucket(COLD_BUCKET);
        let dir = tempfile::tempdir().expect("temporary directory");
        let namespace = unique_name("st").replace('_', "-").to_ascii_lowercase();
        let store = StoreConfig::with_namespace(namespace);
        // As cim-provision.service does: the manager only attaches.
        let deployment = cim_deploy::Deployment::embedded().expect("components.toml");
        cim_deploy::provision::provision(nats.connect().await, &store, &deployment).await.expect("provisioning");
        let tier = |server: &S3Server, bucket: &str, name: &str| {
            let (access, secret) = server.write_credentials(dir.path(), name);
            TierSettings {
                endpoint: server.endpoint(),
                bucket: bucket.to_owned(),
                allow_http: true,
                access_key_file: Some(access),
                secret_key_file: Some(secret),
                timeout_secs: 30,
                max_retries: 2,
                retry_timeout_secs: 5,
                ..TierSettings::default()
            }
        };
        let mut settings = StorageSettings {
            warm: tier(&warm, WARM_BUCKET, "warm"),
            cold: tier(&cold, COLD_BUCKET, "cold"),
            work_dir: Some(dir.path().join("work")),
            ..StorageSettings::default()
        };
        settings.seal.max_events = 50;
        settings.seal.interval_secs = 0;
        settings.copy.interval_secs = 0;
        settings.scrub.interval_secs = 0;
        Self { nats, warm, cold, dir, store, settings }
    }

    pub async fn manager(&self) -> Manager {
        self.manager_with(self.settings.clone()).await
    }

    pub async fn manager_with(&self, settings: StorageSettings) -> Manager {
        Manager::open(
            self.nats.connect().await,
            self.store.clone(),
            settings,
            "test".to_owned(),
            StorageMetrics::default(),
        )
        .await
        .expect("open the manager")
    }

    pub async fn events(&self) -> EventStore {
        EventStore::open(self.nats.connect().await, self.store.clone()).await.expect("open the event store")
    }

    pub async fn objects(&self) -> ObjectStore {
        ObjectStore::open(self.nats.connect().await, &self.store).await.expect("open the object store")
    }

    /// An S3 client of a tier, to look at or damage what the manager wrote.
    pub fn s3(&self, tier: TierName) -> Arc<dyn object_store::ObjectStore> {
        let (server, bucket) = match tier {
            TierName::Warm => (&self.warm, WARM_BUCKET),
            TierName::Cold => (&self.cold, COLD_BUCKET),
        };
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(server.endpoint())
                .with_bucket_name(bucket)
                .with_region("us-east-1")
                .with_access_key_id(server.access_key())
                .with_secret_access_key(server.secret_key())
                .with_allow_http(true)
                .build()
                .expect("S3 client"),
        )
    }

    /// Every key on a tier.
    pub async fn keys(&self, tier: TierName) -> Vec<String> {
        use futures::TryStreamExt;
        let mut keys: Vec<String> =
            self.s3(tier).list(None).map_ok(|m| m.location.to_string()).try_collect().await.expect("list");
        keys.sort();
        keys
    }

    /// Flips one byte of `key` on a tier, behind the manager's back.
    pub async fn flip_byte(&self, tier: TierName, key: &str, at: usize) {
        let s3 = self.s3(tier);
        let mut bytes = s3.get(&Path::from(key)).await.expect("get").bytes().await.expect("bytes").to_vec();
        bytes[at] ^= 0x01;
        s3.put(&Path::from(key), PutPayload::from(bytes)).await.expect("put the damaged copy");
    }

    /// Deletes `key` on a tier, behind the manager's back.
    pub async fn delete(&self, tier: TierName, key: &str) {
        self.s3(tier).delete(&Path::from(key)).await.expect("delete");
    }
}

/// Appends `count` events spread over `aggregates` aggregates of type
/// `order`, each linking the object `link` if given.
pub async fn append_events(store: &EventStore, count: usize, aggregates: usize, link: Option<cim_cid::Cid>) {
    for n in 0..count {
        let aggregate = AggregateKey::new("order", format!("o{}", n % aggregates)).expect("key");
        let mut payload = BTreeMap::from([("n".to_owned(), Ipld::Integer(n as i128))]);
        if let Some(cid) = link {
            payload.insert("attachment".to_owned(), Ipld::Link(cid));
        }
        store
            .append(&aggregate, ExpectedVersion::Any, vec![NewEvent::new("Happened", Ipld::Map(payload))])
            .await
            .expect("append");
    }
}

/// Bytes of a given size, varied by `seed`.
pub fn blob(size: usize, seed: u8) -> Vec<u8> {
    (0..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

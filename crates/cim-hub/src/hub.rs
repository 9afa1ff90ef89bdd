//! The hub's shared state: the stores, the other components' clients, its
//! KV buckets, its tokens.

use std::sync::Arc;
use std::time::Duration;

use cim_runtime::Runtime;
use cim_store::{EventStore, KvBucket, KvOptions, ObjectStore};

use crate::auth::Tokens;
use crate::metrics::HubMetrics;
use crate::settings::HubSettings;

/// The hub's KV bucket (`<namespace>-hub`): tokens, subscriptions and their
/// positions, inbound endpoints, seen inbound deliveries, the dispatcher lease.
pub const BUCKET: &str = "hub";
/// The delivery log's KV bucket (`<namespace>-hublog`).
pub const LOG_BUCKET: &str = "hublog";

/// The Integration Hub. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: EventStore,
    objects: ObjectStore,
    ius: cim_ius_api::Client,
    registry: cim_registry_api::Client,
    kv: KvBucket,
    log: KvBucket,
    tokens: Tokens,
    settings: HubSettings,
    instance_id: String,
    metrics: HubMetrics,
    http: reqwest::Client,
}

impl Hub {
    /// How the hub's bucket keeps its entries: `[buckets.hub]` of
    /// `components.toml`, which provisioning creates it with. Entries live
    /// until removed, or as long as their own TTL (seen inbound deliveries,
    /// the dispatcher lease).
    pub fn bucket_options() -> KvOptions {
        KvOptions {
            description:
                "CIM Integration Hub: tokens, webhook subscriptions and positions, inbound endpoints, the dispatcher lease"
                    .to_owned(),
            history: 1,
            ttl: None,
            per_key_ttl_markers: Some(Duration::from_secs(60)),
        }
    }

    /// How the delivery log keeps its entries: `[buckets.hublog]` of
    /// `components.toml`, 30 days after their last write.
    pub fn log_bucket_options() -> KvOptions {
        KvOptions {
            description: "CIM Integration Hub: outbound webhook delivery log, kept 30 days".to_owned(),
            history: 1,
            ttl: Some(Duration::from_secs(30 * 86_400)),
            per_key_ttl_markers: None,
        }
    }

    /// Attaches to the stores and the buckets the hub uses, which
    /// provisioning created (`cim provision`, `cim up`): the hub's NATS user
    /// may not create or change streams.
    ///
    /// # Errors
    /// A store or bucket is missing (`cim_store::Error::NotProvisioned`) or
    /// kept otherwise than the hub expects (`Incompatible`).
    pub async fn open(runtime: &Runtime<HubSettings>) -> anyhow::Result<Self> {
        let config = runtime.config();
        let client = runtime.client().clone();
        let store = EventStore::open(client.clone(), config.store.clone()).await?;
        let objects = ObjectStore::open(client.clone(), &config.store).await?;
        let kv = KvBucket::open(client.clone(), &config.store, BUCKET, Self::bucket_options()).await?;
        let log = KvBucket::open(client.clone(), &config.store, LOG_BUCKET, Self::log_bucket_options()).await?;
        let metrics = HubMetrics::register(runtime.metrics());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.component.webhook_timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cim-hub/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                objects,
                ius: cim_ius_api::Client::with_caller(runtime.caller()),
                registry: cim_registry_api::Client::with_caller(runtime.caller()),
                kv,
                log,
                tokens: Tokens::default(),
                settings: config.component.clone(),
                instance_id: runtime.instance_id().to_owned(),
                metrics,
                http,
            }),
        })
    }

    /// The event store.
    pub fn store(&self) -> &EventStore {
        &self.inner.store
    }

    /// The object store.
    pub fn objects(&self) -> &ObjectStore {
        &self.inner.objects
    }

    /// The IUS's client.
    pub fn ius(&self) -> &cim_ius_api::Client {
        &self.inner.ius
    }

    /// The registry's client.
    pub fn registry(&self) -> &cim_registry_api::Client {
        &self.inner.registry
    }

    /// The hub's KV bucket.
    pub fn kv(&self) -> &KvBucket {
        &self.inner.kv
    }

    /// The delivery log.
    pub fn log(&self) -> &KvBucket {
        &self.inner.log
    }

    /// The tokens requests are checked against.
    pub fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    /// `[hub]`.
    pub fn settings(&self) -> &HubSettings {
        &self.inner.settings
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// The hub's metrics.
    pub fn metrics(&self) -> &HubMetrics {
        &self.inner.metrics
    }

    /// The HTTP client of outbound webhooks.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Refuses an aggregate type the hub may not append to.
    pub fn check_writable(&self, aggregate_type: &str) -> Result<(), crate::problem::Problem> {
        if self.inner.settings.reserved_aggregate_types.iter().any(|t| t == aggregate_type) {
            return Err(crate::problem::Problem::new(
                axum::http::StatusCode::FORBIDDEN,
                "reserved_aggregate",
                format!("aggregate type {aggregate_type:?} belongs to another component; use its API"),
            ));
        }
        Ok(())
    }
}

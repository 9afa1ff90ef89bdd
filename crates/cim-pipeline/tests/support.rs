//! Engine processes and helpers shared by the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cim_cid::{AggregateKey, Cid, Ipld, NewEvent};
use cim_pipeline_api::{Client, PutPipeline, SourceFormat};
use cim_store::{EventStore, ExpectedVersion, StartAt, StoreConfig};
use cim_test_support::{NatsServer, ServiceProcess, service_config};
use futures::{StreamExt, TryStreamExt};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The cim-pipeline binary of this test build.
pub fn engine_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cim-pipeline"))
}

/// Settings for tests: fast retries, a short ack wait (redelivery after a
/// kill comes quickly), no registration unless a registry runs.
pub fn engine_config(server: &NatsServer, instance: &str, extra: &str, register: bool) -> String {
    let base = service_config(server, instance, "");
    let base = if register { base } else { base.replace("[runtime]\n", "[runtime]\nregister = false\n") };
    format!(
        "{base}\n[pipeline]\nack_wait_secs = 3\nmax_attempts = 3\nretry_first_delay_ms = 100\nretry_max_delay_ms = 400\n{extra}\n"
    )
}

/// Provisions `server` as cim-provision.service does: the components only
/// attach to the streams and buckets.
pub async fn provision(server: &NatsServer) {
    let deployment = cim_deploy::Deployment::embedded().expect("components.toml");
    cim_deploy::provision::provision(server.connect().await, &StoreConfig::default(), &deployment)
        .await
        .expect("provisioning");
}

/// A server and engine instances.
pub struct Engines {
    pub server: NatsServer,
    pub dir: tempfile::TempDir,
    pub engines: Vec<ServiceProcess>,
    pub client: async_nats::Client,
    pub store: EventStore,
}

impl Engines {
    pub async fn start(instances: usize, extra: &str) -> Self {
        let server = NatsServer::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        provision(&server).await;
        let client = server.connect().await;
        let store = EventStore::open(client.clone(), StoreConfig::default()).await.expect("open the store");
        let mut engines = Self { server, dir, engines: Vec::new(), client, store };
        for index in 0..instances {
            engines.add(&format!("engine{index}"), extra);
        }
        engines.wait_instances(instances).await;
        engines
    }

    pub fn add(&mut self, instance: &str, extra: &str) {
        let config = engine_config(&self.server, instance, extra, false);
        self.engines.push(ServiceProcess::start(engine_binary(), self.dir.path(), instance, &config));
    }

    pub fn client(&self) -> Client {
        Client::new(self.client.clone(), TIMEOUT)
    }

    pub fn logs(&self) -> String {
        self.engines.iter().map(ServiceProcess::log).collect::<Vec<_>>().join("\n----\n")
    }

    /// Waits until `n` instances answer `$SRV.PING.cim-pipeline`.
    pub async fn wait_instances(&self, n: usize) {
        wait_instances(&self.client, "cim-pipeline", n, || self.logs()).await;
    }

    pub async fn put(&self, source: &str) -> cim_pipeline_api::Put {
        let request =
            PutPipeline { source: source.to_owned(), format: Some(SourceFormat::Toml), expected_version: None };
        self.client().put(&request).await.unwrap_or_else(|e| panic!("put: {e}\nlogs:\n{}", self.logs()))
    }
}

/// Waits until `n` instances of `service` answer `$SRV.PING.<service>`.
pub async fn wait_instances(client: &async_nats::Client, service: &str, n: usize, logs: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let inbox = client.new_inbox();
        let mut replies = client.subscribe(inbox.clone()).await.expect("subscribe");
        client.publish_with_reply(format!("$SRV.PING.{service}"), inbox, "".into()).await.expect("ping");
        let mut ids = BTreeSet::new();
        let until = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Some(reply)) = tokio::time::timeout_at(until, replies.next()).await {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&reply.payload) {
                ids.insert(value["id"].as_str().unwrap_or_default().to_owned());
            }
        }
        if ids.len() >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{n} instances of {service} did not start; logs:\n{}", logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Appends `count` events `reading/r-<i>` `Measured {n: i, value: i % 7}`,
/// many at a time; their CIDs by `n`.
pub async fn append_readings(store: &EventStore, from: usize, count: usize) -> BTreeMap<usize, Cid> {
    let results: Vec<(usize, Cid)> = futures::stream::iter(from..from + count)
        .map(|n| {
            let store = store.clone();
            async move {
                let key = AggregateKey::new("reading", format!("r-{n}")).expect("key");
                let payload = cim_cid::ipld_from_json(&serde_json::json!({"n": n, "value": n % 7})).expect("payload");
                let appended = store
                    .append(&key, ExpectedVersion::Exact(0), vec![NewEvent::new("Measured", payload)])
                    .await
                    .expect("append a reading");
                (n, appended.last_cid())
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Every event of an aggregate type, with its parents.
pub async fn events_of_type(store: &EventStore, aggregate_type: &str) -> Vec<cim_store::StoredEvent> {
    store.read_type(aggregate_type, StartAt::Beginning).await.expect("read").try_collect().await.expect("read all")
}

/// Outputs (events of `derived`) per input CID (their first parent).
pub async fn outputs_by_input(store: &EventStore) -> BTreeMap<Cid, Vec<cim_store::StoredEvent>> {
    let mut by_input: BTreeMap<Cid, Vec<cim_store::StoredEvent>> = BTreeMap::new();
    for event in events_of_type(store, "derived").await {
        let parent = *event.event.envelope.parents().first().expect("an output links its input");
        by_input.entry(parent).or_default().push(event);
    }
    by_input
}

/// Waits until `done` holds, polling; panics with the logs after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, logs: impl Fn() -> String, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}; logs:\n{}", logs());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `n` of an output's payload.
pub fn payload_n(event: &cim_store::StoredEvent) -> Option<u64> {
    match event.event.envelope.payload() {
        Ipld::Map(map) => match map.get("n") {
            Some(Ipld::Integer(n)) => u64::try_from(*n).ok(),
            _ => None,
        },
        _ => None,
    }
}

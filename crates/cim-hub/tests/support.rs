//! The hub as a real process on a real nats-server (with the registry and
//! the IUS when a test needs units), and an HTTP client for its API.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cim_hub_api::{CreateToken, Scope};
use cim_test_support::{NatsServer, ServiceProcess, service_config, workspace_binary};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The cim-hub binary of this test build.
pub fn hub_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cim-hub"))
}

/// The hub's `[hub]` section for tests: fast retries, small limits.
pub const TEST_HUB: &str = "listen = \"127.0.0.1:0\"\nmax_body_bytes = 65536\nwebhook_backoff_ms = 100\n\
webhook_backoff_max_ms = 400\nwebhook_max_attempts = 4\nwebhook_pause_after = 2\nwebhook_timeout_secs = 2\n";

/// A server and a hub (and, with units, a registry and an IUS).
pub struct Stack {
    pub server: NatsServer,
    pub dir: tempfile::TempDir,
    pub hub: ServiceProcess,
    pub _others: Vec<ServiceProcess>,
    pub nats: async_nats::Client,
    pub api: String,
    pub http: reqwest::Client,
}

impl Stack {
    /// A hub alone.
    pub async fn start() -> Self {
        Self::start_with(false, "").await
    }

    /// A hub; with `units`, a registry and an IUS too; `hub_extra` is added to `[hub]`.
    pub async fn start_with(units: bool, hub_extra: &str) -> Self {
        let server = NatsServer::start().await;
        provision(&server).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut others = Vec::new();
        if units {
            others.push(ServiceProcess::start(
                workspace_binary("cim-registry", "cim-registry"),
                dir.path(),
                "registry",
                &service_config(&server, "r1", "[registry]\ncomponent_ttl_secs = 3\n"),
            ));
            others.push(ServiceProcess::start(
                workspace_binary("cim-ius", "cim-ius"),
                dir.path(),
                "ius",
                &service_config(&server, "i1", ""),
            ));
        }
        let config = service_config(&server, "h1", &format!("[hub]\n{}\n", hub_section(hub_extra)));
        let hub = ServiceProcess::start(hub_binary(), dir.path(), "hub", &config);
        let nats = server.connect().await;
        let api = wait_for_api(&hub).await;
        let stack = Self { server, dir, hub, _others: others, nats, api, http: reqwest::Client::new() };
        stack.wait_serving("cim-hub").await;
        if units {
            stack.wait_serving("cim-ius").await;
            stack.wait_kinds().await;
        }
        stack
    }

    /// Restarts the hub process (after a kill) and waits for its API.
    pub async fn restart_hub(&mut self) {
        self.hub.spawn();
        self.api = wait_for_api_after(&self.hub, self.api_count()).await;
        self.wait_serving("cim-hub").await;
    }

    fn api_count(&self) -> usize {
        self.hub.log().matches("serving the HTTP API on ").count()
    }

    /// The hub's NATS API.
    pub fn client(&self) -> cim_hub_api::Client {
        cim_hub_api::Client::new(self.nats.clone(), TIMEOUT)
    }

    /// A new token with `scope`.
    pub async fn token(&self, scope: Scope) -> String {
        let request =
            CreateToken { name: format!("test {scope}"), scope, rate_per_sec: Some(10_000), burst: Some(10_000) };
        self.client().create_token(&request).await.expect("create a token").token
    }

    /// `url` under the API.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// Waits until `name` answers `$SRV.PING`.
    pub async fn wait_serving(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.nats.request(format!("$SRV.PING.{name}"), "".into()).await.is_err() {
            assert!(Instant::now() < deadline, "{name} does not answer $SRV.PING; hub log:\n{}", self.hub.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the IUS has registered its built-in kinds.
    async fn wait_kinds(&self) {
        let ius = cim_ius_api::Client::new(self.nats.clone(), TIMEOUT);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if ius.kinds().await.is_ok_and(|k| k.kinds.iter().any(|k| k.kind == "text-document")) {
                return;
            }
            assert!(Instant::now() < deadline, "the IUS did not register its kinds");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Provisions `server` as cim-provision.service does: the components only
/// attach to their streams and buckets.
pub async fn provision(server: &NatsServer) {
    let deployment = cim_deploy::Deployment::embedded().expect("components.toml");
    cim_deploy::provision::provision(server.connect().await, &cim_store::StoreConfig::default(), &deployment)
        .await
        .expect("provisioning");
}

/// `[hub]`: [`TEST_HUB`] with the keys `extra` sets replaced.
fn hub_section(extra: &str) -> String {
    let key = |line: &str| line.split('=').next().unwrap_or_default().trim().to_owned();
    let overridden: Vec<String> = extra.lines().map(key).collect();
    let mut lines: Vec<&str> = TEST_HUB.lines().filter(|l| !overridden.contains(&key(l))).collect();
    lines.extend(extra.lines());
    lines.join("\n")
}

async fn wait_for_api(hub: &ServiceProcess) -> String {
    wait_for_api_after(hub, 0).await
}

/// The API's URL from the hub's log line, once there are more than `seen`.
async fn wait_for_api_after(hub: &ServiceProcess, seen: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = hub.log();
        if log.matches("serving the HTTP API on ").count() > seen {
            let line =
                log.rmatch_indices("serving the HTTP API on ").next().map(|(i, _)| &log[i..]).unwrap_or_default();
            let url = line["serving the HTTP API on ".len()..].split_whitespace().next().unwrap_or_default();
            return url.trim_end_matches(|c: char| !c.is_ascii_digit()).to_owned();
        }
        assert!(Instant::now() < deadline, "the hub did not start its API; log:\n{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A response's body as JSON, asserting its status.
pub async fn json(response: reqwest::Response, status: u16) -> serde_json::Value {
    let actual = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let text = response.text().await.expect("a body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    if actual >= 400 {
        assert_eq!(content_type, "application/problem+json", "errors are problem+json: {text}");
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

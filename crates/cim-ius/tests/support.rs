//! Processes of the two services, started from config files.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cim_ius_api::Client;
use cim_registry_api::ComponentQuery;
use cim_test_support::{NatsServer, ServiceProcess as Service, service_config, workspace_binary};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The cim-ius binary of this test build.
pub fn ius_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cim-ius"))
}

/// The cim-registry binary, built on first use.
pub fn registry_binary() -> PathBuf {
    workspace_binary("cim-registry", "cim-registry")
}

/// Provisions `server` as cim-provision.service does: the components only
/// attach to the streams and buckets.
pub async fn provision(server: &NatsServer) {
    let deployment = cim_deploy::Deployment::embedded().expect("components.toml");
    cim_deploy::provision::provision(server.connect().await, &cim_store::StoreConfig::default(), &deployment)
        .await
        .expect("provisioning");
}

/// A server with a registry and one IUS instance, all started and registered.
pub struct Stack {
    pub server: NatsServer,
    pub dir: tempfile::TempDir,
    pub registry: Service,
    pub ius: Vec<Service>,
    pub client: async_nats::Client,
}

impl Stack {
    pub async fn start(ius_instances: usize) -> Self {
        let server = NatsServer::start().await;
        provision(&server).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = Service::start(
            registry_binary(),
            dir.path(),
            "registry",
            &service_config(&server, "r1", "[registry]\ncomponent_ttl_secs = 3\n"),
        );
        let client = server.connect().await;
        let mut stack = Self { server, dir, registry, ius: Vec::new(), client };
        for index in 0..ius_instances {
            stack.add_ius(&format!("ius{index}")).await;
        }
        stack
    }

    pub async fn add_ius(&mut self, instance: &str) {
        let config = service_config(&self.server, instance, "[ius]\nmax_unit_bytes = 8192\n");
        self.ius.push(Service::start(ius_binary(), self.dir.path(), instance, &config));
        self.wait_registered("cim-ius", instance).await;
    }

    pub fn ius_client(&self) -> Client {
        Client::new(self.client.clone(), TIMEOUT)
    }

    pub fn registry_client(&self) -> cim_registry_api::Client {
        cim_registry_api::Client::new(self.client.clone(), TIMEOUT)
    }

    /// Waits until an instance of `name` answers `$SRV.PING`. After a
    /// restart this is the signal to use: the killed instance stays listed
    /// in the registry until its entry expires, before the new one serves.
    pub async fn wait_serving(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.client.request(format!("$SRV.PING.{name}"), "".into()).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "{name} does not answer $SRV.PING; logs:\n{}",
                self.ius.iter().map(Service::log).collect::<String>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `name`/`instance` is in the registry.
    pub async fn wait_registered(&self, name: &str, instance: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let listed = self
                .registry_client()
                .components(&ComponentQuery { name: Some(name.to_owned()), capability: None })
                .await;
            if listed.is_ok_and(|l| l.components.iter().any(|c| c.registration.instance_id == instance)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name}/{instance} did not register; registry log:\n{}\nlogs:\n{}",
                self.registry.log(),
                self.ius.iter().map(Service::log).collect::<String>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

//! Processes of the two services, started from config files.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cim_ius::Client;
use cim_registry::api::ComponentQuery;
use cim_test_support::NatsServer;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The cim-ius binary of this test build.
pub fn ius_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cim-ius"))
}

/// The cim-registry binary, built next to cim-ius on first use.
pub fn registry_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let ius = ius_binary();
            let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
            command.args(["build", "--quiet", "-p", "cim-registry", "--bin", "cim-registry"]);
            if ius.parent().and_then(Path::file_name).is_some_and(|dir| dir == "release") {
                command.arg("--release");
            }
            let status = command.status().expect("run cargo build for cim-registry");
            assert!(status.success(), "building cim-registry failed: {status}");
            let path = ius.with_file_name("cim-registry");
            assert!(path.is_file(), "{} is missing after the build", path.display());
            path
        })
        .clone()
}

/// One service process, killed on drop.
pub struct Service {
    pub child: Option<Child>,
    binary: PathBuf,
    config: PathBuf,
    log: PathBuf,
}

impl Service {
    /// Starts `binary` with a config file holding `config` (written to `dir`).
    pub fn start(binary: PathBuf, dir: &Path, name: &str, config: &str) -> Self {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).expect("write config");
        let mut service = Self { child: None, binary, config: path, log: dir.join(format!("{name}.log")) };
        service.spawn();
        service
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open log");
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .env_remove("CIM_NATS_SERVER")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn service");
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }

    /// SIGTERM, then the exit status (panics after `TIMEOUT`).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within {TIMEOUT:?} of SIGTERM; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The config file of a service on `server`.
pub fn config(server: &NatsServer, instance: &str, extra: &str) -> String {
    format!(
        "[nats]\nurl = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[log]\nlevel = \"info\"\n\n[runtime]\ninstance_id = \"{instance}\"\nheartbeat_secs = 1\nshutdown_grace_secs = 10\n\n{extra}\n",
        server.url()
    )
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
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = Service::start(
            registry_binary(),
            dir.path(),
            "registry",
            &config(&server, "r1", "[registry]\ncomponent_ttl_secs = 3\n"),
        );
        let client = server.connect().await;
        let mut stack = Self { server, dir, registry, ius: Vec::new(), client };
        for index in 0..ius_instances {
            stack.add_ius(&format!("ius{index}")).await;
        }
        stack
    }

    pub async fn add_ius(&mut self, instance: &str) {
        let config = config(&self.server, instance, "[ius]\nmax_unit_bytes = 8192\n");
        self.ius.push(Service::start(ius_binary(), self.dir.path(), instance, &config));
        self.wait_registered("cim-ius", instance).await;
    }

    pub fn ius_client(&self) -> Client {
        Client::new(self.client.clone(), TIMEOUT)
    }

    pub fn registry_client(&self) -> cim_registry::Client {
        cim_registry::Client::new(self.client.clone(), TIMEOUT)
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

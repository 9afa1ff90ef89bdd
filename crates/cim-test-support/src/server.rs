//! One nats-server process: start, kill, stop, restart.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use cim_nats_server::{ClusterConfig, Health, START_TIMEOUT, Server, ServerConfig};
use tempfile::TempDir;

use crate::binary::nats_server;

const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `nats-server` with JetStream on 127.0.0.1, killed on drop.
///
/// Its configuration file, log (stdout and stderr) and, unless
/// [`NatsServerBuilder::store_dir`] was given, its JetStream store live in a
/// temporary directory that is removed on drop.
#[derive(Debug)]
pub struct NatsServer {
    // Declared before `dir`, so the process is killed before its directory goes.
    server: Server,
    /// Removed on drop.
    _dir: TempDir,
}

impl NatsServer {
    /// Starts a durable server (`sync_interval: always`) with a fresh store.
    ///
    /// # Panics
    /// If the server does not become healthy; the message includes its log.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// A builder for servers with other settings.
    pub fn builder() -> NatsServerBuilder {
        NatsServerBuilder::default()
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port())
    }

    /// The client port; it stays the same across [`restart`](Self::restart)s.
    pub fn port(&self) -> u16 {
        self.server.config().client_port.expect("ports are known once the server has started")
    }

    /// `http://127.0.0.1:PORT` of the monitoring endpoints (`/varz`, `/jsz`, …).
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port())
    }

    /// The monitoring port; it stays the same across restarts.
    pub fn monitor_port(&self) -> u16 {
        self.server.config().monitor_port.expect("ports are known once the server has started")
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> &Path {
        &self.server.config().store_dir
    }

    /// A client connected to this server.
    ///
    /// # Panics
    /// If the connection fails.
    pub async fn connect(&self) -> async_nats::Client {
        let url = self.url();
        async_nats::connect(&url).await.unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
    }

    /// Whether the process is still alive (it may have been killed or crashed).
    pub fn is_running(&mut self) -> bool {
        self.server.is_running()
    }

    /// Kills the process with SIGKILL, as a crash or power loss would (though
    /// the kernel still writes out what the server had handed it). The process
    /// is gone when this returns. Does nothing if it is not running.
    pub fn kill(&mut self) {
        self.server.kill().expect("SIGKILL nats-server");
    }

    /// Stops the process gracefully (SIGTERM) and waits for it to exit.
    ///
    /// # Panics
    /// If it has not exited within 30 s (it is killed first).
    pub async fn stop(&mut self) {
        self.server.stop(STOP_TIMEOUT).await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the server again on the same ports with the same store and
    /// configuration, and waits until it is healthy. A running server is
    /// [`stop`](Self::stop)ped first.
    ///
    /// # Panics
    /// If it does not become healthy.
    pub async fn restart(&mut self) {
        self.stop().await;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.launch().await {
                Ok(()) => return,
                // Another socket may hold one of the ports for a moment.
                Err(e) if e.addr_in_use && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Spawns the process and waits until it passes the JetStream health check.
    pub(crate) async fn launch(&mut self) -> Result<(), StartError> {
        self.spawn();
        self.wait_ready().await
    }

    pub(crate) fn spawn(&mut self) {
        self.server.spawn().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Waits for the process to announce its ports, then to be healthy.
    pub(crate) async fn wait_ready(&mut self) -> Result<(), StartError> {
        Ok(self.server.wait_ready(Instant::now() + START_TIMEOUT).await?)
    }

    pub(crate) async fn wait_healthy(&mut self, health: Health, deadline: Instant) -> Result<(), StartError> {
        Ok(self.server.wait_healthy(health, deadline).await?)
    }
}

/// Settings for a [`NatsServer`]; see [`NatsServer::builder`].
#[derive(Debug, Clone)]
pub struct NatsServerBuilder {
    durable: bool,
    store_dir: Option<std::path::PathBuf>,
    max_payload: Option<usize>,
    config_extra: String,
    server_name: Option<String>,
    cluster: Option<ClusterConfig>,
}

impl Default for NatsServerBuilder {
    fn default() -> Self {
        Self {
            durable: true,
            store_dir: None,
            max_payload: None,
            config_extra: String::new(),
            server_name: None,
            cluster: None,
        }
    }
}

impl NatsServerBuilder {
    /// Whether JetStream fsyncs before it acknowledges (`sync_interval:
    /// always`, the default here, as in CIM's own server configurations).
    /// `false` keeps nats-server's default of flushing every two minutes.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Keeps the JetStream store in `dir` rather than a fresh temporary one.
    /// The directory is left in place, so another server can open it later.
    pub fn store_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.store_dir = Some(dir.into());
        self
    }

    /// The largest message payload the server accepts, in bytes.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = Some(bytes);
        self
    }

    /// Raw configuration appended to the generated file, e.g. `accounts` with
    /// users and permissions. Calls accumulate.
    pub fn config_extra(mut self, config: &str) -> Self {
        self.config_extra.push_str(config);
        self.config_extra.push('\n');
        self
    }

    /// Starts the server and waits until it is healthy.
    ///
    /// # Panics
    /// If it does not become healthy; the message includes its log.
    pub async fn start(self) -> NatsServer {
        let mut server = self.build();
        server.launch().await.unwrap_or_else(|e| panic!("{e}"));
        server
    }

    pub(crate) fn cluster_member(mut self, server_name: String, cluster: ClusterConfig) -> Self {
        self.server_name = Some(server_name);
        self.cluster = Some(cluster);
        self
    }

    /// The server, not yet spawned.
    pub(crate) fn build(self) -> NatsServer {
        let dir = tempfile::Builder::new().prefix("cim-nats-").tempdir().expect("create a temporary directory");
        let config = ServerConfig {
            server_name: self.server_name,
            durable: self.durable,
            max_payload: self.max_payload,
            extra: self.config_extra,
            cluster: self.cluster,
            ..ServerConfig::new(self.store_dir.unwrap_or_else(|| dir.path().join("store")))
        };
        let server = Server::new(nats_server().clone(), config, dir.path()).unwrap_or_else(|e| panic!("{e}"));
        NatsServer { server, _dir: dir }
    }
}

/// Why a server did not come up, with the tail of its log.
#[derive(Debug)]
pub(crate) struct StartError {
    pub message: String,
    /// The server could not bind a port: worth retrying.
    pub addr_in_use: bool,
}

impl StartError {
    pub(crate) fn new(message: String) -> Self {
        Self { message, addr_in_use: false }
    }
}

impl From<cim_nats_server::Error> for StartError {
    fn from(error: cim_nats_server::Error) -> Self {
        Self { addr_in_use: error.is_addr_in_use(), message: error.to_string() }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

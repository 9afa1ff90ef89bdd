//! One nats-server process: start, kill, stop, restart.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::binary::nats_server;
use crate::config::{ClusterConfig, Config, Ports};
use crate::health::{Health, is_healthy};

/// Generous, because many tests start servers at once on a small machine.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
const LOG_TAIL_LINES: usize = 40;

/// A running `nats-server` with JetStream on 127.0.0.1, killed on drop.
///
/// Its configuration file, log (stdout and stderr) and, unless
/// [`NatsServerBuilder::store_dir`] was given, its JetStream store live in a
/// temporary directory that is removed on drop.
#[derive(Debug)]
pub struct NatsServer {
    config: Config,
    dir: TempDir,
    child: Option<Child>,
    ports: Ports,
    /// Length of the log when the current process was spawned, so that a
    /// failure shows this run's lines only.
    log_offset: u64,
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
        self.ports.client.expect("ports are known once the server has started")
    }

    /// `http://127.0.0.1:PORT` of the monitoring endpoints (`/varz`, `/jsz`, …).
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port())
    }

    /// The monitoring port; it stays the same across restarts.
    pub fn monitor_port(&self) -> u16 {
        self.ports.monitor.expect("ports are known once the server has started")
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> &Path {
        &self.config.store_dir
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
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills the process with SIGKILL, as a crash or power loss would (though
    /// the kernel still writes out what the server had handed it). The process
    /// is gone when this returns. Does nothing if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL nats-server");
            child.wait().expect("reap killed nats-server");
        }
    }

    /// Stops the process gracefully (SIGTERM) and waits for it to exit.
    ///
    /// # Panics
    /// If it has not exited within 30 s (it is killed first).
    pub async fn stop(&mut self) {
        // An exited process may already be reaped: its pid must not be signalled.
        if self.is_running()
            && let Some(pid) = self.child.as_ref().map(Child::id)
        {
            // std can only SIGKILL; nats-server itself can send any signal.
            let signal = tokio::process::Command::new(nats_server())
                .arg("--signal")
                .arg(format!("term={pid}"))
                .status()
                .await
                .expect("run nats-server --signal");
            assert!(signal.success(), "nats-server --signal term={pid} failed: {signal}");
            let deadline = Instant::now() + STOP_TIMEOUT;
            while self.is_running() {
                if Instant::now() >= deadline {
                    self.kill();
                    panic!("nats-server did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed it");
                }
                tokio::time::sleep(POLL).await;
            }
        }
        self.child = None;
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
        self.kill();
        let config_file = self.dir.path().join("nats.conf");
        fs::write(&config_file, self.config.render(&self.ports_dir(), self.ports))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config_file.display()));
        let log_file = self.log_file();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_file)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log_file.display()));
        self.log_offset = log.metadata().map_or(0, |meta| meta.len());
        let stdout = log.try_clone().expect("duplicate log file handle");
        let child = Command::new(nats_server())
            .arg("-c")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", nats_server().display()));
        self.child = Some(child);
    }

    /// Waits for the process to announce its ports, then to be healthy.
    pub(crate) async fn wait_ready(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let pid = self.child.as_ref().map_or(0, Child::id);
        loop {
            self.check_running()?;
            if let Some(ports) = self.announced_ports(pid) {
                self.ports = ports;
                break;
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("did not announce its ports within {START_TIMEOUT:?}")));
            }
            tokio::time::sleep(POLL).await;
        }
        self.wait_healthy(Health::JetStream, deadline).await
    }

    pub(crate) async fn wait_healthy(&mut self, health: Health, deadline: Instant) -> Result<(), StartError> {
        loop {
            self.check_running()?;
            if is_healthy(self.monitor_port(), health).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("did not pass the {health:?} health check in time")));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn check_running(&mut self) -> Result<(), StartError> {
        if self.is_running() { Ok(()) } else { Err(self.failure("exited during start-up")) }
    }

    /// The ports from the file that nats-server writes once it listens
    /// (`<executable>_<pid>.ports`).
    fn announced_ports(&self, pid: u32) -> Option<Ports> {
        let suffix = format!("_{pid}.ports");
        let file = fs::read_dir(self.ports_dir())
            .ok()?
            .flatten()
            .find(|entry| entry.file_name().to_string_lossy().ends_with(&suffix))?;
        let json: serde_json::Value = serde_json::from_slice(&fs::read(file.path()).ok()?).ok()?;
        // {"nats":["nats://127.0.0.1:4222"],"monitoring":["http://127.0.0.1:8222"],...}
        let port = |key: &str| -> Option<u16> { json[key][0].as_str()?.rsplit(':').next()?.parse().ok() };
        Some(Ports { client: Some(port("nats")?), monitor: Some(port("monitoring")?) })
    }

    fn failure(&self, what: &str) -> StartError {
        let tail = self.log_tail();
        StartError {
            addr_in_use: tail.contains("address already in use"),
            message: format!(
                "nats-server ({}) {what}; last lines of {}:\n{tail}",
                self.dir.path().join("nats.conf").display(),
                self.log_file().display()
            ),
        }
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(self.log_file()) {
            // A failed read leaves what we have; this only decorates a panic.
            let _ = file.seek(SeekFrom::Start(self.log_offset)).and_then(|_| file.read_to_string(&mut text));
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("nats.log")
    }

    fn ports_dir(&self) -> PathBuf {
        self.dir.path().join("ports")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Best effort: panicking in drop would abort a test already unwinding.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Settings for a [`NatsServer`]; see [`NatsServer::builder`].
#[derive(Debug, Clone)]
pub struct NatsServerBuilder {
    durable: bool,
    store_dir: Option<PathBuf>,
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
    pub fn store_dir(mut self, dir: impl Into<PathBuf>) -> Self {
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
        fs::create_dir(dir.path().join("ports")).expect("create the ports directory");
        let config = Config {
            server_name: self.server_name,
            durable: self.durable,
            store_dir: self.store_dir.unwrap_or_else(|| dir.path().join("store")),
            max_payload: self.max_payload,
            extra: self.config_extra,
            cluster: self.cluster,
        };
        NatsServer { config, dir, child: None, ports: Ports::default(), log_offset: 0 }
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

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

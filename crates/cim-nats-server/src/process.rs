//! One nats-server process: spawn, wait until healthy, kill, stop.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Binary, Error, Health, Result, ServerConfig, is_healthy};

/// How long [`Server::start`] waits for the server to become healthy:
/// generous, because many servers may start at once on a small machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
const LOG_TAIL_LINES: usize = 40;

/// A nats-server process with JetStream on 127.0.0.1, killed on drop.
///
/// Its configuration file (`nats.conf`), log (`nats.log`, stdout and stderr)
/// and ports file live in a run directory the caller chooses; the JetStream
/// store lives wherever [`ServerConfig::store_dir`] says.
#[derive(Debug)]
pub struct Server {
    binary: Binary,
    config: ServerConfig,
    run_dir: PathBuf,
    child: Option<Child>,
    /// Length of the log when the current process was spawned, so that a
    /// failure shows this run's lines only.
    log_offset: u64,
}

impl Server {
    /// A server that is not running yet; creates `run_dir` if needed.
    pub fn new(binary: Binary, config: ServerConfig, run_dir: impl Into<PathBuf>) -> Result<Self> {
        let run_dir = run_dir.into();
        let ports_dir = run_dir.join("ports");
        fs::create_dir_all(&ports_dir).map_err(Error::io("create", &ports_dir))?;
        Ok(Self { binary, config, run_dir, child: None, log_offset: 0 })
    }

    /// Spawns the process and waits until it passes the JetStream health
    /// check, for at most [`START_TIMEOUT`].
    pub async fn start(&mut self) -> Result<()> {
        self.spawn()?;
        self.wait_ready(Instant::now() + START_TIMEOUT).await
    }

    /// Writes the configuration file and spawns the process (killing a
    /// running one first) without waiting for it; see [`Server::wait_ready`].
    pub fn spawn(&mut self) -> Result<()> {
        self.kill().map_err(Error::io("kill the previous process of", self.binary.path()))?;
        let config_file = self.config_file();
        fs::write(&config_file, self.config.render(&self.ports_dir()))
            .map_err(Error::io("write the configuration file", &config_file))?;
        let log_file = self.log_file();
        let log = OpenOptions::new().create(true).append(true).open(&log_file).map_err(Error::io("open", &log_file))?;
        self.log_offset = log.metadata().map_or(0, |meta| meta.len());
        let stdout = log.try_clone().map_err(Error::io("duplicate the handle of", &log_file))?;
        // A ports file left by an earlier process must not be mistaken for this one's.
        let _ = fs::remove_dir_all(self.ports_dir());
        fs::create_dir_all(self.ports_dir()).map_err(Error::io("create", self.ports_dir()))?;
        // Its own process group: Ctrl-C in a terminal reaches the owner, which
        // then stops the server in order, rather than both at once.
        let child = Command::new(self.binary.path())
            .process_group(0)
            .arg("-c")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .map_err(Error::io("start", self.binary.path()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits for the process to announce its ports, then to pass the
    /// JetStream health check. The announced ports are kept, so a restart
    /// listens on the same ones.
    pub async fn wait_ready(&mut self, deadline: Instant) -> Result<()> {
        let pid = self.pid().unwrap_or(0);
        loop {
            self.check_running()?;
            if let Some((client, monitor)) = self.announced_ports(pid) {
                self.config.client_port = Some(client);
                self.config.monitor_port = Some(monitor);
                break;
            }
            if Instant::now() >= deadline {
                return Err(self.failure("did not announce its ports in time"));
            }
            tokio::time::sleep(POLL).await;
        }
        self.wait_healthy(Health::JetStream, deadline).await
    }

    /// Waits until the server passes `health`.
    pub async fn wait_healthy(&mut self, health: Health, deadline: Instant) -> Result<()> {
        let port = self.config.monitor_port.ok_or_else(|| self.failure("has no known monitoring port"))?;
        loop {
            self.check_running()?;
            if is_healthy(port, health).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("did not pass the {health:?} health check in time")));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `nats://127.0.0.1:PORT`, once the port is known.
    pub fn url(&self) -> Option<String> {
        self.config.client_port.map(|port| format!("nats://127.0.0.1:{port}"))
    }

    /// `http://127.0.0.1:PORT` of the monitoring endpoints, once known.
    pub fn monitor_url(&self) -> Option<String> {
        self.config.monitor_port.map(|port| format!("http://127.0.0.1:{port}"))
    }

    /// The configuration, with the ports filled in once announced.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The binary it runs.
    pub fn binary(&self) -> &Binary {
        &self.binary
    }

    /// The process id, while a process has been spawned.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still alive (it may have been killed or crashed).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills the process with SIGKILL, as a crash or power loss would (though
    /// the kernel still writes out what the server had handed it). The process
    /// is gone when this returns. Does nothing if none was spawned.
    pub fn kill(&mut self) -> std::io::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Stops the process gracefully: SIGTERM, then waits up to `timeout` for
    /// it to exit (it flushes and closes its store). If it has not, it is
    /// killed and [`Error::StopTimeout`] returned.
    pub async fn stop(&mut self, timeout: Duration) -> Result<()> {
        // An exited process may already be reaped: its pid must not be signalled.
        if self.is_running()
            && let Some(pid) = self.pid()
        {
            // std can only SIGKILL, and this workspace has no unsafe code for
            // kill(2); nats-server itself can send any signal to a pid.
            let signal = tokio::process::Command::new(self.binary.path())
                .arg("--signal")
                .arg(format!("term={pid}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .map_err(Error::io("run --signal with", self.binary.path()))?;
            let deadline = Instant::now() + timeout;
            while self.is_running() {
                if !signal.success() || Instant::now() >= deadline {
                    self.kill().map_err(Error::io("kill", self.binary.path()))?;
                    return Err(Error::StopTimeout { pid, timeout });
                }
                tokio::time::sleep(POLL).await;
            }
        }
        self.child = None;
        Ok(())
    }

    /// The configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.run_dir.join("nats.conf")
    }

    /// The log file (the server's stdout and stderr, appended across runs).
    pub fn log_file(&self) -> PathBuf {
        self.run_dir.join("nats.log")
    }

    /// The last lines the current process logged.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(self.log_file()) {
            // A failed read leaves what we have; this only decorates an error.
            let _ = file.seek(SeekFrom::Start(self.log_offset)).and_then(|_| file.read_to_string(&mut text));
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    fn check_running(&mut self) -> Result<()> {
        if self.is_running() { Ok(()) } else { Err(self.failure("exited during start-up")) }
    }

    /// The client and monitoring ports from the file that nats-server writes
    /// once it listens (`<executable>_<pid>.ports`).
    fn announced_ports(&self, pid: u32) -> Option<(u16, u16)> {
        let suffix = format!("_{pid}.ports");
        let file = fs::read_dir(self.ports_dir())
            .ok()?
            .flatten()
            .find(|entry| entry.file_name().to_string_lossy().ends_with(&suffix))?;
        let json: serde_json::Value = serde_json::from_slice(&fs::read(file.path()).ok()?).ok()?;
        // {"nats":["nats://127.0.0.1:4222"],"monitoring":["http://127.0.0.1:8222"],...}
        let port = |key: &str| -> Option<u16> { json[key][0].as_str()?.rsplit(':').next()?.parse().ok() };
        Some((port("nats")?, port("monitoring")?))
    }

    fn failure(&self, what: &str) -> Error {
        Error::Start {
            what: what.to_owned(),
            config: self.config_file(),
            log: self.log_file(),
            log_tail: self.log_tail(),
        }
    }

    fn ports_dir(&self) -> PathBuf {
        self.run_dir.join("ports")
    }

    /// The run directory (configuration, log, ports file).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Best effort: a server must never outlive its owner by accident.
        let _ = self.kill();
    }
}

//! The embedded nats-server on a data directory.
//!
//! Layout of the data directory:
//! - `jetstream/`: the JetStream store (the data);
//! - `run/`: the generated `nats.conf`, `nats.log` and the ports file;
//! - `cim.lock`: held (flock) by whichever process runs the server;
//! - `server.json`: written by `cim server` and `cim up` while they run, so
//!   other commands connect to them instead of starting their own (as the
//!   admin user named there, under `cim up`);
//! - `secrets/`, `components/`, `logs/`: `cim up`'s NATS passwords, the
//!   components' configuration files and their logs (see `up`).
//!
//! Only one server may use a store directory, so the lock decides: a command
//! that gets it starts a transient server and stops it when done; one that
//! does not connects to the `cim server` or `cim up` named in `server.json`,
//! or waits for the other command to finish.
//!
//! The servers without users (transient, `cim server`) and `cim up`'s (one
//! user per component and the admin) keep the store in the same (global)
//! NATS account, so each sees what the other wrote.

use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cim_nats_server::{BINARY_ENV, Binary, Health, Server, ServerConfig, is_healthy};
use serde::{Deserialize, Serialize};

use crate::output::Output;

/// How long a command waits for another command's transient server.
const LOCK_WAIT: Duration = Duration::from_secs(300);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// What `server.json` holds while `cim server` or `cim up` runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningServer {
    /// The client URL.
    pub url: String,
    /// The monitoring URL (`/healthz`, `/varz`, `/jsz`).
    pub monitor_url: String,
    /// Process id of `cim server`.
    pub pid: u32,
    /// Process id of its nats-server.
    pub nats_server_pid: u32,
    /// The data directory.
    pub data_dir: PathBuf,
    /// How other commands log in, when the server has users (`cim up`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
}

/// A NATS user and the file holding its password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password file (mode 0600).
    pub password_file: PathBuf,
}

/// The users of a server that has some (`cim up`'s): the `authorization`
/// block of its configuration and the admin's credentials for this process
/// and the commands that attach to it.
#[derive(Debug, Clone)]
pub struct Users {
    /// nats-server configuration text: `authorization { users: [...] }`,
    /// passwords as bcrypt hashes.
    pub authorization: String,
    /// The user other `cim` commands log in as.
    pub admin: Credentials,
}

impl RunningServer {
    fn monitor_port(&self) -> Option<u16> {
        self.monitor_url.rsplit(':').next()?.parse().ok()
    }
}

/// A nats-server this process started on a data directory, holding its lock.
#[derive(Debug)]
pub struct EmbeddedServer {
    server: Server,
    data_dir: PathBuf,
    admin: Option<Credentials>,
    // Released when dropped, after the server (declared first) is killed.
    _lock: File,
}

/// How a command reaches the embedded server.
#[derive(Debug)]
pub enum Attachment {
    /// A `cim server` is running on the data directory.
    Shared(RunningServer),
    /// This command started its own; stop it when done.
    Transient(Box<EmbeddedServer>),
}

/// Connects to the `cim server` on `data_dir`, or starts a transient server.
pub async fn attach(data_dir: &Path, nats_server: Option<&Path>, out: &Output) -> anyhow::Result<Attachment> {
    let lock = open_lock(data_dir)?;
    let deadline = Instant::now() + LOCK_WAIT;
    let mut said_waiting = false;
    loop {
        match lock.try_lock() {
            Ok(()) => {
                let _ = fs::remove_file(server_file(data_dir)); // left by a `cim server` that was killed
                let server = EmbeddedServer::start(data_dir, nats_server, lock, None, None).await?;
                return Ok(Attachment::Transient(Box::new(server)));
            }
            Err(TryLockError::WouldBlock) => {
                if let Some(running) = read_running(data_dir)
                    && let Some(port) = running.monitor_port()
                    && is_healthy(port, Health::JetStream).await
                {
                    return Ok(Attachment::Shared(running));
                }
            }
            Err(TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("cannot lock {}", lock_file(data_dir).display()));
            }
        }
        if Instant::now() >= deadline {
            bail!("another cim process has held {} for {LOCK_WAIT:?}; stop it or pass --data-dir", data_dir.display());
        }
        if !said_waiting {
            out.note(format!("waiting for another cim command that is using {} …", data_dir.display()));
            said_waiting = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Takes the data directory's lock for `cim server` or `cim up`; fails if
/// anything else holds it, naming the running server if there is one.
pub fn lock_for_server(data_dir: &Path) -> anyhow::Result<File> {
    let lock = open_lock(data_dir)?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(TryLockError::WouldBlock) => match read_running(data_dir) {
            Some(running) => {
                let what = if running.credentials.is_some() { "cim up" } else { "cim server" };
                bail!("{what} (pid {}) is already running on {} at {}", running.pid, data_dir.display(), running.url)
            }
            None => bail!("another cim command is using {}; try again when it has finished", data_dir.display()),
        },
        Err(TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("cannot lock {}", lock_file(data_dir).display()))
        }
    }
}

impl EmbeddedServer {
    /// Starts a durable server on the data directory, whose lock the caller
    /// holds; `client_port` fixes the client port; with `users`, only they
    /// may log in (its run directory, holding their hashes, is then 0700).
    pub async fn start(
        data_dir: &Path,
        nats_server: Option<&Path>,
        lock: File,
        client_port: Option<u16>,
        users: Option<Users>,
    ) -> anyhow::Result<Self> {
        let binary = find_binary(nats_server)?;
        let run_dir = data_dir.join("run");
        let (extra, admin) = match users {
            Some(Users { authorization, admin }) => {
                crate::up::secrets::private_dir(&run_dir)?;
                (authorization, Some(admin))
            }
            None => (String::new(), None),
        };
        let config = ServerConfig {
            server_name: Some("cim-embedded".to_owned()),
            client_port,
            extra,
            ..ServerConfig::new(data_dir.join("jetstream"))
        };
        let mut server = Server::new(binary, config, run_dir)?;
        server.start().await.context("cannot start the embedded nats-server")?;
        tracing::info!(url = server.url().unwrap_or_default(), data_dir = %data_dir.display(), "embedded nats-server started");
        Ok(Self { server, data_dir: data_dir.to_owned(), admin, _lock: lock })
    }

    /// The client URL.
    pub fn url(&self) -> String {
        self.server.url().unwrap_or_default()
    }

    /// What `server.json` says about this server.
    pub fn running(&self) -> RunningServer {
        RunningServer {
            url: self.url(),
            monitor_url: self.server.monitor_url().unwrap_or_default(),
            pid: std::process::id(),
            nats_server_pid: self.server.pid().unwrap_or_default(),
            data_dir: self.data_dir.clone(),
            credentials: self.admin.clone(),
        }
    }

    /// Publishes the server's address in `server.json` for other commands.
    pub fn advertise(&self) -> anyhow::Result<()> {
        let path = server_file(&self.data_dir);
        let json = serde_json::to_vec_pretty(&self.running())?;
        fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))
    }

    /// The server's log file.
    pub fn log_file(&self) -> PathBuf {
        self.server.log_file()
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.server.is_running()
    }

    /// The last lines the server logged in this run.
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }

    /// Stops the server gracefully (SIGTERM, SIGKILL after 30 s) and
    /// withdraws `server.json`; the lock is released when `self` is dropped.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = fs::remove_file(server_file(&self.data_dir));
        self.server.stop(STOP_TIMEOUT).await.context("stopping the embedded nats-server")
    }
}

/// The nats-server to embed: `$CIM_NATS_SERVER`, else `[embedded]
/// nats_server`, else `nats-server` next to the `cim` executable, else the
/// workspace's `.tools/venv` (for `cargo run` in a checkout), else `PATH`.
fn find_binary(configured: Option<&Path>) -> anyhow::Result<Binary> {
    let located = match configured {
        Some(path) if std::env::var_os(BINARY_ENV).is_none() => Binary::at(path),
        _ => {
            let mut candidates = Vec::new();
            if let Some(dir) = std::env::current_exe().ok().as_deref().and_then(Path::parent) {
                candidates.push(dir.join("nats-server"));
            }
            candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/nats-server"));
            Binary::locate(&candidates)
        }
    };
    located.context("the embedded server needs nats-server; or pass --nats URL to use a server you run")
}

fn open_lock(data_dir: &Path) -> anyhow::Result<File> {
    fs::create_dir_all(data_dir).with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let path = lock_file(data_dir);
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))
}

fn read_running(data_dir: &Path) -> Option<RunningServer> {
    serde_json::from_slice(&fs::read(server_file(data_dir)).ok()?).ok()
}

fn lock_file(data_dir: &Path) -> PathBuf {
    data_dir.join("cim.lock")
}

fn server_file(data_dir: &Path) -> PathBuf {
    data_dir.join("server.json")
}

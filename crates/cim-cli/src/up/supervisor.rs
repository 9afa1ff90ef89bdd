//! One component as a child process of `cim up`: started from its
//! configuration file with a free HTTP port, watched until its `/readyz`
//! answers, restarted with backoff when it dies, stopped with SIGTERM (and
//! SIGKILL after its grace) when `cim up` stops. Everything it sees goes to
//! `cim up` as [`Event`]s; this module prints nothing.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use cim_store::retry::Policy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Restarts: 0.5 s doubling to 30 s (with jitter); a component that keeps
/// dying for a day is given up.
const RESTARTS: Policy = Policy::new(Duration::from_millis(500), Duration::from_secs(30), Duration::from_secs(86_400));
/// A component that ran this long before dying is restarted as if for the first time.
const STABLE: Duration = Duration::from_secs(60);
/// How often `/readyz` is asked until it answers 200.
const READY_POLL: Duration = Duration::from_millis(100);
/// Beyond the component's own grace (in-flight requests), for deregistering
/// and closing its connection, before SIGKILL.
const EXIT_MARGIN: Duration = Duration::from_secs(5);

/// What to run and where.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The component's package: binary and micro service name.
    pub package: String,
    /// Its executable.
    pub binary: PathBuf,
    /// Its configuration file, written before every start.
    pub config_file: PathBuf,
    /// Its configuration without `[http] listen`, which each start adds.
    pub config: toml::Table,
    /// Where its stdout and stderr go (appended).
    pub log_file: PathBuf,
    /// Its `[runtime] shutdown_grace_secs`.
    pub grace: Duration,
}

/// What `cim up` wants of its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Keep them running.
    Run,
    /// SIGTERM, SIGKILL after their grace.
    Graceful,
    /// SIGKILL now (a second Ctrl-C).
    Now,
}

/// What happened to a component.
#[derive(Debug, Clone)]
pub enum Event {
    /// A process was started.
    Spawned { package: String, pid: u32 },
    /// It answered `/readyz`.
    Ready { package: String, pid: u32, http: String },
    /// It could not be started (no process).
    SpawnFailed { package: String, error: String, restart_in: Option<Duration> },
    /// It exited by itself; `restart_in: None`: given up.
    Exited {
        package: String,
        pid: u32,
        status: String,
        ran_for: Duration,
        last_line: String,
        restart_in: Option<Duration>,
    },
    /// It was stopped, by SIGTERM or, after the grace, SIGKILL.
    Stopped { package: String, pid: u32, signal: &'static str, status: String },
}

/// Runs the component until `stop` says otherwise (or it is given up).
pub async fn supervise(spec: Spec, events: mpsc::UnboundedSender<Event>, mut stop: watch::Receiver<Stop>) {
    let package = spec.package.clone();
    let mut restarts = RESTARTS.backoff();
    loop {
        if *stop.borrow() != Stop::Run {
            return;
        }
        let (mut child, pid, port) = match spawn(&spec) {
            Ok(started) => started,
            Err(error) => {
                let restart_in = restarts.next();
                let _ = events.send(Event::SpawnFailed {
                    package: package.clone(),
                    error: format!("{error:#}"),
                    restart_in,
                });
                if !pause(restart_in, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        let _ = events.send(Event::Spawned { package: package.clone(), pid });
        let started = Instant::now();
        let mut ready = false;
        let mut poll = tokio::time::interval(READY_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                () = until(&mut stop, |s| s != Stop::Run) => {
                    let (signal, status) = terminate(&mut child, pid, spec.grace + EXIT_MARGIN, &mut stop).await;
                    let _ = events.send(Event::Stopped { package, pid, signal, status: describe(status) });
                    return;
                }
                _ = poll.tick(), if !ready => {
                    if http_status(port, "/readyz").await == Some(200) {
                        ready = true;
                        let http = format!("http://127.0.0.1:{port}");
                        let _ = events.send(Event::Ready { package: package.clone(), pid, http });
                    }
                }
            }
        };
        let ran_for = started.elapsed();
        if ran_for >= STABLE {
            restarts = RESTARTS.backoff();
        }
        let restart_in = restarts.next();
        let last_line = last_line(&spec.log_file);
        let _ = events.send(Event::Exited {
            package: package.clone(),
            pid,
            status: describe(status.ok()),
            ran_for,
            last_line,
            restart_in,
        });
        if !pause(restart_in, &mut stop).await {
            return;
        }
    }
}

/// Writes the configuration with a free HTTP port and starts the process in
/// its own process group (a Ctrl-C in the terminal reaches `cim up` only,
/// which then stops the components in order), without the `CIM_*`
/// variables meant for `cim` (the runtime would read `CIM_NATS_URL` as its
/// `nats.url`).
fn spawn(spec: &Spec) -> anyhow::Result<(Child, u32, u16)> {
    let port = free_port()?;
    let mut config = spec.config.clone();
    let mut http = toml::Table::new();
    http.insert("listen".into(), format!("127.0.0.1:{port}").into());
    config.insert("http".into(), http.into());
    std::fs::write(&spec.config_file, toml::to_string(&config)?)
        .with_context(|| format!("cannot write {}", spec.config_file.display()))?;
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_file)
        .with_context(|| format!("cannot open {}", spec.log_file.display()))?;
    writeln!(log, "--- cim up: starting {} at {}", spec.package, cim_cid::Timestamp::now())?;
    let mut command = Command::new(&spec.binary);
    command
        .arg("--config")
        .arg(&spec.config_file)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .kill_on_drop(true)
        // Plain lines in the log file, no terminal colours.
        .env("NO_COLOR", "1");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CIM_") {
            command.env_remove(name);
        }
    }
    let child = command.spawn().with_context(|| format!("cannot start {}", spec.binary.display()))?;
    let pid = child.id().context("the process has no id")?;
    Ok((child, pid, port))
}

/// SIGTERM, then SIGKILL after `patience` or when `stop` becomes
/// [`Stop::Now`]; returns the signal that ended it and its status.
async fn terminate(
    child: &mut Child,
    pid: u32,
    patience: Duration,
    stop: &mut watch::Receiver<Stop>,
) -> (&'static str, Option<ExitStatus>) {
    let term = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw);
    if *stop.borrow() != Stop::Now
        && let Some(term) = term
        && rustix::process::kill_process(term, rustix::process::Signal::TERM).is_ok()
    {
        tokio::select! {
            status = tokio::time::timeout(patience, child.wait()) => {
                if let Ok(status) = status {
                    return ("SIGTERM", status.ok());
                }
            }
            () = until(stop, |s| s == Stop::Now) => {}
        }
    }
    let _ = child.start_kill();
    ("SIGKILL", child.wait().await.ok())
}

/// Waits `delay` unless asked to stop; false when there is nothing to wait
/// for (given up) or `cim up` stops.
async fn pause(delay: Option<Duration>, stop: &mut watch::Receiver<Stop>) -> bool {
    let Some(delay) = delay else { return false };
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = until(stop, |s| s != Stop::Run) => false,
    }
}

/// Returns once `stop` holds a value `wanted` accepts (or `cim up` is gone).
async fn until(stop: &mut watch::Receiver<Stop>, wanted: impl Fn(Stop) -> bool) {
    let _ = stop.wait_for(|s| wanted(*s)).await;
}

fn describe(status: Option<ExitStatus>) -> String {
    status.map_or_else(|| "unknown status".to_owned(), |status| status.to_string())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?.local_addr()?.port())
}

/// The HTTP status of `GET path` on 127.0.0.1:`port`, if it answers within a second.
pub async fn http_status(port: u16, path: &str) -> Option<u16> {
    let get = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await?;
        let mut head = [0u8; 32];
        let n = stream.read(&mut head).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..n]).into_owned())
    };
    let head = tokio::time::timeout(Duration::from_secs(1), get).await.ok()?.ok()?;
    // "HTTP/1.1 200 OK\r\n..."
    head.strip_prefix("HTTP/1.")?.split_whitespace().nth(1)?.parse().ok()
}

/// The last non-empty line of a log, from its last 4 KiB.
fn last_line(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let len = file.metadata().map_or(0, |m| m.len());
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(4096))).and_then(|_| file.read_to_end(&mut bytes));
    }
    String::from_utf8_lossy(&bytes)
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

//! The workspace's own service binaries (`cim-registry`, `cim-ius`, …) as
//! real processes for end-to-end tests: built by cargo on first use,
//! started from a config file, killed on drop.
//!
//! Cargo tells a test only where its own package's binaries are
//! (`CARGO_BIN_EXE_<name>`). [`workspace_binary`] builds another package's
//! binary with the same profile (a no-op when it is current) and takes its
//! path from cargo's own build report, so it works whatever the target
//! directory. It builds with the whole workspace's features (`--workspace`),
//! as `cargo build` at the root does: built with one package's features
//! (`-p`), every binary would need its own copy of the shared dependencies.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::NatsServer;

/// How long [`ServiceProcess::terminate`] waits for an exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The binary `bin` of workspace package `package`, built once per test
/// process with the profile of the running test (debug, release or a custom
/// one).
///
/// # Panics
/// If the build fails or cargo reports no such executable.
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    // Held during the build: concurrent tests wait for one build.
    let mut built = BUILT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(bin) {
        return path.clone();
    }
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command
        .current_dir(crate::workspace_root())
        .args(["build", "--quiet", "--message-format=json-render-diagnostics", "--workspace", "--bin", bin])
        .stderr(Stdio::inherit());
    match test_profile().as_deref() {
        None | Some("debug") => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    let output = command.output().unwrap_or_else(|e| panic!("cannot run cargo to build {bin}: {e}"));
    assert!(output.status.success(), "building {bin} ({package}) failed: {}", output.status);
    let path = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact" && message["target"]["name"] == bin)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo built no executable {bin} in {package}"));
    assert!(path.is_file(), "{} is missing after the build", path.display());
    built.insert(bin.to_owned(), path.clone());
    path
}

/// The profile directory the running executable lives in: a test's
/// (`<target>/<profile>/deps/<test>`) or a binary's (`<target>/<profile>/<bin>`).
fn test_profile() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?;
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir = dir.parent()?;
    }
    Some(dir.file_name()?.to_string_lossy().into_owned())
}

/// The configuration file of a service on `server`: its URL, an HTTP
/// endpoint on a free port, info logs, a fixed instance id, one-second
/// heartbeats; `extra` adds sections (e.g. `[store]`, `[ius]`).
pub fn service_config(server: &NatsServer, instance: &str, extra: &str) -> String {
    format!(
        "[nats]\nurl = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[log]\nlevel = \"info\"\n\n[runtime]\n\
         instance_id = \"{instance}\"\nheartbeat_secs = 1\nshutdown_grace_secs = 10\n\n{extra}\n",
        server.url()
    )
}

/// One service process started with `--config`, logging to a file beside
/// its config; killed on drop.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Option<Child>,
    binary: PathBuf,
    config: PathBuf,
    log: PathBuf,
}

impl ServiceProcess {
    /// Writes `config` to `<dir>/<name>.toml` and starts `binary` with it.
    ///
    /// # Panics
    /// If the file cannot be written or the process not spawned.
    pub fn start(binary: PathBuf, dir: &Path, name: &str, config: &str) -> Self {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).expect("write the service's config file");
        let mut service = Self { child: None, binary, config: path, log: dir.join(format!("{name}.log")) };
        service.spawn();
        service
    }

    /// Starts the process (again), appending to the same log.
    ///
    /// # Panics
    /// If it cannot be spawned.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open the log");
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .env_remove("CIM_NATS_SERVER")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash would; does nothing if it is not running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then the exit status.
    ///
    /// # Panics
    /// If it is not running, or has not exited within [`EXIT_TIMEOUT`].
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the service is running");
        let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the service") {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within {EXIT_TIMEOUT:?} of SIGTERM; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl ServiceProcess {
    /// The running process's id, e.g. to read its memory use from `/proc`.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

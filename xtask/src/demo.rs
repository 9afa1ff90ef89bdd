//! `cargo xtask demo`: the README's first command. Installs the pinned tools,
//! builds `cim` and every component of components.toml, starts the whole
//! stack with `cim up` on a fresh data directory under `.cim/`, waits until
//! the registry lists every component, runs `cim demo` on it (events,
//! objects, the registry and a unit), then stops the stack with SIGTERM.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};

use crate::cmd::run;
use crate::tools;

/// How long the stack may take to start: nats-server, the components, their registration.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `cim up` may take to stop (its components get 10 s, then SIGKILL).
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run_demo(root: &Path) -> Result<()> {
    tools::install(root)?;
    let packages: Vec<String> =
        cim_deploy::Deployment::embedded()?.components().values().map(|c| c.package.clone()).collect();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut build = Command::new(&cargo);
    build.args(["build", "--package", "cim-cli", "--bin", "cim"]).current_dir(root);
    for package in &packages {
        build.args(["--package", package]);
    }
    run(&mut build)?;
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).context("the clock is before 1970")?.as_secs();
    let data_dir = root.join(".cim").join(format!("demo-{seconds}"));
    let target = env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let cim = target.join("debug/cim");
    let nats_server = root.join(".tools/venv/bin/nats-server");
    let command = |args: &[&str]| {
        let mut command = Command::new(&cim);
        command
            .arg("--data-dir")
            .arg(&data_dir)
            .args(args)
            .env("CIM_NATS_SERVER", &nats_server)
            .env_remove("CIM_NATS_URL")
            .env_remove("CIM_CONFIG")
            .env_remove("CIM_DATA_DIR")
            .env_remove("CIM_NAMESPACE")
            .current_dir(root);
        command
    };

    println!("$ {} --data-dir {} up &", cim.display(), data_dir.display());
    let up = command(&["up"]).stdin(Stdio::null()).spawn().context("cannot start `cim up`")?;
    let mut stack = Stack { child: Some(up) };
    stack.wait_until_registered(&data_dir, &packages, || command(&["--json", "registry", "components"]))?;
    run(&mut command(&["demo"]))?;
    stack.stop()?;
    println!(
        "\nxtask: the demo's data is in {dir}; explore it with\n  {cim} --data-dir {dir} status\n\
         or run the whole stack on it again with\n  {cim} --data-dir {dir} up",
        dir = data_dir.display(),
        cim = cim.display()
    );
    Ok(())
}

/// `cim up` as a child: stopped with SIGTERM, also when the demo fails.
struct Stack {
    child: Option<Child>,
}

impl Stack {
    /// Waits until `cim up` has published its server (`server.json`) and the
    /// registry lists every package; fails if `cim up` exits first.
    fn wait_until_registered(
        &mut self,
        data_dir: &Path,
        packages: &[String],
        mut list: impl FnMut() -> Command,
    ) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let server_file: PathBuf = data_dir.join("server.json");
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!("`cim up` exited ({status}) before the stack was ready");
            }
            // Only once `cim up` holds the data directory: a command before
            // that would start a server of its own there.
            if server_file.is_file() {
                let output = list().stderr(Stdio::null()).output().context("cannot run `cim registry components`")?;
                let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
                let names: Vec<&str> = listed["components"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["registration"]["name"].as_str())
                    .collect();
                if output.status.success() && packages.iter().all(|p| names.contains(&p.as_str())) {
                    return Ok(());
                }
            }
            ensure!(Instant::now() < deadline, "the stack was not ready within {}s", START_TIMEOUT.as_secs());
            sleep(Duration::from_millis(300));
        }
    }

    /// SIGTERM, then waits for `cim up` to stop everything and exit 0.
    fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let pid = i32::try_from(child.id()).ok().and_then(rustix::process::Pid::from_raw).context("no pid")?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).context("cannot signal `cim up`")?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                ensure!(status.success(), "`cim up` failed to stop cleanly ({status})");
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("`cim up` did not stop within {}s of SIGTERM; killed it", STOP_TIMEOUT.as_secs());
            }
            sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!("xtask: {error:#}");
        }
    }
}

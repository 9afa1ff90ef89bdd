//! `cargo xtask demo`: the README's first command. Installs the pinned tools,
//! builds `cim` and every component of components.toml, starts the whole
//! stack with `cim up` on a fresh data directory under `.cim/`, waits until
//! the registry lists every component, runs `cim demo` on it (events,
//! objects, the registry and a unit), deploys the demo pipeline
//! (`cim pipelines put crates/cim-pipeline/pipelines/pdf-text.toml`),
//! attaches a PDF to a unit and waits for the text unit the engine makes of
//! it, shows its history and `cim dag ancestors` back to the attach, then
//! stops the stack with SIGTERM.

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
/// How long the engine may take to make the text unit of the attached PDF.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `cim up` may take to stop (its components get 10 s, then SIGKILL).
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run_demo(root: &Path) -> Result<()> {
    tools::install(root)?;
    let packages: Vec<String> =
        cim_deploy::Deployment::embedded()?.components().values().map(|c| c.package.clone()).collect();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut build = Command::new(&cargo);
    // Every component's binary has its package's name; built with the
    // workspace's features, as the tests build them.
    build.args(["build", "--workspace", "--bin", "cim"]).current_dir(root);
    for package in &packages {
        build.args(["--bin", package]);
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
    pdf_text_demo(&command)?;
    stack.stop()?;
    println!(
        "\nxtask: the demo's data is in {dir}; explore it with\n  {cim} --data-dir {dir} status\n\
         or run the whole stack on it again with\n  {cim} --data-dir {dir} up",
        dir = data_dir.display(),
        cim = cim.display()
    );
    Ok(())
}

/// The demo pipeline: a PDF attached to a unit becomes a text unit related
/// to it, whose creating event has the attach among its parents.
fn pdf_text_demo(command: &dyn Fn(&[&str]) -> Command) -> Result<()> {
    println!("\nxtask: the demo pipeline — a PDF attached to a unit becomes a text unit");
    run(&mut command(&["pipelines", "put", "crates/cim-pipeline/pipelines/pdf-text.toml"]))?;
    run(&mut command(&["units", "create", "pdf", "--id", "report", "--metadata", r#"{"title": "Quarterly report"}"#]))?;
    let attached =
        json(&mut command(&["--json", "units", "attach", "report", "crates/cim-pipeline/pipelines/sample.pdf"]))?;
    let attach_event = attached["committed"]["event_cid"].as_str().context("no event CID in the attach")?.to_owned();
    println!("xtask: attached as event {attach_event}; waiting for the engine's text unit …");
    let deadline = Instant::now() + PIPELINE_TIMEOUT;
    let text_unit = loop {
        let output = command(&["--json", "units", "list", "--kind", "text-document", "--tag", "extracted"])
            .output()
            .context("cannot run `cim units list`")?;
        let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        if let Some(id) = listed["units"].get(0).and_then(|u| u["id"].as_str()) {
            break id.to_owned();
        }
        ensure!(Instant::now() < deadline, "no text unit within {}s", PIPELINE_TIMEOUT.as_secs());
        sleep(Duration::from_millis(300));
    };
    run(&mut command(&["units", "list", "--kind", "text-document", "--tag", "extracted"]))?;
    run(&mut command(&["units", "show", &text_unit]))?;
    run(&mut command(&["units", "history", &text_unit]))?;
    let history = json(&mut command(&["--json", "units", "history", &text_unit]))?;
    let created = &history["events"][0];
    let parents: Vec<&str> =
        created["parents"].as_array().into_iter().flatten().filter_map(serde_json::Value::as_str).collect();
    ensure!(
        parents.contains(&attach_event.as_str()),
        "the text unit's creating event does not have the attach among its parents: {created}"
    );
    let created = created["cid"].as_str().context("no CID in the history")?;
    run(&mut command(&["dag", "ancestors", created]))?;
    run(&mut command(&["pipelines", "status"]))?;
    Ok(())
}

/// Prints `command`, runs it and parses what it printed as JSON.
fn json(command: &mut Command) -> Result<serde_json::Value> {
    println!("$ {}", crate::cmd::show(command));
    let output = command.stderr(Stdio::inherit()).output().context("cannot run cim")?;
    ensure!(output.status.success(), "cim failed ({})", output.status);
    serde_json::from_slice(&output.stdout).context("cim printed no JSON")
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

//! The configurations the NixOS modules render (`nix/eval/rendered/`, as
//! committed), checked by the real programs:
//!
//! 1. `cim-registry`/`cim-ius --check-config FILE --skip-file-checks`, the
//!    modules' own build-time check, and `cim config check` for the CLI's;
//! 2. NATS started from the host module's configuration (passwords added by
//!    the module's own jq filter), the registry and the IUS started from
//!    theirs — addresses and password files moved to this machine, nothing
//!    else changed — and then: both serve and register, a unit is written
//!    and verified, the server logged no permission violation, and the
//!    permission matrix of tests/permission-matrix.json holds.
//!
//! This is the nixosTest suites' permissions and components checks without
//! VMs or containers: what it cannot show is the systemd units, the
//! containers and their network.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use super::{RENDERED, output_of};
use crate::cmd;
use crate::cmd::on_path;

/// The component configurations and the binary that checks each.
const COMPONENTS: [(&str, &str, &str); 2] =
    [("cim-registry.toml", "cim-registry", "registry"), ("cim-ius.toml", "cim-ius", "ius")];

pub fn run(root: &Path) -> Result<()> {
    let rendered = root.join(RENDERED);
    ensure!(rendered.join("nats-base.json").is_file(), "{} is missing its files", rendered.display());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    cmd::run(
        Command::new(cargo)
            .args(["build", "--quiet", "-p", "cim-registry", "-p", "cim-ius", "-p", "cim-cli"])
            .current_dir(root),
    )?;
    let bin = |name: &str| root.join("target/debug").join(name);

    for (file, binary, _) in COMPONENTS {
        print!("nix: {RENDERED}/{file}: ");
        std::io::stdout().flush().ok();
        let out = output_of(
            Command::new(bin(binary)).arg("--check-config").arg(rendered.join(file)).arg("--skip-file-checks"),
        )?;
        print!("{out}");
    }

    let work = root.join("target/nix-check/live");
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("cannot clear {}", work.display()))?;
    }
    fs::create_dir_all(work.join("secrets")).with_context(|| format!("cannot create {}", work.display()))?;

    check_cli_configs(&bin("cim"), &rendered, &work)?;

    let nats_server = root.join(".tools/venv/bin/nats-server");
    let python = root.join(".tools/venv/bin/python");
    if !(nats_server.is_file() && python.is_file()) {
        println!("nix: live check SKIPPED: run `cargo xtask tools` for nats-server and nats-py in .tools/venv");
        return Ok(());
    }
    let mut live = Live::start(root, &rendered, &work, &nats_server, &python)?;
    live.check(&bin("cim"))
}

/// `cim config check` on the CLI configurations (password file moved to an
/// existing file).
fn check_cli_configs(cim: &Path, rendered: &Path, work: &Path) -> Result<()> {
    let password = work.join("secrets/cli-check");
    fs::write(&password, "x\n")?;
    for file in ["cim.toml", "cim-provision.toml"] {
        let mut config: toml::Table = toml::from_str(&fs::read_to_string(rendered.join(file))?)
            .with_context(|| format!("{RENDERED}/{file} is not TOML"))?;
        if let Some(toml::Value::Table(nats)) = config.get_mut("nats") {
            nats.insert("password_file".into(), toml::Value::String(password.display().to_string()));
        }
        let copy = work.join(file);
        fs::write(&copy, toml::to_string(&config)?)?;
        let output = Command::new(cim).args(["config", "check"]).arg(&copy).output().context("cannot run cim")?;
        if !output.status.success() {
            bail!("`cim config check` refuses {RENDERED}/{file}:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        println!("nix: {RENDERED}/{file}: `cim config check` accepts it");
    }
    Ok(())
}

/// Processes started for the live check, stopped on drop.
struct Live {
    children: Vec<(&'static str, Child)>,
    work: PathBuf,
    python: PathBuf,
    probe: PathBuf,
    nats_url: String,
    matrix: Value,
}

impl Drop for Live {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Live {
    fn start(root: &Path, rendered: &Path, work: &Path, nats_server: &Path, python: &Path) -> Result<Self> {
        let port = free_port()?;
        let monitor = free_port()?;
        let config = nats_config(rendered, work, port, monitor)?;
        let conf_path = work.join("nats.json");
        fs::write(&conf_path, serde_json::to_string_pretty(&config)?)?;
        output_of(Command::new(nats_server).arg("-c").arg(&conf_path).arg("-t"))
            .context("nats-server refuses the host module's configuration")?;
        let matrix: Value = serde_json::from_str(&fs::read_to_string(root.join("tests/permission-matrix.json"))?)
            .context("tests/permission-matrix.json")?;
        let mut live = Live {
            children: Vec::new(),
            work: work.to_owned(),
            python: python.to_owned(),
            probe: root.join("tests/probe/cim_nats_probe.py"),
            nats_url: format!("nats://127.0.0.1:{port}"),
            matrix,
        };
        live.spawn("nats-server", Command::new(nats_server).arg("-c").arg(&conf_path))?;
        wait_http(monitor, "/healthz?js-enabled-only=true", "NATS")?;
        println!("nix: NATS runs with the host module's configuration (JetStream, sync_interval always, users)");

        for (file, binary, user) in COMPONENTS {
            let http = free_port()?;
            live.spawn(
                binary,
                Command::new(root.join("target/debug").join(binary))
                    .arg("--config")
                    .arg(rendered.join(file))
                    .args(["--nats-url", &live.nats_url, "--http-listen", &format!("127.0.0.1:{http}")])
                    .arg("--set")
                    .arg(format!("nats.password_file={}", work.join("secrets").join(user).display())),
            )?;
            wait_http(http, "/readyz", binary)?;
            println!("nix: {binary} runs with {RENDERED}/{file} (address and password file moved here) and is ready");
        }
        Ok(live)
    }

    fn spawn(&mut self, name: &'static str, command: &mut Command) -> Result<()> {
        let log = fs::File::create(self.work.join(format!("{name}.log")))?;
        let child = command
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.children.push((name, child));
        Ok(())
    }

    /// A probe command as `user`; its stdout, or the error with its output.
    fn probe(&self, user: &str, args: &[&str]) -> Result<String> {
        output_of(
            Command::new(&self.python)
                .arg(&self.probe)
                .args(["--server", &self.nats_url, "--user", user, "--password-file"])
                .arg(self.work.join("secrets").join(user))
                .args(args),
        )
    }

    /// Retries a probe command for up to 30 s until `accept` likes its output.
    fn probe_until(&self, user: &str, args: &[&str], accept: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.probe(user, args) {
                Ok(out) if accept(&out) => return Ok(out),
                result if Instant::now() > deadline => {
                    bail!("probe {args:?} as {user} never gave the expected answer; last: {result:?}")
                }
                _ => sleep(Duration::from_millis(300)),
            }
        }
    }

    fn check(&mut self, cim: &Path) -> Result<()> {
        for service in ["cim-registry", "cim-ius"] {
            self.probe_until("admin", &["ping", service], |_| true)?;
        }
        self.probe_until("admin", &["request", "cim.service.registry.components.list", "{}"], |out| {
            out.contains("\"cim-ius\"") && out.contains("\"cim-registry\"")
        })?;
        println!("nix: both answer $SRV.PING and are registered with the registry");
        self.probe_until("admin", &["request", "cim.service.ius.kinds.list", "{}"], |out| {
            out.contains("text-document")
        })?;
        let unit = json!({"kind": "text-document", "id": "live-check", "content": {"text": "rendered configs work"}});
        let created: Value = serde_json::from_str(
            &self.probe("admin", &["request", "cim.service.ius.units.create", &unit.to_string()])?,
        )?;
        let verified: Value = serde_json::from_str(
            &self.probe("admin", &["request", "cim.service.ius.units.verify", r#"{"id": "live-check"}"#])?,
        )?;
        ensure!(verified["problems"] == json!([]), "the unit does not verify: {verified}");
        println!("nix: a unit was created through the IUS and verifies ({})", created["event_cid"]);
        self.cli(cim)?;

        let log = fs::read_to_string(self.work.join("nats-server.log"))?;
        let violations: Vec<&str> = log.lines().filter(|l| l.contains("Violation")).collect();
        ensure!(
            violations.is_empty(),
            "the components needed more than their permissions (modules/lib/permissions.nix):\n{}",
            violations.join("\n")
        );
        println!("nix: no permission violation while they started, registered and wrote a unit");

        let pairs = |key: &str| -> Vec<(String, String)> {
            self.matrix[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| (p[0].as_str().unwrap_or("").to_owned(), p[1].as_str().unwrap_or("").to_owned()))
                .collect()
        };
        let mut count = 0;
        for (key, command) in [
            ("denied_publish", "denied-publish"),
            ("denied_subscribe", "denied-subscribe"),
            ("allowed_publish", "allowed-publish"),
        ] {
            for (user, subject) in pairs(key) {
                self.probe(&user, &[command, &subject]).with_context(|| format!("{command} {subject} as {user}"))?;
                count += 1;
            }
        }
        println!("nix: the permission matrix holds ({count} checks of tests/permission-matrix.json)");
        self.probe("admin", &["ping", "cim-ius"]).context("the IUS stopped answering after the matrix")?;
        Ok(())
    }

    /// With a CLI that reads the admin's password: provisioning and verify.
    fn cli(&self, cim: &Path) -> Result<()> {
        let config = self.work.join("cim.toml");
        let mut table: toml::Table = toml::from_str(&fs::read_to_string(&config)?)?;
        if let Some(toml::Value::Table(nats)) = table.get_mut("nats") {
            nats.insert("url".into(), toml::Value::String(self.nats_url.clone()));
            nats.insert(
                "password_file".into(),
                toml::Value::String(self.work.join("secrets/admin").display().to_string()),
            );
        }
        fs::write(&config, toml::to_string(&table)?)?;
        output_of(Command::new(cim).arg("--config").arg(&config).arg("status"))
            .context("cim status (what cim-provision runs)")?;
        output_of(Command::new(cim).arg("--config").arg(&config).arg("verify")).context("cim verify")?;
        println!("nix: cim status (provisioning) and cim verify work as the admin user");
        Ok(())
    }
}

/// The host module's NATS configuration, moved to this machine: loopback,
/// free ports, a fresh store directory, generated passwords added by the
/// module's own jq filter (or the same in Rust without jq).
fn nats_config(rendered: &Path, work: &Path, port: u16, monitor: u16) -> Result<Value> {
    let base_path = rendered.join("nats-base.json");
    let mut base: Value = serde_json::from_str(&fs::read_to_string(&base_path)?).context("nats-base.json")?;
    base["host"] = json!("127.0.0.1");
    base["port"] = json!(port);
    base["http"] = json!(format!("127.0.0.1:{monitor}"));
    base["jetstream"]["store_dir"] = json!(work.join("jetstream").display().to_string());
    let account = base["accounts"]
        .as_object()
        .and_then(|accounts| accounts.keys().next().cloned())
        .context("nats-base.json has no account")?;
    let users: Vec<String> = base["accounts"][&account]["users"]
        .as_array()
        .context("the account has no users")?
        .iter()
        .filter_map(|u| u["user"].as_str().map(str::to_owned))
        .collect();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    for (i, user) in users.iter().enumerate() {
        // Not secret: a throw-away server on loopback.
        fs::write(work.join("secrets").join(user), format!("  pw-{user}-{nanos}-{i}\n"))?;
    }
    let local = work.join("nats-local-base.json");
    fs::write(&local, serde_json::to_string(&base)?)?;

    if on_path("jq") {
        let mut jq = Command::new("jq");
        jq.args(["--arg", "account", &account]);
        for user in &users {
            jq.args(["--rawfile", &format!("pw_{user}")]).arg(work.join("secrets").join(user));
        }
        jq.arg(fs::read_to_string(rendered.join("nats-passwords.jq"))?).arg(&local);
        let out = output_of(&mut jq).context("the module's password filter fails in jq")?;
        let config: Value = serde_json::from_str(&out)?;
        println!("nix: the module's password filter (nats-passwords.jq) added {} passwords with jq", users.len());
        Ok(config)
    } else {
        println!("nix: jq not found: adding the passwords in Rust instead of with nats-passwords.jq");
        for entry in base["accounts"][&account]["users"].as_array_mut().into_iter().flatten() {
            let user = entry["user"].as_str().unwrap_or_default().to_owned();
            entry["password"] = json!(fs::read_to_string(work.join("secrets").join(&user))?.trim());
        }
        Ok(base)
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits up to 60 s for `GET path` on 127.0.0.1:`port` to answer 200.
fn wait_http(port: u16, path: &str, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut reply = String::new();
            if stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).is_ok()
                && stream.read_to_string(&mut reply).is_ok()
                && reply.starts_with("HTTP/1.")
                && reply.split_whitespace().nth(1) == Some("200")
            {
                return Ok(());
            }
        }
        sleep(Duration::from_millis(200));
    }
    bail!("{what} did not answer 200 on http://127.0.0.1:{port}{path} within 60 s (logs in target/nix-check/live)")
}

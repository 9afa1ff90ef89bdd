//! The configurations the NixOS modules render (`nix/eval/rendered/`, as
//! committed), checked by the real programs:
//!
//! 1. each component's `<package> --check-config FILE --skip-file-checks`,
//!    the modules' own build-time check, and `cim config check` for the CLI's;
//! 2. the host module's build-time NATS check (`nats-check.sh`: the
//!    passwords added on placeholders, then `nats-server -t`) passes on its
//!    configuration and fails on a broken one;
//! 3. NATS started from the host module's configuration with the passwords
//!    added by the module's own start script (`nats-start.sh`: `cim
//!    nats-config`, bcrypt hashes — no password in plain text in the file),
//!    the store provisioned as cim-provision.service does (`cim provision`
//!    with its rendered file), every component of components.toml started
//!    from its file — addresses and password files moved to this machine,
//!    nothing else changed — and then: every user logs in with its password
//!    and no other, all serve and register, a unit is written and verified,
//!    the server logged no permission violation, every component user's
//!    checks of the permission matrix (nix/eval/rendered/permission-matrix.json,
//!    tests/permission-matrix.json expanded per component) hold and leave
//!    the store's streams exactly as they were (the message counts of the
//!    streams it reads compared before and after each attempt, every
//!    stream's configuration and the store's counts before and after each
//!    user's attempts, the admin's consumer on every stream still there), and the
//!    probe of the VM tests answers "no responders" and refusals clearly.
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

/// A component of components.toml, as the live check runs it.
#[derive(Debug, Clone)]
struct Component {
    /// Its rendered configuration, `<package>.toml`.
    file: String,
    /// The binary (= package, micro service name).
    binary: String,
    /// Its NATS user.
    user: String,
    /// The store's streams it reads: the permission matrix counts their
    /// messages before and after each of its attempts.
    reads: Vec<String>,
}

/// Every component of components.toml.
fn components() -> Result<Vec<Component>> {
    let deployment = cim_deploy::Deployment::embedded()?;
    let streams = deployment.streams(NAMESPACE)?;
    deployment
        .components()
        .values()
        .map(|c| {
            let reads = c
                .reads
                .iter()
                .map(|store| streams.get(store).cloned().with_context(|| format!("no stream for {store:?}")))
                .collect::<Result<_>>()?;
            Ok(Component {
                file: format!("{}.toml", c.package),
                binary: c.package.clone(),
                user: c.user.clone(),
                reads,
            })
        })
        .collect()
}

/// The store namespace the rendered configurations use.
const NAMESPACE: &str = "cim";

/// The durable consumer the admin creates on every stream before the
/// permission matrix, which the matrix's users try to delete and pause
/// (tests/permission-matrix.json).
const VICTIM: &str = "cim-matrix-victim";

pub fn run(root: &Path) -> Result<()> {
    let rendered = root.join(RENDERED);
    ensure!(rendered.join("nats-base.json").is_file(), "{} is missing its files", rendered.display());
    let components = components()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    // With the workspace's features, as the test runner builds them: no
    // second copy of the shared dependencies.
    build.args(["build", "--quiet", "--workspace", "--bin", "cim"]).current_dir(root);
    for component in &components {
        build.args(["--bin", &component.binary]);
    }
    cmd::run(&mut build)?;
    let bin = |name: &str| root.join("target/debug").join(name);

    for component in &components {
        print!("nix: {RENDERED}/{}: ", component.file);
        std::io::stdout().flush().ok();
        let out = output_of(
            Command::new(bin(&component.binary))
                .arg("--check-config")
                .arg(rendered.join(&component.file))
                .arg("--skip-file-checks"),
        )?;
        print!("{out}");
    }

    let work = root.join("target/nix-check/live");
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("cannot clear {}", work.display()))?;
    }
    fs::create_dir_all(work.join("secrets")).with_context(|| format!("cannot create {}", work.display()))?;

    check_cli_configs(&bin("cim"), &rendered, &work)?;
    let cim = bin("cim");

    let nats_server = root.join(".tools/venv/bin/nats-server");
    let python = root.join(".tools/venv/bin/python");
    if !(nats_server.is_file() && python.is_file()) {
        println!("nix: live check SKIPPED: run `cargo xtask tools` for nats-server and nats-py in .tools/venv");
        return Ok(());
    }
    let path = search_path(&[&root.join("target/debug"), nats_server.parent().unwrap_or(root)])?;
    check_nats_check(&rendered, &work, &path)?;
    let mut live = Live::start(root, &rendered, &work, &path, &components, &python, &cim)?;
    live.check(&cim)
}

/// PATH with `dirs` first: the module's scripts name `cim` and `nats-server`.
fn search_path(dirs: &[&Path]) -> Result<std::ffi::OsString> {
    let mut all: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    all.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    Ok(std::env::join_paths(all)?)
}

/// The host module's build-time NATS check (`nats-check.sh`) accepts its
/// configuration and refuses a broken one.
fn check_nats_check(rendered: &Path, work: &Path, path: &std::ffi::OsStr) -> Result<()> {
    let script = rendered.join("nats-check.sh");
    let run = |config: &Path| Command::new("sh").arg(&script).arg(config).env("PATH", path).output();
    let output = run(&rendered.join("nats-base.json")).context("cannot run nats-check.sh")?;
    ensure!(
        output.status.success(),
        "the module's build-time NATS check fails on its own configuration:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A broken subject in a user's permissions, as a bad rule of
    // components.toml could produce: nats-server must refuse it.
    let mut broken: Value = serde_json::from_str(&fs::read_to_string(rendered.join("nats-base.json"))?)?;
    let users = broken["accounts"]
        .as_object_mut()
        .and_then(|accounts| accounts.values_mut().next())
        .and_then(|account| account["users"].as_array_mut())
        .context("nats-base.json has no users")?;
    let allow = users
        .iter_mut()
        .find_map(|u| u["permissions"]["publish"]["allow"].as_array_mut())
        .context("no user with a publish allow list")?;
    allow.push(json!("cim.events..>"));
    let broken_path = work.join("nats-broken.json");
    fs::write(&broken_path, serde_json::to_string_pretty(&broken)?)?;
    let output = run(&broken_path).context("cannot run nats-check.sh")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        !output.status.success() && stderr.contains("is not a valid subject"),
        "the module's build-time NATS check accepts an invalid configuration ({}):\n{stderr}",
        output.status
    );
    println!(
        "nix: the module's build-time NATS check (nats-check.sh) passes on its configuration and refuses a broken one: {}",
        stderr.lines().find(|l| l.contains("not a valid subject")).unwrap_or("").trim()
    );
    Ok(())
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
    children: Vec<(String, Child)>,
    work: PathBuf,
    python: PathBuf,
    probe: PathBuf,
    nats_url: String,
    /// User -> the checks of the permission matrix.
    matrix: Value,
    components: Vec<Component>,
    users: Vec<String>,
    /// The store's streams, whose configuration and messages the matrix
    /// must leave as they are, and those of the components' buckets, whose
    /// configuration it must (their entries change with every heartbeat).
    streams: Vec<String>,
    bucket_streams: Vec<String>,
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
    fn start(
        root: &Path,
        rendered: &Path,
        work: &Path,
        path: &std::ffi::OsStr,
        components: &[Component],
        python: &Path,
        cim: &Path,
    ) -> Result<Self> {
        let port = free_port()?;
        let monitor = free_port()?;
        let (conf_path, users) = nats_config(rendered, work, path, port, monitor)?;
        let matrix: Value = serde_json::from_str(&fs::read_to_string(rendered.join("permission-matrix.json"))?)
            .with_context(|| format!("{RENDERED}/permission-matrix.json"))?;
        let deployment = cim_deploy::Deployment::embedded()?;
        let streams = deployment.streams(NAMESPACE)?.into_values().collect();
        let bucket_streams = deployment.buckets().values().map(|b| format!("KV_{}", b.bucket(NAMESPACE))).collect();
        let mut live = Live {
            children: Vec::new(),
            work: work.to_owned(),
            python: python.to_owned(),
            probe: root.join("tests/probe/cim_nats_probe.py"),
            nats_url: format!("nats://127.0.0.1:{port}"),
            matrix,
            components: components.to_vec(),
            users,
            streams,
            bucket_streams,
        };
        live.spawn("nats-server", Command::new("nats-server").env("PATH", path).arg("-c").arg(&conf_path))?;
        wait_http(monitor, "/healthz?js-enabled-only=true", "NATS")?;
        println!("nix: NATS runs with the host module's configuration (JetStream, sync_interval always, users)");

        // What cim-provision.service runs, with its file: the components
        // only attach to the streams and buckets it creates.
        let provision = live.cli_config(rendered, "cim-provision.toml")?;
        let out = output_of(Command::new(cim).arg("--config").arg(&provision).arg("provision"))
            .context("cim provision (what cim-provision.service runs)")?;
        print!("nix: cim provision with {RENDERED}/cim-provision.toml (url and password file moved here):\n{out}");

        // All at once: a component may wait for another to be ready (the
        // IUS for the registry).
        let mut ports = Vec::new();
        for component in components {
            let http = free_port()?;
            let config = local_tiers(rendered, work, &component.file)?;
            live.spawn(
                &component.binary,
                Command::new(root.join("target/debug").join(&component.binary))
                    .arg("--config")
                    .arg(&config)
                    .args(["--nats-url", &live.nats_url, "--http-listen", &format!("127.0.0.1:{http}")])
                    .arg("--set")
                    .arg(format!("nats.password_file={}", password_file(work, &component.user).display())),
            )?;
            ports.push(http);
        }
        for (component, http) in components.iter().zip(ports) {
            wait_http(http, "/readyz", &component.binary)?;
            println!(
                "nix: {} runs with {RENDERED}/{} (address and password file moved here) and is ready",
                component.binary, component.file
            );
        }
        Ok(live)
    }

    fn spawn(&mut self, name: &str, command: &mut Command) -> Result<()> {
        let log = fs::File::create(self.work.join(format!("{name}.log")))?;
        let child = command
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.children.push((name.to_owned(), child));
        Ok(())
    }

    /// A probe command as `user`; its stdout, or the error with its output.
    fn probe(&self, user: &str, args: &[&str]) -> Result<String> {
        output_of(&mut self.probe_command(user, &password_file(&self.work, user), args))
    }

    fn probe_command(&self, user: &str, password: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(&self.python);
        command.arg(&self.probe).args(["--server", &self.nats_url]);
        if !user.is_empty() {
            command.args(["--user", user, "--password-file"]).arg(password);
        }
        command.args(args);
        command
    }

    /// A probe command's exit code and stderr.
    fn probe_status(&self, user: &str, password: &Path, args: &[&str]) -> Result<(Option<i32>, String)> {
        let output = self.probe_command(user, password, args).output().context("cannot run the probe")?;
        Ok((output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned()))
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
        self.logins()?;
        for component in &self.components {
            self.probe_until("admin", &["ping", &component.binary], |_| true)?;
        }
        println!("nix: every component answers $SRV.PING");
        let names: Vec<String> = self.components.iter().map(|c| format!("\"{}\"", c.binary)).collect();
        self.probe_until("admin", &["request", "cim.service.registry.components.list", "{}"], |out| {
            names.iter().all(|name| out.contains(name.as_str()))
        })
        .context("registration (the components must register on their own pinned subject)")?;
        println!("nix: every component is registered with the registry");
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
        if self.components.iter().any(|c| c.binary == "cim-pipeline") {
            self.pipeline()?;
        }
        self.cli(cim)?;

        let log = fs::read_to_string(self.work.join("nats-server.log"))?;
        let violations: Vec<&str> = log.lines().filter(|l| l.contains("Violation")).collect();
        ensure!(
            violations.is_empty(),
            "the components needed more than their permissions (components.toml [permissions]):\n{}",
            violations.join("\n")
        );
        println!("nix: no permission violation while they started, registered and wrote a unit");

        self.permission_matrix()?;
        output_of(Command::new(cim).arg("--config").arg(self.work.join("cim.toml")).arg("verify"))
            .context("cim verify after the permission matrix")?;
        for component in &self.components {
            self.probe("admin", &["ping", &component.binary])
                .with_context(|| format!("{} stopped answering after the matrix", component.binary))?;
        }
        self.clear_answers()
    }

    /// The Pipeline Engine under its own user: a pipeline over the units
    /// runs through its durable consumer (created, pulled, acknowledged),
    /// appends an output, and a replay retires the replaced consumer (a
    /// consumer update; the engine may not delete consumers).
    fn pipeline(&self) -> Result<()> {
        let source = "name = \"live-check\"\n[trigger]\naggregate_types = [\"unit\"]\nstart = \"all\"\n\
                      [[stages]]\nname = \"pick\"\ntype = \"transform\"\njq = \"{cid: .cid}\"\n\
                      [[sinks]]\ntype = \"append\"\naggregate_type = \"derived\"\nevent_type = \"Seen\"\n";
        let put = json!({"source": source, "format": "toml"});
        self.probe("admin", &["request", "cim.service.pipeline.pipelines.put", &put.to_string()])?;
        let status = |accept: &dyn Fn(&Value) -> bool| {
            self.probe_until(
                "admin",
                &["request", "cim.service.pipeline.pipelines.status", r#"{"name": "live-check"}"#],
                |out| serde_json::from_str::<Value>(out).is_ok_and(|v| accept(&v["pipelines"][0])),
            )
        };
        status(&|p| p["outputs"].as_u64().is_some_and(|n| n >= 1) && p["consumer"]["lag"] == 0)
            .context("the live-check pipeline never ran (as the pipeline user)")?;
        println!("nix: a pipeline ran through its durable consumer and appended its output");
        let replay = json!({"name": "live-check", "sequence": 1});
        self.probe("admin", &["request", "cim.service.pipeline.pipelines.replay", &replay.to_string()])?;
        status(&|p| p["generation"] == 1 && p["duplicates"].as_u64().is_some_and(|n| n >= 1))
            .context("the replayed pipeline never caught up")?;
        let threshold = Duration::from_secs(60).as_nanos().to_string();
        self.probe_until("admin", &["request", "$JS.API.CONSUMER.INFO.CIM_EVENTS.pipeline-live-check-g0", ""], |out| {
            out.contains(&format!("\"inactive_threshold\":{threshold}")) || out.contains("consumer not found")
        })
        .context("the replaced consumer was not retired")?;
        println!("nix: a replay retired the replaced consumer (inactive threshold)");
        Ok(())
    }

    /// Each component user's checks of the permission matrix, over one
    /// connection: they all hold, the message counts of the streams it reads
    /// are the same after each attempt as before (the probe's `--watch`),
    /// every stream's configuration and the store's message counts are as
    /// they were after all of a user's attempts, and another user's consumer
    /// on every stream (the admin's `cim-matrix-victim`) is still there.
    fn permission_matrix(&self) -> Result<()> {
        let checks = self.matrix.as_object().context("the permission matrix is not user -> checks")?;
        let mut users: Vec<&String> = checks.keys().collect();
        let mut expected: Vec<&String> = self.components.iter().map(|c| &c.user).collect();
        users.sort();
        expected.sort();
        ensure!(users == expected, "the permission matrix has checks for {users:?}, the components are {expected:?}");
        let events = self.streams_state()?;
        let (_, messages) = &events[0];
        ensure!(*messages > Some(0), "the matrix must run against an event stream that holds events");
        self.matrix_can_fail(checks)?;
        // An object, so that the object stream's count is watched over
        // something to lose too.
        let object = self.work.join("matrix-object");
        fs::write(&object, "an object the permission matrix must leave alone\n")?;
        self.probe("admin", &["put-object", &format!("{NAMESPACE}-objects"), &object.display().to_string()])
            .context("an object before the permission matrix")?;
        let events = self.streams_state()?;
        for stream in self.streams.iter().chain(&self.bucket_streams) {
            let body = json!({"stream_name": stream, "config": {"durable_name": VICTIM, "ack_policy": "explicit"}});
            let created: Value = serde_json::from_str(&self.probe(
                "admin",
                &["request", &format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{VICTIM}"), &body.to_string()],
            )?)?;
            ensure!(created.get("error").is_none(), "cannot create {VICTIM} on {stream}: {created}");
        }
        let mut count = 0;
        for (user, list) in checks {
            let list = list.as_array().with_context(|| format!("{user}'s checks"))?;
            let component = self.components.iter().find(|c| &c.user == user).context("no component")?;
            let mut args = vec!["matrix".to_owned(), serde_json::to_string(list)?];
            for stream in &component.reads {
                args.extend(["--watch".to_owned(), stream.clone()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let before = self.streams_state()?;
            let out = self.probe(user, &args).with_context(|| format!("the permission matrix of {user}"))?;
            let after = self.streams_state()?;
            for ((stream, was), is) in self.streams.iter().chain(&self.bucket_streams).zip(&before).zip(&after) {
                ensure!(was == is, "{user}'s attempts changed the stream {stream}: {was:?} -> {is:?}");
            }
            println!("nix: {user}: {}", out.lines().last().unwrap_or(""));
            count += list.len();
        }
        for stream in self.streams.iter().chain(&self.bucket_streams) {
            let info: Value = serde_json::from_str(
                &self.probe("admin", &["request", &format!("$JS.API.CONSUMER.INFO.{stream}.{VICTIM}"), "{}"])?,
            )?;
            ensure!(info.get("error").is_none(), "the admin's consumer {VICTIM} on {stream} is gone: {info}");
            self.probe("admin", &["request", &format!("$JS.API.CONSUMER.DELETE.{stream}.{VICTIM}"), "{}"])?;
        }
        println!(
            "nix: the permission matrix holds ({count} checks of {RENDERED}/permission-matrix.json); \
             the streams' configurations and message counts ({:?} events) are unchanged, counted before and \
             after each attempt, and the admin's consumer {VICTIM} survived on every stream",
            events[0].1.unwrap_or(0)
        );
        Ok(())
    }

    /// The matrix's first stream update (the attack of issue 10: `max_msgs`
    /// 1), run by the admin — who may — on a scratch stream of 3 messages,
    /// through the same probe with `--watch`: the update goes through and
    /// the probe fails the check, naming the lost messages. So a component
    /// user let through would fail the matrix too.
    fn matrix_can_fail(&self, checks: &serde_json::Map<String, Value>) -> Result<()> {
        let update = checks
            .values()
            .filter_map(Value::as_array)
            .flatten()
            .find(|c| c["subject"].as_str().is_some_and(|s| s.starts_with("$JS.API.STREAM.UPDATE.")))
            .context("the permission matrix has no stream update")?;
        let (subject, body) = (update["subject"].as_str().unwrap_or(""), update["body"].as_str().unwrap_or(""));
        let stream = subject.trim_start_matches("$JS.API.STREAM.UPDATE.");
        let mut attack: Value = serde_json::from_str(body).with_context(|| format!("the body of {subject}"))?;
        let canary = "CIM_MATRIX_CANARY";
        attack["name"] = json!(canary);
        attack["subjects"] = json!(["cim-matrix-canary.>"]);
        let config = json!({"name": canary, "subjects": ["cim-matrix-canary.>"]});
        let created: Value = serde_json::from_str(
            &self.probe("admin", &["request", &format!("$JS.API.STREAM.CREATE.{canary}"), &config.to_string()])?,
        )?;
        ensure!(created.get("error").is_none(), "cannot create {canary}: {created}");
        for i in 0..3 {
            self.probe("admin", &["request", &format!("cim-matrix-canary.{i}"), "{}"])?;
        }
        let check = json!([{"check": "denied-publish", "subject": format!("$JS.API.STREAM.UPDATE.{canary}"),
            "body": attack.to_string(), "why": format!("{stream}'s attack, by the admin")}]);
        let output = self
            .probe_command(
                "admin",
                &password_file(&self.work, "admin"),
                &["matrix", &check.to_string(), "--watch", canary],
            )
            .output()
            .context("cannot run the probe")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        self.probe("admin", &["request", &format!("$JS.API.STREAM.DELETE.{canary}"), "{}"])?;
        ensure!(
            output.status.code() == Some(1) && stdout.contains(&format!("{canary}: 3 -> 1 messages")),
            "the matrix's update of {stream}, let through, must fail its check naming the lost messages \
             (exit {:?}):\n{stdout}",
            output.status.code()
        );
        println!(
            "nix: the matrix would catch a user let through: {subject}'s body, sent by the admin to a scratch \
             stream, fails its check ({})",
            stdout.lines().next().unwrap_or("").trim()
        );
        Ok(())
    }

    /// Each stream's configuration, and the message count of the store's
    /// streams (events first), as the admin reads them.
    fn streams_state(&self) -> Result<Vec<(Value, Option<u64>)>> {
        let mut state = Vec::new();
        for stream in self.streams.iter().chain(&self.bucket_streams) {
            let info: Value = serde_json::from_str(
                &self.probe("admin", &["request", &format!("$JS.API.STREAM.INFO.{stream}"), "{}"])?,
            )?;
            ensure!(info.get("error").is_none(), "no information on {stream}: {info}");
            let counted = self.streams.contains(stream);
            state.push((info["config"].clone(), if counted { info["state"]["messages"].as_u64() } else { None }));
        }
        Ok(state)
    }

    /// Every user logs in with its own password, with no other, and without
    /// a user nobody gets in (the probe's exit 4: authorization violation).
    fn logins(&self) -> Result<()> {
        let wrong = self.work.join("secrets/wrong");
        fs::write(&wrong, "not-the-password\n")?;
        for user in &self.users {
            self.probe(user, &["login"]).with_context(|| format!("{user} cannot log in with its password"))?;
            let (code, stderr) = self.probe_status(user, &wrong, &["login"])?;
            ensure!(code == Some(4), "{user} with a wrong password: exit {code:?}, not 4 (refused):\n{stderr}");
            for other in self.users.iter().filter(|o| *o != user) {
                let (code, _) = self.probe_status(user, &password_file(&self.work, other), &["login"])?;
                ensure!(code == Some(4), "{user} logs in with {other}'s password (exit {code:?})");
            }
        }
        let (code, stderr) = self.probe_status("", &wrong, &["login"])?;
        ensure!(code == Some(4), "a client without a user: exit {code:?}, not 4 (refused):\n{stderr}");
        println!(
            "nix: each of {} logs in with its password (bcrypt-hashed in the server's file) and no other's; no user, no login",
            self.users.join(", ")
        );
        Ok(())
    }

    /// The probe the VM tests use answers clearly, without a traceback, when
    /// nobody serves a subject or the server refuses its reply inbox.
    fn clear_answers(&self) -> Result<()> {
        // A request a component may make, with replies on a prefix it may
        // not subscribe to: refused (exit 5), naming the inbox.
        let (user, subject) = self
            .matrix
            .as_object()
            .into_iter()
            .flatten()
            .find_map(|(user, checks)| {
                let request = checks.as_array()?.iter().find(|c| c["check"] == "request")?;
                Some((user.as_str(), request["subject"].as_str()?))
            })
            .context("the permission matrix has no request")?;
        let cases: [(&str, Vec<&str>, i32, &str); 3] = [
            ("admin", vec!["ping", "cim-nobody"], 1, "only 0 of 1 cim-nobody instances answered"),
            ("admin", vec!["request", "cim.service.nobody.x", "{}"], 1, "no responders"),
            (user, vec!["--inbox-prefix", "_INBOX", "request", subject], 5, "subscription to \"_inbox."),
        ];
        for (user, args, expect, says) in cases {
            let (code, stderr) = self.probe_status(user, &password_file(&self.work, user), &args)?;
            ensure!(
                code == Some(expect) && stderr.contains(says) && !stderr.contains("Traceback"),
                "probe {args:?} as {user}: exit {code:?} (expected {expect}, saying “{says}”):\n{stderr}"
            );
        }
        println!("nix: the probe reports no responders and a refused reply inbox clearly (no traceback)");
        Ok(())
    }

    /// A rendered CLI configuration, `file`, moved to this machine (the
    /// server's URL, the admin's password file), written into the work
    /// directory; its path.
    fn cli_config(&self, rendered: &Path, file: &str) -> Result<PathBuf> {
        let mut table: toml::Table = toml::from_str(&fs::read_to_string(rendered.join(file))?)
            .with_context(|| format!("{RENDERED}/{file} is not TOML"))?;
        if let Some(toml::Value::Table(nats)) = table.get_mut("nats") {
            nats.insert("url".into(), toml::Value::String(self.nats_url.clone()));
            nats.insert(
                "password_file".into(),
                toml::Value::String(password_file(&self.work, "admin").display().to_string()),
            );
        }
        let config = self.work.join(file);
        fs::write(&config, toml::to_string(&table)?)?;
        Ok(config)
    }

    /// The operator's CLI (`cim-admin`'s file): status and verify.
    fn cli(&self, cim: &Path) -> Result<()> {
        let config = self.cli_config(&self.work, "cim.toml")?;
        output_of(Command::new(cim).arg("--config").arg(&config).arg("status")).context("cim status")?;
        output_of(Command::new(cim).arg("--config").arg(&config).arg("verify")).context("cim verify")?;
        println!("nix: cim status and cim verify work as the admin user with {RENDERED}/cim.toml");
        Ok(())
    }
}

/// A component's rendered file, or — when it names Storage Manager tiers
/// (`[storage.warm]`, `[storage.cold]`: S3 endpoints with key files that
/// exist only on the host) — a copy with each tier moved to a directory
/// tier under `work` (`file://…`, bucket `warm`/`cold`, no keys), nothing
/// else changed. The live check runs no S3 server: S3 itself is exercised
/// by the storage tests (SeaweedFS and s3s-fs), not here.
fn local_tiers(rendered: &Path, work: &Path, file: &str) -> Result<PathBuf> {
    let path = rendered.join(file);
    let mut table: toml::Table =
        toml::from_str(&fs::read_to_string(&path)?).with_context(|| format!("{RENDERED}/{file} is not TOML"))?;
    let Some(toml::Value::Table(storage)) = table.get_mut("storage") else { return Ok(path) };
    let tiers = work.join("tiers");
    for name in ["warm", "cold"] {
        let Some(toml::Value::Table(tier)) = storage.get_mut(name) else { continue };
        fs::create_dir_all(tiers.join(name)).with_context(|| format!("cannot create {}", tiers.display()))?;
        tier.clear();
        tier.insert("endpoint".into(), format!("file://{}", tiers.display()).into());
        tier.insert("bucket".into(), name.into());
    }
    if storage.contains_key("work_dir") {
        storage.insert("work_dir".into(), work.join("storage-work").display().to_string().into());
    }
    let copy = work.join(file);
    fs::write(&copy, toml::to_string(&table)?)?;
    println!("nix: {RENDERED}/{file}: its tiers moved to directories under {} for the live check", tiers.display());
    Ok(copy)
}

/// Where the live check keeps `user`'s password: the file systemd would hand
/// NATS as the credential `nats-password-<user>`.
fn password_file(work: &Path, user: &str) -> PathBuf {
    work.join("secrets").join(format!("nats-password-{user}"))
}

/// The host module's NATS configuration, moved to this machine (loopback,
/// free ports, a fresh store directory), with generated passwords added by
/// the module's own start script (`nats-start.sh`, `cim nats-config`), the
/// secrets directory standing in for systemd's $CREDENTIALS_DIRECTORY.
/// Returns the file and the users.
fn nats_config(
    rendered: &Path,
    work: &Path,
    path: &std::ffi::OsStr,
    port: u16,
    monitor: u16,
) -> Result<(PathBuf, Vec<String>)> {
    let base_path = rendered.join("nats-base.json");
    let mut base: Value = serde_json::from_str(&fs::read_to_string(&base_path)?).context("nats-base.json")?;
    base["host"] = json!("127.0.0.1");
    base["port"] = json!(port);
    base["http"] = json!(format!("127.0.0.1:{monitor}"));
    base["jetstream"]["store_dir"] = json!(work.join("jetstream").display().to_string());
    let users: Vec<String> = base["accounts"]
        .as_object()
        .into_iter()
        .flat_map(|accounts| accounts.values())
        .flat_map(|account| account["users"].as_array().into_iter().flatten())
        .filter_map(|u| u["user"].as_str().map(str::to_owned))
        .collect();
    ensure!(!users.is_empty(), "nats-base.json has no users");
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let mut passwords = Vec::new();
    for (i, user) in users.iter().enumerate() {
        // Not secret: a throw-away server on loopback. Surrounded by white
        // space, which both NATS's start script and the components trim.
        let password = format!("pw-{user}-{nanos}-{i}");
        fs::write(password_file(work, user), format!("  {password}\n"))?;
        passwords.push(password);
    }
    let local = work.join("nats-local-base.json");
    fs::write(&local, serde_json::to_string(&base)?)?;

    let conf_path = work.join("nats.conf");
    output_of(
        Command::new("sh")
            .arg(rendered.join("nats-start.sh"))
            .arg(&local)
            .arg(&conf_path)
            .env("PATH", path)
            .env("CREDENTIALS_DIRECTORY", work.join("secrets")),
    )
    .context("the module's NATS start script (nats-start.sh) fails")?;
    let text = fs::read_to_string(&conf_path)?;
    for (user, password) in users.iter().zip(&passwords) {
        ensure!(!text.contains(password.as_str()), "{user}'s password is in plain text in the rendered nats.conf");
    }
    let config: Value = serde_json::from_str(&text).context("the rendered nats.conf is not JSON")?;
    let hashed = config["accounts"]
        .as_object()
        .into_iter()
        .flat_map(|accounts| accounts.values())
        .flat_map(|account| account["users"].as_array().into_iter().flatten())
        .filter(|u| u["password"].as_str().is_some_and(|p| p.starts_with("$2a$11$")))
        .count();
    ensure!(hashed == users.len(), "{hashed} of {} users have a bcrypt (cost 11) password", users.len());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&conf_path)?.permissions().mode() & 0o777;
        ensure!(mode == 0o600, "the rendered nats.conf has mode {mode:o}, not 600");
    }
    output_of(Command::new("nats-server").env("PATH", path).arg("-c").arg(&conf_path).arg("-t"))
        .context("nats-server refuses the configuration the host module renders")?;
    println!(
        "nix: the module's start script (nats-start.sh) added {} bcrypt hashes, no password in plain text, mode 600",
        users.len()
    );
    Ok((conf_path, users))
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

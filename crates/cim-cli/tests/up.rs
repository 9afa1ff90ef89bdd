//! `cim up`: the whole stack of components.toml as real processes on a real
//! nats-server — every component ready and registered, other commands using
//! the stack as its admin, a killed component restarted, SIGTERM stopping
//! every child, and each component's NATS user kept to its own subjects.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use cim_test_support::workspace_binary;
use serde_json::{Value, json};

use crate::common::{Run, cim};

/// How long the stack may take to start or to react.
const PATIENCE: Duration = Duration::from_secs(120);

/// `cim --json up` on a fresh data directory, its JSON events read as they come.
struct Up {
    child: Option<Child>,
    events: mpsc::Receiver<Value>,
    seen: Vec<Value>,
    dir: tempfile::TempDir,
    packages: Vec<String>,
}

impl Up {
    /// Starts the stack and waits until it says every component is ready and registered.
    fn start() -> Self {
        let deployment = cim_deploy::Deployment::embedded().unwrap();
        let packages: Vec<String> = deployment.components().values().map(|c| c.package.clone()).collect();
        let bin_dir: Vec<PathBuf> =
            packages.iter().map(|p| workspace_binary(p, p).parent().unwrap().to_path_buf()).collect();
        assert!(bin_dir.windows(2).all(|w| w[0] == w[1]), "the component binaries are in one directory");
        let dir = tempfile::tempdir().unwrap();
        // Tests run at once: each hub on a port of its own.
        let hub_listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cim"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--json", "up", "--grace", "5", "--bin-dir"])
            .arg(&bin_dir[0])
            .arg("--hub-listen")
            .arg(hub_listen.to_string())
            .env_remove("CIM_NATS_URL")
            .env_remove("CIM_CONFIG")
            .env_remove("CIM_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = serde_json::from_str(&line).unwrap_or_else(|_| json!({ "unparsed": line }));
                if send.send(event).is_err() {
                    break;
                }
            }
        });
        let mut up = Self { child: Some(child), events, seen: Vec::new(), dir, packages };
        up.next(|e| e["event"] == "up", "every component ready and registered");
        up
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }

    /// The next event that `wanted` accepts (the ones before it are kept in `seen`).
    #[track_caller]
    fn next(&mut self, wanted: impl Fn(&Value) -> bool, what: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if wanted(&event) {
                        return event;
                    }
                }
                Err(_) => panic!("no event for {what}; events so far:\n{}\n{}", self.dump(), self.logs()),
            }
        }
    }

    fn dump(&self) -> String {
        self.seen.iter().map(|e| format!("{e}\n")).collect()
    }

    /// The components' logs, for failures.
    fn logs(&self) -> String {
        let mut text = String::new();
        for package in &self.packages {
            let log = std::fs::read_to_string(self.data().join(format!("logs/{package}.log"))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            text += &format!("--- {package}:\n{}\n", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        text
    }

    /// `cim --data-dir <the stack's> args…`.
    fn cim(&self, args: &[&str]) -> Run {
        let mut all = vec!["--data-dir", self.data().to_str().unwrap()];
        all.extend_from_slice(args);
        cim(&all)
    }

    /// The registry's live components: (name, instance id).
    fn registered(&self) -> Vec<(String, String)> {
        let list = self.cim(&["--json", "registry", "components"]).json();
        list["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let r = &c["registration"];
                (r["name"].as_str().unwrap().to_owned(), r["instance_id"].as_str().unwrap().to_owned())
            })
            .collect()
    }

    /// SIGTERM to `cim up`; its exit status.
    fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("cim up runs");
        signal(child.id(), rustix::process::Signal::TERM);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "cim up did not exit after SIGTERM:\n{}", self.dump());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The events left after `cim up` exited.
    fn rest(&mut self) -> Vec<Value> {
        let rest: Vec<Value> = self.events.try_iter().collect();
        self.seen.extend(rest.iter().cloned());
        rest
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Gracefully, so that no component outlives a failed test.
            self.terminate();
        }
    }
}

/// The status code of a plain GET of `base` + `path`.
fn http_get_status(base: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let address = base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    String::from_utf8_lossy(&head[9..12]).into_owned()
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

/// Whether a process with this id exists (a zombie counts: it was not reaped).
fn exists(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A plain HTTP GET of `path` on `base` (`http://127.0.0.1:PORT`): the body.
fn http_get(base: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let address = base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"), "{head}");
    body.to_owned()
}

#[test]
fn up_runs_every_component_serves_other_commands_and_stops_them_all_on_sigterm() {
    let mut up = Up::start();
    let started = up.seen.iter().find(|e| e["event"] == "started").cloned().unwrap();
    // The hub's HTTP API is where `cim up` says it is.
    let hub_api = up.seen.iter().find(|e| e["event"] == "up").unwrap()["hub_api"].as_str().unwrap().to_owned();
    assert_eq!(http_get_status(&hub_api, "/v1/openapi.json"), "200", "{}", up.dump());
    let nats_pid = started["server"]["nats_server_pid"].as_u64().unwrap();
    let mut pids: Vec<u64> = vec![nats_pid];
    for package in up.packages.clone() {
        let ready = up.seen.iter().find(|e| e["event"] == "ready" && e["component"] == package.as_str());
        let ready = ready.unwrap_or_else(|| panic!("{package} was not reported ready:\n{}", up.dump()));
        pids.push(ready["pid"].as_u64().unwrap());
        assert!(up.data().join(format!("logs/{package}.log")).is_file());
    }
    assert!(pids.iter().all(|pid| exists(*pid)));

    // Every component is registered; other commands use the stack as its admin.
    let mut names: Vec<String> = up.registered().into_iter().map(|(name, _)| name).collect();
    names.sort();
    assert_eq!(names, up.packages);
    let status = up.cim(&["--json", "status"]).json();
    assert_eq!(status["server"]["mode"], "embedded (cim up)");
    assert_eq!(status["server"]["url"], started["server"]["url"]);
    up.cim(&["events", "append", "order/1", "Placed", r#"{"n": 1}"#]).ok();

    // `cim demo` on the stack (what `cargo xtask demo` runs): the registry's
    // components and a unit created, updated and given an object by cim-ius.
    let demo = up.cim(&["--json", "demo"]).json();
    assert_eq!(demo["verify"]["ok"], true, "{demo:#}");
    let services = &demo["services"];
    let mut listed: Vec<&str> = services["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["registration"]["name"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, up.packages, "{services:#}");
    let unit = &services["unit"];
    let versions: Vec<u64> =
        ["created", "updated", "attached"].iter().map(|step| unit[step]["version"].as_u64().unwrap()).collect();
    assert_eq!(versions, [1, 2, 3], "{unit:#}");
    assert_eq!(unit["object"]["media_type"], "text/plain", "{unit:#}");
    assert_eq!(unit["problems"], json!([]), "{unit:#}");
    let history = up.cim(&["--json", "units", "history", unit["id"].as_str().unwrap()]).json();
    assert_eq!(history["events"].as_array().map(Vec::len), Some(3), "{history:#}");

    // The Storage Manager on its directory tiers (the data directory's
    // `tiers/warm` and `tiers/cold`): status through the stack, a seal
    // copies the events and objects down to both.
    let status = up.cim(&["--json", "storage", "status"]).json();
    let tiers = status["tiers"].as_array().unwrap();
    assert_eq!(tiers.len(), 2, "{status:#}");
    for tier in tiers {
        assert_eq!(tier["reachable"], true, "{status:#}");
        assert!(tier["endpoint"].as_str().unwrap().starts_with("file:///"), "{status:#}");
    }
    let sealed = up.cim(&["--json", "storage", "seal", "--force"]).json();
    let through = sealed["sealed_through_seq"].as_u64().unwrap();
    assert!(through >= 4, "{sealed:#}");
    let status = up.cim(&["--json", "storage", "status"]).json();
    assert_eq!(status["sealed_through_seq"].as_u64(), Some(through), "{status:#}");
    for tier in status["tiers"].as_array().unwrap() {
        assert_eq!((tier["lag_events"].as_u64(), tier["lag_objects"].as_u64()), (Some(0), Some(0)), "{status:#}");
        assert!(tier["segments"].as_u64().unwrap() >= 1, "{status:#}");
        let dir = up.data().join("tiers").join(tier["name"].as_str().unwrap()).join("segments");
        assert!(std::fs::read_dir(&dir).unwrap().count() >= 1, "no segment in {}", dir.display());
    }

    // Its metrics, on its HTTP endpoint as `cim up` reported it.
    let ready = up.seen.iter().find(|e| e["event"] == "ready" && e["component"] == "cim-storage").cloned().unwrap();
    let metrics = http_get(ready["http"].as_str().unwrap(), "/metrics");
    let value = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '));
        let line = line.unwrap_or_else(|| panic!("no {name} in /metrics:\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("cim_storage_segments_sealed_total") >= 1.0, "{metrics}");
    assert_eq!(value("cim_storage_sealed_through_seq"), through as f64, "{metrics}");
    assert!(metrics.contains("cim_storage_tier_up{tier=\"warm\"} 1"), "{metrics}");

    // No password in plain text in the server's configuration; its users log in only with theirs.
    let conf = std::fs::read_to_string(up.data().join("run/nats.conf")).unwrap();
    for user in cim_deploy::Deployment::embedded().unwrap().users("cim").unwrap() {
        let password = cim_deploy::read_password(&up.data().join(format!("secrets/nats-password-{}", user.user)));
        assert!(!conf.contains(&password.unwrap()), "{}'s password is in plain text in nats.conf", user.user);
    }
    assert!(conf.contains("\"$2a$11$"), "no bcrypt hashes in nats.conf:\n{conf}");

    let status = up.terminate();
    assert!(status.success(), "cim up exited with {status}:\n{}", up.dump());
    let rest = up.rest();
    assert_eq!(rest.last().map(|e| e["event"].clone()), Some(json!("down")), "{}", up.dump());
    for package in &up.packages {
        let stopped = rest.iter().find(|e| e["event"] == "stopped" && e["component"] == package.as_str());
        assert!(stopped.is_some(), "{package} was not reported stopped:\n{}", up.dump());
    }
    let left: Vec<&u64> = pids.iter().filter(|pid| exists(**pid)).collect();
    assert!(left.is_empty(), "processes {left:?} outlived cim up:\n{}", up.dump());
    assert!(!up.data().join("server.json").exists());

    // The data stays usable without the stack.
    let read = up.cim(&["--json", "events", "read", "order/1"]).json();
    assert_eq!(read.as_array().unwrap().len(), 1);
}

#[test]
fn a_killed_component_is_restarted_and_registers_again() {
    let mut up = Up::start();
    // The registry itself, if it is the only one; else another component, seen through the registry.
    let victim = up.packages.iter().find(|p| *p != "cim-registry").unwrap_or(&up.packages[0]).clone();
    let ready = up.seen.iter().find(|e| e["event"] == "ready" && e["component"] == victim.as_str()).cloned();
    let pid = ready.unwrap()["pid"].as_u64().unwrap();
    let before: Vec<String> = up.registered().into_iter().filter(|(n, _)| *n == victim).map(|(_, i)| i).collect();
    assert_eq!(before.len(), 1, "{victim} is registered once: {before:?}");

    signal(u32::try_from(pid).unwrap(), rustix::process::Signal::KILL);
    let exited = up.next(|e| e["event"] == "exited" && e["component"] == victim.as_str(), "the exit");
    assert_eq!(exited["pid"].as_u64(), Some(pid));
    assert!(exited["status"].as_str().unwrap().contains("SIGKILL"), "{exited}");
    assert!(exited["restart_in_ms"].as_u64().is_some(), "{exited}");
    let again = up.next(|e| e["event"] == "ready" && e["component"] == victim.as_str(), "the restart");
    assert_ne!(again["pid"].as_u64(), Some(pid));

    // Registered again: a new instance (the killed one lingers until its TTL).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now: Vec<(String, String)> = up.registered();
        if now.iter().any(|(name, instance)| *name == victim && !before.contains(instance)) {
            break;
        }
        assert!(Instant::now() < deadline, "{victim} did not register again: {now:?}\n{}", up.logs());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(up.terminate().success());
}

/// A connection as `user`, with the permission violations the server reports.
struct Login {
    client: async_nats::Client,
    violations: Arc<Mutex<Vec<String>>>,
}

impl Login {
    async fn new(url: &str, user: &str, password: &str) -> Result<Self, async_nats::ConnectError> {
        let violations = Arc::new(Mutex::new(Vec::new()));
        let record = violations.clone();
        let client = async_nats::ConnectOptions::with_user_and_password(user.to_owned(), password.to_owned())
            .custom_inbox_prefix(format!("_INBOX_{user}"))
            .event_callback(move |event| {
                let record = record.clone();
                async move {
                    if let async_nats::Event::ServerError(error) = event {
                        record.lock().unwrap().push(error.to_string());
                    }
                }
            })
            .connect(url)
            .await?;
        Ok(Self { client, violations })
    }

    /// Waits until the server has refused `operation` ("Publish to", "Subscription to") on `subject`.
    async fn refused(&self, operation: &str, subject: &str) -> bool {
        let wanted = format!("permissions violation for {operation} \"{subject}\"").to_lowercase();
        for _ in 0..100 {
            if self.violations.lock().unwrap().iter().any(|v| v.to_lowercase().contains(&wanted)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

/// Logs in as each component user with its generated password and asserts
/// the server refuses what belongs to others: their aggregate subjects,
/// registration subjects, KV buckets and reply inboxes, and creating,
/// updating, purging or deleting the shared streams (even those the
/// component reads) — and that the event stream kept every message.
#[tokio::test]
async fn component_users_are_kept_to_their_own_subjects() {
    let up = tokio::task::spawn_blocking(Up::start).await.unwrap();
    for n in 0..3 {
        up.cim(&["events", "append", &format!("order/{n}"), "Placed", "{}"]).ok();
    }
    let url = up.seen.iter().find(|e| e["event"] == "started").unwrap()["server"]["url"].as_str().unwrap().to_owned();
    let count = |up: &Up| up.cim(&["--json", "status"]).json()["events"]["events"].as_u64().unwrap();
    let events_before = count(&up);
    let deployment = cim_deploy::Deployment::embedded().unwrap();
    let by_store = deployment.streams("cim").unwrap();
    let streams: Vec<String> = by_store.values().cloned().collect();
    let password = |user: &str| cim_deploy::read_password(&up.data().join(format!("secrets/nats-password-{user}")));

    for component in deployment.components().values() {
        let user = component.user.as_str();
        // A wrong password is refused; the right one logs in and may do what it needs.
        assert!(Login::new(&url, user, "not-the-password").await.is_err(), "{user} logged in with a wrong password");
        let login = Login::new(&url, user, &password(user).unwrap()).await.unwrap();
        let info = login.client.request(format!("$JS.API.STREAM.INFO.{}", streams[0]), "".into()).await;
        assert!(info.is_ok(), "{user} may not read {}'s info: {info:?}", streams[0]);

        let mut publishes: Vec<String> = Vec::new();
        let mut subscribes: Vec<String> = Vec::new();
        for other in deployment.components().values().filter(|o| o.name != component.name) {
            publishes.extend(other.aggregates.iter().map(|a| format!("cim.events.{a}.probe-{user}")));
            publishes.push(format!("cim.service.registry.components.register.{}", other.package));
            publishes.push(format!("cim.service.registry.components.deregister.{}", other.package));
            publishes.extend(other.buckets.iter().map(|b| format!("$KV.cim-{b}.probe")));
            subscribes.push(format!("{}.>", other.inbox_prefix()));
        }
        for (store, stream) in &by_store {
            // A component that writes objects purges a failed put's chunks (PLAN: least privilege);
            // the Storage Manager purges events verified on both tiers (`purges_events`).
            let purges = (component.writes_objects && *store == cim_deploy::Store::Objects)
                || (component.purges_events && *store == cim_deploy::Store::Events);
            for operation in ["CREATE", "UPDATE", "PURGE", "DELETE"] {
                let granted = match operation {
                    "PURGE" => purges,
                    _ => false,
                };
                if !granted {
                    publishes.push(format!("$JS.API.STREAM.{operation}.{stream}"));
                }
            }
        }
        for subject in &publishes {
            // What an attacker would send: e.g. keep one message of the event stream.
            let body = json!({ "name": subject.rsplit('.').next(), "subjects": ["cim.events.>"], "max_msgs": 1 });
            login.client.publish(subject.clone(), body.to_string().into()).await.unwrap();
            login.client.flush().await.unwrap();
            assert!(login.refused("publish to", subject).await, "{user} may publish to {subject}");
        }
        for subject in &subscribes {
            let _subscription = login.client.subscribe(subject.clone()).await.unwrap();
            login.client.flush().await.unwrap();
            assert!(login.refused("subscription to", subject).await, "{user} may subscribe to {subject}");
        }
    }
    assert_eq!(count(&up), events_before, "the event stream lost or gained messages");
    let status = up.cim(&["--json", "status"]).json();
    let streams_now: Vec<&str> =
        status["streams"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    for stream in &streams {
        assert!(streams_now.contains(&stream.as_str()), "{stream} is gone: {streams_now:?}");
    }
    tokio::task::spawn_blocking(move || drop(up)).await.unwrap();
}

/// The demo pipeline on the stack, as `cargo xtask demo` and the README run
/// it with `cim`: deployed with `cim pipelines put`, a PDF attached to a unit
/// becomes a text unit with its text, related `extracted-from` the original,
/// whose creating event has the attach event among its parents, and `cim dag
/// ancestors` of that event leads back to the attach.
#[test]
fn the_demo_pipeline_turns_an_attached_pdf_into_a_related_text_unit() {
    let up = Up::start();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cim-pipeline/pipelines");
    let definition = repo.join("pdf-text.toml");
    let put = up.cim(&["--json", "pipelines", "put", definition.to_str().unwrap()]).json();
    assert_eq!(put["name"], "pdf-text", "{put:#}");
    up.cim(&["units", "create", "pdf", "--id", "report", "--metadata", r#"{"title": "Quarterly report"}"#]).ok();
    let attached = up.cim(&["--json", "units", "attach", "report", repo.join("sample.pdf").to_str().unwrap()]).json();
    assert_eq!(attached["object"]["media_type"], "application/pdf", "{attached:#}");
    let attach_event = attached["committed"]["event_cid"].as_str().unwrap().to_owned();

    let deadline = Instant::now() + PATIENCE;
    let listed = loop {
        let listed = up.cim(&["--json", "units", "list", "--kind", "text-document"]).json();
        if listed["units"].as_array().is_some_and(|units| !units.is_empty()) {
            break listed;
        }
        assert!(Instant::now() < deadline, "no text unit:\n{}", up.logs());
        std::thread::sleep(Duration::from_millis(200));
    };
    let units = listed["units"].as_array().unwrap();
    assert_eq!(units.len(), 1, "one text unit per attached PDF: {listed:#}");
    let id = units[0]["id"].as_str().unwrap();
    let shown = up.cim(&["--json", "units", "show", id]).json();
    let text = shown.to_string();
    assert!(text.contains("revenue grew by twelve percent") && text.contains("Costs stayed flat"), "{shown:#}");
    let related = up.cim(&["--json", "units", "related", id]).json().to_string();
    assert!(related.contains("\"report\"") && related.contains("extracted-from"), "{related}");

    let history = up.cim(&["--json", "units", "history", id]).json();
    let created = &history["events"][0];
    assert_eq!(created["event_type"], "UnitCreated", "{history:#}");
    assert!(created["parents"].as_array().unwrap().contains(&json!(attach_event)), "{created:#}");
    let ancestors = up.cim(&["--json", "dag", "ancestors", created["cid"].as_str().unwrap()]).json();
    let cids: Vec<&str> =
        ancestors["ancestors"].as_array().unwrap().iter().map(|a| a["cid"].as_str().unwrap()).collect();
    assert!(cids.contains(&attach_event.as_str()), "{ancestors:#}");

    let status = up.cim(&["--json", "pipelines", "status", "pdf-text"]).json().to_string();
    assert!(!status.contains("\"dead_letters\":1"), "{status}");
}

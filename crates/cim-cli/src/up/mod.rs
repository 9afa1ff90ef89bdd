//! `cim up`: the whole stack on the data directory. An embedded nats-server
//! with one NATS user per component of `components.toml` plus the admin,
//! each with the permissions cim-deploy derives (the NixOS host module's),
//! the store provisioned as the admin, and every component as a supervised
//! child process ([`supervisor`]) until Ctrl-C or SIGTERM.
//!
//! On the data directory, besides what [`crate::embedded`] keeps there:
//! `secrets/nats-password-<user>` (0600, [`secrets`]), `components/<package>.toml`
//! (each component's configuration, rewritten at every start) and
//! `logs/<package>.log` (each component's output, appended). The Storage
//! Manager's tiers are, unless `--storage-config` names others, two
//! directories, `tiers/warm` and `tiers/cold` (directory tiers: for trying
//! the stack out, both copies on one disk), and its work directory
//! `storage-work`.

pub mod secrets;
mod supervisor;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use cim_deploy::{Component, ConfigTarget, Deployment};
use cim_registry_api::ComponentQuery;
use clap::Args;
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::GlobalArgs;
use crate::embedded::{EmbeddedServer, lock_for_server};
use crate::exit::{Exit, usage};
use crate::output::Output;
use crate::session::Session;
use crate::settings::{Settings, Target};
use supervisor::{Event, Spec, Stop};

/// How long `cim up` waits, once every component is ready, for all of them
/// to be listed by the registry before it says which are missing.
const REGISTRATION_PATIENCE: Duration = Duration::from_secs(60);

/// Arguments of `cim up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// NATS client port [default: a free port, announced on start].
    #[arg(long)]
    port: Option<u16>,
    /// Where the component binaries are [default: next to `cim`, else on PATH].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Seconds a component gets to finish its requests after SIGTERM
    /// (its `[runtime] shutdown_grace_secs`); SIGKILL 5 s after that.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    grace: u64,
    /// Address of the Integration Hub's HTTP API, explorer and MCP
    /// endpoint (its `[hub] listen`).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "IP:PORT")]
    hub_listen: SocketAddr,
    /// TOML file whose `[storage]` table configures the Storage Manager
    /// (its S3 tiers and policies, docs/services.md) [default: directory
    /// tiers under the data directory, `tiers/warm` and `tiers/cold`].
    #[arg(long, value_name = "FILE")]
    storage_config: Option<PathBuf>,
}

/// Runs the stack until Ctrl-C or SIGTERM, then stops it gracefully.
pub async fn run(global: &GlobalArgs, args: UpArgs, out: &Output) -> anyhow::Result<Exit> {
    let mut settings = Settings::resolve(global)?;
    if let Target::Remote { url, .. } = &settings.target {
        out.note(format!("note: ignoring the configured NATS URL {url}: `cim up` runs the embedded server"));
        settings.target = Target::Embedded;
    }
    if args.grace > 3600 {
        return Err(usage("--grace is at most 3600 seconds"));
    }
    let data_dir = settings.data_dir()?.to_owned();
    let namespace = settings.store.namespace.clone();
    let deployment = Deployment::embedded()?;
    let binaries = locate(&deployment, args.bin_dir.as_deref())?;
    let storage = storage_table(&data_dir, args.storage_config.as_deref())?;

    let lock = lock_for_server(&data_dir)?;
    let users = deployment.users(&namespace)?;
    let user_names: Vec<String> = users.iter().map(|u| u.user.clone()).collect();
    let users = secrets::users(&data_dir, &users, deployment.admin_user())?;
    let mut server =
        EmbeddedServer::start(&data_dir, settings.nats_server.as_deref(), lock, args.port, Some(users)).await?;
    let result = async {
        server.advertise()?;
        let running = server.running();
        out.emit(
            &json!({ "event": "started", "server": running, "log": server.log_file(), "users": user_names }),
            || {
                format!(
                    "cim up: nats-server at {} with the users {} (data: {}; log: {})",
                    running.url,
                    user_names.join(", "),
                    data_dir.display(),
                    server.log_file().display()
                )
            },
        );
        // The admin provisions the store and every component's bucket:
        // components only attach to what exists.
        let session = Session::open(&settings, out).await.context("cannot provision the store as the admin")?;
        let done =
            cim_deploy::provision::provision(session.events.client().clone(), session.events.config(), &deployment)
                .await
                .context("cannot provision the components' buckets as the admin")?;
        let mut buckets = vec![done.objects_bucket.clone(), done.names_bucket.clone()];
        buckets.extend(done.buckets.iter().map(|(bucket, _)| bucket.clone()));
        out.emit(
            &json!({ "event": "provisioned", "namespace": namespace, "stream": done.events_stream, "buckets": buckets }),
            || {
                format!(
                    "cim up: store `{namespace}` provisioned: stream {}, buckets {}",
                    done.events_stream,
                    buckets.join(", ")
                )
            },
        );
        let mut specs = specs(&data_dir, &deployment, &binaries, &running.url, &namespace, args.grace, &storage)?;
        let hub_api = hub_listen(&mut specs, args.hub_listen);
        let logs = data_dir.join("logs");
        out.emit(&json!({ "event": "starting", "components": specs.keys().collect::<Vec<_>>(), "logs": logs }), || {
            format!(
                "cim up: starting {} (logs in {})",
                specs.keys().cloned().collect::<Vec<_>>().join(", "),
                logs.display()
            )
        });
        let hint = cim_hint(global, &data_dir);
        let result = supervise(&mut server, &session, specs, &hint, hub_api.as_deref(), out).await;
        let closed = session.close().await;
        result.and(closed)
    }
    .await;
    out.note("cim up: stopping nats-server …");
    let stopped = server.stop().await;
    result?;
    stopped?;
    out.emit(&json!({ "event": "down" }), || "cim up: stopped".to_owned());
    Ok(Exit::Ok)
}

/// Each component's binary: in `bin_dir`, else next to this executable, else on `PATH`.
fn locate<'a>(deployment: &'a Deployment, bin_dir: Option<&Path>) -> anyhow::Result<Vec<(&'a Component, PathBuf)>> {
    let dirs: Vec<PathBuf> = match bin_dir {
        Some(dir) => vec![dir.to_owned()],
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_owned))
            .into_iter()
            .chain(std::env::var_os("PATH").iter().flat_map(std::env::split_paths))
            .collect(),
    };
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for component in deployment.components().values() {
        match dirs.iter().map(|dir| dir.join(&component.package)).find(|path| path.is_file()) {
            Some(path) => found.push((component, path)),
            None => missing.push(component.package.as_str()),
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    let where_ = match bin_dir {
        Some(dir) => format!("in {}", dir.display()),
        None => "next to cim or on PATH".to_owned(),
    };
    let build: Vec<String> = missing.iter().map(|p| format!("-p {p}")).collect();
    Err(usage(format!(
        "cannot find {} {where_}: build them (`cargo build {}`) or pass --bin-dir DIR",
        missing.join(", "),
        build.join(" ")
    )))
}

/// What to run for each component, by package: its configuration as its
/// NixOS module renders it (`cim_deploy::Component::config`), on this server,
/// with its password file and the shutdown grace.
fn specs(
    data_dir: &Path,
    deployment: &Deployment,
    binaries: &[(&Component, PathBuf)],
    url: &str,
    namespace: &str,
    grace: u64,
    storage: &toml::Table,
) -> anyhow::Result<BTreeMap<String, Spec>> {
    let configs = data_dir.join("components");
    let logs = data_dir.join("logs");
    for dir in [&configs, &logs] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut specs = BTreeMap::new();
    for (component, binary) in binaries {
        let password_file = secrets::password_file(data_dir, &component.user).display().to_string();
        let target = ConfigTarget { nats_url: url, password_file: &password_file, namespace, http_listen: None };
        let mut config = component.config(&target);
        config.remove("http"); // a free port at each start
        let mut runtime = toml::Table::new();
        runtime.insert("shutdown_grace_secs".into(), i64::try_from(grace).unwrap_or(i64::MAX).into());
        config.insert("runtime".into(), runtime.into());
        if component.name == STORAGE {
            config.insert("storage".into(), storage.clone().into());
        }
        let package = component.package.clone();
        specs.insert(
            package.clone(),
            Spec {
                binary: binary.clone(),
                config_file: configs.join(format!("{package}.toml")),
                log_file: logs.join(format!("{package}.log")),
                config,
                grace: Duration::from_secs(grace),
                package,
            },
        );
    }
    debug_assert_eq!(specs.len(), deployment.components().len());
    Ok(specs)
}

/// The Storage Manager's name in components.toml.
const STORAGE: &str = "storage";

/// The Storage Manager's `[storage]` table: the one `file` holds, or
/// directory tiers under the data directory (created here: the manager
/// creates no buckets), with its segments built in `storage-work`.
fn storage_table(data_dir: &Path, file: Option<&Path>) -> anyhow::Result<toml::Table> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let mut table: toml::Table = text.parse().with_context(|| format!("{} is not TOML", file.display()))?;
        let storage = match table.remove("storage") {
            Some(toml::Value::Table(storage)) if table.is_empty() => storage,
            _ => return Err(usage(format!("{} must hold a [storage] table and nothing else", file.display()))),
        };
        return Ok(storage);
    }
    let tiers = data_dir.join("tiers");
    for dir in [tiers.join("warm"), tiers.join("cold"), data_dir.join("storage-work")] {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tiers = std::fs::canonicalize(&tiers).with_context(|| format!("cannot resolve {}", tiers.display()))?;
    let endpoint = format!("file://{}", tiers.display());
    let tier = |bucket: &str| {
        let mut tier = toml::Table::new();
        tier.insert("endpoint".into(), endpoint.clone().into());
        tier.insert("bucket".into(), bucket.into());
        toml::Value::Table(tier)
    };
    let mut storage = toml::Table::new();
    storage.insert("work_dir".into(), data_dir.join("storage-work").display().to_string().into());
    storage.insert("warm".into(), tier("warm"));
    storage.insert("cold".into(), tier("cold"));
    Ok(storage)
}

/// `cim` as the user should type it to reach this stack.
fn cim_hint(global: &GlobalArgs, data_dir: &Path) -> String {
    let mut cim = "cim".to_owned();
    if global.data_dir.is_some() {
        cim += &format!(" --data-dir {}", data_dir.display());
    }
    if let Some(namespace) = &global.namespace {
        cim += &format!(" --namespace {namespace}");
    }
    cim
}

/// Runs the components until a signal (or nats-server dies), then stops them.
async fn supervise(
    server: &mut EmbeddedServer,
    session: &Session,
    specs: BTreeMap<String, Spec>,
    hint: &str,
    hub_api: Option<&str>,
    out: &Output,
) -> anyhow::Result<()> {
    let packages: BTreeSet<String> = specs.keys().cloned().collect();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (stop, stop_rx) = watch::channel(Stop::Run);
    let mut tasks = JoinSet::new();
    for spec in specs.into_values() {
        tasks.spawn(supervisor::supervise(spec, events_tx.clone(), stop_rx.clone()));
    }
    drop(events_tx);
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let registry = cim_registry_api::Client::new(session.events.client().clone(), Duration::from_secs(2));
    let mut ready: BTreeSet<String> = BTreeSet::new();
    // When every component was first ready; None once the registry listed them all.
    let mut waiting_since: Option<Instant> = None;
    let mut announced = false;
    let mut warned = false;
    let failure = loop {
        tokio::select! {
            _ = interrupt.recv() => break None,
            _ = term.recv() => break None,
            Some(event) = events.recv() => {
                match &event {
                    Event::Ready { package, .. } => {
                        ready.insert(package.clone());
                    }
                    Event::Exited { package, .. } | Event::SpawnFailed { package, .. } => {
                        ready.remove(package);
                    }
                    Event::Spawned { .. } | Event::Stopped { .. } => {}
                }
                if !announced && waiting_since.is_none() && ready == packages {
                    waiting_since = Some(Instant::now());
                }
                report(out, &event);
            }
            _ = tick.tick() => {
                if !server.is_running() {
                    break Some(anyhow::anyhow!(
                        "nats-server exited unexpectedly; its last lines ({}):\n{}",
                        server.log_file().display(),
                        server.log_tail()
                    ));
                }
                if let Some(since) = waiting_since {
                    let listed = registered(&registry).await;
                    if listed.is_superset(&packages) {
                        waiting_since = None;
                        announced = true;
                        out.emit(&json!({ "event": "up", "components": packages, "hub_api": hub_api }), || {
                            let hub = hub_api.map(|api| format!(
                                "\ncim up: the Integration Hub's HTTP API is {api} (explorer {api}/explorer, \
                                 OpenAPI {api}/v1/openapi.json); a token: `{hint} hub tokens create NAME --scope read`"
                            ));
                            format!(
                                "cim up: all {} components are ready and registered. Try `{hint} registry components` \
                                 or `{hint} demo` in another terminal; Ctrl-C stops them all.{}",
                                packages.len(),
                                hub.unwrap_or_default()
                            )
                        });
                    } else if !warned && since.elapsed() > REGISTRATION_PATIENCE {
                        warned = true;
                        let missing: Vec<&String> = packages.difference(&listed).collect();
                        out.emit(&json!({ "event": "unregistered", "components": missing }), || {
                            format!(
                                "cim up: warning: ready, but not listed by the registry after {}s: {}",
                                REGISTRATION_PATIENCE.as_secs(),
                                missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                            )
                        });
                    }
                }
            }
        }
    };
    out.emit(&json!({ "event": "stopping" }), || {
        "cim up: stopping the components (SIGTERM; Ctrl-C again to kill them at once) …".to_owned()
    });
    let _ = stop.send(Stop::Graceful);
    loop {
        tokio::select! {
            joined = tasks.join_next() => {
                if joined.is_none() {
                    break;
                }
            }
            Some(event) = events.recv() => report(out, &event),
            _ = interrupt.recv() => {
                let _ = stop.send(Stop::Now);
            }
            _ = term.recv() => {
                let _ = stop.send(Stop::Now);
            }
        }
    }
    while let Ok(event) = events.try_recv() {
        report(out, &event);
    }
    failure.map_or(Ok(()), Err)
}

/// The packages the registry lists now (none if it does not answer).
async fn registered(registry: &cim_registry_api::Client) -> BTreeSet<String> {
    match registry.components(&ComponentQuery::default()).await {
        Ok(list) => list.components.into_iter().map(|c| c.registration.name).collect(),
        Err(_) => BTreeSet::new(),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// Sets the Integration Hub's public listen address (when the hub is part
/// of the stack) and returns its API's base URL.
fn hub_listen(specs: &mut BTreeMap<String, Spec>, listen: SocketAddr) -> Option<String> {
    let hub = specs.get_mut(cim_hub_api::SERVICE.name)?;
    let section = hub.config.entry("hub").or_insert_with(|| toml::Table::new().into());
    section.as_table_mut()?.insert("listen".into(), listen.to_string().into());
    Some(format!("http://{listen}"))
}

/// Prints what happened to a component.
fn report(out: &Output, event: &Event) {
    match event {
        Event::Spawned { package, pid } => {
            out.emit(&json!({ "event": "spawned", "component": package, "pid": pid }), String::new);
        }
        Event::Ready { package, pid, http } => {
            out.emit(&json!({ "event": "ready", "component": package, "pid": pid, "http": http }), || {
                format!("cim up: {package} is ready (pid {pid}, {http}/readyz)")
            });
        }
        Event::SpawnFailed { package, error, restart_in } => {
            let json = json!({ "event": "spawn_failed", "component": package, "error": error,
                               "restart_in_ms": restart_in.map(millis) });
            out.emit(&json, || match restart_in {
                Some(delay) => format!("cim up: cannot start {package}: {error}; trying again in {}", seconds(*delay)),
                None => format!("cim up: cannot start {package}: {error}; giving up on it"),
            });
        }
        Event::Exited { package, pid, status, ran_for, last_line, restart_in } => {
            let json = json!({ "event": "exited", "component": package, "pid": pid, "status": status,
                               "ran_for_ms": millis(*ran_for), "last_log_line": last_line,
                               "restart_in_ms": restart_in.map(millis) });
            out.emit(&json, || {
                let then = match restart_in {
                    Some(delay) => format!("restarting it in {}", seconds(*delay)),
                    None => "giving up on it".to_owned(),
                };
                format!(
                    "cim up: {package} (pid {pid}) exited ({status}) after {}; {then}. Its last log line: {last_line}",
                    seconds(*ran_for)
                )
            });
        }
        Event::Stopped { package, pid, signal, status } => {
            let json = json!({ "event": "stopped", "component": package, "pid": pid, "signal": signal,
                               "status": status });
            out.emit(&json, || format!("cim up: {package} (pid {pid}) stopped by {signal} ({status})"));
        }
    }
}

//! Workload 9 (issue 15): the Integration Hub's HTTP API under load, against
//! the store used directly, on the same server, in the same run.
//!
//! A release `cim-hub` (`--hub-binary`) runs on the harness's server,
//! provisioned as `cim provision` does, with a write token made through its
//! NATS API. Then:
//!
//! 1. One large object (`--object-bytes`, 1 GiB by default) is put through
//!    `PUT /v1/objects` and read back with `GET /v1/objects/{cid}`, both
//!    streamed; its CID is computed here beforehand and must equal the one the
//!    hub answers, the `ETag`, the hash of the bytes read back, and the CID of
//!    the store's own put of the same bytes (in a child process, as workload 6
//!    does). The hub's peak RSS (`VmHWM`) is read once the object is through
//!    — the hub is fresh, so it is the object's peak.
//! 2. Appends: `oha` (`--oha`) posts one event a request to
//!    `POST /v1/aggregates/hubbench/a<NNN>/events`, the aggregate drawn at
//!    random among `--hub-aggregates` for each request, `--concurrency`
//!    requests in flight, for `--hub-seconds`; then as many tasks append the
//!    same event to the store directly (`EventStore::append`, expected
//!    version `Any` as the hub's is without `expected_version`), aggregates
//!    drawn the same way, for as long.
//! 3. Reads: events appended beforehand, then `oha` gets them by CID
//!    (`GET /v1/events/{cid}`, a URL drawn at random from the list) and as
//!    many tasks get them from the store (`EventStore::event`) directly.
//!
//! oha counts only answers; the rates here count 2xx answers alone, over
//! oha's own elapsed time, and any other status or error is reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use cim_cid::{AggregateKey, Cid, Ipld, NewEvent};
use cim_hub_api::{CreateToken, Scope};
use cim_store::{EventStore, ExpectedVersion, StoreConfig};
use cim_test_support::{NatsServer, ServiceProcess, service_config};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::fresh_namespace;
use crate::child::{self, ChildArgs, Phase};
use crate::data::{ByteSource, Rng};
use crate::machine::load_average;
use crate::report::{Check, Row, WorkloadReport};
use crate::stats::Latencies;
use crate::{Bench, server_name};

/// Hub append throughput relative to the store's (issue 15).
const TARGET_APPEND_RATIO: f64 = 0.5;
/// The hub's peak RSS with a large object going through, MiB (issue 15).
const TARGET_PEAK_MIB: f64 = 100.0;
/// The aggregate type the appends go to.
const APPEND_TYPE: &str = "hubbench";
/// The aggregate type of the events read back.
const READ_TYPE: &str = "hubread";
/// Events appended beforehand for the read phase.
const READ_EVENTS: usize = 2_000;
/// Bytes of the payload's padding: an event of about 256 B encoded.
const PAD: usize = 160;

pub async fn run(bench: &Bench) -> Result<WorkloadReport> {
    let p = &bench.params;
    let durable = bench.main_durable();
    let hub_binary = PathBuf::from(p.hub_binary.as_deref().context("the hub workload needs --hub-binary")?);
    let oha = match (&p.oha, p.hub_objects_only) {
        (Some(oha), _) => PathBuf::from(oha),
        (None, true) => PathBuf::new(),
        (None, false) => bail!("the hub workload needs --oha (or --hub-objects-only)"),
    };
    let (seconds, concurrency, aggregates) = (p.hub_seconds, p.concurrency, p.hub_aggregates);
    let mut report = WorkloadReport::new(
        8,
        "hub",
        format!(
            "HTTP through cim-hub vs the store directly: {seconds} s each, {concurrency} in flight, \
             appends over {aggregates} aggregates, one object of {} B, {}",
            p.object_bytes,
            server_name(durable)
        ),
        json!({ "seconds": seconds, "concurrency": concurrency, "aggregates": aggregates,
                "object_bytes": p.object_bytes, "durable": durable }),
    );
    ensure!(aggregates > 0 && aggregates <= 1_000_000, "--hub-aggregates must be 1..=1000000");
    let server = bench.server(durable).await;
    let nats = server.connect().await;
    let deployment = cim_deploy::Deployment::embedded().context("reading components.toml")?;
    cim_deploy::provision::provision(nats.clone(), &StoreConfig::default(), &deployment)
        .await
        .context("provisioning the server for the hub")?;
    let dir = tempfile_dir()?;
    let hub = Hub::start(&server, &hub_binary, dir.path()).await?;
    let token = cim_hub_api::Client::new(nats.clone(), Duration::from_secs(10))
        .create_token(&CreateToken {
            name: "cim-bench".into(),
            scope: Scope::Write,
            rate_per_sec: Some(u32::MAX / 2),
            burst: Some(u32::MAX / 2),
        })
        .await
        .context("creating a write token")?
        .token;
    report.notes.push(format!("hub: {} (pid {}), API at {}", hub_binary.display(), hub.pid, hub.api));

    // 1. The large object, first, so the hub's peak RSS is the object's.
    let rss_before = peak_rss_kib(hub.pid)?;
    objects(bench, &server, &hub, &token, &mut report).await?;
    let rss_after = peak_rss_kib(hub.pid)?;
    report.notes.push(format!(
        "hub peak RSS (VmHWM): {:.1} MiB once started, {:.1} MiB after the object",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    ));
    report.checks.push(Check::at_most(
        "hub peak RSS through the large object, MiB",
        rss_after as f64 / 1024.0,
        TARGET_PEAK_MIB,
    ));

    if p.hub_objects_only {
        report.notes.push("--hub-objects-only: no HTTP load was run".into());
        return Ok(report);
    }

    // 2. Appends.
    let body = json!({ "events": [{ "event_type": "Bench", "payload": { "pad": "x".repeat(PAD) } }] }).to_string();
    let url = format!("{}/v1/aggregates/{APPEND_TYPE}/a[0-9]{{{}}}/events", hub.api, digits(aggregates));
    let spread = 10usize.pow(digits(aggregates));
    let load_before = load_average();
    let hub_append =
        Oha::run(&oha, &dir.path().join("append.json"), seconds, concurrency, &token, OhaTarget::Post { url, body })
            .await?;
    let store = EventStore::provision(
        bench.connect(durable).await?,
        StoreConfig { namespace: fresh_namespace("w8"), ..StoreConfig::default() },
    )
    .await
    .context("opening the direct store")?;
    let direct_append = direct_appends(&store, seconds, concurrency, spread).await?;
    report.notes.push(format!(
        "appends: one event of ~256 B a request (payload {{\"pad\": {PAD} × \"x\"}}), aggregate {APPEND_TYPE}/a<n> \
         with n uniform in 0..{spread}; load average before: {load_before}, after: {}",
        load_average()
    ));
    let hub_row = hub_append.row(format!("hub: POST …/events (oha, {concurrency} connections)"));
    let direct_row = direct_append.row(format!("store append, {concurrency} tasks"));
    report.checks.push(Check::at_least(
        "appends: hub throughput / store",
        hub_row.ops_per_sec / direct_row.ops_per_sec,
        TARGET_APPEND_RATIO,
    ));
    if let (Some(hub_p99), Some(direct_p99)) = (hub_row.p99_us, direct_row.p99_us) {
        report.notes.push(format!("appends: p99 hub / store = {:.2}", hub_p99 / direct_p99));
    }
    report.notes.extend(hub_append.problems("appends"));
    report.rows.push(direct_row);
    report.rows.push(hub_row);

    // 3. Reads by CID.
    let reader = EventStore::open(nats.clone(), StoreConfig::default()).await.context("opening the hub's store")?;
    let cids = prefill(&reader, READ_EVENTS).await?;
    let urls = dir.path().join("urls.txt");
    let lines: Vec<String> = cids.iter().map(|cid| format!("{}/v1/events/{cid}", hub.api)).collect();
    std::fs::write(&urls, lines.join("\n") + "\n").context("writing the URL list")?;
    let hub_read =
        Oha::run(&oha, &dir.path().join("read.json"), seconds, concurrency, &token, OhaTarget::Get { urls }).await?;
    let direct_read = direct_reads(&reader, &cids, seconds, concurrency).await?;
    report.notes.push(format!(
        "reads: {READ_EVENTS} events appended beforehand, each request or task gets one drawn at random by CID; \
         the hub also looks up the caller (`caller_at`) that it shows, the direct reads do not"
    ));
    let hub_row = hub_read.row(format!("hub: GET /v1/events/{{cid}} (oha, {concurrency} connections)"));
    let direct_row = direct_read.row(format!("store event(cid), {concurrency} tasks"));
    report.notes.push(format!("reads: throughput hub / store = {:.2}", hub_row.ops_per_sec / direct_row.ops_per_sec));
    if let (Some(hub_p99), Some(direct_p99)) = (hub_row.p99_us, direct_row.p99_us) {
        report.notes.push(format!("reads: p99 hub / store = {:.2}", hub_p99 / direct_p99));
    }
    report.notes.extend(hub_read.problems("reads"));
    report.rows.push(direct_row);
    report.rows.push(hub_row);
    report.notes.push(format!("hub peak RSS (VmHWM) at the end: {:.1} MiB", peak_rss_kib(hub.pid)? as f64 / 1024.0));
    drop(hub);
    Ok(report)
}

fn tempfile_dir() -> Result<tempfile::TempDir> {
    tempfile::tempdir().context("creating a temporary directory")
}

/// Decimal digits for ids `0..n` (at least 1).
fn digits(n: usize) -> u32 {
    let mut d = 1;
    while 10usize.pow(d) < n {
        d += 1;
    }
    d
}

/// A running hub process and its API's base URL.
struct Hub {
    _process: ServiceProcess,
    pid: u32,
    api: String,
}

impl Hub {
    async fn start(server: &NatsServer, binary: &Path, dir: &Path) -> Result<Self> {
        ensure!(binary.is_file(), "no hub binary at {}", binary.display());
        let config = service_config(server, "bench1", "[hub]\nlisten = \"127.0.0.1:0\"\n");
        let process = ServiceProcess::start(binary.to_path_buf(), dir, "hub", &config);
        let pid = process.id().context("the hub exited at once")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let marker = "serving the HTTP API on ";
        let api = loop {
            let log = process.log();
            if let Some(i) = log.find(marker) {
                let url = log[i + marker.len()..].split_whitespace().next().unwrap_or_default();
                break url.trim_end_matches(|c: char| !c.is_ascii_digit()).to_owned();
            }
            if Instant::now() > deadline {
                bail!("the hub did not start its API; log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let nats = server.connect().await;
        while nats.request("$SRV.PING.cim-hub", "".into()).await.is_err() {
            ensure!(Instant::now() < deadline, "the hub does not answer $SRV.PING; log:\n{}", process.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self { _process: process, pid, api })
    }
}

/// Peak resident set of process `pid`, KiB.
fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading the hub's status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in the hub's status")
}

/// The large object through the hub and through the store, checked byte for byte by CID.
async fn objects(
    bench: &Bench,
    server: &NatsServer,
    hub: &Hub,
    token: &str,
    report: &mut WorkloadReport,
) -> Result<()> {
    let size = bench.params.object_bytes;
    // The same bytes as the store's put in workload 6 (object 0).
    let seed = 0x6f62_6a00;
    let mut hasher = cim_cid::RawHasher::default();
    let mut source = ByteSource::new(seed, size);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = source.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let expected = cim_cid::cid_from_digest(cim_cid::RAW, &hasher.digest()).to_string();
    let http = reqwest::Client::new();

    let started = Instant::now();
    let upload = tokio_util::io::ReaderStream::with_capacity(ByteSource::new(seed, size), 256 << 10);
    let response = http
        .put(format!("{}/v1/objects", hub.api))
        .bearer_auth(token)
        .body(reqwest::Body::wrap_stream(upload))
        .send()
        .await
        .context("PUT /v1/objects")?;
    let status = response.status();
    let text = response.text().await.context("reading the put's answer")?;
    let put_elapsed = started.elapsed();
    ensure!(status.as_u16() == 201, "PUT /v1/objects answered {status}: {text}");
    let stored: Value = serde_json::from_str(&text).context("the put's answer is not JSON")?;
    let cid = stored["cid"].as_str().unwrap_or_default().to_owned();
    ensure!(cid == expected, "the hub stored CID {cid}, the bytes hash to {expected}");

    let started = Instant::now();
    let response =
        http.get(format!("{}/v1/objects/{cid}", hub.api)).bearer_auth(token).send().await.context("GET the object")?;
    ensure!(response.status().as_u16() == 200, "GET /v1/objects/{cid} answered {}", response.status());
    let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    ensure!(etag.trim_matches('"') == cid, "ETag {etag} is not the CID {cid}");
    let mut body = response.bytes_stream();
    let mut hasher = cim_cid::RawHasher::default();
    let mut got = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("reading the object")?;
        got += chunk.len() as u64;
        hasher.update(&chunk);
    }
    let get_elapsed = started.elapsed();
    let reread = cim_cid::cid_from_digest(cim_cid::RAW, &hasher.digest()).to_string();
    ensure!(got == size && reread == cid, "read back {got} B hashing to {reread}; put {size} B as {cid}");

    // The store's own put and get of the same bytes, each in a child process.
    let namespace = fresh_namespace("w8obj");
    let args = |phase| ChildArgs { phase, url: server.url(), name: namespace.clone(), count: 1, size };
    let store_put = child::run(&args(Phase::StorePut)).await?;
    let store_get = child::run(&args(Phase::StoreGet)).await?;
    let direct = EventStoreObjects::cid(bench, &namespace).await?;
    ensure!(direct == cid, "the store's own put of the same bytes has CID {direct}, the hub's {cid}");
    report.notes.push(format!(
        "object {cid}: the CID computed here = the hub's answer = the ETag = the hash of the {got} B read back \
         = the store's own put"
    ));
    let row = |label: &str, r: &child::ChildReport| {
        Row::new(label, r.ops, r.bytes, Duration::from_secs_f64(r.secs), None)
            .with("peak_rss_mib", r.peak_rss_kib as f64 / 1024.0)
    };
    let rows = [
        row("store object put (child process)", &store_put),
        Row::new("hub: PUT /v1/objects (streamed)", 1, size, put_elapsed, None),
        row("store object get, verified (child process)", &store_get),
        Row::new("hub: GET /v1/objects/{cid} (streamed, re-hashed)", 1, got, get_elapsed, None),
    ];
    report.notes.push(format!(
        "object: put throughput hub / store = {:.2}, get = {:.2}",
        rows[1].mib_per_sec / rows[0].mib_per_sec,
        rows[3].mib_per_sec / rows[2].mib_per_sec
    ));
    report.rows.extend(rows);
    Ok(())
}

/// The CID of the one object in a store namespace.
struct EventStoreObjects;

impl EventStoreObjects {
    async fn cid(bench: &Bench, namespace: &str) -> Result<String> {
        let store = cim_store::ObjectStore::open(
            bench.connect(bench.main_durable()).await?,
            &StoreConfig::with_namespace(namespace),
        )
        .await?;
        let list = store.list().await?;
        ensure!(list.len() == 1, "the store's namespace holds {} objects", list.len());
        Ok(list[0].cid.to_string())
    }
}

/// The event every append makes, as the hub builds it from the request body.
fn bench_event() -> NewEvent {
    let payload = Ipld::Map(BTreeMap::from([("pad".to_owned(), Ipld::String("x".repeat(PAD)))]));
    NewEvent::new("Bench", payload)
}

/// What a direct run measured.
struct Measured {
    ok: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Latencies,
}

impl Measured {
    fn row(mut self, label: String) -> Row {
        Row::new(label, self.ok, 0, self.elapsed, Some(&mut self.latencies)).with("errors", self.errors as f64)
    }
}

/// `concurrency` tasks appending `bench_event()` to random aggregates for `seconds`.
async fn direct_appends(store: &EventStore, seconds: f64, concurrency: usize, spread: usize) -> Result<Measured> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut rng = Rng::new(0x6875_6200 + t as u64);
                let (mut lat, mut ok, mut errors) = (Latencies::default(), 0u64, 0u64);
                while Instant::now() < deadline {
                    let key = AggregateKey::new(APPEND_TYPE, format!("a{}", rng.below(spread)))?;
                    let sent = Instant::now();
                    match store.append(&key, ExpectedVersion::Any, vec![bench_event()]).await {
                        Ok(_) => {
                            lat.record(sent.elapsed());
                            ok += 1;
                        }
                        Err(_) => errors += 1,
                    }
                }
                anyhow::Ok((lat, ok, errors))
            })
        })
        .collect();
    collect(tasks, started).await
}

/// `concurrency` tasks getting random events of `cids` for `seconds`.
async fn direct_reads(store: &EventStore, cids: &[Cid], seconds: f64, concurrency: usize) -> Result<Measured> {
    let cids: Arc<Vec<Cid>> = Arc::new(cids.to_vec());
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let (store, cids) = (store.clone(), cids.clone());
            tokio::spawn(async move {
                let mut rng = Rng::new(0x7265_6100 + t as u64);
                let (mut lat, mut ok, mut errors) = (Latencies::default(), 0u64, 0u64);
                while Instant::now() < deadline {
                    let cid = cids[rng.below(cids.len())];
                    let sent = Instant::now();
                    match store.event(&cid).await {
                        Ok(_) => {
                            lat.record(sent.elapsed());
                            ok += 1;
                        }
                        Err(_) => errors += 1,
                    }
                }
                anyhow::Ok((lat, ok, errors))
            })
        })
        .collect();
    collect(tasks, started).await
}

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<Result<(Latencies, u64, u64)>>>,
    started: Instant,
) -> Result<Measured> {
    let mut all = Measured { ok: 0, errors: 0, elapsed: Duration::ZERO, latencies: Latencies::default() };
    for task in tasks {
        let (lat, ok, errors) = task.await.context("a task panicked")??;
        all.latencies.merge(lat);
        all.ok += ok;
        all.errors += errors;
    }
    all.elapsed = started.elapsed();
    Ok(all)
}

/// Appends `n` events (one each to aggregates `hubread/r<i>`) and returns their CIDs.
async fn prefill(store: &EventStore, n: usize) -> Result<Vec<Cid>> {
    let mut cids = Vec::with_capacity(n);
    for i in 0..n {
        let key = AggregateKey::new(READ_TYPE, format!("r{i}"))?;
        let appended = store.append(&key, ExpectedVersion::Any, vec![bench_event()]).await?;
        cids.extend(appended.events.iter().map(|e| e.cid));
    }
    Ok(cids)
}

/// What oha is asked to load.
enum OhaTarget {
    /// POST `body` to URLs generated from the regex `url`.
    Post { url: String, body: String },
    /// GET URLs drawn from the file `urls`.
    Get { urls: PathBuf },
}

/// oha's JSON summary, as far as it is used here.
struct Oha {
    /// 2xx answers.
    ok: u64,
    /// Every answer by status, and every error by message.
    statuses: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    /// oha's elapsed time.
    secs: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
}

impl Oha {
    async fn run(
        oha: &Path,
        output: &Path,
        seconds: f64,
        concurrency: usize,
        token: &str,
        target: OhaTarget,
    ) -> Result<Self> {
        let mut command = tokio::process::Command::new(oha);
        command
            .args(["--no-tui", "--output-format", "json", "-o"])
            .arg(output)
            .args(["-z", &format!("{}ms", (seconds * 1000.0).round() as u64)])
            .args(["-c", &concurrency.to_string()])
            .args(["-H", &format!("Authorization: Bearer {token}")]);
        match target {
            OhaTarget::Post { url, body } => {
                command.args(["-m", "POST", "-T", "application/json", "-d", &body, "--rand-regex-url", &url]);
            }
            OhaTarget::Get { urls } => {
                command.arg("--urls-from-file").arg(urls);
            }
        }
        let status = command.stdin(std::process::Stdio::null()).status().await.context("running oha")?;
        ensure!(status.success(), "oha failed ({status})");
        let text = std::fs::read_to_string(output).context("reading oha's JSON output")?;
        Self::parse(&text)
    }

    fn parse(text: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(text).context("oha's output is not JSON")?;
        let counts = |key: &str| -> BTreeMap<String, u64> {
            v[key]
                .as_object()
                .map(|o| o.iter().map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0))).collect())
                .unwrap_or_default()
        };
        let statuses = counts("statusCodeDistribution");
        let errors = counts("errorDistribution");
        let ok = statuses.iter().filter(|(k, _)| k.starts_with('2')).map(|(_, n)| n).sum();
        let secs = v["summary"]["total"].as_f64().context("no summary.total in oha's output")?;
        let percentile = |key: &str| v["latencyPercentiles"][key].as_f64().map(|s| s * 1e6);
        Ok(Self { ok, statuses, errors, secs, p50_us: percentile("p50"), p99_us: percentile("p99") })
    }

    fn row(&self, label: String) -> Row {
        let mut row = Row::new(label, self.ok, 0, Duration::from_secs_f64(self.secs), None);
        row.p50_us = self.p50_us;
        row.p99_us = self.p99_us;
        let others: u64 = self.statuses.iter().filter(|(k, _)| !k.starts_with('2')).map(|(_, n)| n).sum();
        row.with("errors", (others + self.errors.values().sum::<u64>()) as f64)
    }

    /// Notes on anything but 2xx answers.
    fn problems(&self, what: &str) -> Vec<String> {
        let mut notes = Vec::new();
        let others: Vec<_> = self.statuses.iter().filter(|(k, _)| !k.starts_with('2')).collect();
        if !others.is_empty() {
            notes.push(format!("{what} through the hub: non-2xx answers {others:?}"));
        }
        if !self.errors.is_empty() {
            notes.push(format!(
                "{what} through the hub: oha errors {:?} (requests cut at the deadline are counted here)",
                self.errors
            ));
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oha_json_is_read() {
        let text = r#"{"summary":{"successRate":1.0,"total":2.0,"requestsPerSec":10.0},
            "latencyPercentiles":{"p50":0.001,"p99":0.004},
            "statusCodeDistribution":{"201":18,"409":2},"errorDistribution":{"aborted due to deadline":3}}"#;
        let oha = Oha::parse(text).expect("parsed");
        assert_eq!(oha.ok, 18);
        assert_eq!(oha.p99_us, Some(4000.0));
        let row = oha.row("x".into());
        assert_eq!(row.ops_per_sec, 9.0);
        assert_eq!(row.extra["errors"], 5.0);
    }

    #[test]
    fn digits_cover_the_spread() {
        assert_eq!(digits(1), 1);
        assert_eq!(digits(10), 1);
        assert_eq!(digits(1000), 3);
        assert_eq!(digits(1001), 4);
    }
}

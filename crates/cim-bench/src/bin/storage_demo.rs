//! `storage-demo` (`cargo xtask storage-demo`): the Storage Manager's
//! must-show, end to end, with real processes, and its throughput against
//! raw S3 with the same client.
//!
//! 1. A durable nats-server, SeaweedFS (warm) and s3s-fs (cold); the
//!    registry and the IUS.
//! 2. Objects (log-uniform sizes between 1 KiB and the maximum), names for
//!    some, units with objects attached (through the IUS), and events up to
//!    the count asked for.
//! 3. `cim-storage` seals everything and copies it down (timed), beside raw
//!    S3 puts of the same bytes with the same client and concurrency.
//! 4. A scrub.
//! 5. The JetStream store is deleted; a fresh nats-server starts; the
//!    manager on it; `cim restore` (timed), beside raw S3 gets of the same
//!    bytes.
//! 6. `cim verify`, then the same CIDs, names and units (the IUS's projection
//!    digest) as before.
//!
//! Prints a report (and `--json` writes it as JSON). Nothing is asserted on
//! timing; everything else is checked and fails the run.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use cim_cid::{AggregateKey, Cid, Ipld, NewEvent};
use cim_storage_api::TierName;
use cim_store::{CommitMode, EventStore, ExpectedVersion, NamedObjects, ObjectStore, StartAt, StoreConfig};
use cim_test_support::{NatsServer, S3Server, ServiceProcess, service_config, workspace_binary};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use serde::Serialize;

#[derive(Debug, Parser)]
#[command(about = "The Storage Manager end to end: archive, scrub, delete hot, restore, verify; with raw S3 beside it")]
struct Args {
    /// Events in the store.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Objects (log-uniform sizes from 1 KiB to --max-object-mib).
    #[arg(long, default_value_t = 1000)]
    objects: u64,
    /// Largest object, MiB.
    #[arg(long, default_value_t = 64)]
    max_object_mib: u64,
    /// Units created through the IUS (each with an object attached).
    #[arg(long, default_value_t = 200)]
    units: u64,
    /// Tiny sizes: 20,000 events, 30 objects up to 4 MiB, 20 units.
    #[arg(long)]
    quick: bool,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the data directory (printed) instead of removing it.
    #[arg(long)]
    keep: bool,
}

const WARM: &str = "cim-warm";
const COLD: &str = "cim-cold";
const NAMESPACE: &str = "cim";
const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Default, Serialize)]
struct Report {
    events: u64,
    aggregates: u64,
    units: u64,
    objects: u64,
    object_bytes: u64,
    names: u64,
    segments: u64,
    segment_bytes: u64,
    /// Seconds to seal everything and copy it to both tiers, verified.
    archive_secs: f64,
    /// Bytes the manager wrote to the tiers (both counted).
    archive_bytes: u64,
    /// Seconds raw S3 puts of the same bytes (segments and objects, to both tiers) took.
    raw_put_secs: f64,
    /// raw_put_secs / archive_secs: the manager's throughput as a fraction of raw puts'.
    archive_ratio: f64,
    scrub_secs: f64,
    scrub_items: u64,
    scrub_findings: u64,
    /// Seconds `cim restore` took on the fresh server.
    restore_secs: f64,
    /// Bytes it read (segments and objects).
    restore_bytes: u64,
    /// Seconds raw S3 gets of the same bytes from warm took.
    raw_get_secs: f64,
    /// raw_get_secs / restore_secs.
    restore_ratio: f64,
    verify_secs: f64,
    verify_ok: bool,
    same_event_cids: bool,
    same_objects: bool,
    same_names: bool,
    same_units: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = Args::parse();
    if args.quick {
        (args.events, args.objects, args.max_object_mib, args.units) = (20_000, 30, 4, 20);
    }
    let dir = tempfile::Builder::new().prefix("cim-storage-demo-").tempdir().context("temporary directory")?;
    let report = run(&args, dir.path()).await;
    if args.keep {
        println!("data kept in {}", dir.keep().display());
    }
    let report = report?;
    println!("{}", text(&report));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn text(r: &Report) -> String {
    let mb = |b: u64| b as f64 / MIB;
    format!(
        "store: {} events in {} aggregates, {} units, {} objects ({:.1} MiB), {} names\n\
         archive: {} segments ({:.1} MiB); seal+copy to both tiers, verified: {:.1}s ({:.1} MiB/s); raw S3 put of the same bytes: {:.1}s ({:.1} MiB/s); ratio {:.2}\n\
         scrub: {} items in {:.1}s, {} findings\n\
         restore: {:.1}s ({:.1} MiB/s); raw S3 get of the same bytes: {:.1}s ({:.1} MiB/s); ratio {:.2}\n\
         verify: {} in {:.1}s; same event CIDs {}, same objects {}, same names {}, same units {}",
        r.events,
        r.aggregates,
        r.units,
        r.objects,
        mb(r.object_bytes),
        r.names,
        r.segments,
        mb(r.segment_bytes),
        r.archive_secs,
        mb(r.archive_bytes) / r.archive_secs,
        r.raw_put_secs,
        mb(r.archive_bytes) / r.raw_put_secs,
        r.archive_ratio,
        r.scrub_items,
        r.scrub_secs,
        r.scrub_findings,
        r.restore_secs,
        mb(r.restore_bytes) / r.restore_secs,
        r.raw_get_secs,
        mb(r.restore_bytes) / r.raw_get_secs,
        r.restore_ratio,
        if r.verify_ok { "clean" } else { "PROBLEMS" },
        r.verify_secs,
        r.same_event_cids,
        r.same_objects,
        r.same_names,
        r.same_units
    )
}

/// Deterministic sizes, log-uniform between 1 KiB and `max` bytes.
fn sizes(count: u64, max: u64) -> Vec<u64> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let (low, high) = ((1024f64).ln(), (max as f64).ln());
    (0..count)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            // The first and last objects are the extremes.
            match i {
                0 => 1024,
                1 => max,
                _ => (low + unit * (high - low)).exp() as u64,
            }
        })
        .collect()
}

/// The bytes of object `index` of `size`: cheap to make again for the raw
/// comparison.
fn object_bytes(index: u64, size: u64) -> Vec<u8> {
    let seed = index.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut bytes = vec![0u8; size as usize];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let word = (seed ^ (i as u64).wrapping_mul(0x9e37_79b9)).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    bytes
}

struct Tiers {
    warm: S3Server,
    cold: S3Server,
    warm_creds: (PathBuf, PathBuf),
    cold_creds: (PathBuf, PathBuf),
}

impl Tiers {
    fn client(&self, tier: TierName) -> Arc<dyn object_store::ObjectStore> {
        let (server, bucket) = match tier {
            TierName::Warm => (&self.warm, WARM),
            TierName::Cold => (&self.cold, COLD),
        };
        let options = object_store::ClientOptions::new()
            .with_allow_http(true)
            .with_timeout(Duration::from_secs(300))
            .with_connect_timeout(Duration::from_secs(5));
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(server.endpoint())
                .with_bucket_name(bucket)
                .with_region("us-east-1")
                .with_access_key_id(server.access_key())
                .with_secret_access_key(server.secret_key())
                .with_allow_http(true)
                .with_client_options(options)
                .build()
                .expect("an S3 client"),
        )
    }

    fn config(&self, nats: &NatsServer, work: &FsPath) -> String {
        let tier = |name: &str, server: &S3Server, bucket: &str, creds: &(PathBuf, PathBuf)| {
            format!(
                "[storage.{name}]\nendpoint = \"{}\"\nbucket = \"{bucket}\"\nallow_http = true\naccess_key_file = \"{}\"\nsecret_key_file = \"{}\"\n\n",
                server.endpoint(),
                creds.0.display(),
                creds.1.display()
            )
        };
        let extra = format!(
            "[store]\nnamespace = \"{NAMESPACE}\"\n\n[storage]\nwork_dir = \"{}\"\n\n{}{}[storage.seal]\nmax_events = 100000\ninterval_secs = 0\n\n[storage.copy]\ninterval_secs = 0\nconcurrency = 4\n\n[storage.scrub]\ninterval_secs = 0\nconcurrency = 4\n",
            work.display(),
            tier("warm", &self.warm, WARM, &self.warm_creds),
            tier("cold", &self.cold, COLD, &self.cold_creds),
        );
        service_config(nats, "storage-demo", &extra)
    }
}

async fn wait_serving(client: &async_nats::Client, name: &str, process: &ServiceProcess) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while client.request(format!("$SRV.PING.{name}"), "".into()).await.is_err() {
        if Instant::now() > deadline {
            bail!("{name} does not answer; log:\n{}", process.log());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Creates the streams and buckets, as `cim-provision.service` does on a
/// host before its components start (they only attach).
async fn provision(client: &async_nats::Client) -> Result<()> {
    let deployment = cim_deploy::Deployment::embedded().context("components.toml")?;
    cim_deploy::provision::provision(client.clone(), &StoreConfig::with_namespace(NAMESPACE), &deployment)
        .await
        .context("provisioning")?;
    Ok(())
}

fn cim(url: &str, args: &[&str]) -> Result<serde_json::Value> {
    let binary = workspace_binary("cim-cli", "cim");
    let output = Command::new(binary)
        .args(["--nats", url, "--namespace", NAMESPACE, "--json"])
        .args(args)
        .env_remove("CIM_NATS_SERVER")
        .output()
        .context("running cim")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "cim {} failed ({}): {stdout}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).with_context(|| format!("cim {}: not JSON: {stdout}", args.join(" ")))
}

/// What must come back: every event CID in order (as one digest), the
/// objects, the names, the units.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    events: u64,
    event_digest: Cid,
    objects: Vec<(Cid, u64)>,
    names: BTreeMap<String, Cid>,
}

async fn fingerprint(client: async_nats::Client) -> Result<Fingerprint> {
    let config = StoreConfig::with_namespace(NAMESPACE);
    let events = EventStore::open(client.clone(), config.clone()).await?;
    let mut hasher = cim_cid::RawHasher::default();
    let mut count = 0;
    let mut log = events.read_log(StartAt::Beginning).await?;
    while let Some(stored) = log.next().await {
        let stored = stored?;
        hasher.update(&stored.seq.to_be_bytes());
        hasher.update(&stored.event.cid.to_bytes());
        count += 1;
    }
    let objects = ObjectStore::open(client.clone(), &config).await?;
    let mut list: Vec<(Cid, u64)> = objects.list().await?.into_iter().map(|m| (m.cid, m.size)).collect();
    list.sort();
    let named = NamedObjects::open(objects, client, &config).await?;
    let mut names = BTreeMap::new();
    for name in named.names().await? {
        if let Some(head) = named.head(&name).await? {
            names.insert(name, head.cid);
        }
    }
    Ok(Fingerprint { events: count, event_digest: hasher.finish(), objects: list, names })
}

async fn run(args: &Args, dir: &FsPath) -> Result<Report> {
    let mut report = Report::default();
    // Built before anything is timed.
    for (package, binary) in
        [("cim-registry", "cim-registry"), ("cim-ius", "cim-ius"), ("cim-storage", "cim-storage"), ("cim-cli", "cim")]
    {
        workspace_binary(package, binary);
    }
    println!("starting nats-server, SeaweedFS (warm), s3s-fs (cold) in {}", dir.display());
    let nats_dir = dir.join("nats-1");
    let (mut nats, warm, cold) =
        tokio::join!(NatsServer::builder().store_dir(&nats_dir).start(), S3Server::seaweedfs(), S3Server::s3s_fs());
    warm.create_bucket(WARM);
    cold.create_bucket(COLD);
    let tiers = Tiers {
        warm_creds: warm.write_credentials(dir, "warm"),
        cold_creds: cold.write_credentials(dir, "cold"),
        warm,
        cold,
    };
    let work = dir.join("work");
    std::fs::create_dir_all(&work)?;
    let client = nats.connect().await;
    provision(&client).await?;

    // The registry and the IUS.
    let registry = ServiceProcess::start(
        workspace_binary("cim-registry", "cim-registry"),
        dir,
        "registry",
        &service_config(&nats, "r1", &format!("[store]\nnamespace = \"{NAMESPACE}\"\n")),
    );
    wait_serving(&client, "cim-registry", &registry).await?;
    let ius = ServiceProcess::start(
        workspace_binary("cim-ius", "cim-ius"),
        dir,
        "ius",
        &service_config(&nats, "i1", &format!("[store]\nnamespace = \"{NAMESPACE}\"\n")),
    );
    wait_serving(&client, "cim-ius", &ius).await?;

    // Objects.
    let config = StoreConfig { commit: CommitMode::Grouped, ..StoreConfig::with_namespace(NAMESPACE) };
    let objects = ObjectStore::open(client.clone(), &config).await?;
    let sizes = sizes(args.objects, args.max_object_mib * 1024 * 1024);
    let started = Instant::now();
    let cids: Vec<Cid> = futures::stream::iter(sizes.iter().enumerate())
        .map(|(index, &size)| {
            let objects = objects.clone();
            async move { objects.put_bytes(&object_bytes(index as u64, size)).await }
        })
        .buffered(4)
        .try_collect()
        .await?;
    report.objects = cids.len() as u64;
    report.object_bytes = sizes.iter().sum();
    println!(
        "{} objects ({:.1} MiB) stored in {:.1}s",
        report.objects,
        report.object_bytes as f64 / MIB,
        started.elapsed().as_secs_f64()
    );
    let named = NamedObjects::open(objects.clone(), client.clone(), &config).await?;
    for (index, cid) in cids.iter().enumerate().step_by(10) {
        named.set(&format!("demo/object-{index}"), *cid).await?;
        report.names += 1;
    }

    // Units through the IUS, each with an object.
    let ius_client = cim_ius_api::Client::new(client.clone(), Duration::from_secs(30));
    for index in 0..args.units {
        let created = ius_client
            .create(&cim_ius_api::Create {
                kind: "text-document".to_owned(),
                id: Some(format!("doc-{index}")),
                content: serde_json::json!({ "text": format!("document {index}") }),
                metadata: serde_json::json!({ "title": format!("Document {index}") }),
                tags: vec!["demo".to_owned()],
                caused_by: Vec::new(),
            })
            .await
            .with_context(|| format!("creating unit doc-{index}"))?;
        let cid = cids[(index as usize) % cids.len()];
        ius_client
            .attach(&cim_ius_api::Attach {
                target: cim_ius_api::Target { id: created.id, expected_version: None, caused_by: Vec::new() },
                role: "body".to_owned(),
                cid: cid.to_string(),
                media_type: Some("application/octet-stream".to_owned()),
            })
            .await
            .context("attaching an object")?;
    }
    report.units = args.units;
    let units_before = ius_client.status().await?;

    // Events up to the count asked for.
    let store = EventStore::open(client.clone(), config.clone()).await?;
    let have = store.log_state().await?.last_seq;
    let todo = args.events.saturating_sub(have);
    let aggregates = 1000.min(todo.max(1));
    let writers = 64u64.min(aggregates);
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let store = store.clone();
            let cids = cids.clone();
            tokio::spawn(async move {
                let mut n = writer;
                while n < todo {
                    let aggregate = AggregateKey::new("demo", format!("a{}", n % aggregates))?;
                    let mut payload = BTreeMap::from([("n".to_owned(), Ipld::Integer(i128::from(n)))]);
                    if n % 100 == 0 {
                        payload.insert("object".to_owned(), Ipld::Link(cids[(n as usize / 100) % cids.len()]));
                    }
                    store
                        .append(&aggregate, ExpectedVersion::Any, vec![NewEvent::new("Happened", Ipld::Map(payload))])
                        .await?;
                    n += writers;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let log = store.log_state().await?;
    report.events = log.last_seq;
    report.aggregates = log.aggregates;
    println!(
        "{} events in {} aggregates stored ({} appended in {:.1}s)",
        report.events,
        report.aggregates,
        todo,
        started.elapsed().as_secs_f64()
    );
    let before = fingerprint(client.clone()).await?;

    // Archive: seal + copy, timed.
    let mut storage = ServiceProcess::start(
        workspace_binary("cim-storage", "cim-storage"),
        dir,
        "storage",
        &tiers.config(&nats, &work),
    );
    wait_serving(&client, "cim-storage", &storage).await?;
    let manager = cim_storage_api::Client::new(client.clone(), Duration::from_secs(7200));
    let started = Instant::now();
    let sealed = manager.seal(true).await.map_err(|e| anyhow::anyhow!("seal: {e}; log:\n{}", storage.log()))?;
    report.archive_secs = started.elapsed().as_secs_f64();
    let status = manager.status().await?;
    report.segments = status.segments;
    report.segment_bytes = status.tiers[0].segment_bytes;
    report.archive_bytes = status.tiers.iter().map(|t| t.written_bytes).sum();
    ensure!(
        status.sealed_through_seq == report.events,
        "sealed through {} of {}",
        status.sealed_through_seq,
        report.events
    );
    ensure!(status.tiers.iter().all(|t| t.lag_events == 0 && t.lag_objects == 0), "lag after the seal: {status:?}");
    println!(
        "sealed {} segments ({} now) and copied {} objects to both tiers in {:.1}s",
        report.segments,
        sealed.sealed.len(),
        sealed.objects_copied,
        report.archive_secs
    );

    // Raw puts of the same bytes: the segments and the objects, to both tiers.
    let segments = manager.segments(&cim_storage_api::SegmentQuery::default()).await?.segments;
    let warm_client = tiers.client(TierName::Warm);
    let started = Instant::now();
    for tier in TierName::ALL {
        let target = tiers.client(tier);
        let segment_bytes: Vec<Bytes> = futures::stream::iter(&segments)
            .then(|s| {
                let warm = warm_client.clone();
                async move { warm.get(&Path::from(format!("segments/{}", s.segment))).await?.bytes().await }
            })
            .try_collect()
            .await?;
        let _ = &segment_bytes;
        futures::stream::iter(segment_bytes.into_iter().enumerate())
            .map(|(i, bytes)| raw_put(target.clone(), format!("raw/segments/{i}"), bytes))
            .buffer_unordered(4)
            .try_collect::<Vec<_>>()
            .await?;
        futures::stream::iter(sizes.iter().enumerate())
            .map(|(i, &size)| {
                raw_put(target.clone(), format!("raw/objects/{i}"), Bytes::from(object_bytes(i as u64, size)))
            })
            .buffer_unordered(4)
            .try_collect::<Vec<_>>()
            .await?;
    }
    report.raw_put_secs = started.elapsed().as_secs_f64();
    report.archive_ratio = report.raw_put_secs / report.archive_secs;

    // Scrub.
    let started = Instant::now();
    let scrub = manager.scrub(true).await?;
    report.scrub_secs = started.elapsed().as_secs_f64();
    report.scrub_items = scrub.items_checked;
    report.scrub_findings = scrub.findings.len() as u64;
    ensure!(scrub.findings.is_empty(), "the scrub found {:?}", scrub.findings);

    // Delete the JetStream store completely; a fresh server.
    drop((storage.terminate(), ius, registry));
    drop(client);
    nats.kill();
    std::fs::remove_dir_all(&nats_dir).context("deleting the JetStream store")?;
    println!("deleted the JetStream store {}", nats_dir.display());
    let nats = NatsServer::builder().store_dir(dir.join("nats-2")).start().await;
    let client = nats.connect().await;
    provision(&client).await?;
    let storage = ServiceProcess::start(
        workspace_binary("cim-storage", "cim-storage"),
        dir,
        "storage-2",
        &tiers.config(&nats, &work),
    );
    wait_serving(&client, "cim-storage", &storage).await?;
    let manager = cim_storage_api::Client::new(client.clone(), Duration::from_secs(120));
    let status = manager.status().await?;
    ensure!(status.restore_needed, "a fresh host must need a restore: {status:?}");

    let started = Instant::now();
    let restored = cim(&nats.url(), &["restore"])?;
    report.restore_secs = started.elapsed().as_secs_f64();
    report.restore_bytes = report.segment_bytes + report.object_bytes;
    println!("restored in {:.1}s: {restored}", report.restore_secs);

    // Raw gets of the same bytes from warm.
    let started = Instant::now();
    let keys: Vec<String> = segments
        .iter()
        .map(|s| format!("segments/{}", s.segment))
        .chain(cids.iter().map(|c| format!("objects/{c}")))
        .collect();
    futures::stream::iter(keys)
        .map(|key| {
            let warm = warm_client.clone();
            async move {
                let mut stream = warm.get(&Path::from(key)).await?.into_stream();
                while let Some(chunk) = stream.next().await {
                    chunk?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(4)
        .try_collect::<Vec<_>>()
        .await?;
    report.raw_get_secs = started.elapsed().as_secs_f64();
    report.restore_ratio = report.raw_get_secs / report.restore_secs;

    // Verify, and compare.
    let started = Instant::now();
    let verified = cim(&nats.url(), &["verify"])?;
    report.verify_secs = started.elapsed().as_secs_f64();
    report.verify_ok = verified["ok"] == serde_json::Value::Bool(true);
    let after = fingerprint(client.clone()).await?;
    report.same_event_cids = before.events == after.events && before.event_digest == after.event_digest;
    // Hot now also holds the archive's checkpoints and names snapshots.
    let restored_objects: std::collections::HashSet<&(Cid, u64)> = after.objects.iter().collect();
    report.same_objects = before.objects.iter().all(|o| restored_objects.contains(o));
    report.same_names = before.names == after.names;
    let registry = ServiceProcess::start(
        workspace_binary("cim-registry", "cim-registry"),
        dir,
        "registry-2",
        &service_config(&nats, "r2", &format!("[store]\nnamespace = \"{NAMESPACE}\"\n")),
    );
    wait_serving(&client, "cim-registry", &registry).await?;
    let ius = ServiceProcess::start(
        workspace_binary("cim-ius", "cim-ius"),
        dir,
        "ius-2",
        &service_config(&nats, "i2", &format!("[store]\nnamespace = \"{NAMESPACE}\"\n")),
    );
    wait_serving(&client, "cim-ius", &ius).await?;
    let units_after = cim_ius_api::Client::new(client.clone(), Duration::from_secs(30)).status().await?;
    report.same_units = units_before.units == units_after.units && units_before.digest == units_after.digest;
    drop((storage, ius, registry));
    ensure!(report.verify_ok, "cim verify: {verified}");
    ensure!(
        report.same_event_cids && report.same_objects && report.same_names && report.same_units,
        "not everything came back: {report:?}"
    );
    Ok(report)
}

async fn raw_put(target: Arc<dyn object_store::ObjectStore>, key: String, bytes: Bytes) -> Result<()> {
    let path = Path::from(key);
    if bytes.len() <= 16 * 1024 * 1024 {
        target.put(&path, PutPayload::from(bytes)).await?;
    } else {
        let mut upload = WriteMultipart::new_with_chunk_size(target.put_multipart(&path).await?, 8 * 1024 * 1024);
        for chunk in bytes.chunks(1 << 20) {
            upload.wait_for_capacity(4).await?;
            upload.write(chunk);
        }
        upload.finish().await?;
    }
    Ok(())
}

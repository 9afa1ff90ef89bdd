//! Workload 6: objects. One large object and many small ones, put and got
//! through the store (content-addressed, chunks pipelined, every read
//! re-hashed) and through async-nats' own object store (which awaits each
//! chunk's ack in turn) — the same bytes, the same server. Each put and get
//! runs in its own child process, so its peak RSS is its own.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use async_nats::jetstream::{self, object_store};
use cim_store::{ObjectStore, StoreConfig};
use futures::StreamExt;
use serde_json::json;
use tokio::io::AsyncReadExt;

use super::fresh_namespace;
use crate::child::{self, ChildArgs, ChildReport, Phase};
use crate::data::ByteSource;
use crate::report::{Check, Row, WorkloadReport};
use crate::stats::Latencies;
use crate::{Bench, server_name};

const TARGET_PUT: f64 = 1.5;
const TARGET_GET: f64 = 1.0;
const TARGET_PEAK_MIB: f64 = 100.0;

pub async fn run(bench: &Bench) -> Result<WorkloadReport> {
    let p = &bench.params;
    let durable = bench.main_durable();
    let mut report = WorkloadReport::new(
        6,
        "objects",
        format!(
            "one object of {} B and {} objects of {} B, {}",
            p.object_bytes,
            p.small_objects,
            p.small_object_bytes,
            server_name(durable)
        ),
        json!({ "object_bytes": p.object_bytes, "small_objects": p.small_objects, "small_object_bytes": p.small_object_bytes, "durable": durable }),
    );
    let url = bench.server(durable).await.url();
    for (what, count, size) in [("large", 1, p.object_bytes), ("small", p.small_objects, p.small_object_bytes)] {
        let raw_bucket = fresh_namespace("w6raw");
        let namespace = fresh_namespace("w6");
        let args = |phase, name: &str| ChildArgs { phase, url: url.clone(), name: name.to_owned(), count, size };
        let mut reports = Vec::new();
        for (phase, name) in [
            (Phase::RawPut, &raw_bucket),
            (Phase::StorePut, &namespace),
            (Phase::RawGet, &raw_bucket),
            (Phase::StoreGet, &namespace),
        ] {
            reports.push(child::run(&args(phase, name)).await?);
        }
        let label = |op: &str| format!("{what}: {op} ({count} × {size} B)");
        let row = |label: String, r: &ChildReport| {
            let mut row = Row::new(label, r.ops, r.bytes, std::time::Duration::from_secs_f64(r.secs), None)
                .with("peak_rss_mib", r.peak_rss_kib as f64 / 1024.0);
            row.p50_us = r.p50_us;
            row.p99_us = r.p99_us;
            for (k, v) in &r.extra {
                row = row.with(k, *v);
            }
            row
        };
        let rows = [
            row(label("raw object store put"), &reports[0]),
            row(label("store put"), &reports[1]),
            row(label("raw object store get"), &reports[2]),
            row(label("store get (verified)"), &reports[3]),
        ];
        report.checks.push(Check::at_least(
            format!("{what}: put throughput / raw"),
            rows[1].mib_per_sec / rows[0].mib_per_sec,
            TARGET_PUT,
        ));
        report.checks.push(Check::at_least(
            format!("{what}: get throughput / raw"),
            rows[3].mib_per_sec / rows[2].mib_per_sec,
            TARGET_GET,
        ));
        report.checks.push(Check::at_most(
            format!("{what}: store put peak RSS, MiB"),
            rows[1].extra["peak_rss_mib"],
            TARGET_PEAK_MIB,
        ));
        report.checks.push(Check::at_most(
            format!("{what}: store get peak RSS, MiB"),
            rows[3].extra["peak_rss_mib"],
            TARGET_PEAK_MIB,
        ));
        report.rows.extend(rows);
    }
    Ok(report)
}

/// The content of object `i` of a run: the same for the raw and the store puts.
fn source(i: usize, size: u64) -> ByteSource {
    ByteSource::new(0x6f62_6a00 + i as u64, size)
}

fn object_name(i: usize) -> String {
    format!("obj-{i}")
}

/// Child: one put or get phase over `args.count` objects of `args.size` bytes.
pub async fn child(client: async_nats::Client, args: &ChildArgs) -> Result<ChildReport> {
    let js = jetstream::new(client.clone());
    let config = StoreConfig::with_namespace(&args.name);
    let mut latencies = Latencies::with_capacity(args.count);
    let mut bytes = 0u64;
    let mut chunks = 0u64;
    let report = match args.phase {
        Phase::RawPut => {
            let bucket = js
                .create_object_store(object_store::Config {
                    bucket: args.name.clone(),
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .context("creating the raw bucket")?;
            raise_consumer_limit(&js, &format!("OBJ_{}", args.name), args.count, "raw").await?;
            let report = ChildReport::begin();
            let started = Instant::now();
            for i in 0..args.count {
                let sent = Instant::now();
                let info =
                    bucket.put(object_name(i).as_str(), &mut source(i, args.size)).await.context("raw object put")?;
                latencies.record(sent.elapsed());
                bytes += info.size as u64;
                chunks += info.chunks as u64;
            }
            finish(report, args.count, bytes, started, latencies, chunks)
        }
        Phase::StorePut => {
            let store = ObjectStore::provision(client, &config).await.context("opening the object store")?;
            raise_consumer_limit(&js, &format!("OBJ_{}", store.bucket()), args.count, "store").await?;
            let report = ChildReport::begin();
            let started = Instant::now();
            for i in 0..args.count {
                let sent = Instant::now();
                let meta = store.put(source(i, args.size)).await.context("store object put")?;
                latencies.record(sent.elapsed());
                bytes += meta.size;
                chunks += meta.chunks as u64;
            }
            finish(report, args.count, bytes, started, latencies, chunks)
        }
        Phase::RawGet => {
            let bucket = js.get_object_store(&args.name).await.context("opening the raw bucket")?;
            let mut buffer = vec![0u8; 128 * 1024];
            let report = ChildReport::begin();
            let started = Instant::now();
            for i in 0..args.count {
                let sent = Instant::now();
                let mut object = bucket.get(object_name(i)).await.context("raw object get")?;
                loop {
                    let n = object.read(&mut buffer).await.context("reading a raw object")?;
                    if n == 0 {
                        break;
                    }
                    bytes += n as u64;
                }
                latencies.record(sent.elapsed());
            }
            finish(report, args.count, bytes, started, latencies, 0)
        }
        Phase::StoreGet => {
            let store = ObjectStore::provision(client, &config).await.context("opening the object store")?;
            let mut cids: Vec<_> = store.list().await?.into_iter().map(|m| m.cid).collect();
            ensure!(cids.len() == args.count, "the store holds {} objects, not {}", cids.len(), args.count);
            cids.sort();
            let report = ChildReport::begin();
            let started = Instant::now();
            for cid in &cids {
                let sent = Instant::now();
                let mut reader = store.get(cid).await.context("store object get")?;
                while let Some(chunk) = reader.next().await {
                    bytes += chunk.context("reading a stored object")?.len() as u64;
                }
                latencies.record(sent.elapsed());
            }
            finish(report, args.count, bytes, started, latencies, 0)
        }
        Phase::RawDrain | Phase::StoreRebuild => unreachable!("not an object phase"),
    };
    Ok(report)
}

/// nats-server 2.15 limits every stream to 1,000 consumers unless the stream
/// sets a limit itself, and an object get (raw or the store's) leaves its
/// ephemeral consumer behind until it has been idle for 30 s: more than 1,000
/// gets in 30 s fail with 10026 "maximum consumers limit reached". Both
/// buckets get the same explicit limit so that the workload can run at all;
/// `CIM_BENCH_KEEP_CONSUMER_LIMIT=raw|store|all` leaves the server's default
/// in place for that side.
async fn raise_consumer_limit(js: &jetstream::Context, stream: &str, count: usize, side: &str) -> Result<()> {
    if std::env::var("CIM_BENCH_KEEP_CONSUMER_LIMIT").is_ok_and(|keep| keep == side || keep == "all") {
        return Ok(());
    }
    let mut config = js.get_stream(stream).await.context("opening an object stream")?.cached_info().config.clone();
    config.max_consumers = (2 * count as i32).max(1000);
    js.update_stream(config).await.context("raising an object stream's consumer limit")?;
    Ok(())
}

fn finish(
    report: ChildReport,
    count: usize,
    bytes: u64,
    started: Instant,
    mut latencies: Latencies,
    chunks: u64,
) -> ChildReport {
    let mut report = report.end(count as u64, bytes, started.elapsed());
    report.p50_us = latencies.quantile_us(0.5);
    report.p99_us = latencies.quantile_us(0.99);
    if chunks > 0 {
        report.extra.insert("chunks".into(), chunks as f64);
    }
    report
}

//! Workload 5: cold start. A stream of events (chained, ~10% with a parent
//! in another aggregate) is rebuilt into the MerkleDAG by a fresh store —
//! every CID and chain verified — and drained raw by an ordered consumer.
//! Both run in child processes, so the resident-set growth of the rebuild is
//! the DAG's (plus whatever the allocator keeps).

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use async_nats::HeaderMap;
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use cim_cid::Cid;
use cim_store::{EventStore, StoreConfig};
use futures::StreamExt;
use serde_json::json;

use super::fresh_namespace;
use crate::child::{self, ChildArgs, ChildReport, Phase};
use crate::data::{EventMaker, Rng};
use crate::raw::{self, RawMessage};
use crate::report::{Check, Row, WorkloadReport};
use crate::{Bench, server_name};

/// Rebuild throughput relative to the raw drain.
const TARGET_RATIO: f64 = 0.8;
/// Resident memory the DAG may add per event, bytes.
const TARGET_BYTES_PER_EVENT: f64 = 128.0;
/// Events generated and published at a time while filling the stream.
const FILL_CHUNK: usize = 50_000;

pub async fn run(bench: &Bench) -> Result<WorkloadReport> {
    let p = &bench.params;
    let durable = bench.main_durable();
    let (events, aggregates) = (p.rebuild_events, p.rebuild_aggregates.max(2));
    let mut report = WorkloadReport::new(
        5,
        "rebuild",
        format!(
            "cold start from {events} events of {} B over {aggregates} aggregates, {}",
            p.event_bytes,
            server_name(durable)
        ),
        json!({ "events": events, "aggregates": aggregates, "event_bytes": p.event_bytes, "durable": durable }),
    );
    let namespace = fresh_namespace("w5");
    let url = bench.server(durable).await.url();
    let client = bench.connect(durable).await?;
    EventStore::provision(client.clone(), StoreConfig::with_namespace(&namespace))
        .await
        .context("creating the store's stream")?;
    let filled = Instant::now();
    let bytes = fill(&client, &namespace, events, aggregates, p.event_bytes).await?;
    report.notes.push(format!("stream filled in {:.1} s (not measured)", filled.elapsed().as_secs_f64()));

    let args = |phase| ChildArgs { phase, url: url.clone(), name: namespace.clone(), count: events, size: 0 };
    let raw = child::run(&args(Phase::RawDrain)).await?;
    let store = child::run(&args(Phase::StoreRebuild)).await?;
    ensure!(store.ops == events as u64, "the rebuilt DAG holds {} events, not {events}", store.ops);
    let rss_per_event = (store.rss_end_kib.saturating_sub(store.rss_start_kib) * 1024) as f64 / events as f64;
    let peak_per_event = (store.peak_rss_kib.saturating_sub(store.rss_start_kib) * 1024) as f64 / events as f64;
    let raw_row = Row::new("raw ordered-consumer drain", raw.ops, bytes, secs(raw.secs), None)
        .with("peak_rss_mib", raw.peak_rss_kib as f64 / 1024.0);
    let mut store_row =
        Row::new("store open + DAG rebuild (every CID verified)", store.ops, bytes, secs(store.secs), None)
            .with("rss_delta_bytes_per_event", rss_per_event)
            .with("peak_rss_delta_bytes_per_event", peak_per_event)
            .with("peak_rss_mib", store.peak_rss_kib as f64 / 1024.0);
    for (key, value) in &store.extra {
        store_row = store_row.with(key, *value);
    }
    report.checks.push(Check::at_least(
        "rebuild throughput / raw drain",
        store_row.ops_per_sec / raw_row.ops_per_sec,
        TARGET_RATIO,
    ));
    report.checks.push(Check::at_most(
        "resident bytes per event after the rebuild",
        rss_per_event,
        TARGET_BYTES_PER_EVENT,
    ));
    report.rows.push(raw_row);
    report.rows.push(store_row);
    Ok(report)
}

fn secs(s: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(s)
}

/// Publishes `events` valid, chained events (message id = CID, as the store
/// writes them) spread at random over `aggregates`; ~10% name the latest
/// event of another aggregate as parent. Returns the bytes published.
async fn fill(
    client: &async_nats::Client,
    namespace: &str,
    events: usize,
    aggregates: usize,
    event_bytes: usize,
) -> Result<u64> {
    let js = async_nats::jetstream::new(client.clone());
    let maker = EventMaker::new(event_bytes)?;
    let mut rng = Rng::new(5);
    let mut heads: Vec<(u64, Option<Cid>)> = vec![(0, None); aggregates];
    let mut bytes = 0;
    let mut done = 0;
    while done < events {
        let n = FILL_CHUNK.min(events - done);
        let mut messages: Vec<RawMessage> = Vec::with_capacity(n);
        let mut cids = Vec::with_capacity(n);
        for _ in 0..n {
            let a = rng.below(aggregates);
            let other = (a + 1 + rng.below(aggregates - 1)) % aggregates;
            let parents = match heads[other].1 {
                Some(cid) if rng.below(10) == 0 => vec![cid],
                _ => Vec::new(),
            };
            let version = heads[a].0 + 1;
            let (cid, payload) = maker.encode(a, version, heads[a].1, parents)?;
            heads[a] = (version, Some(cid));
            bytes += payload.len() as u64;
            messages.push((raw::subject(namespace, a), payload));
            cids.push(cid.to_string());
        }
        raw::publish_window(&js, messages, 1000, |i| {
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, cids[i].as_str());
            Some(headers)
        })
        .await?;
        done += n;
    }
    Ok(bytes)
}

/// Child: reads every message of the namespace's event stream with an
/// ordered consumer, touching each payload.
pub async fn child_raw_drain(client: async_nats::Client, args: &ChildArgs) -> Result<ChildReport> {
    let report = ChildReport::begin();
    let config = StoreConfig::with_namespace(&args.name);
    let js = async_nats::jetstream::new(client);
    let started = Instant::now();
    let stream = js.get_stream(config.names().events_stream).await.context("opening the event stream")?;
    let consumer = stream
        .create_consumer(OrderedConfig { filter_subject: config.names().all_events(), ..Default::default() })
        .await
        .context("creating an ordered consumer")?;
    let pending = consumer.cached_info().num_pending as usize;
    let mut messages = consumer.messages().await.context("reading the stream")?.take(pending);
    let (mut count, mut bytes, mut checksum) = (0u64, 0u64, 0u8);
    while let Some(message) = messages.next().await {
        let message = message.context("reading the stream")?;
        bytes += message.payload.len() as u64;
        checksum ^= message.payload.first().copied().unwrap_or(0);
        count += 1;
    }
    let mut report = report.end(count, bytes, started.elapsed());
    report.extra.insert("checksum".into(), f64::from(checksum));
    Ok(report)
}

/// Child: opens the store and rebuilds its DAG, as a component does at start-up.
pub async fn child_store_rebuild(client: async_nats::Client, args: &ChildArgs) -> Result<ChildReport> {
    let report = ChildReport::begin();
    let started = Instant::now();
    let store = EventStore::open_with_dag(client, StoreConfig::with_namespace(&args.name))
        .await
        .context("rebuilding the DAG")?;
    let elapsed = started.elapsed();
    let dag = store.dag().await?;
    let problems = dag.problems().len();
    let guard = dag.read();
    let (len, links) = (guard.len() as u64, guard.link_count());
    drop(guard);
    let mut report = report.end(len, 0, elapsed);
    report.extra.insert("links".into(), links as f64);
    report.extra.insert("problems".into(), problems as f64);
    ensure!(problems == 0, "the rebuild found {problems} problems in a stream of valid events");
    Ok(report)
}

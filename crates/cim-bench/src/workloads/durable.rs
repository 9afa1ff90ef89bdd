//! Workload 3: the durable setting (`sync_interval: always`: an
//! acknowledged event is on disk). The store's group commit — appends from
//! many concurrent callers and aggregates merged into atomic batches —
//! against raw pipelined publishes (one flush per message) and raw atomic
//! batches (one flush per batch) of the same bytes.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{Context, Result};
use async_nats::header::NATS_BATCH_ID;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::stream;
use cim_cid::Cid;
use cim_store::{CommitMode, MAX_BATCH_EVENTS};
use futures::StreamExt;
use serde_json::json;

use super::{Append, fresh_namespace, open_store, run_appenders};
use crate::data::{EventMaker, aggregate};
use crate::raw::{self, RawMessage};
use crate::report::{Check, Row, WorkloadReport};
use crate::stats::Latencies;
use crate::{Bench, server_name};

/// Events per second the group commit must reach on the project's 2-core machine.
const TARGET_EVENTS_PER_SEC: f64 = 50_000.0;

pub async fn run(bench: &Bench) -> Result<WorkloadReport> {
    let p = &bench.params;
    let callers = p.callers.max(1);
    let mut report = WorkloadReport::new(
        3,
        "durable",
        format!(
            "{} events of {} B from {callers} concurrent callers (one aggregate each), {}",
            p.durable_events,
            p.event_bytes,
            server_name(true)
        ),
        json!({ "events": p.durable_events, "raw_events": p.durable_raw_events, "callers": callers, "event_bytes": p.event_bytes }),
    );
    let maker = EventMaker::new(p.event_bytes)?;
    // Caller c appends versions 1.. of aggregate c; message i is caller i % callers's.
    let mut heads: Vec<Option<Cid>> = vec![None; callers];
    let mut encoded = Vec::with_capacity(p.durable_events);
    for i in 0..p.durable_events {
        let (c, version) = (i % callers, (i / callers) as u64 + 1);
        let (cid, bytes) = maker.encode(c, version, heads[c], Vec::new())?;
        heads[c] = Some(cid);
        encoded.push((c, cid, bytes));
    }
    let bytes = |n: usize| encoded[..n].iter().map(|(_, _, b)| b.len() as u64).sum::<u64>();
    let messages = |namespace: &str, n: usize| -> Vec<RawMessage> {
        encoded[..n].iter().map(|(c, _, b)| (raw::subject(namespace, *c), b.clone())).collect()
    };

    let client = bench.connect(true).await?;
    let js = async_nats::jetstream::new(client.clone());

    let store = open_store(bench, true, "w3", CommitMode::Grouped).await?;
    let mut plans: Vec<Vec<Append>> = (0..callers).map(|_| Vec::new()).collect();
    for i in 0..p.durable_events {
        let (c, version) = (i % callers, (i / callers) as u64 + 1);
        plans[c].push((aggregate(c), version - 1, maker.new_event(c, version)));
    }
    let (elapsed, mut lat) = run_appenders(&store, plans).await?;
    let mut store_row = Row::new(
        format!("store group commit, {callers} callers"),
        p.durable_events as u64,
        bytes(p.durable_events),
        elapsed,
        Some(&mut lat),
    );
    let stream = js.get_stream(&store.names().events_stream).await.context("opening the store's stream")?;
    let batches = count_batches(&stream, &store.names().all_events()).await?;
    let mean_batch = p.durable_events as f64 / batches.max(1) as f64;
    store_row = store_row.with("commits", batches as f64).with("mean_events_per_commit", mean_batch);

    let raw_n = p.durable_raw_events.min(p.durable_events);
    let namespace = fresh_namespace("w3pub");
    raw::create_event_stream(&js, &namespace).await?;
    let (elapsed, mut lat) = raw::publish_window(&js, messages(&namespace, raw_n), callers, |_| None).await?;
    let raw_row =
        Row::new(format!("raw async publish, window {callers}"), raw_n as u64, bytes(raw_n), elapsed, Some(&mut lat));

    let mut batch_sizes = vec![(mean_batch.round() as usize).max(1), callers.min(MAX_BATCH_EVENTS)];
    batch_sizes.dedup();
    let mut batch_rows = Vec::new();
    for size in batch_sizes {
        for with_headers in [false, true] {
            let namespace = fresh_namespace("w3bat");
            raw::create_event_stream(&js, &namespace).await?;
            let all = messages(&namespace, p.durable_events);
            let mut latencies = Latencies::with_capacity(all.len() / size + 1);
            let started = Instant::now();
            for (b, batch) in all.chunks(size).enumerate() {
                let start = b * size;
                let headers = |i: usize| {
                    with_headers.then(|| raw::store_headers(&encoded[start + i].1, start + i, callers, start))
                };
                let sent = Instant::now();
                raw::publish_batch(&client, &js, batch, headers).await?;
                latencies.record(sent.elapsed());
            }
            let what = if with_headers { " + store's headers" } else { "" };
            let label = format!("raw atomic batches of {size}{what} (latency per batch)");
            batch_rows.push(Row::new(
                label,
                p.durable_events as u64,
                bytes(p.durable_events),
                started.elapsed(),
                Some(&mut latencies),
            ));
        }
    }

    report.checks.push(Check::at_least("store group commit: events/s", store_row.ops_per_sec, TARGET_EVENTS_PER_SEC));
    report.checks.push(Check::at_least(
        "store group commit / raw async publish",
        store_row.ops_per_sec / raw_row.ops_per_sec,
        0.0,
    ));
    for row in &batch_rows {
        report.checks.push(Check::at_least(
            format!("store group commit / {}", row.label),
            store_row.ops_per_sec / row.ops_per_sec,
            0.0,
        ));
    }
    report.notes.push("ratios without a target (target 0) are shown for comparison".to_owned());
    report.rows.push(raw_row);
    report.rows.extend(batch_rows);
    report.rows.push(store_row);
    Ok(report)
}

/// How many commits stored the stream's events: distinct atomic batch ids,
/// plus messages published on their own.
async fn count_batches(stream: &stream::Stream, filter_subject: &str) -> Result<usize> {
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: filter_subject.to_owned(),
            headers_only: true,
            ..Default::default()
        })
        .await
        .context("creating a consumer to count commits")?;
    let pending = consumer.cached_info().num_pending as usize;
    let mut messages = consumer.messages().await.context("reading the store's stream")?.take(pending);
    let mut ids = HashSet::new();
    let mut singles = 0;
    while let Some(message) = messages.next().await {
        let message = message.context("reading the store's stream")?;
        match message.headers.as_ref().and_then(|h| h.get(NATS_BATCH_ID)) {
            Some(id) => {
                ids.insert(id.as_str().to_owned());
            }
            None => singles += 1,
        }
    }
    Ok(ids.len() + singles)
}

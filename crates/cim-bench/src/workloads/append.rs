//! Workload 1: appends across many aggregates — with server-side
//! concurrency checks, CID message ids for dedup and CID chaining — against
//! raw JetStream async publishes of the same bytes with the same number of
//! operations in flight.

use anyhow::Result;
use async_nats::HeaderMap;
use cim_cid::Cid;
use cim_store::CommitMode;
use serde_json::json;

use super::{Append, fresh_namespace, mode_for, mode_name, open_store, run_appenders};
use crate::data::{EventMaker, aggregate};
use crate::raw::{self, RawMessage};
use crate::report::{Check, Row, WorkloadReport};
use crate::{Bench, server_name};

/// Throughput the store must reach relative to raw publishes.
const TARGET_RATIO: f64 = 0.8;

/// The events of the run in publish order: round-robin over the aggregates,
/// each chained on its aggregate's previous event.
struct Plan {
    /// `(aggregate, version, cid, bytes)`.
    events: Vec<(usize, u64, Cid, bytes::Bytes)>,
}

impl Plan {
    fn new(maker: &EventMaker, events: usize, aggregates: usize) -> Result<Self> {
        let mut heads: Vec<Option<Cid>> = vec![None; aggregates];
        let mut out = Vec::with_capacity(events);
        for i in 0..events {
            let n = i % aggregates;
            let version = (i / aggregates) as u64 + 1;
            let (cid, bytes) = maker.encode(n, version, heads[n], Vec::new())?;
            heads[n] = Some(cid);
            out.push((n, version, cid, bytes));
        }
        Ok(Self { events: out })
    }

    fn bytes(&self) -> u64 {
        self.events.iter().map(|e| e.3.len() as u64).sum()
    }

    fn raw_messages(&self, namespace: &str) -> Vec<RawMessage> {
        self.events.iter().map(|(n, _, _, bytes)| (raw::subject(namespace, *n), bytes.clone())).collect()
    }

    /// The store's headers for message `i`.
    fn store_headers(&self, aggregates: usize) -> impl Fn(usize) -> Option<HeaderMap> + '_ {
        move |i| Some(raw::store_headers(&self.events[i].2, i, aggregates, 0))
    }

    /// The same events as the store's callers make them, split among
    /// `callers` tasks that each own a set of aggregates.
    fn appends(&self, maker: &EventMaker, callers: usize) -> Vec<Vec<Append>> {
        let mut plans: Vec<Vec<Append>> = (0..callers).map(|_| Vec::new()).collect();
        for (n, version, _, _) in &self.events {
            plans[n % callers].push((aggregate(*n), version - 1, maker.new_event(*n, *version)));
        }
        plans
    }
}

pub async fn run(bench: &Bench) -> Result<WorkloadReport> {
    let p = &bench.params;
    let durable = bench.main_durable();
    let window = p.window.min(p.aggregates).max(1);
    let mut report = WorkloadReport::new(
        1,
        "append",
        format!(
            "{} events of {} B over {} aggregates, {window} in flight, {}",
            p.events,
            p.event_bytes,
            p.aggregates,
            server_name(durable)
        ),
        json!({ "events": p.events, "aggregates": p.aggregates, "event_bytes": p.event_bytes, "window": window, "durable": durable }),
    );
    if window < p.window {
        report
            .notes
            .push(format!("window capped at {window}: one caller per aggregate at most, or callers would conflict"));
    }
    let maker = EventMaker::new(p.event_bytes)?;
    let plan = Plan::new(&maker, p.events, p.aggregates)?;
    let bytes = plan.bytes();
    let ops = plan.events.len() as u64;
    report.notes.push(format!("mean encoded event {:.1} B", bytes as f64 / ops as f64));

    let js = async_nats::jetstream::new(bench.connect(durable).await?);
    let namespace = fresh_namespace("w1raw");
    raw::create_event_stream(&js, &namespace).await?;
    let (elapsed, mut lat) = raw::publish_window(&js, plan.raw_messages(&namespace), window, |_| None).await?;
    let raw_row = Row::new(format!("raw async publish, window {window}"), ops, bytes, elapsed, Some(&mut lat));

    let namespace = fresh_namespace("w1hdr");
    raw::create_event_stream(&js, &namespace).await?;
    let (elapsed, mut lat) =
        raw::publish_window(&js, plan.raw_messages(&namespace), window, plan.store_headers(p.aggregates)).await?;
    let headers_row =
        Row::new(format!("raw + msg-id/expected-seq headers, window {window}"), ops, bytes, elapsed, Some(&mut lat));

    let own_mode = mode_for(durable);
    let mut store_rows = Vec::new();
    for mode in [own_mode, other(own_mode)] {
        let store = open_store(bench, durable, "w1", mode).await?;
        let (elapsed, mut lat) = run_appenders(&store, plan.appends(&maker, window)).await?;
        store_rows.push(Row::new(
            format!("store append ({}), {window} callers", mode_name(mode)),
            ops,
            bytes,
            elapsed,
            Some(&mut lat),
        ));
    }
    for row in &store_rows {
        report.checks.push(Check::at_least(
            format!("{}: throughput / raw", row.label),
            row.ops_per_sec / raw_row.ops_per_sec,
            TARGET_RATIO,
        ));
    }
    report.notes.push(format!(
        "target applies to the {} mode, the one made for this server; the other is shown for comparison",
        mode_name(own_mode)
    ));
    report.rows.push(raw_row);
    report.rows.push(headers_row);
    report.rows.extend(store_rows);
    Ok(report)
}

fn other(mode: CommitMode) -> CommitMode {
    match mode {
        CommitMode::Direct => CommitMode::Grouped,
        CommitMode::Grouped => CommitMode::Direct,
    }
}

//! Workload 2: one aggregate, one append at a time, against a raw publish
//! of the same bytes that awaits its ack — on both server settings, in both
//! commit modes.

use anyhow::Result;
use cim_cid::Cid;
use cim_store::CommitMode;
use serde_json::json;

use super::{Append, fresh_namespace, mode_for, mode_name, open_store, run_appenders};
use crate::data::{EventMaker, aggregate};
use crate::raw;
use crate::report::{Check, Row, WorkloadReport};
use crate::{Bench, server_name};

/// Largest p50 latency of an append relative to a raw publish.
const TARGET_RATIO: f64 = 1.3;

pub async fn run(bench: &Bench) -> Result<WorkloadReport> {
    let n = bench.params.latency_events;
    let event_bytes = bench.params.event_bytes;
    let mut report = WorkloadReport::new(
        2,
        "latency",
        format!("{n} sequential appends of {event_bytes} B to one aggregate, on each server setting"),
        json!({ "events": n, "event_bytes": event_bytes }),
    );
    let maker = EventMaker::new(event_bytes)?;
    let mut prev: Option<Cid> = None;
    let mut events = Vec::with_capacity(n);
    for version in 1..=n as u64 {
        let (cid, bytes) = maker.encode(0, version, prev, Vec::new())?;
        prev = Some(cid);
        events.push(bytes);
    }
    let bytes: u64 = events.iter().map(|b| b.len() as u64).sum();
    for durable in [false, true] {
        let setting = if durable { "durable" } else { "default" };
        let js = async_nats::jetstream::new(bench.connect(durable).await?);
        let namespace = fresh_namespace("w2raw");
        raw::create_event_stream(&js, &namespace).await?;
        let messages = events.iter().map(|b| (raw::subject(&namespace, 0), b.clone())).collect();
        let (elapsed, mut lat) = raw::publish_sequential(&js, messages).await?;
        let raw_row =
            Row::new(format!("{setting}: raw publish, awaiting each ack"), n as u64, bytes, elapsed, Some(&mut lat));
        let own = mode_for(durable);
        for mode in [own, if own == CommitMode::Direct { CommitMode::Grouped } else { CommitMode::Direct }] {
            let store = open_store(bench, durable, "w2", mode).await?;
            let plan: Vec<Append> = (1..=n as u64).map(|v| (aggregate(0), v - 1, maker.new_event(0, v))).collect();
            let (elapsed, mut lat) = run_appenders(&store, vec![plan]).await?;
            let row = Row::new(
                format!("{setting}: store append ({})", mode_name(mode)),
                n as u64,
                bytes,
                elapsed,
                Some(&mut lat),
            );
            if let (Some(store_p50), Some(raw_p50)) = (row.p50_us, raw_row.p50_us) {
                report.checks.push(Check::at_most(
                    format!("{}: p50 / raw p50", row.label),
                    store_p50 / raw_p50,
                    TARGET_RATIO,
                ));
            }
            if mode == own {
                report.rows.push(raw_row.clone());
            }
            report.rows.push(row);
        }
    }
    report.notes.push(format!("servers: {}; {}", server_name(false), server_name(true)));
    Ok(report)
}

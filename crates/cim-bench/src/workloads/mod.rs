//! The workloads of issue 6, one module each, and what they share.

pub mod append;
pub mod cid;
pub mod contended;
pub mod durable;
pub mod hub;
pub mod latency;
pub mod objects;
pub mod pipeline;
pub mod rebuild;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cim_cid::{AggregateKey, NewEvent};
use cim_store::{CommitMode, EventStore, ExpectedVersion, StoreConfig};

use crate::report::WorkloadReport;
use crate::stats::Latencies;
use crate::{Bench, Workload};

/// Runs one workload once.
pub async fn run(workload: Workload, bench: &Bench) -> Result<WorkloadReport> {
    match workload {
        Workload::Append => append::run(bench).await,
        Workload::Latency => latency::run(bench).await,
        Workload::Durable => durable::run(bench).await,
        Workload::Contended => contended::run(bench).await,
        Workload::Rebuild => rebuild::run(bench).await,
        Workload::Objects => objects::run(bench).await,
        Workload::Cid => cid::run(bench).await,
        Workload::Pipeline => pipeline::run(bench).await,
        Workload::Hub => hub::run(bench).await,
        Workload::All => unreachable!("`all` is expanded before running"),
    }
}

/// A namespace (stream, subjects, buckets) no other run on the server uses.
pub fn fresh_namespace(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("b{}-{tag}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The commit mode made for a server setting: group commit where the
/// server flushes every message, direct publishes where it does not.
pub fn mode_for(durable: bool) -> CommitMode {
    if durable { CommitMode::Grouped } else { CommitMode::Direct }
}

/// A label for a commit mode.
pub fn mode_name(mode: CommitMode) -> &'static str {
    match mode {
        CommitMode::Direct => "direct",
        CommitMode::Grouped => "grouped",
    }
}

/// Opens a store in a fresh namespace with `mode`.
pub async fn open_store(bench: &Bench, durable: bool, tag: &str, mode: CommitMode) -> Result<EventStore> {
    let config = StoreConfig { namespace: fresh_namespace(tag), commit: mode, ..StoreConfig::default() };
    EventStore::provision(bench.connect(durable).await?, config).await.context("opening the event store")
}

/// One append a caller makes: one event after `expected`.
pub type Append = (AggregateKey, u64, NewEvent);

/// Runs each plan in its own task, all at once, every append with an exact
/// expected version; returns elapsed time and per-append latencies.
pub async fn run_appenders(store: &EventStore, plans: Vec<Vec<Append>>) -> Result<(Duration, Latencies)> {
    let started = Instant::now();
    let tasks: Vec<_> = plans
        .into_iter()
        .map(|plan| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut latencies = Latencies::with_capacity(plan.len());
                for (key, expected, event) in plan {
                    let sent = Instant::now();
                    store
                        .append(&key, ExpectedVersion::Exact(expected), vec![event])
                        .await
                        .with_context(|| format!("appending to {key}"))?;
                    latencies.record(sent.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut all = Latencies::default();
    for task in tasks {
        all.merge(task.await.context("an appender panicked")??);
    }
    Ok((started.elapsed(), all))
}

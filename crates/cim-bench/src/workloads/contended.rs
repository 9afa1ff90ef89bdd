//! Workload 4: contended appends. Several writers, each with its own
//! connection (as separate processes would have), append to a few hot
//! aggregates chosen by a Zipf law. Each command is retried after a
//! conflict until it is stored; useful throughput counts stored commands.
//! The raw baseline does the same with JetStream's expected last subject
//! sequence: publish, and on "wrong last sequence" read the subject's last
//! sequence and publish again.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, stream};
use cim_store::{Error, EventStore, ExpectedVersion, NewEvent, StoreConfig};
use serde_json::json;

use super::{fresh_namespace, mode_for, mode_name};
use crate::data::{EventMaker, Rng, aggregate};
use crate::raw;
use crate::report::{Check, Row, WorkloadReport};
use crate::stats::Latencies;
use crate::{Bench, server_name};

/// Samples `0..n` with probability proportional to `1 / (k + 1)^s`.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let weights: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(s)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        Self {
            cdf: weights
                .iter()
                .map(|w| {
                    acc += w / total;
                    acc
                })
                .collect(),
        }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.next_f64();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// What the writers did.
#[derive(Debug, Default)]
struct Tally {
    stored: u64,
    conflicts: u64,
    latencies: Latencies,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.stored += other.stored;
        self.conflicts += other.conflicts;
        self.latencies.merge(other.latencies);
    }

    fn row(mut self, label: String, bytes_per_event: u64, elapsed: Duration) -> Row {
        let attempts = self.stored + self.conflicts;
        Row::new(label, self.stored, self.stored * bytes_per_event, elapsed, Some(&mut self.latencies))
            .with("conflicts", self.conflicts as f64)
            .with("conflict_rate", self.conflicts as f64 / attempts.max(1) as f64)
            .with("retries_per_command", self.conflicts as f64 / self.stored.max(1) as f64)
    }
}

pub async fn run(bench: &Bench) -> Result<WorkloadReport> {
    let p = &bench.params;
    let durable = bench.main_durable();
    let writers = p.writers.max(1);
    let per_writer = p.contended_events / writers;
    let mode = mode_for(durable);
    let mut report = WorkloadReport::new(
        4,
        "contended",
        format!(
            "{writers} writers, {} commands each, on {} hot aggregates (Zipf s={}), {}",
            per_writer,
            p.hot,
            p.zipf,
            server_name(durable)
        ),
        json!({ "writers": writers, "commands": per_writer * writers, "hot": p.hot, "zipf": p.zipf, "durable": durable }),
    );
    let maker = EventMaker::new(p.event_bytes)?;
    let zipf = Zipf::new(p.hot.max(1), p.zipf);
    let bytes_per_event = p.event_bytes as u64;

    // Raw: expected-last-subject-sequence publishes, retried on conflict.
    let namespace = fresh_namespace("w4raw");
    let js = jetstream::new(bench.connect(durable).await?);
    raw::create_event_stream(&js, &namespace).await?;
    let payload = maker.encode(0, 2, Some(cim_cid::dag_cbor_cid(b"x")), Vec::new())?.1;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let js = jetstream::new(bench.connect(durable).await?);
        let stream =
            js.get_stream(cim_store::events_stream_config(&StoreConfig::with_namespace(&namespace)).name).await?;
        let (zipf, namespace, payload) = (zipf.clone(), namespace.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(w as u64 + 1);
            let mut known = vec![0u64; zipf.cdf.len()];
            let mut tally = Tally { latencies: Latencies::with_capacity(per_writer), ..Tally::default() };
            for _ in 0..per_writer {
                let n = zipf.sample(&mut rng);
                let subject = raw::subject(&namespace, n);
                let sent = Instant::now();
                loop {
                    let message =
                        PublishMessage::build().payload(payload.clone()).expected_last_subject_sequence(known[n]);
                    match js.send_publish(subject.clone(), message).await?.await {
                        Ok(ack) => {
                            known[n] = ack.sequence;
                            break;
                        }
                        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                            tally.conflicts += 1;
                            known[n] = last_seq(&stream, &subject).await?;
                        }
                        Err(e) => return Err(e).context("raw contended publish"),
                    }
                }
                tally.stored += 1;
                tally.latencies.record(sent.elapsed());
            }
            anyhow::Ok(tally)
        }));
    }
    let mut tally = Tally::default();
    for task in tasks {
        tally.add(task.await.context("a raw writer panicked")??);
    }
    let raw_row =
        tally.row("raw publish with expected last subject seq".to_owned(), bytes_per_event, started.elapsed());

    // The store: each writer its own connection and store handle.
    let namespace = fresh_namespace("w4");
    let config = StoreConfig { namespace, commit: mode, ..StoreConfig::default() };
    let mut stores = Vec::new();
    for _ in 0..writers {
        stores.push(EventStore::provision(bench.connect(durable).await?, config.clone()).await?);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, store) in stores.into_iter().enumerate() {
        let (zipf, maker) = (zipf.clone(), maker.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(w as u64 + 1);
            let mut known = vec![0u64; zipf.cdf.len()];
            let mut tally = Tally { latencies: Latencies::with_capacity(per_writer), ..Tally::default() };
            for i in 0..per_writer {
                let n = zipf.sample(&mut rng);
                let key = aggregate(n);
                let sent = Instant::now();
                loop {
                    // Distinct content per writer and command, so no two writers
                    // make the same event; timed by the store, as most commands are.
                    let event = NewEvent { timestamp: None, ..maker.new_event(w * 10_000_000 + i, known[n] + 1) };
                    match store.append(&key, ExpectedVersion::Exact(known[n]), vec![event]).await {
                        Ok(appended) => {
                            known[n] = appended.version();
                            break;
                        }
                        Err(Error::ConcurrencyConflict { actual, .. }) => {
                            tally.conflicts += 1;
                            known[n] = actual;
                        }
                        Err(e) => bail!("contended append to {key}: {e}"),
                    }
                }
                tally.stored += 1;
                tally.latencies.record(sent.elapsed());
            }
            anyhow::Ok(tally)
        }));
    }
    let mut tally = Tally::default();
    for task in tasks {
        tally.add(task.await.context("a store writer panicked")??);
    }
    let store_row = tally.row(
        format!("store append ({}), exact version, retried", mode_name(mode)),
        bytes_per_event,
        started.elapsed(),
    );
    report.checks.push(Check::at_least(
        "useful throughput store / raw",
        store_row.ops_per_sec / raw_row.ops_per_sec,
        0.0,
    ));
    report.notes.push("no target in the issue: the ratio and the conflict and retry rates are reported".to_owned());
    report.rows.push(raw_row);
    report.rows.push(store_row);
    Ok(report)
}

async fn last_seq(stream: &stream::Stream, subject: &str) -> Result<u64> {
    match stream.direct_get_last_for_subject(subject).await {
        Ok(message) => Ok(message.sequence),
        Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).context("reading a subject's last sequence"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_prefers_the_first() {
        let zipf = Zipf::new(100, 1.0);
        let mut rng = Rng::new(1);
        let mut counts = vec![0; 100];
        for _ in 0..100_000 {
            counts[zipf.sample(&mut rng)] += 1;
        }
        // P(0) = 1 / H(100) ≈ 0.193; P(1) ≈ 0.096.
        assert!((18_000..21_000).contains(&counts[0]), "{}", counts[0]);
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[99]);
    }
}

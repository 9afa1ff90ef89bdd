//! Measures the MerkleDAG's heap per event and its insert rate.
//!
//! ```text
//! cargo run --release -p cim-dag --example dag_memory -- [EVENTS] [AGGREGATES] [--reserve]
//! ```
//!
//! Builds `EVENTS` (default 1,000,000) events spread at random over
//! `AGGREGATES` (default 10,000) aggregates, about 10% of them with one
//! parent link to another aggregate's latest event, all real encoded events
//! (`EventEnvelope::chained` + `Event::encode`). Events are made in batches
//! outside the measurement; only the `insert` calls are timed and only the
//! heap they leave behind is counted: the allocator's net bytes (allocated
//! minus freed, reallocations included) summed over the insert windows. The
//! DAG is then shrunk with `shrink_to_fit` and measured again, and finally
//! dropped, which must free exactly what was counted. With `--reserve` the
//! DAG starts from `MerkleDag::with_capacity(EVENTS)`, as a rebuild that
//! knows the stream's length would.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use cim_cid::{AggregateKey, Cid, Event, EventEnvelope, Ipld, NewEvent, Timestamp};
use cim_dag::MerkleDag;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const BATCH: usize = 50_000;
const PARENT_PERCENT: u64 = 10;

/// Net heap bytes allocated while `region` was open (negative when freed).
fn net(region: &Region<'_, std::alloc::System>) -> i64 {
    let change = region.change();
    change.bytes_allocated as i64 - change.bytes_deallocated as i64
}

/// SplitMix64: deterministic, so every run builds the same DAG.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Makes the events in append order, one batch at a time.
struct Generator {
    rng: SplitMix,
    keys: Vec<AggregateKey>,
    heads: Vec<Option<(u64, Cid)>>,
    made: u64,
    with_parent: u64,
}

impl Generator {
    fn new(aggregates: usize) -> Result<Self> {
        let mut keys = Vec::with_capacity(aggregates);
        for i in 0..aggregates {
            keys.push(AggregateKey::new("account", format!("acct-{i}"))?);
        }
        Ok(Self { rng: SplitMix(0x00C1_3DA6), heads: vec![None; keys.len()], keys, made: 0, with_parent: 0 })
    }

    fn next_event(&mut self) -> Result<Event> {
        let a = self.rng.below(self.keys.len());
        let mut parents = Vec::new();
        if self.rng.next_u64() % 100 < PARENT_PERCENT {
            let other = self.rng.below(self.keys.len());
            if let (true, Some((_, cid))) = (other != a, self.heads[other]) {
                parents.push(cid);
                self.with_parent += 1;
            }
        }
        let (version, prev) = self.heads[a].map_or((1, None), |(v, cid)| (v + 1, Some(cid)));
        let payload = Ipld::Map(BTreeMap::from([("amount".to_owned(), Ipld::Integer(i128::from(self.made % 1000)))]));
        let new = NewEvent::new("Deposited", payload)
            .with_parents(parents)
            .with_timestamp(Timestamp::from_unix_micros(1_767_225_600_000_000 + self.made as i64));
        let (event, _bytes) = Event::encode(EventEnvelope::chained(&self.keys[a], version, prev, new)?)?;
        self.heads[a] = Some((version, event.cid));
        self.made += 1;
        Ok(event)
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().map_or(Ok(1_000_000), |a| a.parse()).context("EVENTS must be a number")?;
    let aggregates: usize = args.next().map_or(Ok(10_000), |a| a.parse()).context("AGGREGATES must be a number")?;
    let reserve = match args.next().as_deref() {
        None => false,
        Some("--reserve") => true,
        Some(other) => anyhow::bail!("unknown argument {other:?}; expected --reserve"),
    };
    ensure!(events > 0 && aggregates > 1, "need at least one event and two aggregates");

    let mut generator = Generator::new(aggregates)?;
    let region = Region::new(GLOBAL);
    let mut dag = if reserve { MerkleDag::with_capacity(events) } else { MerkleDag::new() };
    let mut dag_bytes: i64 = net(&region);
    let mut insert_time = Duration::ZERO;
    let mut batch = Vec::with_capacity(BATCH);
    let mut position = 0u64;
    let mut encode_time = Duration::ZERO;
    while dag.len() < events {
        let started = Instant::now();
        batch.clear();
        for _ in 0..BATCH.min(events - dag.len()) {
            batch.push(generator.next_event()?);
        }
        encode_time += started.elapsed();

        let region = Region::new(GLOBAL);
        let started = Instant::now();
        for event in &batch {
            position += 1;
            dag.insert(event, position).with_context(|| format!("inserting event {position}"))?;
        }
        insert_time += started.elapsed();
        dag_bytes += net(&region);
    }
    drop(batch);

    let region = Region::new(GLOBAL);
    let started = Instant::now();
    dag.shrink_to_fit();
    let shrink_time = started.elapsed();
    let shrunk_bytes = dag_bytes + net(&region);

    let n = dag.len() as f64;
    println!("events:        {}{}", dag.len(), if reserve { " (with_capacity)" } else { "" });
    println!("aggregates:    {}", dag.aggregate_count());
    println!("links:         {} ({} with a parent link)", dag.link_count(), generator.with_parent);
    println!(
        "made events:   {:.2} s ({:.0} events/s, not measured below)",
        encode_time.as_secs_f64(),
        n / encode_time.as_secs_f64()
    );
    println!(
        "insert:        {:.3} s, {:.0} events/s, {:.0} ns/event",
        insert_time.as_secs_f64(),
        n / insert_time.as_secs_f64(),
        insert_time.as_nanos() as f64 / n
    );
    println!("DAG heap:      {dag_bytes} bytes, {:.1} bytes/event after the build", dag_bytes as f64 / n);
    println!(
        "shrink_to_fit: {shrunk_bytes} bytes, {:.1} bytes/event after shrink_to_fit ({:.1} ms)",
        shrunk_bytes as f64 / n,
        shrink_time.as_secs_f64() * 1e3
    );

    let region = Region::new(GLOBAL);
    drop(dag);
    let freed = -net(&region);
    println!("drop:          {freed} bytes freed");
    ensure!(freed == shrunk_bytes, "dropping the DAG freed {freed} bytes but {shrunk_bytes} were counted");
    Ok(())
}

//! CIM's benchmark harness: each workload of the store measured beside the
//! raw JetStream operation on the same bytes, on the same server, in the
//! same run, with the ratio held against the target of issue 6.
//!
//! ```text
//! cargo run --release -p cim-bench -- all            # every workload, full sizes
//! cargo run --release -p cim-bench -- append rebuild --events 50000
//! cargo run --release -p cim-bench -- all --quick    # tiny sizes: checks the harness
//! cargo run --release -p cim-bench -- all --json     # JSON summary on stdout
//! ```
//!
//! The harness starts its own nats-servers (`cim-test-support`): one with
//! JetStream's default flushing and one with `sync_interval: always` (the
//! durable setting), each with a fresh store in the temporary directory.
//! Workloads that measure a process's own memory (rebuild, objects) run
//! their measured parts in child processes of this binary
//! (`cim-bench __child …`), so each peak RSS is that part's alone.
//!
//! One module per workload under [`workloads`]; results and their JSON form
//! in [`report`]. No timing is asserted anywhere: the smoke test only checks
//! that every workload runs.

pub mod child;
pub mod data;
pub mod machine;
pub mod raw;
pub mod report;
pub mod stats;
pub mod workloads;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use cim_test_support::NatsServer;
use clap::{Args, Parser, ValueEnum};
use serde::Serialize;

use crate::machine::Machine;
use crate::report::WorkloadReport;

/// The workloads of issue 6, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// 1. Concurrent appends across many aggregates vs raw async publish.
    Append,
    /// 2. Sequential appends to one aggregate vs raw publish awaiting its ack.
    Latency,
    /// 3. Group commit under `sync_interval: always` vs raw publishes and batches.
    Durable,
    /// 4. Eight writers on 100 hot aggregates (Zipf): conflicts and retries.
    Contended,
    /// 5. Cold start: DAG rebuild vs raw ordered-consumer drain; memory per event.
    Rebuild,
    /// 6. Objects: one large and many small, put/get vs the raw object store.
    Objects,
    /// 7. CID computation vs `openssl speed -evp sha256`.
    Cid,
    /// 8. The Pipeline Engine (issue 14): filter → transform → append in a
    ///    cim-pipeline process vs raw consume + publish, outputs checked.
    Pipeline,
    /// 9. The Integration Hub's HTTP API (oha, a large object) vs the store
    ///    directly; needs `--hub-binary` and `--oha`, so not part of `all`.
    Hub,
    /// Every workload.
    All,
}

impl Workload {
    const EACH: [Self; 8] = [
        Self::Append,
        Self::Latency,
        Self::Durable,
        Self::Contended,
        Self::Rebuild,
        Self::Objects,
        Self::Cid,
        Self::Pipeline,
    ];
}

/// `cim-bench <workload>... [sizes]`.
#[derive(Debug, Parser)]
#[command(
    name = "cim-bench",
    about = "Benchmarks CIM's store against raw JetStream on the same server, in the same run"
)]
pub struct Cli {
    /// Workloads to run, in the issue's order whatever the order given.
    #[arg(required = true, value_enum)]
    pub workloads: Vec<Workload>,
    /// Tiny default sizes: checks that the harness works, in seconds.
    #[arg(long)]
    pub quick: bool,
    /// Print the JSON summary on stdout; the tables go to stderr.
    #[arg(long)]
    pub json: bool,
    /// Run each workload this many times and report medians.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Run the append, contended, rebuild and objects workloads on the
    /// durable server (`sync_interval: always`) instead of the default one.
    #[arg(long)]
    pub durable: bool,
    /// 8: the release `cim-hub` binary to run.
    #[arg(long)]
    pub hub_binary: Option<String>,
    /// 8: the `oha` binary (HTTP load generator).
    #[arg(long)]
    pub oha: Option<String>,
    /// 8: only the large object, no HTTP load (and no oha).
    #[arg(long)]
    pub hub_objects_only: bool,
    #[command(flatten)]
    pub sizes: Sizes,
}

/// Sizes; each defaults to the issue's (or a tiny one with `--quick`).
#[derive(Debug, Clone, Default, Args)]
pub struct Sizes {
    /// 1: events appended.
    #[arg(long)]
    pub events: Option<usize>,
    /// 1: aggregates they are spread over.
    #[arg(long)]
    pub aggregates: Option<usize>,
    /// 1–5: encoded size of an event, bytes.
    #[arg(long)]
    pub event_bytes: Option<usize>,
    /// 1: appends (and raw publishes) in flight.
    #[arg(long)]
    pub window: Option<usize>,
    /// 2: sequential appends per configuration.
    #[arg(long)]
    pub latency_events: Option<usize>,
    /// 3: events appended by the group commit (and by raw batches).
    #[arg(long)]
    pub durable_events: Option<usize>,
    /// 3: events of the raw per-message (flushed) publish baseline.
    #[arg(long)]
    pub durable_raw_events: Option<usize>,
    /// 3: concurrent callers (each on its own aggregate).
    #[arg(long)]
    pub callers: Option<usize>,
    /// 4: successful appends in all.
    #[arg(long)]
    pub contended_events: Option<usize>,
    /// 4: writers, each with its own connection and store handle.
    #[arg(long)]
    pub writers: Option<usize>,
    /// 4: hot aggregates.
    #[arg(long)]
    pub hot: Option<usize>,
    /// 4: Zipf exponent of the choice of aggregate.
    #[arg(long)]
    pub zipf: Option<f64>,
    /// 5: events in the stream to rebuild from.
    #[arg(long)]
    pub rebuild_events: Option<usize>,
    /// 5: aggregates those events belong to.
    #[arg(long)]
    pub rebuild_aggregates: Option<usize>,
    /// 6: size of the large object, bytes.
    #[arg(long)]
    pub object_bytes: Option<u64>,
    /// 6: number of small objects.
    #[arg(long)]
    pub small_objects: Option<usize>,
    /// 6: size of each small object, bytes.
    #[arg(long)]
    pub small_object_bytes: Option<u64>,
    /// 7: seconds per hash measurement.
    #[arg(long)]
    pub cid_seconds: Option<f64>,
    /// 8: input events through the pipeline (and the raw consumer).
    #[arg(long)]
    pub pipeline_events: Option<usize>,
    /// 9: seconds of each load (through the hub, then directly).
    #[arg(long)]
    pub hub_seconds: Option<f64>,
    /// 9: requests (and direct calls) in flight.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// 9: aggregates the appends are spread over (rounded up to a power of 10).
    #[arg(long)]
    pub hub_aggregates: Option<usize>,
}

/// Resolved sizes of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    pub events: usize,
    pub aggregates: usize,
    pub event_bytes: usize,
    pub window: usize,
    pub latency_events: usize,
    pub durable_events: usize,
    pub durable_raw_events: usize,
    pub callers: usize,
    pub contended_events: usize,
    pub writers: usize,
    pub hot: usize,
    pub zipf: f64,
    pub rebuild_events: usize,
    pub rebuild_aggregates: usize,
    pub object_bytes: u64,
    pub small_objects: usize,
    pub small_object_bytes: u64,
    pub cid_seconds: f64,
    pub pipeline_events: usize,
    pub hub_seconds: f64,
    pub concurrency: usize,
    pub hub_aggregates: usize,
    pub hub_binary: Option<String>,
    pub oha: Option<String>,
    pub hub_objects_only: bool,
    /// Workloads 1, 4, 5, 6, 8 and 9 run on the durable server.
    pub durable: bool,
}

impl Params {
    /// The issue's sizes, or tiny ones, overridden by flags.
    pub fn resolve(sizes: &Sizes, quick: bool, durable: bool) -> Self {
        fn pick<T>(quick: bool, quick_value: T, full_value: T) -> T {
            if quick { quick_value } else { full_value }
        }
        Self {
            events: sizes.events.unwrap_or(pick(quick, 2_000, 200_000)),
            aggregates: sizes.aggregates.unwrap_or(pick(quick, 50, 1_000)),
            event_bytes: sizes.event_bytes.unwrap_or(256),
            window: sizes.window.unwrap_or(pick(quick, 16, 256)),
            latency_events: sizes.latency_events.unwrap_or(pick(quick, 200, 10_000)),
            durable_events: sizes.durable_events.unwrap_or(pick(quick, 3_000, 200_000)),
            durable_raw_events: sizes.durable_raw_events.unwrap_or(pick(quick, 500, 20_000)),
            callers: sizes.callers.unwrap_or(pick(quick, 100, 2_000)),
            contended_events: sizes.contended_events.unwrap_or(pick(quick, 400, 40_000)),
            writers: sizes.writers.unwrap_or(8),
            hot: sizes.hot.unwrap_or(pick(quick, 10, 100)),
            zipf: sizes.zipf.unwrap_or(1.0),
            rebuild_events: sizes.rebuild_events.unwrap_or(pick(quick, 5_000, 1_000_000)),
            rebuild_aggregates: sizes.rebuild_aggregates.unwrap_or(pick(quick, 100, 10_000)),
            object_bytes: sizes.object_bytes.unwrap_or(pick(quick, 4 << 20, 1 << 30)),
            small_objects: sizes.small_objects.unwrap_or(pick(quick, 20, 10_000)),
            small_object_bytes: sizes.small_object_bytes.unwrap_or(100 << 10),
            cid_seconds: sizes.cid_seconds.unwrap_or(pick(quick, 0.05, 1.0)),
            pipeline_events: sizes.pipeline_events.unwrap_or(pick(quick, 2_000, 100_000)),
            hub_seconds: sizes.hub_seconds.unwrap_or(pick(quick, 1.0, 10.0)),
            concurrency: sizes.concurrency.unwrap_or(pick(quick, 8, 64)),
            hub_aggregates: sizes.hub_aggregates.unwrap_or(pick(quick, 100, 1_000)),
            hub_binary: None,
            oha: None,
            hub_objects_only: false,
            durable,
        }
    }
}

/// What the workloads share: sizes and the servers, started on first use.
#[derive(Debug)]
pub struct Bench {
    pub params: Params,
    servers: tokio::sync::Mutex<HashMap<bool, Arc<NatsServer>>>,
}

impl Bench {
    /// A harness with these sizes and no server started yet.
    pub fn new(params: Params) -> Self {
        Self { params, servers: tokio::sync::Mutex::new(HashMap::new()) }
    }

    /// The durable (`sync_interval: always`) or the default server.
    pub async fn server(&self, durable: bool) -> Arc<NatsServer> {
        let mut servers = self.servers.lock().await;
        if let Some(server) = servers.get(&durable) {
            return server.clone();
        }
        let server = Arc::new(NatsServer::builder().durable(durable).start().await);
        servers.insert(durable, server.clone());
        server
    }

    /// A new connection to the durable or the default server.
    pub async fn connect(&self, durable: bool) -> Result<async_nats::Client> {
        let url = self.server(durable).await.url();
        async_nats::connect(&url).await.with_context(|| format!("connecting to {url}"))
    }

    /// The server of workloads 1, 4, 5 and 6 (`--durable` or not).
    pub fn main_durable(&self) -> bool {
        self.params.durable
    }
}

/// Describes a server setting in titles and labels.
pub fn server_name(durable: bool) -> &'static str {
    if durable { "durable server (sync_interval: always)" } else { "default server (JetStream's default flushing)" }
}

/// The JSON summary of a run.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub machine: Machine,
    pub params: Params,
    pub command: String,
    pub finished_at: String,
    pub load_at_end: String,
    /// Each workload, as the medians of its runs.
    pub workloads: Vec<WorkloadReport>,
    /// Every run of every workload, when repeated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<Vec<WorkloadReport>>,
}

/// Runs the chosen workloads; prints tables (stdout, or stderr with `--json`).
pub async fn run(cli: &Cli) -> Result<Summary> {
    let mut chosen: Vec<Workload> =
        if cli.workloads.contains(&Workload::All) { Workload::EACH.to_vec() } else { cli.workloads.clone() };
    chosen.sort();
    chosen.dedup();
    let say = |text: &str| if cli.json { eprintln!("{text}") } else { println!("{text}") };
    let mut params = Params::resolve(&cli.sizes, cli.quick, cli.durable);
    params.hub_binary.clone_from(&cli.hub_binary);
    params.oha.clone_from(&cli.oha);
    params.hub_objects_only = cli.hub_objects_only;
    let bench = Bench::new(params);
    let version = bench.connect(false).await?.server_info().version;
    let machine = Machine::probe(version);
    say(&machine.render());
    let mut workloads = Vec::new();
    let mut runs = Vec::new();
    for workload in chosen {
        let mut these = Vec::new();
        for run in 0..cli.repeat.max(1) {
            if cli.repeat > 1 {
                eprintln!("-- {workload:?}: run {} of {}", run + 1, cli.repeat);
            }
            let report = workloads::run(workload, &bench).await.with_context(|| format!("workload {workload:?}"))?;
            if cli.repeat > 1 {
                eprint!("{}", report.render());
            }
            these.push(report);
        }
        let combined = report::combine(&these);
        say(&combined.render());
        workloads.push(combined);
        if cli.repeat > 1 {
            runs.push(these);
        }
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    Ok(Summary {
        machine,
        params: bench.params.clone(),
        command,
        finished_at: machine::now(),
        load_at_end: machine::load_average(),
        workloads,
        runs,
    })
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let result = if std::env::args().nth(1).as_deref() == Some(child::ARG) {
        child::main()
    } else {
        let cli = Cli::parse();
        tokio::runtime::Runtime::new().context("starting the async runtime").and_then(|rt| {
            let summary = rt.block_on(run(&cli))?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            }
            Ok(())
        })
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cim-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

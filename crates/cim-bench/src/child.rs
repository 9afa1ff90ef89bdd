//! Measured parts that run in a child process of this binary, so that the
//! peak RSS they report is theirs alone: `cim-bench __child <phase> …`
//! prints one JSON object on stdout.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::machine::status_kib;
use crate::workloads::{objects, rebuild};

/// The first argument that selects child mode.
pub const ARG: &str = "__child";

/// A part measured in a child process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Phase {
    /// Drain the event stream with an ordered consumer.
    RawDrain,
    /// Open the event store and rebuild its DAG.
    StoreRebuild,
    /// Put objects with async-nats' object store.
    RawPut,
    /// Put objects with the store.
    StorePut,
    /// Get objects with async-nats' object store.
    RawGet,
    /// Get objects with the store.
    StoreGet,
}

/// Arguments of a child.
#[derive(Debug, Clone, Parser)]
#[command(name = "cim-bench __child")]
pub struct ChildArgs {
    #[arg(value_enum)]
    pub phase: Phase,
    /// Server URL.
    #[arg(long)]
    pub url: String,
    /// Store namespace, or raw object bucket name.
    #[arg(long)]
    pub name: String,
    /// Number of items (objects).
    #[arg(long, default_value_t = 0)]
    pub count: usize,
    /// Size of each item, bytes.
    #[arg(long, default_value_t = 0)]
    pub size: u64,
}

impl ChildArgs {
    /// The command-line arguments after `__child`.
    pub fn to_args(&self) -> Vec<String> {
        let phase = self.phase.to_possible_value().expect("phases have names").get_name().to_owned();
        vec![
            phase,
            "--url".into(),
            self.url.clone(),
            "--name".into(),
            self.name.clone(),
            "--count".into(),
            self.count.to_string(),
            "--size".into(),
            self.size.to_string(),
        ]
    }
}

/// What a child measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChildReport {
    pub ops: u64,
    pub bytes: u64,
    pub secs: f64,
    /// Resident set when the measured part began, KiB.
    pub rss_start_kib: u64,
    /// Resident set when it ended, KiB.
    pub rss_end_kib: u64,
    /// Peak resident set of the whole child process, KiB.
    pub peak_rss_kib: u64,
    /// Per-item latencies, µs, when meaningful.
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    /// Anything else, e.g. chunks or DAG size.
    pub extra: std::collections::BTreeMap<String, f64>,
}

impl ChildReport {
    /// Starts a report: records the current resident set.
    pub fn begin() -> Self {
        Self { rss_start_kib: status_kib("VmRSS").unwrap_or(0), ..Self::default() }
    }

    /// Ends it: records time, resident set and peak.
    pub fn end(mut self, ops: u64, bytes: u64, elapsed: Duration) -> Self {
        self.ops = ops;
        self.bytes = bytes;
        self.secs = elapsed.as_secs_f64();
        self.rss_end_kib = status_kib("VmRSS").unwrap_or(0);
        self.peak_rss_kib = status_kib("VmHWM").unwrap_or(0);
        self
    }
}

/// Environment variable naming a command that children run under, e.g.
/// `perf record -e cpu-clock -g -o /tmp/rebuild.data --` (split on spaces);
/// with `CIM_BENCH_PREFIX_PHASE` set to a phase (e.g. `store-rebuild`) only
/// that phase runs under it.
pub const PREFIX_ENV: &str = "CIM_BENCH_CHILD_PREFIX";

/// Runs `args` in a child process of this binary and returns its report.
pub async fn run(args: &ChildArgs) -> Result<ChildReport> {
    let exe = std::env::current_exe().context("locating the cim-bench binary")?;
    let phase = args.to_args().remove(0);
    let prefix: Vec<String> = match std::env::var(PREFIX_ENV) {
        Ok(prefix) if std::env::var("CIM_BENCH_PREFIX_PHASE").map_or(true, |p| p == phase) => {
            prefix.split_whitespace().map(str::to_owned).collect()
        }
        _ => Vec::new(),
    };
    let mut command = match prefix.split_first() {
        Some((program, rest)) => {
            let mut command = tokio::process::Command::new(program);
            command.args(rest).arg(&exe);
            command
        }
        None => tokio::process::Command::new(&exe),
    };
    // `output()` would capture stderr too; spawn keeps the child's errors visible.
    let output = command
        .arg(ARG)
        .args(args.to_args())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} {ARG} {:?}", exe.display(), args.phase))?
        .wait_with_output()
        .await
        .with_context(|| format!("running {} {ARG} {:?}", exe.display(), args.phase))?;
    if !output.status.success() {
        bail!("child {:?} failed ({})", args.phase, output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("reading the report of child {:?}: {line:?}", args.phase))
}

/// Entry point of a child process.
pub fn main() -> Result<()> {
    let args = ChildArgs::parse_from(std::env::args().skip(1));
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = rt.block_on(async {
        let client = async_nats::connect(&args.url).await.with_context(|| format!("connecting to {}", args.url))?;
        match args.phase {
            Phase::RawDrain => rebuild::child_raw_drain(client, &args).await,
            Phase::StoreRebuild => rebuild::child_store_rebuild(client, &args).await,
            Phase::RawPut | Phase::StorePut | Phase::RawGet | Phase::StoreGet => objects::child(client, &args).await,
        }
    })?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

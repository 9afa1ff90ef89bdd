//! `cargo xtask bench [ARGS]`: installs the pinned tools and runs the
//! benchmark harness in release mode, `cargo run --release -p cim-bench --
//! ARGS` (default `all`), after building `cim-pipeline` (workload 8 runs it). `cargo xtask bench --quick` runs every workload at
//! tiny sizes. Results and the exact commands are in `docs/benchmarks.md`.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::cmd::run;
use crate::tools;

pub fn run_bench(root: &Path, args: &[OsString]) -> Result<()> {
    tools::install(root)?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    // Workload 8 runs the engine's binary from beside cim-bench's.
    run(Command::new(&cargo).args(["build", "--release", "--package", "cim-pipeline"]).current_dir(root))?;
    let mut command = Command::new(cargo);
    command.args(["run", "--release", "--package", "cim-bench", "--"]);
    // Flags alone (e.g. `--quick`) mean every workload.
    if args.iter().all(|arg| arg.to_string_lossy().starts_with('-')) {
        command.arg("all");
    }
    command.args(args).current_dir(root).env("CIM_NATS_SERVER", root.join(".tools/venv/bin/nats-server"));
    run(&mut command)
}

/// Options of `cargo xtask hub-load`.
#[derive(Debug, clap::Args)]
pub struct HubLoad {
    /// Seconds of each load (through the hub, then the store directly).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Requests (and direct calls) in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Aggregates the appends are spread over (rounded up to a power of 10).
    #[arg(long, default_value_t = 1000)]
    pub aggregates: usize,
    /// Size of the object put and got through the hub, MiB.
    #[arg(long, default_value_t = 1024)]
    pub object_mib: u64,
    /// Run on a server with `sync_interval: always`.
    #[arg(long)]
    pub durable: bool,
    /// Print cim-bench's JSON summary on stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// `cargo xtask hub-load`: installs the tools and oha, builds the release
/// hub and harness, and runs cim-bench's `hub` workload with that hub (see
/// docs/benchmarks.md).
pub fn run_hub_load(root: &Path, options: &HubLoad) -> Result<()> {
    tools::install(root)?;
    let oha = tools::install_oha(root)?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    // One build of both, so they share one feature resolution (building them
    // apart would compile their common dependencies twice).
    run(Command::new(&cargo)
        .args(["build", "--release", "--package", "cim-hub", "--package", "cim-bench"])
        .current_dir(root))?;
    let release = env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from).join("release");
    let mut command = Command::new(release.join("cim-bench"));
    command
        .args(["hub", "--hub-binary"])
        .arg(release.join("cim-hub"))
        .arg("--oha")
        .arg(oha)
        .args(["--hub-seconds", &options.seconds.to_string()])
        .args(["--concurrency", &options.concurrency.to_string()])
        .args(["--hub-aggregates", &options.aggregates.to_string()])
        .args(["--object-bytes", &(options.object_mib << 20).to_string()]);
    if options.durable {
        command.arg("--durable");
    }
    if options.json {
        command.arg("--json");
    }
    command.current_dir(root).env("CIM_NATS_SERVER", root.join(".tools/venv/bin/nats-server"));
    run(&mut command)
}

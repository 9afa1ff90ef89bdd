//! `cargo xtask bench [ARGS]`: installs the pinned tools and runs the
//! benchmark harness in release mode, `cargo run --release -p cim-bench --
//! ARGS` (default `all`), after building `cim-pipeline` (workload 8 runs it). `cargo xtask bench --quick` runs every workload at
//! tiny sizes. Results and the exact commands are in `docs/benchmarks.md`.

use std::env;
use std::ffi::OsString;
use std::path::Path;
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

//! `cargo xtask storage-demo [ARGS]`: installs the pinned tools (nats-server,
//! SeaweedFS, s3s-fs) and runs the Storage Manager's end-to-end demonstration
//! in release mode: `cargo run --release -p cim-bench --bin storage-demo --
//! ARGS` (defaults: 1,000,000 events, 1,000 objects of 1 KiB–64 MiB;
//! `--quick` for tiny sizes). Its figures are in `docs/benchmarks.md`.

use std::env;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::cmd::run;
use crate::tools;

pub fn run_demo(root: &Path, args: &[OsString]) -> Result<()> {
    tools::install(root)?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    command
        .args(["run", "--release", "--package", "cim-bench", "--bin", "storage-demo", "--"])
        .args(args)
        .current_dir(root)
        .env("CIM_NATS_SERVER", root.join(".tools/venv/bin/nats-server"));
    run(&mut command)
}

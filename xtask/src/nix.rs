//! The Nix checks of `cargo xtask test` (and `cargo xtask nix`). Nothing here
//! needs nixpkgs or a binary cache, which this project's machines cannot
//! reach:
//!
//! 1. every `.nix` file parses (`nix-instantiate --parse`);
//! 2. with nixpkgs' `lib` in `.tools/nixpkgs.lib`, the evaluation check
//!    ([`eval`]): the modules, containers, example host, test suites and
//!    flake outputs evaluate against stub NixOS option declarations
//!    (`nix/eval`), the files they render match `nix/eval/rendered/`, and
//!    bad settings fail with the expected message;
//! 3. the rendered files pass the real binaries' `--check-config`, and
//!    NATS, the registry and the IUS run with them against each other
//!    ([`live`]) — from the committed `nix/eval/rendered/`, so this part runs
//!    without Nix too.

mod eval;
mod live;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::cmd::on_path;

/// Where the evaluation check finds nixpkgs' `lib` (see docs/deploy.md for
/// how to get it).
pub const NIXPKGS_LIB: &str = ".tools/nixpkgs.lib";
/// The files the modules render, as last evaluated (reviewed in diffs, and
/// checked by the binaries even where Nix cannot run).
pub const RENDERED: &str = "nix/eval/rendered";

/// What `cargo xtask nix` may do besides checking.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Rewrite `nix/eval/rendered/` from the evaluation instead of failing
    /// when it differs.
    pub update_rendered: bool,
}

/// Runs every Nix check whose tools are present, saying which are skipped.
/// Every check runs even when an earlier one fails.
pub fn checks(root: &Path, options: Options) -> Result<()> {
    let mut failed = Vec::new();
    let mut step = |name: &'static str, result: Result<()>| {
        if let Err(e) = result {
            eprintln!("nix: {name} failed: {e:#}");
            failed.push(name);
        }
    };
    if on_path("nix-instantiate") {
        step("parse", parse_all(root));
        let lib = root.join(NIXPKGS_LIB);
        if lib.join("lib/default.nix").is_file() {
            step("evaluation", eval::run(root, &lib, options));
        } else {
            println!(
                "nix: evaluation SKIPPED: {} is missing (nixpkgs' lib alone; docs/deploy.md says how to get it). \
                 The rendered files are checked from {RENDERED} as committed.",
                lib.display()
            );
        }
    } else {
        println!(
            "nix: parse and evaluation SKIPPED: nix-instantiate not found (Debian: apt-get install nix-bin). \
             The rendered files are checked from {RENDERED} as committed."
        );
    }
    step("rendered configurations", live::run(root));
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    Ok(())
}

/// `nix-instantiate --parse` on every `.nix` file: syntax errors fail fast.
fn parse_all(root: &Path) -> Result<()> {
    let mut files = Vec::new();
    find_nix_files(root, &mut files)?;
    files.sort();
    println!("nix: parsing {} .nix files", files.len());
    for file in files {
        let output = nix_env(Command::new("nix-instantiate").arg("--parse").arg(&file).stdout(Stdio::null()))
            .output()
            .context("cannot run nix-instantiate")?;
        if !output.status.success() {
            bail!("{} does not parse:\n{}", file.display(), String::from_utf8_lossy(&output.stderr));
        }
    }
    Ok(())
}

/// Quiets Nix's warning about the `nixbld` group, which Debian's single-user
/// `nix-bin` lacks: these checks build nothing.
fn nix_env(command: &mut Command) -> &mut Command {
    command.env("NIX_CONFIG", "build-users-group =")
}

/// Runs `command` (printed first) and returns its stdout; fails with its
/// stderr.
fn output_of(command: &mut Command) -> Result<String> {
    let shown = format!("{command:?}");
    let output = command.output().with_context(|| format!("cannot run {shown}"))?;
    if !output.status.success() {
        // What it printed that says why: its failed checks and last line.
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout.lines().last().into_iter();
        let said: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).chain(last).collect();
        bail!("{shown} failed ({}):\n{}{}", output.status, String::from_utf8_lossy(&output.stderr), said.join("\n"));
    }
    String::from_utf8(output.stdout).with_context(|| format!("{shown} printed something that is not UTF-8"))
}

/// Collects `.nix` files below `dir`, skipping build output, installed tools
/// and hidden directories (`.git`, `.tools`).
fn find_nix_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Not followed: symbolic links (no loops) and what isn't ours to check.
        let file_type = entry.file_type().with_context(|| format!("cannot stat {}", entry.path().display()))?;
        if file_type.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                find_nix_files(&entry.path(), files)?;
            }
        } else if file_type.is_file() && name.ends_with(".nix") {
            files.push(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nix_files_outside_hidden_and_build_directories() -> Result<()> {
        let root = tempfile::tempdir()?;
        for dir in ["modules/cim", ".git", "target/debug", "node_modules/x"] {
            fs::create_dir_all(root.path().join(dir))?;
        }
        for file in [
            "flake.nix",
            "modules/cim/store.nix",
            "modules/cim/notes.md",
            ".git/x.nix",
            "target/debug/y.nix",
            "node_modules/x/z.nix",
        ] {
            fs::write(root.path().join(file), "{ }")?;
        }
        let mut files = Vec::new();
        find_nix_files(root.path(), &mut files)?;
        files.sort();
        assert_eq!(files, [root.path().join("flake.nix"), root.path().join("modules/cim/store.nix")]);
        Ok(())
    }
}

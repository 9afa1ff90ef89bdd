//! The Nix checks of `cargo xtask test`; extend [`checks`] as the flake and
//! the modules grow. Nothing here needs nixpkgs or a binary cache, which this
//! project's machines cannot reach.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::cmd::{on_path, run};

/// Runs every Nix check whose tools are present, saying which are skipped.
pub fn checks(root: &Path) -> Result<()> {
    if !on_path("nix-instantiate") {
        println!("nix: skipped, nix-instantiate not found (Debian: apt-get install nix-bin)");
        return Ok(());
    }
    parse_all(root)?;
    eval_check(root)
}

/// `nix-instantiate --parse` on every `.nix` file: syntax errors fail fast.
fn parse_all(root: &Path) -> Result<()> {
    let mut files = Vec::new();
    find_nix_files(root, &mut files)?;
    files.sort();
    println!("nix: parsing {} .nix files", files.len());
    for file in files {
        run(nix_env(Command::new("nix-instantiate").arg("--parse").arg(&file).stdout(Stdio::null())))?;
    }
    Ok(())
}

/// Evaluates the modules against nixpkgs' `lib` alone (a checkout in
/// `.tools/nixpkgs.lib`) with `nix/eval-check.sh`, once both exist.
fn eval_check(root: &Path) -> Result<()> {
    let lib = root.join(".tools/nixpkgs.lib");
    let script = root.join("nix/eval-check.sh");
    if !(lib.is_dir() && script.is_file()) {
        println!("nix: evaluation skipped, needs {} and {}", lib.display(), script.display());
        return Ok(());
    }
    run(nix_env(Command::new("bash").arg(&script).env("NIXPKGS_LIB", &lib).current_dir(root)))
}

/// Quiets Nix's warning about the `nixbld` group, which Debian's single-user
/// `nix-bin` lacks: these checks build nothing.
fn nix_env(command: &mut Command) -> &mut Command {
    command.env("NIX_CONFIG", "build-users-group =")
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

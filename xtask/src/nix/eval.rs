//! The evaluation check: `nix/eval` evaluated with nixpkgs' `lib` alone.
//!
//! - `report`: the example host (every component in its container), the test
//!   suites' nodes, the flake's outputs and the option docs evaluate; what
//!   the modules render is compared with `nix/eval/rendered/`;
//! - `cases`: each bad configuration fails, with the expected message;
//! - the test scripts compile (Python).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::{Options, RENDERED, nix_env, output_of};

pub fn run(root: &Path, lib: &Path, options: Options) -> Result<()> {
    println!("nix: evaluating nix/eval with {}", lib.display());
    let report: Value = serde_json::from_str(&instantiate(root, lib, &["--strict", "--json", "-A", "report"])?)
        .context("the report is not JSON")?;
    let example = &report["example"];
    println!("nix: the example host evaluates: {}", show(&report["flake"]["example"]));
    for warning in example["warnings"].as_array().into_iter().flatten() {
        println!("nix: warning of the example host: {}", show(warning));
    }

    check_flake(&report["flake"])?;
    let undocumented = report["undocumented"].as_array().context("report.undocumented")?;
    ensure!(undocumented.is_empty(), "options without a description: {undocumented:?}");
    let count = report["optionCount"].as_u64().unwrap_or(0);
    ensure!(count > 0, "the option docs list no services.cim option");
    println!("nix: all {count} services.cim options have a description (the option docs list them)");

    rendered_files(root, example, options)?;
    check_cases(root, lib)?;
    check_test_scripts(root, &report["tests"])
}

/// `nix-instantiate --eval nix/eval ARGS --arg lib <lib>`.
fn instantiate(root: &Path, lib: &Path, args: &[&str]) -> Result<String> {
    let lib_expr = format!("import {}/lib", lib.display());
    output_of(
        nix_env(&mut Command::new("nix-instantiate"))
            .arg("--eval")
            .args(args)
            .arg("nix/eval")
            .args(["--arg", "lib", &lib_expr])
            .current_dir(root),
    )
}

fn show(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// The flake's outputs, as evaluated with stand-in inputs.
fn check_flake(flake: &Value) -> Result<()> {
    let names = |key: &str| -> Vec<String> {
        match &flake[key] {
            Value::Array(items) => items.iter().map(show).collect(),
            Value::Object(map) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    };
    // Every component of components.toml has its package and module.
    let deployment = cim_deploy::Deployment::embedded()?;
    let components = deployment.components().values();
    let packages = ["cim", "nats-server", "default", "option-docs"].map(str::to_owned);
    for package in packages.into_iter().chain(components.clone().map(|c| c.package.clone())) {
        ensure!(names("packages").contains(&package), "the flake has no packages.<system>.{package}");
    }
    for check in ["clippy", "fmt", "tests", "host", "components", "full-stack", "permissions"] {
        ensure!(names("checks").iter().any(|c| c == check), "the flake has no checks.<system>.{check}");
    }
    let modules = ["default", "host", "containers"].map(str::to_owned);
    for module in modules.into_iter().chain(components.map(|c| c.name.clone())) {
        ensure!(names("nixosModules").contains(&module), "the flake has no nixosModules.{module}");
    }
    let alone = &flake["containersAlone"];
    ensure!(alone.is_string(), "nixosModules.containers on its own does not evaluate: {alone}");
    println!("nix: nixosModules.containers evaluates on its own: {}", show(alone));
    let deps = flake["sharedDeps"].as_array().context("flake.sharedDeps")?;
    ensure!(deps.len() == 1, "the binaries do not share one dependency build: {deps:?}");
    println!(
        "nix: flake outputs: packages {:?}, checks {:?}, one dependency build for all binaries",
        names("packages"),
        names("checks")
    );
    Ok(())
}

/// The files the example host renders, by their name in `nix/eval/rendered/`.
fn expected_files(example: &Value) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    let nats = &example["nats"];
    files.insert("nats-base.json".to_owned(), serde_json::to_string_pretty(&nats["settings"])? + "\n");
    let check = show(&nats["checkScript"]);
    files.insert("nats-start.sh".to_owned(), script(&show(&nats["startScript"])));
    files.insert("nats-check.sh".to_owned(), script(&check));
    // The build runs the rendered check on the stored file, and links it.
    let command = show(&nats["checkCommand"]);
    let stored = command
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("ln -s "))
        .and_then(|l| l.strip_suffix(" $out"))
        .with_context(|| format!("the module's NATS check does not end by linking the checked file:\n{command}"))?;
    ensure!(
        command == format!("{}\nln -s {stored} $out\n", check.replace("\"$1\"", stored)),
        "the module's build-time NATS check is not nats-check.sh on its file:\n{command}"
    );
    files.insert("nats-users.json".to_owned(), serde_json::to_string_pretty(&nats["credentials"])? + "\n");
    files.insert("permission-matrix.json".to_owned(), serde_json::to_string_pretty(&nats["permissionMatrix"])? + "\n");
    files.insert("cim.toml".to_owned(), to_toml(&nats["cli"]["admin"])?);
    files.insert("cim-provision.toml".to_owned(), to_toml(&nats["cli"]["provision"])?);
    let containers = example["containers"].as_object().context("report.example.containers")?;
    for container in containers.values() {
        for (name, file) in container["rendered"].as_object().into_iter().flatten() {
            let check = show(&file["check"]);
            let binary = show(&file["binary"]);
            // The module's build-time check is the one the live check runs.
            ensure!(
                check.starts_with(&format!("{binary} --check-config ")) && check.contains(" --skip-file-checks"),
                "the module checks {name} with `{check}`, not `{binary} --check-config FILE --skip-file-checks`"
            );
            files.insert(name.clone(), to_toml(&file["settings"])?);
        }
    }
    Ok(files)
}

/// A module's script as a file the live check runs with `sh`.
fn script(body: &str) -> String {
    format!("#!/bin/sh\n# Rendered by the NixOS host module (nix/eval/rendered/README.md).\n{body}")
}

/// JSON → TOML, as nixpkgs' `formats.toml` does with remarshal's json2toml.
fn to_toml(value: &Value) -> Result<String> {
    let value: toml::Value = serde_json::from_value(value.clone()).context("not representable as TOML")?;
    toml::to_string(&value).context("cannot write TOML")
}

/// Compares (or, with `--update-rendered`, rewrites) `nix/eval/rendered/`.
fn rendered_files(root: &Path, example: &Value, options: Options) -> Result<()> {
    let dir = root.join(RENDERED);
    let expected = expected_files(example)?;
    let mut stale = Vec::new();
    for (name, text) in &expected {
        let path = dir.join(name);
        if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name.clone());
            if options.update_rendered {
                fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
                fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
    }
    for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "README.md" && !expected.contains_key(&name) {
            stale.push(name.clone());
            if options.update_rendered {
                fs::remove_file(entry.path()).with_context(|| format!("cannot remove {}", entry.path().display()))?;
            }
        }
    }
    if stale.is_empty() {
        println!("nix: {RENDERED}/ is what the modules render ({} files)", expected.len());
    } else if options.update_rendered {
        println!("nix: updated {RENDERED}/: {}", stale.join(", "));
    } else {
        bail!(
            "{RENDERED}/ differs from what the modules render: {}. Run `cargo xtask nix --update-rendered` and review the diff",
            stale.join(", ")
        );
    }
    Ok(())
}

/// Every case of `nix/eval/cases.nix` must fail, with its message.
fn check_cases(root: &Path, lib: &Path) -> Result<()> {
    let names: Vec<String> = serde_json::from_str(&instantiate(root, lib, &["--json", "-A", "caseNames"])?)?;
    ensure!(!names.is_empty(), "nix/eval/cases.nix has no cases");
    let mut wrong = Vec::new();
    for name in &names {
        let expect: String =
            serde_json::from_str(&instantiate(root, lib, &["--json", "-A", &format!("cases.{name}.expect")])?)?;
        let lib_expr = format!("import {}/lib", lib.display());
        let output = nix_env(&mut Command::new("nix-instantiate"))
            .args(["--eval", "--strict", "nix/eval", "-A", &format!("cases.{name}.toplevel")])
            .args(["--arg", "lib", &lib_expr])
            .current_dir(root)
            .output()
            .context("cannot run nix-instantiate")?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            wrong.push(format!("{name}: evaluated, but must fail with “{expect}”"));
        } else if !stderr.contains(&expect) {
            wrong.push(format!("{name}: failed, but without “{expect}”:\n{stderr}"));
        } else {
            let line = stderr.lines().find(|l| l.contains(expect.lines().next().unwrap_or(""))).unwrap_or("");
            println!("nix: bad configuration `{name}` refused: {}", line.trim());
        }
    }
    ensure!(wrong.is_empty(), "bad configurations not refused as expected:\n{}", wrong.join("\n"));
    Ok(())
}

/// The nixosTest scripts are Python: they must at least compile. (The test
/// driver also lints and type-checks them, which needs nixpkgs.)
fn check_test_scripts(root: &Path, tests: &Value) -> Result<()> {
    let tests = tests.as_object().context("report.tests")?;
    let dir = root.join("target/nix-check/test-scripts");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, test) in tests {
        let nodes = test["nodes"].as_object().context("test nodes")?;
        let path = dir.join(format!("{name}.py"));
        fs::write(&path, show(&test["testScript"])).with_context(|| format!("cannot write {}", path.display()))?;
        output_of(Command::new("python3").args(["-m", "py_compile"]).arg(&path))
            .with_context(|| format!("the test script of `{name}` does not compile"))?;
        println!(
            "nix: test `{name}`: nodes {:?} evaluate (with containers {:?}), script compiles, timeout {}s",
            nodes.keys().collect::<Vec<_>>(),
            nodes.values().flat_map(|n| n.as_object().into_iter().flat_map(|c| c.keys())).collect::<Vec<_>>(),
            test["globalTimeout"]
        );
    }
    ensure!(tests.len() >= 4, "expected the four suites of tests/default.nix, found {}", tests.len());
    Ok(())
}

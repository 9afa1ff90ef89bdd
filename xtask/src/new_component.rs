//! `cargo xtask new-component NAME`: a new component's two crates from the
//! templates in `xtask/templates/new-component/`, and its entry in
//! components.toml, from which Nix (modules, containers, NATS users and
//! permissions), `cim up` and the live check take it.
//!
//! `--scratch` (and `cargo xtask test`) does the same in a scratch copy of
//! the workspace and lints and tests the result there, so the templates
//! cannot rot.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use cim_deploy::Deployment;

use crate::cmd::run;
use crate::layering;

/// The templates: where each goes below `crates/` (`{{name}}` replaced),
/// and its text.
const TEMPLATES: &[(&str, &str)] = &[
    ("cim-{{name}}-api/Cargo.toml", include_str!("../templates/new-component/api/Cargo.toml.tmpl")),
    ("cim-{{name}}-api/src/lib.rs", include_str!("../templates/new-component/api/src/lib.rs.tmpl")),
    ("cim-{{name}}-api/src/code.rs", include_str!("../templates/new-component/api/src/code.rs.tmpl")),
    ("cim-{{name}}-api/src/messages.rs", include_str!("../templates/new-component/api/src/messages.rs.tmpl")),
    ("cim-{{name}}-api/src/client.rs", include_str!("../templates/new-component/api/src/client.rs.tmpl")),
    ("cim-{{name}}/Cargo.toml", include_str!("../templates/new-component/server/Cargo.toml.tmpl")),
    ("cim-{{name}}/src/lib.rs", include_str!("../templates/new-component/server/src/lib.rs.tmpl")),
    ("cim-{{name}}/src/main.rs", include_str!("../templates/new-component/server/src/main.rs.tmpl")),
    ("cim-{{name}}/src/settings.rs", include_str!("../templates/new-component/server/src/settings.rs.tmpl")),
    ("cim-{{name}}/src/service.rs", include_str!("../templates/new-component/server/src/service.rs.tmpl")),
    ("cim-{{name}}/tests/lib.rs", include_str!("../templates/new-component/server/tests/lib.rs.tmpl")),
    ("cim-{{name}}/tests/service.rs", include_str!("../templates/new-component/server/tests/service.rs.tmpl")),
    (
        "cim-{{name}}/tests/check_config.rs",
        include_str!("../templates/new-component/server/tests/check_config.rs.tmpl"),
    ),
];

/// The name `cargo xtask test` generates into its scratch copy.
pub const SCRATCH_NAME: &str = "sample";

/// A new component's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// As in components.toml: `hub`.
    pub name: String,
    /// For Rust types: `Hub`.
    pub camel: String,
    /// Human: `Integration Hub`.
    pub title: String,
}

impl Names {
    /// Checks `name` as components.toml does (at most 8 of `[a-z0-9]`,
    /// starting with a letter: its container's host interface is
    /// `ve-cim-<name>`) and `title` (text for docs, strings and TOML).
    pub fn new(name: &str, title: Option<&str>) -> Result<Self> {
        let mut chars = name.chars();
        let valid = name.len() <= 8
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        ensure!(valid, "a component's name is at most 8 of [a-z0-9], starting with a letter; not {name:?}");
        let camel = name[..1].to_uppercase() + &name[1..];
        let title = title.map_or_else(|| camel.clone(), str::to_owned);
        ensure!(
            !title.trim().is_empty()
                && title.chars().all(|c| (c.is_alphanumeric() || " -'(),./&+".contains(c)) && !c.is_control()),
            "a title is words: letters, digits, spaces and -'(),./&+; not {title:?}"
        );
        Ok(Self { name: name.to_owned(), camel, title })
    }

    /// `template` with its placeholders replaced; an unknown one is an error.
    pub fn render(&self, template: &str) -> Result<String> {
        let text =
            template.replace("{{name}}", &self.name).replace("{{Name}}", &self.camel).replace("{{title}}", &self.title);
        if let Some(at) = text.find("{{") {
            let line = text[..at].lines().count().max(1);
            bail!("unknown placeholder at line {line}: {}", text[at..].lines().next().unwrap_or_default());
        }
        Ok(text)
    }
}

/// What `new-component` writes besides the crates.
#[derive(Debug)]
struct Plan {
    components_toml: String,
    cargo_toml: String,
    http_port: u16,
    address: Ipv4Addr,
}

/// Creates the component `name` in the workspace at `root`.
pub fn create(root: &Path, name: &str, title: Option<&str>) -> Result<()> {
    let names = Names::new(name, title)?;
    let plan = plan(root, &names)?;
    let crates = root.join("crates");
    for dir in [format!("cim-{name}"), format!("cim-{name}-api")] {
        ensure!(!crates.join(&dir).exists(), "crates/{dir} exists already");
    }
    for (path, template) in TEMPLATES {
        let path = crates.join(names.render(path)?);
        let text = names.render(template).with_context(|| format!("rendering {}", path.display()))?;
        fs::create_dir_all(path.parent().context("a template without a directory")?)?;
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    fs::write(root.join("components.toml"), &plan.components_toml).context("cannot write components.toml")?;
    fs::write(root.join("Cargo.toml"), &plan.cargo_toml).context("cannot write Cargo.toml")?;
    // Import order depends on the name: let rustfmt have the last word.
    run(Command::new(cargo())
        .args(["fmt", "-p", &format!("cim-{name}"), "-p", &format!("cim-{name}-api")])
        .current_dir(root))
    .context("formatting the new crates")?;
    println!(
        "new-component: created crates/cim-{name}-api (its request API) and crates/cim-{name} (the service), \
         [components.{name}] in components.toml (HTTP port {}, container address {}), and cim-{name}-api in \
         [workspace.dependencies].
Next:
  1. cargo test -p cim-{name} -p cim-{name}-api    its tests, on a real nats-server
  2. Replace the example endpoint `echo` with the component's own, and say in components.toml what it
     appends, owns, reads and calls (aggregates, buckets, reads, writes_objects, purges_events, calls).
  3. cargo xtask nix --update-rendered    renders its NixOS configuration and NATS user into
     nix/eval/rendered/ (review the diff); cim-deploy's tests and the live check compare with it.
  4. tests/permission-matrix.json: what its NATS user must not do, and others must not do to it.
  5. Docs: its subjects in docs/spec/subjects.md, its [{name}] section in docs/services.md, its
     crates in ARCHITECTURE.md's code map (docs/deploy.md, \"Adding a component\").",
        plan.http_port, plan.address
    );
    Ok(())
}

/// The edited components.toml and Cargo.toml, checked.
fn plan(root: &Path, names: &Names) -> Result<Plan> {
    let name = &names.name;
    let components_path = root.join("components.toml");
    let components_toml = fs::read_to_string(&components_path).context("cannot read components.toml")?;
    let deployment = Deployment::parse(&components_toml)?;
    ensure!(deployment.component(name).is_none(), "components.toml has a component `{name}` already");
    let package = format!("cim-{name}");
    if let Some(c) = deployment.components().values().find(|c| c.package == package || c.user == *name) {
        bail!("components.toml's component `{}` has the package or user of `{name}`", c.name);
    }
    let http_port =
        deployment.components().values().map(|c| c.http_port).max().map_or(Some(9101), |p| p.checked_add(1));
    let http_port = http_port.context("no free HTTP port above the others")?;
    let address = match deployment.components().values().map(|c| c.address).max() {
        None => Ipv4Addr::new(10, 233, 0, 2),
        Some(last) => {
            let [a, b, c, d] = last.octets();
            ensure!(d < 254, "no free container address after {last} in its /24");
            Ipv4Addr::new(a, b, c, d + 1)
        }
    };
    let entry = format!(
        "[components.{name}]\ntitle = \"{title}\"\npackage = \"cim-{name}\"\napi = \"cim-{name}-api\"\nuser = \"{name}\"\n\
         http_port = {http_port}\naddress = \"{address}\"\nservice = \"cim.service.{name}\"\naggregates = []\n\
         buckets = []\nreads = []\nwrites_objects = false\npurges_events = false\ncalls = []\n",
        title = names.title
    );
    let components_toml = insert_component(&components_toml, &entry)?;
    let parsed = Deployment::parse(&components_toml).context("components.toml with the new entry")?;
    let added = parsed.component(name).context("the new entry is not in components.toml")?;
    ensure!(added.http_port == http_port && added.address == address, "the new entry did not parse as written");

    let cargo_path = root.join("Cargo.toml");
    let cargo_toml = fs::read_to_string(&cargo_path).context("cannot read Cargo.toml")?;
    let cargo_toml = insert_workspace_dependency(&cargo_toml, name)?;
    Ok(Plan { components_toml, cargo_toml, http_port, address })
}

/// `text` with `entry` after the last `[components.…]` table.
fn insert_component(text: &str, entry: &str) -> Result<String> {
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.iter().rposition(|l| l.starts_with("[components.")).context("components.toml has no component")?;
    let end = (last + 1..lines.len())
        .find(|&i| lines[i].trim().is_empty() || lines[i].starts_with('['))
        .unwrap_or(lines.len());
    let mut out: Vec<&str> = lines[..end].to_vec();
    out.push("");
    out.extend(entry.lines());
    if end < lines.len() && !lines[end].trim().is_empty() {
        out.push("");
    }
    out.extend(&lines[end..]);
    Ok(out.join("\n") + "\n")
}

/// The workspace manifest with `cim-<name>-api` in `[workspace.dependencies]`,
/// after the last API crate there. (The server crate is not: nothing depends
/// on it.)
fn insert_workspace_dependency(text: &str, name: &str) -> Result<String> {
    let key = format!("cim-{name}-api");
    let manifest: toml::Table = toml::from_str(text).context("Cargo.toml is not TOML")?;
    let dependencies = manifest
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(|d| d.as_table())
        .context("Cargo.toml has no [workspace.dependencies]")?;
    ensure!(!dependencies.contains_key(&key), "Cargo.toml's [workspace.dependencies] has {key} already");
    let lines: Vec<&str> = text.lines().collect();
    let is_api = |l: &&str| l.starts_with("cim-") && l.contains("-api = { path = \"crates/");
    let after = match lines.iter().rposition(is_api) {
        Some(i) => i,
        None => {
            lines.iter().position(|l| l.trim() == "[workspace.dependencies]").context("no [workspace.dependencies]")?
        }
    };
    let line = format!("{key} = {{ path = \"crates/{key}\" }}");
    let mut out: Vec<&str> = lines[..=after].to_vec();
    out.push(&line);
    out.extend(&lines[after + 1..]);
    let text = out.join("\n") + "\n";
    let manifest: toml::Table = toml::from_str(&text).context("Cargo.toml with the new dependency")?;
    ensure!(
        manifest["workspace"]["dependencies"].get(&key).is_some(),
        "the new dependency did not land in [workspace.dependencies]"
    );
    Ok(text)
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Generates `name` into a scratch copy of the workspace at `root`
/// (`target/xtask/new-component/`), then lints it (clippy, warnings denied),
/// runs its tests and the layering check there, and removes the copy. The
/// workspace is not changed; the copy builds into the workspace's target
/// directory, its crates under another version so that their artifacts
/// never replace the workspace's own.
pub fn try_in_scratch(root: &Path, name: &str, title: Option<&str>) -> Result<()> {
    let scratch = root.join("target/xtask/new-component");
    if scratch.exists() {
        fs::remove_dir_all(&scratch).with_context(|| format!("cannot remove {}", scratch.display()))?;
    }
    copy_workspace(root, &scratch)?;
    mark_version(&scratch)?;
    create(&scratch, name, title)?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let packages = [format!("cim-{name}"), format!("cim-{name}-api")];
    let in_scratch = |args: &[&str]| {
        let mut command = Command::new(cargo());
        command.args(args).current_dir(&scratch).env("CARGO_TARGET_DIR", &target);
        for package in &packages {
            command.args(["-p", package]);
        }
        command
    };
    run(in_scratch(&["clippy", "--all-targets"]).args(["--", "-D", "warnings"]))?;
    run(in_scratch(&["test"]).env("CIM_NATS_SERVER", root.join(".tools/venv/bin/nats-server")))?;
    let violations = layering::check(&scratch)?;
    ensure!(violations.is_empty(), "the generated component breaks the layering:\n{}", violations.join("\n"));
    fs::remove_dir_all(&scratch).with_context(|| format!("cannot remove {}", scratch.display()))?;
    println!(
        "new-component: cim-{name} and cim-{name}-api, generated into a scratch copy, pass clippy, their tests and the layering check"
    );
    Ok(())
}

/// Copies what Cargo reads of the workspace (manifests, lock file, sources,
/// components.toml, rustfmt.toml) into `to`, keeping modification times so
/// that Cargo finds unchanged crates up to date on the next run.
fn copy_workspace(root: &Path, to: &Path) -> Result<()> {
    for file in ["Cargo.toml", "Cargo.lock", "components.toml", "rustfmt.toml", ".cargo/config.toml"] {
        if root.join(file).exists() {
            copy_file(&root.join(file), &to.join(file))?;
        }
    }
    for dir in ["crates", "xtask"] {
        copy_tree(&root.join(dir), &to.join(dir))?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if !matches!(entry.file_name().to_str(), Some("target" | "node_modules" | ".git")) {
                copy_tree(&path, &to.join(entry.file_name()))?;
            }
        } else if entry.file_type()?.is_file() {
            copy_file(&path, &to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to.parent().context("a file without a directory")?)?;
    fs::copy(from, to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    let modified = fs::metadata(from)?.modified()?;
    fs::File::options().write(true).open(to)?.set_modified(modified)?;
    Ok(())
}

/// Gives the copy's crates another version (`0.1.0` → `0.1.0-scratch`), in
/// the manifest and the lock file: Cargo names a crate's artifacts after its
/// path relative to the workspace root and its version, so the same version
/// would make the copy's builds overwrite the workspace's.
fn mark_version(scratch: &Path) -> Result<()> {
    let manifest_path = scratch.join("Cargo.toml");
    let manifest = fs::read_to_string(&manifest_path)?;
    let table: toml::Table = toml::from_str(&manifest)?;
    let version = table
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .context("Cargo.toml has no [workspace.package] version")?
        .to_owned();
    let marked = format!("{version}-scratch");
    let (head, tail) = manifest.split_once("[workspace.package]").context("no [workspace.package]")?;
    let old = format!("version = \"{version}\"");
    ensure!(tail.contains(&old), "[workspace.package] has no line `{old}`");
    fs::write(
        &manifest_path,
        format!("{head}[workspace.package]{}", tail.replacen(&old, &format!("version = \"{marked}\""), 1)),
    )?;

    // Only the workspace's own packages: they carry no `source`.
    let lock_path = scratch.join("Cargo.lock");
    let lock = fs::read_to_string(&lock_path)?;
    let mut out = String::with_capacity(lock.len());
    for block in lock.split_inclusive("\n\n") {
        if block.starts_with("[[package]]") && !block.contains("\nsource = ") {
            out += &block.replacen(&format!("\nversion = \"{version}\"\n"), &format!("\nversion = \"{marked}\"\n"), 1);
        } else {
            out += block;
        }
    }
    fs::write(&lock_path, out)?;
    Ok(())
}

#[cfg(test)]
mod tests;

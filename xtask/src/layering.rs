//! `cargo xtask layering` (and a step of `cargo xtask test`): the crate
//! layering of ARCHITECTURE.md, checked over `cargo metadata` as
//! rust-analyzer's tidy tests check theirs.
//!
//! - `cim-cid` and `cim-dag` are pure: no I/O or async crate among their
//!   dependencies, direct or transitive, and no workspace crate but each
//!   other.
//! - A component's server crate (components.toml's `package`) never depends
//!   on another component's server crate (not even for its tests): it calls
//!   the other component through its API crate's `Client` over NATS.
//! - A component's API crate (`api`) depends on no server crate, no
//!   `cim-runtime` and no `cim-store`: other components and the CLI link it.
//! - The platform the components stand on (`cim-wire`, `cim-store`,
//!   `cim-runtime`, ...) depends on no component's server crate.
//! - The CLI links no server crate and no `cim-runtime`, and none of
//!   jsonschema, json-patch, axum or prometheus-client.
//!
//! The graph is `cargo metadata`'s resolve: every platform, features
//! unified across the workspace. That is stricter than any single build
//! (`cargo tree -p X -e normal`), never laxer. "Depends" follows normal
//! dependencies (what is linked); build dependencies never reach the
//! product. Each violation names the crate it reaches and the path that
//! reaches it; the search stops at the first forbidden crate of a path.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use cim_deploy::Deployment;
use serde_json::Value;

/// The pure crates.
const PURE: [&str; 2] = ["cim-cid", "cim-dag"];
/// The CLI's package.
const CLI: &str = "cim-cli";
/// The service runtime.
const RUNTIME: &str = "cim-runtime";
/// The store.
const STORE: &str = "cim-store";
/// The crates components stand on: none of them may depend on a
/// component's server crate.
/// (`cim-cid` and `cim-dag` depend on no other workspace crate at all.)
const PLATFORM: [&str; 6] = ["cim-wire", "cim-store", "cim-archive", "cim-runtime", "cim-nats-server", "cim-deploy"];
/// What a component's server would bring into the CLI.
const CLI_FORBIDDEN: [&str; 4] = ["jsonschema", "json-patch", "axum", "prometheus-client"];

/// Crates that do I/O or run async code: each name stands for itself and
/// for the crates named `<name>-…` (`tokio` also for `tokio-util`, `async`
/// for `async-nats`, `async-trait`, ...).
const IO_OR_ASYNC: &[&str] = &[
    // async runtimes, futures, event loops, signals
    "tokio",
    "futures",
    "async",
    "mio",
    "smol",
    "polling",
    "signal-hook",
    // messaging, HTTP, networking, TLS
    "nats",
    "hyper",
    "h2",
    "h3",
    "reqwest",
    "ureq",
    "axum",
    "tower",
    "tonic",
    "quinn",
    "socket2",
    "native-tls",
    "openssl",
    "curl",
    // storage and files
    "object_store",
    "tempfile",
    "walkdir",
    "memmap2",
    "notify",
    "rusqlite",
    "sled",
];

/// Whether `name` is one of [`IO_OR_ASYNC`] or of its families.
pub fn is_io_or_async(name: &str) -> bool {
    IO_OR_ASYNC.iter().any(|io| name == *io || name.strip_prefix(io).is_some_and(|rest| rest.starts_with(['-', '_'])))
}

/// Runs the check on the workspace at `root` and prints the outcome.
pub fn run(root: &Path) -> Result<()> {
    let violations = check(root)?;
    if violations.is_empty() {
        println!("layering: every rule holds (ARCHITECTURE.md; xtask/src/layering.rs)");
        return Ok(());
    }
    for violation in &violations {
        eprintln!("layering: {violation}");
    }
    bail!("{} layering violation(s); ARCHITECTURE.md says why each rule exists", violations.len())
}

/// The violations in the workspace at `root`: its `cargo metadata` and its
/// `components.toml`.
pub fn check(root: &Path) -> Result<Vec<String>> {
    let path = root.join("components.toml");
    let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let deployment = Deployment::parse(&text)?;
    let components: Vec<Component> = deployment
        .components()
        .values()
        .map(|c| Component { name: c.name.clone(), server: c.package.clone(), api: c.api.clone() })
        .collect();
    let graph = Graph::from_metadata(&metadata(root)?)?;
    Ok(violations(&graph, &components))
}

/// `cargo metadata` of the workspace at `root`.
fn metadata(root: &Path) -> Result<Value> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .output()
        .context("cannot run cargo metadata")?;
    ensure!(output.status.success(), "cargo metadata failed:\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).context("cargo metadata printed no JSON")
}

/// A component as the rules see it.
#[derive(Debug, Clone)]
pub struct Component {
    /// Its name in components.toml.
    pub name: String,
    /// Its server crate.
    pub server: String,
    /// Its API crate.
    pub api: String,
}

/// The resolved dependency graph.
#[derive(Debug)]
pub struct Graph {
    names: Vec<String>,
    member: Vec<bool>,
    /// Per package, its dependencies.
    deps: Vec<Vec<Dep>>,
    members: HashMap<String, usize>,
}

#[derive(Debug, Clone, Copy)]
struct Dep {
    to: usize,
    normal: bool,
    dev: bool,
}

impl Graph {
    /// The graph of a `cargo metadata --format-version 1` document.
    pub fn from_metadata(metadata: &Value) -> Result<Self> {
        let packages = metadata["packages"].as_array().context("metadata without packages")?;
        let mut index = HashMap::new();
        let mut names = Vec::new();
        for package in packages {
            let id = package["id"].as_str().context("a package without id")?;
            let name = package["name"].as_str().context("a package without name")?;
            index.insert(id.to_owned(), names.len());
            names.push(name.to_owned());
        }
        let mut member = vec![false; names.len()];
        let mut members = HashMap::new();
        for id in metadata["workspace_members"].as_array().context("metadata without workspace_members")? {
            let &i = index.get(id.as_str().unwrap_or_default()).context("an unknown workspace member")?;
            member[i] = true;
            members.insert(names[i].clone(), i);
        }
        let mut deps = vec![Vec::new(); names.len()];
        let nodes = metadata["resolve"]["nodes"].as_array().context("metadata without resolve (--no-deps?)")?;
        for node in nodes {
            let &from = index.get(node["id"].as_str().unwrap_or_default()).context("a resolve node of no package")?;
            for dep in node["deps"].as_array().context("a resolve node without deps")? {
                let &to = index.get(dep["pkg"].as_str().unwrap_or_default()).context("a dependency of no package")?;
                let kinds: Vec<&str> = dep["dep_kinds"]
                    .as_array()
                    .context("a dependency without dep_kinds")?
                    .iter()
                    .map(|k| k["kind"].as_str().unwrap_or("normal"))
                    .collect();
                deps[from].push(Dep { to, normal: kinds.contains(&"normal"), dev: kinds.contains(&"dev") });
            }
        }
        Ok(Self { names, member, deps, members })
    }

    /// The shortest path from `from` to each package that `forbidden`
    /// names, following normal dependencies (and, when `dev`, `from`'s own
    /// dev-dependencies); a path ends at its first forbidden package.
    fn forbidden_paths(&self, from: usize, dev: bool, forbidden: &dyn Fn(usize) -> bool) -> Vec<Vec<usize>> {
        let mut parent: Vec<Option<usize>> = vec![None; self.names.len()];
        let mut seen = vec![false; self.names.len()];
        seen[from] = true;
        let mut queue = VecDeque::from([from]);
        let mut found = Vec::new();
        while let Some(at) = queue.pop_front() {
            if at != from && forbidden(at) {
                let mut path = vec![at];
                while let Some(p) = parent[*path.last().unwrap_or(&from)] {
                    path.push(p);
                }
                path.reverse();
                found.push(path);
                continue;
            }
            for dep in &self.deps[at] {
                let follows = dep.normal || (dev && dep.dev && at == from);
                if follows && !seen[dep.to] {
                    seen[dep.to] = true;
                    parent[dep.to] = Some(at);
                    queue.push_back(dep.to);
                }
            }
        }
        found.sort_by(|a, b| self.names[*a.last().unwrap_or(&from)].cmp(&self.names[*b.last().unwrap_or(&from)]));
        found
    }

    fn show(&self, path: &[usize]) -> String {
        path.iter().map(|&i| self.names[i].as_str()).collect::<Vec<_>>().join(" -> ")
    }
}

/// Why a package (its name, whether it is a workspace member) is forbidden
/// to a crate, or `None`.
type Forbids<'a> = Box<dyn Fn(&str, bool) -> Option<String> + 'a>;

/// One rule about one crate.
struct Rule<'a> {
    /// The crate.
    from: &'a str,
    /// What it is and may not do, completing "<from> ...".
    says: String,
    /// Whether its own dev-dependencies count.
    dev: bool,
    /// Why a package is forbidden to it.
    forbids: Forbids<'a>,
}

/// Every violation of the rules in `graph`, for `components`.
pub fn violations(graph: &Graph, components: &[Component]) -> Vec<String> {
    let server_of: BTreeMap<&str, &str> = components.iter().map(|c| (c.server.as_str(), c.name.as_str())).collect();
    let api_of: BTreeMap<&str, &str> = components.iter().map(|c| (c.api.as_str(), c.name.as_str())).collect();
    let server = |name: &str| server_of.get(name).map(|c| format!("component `{c}`'s server crate"));
    let server = &server;
    let mut out = Vec::new();

    let mut rules: Vec<Rule<'_>> = Vec::new();
    for pure in PURE {
        rules.push(Rule {
            from: pure,
            says: "is pure (no I/O, no async, no workspace crate but cim-cid and cim-dag)".to_owned(),
            dev: false,
            forbids: Box::new(|name: &str, member: bool| {
                if is_io_or_async(name) {
                    Some("an I/O or async crate".to_owned())
                } else if member && !PURE.contains(&name) {
                    Some("a workspace crate that is not pure".to_owned())
                } else {
                    None
                }
            }),
        });
    }
    for c in components {
        rules.push(Rule {
            from: &c.server,
            says: format!(
                "is component `{}`'s server crate and may not depend on another component's server crate \
                 (call the component through its API crate's Client over NATS)",
                c.name
            ),
            dev: true,
            forbids: Box::new(move |name: &str, member: bool| {
                (member && name != c.server).then(|| server(name)).flatten()
            }),
        });
        rules.push(Rule {
            from: &c.api,
            says: format!(
                "is component `{}`'s API crate and may not depend on a server crate, {RUNTIME} or {STORE} \
                 (other components and the CLI link it)",
                c.name
            ),
            dev: false,
            forbids: Box::new(move |name: &str, member: bool| {
                if !member {
                    None
                } else if name == RUNTIME || name == STORE {
                    Some("the platform's server side".to_owned())
                } else {
                    server(name)
                }
            }),
        });
    }
    for platform in PLATFORM {
        rules.push(Rule {
            from: platform,
            says: "is part of the platform components stand on and may not depend on a component's server crate"
                .to_owned(),
            dev: false,
            forbids: Box::new(move |name: &str, member: bool| member.then(|| server(name)).flatten()),
        });
    }
    rules.push(Rule {
        from: CLI,
        says: format!(
            "talks to components through their API crates and may not link a server crate, {RUNTIME}, or {}",
            CLI_FORBIDDEN.join(", ")
        ),
        dev: false,
        forbids: Box::new(move |name: &str, member: bool| {
            if member && name == RUNTIME {
                Some("the service runtime".to_owned())
            } else if member {
                server(name)
            } else {
                CLI_FORBIDDEN.contains(&name).then(|| "a server's dependency".to_owned())
            }
        }),
    });

    for rule in &rules {
        let Some(&from) = graph.members.get(rule.from) else {
            // Every crate a rule is about must exist, or the rule would pass unseen.
            let origin = if server_of.contains_key(rule.from) || api_of.contains_key(rule.from) {
                " (components.toml names it)"
            } else {
                ""
            };
            out.push(format!("{} is not a workspace member{origin}", rule.from));
            continue;
        };
        let forbidden = |i: usize| (rule.forbids)(&graph.names[i], graph.member[i]).is_some();
        for path in graph.forbidden_paths(from, rule.dev, &forbidden) {
            let &last = path.last().unwrap_or(&from);
            let why = (rule.forbids)(&graph.names[last], graph.member[last]).unwrap_or_default();
            out.push(format!(
                "{} {}, but depends on {} ({why}): {}",
                rule.from,
                rule.says,
                graph.names[last],
                graph.show(&path)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;

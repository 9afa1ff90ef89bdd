//! The rules on hand-made metadata documents (each violation planted in an
//! otherwise clean workspace), then the whole check on a temporary
//! workspace through the real `cargo metadata`, and on this workspace.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;

/// A metadata document: packages and their dependencies.
#[derive(Default)]
struct Meta {
    packages: BTreeMap<String, Package>,
}

#[derive(Default)]
struct Package {
    member: bool,
    /// Each dependency and its kind: `normal`, `dev` or `build`.
    deps: Vec<(String, &'static str)>,
}

impl Meta {
    /// Workspace shaped like this one, where every rule holds.
    fn clean() -> Self {
        let mut meta = Self::default();
        meta.member("cim-cid", &["serde", "cid"]);
        meta.member("cim-dag", &["cim-cid", "daggy"]);
        meta.member("cim-wire", &["serde", "async-nats"]);
        meta.member("cim-store", &["cim-cid", "cim-dag", "cim-wire", "async-nats"]);
        meta.member("cim-archive", &["cim-store"]);
        meta.member("cim-nats-server", &[]);
        meta.member("cim-deploy", &["serde"]);
        meta.member("cim-test-support", &["cim-nats-server", "tokio"]);
        meta.member("cim-registry-api", &["cim-wire", "serde"]);
        meta.member("cim-ius-api", &["cim-wire", "serde"]);
        meta.member("cim-runtime", &["cim-registry-api", "cim-store", "cim-wire", "axum", "prometheus-client"]);
        meta.member("cim-registry", &["cim-registry-api", "cim-runtime", "cim-store", "jsonschema"]);
        meta.member("cim-ius", &["cim-ius-api", "cim-registry-api", "cim-runtime", "cim-store", "json-patch"]);
        meta.member("cim-cli", &["cim-ius-api", "cim-registry-api", "cim-archive", "cim-deploy"]);
        meta.dev("cim-ius", "cim-test-support");
        meta.dev("cim-cli", "cim-test-support");
        for (name, deps) in [
            ("serde", &[][..]),
            ("cid", &["serde"][..]),
            ("daggy", &["petgraph"][..]),
            ("petgraph", &[][..]),
            ("tokio", &["mio"][..]),
            ("mio", &[][..]),
            ("async-nats", &["tokio", "serde"][..]),
            ("axum", &["tokio", "hyper"][..]),
            ("hyper", &["tokio"][..]),
            ("prometheus-client", &[][..]),
            ("jsonschema", &["serde"][..]),
            ("json-patch", &["serde"][..]),
        ] {
            meta.external(name, deps);
        }
        meta
    }

    fn member(&mut self, name: &str, deps: &[&str]) {
        self.package(name, true, deps);
    }

    fn external(&mut self, name: &str, deps: &[&str]) {
        self.package(name, false, deps);
    }

    fn package(&mut self, name: &str, member: bool, deps: &[&str]) {
        let deps = deps.iter().map(|d| ((*d).to_owned(), "normal")).collect();
        self.packages.insert(name.to_owned(), Package { member, deps });
    }

    /// Plants a dependency of `kind`.
    fn with(&mut self, from: &str, to: &str, kind: &'static str) -> &mut Self {
        self.packages.get_mut(from).expect(from).deps.push((to.to_owned(), kind));
        self
    }

    fn add(&mut self, from: &str, to: &str) -> &mut Self {
        self.with(from, to, "normal")
    }

    fn dev(&mut self, from: &str, to: &str) -> &mut Self {
        self.with(from, to, "dev")
    }

    fn build(&mut self, from: &str, to: &str) -> &mut Self {
        self.with(from, to, "build")
    }

    /// As `cargo metadata --format-version 1` prints it (the parts read).
    fn to_json(&self) -> Value {
        let id = |name: &str| format!("path+file:///ws#{name}@0.1.0");
        let packages: Vec<Value> = self.packages.keys().map(|name| json!({ "id": id(name), "name": name })).collect();
        let members: Vec<Value> =
            self.packages.iter().filter(|(_, p)| p.member).map(|(name, _)| json!(id(name))).collect();
        let nodes: Vec<Value> = self
            .packages
            .iter()
            .map(|(name, package)| {
                let deps: Vec<Value> = package
                    .deps
                    .iter()
                    .map(|(to, kind)| {
                        let kind = if *kind == "normal" { Value::Null } else { json!(kind) };
                        json!({ "name": to.replace('-', "_"), "pkg": id(to), "dep_kinds": [{ "kind": kind, "target": null }] })
                    })
                    .collect();
                json!({ "id": id(name), "deps": deps })
            })
            .collect();
        json!({ "packages": packages, "workspace_members": members, "resolve": { "nodes": nodes, "root": null } })
    }

    fn violations(&self) -> Vec<String> {
        let graph = Graph::from_metadata(&self.to_json()).expect("a valid document");
        violations(&graph, &components(&["registry", "ius"]))
    }
}

fn components(names: &[&str]) -> Vec<Component> {
    names
        .iter()
        .map(|n| Component { name: (*n).to_owned(), server: format!("cim-{n}"), api: format!("cim-{n}-api") })
        .collect()
}

/// The one violation of `meta`.
fn only(meta: &Meta) -> String {
    let violations = meta.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    violations.into_iter().next().unwrap_or_default()
}

#[test]
fn io_and_async_crates_and_their_families() {
    for name in ["tokio", "tokio-util", "futures", "futures-util", "async-nats", "async-trait", "mio", "hyper-util"] {
        assert!(is_io_or_async(name), "{name}");
    }
    for name in ["serde", "cid", "daggy", "tokenizers", "futuresque", "asynchronous", "hashbrown", "libc"] {
        assert!(!is_io_or_async(name), "{name}");
    }
}

#[test]
fn the_clean_workspace_passes() {
    assert_eq!(Meta::clean().violations(), Vec::<String>::new());
}

#[test]
fn a_pure_crate_reaching_io_or_async_fails_with_the_path() {
    let mut meta = Meta::clean();
    meta.add("petgraph", "tokio");
    assert_eq!(
        only(&meta),
        "cim-dag is pure (no I/O, no async, no workspace crate but cim-cid and cim-dag), but depends on tokio \
         (an I/O or async crate): cim-dag -> daggy -> petgraph -> tokio"
    );

    let mut meta = Meta::clean();
    meta.add("cim-cid", "cim-wire");
    let violations = meta.violations();
    // cim-dag reaches it through cim-cid: both are named, each with its path.
    assert_eq!(violations.len(), 2, "{violations:#?}");
    assert!(
        violations[0].ends_with("but depends on cim-wire (a workspace crate that is not pure): cim-cid -> cim-wire")
    );
    assert!(violations[1].ends_with("(a workspace crate that is not pure): cim-dag -> cim-cid -> cim-wire"));

    // Build scripts do not reach the product; tests may do I/O.
    let mut meta = Meta::clean();
    meta.build("cim-cid", "tokio").dev("cim-dag", "tokio");
    assert_eq!(meta.violations(), Vec::<String>::new());
}

#[test]
fn a_server_depending_on_another_server_fails_even_for_its_tests() {
    let mut meta = Meta::clean();
    meta.add("cim-ius", "cim-registry");
    let violation = only(&meta);
    assert!(violation.starts_with("cim-ius is component `ius`'s server crate"), "{violation}");
    assert!(
        violation
            .ends_with("but depends on cim-registry (component `registry`'s server crate): cim-ius -> cim-registry"),
        "{violation}"
    );

    let mut meta = Meta::clean();
    meta.dev("cim-ius", "cim-registry");
    assert!(only(&meta).ends_with(": cim-ius -> cim-registry"));

    // Through a library in between.
    let mut meta = Meta::clean();
    meta.member("cim-helpers", &["cim-ius"]);
    meta.add("cim-registry", "cim-helpers");
    assert!(only(&meta).ends_with(": cim-registry -> cim-helpers -> cim-ius"));
}

#[test]
fn an_api_crate_depending_on_a_server_the_runtime_or_the_store_fails() {
    for (planted, path) in [
        ("cim-runtime", "cim-ius-api -> cim-runtime"),
        ("cim-store", "cim-ius-api -> cim-store"),
        ("cim-archive", "cim-ius-api -> cim-archive -> cim-store"),
        ("cim-ius", "cim-ius-api -> cim-ius"),
    ] {
        let mut meta = Meta::clean();
        meta.add("cim-ius-api", planted);
        let violations = meta.violations();
        let api =
            violations.iter().find(|v| v.starts_with("cim-ius-api ")).unwrap_or_else(|| panic!("{violations:#?}"));
        assert!(api.contains("may not depend on a server crate, cim-runtime or cim-store"), "{api}");
        assert!(api.ends_with(&format!(": {path}")), "{api}");
    }
}

#[test]
fn the_cli_linking_a_server_the_runtime_or_their_dependencies_fails() {
    let mut meta = Meta::clean();
    meta.add("cim-cli", "cim-runtime");
    let violation = only(&meta);
    assert!(violation.starts_with("cim-cli talks to components through their API crates"), "{violation}");
    assert!(violation.ends_with("but depends on cim-runtime (the service runtime): cim-cli -> cim-runtime"));

    let mut meta = Meta::clean();
    meta.add("cim-cli", "cim-registry");
    assert!(only(&meta).ends_with(": cim-cli -> cim-registry"));

    // An API crate gaining a server's dependency: the CLI's check names the path.
    let mut meta = Meta::clean();
    meta.add("cim-registry-api", "jsonschema");
    assert!(
        only(&meta)
            .ends_with("but depends on jsonschema (a server's dependency): cim-cli -> cim-registry-api -> jsonschema")
    );

    for forbidden in ["json-patch", "axum", "prometheus-client"] {
        let mut meta = Meta::clean();
        meta.add("cim-deploy", forbidden);
        assert!(only(&meta).ends_with(&format!(": cim-cli -> cim-deploy -> {forbidden}")));
    }

    // Its tests may start what they like.
    let mut meta = Meta::clean();
    meta.dev("cim-cli", "cim-runtime").dev("cim-cli", "cim-ius");
    assert_eq!(meta.violations(), Vec::<String>::new());
}

#[test]
fn the_platform_depending_on_a_server_fails() {
    let mut meta = Meta::clean();
    meta.add("cim-store", "cim-ius");
    let violations = meta.violations();
    let store = violations.iter().find(|v| v.starts_with("cim-store ")).unwrap_or_else(|| panic!("{violations:#?}"));
    assert!(
        store.ends_with("but depends on cim-ius (component `ius`'s server crate): cim-store -> cim-ius"),
        "{store}"
    );
}

#[test]
fn a_crate_named_by_a_rule_must_exist() {
    let meta = Meta::clean();
    let graph = Graph::from_metadata(&meta.to_json()).expect("a valid document");
    let violations = violations(&graph, &components(&["registry", "ius", "hub"]));
    assert_eq!(
        violations,
        [
            "cim-hub is not a workspace member (components.toml names it)",
            "cim-hub-api is not a workspace member (components.toml names it)"
        ]
    );
}

/// Writes a workspace of empty crates into `dir/ws`: the workspace's own
/// names and one server and API crate per component of components.toml,
/// with the dependencies `deps` (`(from, to)`); a `to` that is none of them
/// stands for an external crate: an empty crate outside the workspace.
fn write_workspace(dir: &Path, deps: &[(&str, &str)]) -> Result<PathBuf> {
    let deployment = Deployment::embedded()?;
    let mut members: Vec<String> = PURE.iter().chain(&PLATFORM).chain(&[CLI]).map(|c| (*c).to_owned()).collect();
    for c in deployment.components().values() {
        members.push(c.package.clone());
        members.push(c.api.clone());
    }
    let root = dir.join("ws");
    let write_crate = |at: &Path, name: &str| -> Result<()> {
        fs::create_dir_all(at.join("src"))?;
        fs::write(at.join("src/lib.rs"), "")?;
        let mut manifest =
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n");
        for (_, to) in deps.iter().filter(|(from, _)| *from == name) {
            let path = if members.iter().any(|m| m.as_str() == *to) {
                root.join("crates").join(to)
            } else {
                dir.join("external").join(to)
            };
            manifest += &format!("{to} = {{ path = {:?} }}\n", path.display().to_string());
        }
        Ok(fs::write(at.join("Cargo.toml"), manifest)?)
    };
    for name in &members {
        write_crate(&root.join("crates").join(name), name)?;
    }
    for (_, to) in deps {
        if !members.iter().any(|m| m.as_str() == *to) {
            write_crate(&dir.join("external").join(to), to)?;
        }
    }
    let listed: Vec<String> = members.iter().map(|c| format!("\"crates/{c}\"")).collect();
    fs::write(root.join("Cargo.toml"), format!("[workspace]\nresolver = \"3\"\nmembers = [{}]\n", listed.join(", ")))?;
    fs::write(root.join("components.toml"), cim_deploy::COMPONENTS_TOML)?;
    Ok(root)
}

#[test]
fn planted_violations_in_a_real_workspace_fail_the_check() -> Result<()> {
    // The layers as they are, with stand-ins for tokio and axum.
    let base = [
        ("cim-dag", "cim-cid"),
        ("cim-wire", "tokio"),
        ("cim-store", "cim-wire"),
        ("cim-runtime", "cim-store"),
        ("cim-runtime", "axum"),
        ("axum", "tokio"),
        ("cim-ius", "cim-runtime"),
        ("cim-ius", "cim-ius-api"),
        ("cim-ius-api", "cim-wire"),
        ("cim-cli", "cim-ius-api"),
    ];
    let clean = tempfile::tempdir()?;
    let root = write_workspace(clean.path(), &base)?;
    assert_eq!(check(&root)?, Vec::<String>::new());

    let planted = tempfile::tempdir()?;
    let mut deps = base.to_vec();
    deps.extend([("cim-cid", "tokio"), ("cim-ius-api", "cim-runtime"), ("cim-ius", "cim-registry")]);
    let root = write_workspace(planted.path(), &deps)?;
    let violations = check(&root)?;
    let ends = |suffix: &str| violations.iter().any(|v| v.ends_with(suffix));
    assert!(ends("but depends on tokio (an I/O or async crate): cim-cid -> tokio"), "{violations:#?}");
    assert!(ends("but depends on tokio (an I/O or async crate): cim-dag -> cim-cid -> tokio"), "{violations:#?}");
    assert!(ends("(the platform's server side): cim-ius-api -> cim-runtime"), "{violations:#?}");
    assert!(ends("(the service runtime): cim-cli -> cim-ius-api -> cim-runtime"), "{violations:#?}");
    assert!(ends("(component `registry`'s server crate): cim-ius -> cim-registry"), "{violations:#?}");
    assert_eq!(violations.len(), 5, "{violations:#?}");
    let error = run(&root).expect_err("the check fails");
    assert_eq!(error.to_string(), "5 layering violation(s); ARCHITECTURE.md says why each rule exists");
    Ok(())
}

#[test]
fn this_workspace_keeps_its_layers() -> Result<()> {
    assert_eq!(check(&crate::workspace_root())?, Vec::<String>::new());
    Ok(())
}

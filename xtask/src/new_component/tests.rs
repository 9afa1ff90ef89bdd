//! The generator's parts without building anything. The whole of it —
//! generated, linted and tested in a scratch copy — is `cargo xtask
//! new-component sample --scratch`, a step of `cargo xtask test`.

use super::*;

#[test]
fn names_follow_components_toml() -> Result<()> {
    let names = Names::new("hub", Some("Integration Hub"))?;
    assert_eq!((names.camel.as_str(), names.title.as_str()), ("Hub", "Integration Hub"));
    assert_eq!(Names::new("storage2", None)?.title, "Storage2");
    for bad in ["", "Hub", "9hub", "hub-x", "toolongname", "hüb"] {
        assert!(Names::new(bad, None).is_err(), "{bad:?}");
    }
    for bad in ["", " ", "say \"hi\"", "a\\b", "{{name}}", "two\nlines"] {
        assert!(Names::new("hub", Some(bad)).is_err(), "{bad:?}");
    }
    Ok(())
}

#[test]
fn every_template_renders_completely() -> Result<()> {
    let names = Names::new("hub", Some("Integration Hub"))?;
    for (path, template) in TEMPLATES {
        let text = names.render(template)?;
        assert!(!text.contains("{{") && !text.contains("}}"), "{path}");
        assert!(names.render(path)?.starts_with("cim-hub"), "{path}");
    }
    let error = names.render("a\nb {{Title}}\n").expect_err("an unknown placeholder");
    assert_eq!(error.to_string(), "unknown placeholder at line 2: {{Title}}");
    Ok(())
}

#[test]
fn the_entry_takes_the_next_port_and_address_and_keeps_the_rest() -> Result<()> {
    let root = tempfile::tempdir()?;
    fs::write(root.path().join("components.toml"), cim_deploy::COMPONENTS_TOML)?;
    fs::write(root.path().join("Cargo.toml"), include_str!("../../../Cargo.toml"))?;
    let before = Deployment::embedded()?;
    let plan = plan(root.path(), &Names::new("hub", Some("Integration Hub"))?)?;
    let after = Deployment::parse(&plan.components_toml)?;

    let max_port = before.components().values().map(|c| c.http_port).max().unwrap_or_default();
    let max_address = before.components().values().map(|c| c.address).max().expect("components");
    let hub = after.component("hub").expect("the new entry");
    assert_eq!(hub.http_port, max_port + 1);
    assert_eq!(u32::from(hub.address), u32::from(max_address) + 1);
    assert_eq!(
        (hub.title.as_str(), hub.package.as_str(), hub.api.as_str(), hub.user.as_str(), hub.service.as_str()),
        ("Integration Hub", "cim-hub", "cim-hub-api", "hub", "cim.service.hub")
    );
    assert!(hub.aggregates.is_empty() && hub.buckets.is_empty() && hub.reads.is_empty() && hub.calls.is_empty());
    // The others, and everything after the components, unchanged.
    for (name, component) in before.components() {
        assert_eq!(after.component(name), Some(component));
    }
    assert_eq!(before.users("cim")?, after.users("cim")?.into_iter().filter(|u| u.user != "hub").collect::<Vec<_>>());
    assert_eq!(
        plan.components_toml.replace(&entry_text(&plan.components_toml, "hub"), ""),
        cim_deploy::COMPONENTS_TOML
    );
    // Its NATS user: its own service and inboxes.
    let users = after.users("cim")?;
    let user = users.iter().find(|u| u.user == "hub").expect("a NATS user");
    assert!(user.permissions.subscribe.contains(&"cim.service.hub.>".to_owned()));
    assert!(user.permissions.publish.contains(&"cim.service.registry.components.register.cim-hub".to_owned()));

    // The workspace dependency, after the other API crates.
    let manifest: toml::Table = toml::from_str(&plan.cargo_toml)?;
    assert_eq!(manifest["workspace"]["dependencies"]["cim-hub-api"]["path"].as_str(), Some("crates/cim-hub-api"));
    let lines: Vec<&str> = plan.cargo_toml.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("cim-hub-api = ")).expect("the line");
    assert!(lines[at - 1].starts_with("cim-") && lines[at - 1].contains("-api = "), "{}", lines[at - 1]);
    Ok(())
}

/// The entry of `name` in `text`, with the blank line before it.
fn entry_text(text: &str, name: &str) -> String {
    let start = text.find(&format!("\n[components.{name}]\n")).expect("the entry");
    let end = text[start + 1..].find("\n\n").map_or(text.len(), |e| start + 1 + e);
    text[start..end].to_owned() + "\n"
}

#[test]
fn an_existing_name_or_crate_is_refused() -> Result<()> {
    let root = tempfile::tempdir()?;
    fs::write(root.path().join("components.toml"), cim_deploy::COMPONENTS_TOML)?;
    fs::write(root.path().join("Cargo.toml"), include_str!("../../../Cargo.toml"))?;
    let error = plan(root.path(), &Names::new("ius", None)?).expect_err("ius exists");
    assert_eq!(error.to_string(), "components.toml has a component `ius` already");
    fs::create_dir_all(root.path().join("crates/cim-hub"))?;
    let error = create(root.path(), "hub", None).expect_err("its crate exists");
    assert_eq!(error.to_string(), "crates/cim-hub exists already");
    assert_eq!(fs::read_to_string(root.path().join("components.toml"))?, cim_deploy::COMPONENTS_TOML);
    Ok(())
}

#[test]
fn the_scratch_copy_gets_its_own_version() -> Result<()> {
    let root = tempfile::tempdir()?;
    fs::write(root.path().join("Cargo.toml"), "[workspace]\n\n[workspace.package]\nversion = \"0.1.0\"\n")?;
    fs::write(
        root.path().join("Cargo.lock"),
        "version = 4\n\n[[package]]\nname = \"cim-cid\"\nversion = \"0.1.0\"\ndependencies = [\n \"cid\",\n]\n\n\
         [[package]]\nname = \"cid\"\nversion = \"0.1.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
    )?;
    mark_version(root.path())?;
    assert_eq!(
        fs::read_to_string(root.path().join("Cargo.toml"))?,
        "[workspace]\n\n[workspace.package]\nversion = \"0.1.0-scratch\"\n"
    );
    assert_eq!(
        fs::read_to_string(root.path().join("Cargo.lock"))?,
        "version = 4\n\n[[package]]\nname = \"cim-cid\"\nversion = \"0.1.0-scratch\"\ndependencies = [\n \"cid\",\n]\n\n\
         [[package]]\nname = \"cid\"\nversion = \"0.1.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
    );
    Ok(())
}

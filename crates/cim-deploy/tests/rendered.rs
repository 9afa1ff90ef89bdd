//! The bridge between the two readers of components.toml: what this crate
//! derives must be what the NixOS modules render (nix/eval/rendered/, written
//! by `cargo xtask nix --update-rendered` from the Nix evaluation, which CI
//! cannot run without nixpkgs' lib).

use std::path::PathBuf;

use cim_deploy::{ConfigTarget, Deployment};
use serde_json::Value;

fn rendered(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../nix/eval/rendered").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn nats_users_equal_the_host_modules() -> Result<(), Box<dyn std::error::Error>> {
    let base: Value = serde_json::from_str(&rendered("nats-base.json"))?;
    let accounts = base["accounts"].as_object().ok_or("no accounts")?;
    assert_eq!(accounts.len(), 1, "one CIM account");
    let nix_users = accounts.values().next().and_then(|a| a["users"].as_array()).ok_or("no users")?;
    let ours = Deployment::embedded()?.nats_users("cim")?;
    for (nix, rust) in nix_users.iter().zip(&ours) {
        assert_eq!(nix, rust, "the user {} differs", nix["user"]);
    }
    assert_eq!(nix_users.len(), ours.len(), "not the same users");
    Ok(())
}

#[test]
fn component_configs_equal_the_modules() -> Result<(), Box<dyn std::error::Error>> {
    let deployment = Deployment::embedded()?;
    for component in deployment.components().values() {
        let nix: toml::Table = toml::from_str(&rendered(&format!("{}.toml", component.package)))?;
        let nats = &nix["nats"];
        let target = ConfigTarget {
            nats_url: nats["url"].as_str().ok_or("nats.url")?,
            password_file: nats["password_file"].as_str().ok_or("nats.password_file")?,
            namespace: nix["store"]["namespace"].as_str().ok_or("store.namespace")?,
            http_listen: None,
        };
        // The module's defaults, plus what the example host sets of its own:
        // the Storage Manager's tiers (nixos/example.nix).
        let mut nix = nix.clone();
        let own = if component.name == "storage" { nix.remove("storage") } else { None };
        assert_eq!(own.is_some(), component.name == "storage", "{}: the example's [storage]", component.package);
        assert_eq!(component.config(&target), nix, "{}", component.package);
    }
    Ok(())
}

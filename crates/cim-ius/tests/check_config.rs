//! `--check-config` accepts good configurations and refuses bad ones,
//! naming the key, without connecting to anything.

use std::process::Command;

use crate::support::{ius_binary, registry_binary};

fn check(binary: &std::path::Path, text: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).expect("write");
    let output = Command::new(binary)
        .arg("--check-config")
        .arg(&path)
        .args(extra)
        .env_remove("CIM_NATS_SERVER")
        .output()
        .expect("run");
    (
        output.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
    )
}

#[test]
fn accepts_good_and_names_the_key_of_bad_configurations() {
    let good = "[nats]\nurl = \"nats://127.0.0.1:1\"\n[store]\nnamespace = \"cim\"\n[ius]\nmax_unit_bytes = 65536\n";
    let (code, output) = check(&ius_binary(), good, &[]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("is valid"), "{output}");

    let (code, output) = check(&ius_binary(), "[ius]\nmax_unit_bytez = 1\n", &[]);
    assert_eq!(code, 2, "{output}");
    assert!(
        output.contains(":2:") && output.contains("`ius.max_unit_bytez`") && output.contains("unknown field"),
        "{output}"
    );

    let (code, output) = check(&ius_binary(), "[ius]\nmax_traversal_depth = 0\n", &[]);
    assert_eq!(code, 2);
    assert!(output.contains("`ius.max_traversal_depth` must be between 1 and 64"), "{output}");

    let (code, output) = check(&ius_binary(), "[nats]\ncreds_file = \"/run/secrets/missing.creds\"\n", &[]);
    assert_eq!(code, 2);
    assert!(output.contains("`nats.creds_file`") && output.contains("/run/secrets/missing.creds"), "{output}");
    let (code, output) =
        check(&ius_binary(), "[nats]\ncreds_file = \"/run/secrets/missing.creds\"\n", &["--skip-file-checks"]);
    assert_eq!(code, 0, "build-time checks skip secret files: {output}");

    let (code, output) = check(&ius_binary(), good, &["--set", "store.replicas=7"]);
    assert_eq!(code, 2);
    assert!(output.contains("--set store.replicas=7") && output.contains("`store.replicas`"), "{output}");

    let (code, output) = check(&registry_binary(), "[registry]\ncomponent_ttl_secs = 1\n", &[]);
    assert_eq!(code, 2);
    assert!(output.contains("`registry.component_ttl_secs`"), "{output}");
    let (code, output) = check(&registry_binary(), "[ius]\n", &[]);
    assert_eq!(code, 2, "the registry has no [ius] section");
    assert!(output.contains("unknown section `ius`"), "{output}");
}

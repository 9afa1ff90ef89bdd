//! `cim registry` against real cim-registry and cim-ius processes: live
//! components (listed and watched), the schema registry with JSON pointers
//! in every refusal, and a clear error when a service is not running.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::services::Services;

fn names(list: &Value) -> Vec<&str> {
    list["components"].as_array().unwrap().iter().map(|c| c["registration"]["name"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn components_are_listed_with_capabilities_and_discovered_by_pattern() {
    let s = Services::start().await;
    let all = s.json(&["registry", "components"]);
    assert_eq!(names(&all), ["cim-ius", "cim-registry"]);
    let capabilities = |name: &str| -> Vec<String> {
        let record = all["components"].as_array().unwrap().iter().find(|c| c["registration"]["name"] == name).unwrap();
        serde_json::from_value(record["registration"]["capabilities"].clone()).unwrap()
    };
    assert!(capabilities("cim-ius").contains(&"units.write".to_owned()), "{all}");
    assert!(capabilities("cim-registry").contains(&"schemas.validate".to_owned()), "{all}");
    assert_eq!(names(&s.json(&["registry", "components", "--capability", "units.*"])), ["cim-ius"]);
    assert_eq!(names(&s.json(&["registry", "components", "--name", "cim-reg*"])), ["cim-registry"]);
    let text = s.cim(&["registry", "components"]);
    assert!(text.ok().stdout.contains("units.read, units.write"), "{}", text.stdout);
}

#[tokio::test]
async fn schemas_register_show_and_validate_with_json_pointers() {
    let s = Services::start().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, schema: Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, schema.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let v1 =
        write("v1.json", json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}));
    let registered = s.json(&["registry", "schemas", "register", "test:thing", &v1, "--expect", "0"]);
    assert_eq!((registered["version"].as_u64(), registered["unchanged"].as_bool()), (Some(1), Some(false)));
    let v2 = write(
        "v2.json",
        json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "size": {"type": "integer"}}}),
    );
    assert_eq!(s.json(&["registry", "schemas", "register", "test:thing", &v2, "--description", "size"])["version"], 2);
    s.cim(&["registry", "schemas", "register", "test:thing", &v2, "--expect", "1"]).fails(4, "retry with --expect 2");
    let retyped = write(
        "bad.json",
        json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "integer"}, "size": {"type": "integer"}}}),
    );
    s.cim(&["registry", "schemas", "register", "test:thing", &retyped])
        .fails(2, "/properties/name")
        .fails(2, "register a new type");
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"type\": ").unwrap();
    s.cim(&["registry", "schemas", "register", "test:thing", broken.to_str().unwrap()]).fails(2, "is not valid JSON");

    let listed = s.json(&["registry", "schemas", "list", "--prefix", "test:"]);
    assert_eq!(listed["types"], json!([{"type": "test:thing", "latest_version": 2}]));
    assert!(
        s.json(&["registry", "schemas", "list"])["types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["type"] == "unit:text-document")
    );
    let first = s.json(&["registry", "schemas", "show", "test:thing", "--version", "1"]);
    assert_eq!(first["schema"]["properties"], json!({"name": {"type": "string"}}));
    let history = s.json(&["registry", "schemas", "show", "test:thing", "--history"]);
    assert_eq!(history["versions"].as_array().unwrap().len(), 2);
    s.cim(&["registry", "schemas", "show", "test:nothing"]).fails(5, "no schema of type");
    s.cim(&["registry", "schemas", "show", "test:thing", "--version", "9"]).fails(5, "has no version 9");

    // Validation names every violation's JSON pointer; an invalid instance exits 2.
    let run = s.cim(&["registry", "schemas", "validate", "test:thing", r#"{"name": 1, "size": "big"}"#]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("  /name: ") && run.stdout.contains("  /size: "), "{}", run.stdout);
    let report = s.cim(&["--json", "registry", "schemas", "validate", "test:thing", "{}", "--version", "1"]);
    assert_eq!(report.code, 2);
    let report: Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!((report["valid"].as_bool(), report["version"].as_u64()), (Some(false), Some(1)));
    assert_eq!(report["errors"][0]["pointer"], "", "a missing required property is the whole instance's fault");
    let instance = dir.path().join("instance.json");
    std::fs::write(&instance, r#"{"text": "hello"}"#).unwrap();
    let valid =
        s.json(&["registry", "schemas", "validate", "unit:text-document", "--file", instance.to_str().unwrap()]);
    assert_eq!(valid["valid"], true);
    s.cim(&["registry", "schemas", "validate", "test:nothing", "{}"]).fails(5, "no schema of type");
}

#[tokio::test]
async fn watch_follows_components_and_a_stopped_service_is_reported_at_once() {
    let mut s = Services::start().await;
    let url = s.env.server.url();
    let mut watcher = Command::new(env!("CARGO_BIN_EXE_cim"))
        .args(["--nats", &url, "--namespace", &s.env.namespace, "--json", "registry", "components", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, seen) = mpsc::channel();
    let stdout = watcher.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(serde_json::from_str::<Value>(&line).unwrap());
        }
    });
    let next = || seen.recv_timeout(Duration::from_secs(30)).expect("a line from the watch");
    let (a, b) = (next(), next());
    let present: Vec<(&str, &str)> = [&a, &b]
        .iter()
        .map(|l| (l["change"].as_str().unwrap(), l["component"]["registration"]["name"].as_str().unwrap()))
        .collect();
    assert_eq!(present, [("present", "cim-ius"), ("present", "cim-registry")]);

    // SIGTERM: the IUS deregisters, and the watch sees it leave.
    assert!(s.ius.terminate().success(), "{}", s.ius.log());
    let left = next();
    assert_eq!(
        (left["change"].as_str(), left["component"]["registration"]["name"].as_str()),
        (Some("left"), Some("cim-ius"))
    );
    watcher.kill().unwrap();
    watcher.wait().unwrap();

    // No IUS: the command says so (no waiting for a timeout) and how to start it.
    s.cim(&["units", "list", "--timeout", "30"])
        .fails(1, &format!("the Information Unit System (cim-ius) is not running on {url}"))
        .fails(1, "cim-ius --config");
}

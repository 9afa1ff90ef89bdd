//! The embedded server: no --nats, a data directory.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::cim;

#[test]
fn consecutive_commands_share_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let appended = cim(&["--data-dir", data, "--json", "events", "append", "order/1", "Placed", r#"{"n":1}"#]).json();
    let read = cim(&["--data-dir", data, "--json", "events", "read", "order/1"]).json();
    assert_eq!(read[0]["cid"], appended["cid"]);
    let status = cim(&["--data-dir", data, "--json", "status"]).json();
    assert_eq!(status["server"]["mode"], "embedded (started for this command)");
    assert_eq!(status["events"]["events"], 1);
    // The server wrote its store there and was stopped cleanly.
    assert!(dir.path().join("jetstream").is_dir());
    assert!(!dir.path().join("server.json").exists());
    let log = std::fs::read_to_string(dir.path().join("run/nats.log")).unwrap();
    assert!(log.contains("Server Exiting"), "no clean shutdown in the log:\n{log}");
}

#[test]
fn cim_server_serves_the_other_commands_until_terminated() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_cim"))
        .args(["--data-dir", data, "--json", "server"])
        .env_remove("CIM_NATS_URL")
        .env_remove("CIM_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let started: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let url = started["server"]["url"].as_str().unwrap().to_owned();

    let status = cim(&["--data-dir", data, "--json", "status"]).json();
    assert_eq!(
        (status["server"]["url"].as_str(), status["server"]["mode"].as_str()),
        (Some(url.as_str()), Some("embedded (cim server)"))
    );
    cim(&["--data-dir", data, "events", "append", "order/1", "Placed"]).ok();
    cim(&["--data-dir", data, "server"]).fails(1, "is already running");

    let term = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(term.success());
    assert!(server.wait().unwrap().success());
    assert!(!dir.path().join("server.json").exists());
    // Later commands start their own server on the same data.
    let read = cim(&["--data-dir", data, "--json", "events", "read", "order/1"]).json();
    assert_eq!(read.as_array().unwrap().len(), 1);
}

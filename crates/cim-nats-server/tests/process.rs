//! Starting, stopping and restarting a real server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cim_nats_server::{Health, Server, ServerConfig, is_healthy};

use crate::binary;

fn varz(monitor_port: u16) -> serde_json::Value {
    let mut stream = TcpStream::connect(("127.0.0.1", monitor_port)).expect("connect to the monitoring port");
    write!(stream, "GET /varz HTTP/1.0\r\n\r\n").expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (_, body) = response.split_once("\r\n\r\n").expect("HTTP response with a body");
    serde_json::from_str(body).expect("JSON body")
}

#[tokio::test]
async fn starts_durable_stops_gracefully_and_restarts_on_the_same_ports() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut server = Server::new(binary(), ServerConfig::new(&store), dir.path().join("run")).unwrap();
    assert_eq!(server.url(), None);
    server.start().await.unwrap();
    let url = server.url().expect("url once started");
    let monitor = server.config().monitor_port.expect("monitor port");
    assert!(url.starts_with("nats://127.0.0.1:"), "{url}");
    assert!(is_healthy(monitor, Health::JetStream).await);
    let varz = varz(monitor);
    assert_eq!(varz["jetstream"]["config"]["sync_always"], true, "{varz}");
    assert_eq!(
        varz["jetstream"]["config"]["store_dir"].as_str().map(|d| d.starts_with(store.to_str().unwrap())),
        Some(true)
    );

    server.stop(Duration::from_secs(30)).await.expect("graceful stop");
    assert!(!server.is_running());
    assert!(server.log_tail().is_empty() || !server.log_tail().contains("[FTL]"));
    assert!(std::fs::read_to_string(server.log_file()).unwrap().contains("Server Exiting"), "no clean shutdown logged");

    server.start().await.unwrap();
    assert_eq!(server.url().as_deref(), Some(url.as_str()));
    server.kill().unwrap();
    assert!(!server.is_running());
    assert!(TcpStream::connect(url.trim_start_matches("nats://")).is_err(), "killed server still listens");
}

#[tokio::test]
async fn a_bad_configuration_fails_with_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        ServerConfig { extra: "jetstream { sync_interval: sometimes }".into(), ..ServerConfig::new(dir.path()) };
    let mut server = Server::new(binary(), config, dir.path().join("run")).unwrap();
    let error = server.start().await.unwrap_err();
    assert!(error.to_string().contains("sync_interval"), "{error}");
    assert!(!error.is_addr_in_use());
}

#[tokio::test]
async fn a_taken_port_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Server::new(binary(), ServerConfig::new(dir.path().join("a")), dir.path().join("run-a")).unwrap();
    first.start().await.unwrap();
    let config = ServerConfig { client_port: first.config().client_port, ..ServerConfig::new(dir.path().join("b")) };
    let mut second = Server::new(binary(), config, dir.path().join("run-b")).unwrap();
    let error = second.start().await.unwrap_err();
    assert!(error.is_addr_in_use(), "{error}");
}

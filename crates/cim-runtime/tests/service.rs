//! A small service on the runtime: micro discovery with a raw `$SRV.PING`,
//! JSON endpoints and errors, the size limit, health, metrics, and a
//! shutdown that answers the request in flight before it returns.

use std::time::Duration;

use cim_runtime::config::Config;
use cim_runtime::{ApiError, RequestError, Runtime, ServiceDefinition, request};
use cim_test_support::NatsServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(5);

fn config(server: &NatsServer) -> Config<()> {
    let mut config = Config::<()>::default();
    config.nats.url = vec![server.url()];
    config.http.listen = "127.0.0.1:0".to_owned();
    config.runtime.register = false;
    config.runtime.max_request_bytes = 2048;
    config
}

fn definition() -> ServiceDefinition {
    ServiceDefinition::new("cim-demo", "0.1.0", "cim.service.demo")
        .description("echoes")
        .endpoint("echo", |body: Value| async move { Ok::<_, ApiError>(json!({ "echo": body })) })
        .endpoint("fail", |_: Value| async move {
            Err::<Value, _>(ApiError::new(409, "demo_conflict", "always").retryable())
        })
        .endpoint("slow", |body: Value| async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            Ok::<_, ApiError>(body)
        })
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the HTTP endpoint");
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

#[tokio::test]
async fn serves_discovers_and_drains_on_shutdown() {
    let server = NatsServer::start().await;
    let runtime = Runtime::start(config(&server), "cim-demo").await.expect("runtime starts");
    let http = runtime.http_address().expect("HTTP endpoint");
    let shutdown = runtime.shutdown_token();
    let serving = tokio::spawn(runtime.serve(definition()));
    let client = server.connect().await;

    // Stock micro discovery: a raw request on $SRV.PING.cim-demo.
    let pong = loop {
        match client.request("$SRV.PING.cim-demo", "".into()).await {
            Ok(reply) => break reply,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let pong: Value = serde_json::from_slice(&pong.payload).expect("JSON pong");
    assert_eq!(pong["type"], "io.nats.micro.v1.ping_response");
    assert_eq!(pong["name"], "cim-demo");
    let info: Value =
        serde_json::from_slice(&client.request("$SRV.INFO.cim-demo", "".into()).await.expect("info").payload)
            .expect("JSON");
    let subjects: Vec<&str> =
        info["endpoints"].as_array().expect("endpoints").iter().filter_map(|e| e["subject"].as_str()).collect();
    assert!(subjects.contains(&"cim.service.demo.echo"), "{info}");

    let echoed: Value = request(&client, "cim.service.demo.echo", &json!({"a": 1}), TIMEOUT).await.expect("echo");
    assert_eq!(echoed, json!({"echo": {"a": 1}}));
    let error = request::<_, Value>(&client, "cim.service.demo.fail", &json!({}), TIMEOUT).await.expect_err("fails");
    assert!(
        matches!(&error, RequestError::Remote(e) if e.code == "demo_conflict" && e.status == 409 && e.retryable),
        "{error:?}"
    );
    let raw = client.request("cim.service.demo.echo", "{not json".into()).await.expect("reply");
    let headers = raw.headers.expect("error headers");
    assert_eq!(headers.get("Nats-Service-Error-Code").map(|v| v.as_str()), Some("400"));
    let big = json!({ "blob": "x".repeat(4096) });
    let error = request::<_, Value>(&client, "cim.service.demo.echo", &big, TIMEOUT).await.expect_err("too large");
    assert_eq!(error.remote().map(|e| e.code.as_str()), Some("payload_too_large"));

    assert!(http_get(http, "/healthz").await.starts_with("HTTP/1.0 200"));
    assert!(http_get(http, "/readyz").await.starts_with("HTTP/1.0 200"));
    let metrics = http_get(http, "/metrics").await;
    assert!(metrics.contains("cim_requests_total{endpoint=\"echo\",outcome=\"ok\"} 1"), "{metrics}");
    assert!(metrics.contains("outcome=\"payload_too_large\""), "{metrics}");

    // A request in flight when shutdown begins is still answered.
    let slow = tokio::spawn({
        let client = client.clone();
        async move { request::<_, Value>(&client, "cim.service.demo.slow", &json!({"n": 7}), TIMEOUT).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    shutdown.cancel();
    assert_eq!(slow.await.expect("task").expect("answered during shutdown"), json!({"n": 7}));
    serving.await.expect("task").expect("clean shutdown");
    let after = request::<_, Value>(&client, "cim.service.demo.echo", &json!({}), Duration::from_millis(500)).await;
    assert!(matches!(after, Err(RequestError::NoResponders { .. })), "{after:?}");
    assert!(client.request("$SRV.PING.cim-demo", "".into()).await.is_err(), "no longer discoverable");
}

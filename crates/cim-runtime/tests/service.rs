//! A small service on the runtime: micro discovery with a raw `$SRV.PING`,
//! typed endpoints and errors, an endpoint taking a subject token, the size
//! limit, health, metrics, the component's own HTTP routes, and a shutdown
//! that answers the request in flight before it returns.

use std::time::Duration;

use axum::routing::get;
use cim_runtime::config::Config;
use cim_runtime::{ApiError, Caller, RequestError, Runtime, ServiceDefinition};
use cim_test_support::NatsServer;
use cim_wire::{CommonCode, Endpoint, Service};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(5);

cim_wire::codes! {
    enum DemoCode {
        Conflict = ("demo_conflict", 409),
    }
}

const DEMO: Service = Service::new("cim-demo", "cim.service.demo");
const ECHO: Endpoint<Value, Value, DemoCode> = DEMO.endpoint("echo");
const FAIL: Endpoint<Value, Value, DemoCode> = DEMO.endpoint("fail");
const SLOW: Endpoint<Value, Value, DemoCode> = DEMO.endpoint("slow");
const WHO: Endpoint<Value, String, DemoCode> = DEMO.endpoint("who.*");

fn config(server: &NatsServer) -> Config<()> {
    let mut config = Config::<()>::default();
    config.nats.url = vec![server.url()];
    config.http.listen = "127.0.0.1:0".to_owned();
    config.runtime.register = false;
    config.runtime.max_request_bytes = 2048;
    config
}

fn definition() -> ServiceDefinition {
    ServiceDefinition::of(DEMO, "0.1.0")
        .description("echoes")
        .handle(&ECHO, |body| async move { Ok(json!({ "echo": body })) })
        .handle(&FAIL, |_| async move { Err(ApiError::api(DemoCode::Conflict, "always").retryable()) })
        .handle(&SLOW, |body| async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            Ok(body)
        })
        .handle_for(&WHO, |token, _| async move { Ok(format!("you are {token}")) })
        .routes(axum::Router::new().route("/hello", get(|| async { "hello from the component\n" })))
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
    assert!(http_get(http, "/healthz").await.starts_with("HTTP/1.0 200"), "health before serving");
    assert!(http_get(http, "/hello").await.starts_with("HTTP/1.0 404"), "no component routes before serving");
    let shutdown = runtime.shutdown_token();
    let serving = tokio::spawn(runtime.serve(definition()));
    let client = server.connect().await;
    let caller = Caller::new(client.clone(), TIMEOUT);

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
    assert!(subjects.contains(&"cim.service.demo.who.*"), "{info}");

    let echoed = caller.call(&ECHO, &json!({"a": 1})).await.expect("echo");
    assert_eq!(echoed, json!({"echo": {"a": 1}}));
    let error = caller.call(&FAIL, &json!({})).await.expect_err("fails");
    assert!(error.is(DemoCode::Conflict), "{error:?}");
    assert!(matches!(&error, RequestError::Remote(e) if e.status == 409 && e.retryable), "{error:?}");
    let who = caller.call_for(&WHO, "cim-ius", &json!({})).await.expect("who");
    assert_eq!(who, "you are cim-ius");
    let raw = client.request("cim.service.demo.echo", "{not json".into()).await.expect("reply");
    let headers = raw.headers.expect("error headers");
    assert_eq!(headers.get("Nats-Service-Error-Code").map(|v| v.as_str()), Some("400"));
    let big = json!({ "blob": "x".repeat(4096) });
    let error = caller.call(&ECHO, &big).await.expect_err("too large");
    assert!(error.remote().is_some_and(|e| e.is_common(CommonCode::PayloadTooLarge)), "{error:?}");

    assert!(http_get(http, "/healthz").await.starts_with("HTTP/1.0 200"));
    assert!(http_get(http, "/readyz").await.starts_with("HTTP/1.0 200"));
    let metrics = http_get(http, "/metrics").await;
    assert!(metrics.contains("cim_requests_total{endpoint=\"echo\",outcome=\"ok\"} 1"), "{metrics}");
    assert!(metrics.contains("outcome=\"payload_too_large\""), "{metrics}");
    assert!(metrics.contains("cim_requests_total{endpoint=\"who.*\",outcome=\"ok\"} 1"), "{metrics}");
    let hello = http_get(http, "/hello").await;
    assert!(hello.starts_with("HTTP/1.0 200") && hello.ends_with("hello from the component\n"), "{hello}");
    assert!(http_get(http, "/nowhere").await.starts_with("HTTP/1.0 404"));

    // A request in flight when shutdown begins is still answered.
    let slow = tokio::spawn({
        let caller = caller.clone();
        async move { caller.call(&SLOW, &json!({"n": 7})).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    shutdown.cancel();
    assert_eq!(slow.await.expect("task").expect("answered during shutdown"), json!({"n": 7}));
    serving.await.expect("task").expect("clean shutdown");
    let after = caller.with_timeout(Duration::from_millis(500)).call(&ECHO, &json!({})).await;
    assert!(matches!(after, Err(RequestError::NoResponders { .. })), "{after:?}");
    assert!(client.request("$SRV.PING.cim-demo", "".into()).await.is_err(), "no longer discoverable");
}

/// A user that may publish anything but this component's registration.
const USERS: &str = r#"
accounts {
  A {
    jetstream: enabled
    users: [
      { user: demo, password: demo-pw, permissions: { publish: { allow: [">"], deny: ["cim.service.registry.components.register.cim-demo"] }, subscribe: ">" } }
    ]
  }
}
"#;

#[tokio::test]
async fn a_registration_the_server_refuses_is_reported_as_denied() {
    let server = NatsServer::builder().config_extra(USERS).start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let password = dir.path().join("password");
    std::fs::write(&password, "demo-pw\n").expect("password file");
    let mut config = config(&server);
    config.nats.user = Some("demo".to_owned());
    config.nats.password_file = Some(password);
    config.runtime.register = true;
    config.runtime.heartbeat_secs = 1;
    let runtime = Runtime::start(config, "cim-demo").await.expect("runtime starts");
    let http = runtime.http_address().expect("HTTP endpoint");
    let shutdown = runtime.shutdown_token();
    let serving = tokio::spawn(runtime.serve(definition()));
    // No registry runs: a permitted registration would end as "no
    // responders" (outcome "error"); this one is refused by the server.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = http_get(http, "/metrics").await;
        if metrics.contains("cim_registry_heartbeats_total{outcome=\"denied\"}") {
            assert!(!metrics.contains("outcome=\"error\""), "{metrics}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no denied heartbeat:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    serving.await.expect("task").expect("clean shutdown");
}

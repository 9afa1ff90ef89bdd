//! cim-wire against a real nats-server: typed calls, typed errors, and a
//! permission denial reported as one, at once.

use std::time::Duration;

use cim_test_support::NatsServer;
use cim_wire::{ApiError, Caller, Code, Endpoint, NatsConfig, RequestError, Service, connect_options, server_addrs};
use futures::StreamExt as _;

cim_wire::codes! {
    enum EchoCode {
        Refused = ("refused", 422),
    }
}

const ECHO: Service = Service::new("cim-echo", "cim.service.echo");
const SAY: Endpoint<String, String, EchoCode> = ECHO.endpoint("say");
const PINNED: Endpoint<String, String, EchoCode> = ECHO.endpoint("pinned.*");
const FORBIDDEN: Endpoint<String, String, EchoCode> = ECHO.endpoint("forbidden");

const USERS: &str = r#"
accounts {
  A {
    jetstream: enabled
    users: [
      { user: server, password: server-pw, permissions: { subscribe: ["cim.service.echo.>", "_INBOX.>"], publish: ["_INBOX.>"], allow_responses: true } }
      { user: client, password: client-pw, permissions: { publish: ["cim.service.echo.say", "cim.service.echo.pinned.mine"], subscribe: ["_INBOX.>"] } }
    ]
  }
}
"#;

async fn connect(server: &NatsServer, user: &str) -> async_nats::Client {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = dir.path().join("pw");
    std::fs::write(&password, format!("{user}-pw\n")).expect("password file");
    let config = NatsConfig {
        url: vec![server.url()],
        user: Some(user.to_owned()),
        password_file: Some(password),
        ..NatsConfig::default()
    };
    config.validate(true).expect("valid");
    let options = connect_options(&config, "cim-wire-test", |_| {}).await.expect("options");
    options.connect(server_addrs(&config).expect("addrs")).await.expect("connect")
}

/// Serves `say` (echo, or the error `refused` for "no") and `pinned.*`.
async fn serve(client: async_nats::Client) {
    let mut requests = client.subscribe("cim.service.echo.>").await.expect("subscribe");
    client.flush().await.expect("flush");
    tokio::spawn(async move {
        while let Some(message) = requests.next().await {
            let Some(reply) = message.reply.clone() else { continue };
            let text: String = serde_json::from_slice(&message.payload).unwrap_or_default();
            if text == "no" {
                let (headers, body) = ApiError::api(EchoCode::Refused, "no is no").to_reply();
                let _ = client.publish_with_headers(reply, headers, body.into()).await;
            } else {
                let answer = format!("{text} via {}", message.subject);
                let _ = client.publish(reply, serde_json::to_vec(&answer).expect("json").into()).await;
            }
        }
    });
}

#[tokio::test]
async fn typed_calls_errors_and_permission_denials() {
    let server = NatsServer::builder().config_extra(USERS).start().await;
    serve(connect(&server, "server").await).await;
    let caller = Caller::new(connect(&server, "client").await, Duration::from_secs(5));

    let answer = caller.call(&SAY, &"hello".to_owned()).await.expect("an answer");
    assert_eq!(answer, "hello via cim.service.echo.say");
    let answer = caller.call_for(&PINNED, "mine", &"hi".to_owned()).await.expect("an answer");
    assert_eq!(answer, "hi via cim.service.echo.pinned.mine");

    let error = caller.call(&SAY, &"no".to_owned()).await.expect_err("refused");
    assert!(error.is(EchoCode::Refused), "{error}");
    assert_eq!(error.remote().map(|e| e.status), Some(EchoCode::Refused.status()));

    // Refused by the server: reported as a denial, not as the timeout it
    // would otherwise be.
    for (result, subject) in [
        (caller.call(&FORBIDDEN, &"x".to_owned()).await, "cim.service.echo.forbidden"),
        (caller.call_for(&PINNED, "theirs", &"x".to_owned()).await, "cim.service.echo.pinned.theirs"),
    ] {
        match result {
            Err(RequestError::PermissionDenied { subject: denied }) => assert_eq!(denied, subject),
            other => panic!("expected a permission denial on {subject}, got {other:?}"),
        }
    }
    let error = caller.call(&FORBIDDEN, &"x".to_owned()).await.expect_err("denied");
    assert!(!error.is_retryable(), "{error}");
}

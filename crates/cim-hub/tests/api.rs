//! The HTTP API from a client's side: tokens and scopes, appends and reads,
//! the caller recorded, problems for every error.

use cim_hub_api::Scope;
use serde_json::json;

use crate::support::{Stack, json};

#[tokio::test]
async fn appends_reads_and_shows_events_with_the_caller_recorded() {
    let stack = Stack::start().await;
    let writer = stack.token(Scope::Write).await;
    let url = stack.url("/v1/aggregates/order/42/events");
    let body = json!({"expected_version": 0, "events": [
        {"event_type": "OrderPlaced", "payload": {"total": 1999}},
        {"event_type": "OrderPaid", "payload": {"by": "card"}}
    ]});
    let appended = json(stack.http.post(&url).bearer_auth(&writer).json(&body).send().await.unwrap(), 201).await;
    let events = appended["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["version"], 2);
    let second = events[1]["cid"].as_str().unwrap().to_owned();

    // A second append at the old version conflicts.
    let stale = json!({"expected_version": 0, "events": [{"event_type": "OrderPlaced"}]});
    let problem = json(stack.http.post(&url).bearer_auth(&writer).json(&stale).send().await.unwrap(), 409).await;
    assert_eq!(problem["code"], "version_conflict");
    assert_eq!(problem["details"]["current_version"], 2);

    // A cause in another aggregate.
    let caused = json!({"events": [{"event_type": "Shipped", "parents": [second]}]});
    json(
        stack
            .http
            .post(stack.url("/v1/aggregates/shipment/s1/events"))
            .bearer_auth(&writer)
            .json(&caused)
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;

    let reader = stack.token(Scope::Read).await;
    let read = json(stack.http.get(&url).bearer_auth(&reader).send().await.unwrap(), 200).await;
    assert_eq!(read["events"].as_array().unwrap().len(), 2);
    assert_eq!(read["events"][0]["payload"]["total"], 1999);
    assert_eq!(read["events"][1]["prev"], read["events"][0]["cid"]);
    let page = json(stack.http.get(format!("{url}?limit=1")).bearer_auth(&reader).send().await.unwrap(), 200).await;
    assert_eq!((page["events"].as_array().unwrap().len(), page["next_version"].as_u64()), (1, Some(2)));

    let shown = json(
        stack.http.get(stack.url(&format!("/v1/events/{second}"))).bearer_auth(&reader).send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(shown["event_type"], "OrderPaid");
    assert_eq!(shown["verified"], true);
    let caller = shown["caller"].as_str().unwrap();
    assert!(caller.starts_with("hub:token:") && caller.ends_with(":test write"), "{caller}");

    let verified = json(
        stack.http.get(stack.url("/v1/aggregates/order/42/verify")).bearer_auth(&reader).send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!((verified["ok"].as_bool(), verified["verified"].as_u64()), (Some(true), Some(2)));
    let log =
        json(stack.http.get(stack.url("/v1/events?after=0&limit=2")).bearer_auth(&reader).send().await.unwrap(), 200)
            .await;
    assert_eq!((log["events"].as_array().unwrap().len(), log["next_after"].as_u64()), (2, Some(2)));
    let graph = json(
        stack.http.get(stack.url("/v1/aggregates/order/42/graph")).bearer_auth(&reader).send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 3, "{graph}");
    let kinds: Vec<&str> = graph["edges"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "prev").count(), 1);
    assert_eq!(kinds.iter().filter(|k| **k == "parent").count(), 1);
    let walk = json(
        stack
            .http
            .get(stack.url(&format!("/v1/dag/{second}?direction=descendants")))
            .bearer_auth(&reader)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(walk["events"][0]["aggregate_type"], "shipment");
    let admin = stack.token(Scope::Admin).await;
    let all = json(stack.http.post(stack.url("/v1/verify")).bearer_auth(&admin).send().await.unwrap(), 200).await;
    assert_eq!(all["verified"], 3);
}

#[tokio::test]
async fn tokens_are_checked_scoped_revocable_and_rate_limited() {
    let stack = Stack::start().await;
    let url = stack.url("/v1/aggregates/note/n1/events");
    let body = json!({"events": [{"event_type": "Noted"}]});

    let missing = stack.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(missing.headers()["www-authenticate"], "Bearer realm=\"cim-hub\"");
    assert_eq!(json(missing, 401).await["code"], "unauthorized");
    for bad in ["cimhub_000000000000_nope", "Basic abc", "cimhub_zz", ""] {
        let response =
            stack.http.post(&url).header("authorization", format!("Bearer {bad}")).json(&body).send().await.unwrap();
        json(response, 401).await;
    }
    let reader = stack.token(Scope::Read).await;
    let refused = json(stack.http.post(&url).bearer_auth(&reader).json(&body).send().await.unwrap(), 403).await;
    assert_eq!(refused["code"], "insufficient_scope");
    let writer = stack.token(Scope::Write).await;
    json(stack.http.post(&url).bearer_auth(&writer).json(&body).send().await.unwrap(), 201).await;
    let not_admin =
        json(stack.http.post(stack.url("/v1/verify")).bearer_auth(&writer).send().await.unwrap(), 403).await;
    assert_eq!(not_admin["code"], "insufficient_scope");

    // A token is listed without its secret, and revoked at once.
    let tokens = stack.client().tokens().await.unwrap().tokens;
    assert_eq!(tokens.len(), 2);
    let listed = serde_json::to_string(&tokens).unwrap();
    assert!(!listed.contains(writer.split('_').nth(2).unwrap()), "a listing holds no secret");
    let id = writer.split('_').nth(1).unwrap();
    assert!(stack.client().revoke_token(id).await.unwrap().deleted);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = stack.http.post(&url).bearer_auth(&writer).json(&body).send().await.unwrap().status();
        if status == 401 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the revoked token still works ({status})");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(stack.client().revoke_token(id).await.is_err());

    // Rate limits: a burst of 3 at 1 a second.
    let request =
        cim_hub_api::CreateToken { name: "slow".into(), scope: Scope::Read, rate_per_sec: Some(1), burst: Some(3) };
    let slow = stack.client().create_token(&request).await.unwrap().token;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(stack.http.get(stack.url("/v1/events")).bearer_auth(&slow).send().await.unwrap());
    }
    let limited = statuses.pop().unwrap();
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(json(limited, 429).await["code"], "rate_limited");
    assert!(statuses.iter().take(3).all(|r| r.status() == 200));
}

#[tokio::test]
async fn bad_input_gets_specific_problems() {
    let stack = Stack::start().await;
    let writer = stack.token(Scope::Write).await;
    let post = |path: &str, body: &str| {
        stack
            .http
            .post(stack.url(path))
            .bearer_auth(&writer)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };
    assert_eq!(
        json(post("/v1/aggregates/order/1/events", "{not json").await.unwrap(), 400).await["code"],
        "bad_request"
    );
    assert_eq!(
        json(post("/v1/aggregates/order/1/events", r#"{"events": [], "x": 1}"#).await.unwrap(), 400).await["code"],
        "bad_request"
    );
    // Read strictly, as the NATS services read their requests: each refusal
    // says where the body went wrong.
    for (body, names) in [
        (r#"{"events": [], "x": 1}"#, "unknown field `x`"),
        (r#"[{"event_type": "X"}]"#, "must be a JSON object"),
        (r#"{"events": [{"event_type": "X"}]} trailing"#, "trailing characters"),
        (r#"{"events": [{"event_type": "X", "payload": {"n": 18446744073709551616}}]}"#, "does not fit in 64 bits"),
        (r#"{"events": [{"event_type": 7}]}"#, "at `events[0].event_type`"),
    ] {
        let problem = json(post("/v1/aggregates/order/1/events", body).await.unwrap(), 400).await;
        assert_eq!(problem["code"], "bad_request", "{body}");
        assert!(problem["detail"].as_str().unwrap().contains(names), "{body}: {problem}");
    }
    let as_text = stack
        .http
        .post(stack.url("/v1/aggregates/order/1/events"))
        .bearer_auth(&writer)
        .header("content-type", "text/plain")
        .body(r#"{"events": [{"event_type": "X"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(json(as_text, 415).await["code"], "unsupported_media_type");
    assert_eq!(
        json(post("/v1/aggregates/order/1/events", r#"{"events": []}"#).await.unwrap(), 422).await["code"],
        "invalid_event"
    );
    assert_eq!(
        json(post("/v1/aggregates/or.der/1/events", r#"{"events": [{"event_type": "X"}]}"#).await.unwrap(), 400).await
            ["code"],
        "invalid_name"
    );
    assert_eq!(
        json(post("/v1/aggregates/order/1/events", r#"{"events": [{"event_type": "bad type"}]}"#).await.unwrap(), 422)
            .await["code"],
        "invalid_event"
    );
    let dangling = r#"{"events": [{"event_type": "X", "parents": ["bafyreigno6um2xph7s6uinqcqa2i3w6w6635ayqfxwrfymuopkwk7q2aze"]}]}"#;
    assert_eq!(
        json(post("/v1/aggregates/order/1/events", dangling).await.unwrap(), 422).await["code"],
        "unknown_parent"
    );
    assert_eq!(
        json(post("/v1/aggregates/unit/u1/events", r#"{"events": [{"event_type": "X"}]}"#).await.unwrap(), 403).await["code"],
        "reserved_aggregate"
    );
    let big = format!(r#"{{"events": [{{"event_type": "X", "payload": "{}"}}]}}"#, "x".repeat(70_000));
    assert_eq!(
        json(post("/v1/aggregates/order/1/events", &big).await.unwrap(), 413).await["code"],
        "payload_too_large"
    );
    let unknown = stack.http.get(stack.url("/v1/nowhere")).bearer_auth(&writer).send().await.unwrap();
    assert_eq!(json(unknown, 404).await["code"], "not_found");
    let wrong_method =
        stack.http.delete(stack.url("/v1/aggregates/order/1/events")).bearer_auth(&writer).send().await.unwrap();
    assert_eq!(json(wrong_method, 405).await["code"], "method_not_allowed");
    let not_cid = stack.http.get(stack.url("/v1/events/nope")).bearer_auth(&writer).send().await.unwrap();
    assert_eq!(json(not_cid, 400).await["code"], "bad_request");
    let unknown_event = stack
        .http
        .get(stack.url("/v1/events/bafyreigno6um2xph7s6uinqcqa2i3w6w6635ayqfxwrfymuopkwk7q2aze"))
        .bearer_auth(&writer)
        .send()
        .await
        .unwrap();
    assert_eq!(json(unknown_event, 404).await["code"], "unknown_event");
    let bad_query = stack.http.get(stack.url("/v1/events?after=x")).bearer_auth(&writer).send().await.unwrap();
    assert_eq!(json(bad_query, 400).await["code"], "bad_request");
    // None of it stored anything.
    let events_stream = cim_store::StoreConfig::default().names().events_stream;
    let mut stream = async_nats::jetstream::new(stack.nats.clone()).get_stream(events_stream).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 0);
}

#[tokio::test]
async fn units_and_the_registry_through_their_apis() {
    let stack = Stack::start_with(true, "").await;
    let writer = stack.token(Scope::Write).await;
    let created = json(
        stack
            .http
            .post(stack.url("/v1/units"))
            .bearer_auth(&writer)
            .json(&json!({"kind": "text-document", "id": "doc1", "content": {"text": "hello"}, "tags": ["a"]}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert_eq!(created["version"], 1);
    let patched = json(
        stack
            .http
            .patch(stack.url("/v1/units/doc1"))
            .bearer_auth(&writer)
            .json(&json!({"expected_version": 1, "patch": [{"op": "replace", "path": "/content/text", "value": "hi"}]}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(patched["version"], 2);
    let unit = json(stack.http.get(stack.url("/v1/units/doc1")).bearer_auth(&writer).send().await.unwrap(), 200).await;
    assert_eq!(unit["state"]["content"]["text"], "hi");
    let old =
        json(stack.http.get(stack.url("/v1/units/doc1?version=1")).bearer_auth(&writer).send().await.unwrap(), 200)
            .await;
    assert_eq!(old["state"]["content"]["text"], "hello");
    let history =
        json(stack.http.get(stack.url("/v1/units/doc1/history")).bearer_auth(&writer).send().await.unwrap(), 200).await;
    assert_eq!(history["events"].as_array().unwrap().len(), 2);
    let list = json(stack.http.get(stack.url("/v1/units?tag=a")).bearer_auth(&writer).send().await.unwrap(), 200).await;
    assert_eq!(list["units"].as_array().unwrap().len(), 1);
    json(stack.http.get(stack.url("/v1/units/doc1/verify")).bearer_auth(&writer).send().await.unwrap(), 200).await;
    json(stack.http.get(stack.url("/v1/units/doc1/related")).bearer_auth(&writer).send().await.unwrap(), 200).await;
    let missing =
        json(stack.http.get(stack.url("/v1/units/nope")).bearer_auth(&writer).send().await.unwrap(), 404).await;
    assert_eq!(missing["code"], "unknown_unit");
    let conflict = json(
        stack
            .http
            .patch(stack.url("/v1/units/doc1"))
            .bearer_auth(&writer)
            .json(&json!({"expected_version": 1, "patch": []}))
            .send()
            .await
            .unwrap(),
        409,
    )
    .await;
    assert_eq!(conflict["code"], "version_conflict");
    let components = json(
        stack.http.get(stack.url("/v1/registry/components?name=cim-*")).bearer_auth(&writer).send().await.unwrap(),
        200,
    )
    .await;
    let names: Vec<&str> = components["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["registration"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"cim-ius") && names.contains(&"cim-hub"), "{names:?}");
    let schema = json(
        stack.http.get(stack.url("/v1/registry/schemas/unit:text-document")).bearer_auth(&writer).send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(schema["version"], 1);
    json(stack.http.get(stack.url("/v1/registry/schemas?prefix=unit")).bearer_auth(&writer).send().await.unwrap(), 200)
        .await;
}

#[tokio::test]
async fn the_api_is_served_over_tls_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("hub.pem"), dir.path().join("hub-key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        // An end-entity certificate: rustls refuses a CA certificate as a server's.
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    let made = made.expect("openssl makes the test certificate (.ci/run installs it)");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let extra =
        format!("tls_cert_file = {:?}\ntls_key_file = {:?}", cert.display().to_string(), key.display().to_string());
    let stack = Stack::start_with(false, &extra).await;
    assert!(stack.api.starts_with("https://"), "{}", stack.api);
    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let client = reqwest::Client::builder().add_root_certificate(root).build().unwrap();
    let reader = stack.token(Scope::Read).await;
    let log = client.get(stack.url("/v1/events")).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(log.status(), 200);
    let plain = stack.api.replace("https://", "http://");
    assert!(stack.http.get(format!("{plain}/v1/events")).send().await.is_err(), "plain HTTP gets no answer");
    let refused = reqwest::Client::new().get(stack.url("/v1/events")).send().await;
    assert!(refused.is_err(), "an unknown certificate is refused by a default client");
}

//! The DAG explorer in a real headless Chromium: `browser/explorer.mjs`
//! (playwright-core from `.tools/node`) checks the graph, a clicked event
//! and a live append, and takes screenshots (into `docs/screenshots/` when
//! `CIM_HUB_SCREENSHOTS=docs`, else a temporary directory).

use cim_hub_api::Scope;
use serde_json::json;

use crate::support::{Stack, json};

fn chromium() -> Option<std::path::PathBuf> {
    ["/usr/lib/chromium/chromium", "/usr/bin/chromium"].iter().map(std::path::PathBuf::from).find(|p| p.exists())
}

#[tokio::test]
async fn the_explorer_draws_the_dag_and_follows_the_feed() {
    let node_modules = cim_test_support::tools_dir().join("node/node_modules");
    let (Some(chromium), true) = (chromium(), node_modules.join("playwright-core").exists()) else {
        assert!(std::env::var_os("CI").is_none(), "CI must install chromium and playwright-core (cargo xtask tools)");
        eprintln!(
            "skipped: no chromium or no playwright-core in .tools/node (apt-get install chromium; cargo xtask tools)"
        );
        return;
    };
    let stack = Stack::start().await;
    let writer = stack.token(Scope::Write).await;
    let post = |path: String, body: serde_json::Value| {
        let request = stack.http.post(stack.url(&path)).bearer_auth(&writer).json(&body);
        async move { json(request.send().await.unwrap(), 201).await }
    };
    // A cause in another aggregate, three events of order/7, an effect elsewhere.
    let cause = post("/v1/aggregates/cart/c1/events".into(), json!({"events": [{"event_type": "CheckedOut"}]})).await;
    let cause = cause["events"][0]["cid"].as_str().unwrap().to_owned();
    let order = post(
        "/v1/aggregates/order/7/events".into(),
        json!({"events": [
            {"event_type": "OrderPlaced", "payload": {"total": 42}, "parents": [cause]},
            {"event_type": "OrderPaid"},
            {"event_type": "OrderPacked"}
        ]}),
    )
    .await;
    let own: Vec<String> =
        order["events"].as_array().unwrap().iter().map(|e| e["cid"].as_str().unwrap().to_owned()).collect();
    let effect = post(
        "/v1/aggregates/shipment/s7/events".into(),
        json!({"events": [{"event_type": "Shipped", "parents": [own[2]]}]}),
    )
    .await;
    let effect = effect["events"][0]["cid"].as_str().unwrap().to_owned();
    let mut nodes = own.clone();
    nodes.extend([cause.clone(), effect.clone()]);
    let expect = json!({
        "nodes": nodes,
        "own_last": 2,
        "edges": [
            [own[1], own[0], "prev"], [own[2], own[1], "prev"],
            [own[0], cause, "parent"], [effect, own[2], "parent"],
        ],
    });
    let screenshots = match std::env::var("CIM_HUB_SCREENSHOTS").ok().as_deref() {
        Some("docs") => cim_test_support::workspace_root().join("docs/screenshots"),
        _ => stack.dir.path().join("screenshots"),
    };
    std::fs::create_dir_all(&screenshots).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/explorer.mjs");
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .env("NODE_MODULES", &node_modules)
        .env("HUB_URL", &stack.api)
        .env("TOKEN", &writer)
        .env("AGGREGATE", "order/7")
        .env("EXPECT", expect.to_string())
        .env("SCREENSHOTS", &screenshots)
        .env("CHROMIUM", &chromium)
        .output()
        .await
        .expect("run node");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the browser test failed:\n{text}\nhub log:\n{}", stack.hub.log());
    eprintln!("{text}");
    for shot in ["explorer-graph.png", "explorer-event.png", "explorer-live.png"] {
        assert!(screenshots.join(shot).metadata().unwrap().len() > 10_000, "{shot} is a real screenshot");
    }
}

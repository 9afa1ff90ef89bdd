//! The OpenAPI document: generated from the code, served at a fixed path,
//! identical to the committed copy (`docs/openapi.json`; regenerate with
//! `CIM_UPDATE_OPENAPI=1 cargo test -p cim-hub --test integration openapi`).

use crate::support::Stack;

fn committed() -> std::path::PathBuf {
    cim_test_support::workspace_root().join("docs/openapi.json")
}

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let generated = cim_hub::http::openapi().to_pretty_json().unwrap() + "\n";
    if std::env::var_os("CIM_UPDATE_OPENAPI").is_some() {
        std::fs::write(committed(), &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(committed()).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/openapi.json is not the document the code generates: run CIM_UPDATE_OPENAPI=1 cargo test -p cim-hub --test integration openapi"
    );
    let stack = Stack::start().await;
    let served = stack.http.get(stack.url("/v1/openapi.json")).send().await.unwrap().text().await.unwrap();
    assert_eq!(served.trim_end(), generated.trim_end(), "the served document differs from the generated one");
    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/aggregates/{aggregate_type}/{aggregate_id}/events"]["post"].is_object());
    let asyncapi: serde_json::Value =
        stack.http.get(stack.url("/v1/asyncapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(asyncapi["asyncapi"], "3.0.0");
    assert_eq!(asyncapi["channels"]["tokens-create"]["address"], "cim.service.hub.tokens.create");
}

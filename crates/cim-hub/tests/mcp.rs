//! The MCP server with rmcp's own client: over streamable HTTP with bearer
//! tokens, and over stdio (`cim-hub-mcp` as a child process). A client
//! lists the tools, reads a unit, appends an event with a write token, and
//! is refused with a read-only one.

use cim_hub_api::Scope;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::support::{Stack, json};

async fn http_client(stack: &Stack, token: &str) -> RunningService<RoleClient, ClientConfig> {
    // rmcp's reqwest 0.13 is built with the workspace's `rustls-no-provider`
    // (the Storage Manager's choice): the process names its provider, ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = StreamableHttpClientTransportConfig::with_uri(stack.url("/mcp")).auth_header(token.to_owned());
    ClientConfig::default().serve(StreamableHttpClientTransport::from_config(config)).await.expect("an MCP session")
}

async fn call(client: &RunningService<RoleClient, ClientConfig>, tool: &str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else { panic!("arguments are an object") };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .expect("a tool result")
}

fn structured(result: &CallToolResult) -> Value {
    result.structured_content.clone().unwrap_or(Value::Null)
}

async fn create_unit(stack: &Stack) {
    let writer = stack.token(Scope::Write).await;
    let body = json!({"kind": "text-document", "id": "mcp-doc", "content": {"text": "for agents"}, "tags": ["mcp"]});
    json(stack.http.post(stack.url("/v1/units")).bearer_auth(&writer).json(&body).send().await.unwrap(), 201).await;
}

#[tokio::test]
async fn an_mcp_client_over_http_reads_units_and_appends_only_with_a_write_token() {
    let stack = Stack::start_with(true, "").await;
    create_unit(&stack).await;

    let writer = http_client(&stack, &stack.token(Scope::Write).await).await;
    let tools = writer.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for tool in [
        "search_units",
        "get_unit",
        "unit_history",
        "read_aggregate",
        "show_event",
        "walk_dag",
        "verify",
        "append_event",
    ] {
        assert!(names.contains(&tool), "{tool} in {names:?}");
    }
    let unit = call(&writer, "get_unit", json!({"id": "mcp-doc"})).await;
    assert_ne!(unit.is_error, Some(true), "{unit:?}");
    assert_eq!(structured(&unit)["state"]["content"]["text"], "for agents");
    let found = call(&writer, "search_units", json!({"tag": "mcp"})).await;
    assert_eq!(structured(&found)["units"].as_array().map(Vec::len), Some(1));
    let history = call(&writer, "unit_history", json!({"id": "mcp-doc"})).await;
    let created_cid = structured(&history)["events"][0]["cid"].as_str().unwrap().to_owned();

    let appended = call(
        &writer,
        "append_event",
        json!({
            "aggregate_type": "note", "aggregate_id": "n1", "event_type": "NoteTaken",
            "payload": {"about": "mcp-doc"}, "parents": [created_cid]
        }),
    )
    .await;
    assert_ne!(appended.is_error, Some(true), "{appended:?}");
    let cid = structured(&appended)["events"][0]["cid"].as_str().unwrap().to_owned();
    let shown = call(&writer, "show_event", json!({"cid": cid})).await;
    assert_eq!(structured(&shown)["event_type"], "NoteTaken");
    assert!(structured(&shown)["caller"].as_str().unwrap().ends_with("(mcp)"));
    let walked = call(&writer, "walk_dag", json!({"cid": cid, "depth": 1})).await;
    assert_eq!(structured(&walked)["events"][0]["aggregate_type"], "unit");
    let read = call(&writer, "read_aggregate", json!({"aggregate_type": "note", "aggregate_id": "n1"})).await;
    assert_eq!(structured(&read)["events"].as_array().map(Vec::len), Some(1));
    let verified = call(&writer, "verify", json!({"aggregate_type": "note", "aggregate_id": "n1"})).await;
    assert_eq!(structured(&verified)["ok"], true);
    let reserved =
        call(&writer, "append_event", json!({"aggregate_type": "unit", "aggregate_id": "x", "event_type": "Hack"}))
            .await;
    assert_eq!(reserved.is_error, Some(true));
    writer.cancel().await.unwrap();

    let reader = http_client(&stack, &stack.token(Scope::Read).await).await;
    let refused = call(
        &reader,
        "append_event",
        json!({"aggregate_type": "note", "aggregate_id": "n1", "event_type": "NoteTaken"}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true));
    assert_eq!(structured(&refused)["code"], "insufficient_scope");
    let still = call(&reader, "get_unit", json!({"id": "mcp-doc"})).await;
    assert_ne!(still.is_error, Some(true));
    reader.cancel().await.unwrap();

    // Without a valid token there is no session at all.
    let config =
        StreamableHttpClientTransportConfig::with_uri(stack.url("/mcp")).auth_header("cimhub_000000000000_bad");
    assert!(ClientConfig::default().serve(StreamableHttpClientTransport::from_config(config)).await.is_err());
}

#[tokio::test]
async fn an_mcp_client_over_stdio_acts_with_its_token() {
    let stack = Stack::start_with(true, "").await;
    create_unit(&stack).await;
    let config = stack.dir.path().join("mcp.toml");
    std::fs::write(
        &config,
        format!("[nats]\nurl = \"{}\"\n\n[http]\nenabled = false\n\n[log]\nlevel = \"warn\"\n", stack.server.url()),
    )
    .unwrap();
    let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_cim-hub-mcp"));
    let start = |token: String| {
        let mut command = tokio::process::Command::new(&binary);
        command.arg("--config").arg(&config).env("CIM_HUB_TOKEN", token).env_remove("CIM_NATS_SERVER");
        rmcp::transport::TokioChildProcess::new(command).expect("start cim-hub-mcp")
    };
    let writer = ClientConfig::default().serve(start(stack.token(Scope::Write).await)).await.expect("a stdio session");
    assert!(writer.list_all_tools().await.unwrap().len() >= 8);
    let unit = call(&writer, "get_unit", json!({"id": "mcp-doc"})).await;
    assert_eq!(structured(&unit)["state"]["content"]["text"], "for agents");
    let appended = call(
        &writer,
        "append_event",
        json!({"aggregate_type": "note", "aggregate_id": "stdio", "event_type": "NoteTaken"}),
    )
    .await;
    assert_ne!(appended.is_error, Some(true), "{appended:?}");
    writer.cancel().await.unwrap();

    let reader = ClientConfig::default().serve(start(stack.token(Scope::Read).await)).await.expect("a stdio session");
    let refused = call(
        &reader,
        "append_event",
        json!({"aggregate_type": "note", "aggregate_id": "stdio", "event_type": "NoteTaken"}),
    )
    .await;
    assert_eq!(structured(&refused)["code"], "insufficient_scope");
    reader.cancel().await.unwrap();
}

//! `cim-hub-mcp`: the hub's MCP server over stdio, for agents that start
//! their tools as processes. Same configuration as `cim-hub` (it connects to
//! NATS with it; its HTTP endpoints stay off), same tools, and the scope of
//! the hub token in `CIM_HUB_TOKEN`. Logs go to stderr; stdout is the
//! protocol's.

use std::process::ExitCode;

use anyhow::Context;
use cim_hub::{Hub, HubSettings};
use rmcp::ServiceExt;

fn main() -> ExitCode {
    cim_runtime::cli::main::<HubSettings, _, _>(
        "cim-hub-mcp",
        "CIM Integration Hub: the MCP server over stdio (token in CIM_HUB_TOKEN)",
        |runtime| async move {
            let token = std::env::var("CIM_HUB_TOKEN").context("CIM_HUB_TOKEN: the hub token the agent acts with")?;
            let hub = Hub::open(&runtime).await.context("opening the stores")?;
            let (principal, _) = cim_hub::auth::authenticate(&hub, Some(&format!("Bearer {token}")))
                .await
                .map_err(|problem| anyhow::anyhow!("CIM_HUB_TOKEN: {}", problem.detail))?;
            tracing::info!(token = %principal.token_id, scope = %principal.scope, "serving MCP on stdio");
            let server = cim_hub::mcp::HubMcp::new(hub, Some(principal))
                .serve(rmcp::transport::stdio())
                .await
                .context("starting the MCP session")?;
            server.waiting().await.context("serving MCP")?;
            Ok(())
        },
    )
}

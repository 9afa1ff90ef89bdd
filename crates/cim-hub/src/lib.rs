//! CIM's Integration Hub: the edge to the outside world.
//!
//! - [`http`]: the public HTTP API (axum) on its own listener (optionally
//!   TLS): events, objects (streamed, `Range`, `ETag` = CID), units and the
//!   registry (through their API crates), the live feed (SSE), inbound
//!   webhooks; an OpenAPI 3.1 document generated from the handlers; bearer
//!   tokens with scopes and rate limits ([`auth`]); every error as
//!   `application/problem+json` ([`problem`]).
//! - [`webhooks`]: outbound webhooks (Standard Webhooks signatures,
//!   retries with backoff, delivery log, dead letters, pausing), their
//!   backlog in JetStream.
//! - [`mcp`]: an MCP server (rmcp) over streamable HTTP (`/mcp`) and stdio
//!   (`cim-hub-mcp`).
//! - [`explorer`]: the web DAG explorer.
//! - [`service`]: the NATS API of `cim-hub-api` (`cim hub …`).
//!
//! Everything it serves goes through the store (`cim-store`) and the other
//! components' API crates; it holds no copy of their logic.

pub mod asyncapi;
pub mod auth;
pub mod explorer;
pub mod http;
pub mod hub;
pub mod mcp;
pub mod metrics;
pub mod problem;
pub mod records;
pub mod serve;
pub mod service;
mod settings;
pub mod signing;
pub mod views;
pub mod webhooks;

use std::time::Duration;

use anyhow::Context;
use cim_runtime::Runtime;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use hub::Hub;
pub use settings::HubSettings;

/// Runs the hub: the HTTP API, the outbound dispatcher, the token watch and
/// the NATS service, until SIGTERM or SIGINT.
pub async fn run(runtime: Runtime<HubSettings>) -> anyhow::Result<()> {
    let settings = runtime.config().component.clone();
    let hub = Hub::open(&runtime).await.context("opening the stores")?;
    let tokens = tokio::spawn(auth::follow_tokens(hub.clone()));
    let tls = settings.tls().map(|(cert, key)| serve::tls_acceptor(cert, key)).transpose()?;
    let address = settings.address().map_err(|e| anyhow::anyhow!("hub.{}: {}", e.key, e.reason))?;
    let listener = serve::bind(address).await?;
    let bound = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!(address = %bound, "serving the HTTP API on {scheme}://{bound}");
    let mut extra = axum::Router::new();
    if settings.mcp {
        extra = extra.merge(mcp::routes(hub.clone()));
    }
    if settings.explorer {
        extra = extra.merge(explorer::routes());
    }
    let app = http::router(hub.clone(), extra);
    let stop = CancellationToken::new();
    let grace = Duration::from_secs(runtime.config().runtime.shutdown_grace_secs);
    let api = tokio::spawn(serve::serve(listener, app, tls, stop.clone(), grace));
    let dispatcher = tokio::spawn(webhooks::run(hub.clone(), stop.clone()));
    let signals = tokio::spawn(stop_on_signal(stop.clone(), runtime.shutdown_token()));
    let served = runtime.serve(service::definition(&hub)).await;
    stop.cancel();
    let _ = dispatcher.await;
    let _ = api.await;
    signals.abort();
    tokens.abort();
    served.context("serving")?;
    Ok(())
}

/// Stops the API when the process is asked to stop (the runtime stops the
/// NATS service on the same signals).
async fn stop_on_signal(stop: CancellationToken, runtime: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        () = runtime.cancelled() => {}
    }
    stop.cancel();
}

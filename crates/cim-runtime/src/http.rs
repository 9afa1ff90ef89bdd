//! The HTTP endpoint: `/metrics` (Prometheus), `/healthz` (the process runs)
//! and `/readyz` (connected to NATS, serving, not shutting down).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

#[derive(Clone)]
struct HttpState {
    metrics: Arc<Metrics>,
    client: async_nats::Client,
    serving: Arc<AtomicBool>,
}

/// Binds `addr` and serves until `stop` is cancelled; returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    client: async_nats::Client,
    serving: Arc<AtomicBool>,
    stop: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(HttpState { metrics, client, serving });
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await {
            tracing::error!(%error, "the HTTP endpoint failed");
        }
    });
    Ok((bound, task))
}

async fn metrics_text(State(state): State<HttpState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
}

async fn ready(State(state): State<HttpState>) -> impl IntoResponse {
    let connected = state.client.connection_state() == async_nats::connection::State::Connected;
    match (connected, state.serving.load(Ordering::SeqCst)) {
        (true, true) => (StatusCode::OK, "ready\n"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS\n"),
        (true, false) => (StatusCode::SERVICE_UNAVAILABLE, "not serving requests\n"),
    }
}

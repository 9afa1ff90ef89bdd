//! The HTTP endpoint: `/metrics` (Prometheus), `/healthz` (the process runs)
//! and `/readyz` (connected to NATS, serving, not shutting down), and the
//! routes the component adds ([`crate::ServiceDefinition::routes`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::metrics::Metrics;

/// The component's routes, installed when it starts serving: the server
/// runs from start-up (health), before the component has built them.
pub(crate) type ExtraRoutes = Arc<RwLock<Option<Router>>>;

#[derive(Clone)]
struct HttpState {
    metrics: Arc<Metrics>,
    client: async_nats::Client,
    serving: Arc<AtomicBool>,
    extra: ExtraRoutes,
}

/// Binds `addr` and serves until `stop` is cancelled; returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    client: async_nats::Client,
    serving: Arc<AtomicBool>,
    extra: ExtraRoutes,
    stop: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .fallback(component_routes)
        .with_state(HttpState { metrics, client, serving, extra });
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

/// Every other path: the component's routes, once installed; 404 before.
async fn component_routes(State(state): State<HttpState>, request: Request) -> Response {
    let routes = state.extra.read().unwrap_or_else(|e| e.into_inner()).clone();
    match routes {
        Some(routes) => match routes.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

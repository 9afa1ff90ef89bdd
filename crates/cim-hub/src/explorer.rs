//! The web DAG explorer: one page served by the hub, drawing an aggregate's
//! chain and its causal links with cytoscape (vendored, with its license, so
//! the page works offline), showing a clicked event in full with its CID
//! and verification status, and adding new events live from the feed.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::hub::Hub;

const PAGE: &str = include_str!("../assets/explorer.html");
const SCRIPT: &str = include_str!("../assets/explorer.js");
const CYTOSCAPE: &str = include_str!("../assets/cytoscape.min.js");
const CYTOSCAPE_LICENSE: &str = include_str!("../assets/cytoscape.LICENSE");

/// The explorer's routes (no token needed: the page asks for one and sends
/// it with its API requests).
pub fn routes() -> Router<Hub> {
    Router::new()
        .route("/explorer", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE) }))
        .route("/explorer/explorer.js", get(|| async { script(SCRIPT) }))
        .route("/explorer/cytoscape.min.js", get(|| async { script(CYTOSCAPE) }))
        .route(
            "/explorer/cytoscape.LICENSE",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], CYTOSCAPE_LICENSE) }),
        )
}

fn script(body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], body)
}

//! Connecting to NATS with the configured servers, credentials and TLS
//! (`cim_wire::connect_options`), and reconnecting for as long as the
//! configuration says.

use std::time::Duration;

use async_nats::Event;
use cim_wire::{ConnectError, NatsConfig, connect_options, server_addrs};
use tracing::{info, warn};

/// Logs a connection event. Permission denials the server reports are
/// also recorded by `cim_wire::denials` (so a refused request fails as
/// refused, not as a timeout) before this runs.
fn log_event(event: &Event) {
    match event {
        Event::Connected => info!("connected to NATS"),
        Event::Disconnected => warn!("disconnected from NATS; reconnecting"),
        Event::ServerError(error) => warn!(%error, "the NATS server reports an error"),
        other => info!(event = %other, "NATS connection event"),
    }
}

/// Connects with `config`; `default_name` names the connection unless the
/// configuration does. The client reconnects by itself after a loss.
pub async fn connect(config: &NatsConfig, default_name: &str) -> Result<async_nats::Client, ConnectError> {
    let options = connect_options(config, default_name, log_event)
        .await?
        .max_reconnects((config.max_reconnects > 0).then_some(config.max_reconnects))
        .retry_on_initial_connect();
    let urls = config.url.join(",");
    // With retry_on_initial_connect, connect returns at once and the client
    // keeps trying; wait for the first connection so start-up fails loudly.
    let client = options
        .connect(server_addrs(config)?)
        .await
        .map_err(|e| ConnectError::Connect { urls: urls.clone(), reason: e.to_string() })?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(config.connect_timeout_secs.max(1) * 6);
    while client.connection_state() != async_nats::connection::State::Connected {
        if tokio::time::Instant::now() >= deadline {
            return Err(ConnectError::Connect { urls, reason: "no server answered in time".to_owned() });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(client)
}

//! Connecting to NATS with the configured servers, credentials and TLS, and
//! reconnecting for as long as the configuration says.

use std::path::Path;
use std::time::Duration;

use async_nats::{ConnectOptions, Event};
use tracing::{info, warn};

use crate::config::NatsConfig;

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A credentials or TLS file cannot be read.
    #[error("nats.{key}: cannot read {path}: {source}")]
    File {
        /// The configuration key naming the file.
        key: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The servers refused or could not be reached.
    #[error("cannot connect to {urls}: {reason}")]
    Connect {
        /// The servers tried.
        urls: String,
        /// The client's explanation.
        reason: String,
    },
}

fn read_secret(key: &'static str, path: &Path) -> Result<String, ConnectError> {
    std::fs::read_to_string(path).map(|text| text.trim().to_owned()).map_err(|source| ConnectError::File {
        key,
        path: path.display().to_string(),
        source,
    })
}

/// Connects with `config`; `default_name` names the connection unless the
/// configuration does. The client reconnects by itself after a loss.
pub async fn connect(config: &NatsConfig, default_name: &str) -> Result<async_nats::Client, ConnectError> {
    let options = connect_options(config, default_name)
        .await?
        .max_reconnects((config.max_reconnects > 0).then_some(config.max_reconnects))
        .retry_on_initial_connect()
        .event_callback(|event| async move {
            match event {
                Event::Connected => info!("connected to NATS"),
                Event::Disconnected => warn!("disconnected from NATS; reconnecting"),
                other => info!(event = %other, "NATS connection event"),
            }
        });
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

/// The servers of `config`, parsed.
pub fn server_addrs(config: &NatsConfig) -> Result<Vec<async_nats::ServerAddr>, ConnectError> {
    config
        .url
        .iter()
        .map(|url| url.parse())
        .collect::<Result<_, _>>()
        .map_err(|e: std::io::Error| ConnectError::Connect { urls: config.url.join(","), reason: e.to_string() })
}

/// Connection options from `config`: name, timeouts, credentials (secrets
/// read from their files now) and TLS — everything but the reconnect policy,
/// which a service and a one-shot tool choose differently.
pub async fn connect_options(config: &NatsConfig, default_name: &str) -> Result<ConnectOptions, ConnectError> {
    let mut options = ConnectOptions::new()
        .name(config.name.as_deref().unwrap_or(default_name))
        .connection_timeout(Duration::from_secs(config.connect_timeout_secs))
        .request_timeout(Some(Duration::from_secs(config.request_timeout_secs)));
    if let (Some(user), Some(file)) = (&config.user, &config.password_file) {
        options = options.user_and_password(user.clone(), read_secret("password_file", file)?);
    }
    if let Some(file) = &config.token_file {
        options = options.token(read_secret("token_file", file)?);
    }
    if let Some(file) = &config.nkey_seed_file {
        options = options.nkey(read_secret("nkey_seed_file", file)?);
    }
    if let Some(file) = &config.creds_file {
        options = options.credentials_file(file).await.map_err(|source| ConnectError::File {
            key: "creds_file",
            path: file.display().to_string(),
            source,
        })?;
    }
    if let Some(file) = &config.tls_ca_file {
        options = options.add_root_certificates(file.clone());
    }
    if let (Some(cert), Some(key)) = (&config.tls_cert_file, &config.tls_key_file) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    if config.tls_required {
        options = options.require_tls(true);
    }
    if let Some(prefix) = &config.inbox_prefix {
        options = options.custom_inbox_prefix(prefix.as_str());
    }
    Ok(options)
}

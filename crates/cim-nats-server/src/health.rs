//! The monitoring port's health check, over a hand-written HTTP/1.0 GET so the
//! crate needs no HTTP client.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Which `/healthz` a server must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The process serves clients with JetStream enabled
    /// (`/healthz?js-enabled-only=true`).
    JetStream,
    /// Additionally, in a cluster: a meta leader is known and this node's
    /// streams and consumers are current (`/healthz`).
    Full,
}

impl Health {
    fn path(self) -> &'static str {
        match self {
            Self::JetStream => "/healthz?js-enabled-only=true",
            Self::Full => "/healthz",
        }
    }
}

/// Whether the server monitored on 127.0.0.1:`port` answers the check with
/// 200 within two seconds.
pub async fn is_healthy(port: u16, health: Health) -> bool {
    matches!(tokio::time::timeout(Duration::from_secs(2), status(port, health.path())).await, Ok(Ok(200)))
}

async fn status(port: u16, path: &str) -> io::Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    // "HTTP/1.1 200 OK\r\n..."
    String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP status line"))
}

//! The configuration sections every component shares: `[nats]`, `[http]`,
//! `[log]` and `[runtime]` (`[store]` is `cim_store::StoreConfig`).
//!
//! Secrets are never values in the file: only paths to files holding them, so
//! a rendered configuration (for example in the Nix store) holds no secret.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::Invalid;

/// `[nats]`: where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URLs: one string (several separated by commas) or a list.
    #[serde(deserialize_with = "server_urls")]
    pub url: Vec<String>,
    /// Connection name shown by the server's monitoring; default: the component's name.
    pub name: Option<String>,
    /// User name for user/password authentication (with `password_file`).
    pub user: Option<String>,
    /// File holding the password for `user`.
    pub password_file: Option<PathBuf>,
    /// File holding an authentication token.
    pub token_file: Option<PathBuf>,
    /// File holding an NKey seed (`SU…`).
    pub nkey_seed_file: Option<PathBuf>,
    /// A `.creds` file (user JWT and NKey seed).
    pub creds_file: Option<PathBuf>,
    /// PEM file of CA certificates that sign the server's certificate.
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate (with `tls_key_file`).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Refuse to talk to the server without TLS.
    pub tls_required: bool,
    /// Seconds to wait for a connection to be established.
    pub connect_timeout_secs: u64,
    /// Seconds to wait for the reply to a request this component sends.
    pub request_timeout_secs: u64,
    /// Reconnect attempts before giving up after losing the connection; 0: forever.
    pub max_reconnects: usize,
    /// Subject prefix of this connection's reply inboxes instead of
    /// `_INBOX`, e.g. `_INBOX_ius`: lets the server's permissions keep one
    /// user from subscribing to another's replies.
    pub inbox_prefix: Option<String>,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: vec!["nats://127.0.0.1:4222".to_owned()],
            name: None,
            user: None,
            password_file: None,
            token_file: None,
            nkey_seed_file: None,
            creds_file: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_required: false,
            connect_timeout_secs: 5,
            request_timeout_secs: 10,
            max_reconnects: 0,
            inbox_prefix: None,
        }
    }
}

impl NatsConfig {
    /// Checks the section, naming the first bad key; with `check_files`,
    /// also that every file it names is readable.
    pub fn validate(&self, check_files: bool) -> Result<(), Invalid> {
        if self.url.is_empty() {
            return Err(Invalid::new("url", "must name at least one server"));
        }
        for url in &self.url {
            url.parse::<async_nats::ServerAddr>()
                .map_err(|e| Invalid::new("url", format!("{url:?} is not a NATS server URL: {e}")))?;
        }
        let methods: Vec<&str> = [
            ("password_file", self.password_file.is_some()),
            ("token_file", self.token_file.is_some()),
            ("nkey_seed_file", self.nkey_seed_file.is_some()),
            ("creds_file", self.creds_file.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect();
        if methods.len() > 1 {
            return Err(Invalid::new(
                methods[1],
                format!("cannot be combined with {}: choose one way to authenticate", methods[0]),
            ));
        }
        if self.password_file.is_some() != self.user.is_some() {
            let key = if self.user.is_some() { "password_file" } else { "user" };
            return Err(Invalid::new(key, "user and password_file go together"));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            let key = if self.tls_cert_file.is_some() { "tls_key_file" } else { "tls_cert_file" };
            return Err(Invalid::new(key, "tls_cert_file and tls_key_file go together"));
        }
        if let Some(prefix) = &self.inbox_prefix {
            check_inbox_prefix(prefix)?;
        }
        if self.connect_timeout_secs == 0 {
            return Err(Invalid::new("connect_timeout_secs", "must be at least 1"));
        }
        if self.request_timeout_secs == 0 {
            return Err(Invalid::new("request_timeout_secs", "must be at least 1"));
        }
        if check_files {
            let files = [
                ("password_file", &self.password_file),
                ("token_file", &self.token_file),
                ("nkey_seed_file", &self.nkey_seed_file),
                ("creds_file", &self.creds_file),
                ("tls_ca_file", &self.tls_ca_file),
                ("tls_cert_file", &self.tls_cert_file),
                ("tls_key_file", &self.tls_key_file),
            ];
            for (key, path) in files {
                if let Some(path) = path {
                    check_readable(key, path)?;
                }
            }
        }
        Ok(())
    }
}

/// An inbox prefix is a subject of literal tokens: replies arrive on
/// `<prefix>.<id>.<n>`.
fn check_inbox_prefix(prefix: &str) -> Result<(), Invalid> {
    let literal_token = |token: &str| {
        !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'*' | b'>' | b'.'))
    };
    if prefix.split('.').all(literal_token) {
        Ok(())
    } else {
        Err(Invalid::new(
            "inbox_prefix",
            format!(
                "{prefix:?} is not a subject of literal tokens (e.g. _INBOX_ius): no spaces, '*', '>' or empty tokens"
            ),
        ))
    }
}

/// Fails unless `path` is a regular file this process can open for reading.
fn check_readable(key: &'static str, path: &Path) -> Result<(), Invalid> {
    let unreadable = |reason: String| Invalid::new(key, format!("{}: {reason}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(unreadable("is not a regular file".to_owned()));
    }
    std::fs::File::open(path).map_err(|e| unreadable(format!("cannot be read: {e}")))?;
    Ok(())
}

/// Reads `url` as one string (comma-separated) or a list of strings.
fn server_urls<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct Urls;
    impl<'de> Visitor<'de> for Urls {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a server URL, URLs separated by commas, or a list of URLs")
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
            Ok(value.split(',').map(str::trim).filter(|url| !url.is_empty()).map(str::to_owned).collect())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut urls = Vec::new();
            while let Some(url) = seq.next_element::<String>()? {
                urls.push(url);
            }
            Ok(urls)
        }
    }
    deserializer.deserialize_any(Urls)
}

/// `[http]`: the metrics and health endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Serve `/metrics`, `/healthz` and `/readyz`.
    pub enabled: bool,
    /// Address to listen on, `host:port`.
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { enabled: true, listen: "127.0.0.1:9100".to_owned() }
    }
}

impl HttpConfig {
    /// The listen address, once validated.
    pub fn address(&self) -> Result<SocketAddr, Invalid> {
        self.listen.parse().map_err(|e| {
            Invalid::new("listen", format!("{:?} is not an address like 127.0.0.1:9100: {e}", self.listen))
        })
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal or the journal.
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[log]`: what to log and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter: a level (`info`) or directives (`info,cim_store=debug`).
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Human, level: "info".to_owned() }
    }
}

impl LogConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        // A bare word is a target to `tracing`, so a misspelt level ("inf")
        // would silently log everything of a target named "inf".
        const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
        for directive in self.level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            if !directive.contains(['=', '[']) && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
                return Err(Invalid::new(
                    "level",
                    format!("{directive:?} is not a level ({}); use TARGET=LEVEL for a target", LEVELS.join(", ")),
                ));
            }
        }
        tracing_subscriber::EnvFilter::builder().parse(&self.level).map(drop).map_err(|e| {
            Invalid::new(
                "level",
                format!("{:?} is not a log filter such as \"info\" or \"info,cim_store=debug\": {e}", self.level),
            )
        })
    }
}

/// `[runtime]`: how the component runs as a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// This instance's id (`[A-Za-z0-9_-]`, at most 64 bytes); default: a new random id at every start.
    pub instance_id: Option<String>,
    /// Register with the Component Registry and send heartbeats.
    pub register: bool,
    /// Seconds between heartbeats (the registry may ask for shorter ones).
    pub heartbeat_secs: u64,
    /// Seconds that in-flight requests get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Requests handled at once; more wait in the NATS subscription.
    pub max_in_flight: usize,
    /// Largest request payload accepted, bytes; larger ones get `payload_too_large`.
    pub max_request_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            instance_id: None,
            register: true,
            heartbeat_secs: 5,
            shutdown_grace_secs: 30,
            max_in_flight: 64,
            max_request_bytes: 1024 * 1024,
        }
    }
}

impl RuntimeConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        if let Some(id) = &self.instance_id {
            check_token("instance_id", id, 64)?;
        }
        if !(1..=3600).contains(&self.heartbeat_secs) {
            return Err(Invalid::new("heartbeat_secs", "must be between 1 and 3600"));
        }
        if self.shutdown_grace_secs > 3600 {
            return Err(Invalid::new("shutdown_grace_secs", "must be at most 3600"));
        }
        if self.max_in_flight == 0 {
            return Err(Invalid::new("max_in_flight", "must be at least 1"));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_request_bytes) {
            return Err(Invalid::new("max_request_bytes", "must be between 1024 and 67108864"));
        }
        Ok(())
    }
}

/// Checks a name used as a NATS subject token or service name:
/// `[A-Za-z0-9_-]`, 1 to `max` bytes.
pub fn check_token(key: &'static str, value: &str, max: usize) -> Result<(), Invalid> {
    let valid = !value.is_empty()
        && value.len() <= max
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid { Ok(()) } else { Err(Invalid::new(key, format!("{value:?} must be 1-{max} bytes of [A-Za-z0-9_-]"))) }
}

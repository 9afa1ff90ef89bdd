//! `[nats]`: the connection settings every CIM binary shares, and the
//! connection options built from them.
//!
//! Secrets are never values in the file: only paths to files holding them, so
//! a rendered configuration (for example in the Nix store) holds no secret.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_nats::{ConnectOptions, Event};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::denials;
use crate::endpoint::is_literal_token;

/// A setting out of range: which key (relative to `[nats]`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nats.{key}: {reason}")]
pub struct InvalidSetting {
    /// The key.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl InvalidSetting {
    /// A value of `key` that breaks a rule.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { key: key.into(), reason: reason.into() }
    }
}

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
    pub fn validate(&self, check_files: bool) -> Result<(), InvalidSetting> {
        if self.url.is_empty() {
            return Err(InvalidSetting::new("url", "must name at least one server"));
        }
        for url in &self.url {
            url.parse::<async_nats::ServerAddr>()
                .map_err(|e| InvalidSetting::new("url", format!("{url:?} is not a NATS server URL: {e}")))?;
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
            return Err(InvalidSetting::new(
                methods[1],
                format!("cannot be combined with {}: choose one way to authenticate", methods[0]),
            ));
        }
        if self.password_file.is_some() != self.user.is_some() {
            let key = if self.user.is_some() { "password_file" } else { "user" };
            return Err(InvalidSetting::new(key, "user and password_file go together"));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            let key = if self.tls_cert_file.is_some() { "tls_key_file" } else { "tls_cert_file" };
            return Err(InvalidSetting::new(key, "tls_cert_file and tls_key_file go together"));
        }
        if let Some(prefix) = &self.inbox_prefix {
            check_inbox_prefix(prefix)?;
        }
        if self.connect_timeout_secs == 0 {
            return Err(InvalidSetting::new("connect_timeout_secs", "must be at least 1"));
        }
        if self.request_timeout_secs == 0 {
            return Err(InvalidSetting::new("request_timeout_secs", "must be at least 1"));
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
fn check_inbox_prefix(prefix: &str) -> Result<(), InvalidSetting> {
    if prefix.split('.').all(is_literal_token) {
        Ok(())
    } else {
        Err(InvalidSetting::new(
            "inbox_prefix",
            format!(
                "{prefix:?} is not a subject of literal tokens (e.g. _INBOX_ius): no spaces, '*', '>' or empty tokens"
            ),
        ))
    }
}

/// Fails unless `path` is a regular file this process can open for reading.
fn check_readable(key: &'static str, path: &Path) -> Result<(), InvalidSetting> {
    let unreadable = |reason: String| InvalidSetting::new(key, format!("{}: {reason}", path.display()));
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
///
/// Every event of the connection is passed to [`denials::record`] and then
/// to `on_event` (e.g. to log it).
pub async fn connect_options(
    config: &NatsConfig,
    default_name: &str,
    on_event: impl Fn(&Event) + Send + Sync + 'static,
) -> Result<ConnectOptions, ConnectError> {
    let on_event = Arc::new(on_event);
    let mut options = ConnectOptions::new()
        .event_callback(move |event| {
            let on_event = on_event.clone();
            async move {
                denials::record(&event);
                on_event(&event);
            }
        })
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

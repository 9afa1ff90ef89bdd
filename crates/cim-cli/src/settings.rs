//! Where `cim` gets its settings: flags, then environment variables (both
//! via clap), then the TOML configuration file, then defaults. One source of
//! truth per value; `cim config check` validates a file without connecting.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cim_store::StoreConfig;
use cim_wire::NatsConfig;
use serde::{Deserialize, Serialize};

use crate::cli::GlobalArgs;
use crate::exit::usage;

/// The configuration file (`--config`, `CIM_CONFIG`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// The NATS server to use instead of the embedded one: the same `[nats]`
    /// section as every component's (servers, credentials, TLS).
    pub nats: Option<NatsConfig>,
    /// The store: namespace, replicas, limits (`cim_store::StoreConfig`).
    pub store: StoreConfig,
    /// The embedded server, used when no NATS URL is configured.
    pub embedded: EmbeddedConfig,
}

/// `[embedded]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// Data directory (JetStream store, logs, the running server's address).
    pub data_dir: Option<PathBuf>,
    /// The nats-server binary; `CIM_NATS_SERVER` overrides it.
    pub nats_server: Option<PathBuf>,
}

impl FileConfig {
    /// Reads and checks a configuration file: TOML syntax, known keys only,
    /// store values in range, URLs that parse, readable credential files.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
        let config: Self = toml::from_str(&text).map_err(|e| usage(format!("config file {}: {e}", path.display())))?;
        config.validate().map_err(|e| usage(format!("config file {}: {e:#}", path.display())))?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.store.validate()?;
        if let Some(nats) = &self.nats {
            nats.validate(true).map_err(|e| anyhow::anyhow!("[nats] {}: {}", e.key, e.reason))?;
        }
        Ok(())
    }
}

/// Where to find NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A server the operator runs.
    Remote {
        /// The URL(s), comma-separated.
        url: String,
        /// How to reach and authenticate to it.
        nats: Box<NatsConfig>,
    },
    /// The embedded server on the data directory.
    Embedded,
}

/// Everything a store command needs to connect.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where NATS is.
    pub target: Target,
    /// The store's configuration.
    pub store: StoreConfig,
    /// The data directory of the embedded server (also where the demo puts
    /// its CAR by default); `None` only for a remote server when no default
    /// can be found (no `XDG_DATA_HOME` or `HOME`), as for a system service.
    pub data_dir: Option<PathBuf>,
    /// The nats-server binary from `[embedded] nats_server`, if set.
    pub nats_server: Option<PathBuf>,
}

impl Settings {
    /// Combines flags, environment and the configuration file.
    pub fn resolve(global: &GlobalArgs) -> anyhow::Result<Self> {
        let file = match &global.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let mut store = file.store;
        if let Some(namespace) = &global.namespace {
            store.namespace.clone_from(namespace);
            store.validate().map_err(|e| usage(format!("--namespace: {e}")))?;
        }
        let explicit_dir = global.data_dir.clone().or(file.embedded.data_dir);
        let target = match (global.nats.clone(), file.nats) {
            (None, None) => Target::Embedded,
            (flag, section) => {
                let mut nats = section.unwrap_or_default();
                if let Some(url) = flag {
                    parse_urls(&url).map_err(|e| usage(format!("--nats / CIM_NATS_URL: {e:#}")))?;
                    nats.url = url.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect();
                }
                Target::Remote { url: nats.url.join(","), nats: Box::new(nats) }
            }
        };
        let data_dir = match (explicit_dir, &target) {
            (Some(dir), _) => Some(dir),
            (None, Target::Embedded) => Some(default_data_dir()?),
            (None, Target::Remote { .. }) => default_data_dir().ok(),
        };
        Ok(Self { target, store, data_dir, nats_server: file.embedded.nats_server })
    }

    /// The data directory, for the commands that need one whatever the target.
    pub fn data_dir(&self) -> anyhow::Result<&Path> {
        self.data_dir.as_deref().ok_or_else(no_default_data_dir)
    }
}

/// Parses comma-separated server URLs.
pub fn parse_urls(text: &str) -> anyhow::Result<Vec<async_nats::ServerAddr>> {
    let urls: Vec<_> = text
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| url.parse::<async_nats::ServerAddr>().with_context(|| format!("{url:?} is not a NATS URL")))
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(!urls.is_empty(), "no server URL given (expected e.g. nats://127.0.0.1:4222)");
    Ok(urls)
}

/// `$XDG_DATA_HOME/cim`, else `~/.local/share/cim`.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("cim"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or_else(no_default_data_dir)?;
    Ok(PathBuf::from(home).join(".local/share/cim"))
}

fn no_default_data_dir() -> anyhow::Error {
    usage("neither XDG_DATA_HOME nor HOME is set: pass --data-dir or set CIM_DATA_DIR")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses_and_unknown_keys_are_refused() {
        let config: FileConfig = toml::from_str(
            "[nats]\nurl = \"nats://127.0.0.1:4222\"\n[store]\nnamespace = \"ops\"\nreplicas = 3\n\
             [embedded]\ndata_dir = \"/var/lib/cim\"\n",
        )
        .expect("valid config");
        assert_eq!(config.store.namespace, "ops");
        assert_eq!(config.nats.as_ref().map(|n| n.url.clone()), Some(vec!["nats://127.0.0.1:4222".to_owned()]));
        config.validate().expect("valid values");
        let error = toml::from_str::<FileConfig>("[store]\nnamespaec = \"x\"\n").expect_err("typo");
        assert!(error.to_string().contains("namespaec"), "{error}");
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(parse_urls("nats://a:4222, nats://b:4222").expect("two URLs").len(), 2);
        assert!(parse_urls(" , ").is_err());
        assert!(parse_urls("nats://host:notaport").is_err());
    }
}

//! Configuration: one TOML file per component, then `CIM_<SECTION>_<KEY>`
//! environment variables, then command-line flags, each overriding the one
//! before. The file has the shared sections `[nats]`, `[store]`, `[http]`,
//! `[log]`, `[runtime]` and the component's own section; every section
//! refuses unknown keys, and every error names the key (and the file line,
//! environment variable or flag it came from).

mod fields;
mod sections;

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use cim_store::StoreConfig;
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

pub use cim_wire::NatsConfig;
pub use sections::{HttpConfig, LogConfig, LogFormat, RuntimeConfig, check_token};

/// A component's own configuration section, e.g. `[ius]`.
pub trait Settings: DeserializeOwned + Serialize + Default + Clone + fmt::Debug + Send + Sync + 'static {
    /// The section's name in the file and in `CIM_<SECTION>_<KEY>`.
    const SECTION: &'static str;

    /// Checks values beyond their types; the key in the error is relative to the section.
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

/// No settings of its own: for components (and tests) with shared sections only.
impl Settings for () {
    const SECTION: &'static str = "component";
}

/// A value out of range: which key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The key, relative to its section.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl Invalid {
    /// A value of `key` that breaks a rule.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { key: key.into(), reason: reason.into() }
    }
}

/// A `[nats]` key (relative to the section) refused by `cim-wire`.
impl From<cim_wire::InvalidSetting> for Invalid {
    fn from(invalid: cim_wire::InvalidSetting) -> Self {
        Self { key: invalid.key, reason: invalid.reason }
    }
}

/// A component's whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config<S> {
    /// `[nats]`.
    pub nats: NatsConfig,
    /// `[store]`: the event, object and KV stores' configuration.
    pub store: StoreConfig,
    /// `[http]`.
    pub http: HttpConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// `[runtime]`.
    pub runtime: RuntimeConfig,
    /// The component's own section.
    pub component: S,
}

impl<S: Default> Default for Config<S> {
    fn default() -> Self {
        Self {
            nats: NatsConfig::default(),
            store: StoreConfig::default(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            runtime: RuntimeConfig::default(),
            component: S::default(),
        }
    }
}

const SHARED_SECTIONS: [&str; 5] = ["nats", "store", "http", "log", "runtime"];

impl<'de, S: Settings> Deserialize<'de> for Config<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Sections<S>(PhantomData<S>);
        impl<'de, S: Settings> Visitor<'de> for Sections<S> {
            type Value = Config<S>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of configuration sections")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Config<S>, A::Error> {
                let mut config = Config::<S>::default();
                while let Some(section) = map.next_key::<String>()? {
                    match section.as_str() {
                        "nats" => config.nats = map.next_value()?,
                        "store" => config.store = map.next_value()?,
                        "http" => config.http = map.next_value()?,
                        "log" => config.log = map.next_value()?,
                        "runtime" => config.runtime = map.next_value()?,
                        name if name == S::SECTION => config.component = map.next_value()?,
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown section `{other}`, expected one of {}, {}",
                                SHARED_SECTIONS.join(", "),
                                S::SECTION
                            )));
                        }
                    }
                }
                Ok(config)
            }
        }
        deserializer.deserialize_map(Sections(PhantomData))
    }
}

/// A configuration that does not load, named precisely.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: cannot read the configuration file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key is unknown, has the wrong type or the file is not TOML.
    #[error("{origin}: {}{message}", key.as_ref().map(|k| format!("`{k}`: ")).unwrap_or_default())]
    Schema {
        /// Where the value came from: `file:line:column`, an environment variable or a flag.
        origin: String,
        /// The key, `section.key`, when the error is about one.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range, or a file it names cannot be read.
    #[error("{origin}: `{key}` {reason}")]
    Invalid {
        /// Where the value came from.
        origin: String,
        /// The key, `section.key`.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An override is not `section.key=value`.
    #[error("{origin}: {reason}")]
    Override {
        /// The flag or variable.
        origin: String,
        /// What is wrong.
        reason: String,
    },
}

/// One value set outside the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// `section.key`.
    pub key: String,
    /// The value as typed; read as a TOML value (`15`, `true`, `["a"]`) and
    /// otherwise as a string.
    pub value: String,
    /// The variable or flag that set it, for error messages.
    pub origin: String,
}

impl Override {
    /// Parses `section.key=value` given with `--set`.
    pub fn parse_set(text: &str) -> Result<Self, ConfigError> {
        let origin = format!("--set {text}");
        let bad = |reason: &str| ConfigError::Override { origin: origin.clone(), reason: reason.to_owned() };
        let (key, value) = text.split_once('=').ok_or_else(|| bad("expected SECTION.KEY=VALUE"))?;
        if key.split('.').count() != 2 || key.split('.').any(str::is_empty) {
            return Err(bad("the key must be SECTION.KEY, e.g. nats.url"));
        }
        Ok(Self { key: key.to_owned(), value: value.to_owned(), origin })
    }
}

/// Overrides from `CIM_<SECTION>_<KEY>` variables, and warnings for
/// variables under a section prefix that name no key of it (they are
/// ignored: `CIM_NATS_SERVER`, for one, is read by the test tools).
pub fn env_overrides<S: Settings>(vars: impl IntoIterator<Item = (String, String)>) -> (Vec<Override>, Vec<String>) {
    let sections: [(&str, &[&str]); 6] = [
        ("nats", fields::field_names::<NatsConfig>()),
        ("store", fields::field_names::<StoreConfig>()),
        ("http", fields::field_names::<HttpConfig>()),
        ("log", fields::field_names::<LogConfig>()),
        ("runtime", fields::field_names::<RuntimeConfig>()),
        (S::SECTION, fields::field_names::<S>()),
    ];
    let mut overrides = Vec::new();
    let mut warnings = Vec::new();
    for (name, value) in vars {
        for (section, keys) in sections {
            let prefix = format!("CIM_{}_", section.to_ascii_uppercase());
            let Some(key) = name.strip_prefix(&prefix) else { continue };
            let key = key.to_ascii_lowercase();
            if keys.contains(&key.as_str()) {
                overrides.push(Override {
                    key: format!("{section}.{key}"),
                    value: value.clone(),
                    origin: name.clone(),
                });
            } else {
                warnings.push(format!("ignoring {name}: [{section}] has no key `{key}`"));
            }
        }
    }
    overrides.sort_by(|a, b| a.origin.cmp(&b.origin));
    (overrides, warnings)
}

/// What errors name as the origin of a value when there is no file.
pub const NO_FILE: &str = "the defaults (no configuration file)";

/// Loads `path` (without one, every key has its default), applies
/// `overrides` in order, and validates the result. `check_files: false`
/// skips the check that files named by the configuration are readable (for
/// a build-time check, where secrets are not in place yet).
pub fn load<S: Settings>(
    path: Option<&Path>,
    overrides: &[Override],
    check_files: bool,
) -> Result<Config<S>, ConfigError> {
    let (text, origin) = match path {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?,
            path.display().to_string(),
        ),
        None => (String::new(), NO_FILE.to_owned()),
    };
    let from_file: Config<S> = parse_file(&origin, &text)?;
    let config = if overrides.is_empty() { from_file } else { apply_overrides(&origin, &text, overrides)? };
    validate(&config, check_files).map_err(|(key, reason)| {
        let origin = overrides.iter().rev().find(|o| o.key == key).map_or(origin, |o| o.origin.clone());
        ConfigError::Invalid { origin, key, reason }
    })?;
    Ok(config)
}

fn parse_file<S: Settings>(origin: &str, text: &str) -> Result<Config<S>, ConfigError> {
    let deserializer = toml::de::Deserializer::parse(text).map_err(|e| schema_error(origin, text, None, &e))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = Some(e.path().to_string()).filter(|p| p != ".");
        schema_error(origin, text, key, e.inner())
    })
}

fn schema_error(origin: &str, text: &str, key: Option<String>, error: &toml::de::Error) -> ConfigError {
    let origin = match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{origin}:{line}:{column}")
        }
        None => origin.to_owned(),
    };
    ConfigError::Schema { origin, key, message: error.message().trim().to_owned() }
}

/// Applies overrides to the parsed file and deserializes again. A value
/// that reads as TOML but not as the key's type (`instance_id = 42`) is
/// retried as a string.
fn apply_overrides<S: Settings>(origin: &str, text: &str, overrides: &[Override]) -> Result<Config<S>, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| schema_error(origin, text, None, &e))?;
    let mut as_string = vec![false; overrides.len()];
    loop {
        let mut table = table.clone();
        for (index, item) in overrides.iter().enumerate() {
            let (section, key) = item.key.split_once('.').expect("override keys are section.key");
            let value = match item.value.parse::<toml::Value>() {
                Ok(value) if !as_string[index] => value,
                _ => toml::Value::String(item.value.clone()),
            };
            let entry = table.entry(section).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(section_table) = entry else {
                return Err(ConfigError::Schema {
                    origin: origin.to_owned(),
                    key: Some(section.to_owned()),
                    message: "must be a table".to_owned(),
                });
            };
            section_table.insert(key.to_owned(), value);
        }
        match serde_path_to_error::deserialize::<_, Config<S>>(toml::Value::Table(table)) {
            Ok(config) => return Ok(config),
            Err(error) => {
                let key = error.path().to_string();
                let culprit = overrides.iter().rposition(|o| o.key == key);
                match culprit {
                    Some(index)
                        if !as_string[index]
                            && !matches!(
                                overrides[index].value.parse::<toml::Value>(),
                                Err(_) | Ok(toml::Value::String(_))
                            ) =>
                    {
                        as_string[index] = true;
                    }
                    _ => {
                        let origin = culprit.map_or_else(|| origin.to_owned(), |i| overrides[i].origin.clone());
                        return Err(ConfigError::Schema {
                            origin,
                            key: Some(key),
                            message: error.inner().message().trim().to_owned(),
                        });
                    }
                }
            }
        }
    }
}

/// Every range and file check; the error names `section.key`.
fn validate<S: Settings>(config: &Config<S>, check_files: bool) -> Result<(), (String, String)> {
    fn prefixed(section: &str) -> impl Fn(Invalid) -> (String, String) + '_ {
        move |e| (format!("{section}.{}", e.key), e.reason)
    }
    config.nats.validate(check_files).map_err(|e| prefixed("nats")(e.into()))?;
    config.http.address().map_err(prefixed("http"))?;
    config.log.validate().map_err(prefixed("log"))?;
    config.runtime.validate().map_err(prefixed("runtime"))?;
    config.store.validate().map_err(store_error)?;
    config.component.validate().map_err(prefixed(S::SECTION))?;
    Ok(())
}

/// Names the `[store]` key the store's validation refused.
fn store_error(error: cim_store::Error) -> (String, String) {
    match error {
        cim_store::Error::Config { field, reason } => (format!("store.{field}"), reason),
        other => ("store".to_owned(), other.to_string()),
    }
}

#[cfg(test)]
mod tests;

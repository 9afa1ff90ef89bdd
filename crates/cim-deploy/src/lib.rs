//! `components.toml` (the repository root), the one description of every CIM
//! component, and what follows from it outside Nix:
//!
//! - [`Deployment`]: the components, checked as strictly as the Nix reader
//!   (`modules/lib/components.nix`) checks them;
//! - [`Deployment::users`]: each NATS user (the admin and one per component)
//!   with its permissions for a store namespace, by the same rules the
//!   NixOS host module applies (`[permissions]`: subject templates that both
//!   only substitute and concatenate). A test compares them with the users
//!   the modules render, `nix/eval/rendered/nats-base.json`;
//! - [`Component::config`]: a component's configuration file, as its NixOS
//!   module renders it;
//! - [`nats_config`]: the users' passwords added to a server configuration
//!   as bcrypt hashes (the host module's `cim nats-config`, and `cim up`);
//! - [`Deployment::buckets`]: the components' KV buckets with their
//!   configuration (`[buckets.<name>]`), and, with the feature `provision`,
//!   `provision::provision`: the store's stream and buckets and every
//!   component's bucket created or adapted as the admin (`cim provision`,
//!   `cim up`); components only attach to them.
//!
//! ```
//! let deployment = cim_deploy::Deployment::embedded()?;
//! let users = deployment.users("cim")?;
//! let ius = users.iter().find(|u| u.user == "ius").unwrap();
//! assert!(ius.permissions.subscribe.contains(&"_INBOX_ius.>".to_owned()));
//! # Ok::<(), cim_deploy::Error>(())
//! ```

pub mod nats_config;
#[cfg(feature = "provision")]
pub mod provision;
mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use nats_config::{BCRYPT_COST, hash_password, hash_passwords, read_password};

/// The repository's `components.toml`, as built into this crate.
pub const COMPONENTS_TOML: &str = include_str!("../../../components.toml");

/// What can go wrong reading `components.toml` or rendering from it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not TOML, or not the expected keys and types.
    #[error("components.toml: {0}")]
    Toml(#[from] toml::de::Error),
    /// Well-formed but inconsistent (duplicate ports, bad names, unknown placeholders).
    #[error("components.toml: {0}")]
    Invalid(String),
    /// A store namespace that cim-store would refuse.
    #[error("namespace `{0}` is not 1-32 of [a-z0-9_-] starting with [a-z0-9]")]
    Namespace(String),
    /// A password file cannot be read.
    #[error("cannot read the password file {path}: {source}")]
    PasswordFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A password that NATS would not take.
    #[error("{0}")]
    Password(String),
    /// A NATS server configuration not shaped as expected.
    #[error("NATS configuration: {0}")]
    NatsConfig(String),
    /// bcrypt failed.
    #[error("bcrypt: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
}

/// A store a component reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    /// The event stream.
    Events,
    /// The object store.
    Objects,
    /// The named objects (KV).
    Names,
}

impl Store {
    fn key(self) -> &'static str {
        match self {
            Store::Events => "events",
            Store::Objects => "objects",
            Store::Names => "names",
        }
    }
}

/// One component, `[components.<name>]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// The table's key: `services.cim.<name>`, container `cim-<name>`.
    #[serde(skip_deserializing)]
    pub name: String,
    /// Human name.
    pub title: String,
    /// Cargo package = binary = micro service = systemd unit.
    pub package: String,
    /// The crate other components and the CLI depend on.
    pub api: String,
    /// NATS user; reply inboxes on `_INBOX_<user>`.
    pub user: String,
    /// `[http] listen` port (metrics, health).
    pub http_port: u16,
    /// Its nixos-container's address.
    pub address: Ipv4Addr,
    /// Subject prefix of the requests it serves.
    pub service: String,
    /// Aggregate types it appends to the event stream.
    pub aggregates: Vec<String>,
    /// KV buckets it owns: `<namespace>-<bucket>`.
    pub buckets: Vec<String>,
    /// Stores it reads.
    pub reads: Vec<Store>,
    /// Whether it puts objects into the object store.
    pub writes_objects: bool,
    /// Whether it may purge the event stream (retention: the Storage
    /// Manager only).
    pub purges_events: bool,
    /// Subjects of other services it requests.
    pub calls: Vec<String>,
    /// Whether it reads the event stream through durable consumers, whose
    /// deliveries it acknowledges (optional, default false).
    #[serde(default)]
    pub durable_consumers: bool,
}

/// Where a component's configuration file sends it (the rest comes from
/// `components.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigTarget<'a> {
    /// NATS server URL.
    pub nats_url: &'a str,
    /// The file with the component user's NATS password.
    pub password_file: &'a str,
    /// The store namespace.
    pub namespace: &'a str,
    /// `[http] listen`; `None`: `127.0.0.1:<http_port>`, as the module's default.
    pub http_listen: Option<&'a str>,
}

impl Component {
    /// The component's configuration, as its NixOS module renders it from
    /// its defaults (`services.cim.<name>.settings`): `[nats]` url, user,
    /// inbox prefix and password file, `[store]` namespace, `[http]` listen.
    pub fn config(&self, target: &ConfigTarget<'_>) -> toml::Table {
        let listen = target.http_listen.map_or_else(|| format!("127.0.0.1:{}", self.http_port), str::to_owned);
        let mut nats = toml::Table::new();
        nats.insert("url".into(), target.nats_url.into());
        nats.insert("user".into(), self.user.as_str().into());
        nats.insert("inbox_prefix".into(), self.inbox_prefix().into());
        nats.insert("password_file".into(), target.password_file.into());
        let mut store = toml::Table::new();
        store.insert("namespace".into(), target.namespace.into());
        let mut http = toml::Table::new();
        http.insert("listen".into(), listen.into());
        let mut config = toml::Table::new();
        config.insert("nats".into(), nats.into());
        config.insert("store".into(), store.into());
        config.insert("http".into(), http.into());
        config
    }

    /// The prefix of its reply inboxes, `_INBOX_<user>`: the only one its
    /// NATS user may subscribe to.
    pub fn inbox_prefix(&self) -> String {
        format!("_INBOX_{}", self.user)
    }
}

/// A component's KV bucket, `[buckets.<name>]`: what provisioning creates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// The table's key; the bucket is `<namespace>-<name>`.
    #[serde(skip_deserializing)]
    pub name: String,
    /// The component that lists it in its `buckets`.
    #[serde(skip_deserializing)]
    pub owner: String,
    /// What it holds, for operators.
    pub description: String,
    /// Revisions kept per key (1–64).
    pub history: i64,
    /// Every entry expires this long after its last write; 0: never.
    pub ttl_secs: u64,
    /// Writers may give each write its own TTL, and a removal by TTL leaves
    /// a marker kept this long; 0: no TTL per write.
    pub per_key_ttl_markers_secs: u64,
}

impl Bucket {
    /// The bucket's full name for `namespace`, `<namespace>-<name>`.
    pub fn bucket(&self, namespace: &str) -> String {
        format!("{namespace}-{}", self.name)
    }
}

/// Bucket names the store uses for itself (`<namespace>-objects`, `<namespace>-names`).
const STORE_BUCKETS: [&str; 2] = ["objects", "names"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    components: BTreeMap<String, Component>,
    #[serde(default)]
    buckets: BTreeMap<String, Bucket>,
    stores: Stores,
    permissions: PermissionRules,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stores {
    events: String,
    objects: String,
    names: String,
}

impl Stores {
    fn template(&self, store: Store) -> &str {
        match store {
            Store::Events => &self.events,
            Store::Objects => &self.objects,
            Store::Names => &self.names,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionRules {
    admin: AdminRules,
    component: ComponentRules,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminRules {
    user: String,
    #[serde(default = "yes")]
    allow_responses: bool,
    #[serde(default)]
    publish: Vec<Rule>,
    #[serde(default)]
    subscribe: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentRules {
    #[serde(default = "yes")]
    allow_responses: bool,
    #[serde(default)]
    publish: Vec<Rule>,
    #[serde(default)]
    publish_deny: Vec<Rule>,
    #[serde(default)]
    subscribe: Vec<Rule>,
}

fn yes() -> bool {
    true
}

/// One rule: subject templates, expanded per item of `each`, only `when`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    subjects: Vec<String>,
    each: Option<Each>,
    when: Option<When>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Each {
    Aggregates,
    Buckets,
    Calls,
    Reads,
    OtherAggregates,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum When {
    WritesObjects,
    DurableConsumers,
    PurgesEvents,
}

/// A NATS user and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NatsUser {
    /// The user name.
    pub user: String,
    /// Its permissions.
    pub permissions: Permissions,
}

/// Subjects a user may publish and subscribe to; an empty list allows nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permissions {
    /// Subjects it may publish to.
    pub publish: Vec<String>,
    /// Subjects it may not publish to, even where `publish` allows them
    /// (NATS: a deny wins over an allow).
    pub publish_deny: Vec<String>,
    /// Subjects it may subscribe to.
    pub subscribe: Vec<String>,
    /// Whether it may reply to the requests it receives.
    pub allow_responses: bool,
}

impl NatsUser {
    /// The user as the host module writes it into the server configuration
    /// (without password). NATS reads an empty allow list as no restriction,
    /// so an empty list becomes `deny: [">"]`.
    pub fn to_nats_json(&self) -> Value {
        let list = |subjects: &[String]| {
            if subjects.is_empty() { json!({ "deny": [">"] }) } else { json!({ "allow": subjects }) }
        };
        let mut publish = list(&self.permissions.publish);
        if !self.permissions.publish.is_empty() && !self.permissions.publish_deny.is_empty() {
            publish["deny"] = json!(self.permissions.publish_deny);
        }
        json!({
            "user": self.user,
            "permissions": {
                "publish": publish,
                "subscribe": list(&self.permissions.subscribe),
                "allow_responses": self.permissions.allow_responses,
            }
        })
    }
}

/// `components.toml`, parsed and checked.
#[derive(Debug, Clone)]
pub struct Deployment {
    components: BTreeMap<String, Component>,
    buckets: BTreeMap<String, Bucket>,
    stores: Stores,
    rules: PermissionRules,
}

impl Deployment {
    /// The repository's `components.toml` ([`COMPONENTS_TOML`]).
    pub fn embedded() -> Result<Self, Error> {
        Self::parse(COMPONENTS_TOML)
    }

    /// Parses and checks a `components.toml`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let file: File = toml::from_str(text)?;
        let mut components = file.components;
        for (name, component) in &mut components {
            let mut chars = name.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            if !valid {
                return Err(Error::Invalid(format!("component `{name}`: a name is [a-z0-9], starting with a letter")));
            }
            component.name = name.clone();
        }
        let buckets = owned_buckets(&components, file.buckets)?;
        let deployment = Deployment { components, buckets, stores: file.stores, rules: file.permissions };
        deployment.check_unique()?;
        // Every template must expand, for every component.
        deployment.users("cim")?;
        Ok(deployment)
    }

    fn check_unique(&self) -> Result<(), Error> {
        type Key = fn(&Component) -> String;
        let keys: [(&str, Key); 5] = [
            ("package", |c| c.package.clone()),
            ("user", |c| c.user.clone()),
            ("http_port", |c| c.http_port.to_string()),
            ("address", |c| c.address.to_string()),
            ("service", |c| c.service.clone()),
        ];
        for (key, value) in keys {
            let mut seen = BTreeSet::new();
            for component in self.components.values() {
                let v = value(component);
                if !seen.insert(v.clone()) {
                    return Err(Error::Invalid(format!("two components have the same {key}: {v}")));
                }
            }
        }
        if let Some(c) = self.components.values().find(|c| c.user == self.rules.admin.user) {
            return Err(Error::Invalid(format!(
                "component `{}`: its user is the admin's, `{}`",
                c.name, self.rules.admin.user
            )));
        }
        Ok(())
    }

    /// The components by name.
    pub fn components(&self) -> &BTreeMap<String, Component> {
        &self.components
    }

    /// One component by name.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.get(name)
    }

    /// The components' KV buckets by name, each with its owner
    /// (`[buckets.<name>]`): what provisioning creates besides the store's
    /// stream and buckets.
    pub fn buckets(&self) -> &BTreeMap<String, Bucket> {
        &self.buckets
    }

    /// The admin user's name (the operator's CLI and provisioning).
    pub fn admin_user(&self) -> &str {
        &self.rules.admin.user
    }

    /// The stream of each store, for `namespace` (`[stores]`).
    pub fn streams(&self, namespace: &str) -> Result<BTreeMap<Store, String>, Error> {
        let vars = namespace_vars(namespace)?;
        [Store::Events, Store::Objects, Store::Names]
            .into_iter()
            .map(|store| {
                let where_ = format!("[stores] {}", store.key());
                Ok((store, template::render(&where_, &vars, self.stores.template(store))?))
            })
            .collect()
    }

    /// Every NATS user with its permissions for `namespace`: the admin and
    /// one per component, sorted by user name (as the host module lists them).
    pub fn users(&self, namespace: &str) -> Result<Vec<NatsUser>, Error> {
        let base = namespace_vars(namespace)?;
        let streams = self.streams(namespace)?;
        let admin = &self.rules.admin;
        let mut users = vec![NatsUser {
            user: admin.user.clone(),
            permissions: Permissions {
                publish: expand_all("admin", "publish", &admin.publish, &base, None, &[], &streams)?,
                publish_deny: vec![],
                subscribe: expand_all("admin", "subscribe", &admin.subscribe, &base, None, &[], &streams)?,
                allow_responses: admin.allow_responses,
            },
        }];
        let rules = &self.rules.component;
        for component in self.components.values() {
            let mut vars = base.clone();
            vars.insert("name", component.name.clone());
            vars.insert("user", component.user.clone());
            vars.insert("package", component.package.clone());
            vars.insert("service", component.service.clone());
            let c = Some(component);
            // The aggregate types the other components own: their literal
            // ones (a wildcard type, as the hub's `*`, is nobody's own).
            let others: Vec<String> = self
                .components
                .values()
                .filter(|o| o.name != component.name)
                .flat_map(|o| o.aggregates.iter().filter(|a| !a.contains(['*', '>'])).cloned())
                .collect();
            let o = others.as_slice();
            users.push(NatsUser {
                user: component.user.clone(),
                permissions: Permissions {
                    publish: expand_all("component", "publish", &rules.publish, &vars, c, o, &streams)?,
                    publish_deny: expand_all("component", "publish_deny", &rules.publish_deny, &vars, c, o, &streams)?,
                    subscribe: expand_all("component", "subscribe", &rules.subscribe, &vars, c, o, &streams)?,
                    allow_responses: rules.allow_responses,
                },
            });
        }
        users.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(users)
    }

    /// [`users`](Self::users) as the host module writes them into the NATS
    /// configuration (`accounts.<account>.users`, without passwords).
    pub fn nats_users(&self, namespace: &str) -> Result<Vec<Value>, Error> {
        Ok(self.users(namespace)?.iter().map(NatsUser::to_nats_json).collect())
    }
}

/// The `[buckets]` tables, each given its owner: every bucket a component
/// lists has one, and each table belongs to exactly one component.
fn owned_buckets(
    components: &BTreeMap<String, Component>,
    mut tables: BTreeMap<String, Bucket>,
) -> Result<BTreeMap<String, Bucket>, Error> {
    let mut owned = BTreeMap::new();
    for component in components.values() {
        for name in &component.buckets {
            let mut chars = name.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !valid {
                return Err(Error::Invalid(format!(
                    "component `{}`: bucket `{name}` is not [a-z0-9_-] starting with a letter",
                    component.name
                )));
            }
            if STORE_BUCKETS.contains(&name.as_str()) {
                return Err(Error::Invalid(format!(
                    "component `{}`: bucket `{name}` is the store's own (`<namespace>-{name}`)",
                    component.name
                )));
            }
            if let Some(other) = owned.get(name).map(|b: &Bucket| b.owner.clone()) {
                return Err(Error::Invalid(format!(
                    "bucket `{name}` is listed by two components, `{other}` and `{}`",
                    component.name
                )));
            }
            let Some(mut bucket) = tables.remove(name) else {
                return Err(Error::Invalid(format!(
                    "component `{}` lists bucket `{name}`, which has no [buckets.{name}] table",
                    component.name
                )));
            };
            if !(1..=64).contains(&bucket.history) {
                return Err(Error::Invalid(format!("[buckets.{name}] history must be 1-64, not {}", bucket.history)));
            }
            bucket.name = name.clone();
            bucket.owner = component.name.clone();
            owned.insert(name.clone(), bucket);
        }
    }
    if let Some(name) = tables.keys().next() {
        return Err(Error::Invalid(format!("[buckets.{name}] belongs to no component (none lists it in `buckets`)")));
    }
    Ok(owned)
}

/// `{namespace}` and `{NAMESPACE}` (upper case, `-` as `_`: stream names).
fn namespace_vars(namespace: &str) -> Result<BTreeMap<&'static str, String>, Error> {
    let mut chars = namespace.chars();
    let valid = namespace.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid {
        return Err(Error::Namespace(namespace.to_owned()));
    }
    Ok(BTreeMap::from([("namespace", namespace.to_owned()), ("NAMESPACE", namespace.replace('-', "_").to_uppercase())]))
}

fn expand_all(
    who: &str,
    direction: &str,
    rules: &[Rule],
    vars: &BTreeMap<&'static str, String>,
    component: Option<&Component>,
    other_aggregates: &[String],
    streams: &BTreeMap<Store, String>,
) -> Result<Vec<String>, Error> {
    let where_ = format!("[[permissions.{who}.{direction}]]");
    let mut subjects = Vec::new();
    for rule in rules {
        let need = |what: &str| Error::Invalid(format!("{where_}: `{what}` needs a component"));
        if let Some(when) = rule.when {
            let component = component.ok_or_else(|| need("when"))?;
            let enabled = match when {
                When::WritesObjects => component.writes_objects,
                When::DurableConsumers => component.durable_consumers,
                When::PurgesEvents => component.purges_events,
            };
            if !enabled {
                continue;
            }
        }
        let items: Vec<BTreeMap<&'static str, String>> = match rule.each {
            None => vec![BTreeMap::new()],
            Some(each) => {
                let component = component.ok_or_else(|| need("each"))?;
                let one = |key: &'static str, values: &[String]| -> Vec<BTreeMap<&'static str, String>> {
                    values.iter().map(|v| BTreeMap::from([(key, v.clone())])).collect()
                };
                match each {
                    Each::Aggregates => one("aggregate", &component.aggregates),
                    Each::OtherAggregates => one("aggregate", other_aggregates),
                    Each::Buckets => one("bucket", &component.buckets),
                    Each::Calls => one("call", &component.calls),
                    Each::Reads => component
                        .reads
                        .iter()
                        .map(|store| {
                            BTreeMap::from([("store", store.key().to_owned()), ("stream", streams[store].clone())])
                        })
                        .collect(),
                }
            }
        };
        for item in items {
            let mut vars = vars.clone();
            vars.extend(item);
            for subject in &rule.subjects {
                subjects.push(template::render(&where_, &vars, subject)?);
            }
        }
    }
    Ok(subjects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(replace: &str, by: &str) -> Result<Deployment, Error> {
        assert!(COMPONENTS_TOML.contains(replace), "components.toml has no `{replace}`");
        Deployment::parse(&COMPONENTS_TOML.replacen(replace, by, 1))
    }

    #[test]
    fn the_embedded_file_is_valid() -> Result<(), Error> {
        let deployment = Deployment::embedded()?;
        assert!(deployment.component("registry").is_some() && deployment.component("ius").is_some());
        assert_eq!(deployment.admin_user(), "admin");
        Ok(())
    }

    #[test]
    fn registration_is_pinned_to_the_components_own_name() -> Result<(), Error> {
        let users = Deployment::embedded()?.users("cim")?;
        let ius = users.iter().find(|u| u.user == "ius").expect("ius");
        let publish = &ius.permissions.publish;
        assert!(publish.contains(&"cim.service.registry.components.register.cim-ius".to_owned()));
        assert!(publish.contains(&"cim.service.registry.components.deregister.cim-ius".to_owned()));
        assert!(!publish.iter().any(|s| s.contains("cim-registry") || s.ends_with("components.register")));
        Ok(())
    }

    #[test]
    fn namespaces_name_streams_like_cim_store() -> Result<(), Error> {
        let streams = Deployment::embedded()?.streams("my-org")?;
        assert_eq!(streams[&Store::Events], "MY_ORG_EVENTS");
        assert_eq!(streams[&Store::Objects], "OBJ_my-org-objects");
        assert_eq!(streams[&Store::Names], "KV_my-org-names");
        assert!(matches!(Deployment::embedded()?.users("No Namespace"), Err(Error::Namespace(_))));
        Ok(())
    }

    #[test]
    fn unknown_keys_and_placeholders_are_refused() {
        let err = with("writes_objects = false", "writes_objects = false\nport = 1").unwrap_err();
        assert!(err.to_string().contains("unknown field `port`"), "{err}");
        let err = with("\"_INBOX_{user}.>\"", "\"_INBOX_{usr}.>\"").unwrap_err();
        assert!(err.to_string().contains("unknown placeholder in `_INBOX_{usr}.>`"), "{err}");
        let err = with("each = \"calls\"\nsubjects", "each = \"friends\"\nsubjects").unwrap_err();
        assert!(err.to_string().contains("unknown variant `friends`"), "{err}");
    }

    #[test]
    fn duplicates_and_bad_names_are_refused() {
        let err = with("http_port = 9102", "http_port = 9101").unwrap_err();
        assert!(err.to_string().contains("two components have the same http_port: 9101"), "{err}");
        let err = with("[components.ius]", "[components.Ius]").unwrap_err();
        assert!(err.to_string().contains("component `Ius`: a name is"), "{err}");
        let err = with("user = \"ius\"", "user = \"admin\"").unwrap_err();
        assert!(err.to_string().contains("its user is the admin's"), "{err}");
    }

    #[test]
    fn every_bucket_has_its_configuration_and_one_owner() -> Result<(), Error> {
        let deployment = Deployment::embedded()?;
        let components = &deployment.buckets()["components"];
        assert_eq!((components.owner.as_str(), components.history), ("registry", 1));
        assert!(components.per_key_ttl_markers_secs > 0, "liveness needs a TTL per heartbeat");
        assert_eq!(components.bucket("my-org"), "my-org-components");

        let err = with("buckets = []", "buckets = [\"units\"]").unwrap_err();
        assert!(err.to_string().contains("lists bucket `units`, which has no [buckets.units] table"), "{err}");
        let err = with("buckets = []", "buckets = [\"components\"]").unwrap_err();
        assert!(err.to_string().contains("listed by two components"), "{err}");
        let err = with("buckets = [\"components\"]", "buckets = []").unwrap_err();
        assert!(err.to_string().contains("[buckets.components] belongs to no component"), "{err}");
        let err = with("buckets = []", "buckets = [\"names\"]").unwrap_err();
        assert!(err.to_string().contains("the store's own"), "{err}");
        let err = with("history = 1\n", "history = 0\n").unwrap_err();
        assert!(err.to_string().contains("history must be 1-64"), "{err}");
        let err = with("per_key_ttl_markers_secs = 60", "per_key_ttl_markers_secs = 60\nmax_age = 1").unwrap_err();
        assert!(err.to_string().contains("unknown field `max_age`"), "{err}");
        Ok(())
    }

    #[test]
    fn an_empty_list_allows_nothing() {
        let user = NatsUser {
            user: "quiet".into(),
            permissions: Permissions {
                publish: vec![],
                publish_deny: vec![],
                subscribe: vec!["a".into()],
                allow_responses: false,
            },
        };
        let json = user.to_nats_json();
        assert_eq!(json["permissions"]["publish"], json!({ "deny": [">"] }));
        assert_eq!(json["permissions"]["subscribe"], json!({ "allow": ["a"] }));
    }

    #[test]
    fn rules_expand_per_item_and_only_when_enabled() -> Result<(), Error> {
        let deployment = with(
            "writes_objects = false\npurges_events = false\ncalls = []",
            "writes_objects = true\npurges_events = false\ncalls = []",
        )?;
        let users = deployment.users("cim")?;
        let registry = users.iter().find(|u| u.user == "registry").expect("registry");
        assert!(registry.permissions.publish.contains(&"$O.cim-objects.>".to_owned()));
        let ius = users.iter().find(|u| u.user == "ius").expect("ius");
        assert!(!ius.permissions.publish.contains(&"$O.cim-objects.>".to_owned()));
        // Per stream, all its subjects together: INFO of events, ..., then INFO of objects.
        let infos: Vec<usize> = ["$JS.API.STREAM.INFO.CIM_EVENTS", "$JS.API.STREAM.INFO.OBJ_cim-objects"]
            .iter()
            .map(|s| ius.permissions.publish.iter().position(|p| p == s).expect(s))
            .collect();
        assert_eq!(infos[1] - infos[0], 8);
        Ok(())
    }

    /// A component allowed any aggregate type (the hub's `*`) is still
    /// denied the other components' own types; the others are denied
    /// nothing by the wildcard, which is nobody's own type.
    #[test]
    fn other_components_aggregates_are_denied() -> Result<(), Error> {
        let users = Deployment::embedded()?.users("cim")?;
        let user = |name: &str| users.iter().find(|u| u.user == name).expect(name).clone();
        let hub = user("hub");
        assert!(hub.permissions.publish.contains(&"cim.events.*.>".to_owned()));
        for denied in ["cim.events.unit.>", "cim.events.schema.>"] {
            assert!(hub.permissions.publish_deny.contains(&denied.to_owned()), "{denied}: {hub:?}");
        }
        assert_eq!(hub.to_nats_json()["permissions"]["publish"]["deny"], json!(hub.permissions.publish_deny));
        let ius = user("ius");
        assert!(ius.permissions.publish_deny.contains(&"cim.events.schema.>".to_owned()));
        assert!(!ius.permissions.publish_deny.iter().any(|s| s.contains('*') || s.contains(".unit.")), "{ius:?}");
        assert!(user("admin").to_nats_json()["permissions"]["publish"].get("deny").is_none());
        Ok(())
    }

    #[test]
    fn only_the_storage_manager_purges_events() -> Result<(), Error> {
        let users = Deployment::embedded()?.users("cim")?;
        let purgers: Vec<&str> = users
            .iter()
            .filter(|u| u.permissions.publish.iter().any(|s| s == "$JS.API.STREAM.PURGE.CIM_EVENTS" || s == ">"))
            .map(|u| u.user.as_str())
            .collect();
        assert_eq!(purgers, ["admin", "storage"]);
        Ok(())
    }
}

//! The schema registry: JSON Schemas per type and version, kept in the
//! event store.
//!
//! Each type is an aggregate `schema/<type>`; each version is one
//! `SchemaVersionRegistered` event, its version the event's version. The
//! event store rather than a KV bucket, because it keeps every version for
//! ever (KV history stops at 64 revisions), CID-chains them so the history
//! is verifiable like any other, and lets the server decide which of two
//! concurrent registrations becomes version N. Versions never change once
//! stored, so parsed schemas and compiled validators are cached for the
//! life of the process.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cim_registry_api::{Registered, SchemaType, SchemaVersion, ValidationReport, Violation};
use cim_store::{AggregateKey, AggregateQuery, EventStore, ExpectedVersion, Ipld, NewEvent, StoredEvent, Timestamp};
use serde_json::Value;

use crate::compat;
use crate::error::{Error, Result};

/// Aggregate type of schema histories.
pub const SCHEMA_AGGREGATE: &str = "schema";
/// Event type of a registered version.
pub const SCHEMA_REGISTERED: &str = "SchemaVersionRegistered";
/// Longest type name.
pub const MAX_TYPE_LEN: usize = 100;

/// A stored version with its compiled validator.
struct Compiled {
    version: SchemaVersion,
    validator: jsonschema::Validator,
}

/// Compiled versions by (type, version).
type Cache = Arc<RwLock<HashMap<(String, u64), Arc<Compiled>>>>;

/// The schema registry. Cheap to clone.
#[derive(Clone)]
pub struct SchemaRegistry {
    store: EventStore,
    max_schema_bytes: usize,
    cache: Cache,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry").field("max_schema_bytes", &self.max_schema_bytes).finish_non_exhaustive()
    }
}

/// Checks a schema type name: `[A-Za-z0-9_:-]`, 1–100 bytes.
pub fn check_type_name(name: &str) -> Result<AggregateKey> {
    let valid = !name.is_empty()
        && name.len() <= MAX_TYPE_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'));
    if !valid {
        return Err(Error::InvalidName {
            what: "schema type",
            value: name.to_owned(),
            reason: format!("must be 1-{MAX_TYPE_LEN} bytes of [A-Za-z0-9_:-]"),
        });
    }
    AggregateKey::new(SCHEMA_AGGREGATE, name).map_err(|e| Error::InvalidName {
        what: "schema type",
        value: name.to_owned(),
        reason: e.to_string(),
    })
}

fn compile(schema: &Value) -> Result<jsonschema::Validator> {
    jsonschema::meta::validate(schema).map_err(|e| Error::InvalidSchema {
        reason: format!("{e} (at {})", pointer_or_root(e.instance_path().as_str())),
    })?;
    jsonschema::validator_for(schema).map_err(|e| Error::InvalidSchema { reason: e.to_string() })
}

fn pointer_or_root(pointer: &str) -> &str {
    if pointer.is_empty() { "the root" } else { pointer }
}

impl SchemaRegistry {
    /// A registry on `store`, refusing schemas larger than `max_schema_bytes` as JSON.
    pub fn new(store: EventStore, max_schema_bytes: usize) -> Self {
        Self { store, max_schema_bytes, cache: Arc::default() }
    }

    /// Registers `schema` as the next version of `type_name`, if it is a
    /// valid JSON Schema compatible with the latest version. Registering
    /// the latest version's schema again changes nothing.
    pub async fn register(
        &self,
        type_name: &str,
        schema: Value,
        description: Option<String>,
        expected: Option<u64>,
    ) -> Result<Registered> {
        let key = check_type_name(type_name)?;
        let text = serde_json::to_string(&schema).map_err(|e| Error::InvalidSchema { reason: e.to_string() })?;
        if text.len() > self.max_schema_bytes {
            return Err(Error::SchemaTooLarge { size: text.len(), limit: self.max_schema_bytes });
        }
        let validator = compile(&schema)?;
        let current = self.latest_version(&key).await?;
        if let Some(expected) = expected
            && expected != current
        {
            return Err(Error::VersionConflict { type_name: type_name.to_owned(), expected, current });
        }
        if current > 0 {
            let latest = self.version(type_name, Some(current)).await?;
            if latest.version.schema == schema {
                return Ok(Registered { schema: latest.version.clone(), unchanged: true });
            }
            let violations = compat::check(&latest.version.schema, &schema);
            if !violations.is_empty() {
                return Err(Error::Incompatible {
                    type_name: type_name.to_owned(),
                    version: current + 1,
                    previous: current,
                    violations,
                });
            }
        }
        let mut payload = std::collections::BTreeMap::from([
            ("type".to_owned(), Ipld::String(type_name.to_owned())),
            ("schema_json".to_owned(), Ipld::String(text)),
        ]);
        if let Some(description) = &description {
            payload.insert("description".to_owned(), Ipld::String(description.clone()));
        }
        let registered_at = Timestamp::now();
        let event = NewEvent::new(SCHEMA_REGISTERED, Ipld::Map(payload)).with_timestamp(registered_at);
        let appended = match self.store.append(&key, ExpectedVersion::Exact(current), vec![event]).await {
            Ok(appended) => appended,
            Err(cim_store::Error::ConcurrencyConflict { actual, .. }) => {
                return Err(Error::VersionConflict {
                    type_name: type_name.to_owned(),
                    expected: current,
                    current: actual,
                });
            }
            Err(other) => return Err(other.into()),
        };
        let version = SchemaVersion {
            type_name: type_name.to_owned(),
            version: appended.version(),
            schema,
            description,
            cid: appended.last_cid().to_string(),
            registered_at: registered_at.to_string(),
        };
        self.cache.write().expect("schema cache lock").insert(
            (type_name.to_owned(), version.version),
            Arc::new(Compiled { version: version.clone(), validator }),
        );
        Ok(Registered { schema: version, unchanged: false })
    }

    /// The latest version of a type, 0 when it has none.
    async fn latest_version(&self, key: &AggregateKey) -> Result<u64> {
        Ok(self.store.head(key).await?.map_or(0, |(version, _)| version))
    }

    /// One version (the latest when `version` is `None`).
    async fn version(&self, type_name: &str, version: Option<u64>) -> Result<Arc<Compiled>> {
        let key = check_type_name(type_name)?;
        let version = match version {
            Some(version) => version,
            None => match self.latest_version(&key).await? {
                0 => return Err(Error::UnknownSchema { type_name: type_name.to_owned() }),
                latest => latest,
            },
        };
        if let Some(hit) = self.cache.read().expect("schema cache lock").get(&(type_name.to_owned(), version)) {
            return Ok(hit.clone());
        }
        let events = self
            .store
            .read_aggregate(&key, AggregateQuery { from_version: version, to_version: Some(version), as_of: None })
            .await?;
        match events.first() {
            Some(stored) if version > 0 => self.remember(type_name, stored),
            _ => {
                let latest = self.latest_version(&key).await?;
                if latest == 0 {
                    Err(Error::UnknownSchema { type_name: type_name.to_owned() })
                } else {
                    Err(Error::UnknownVersion { type_name: type_name.to_owned(), version, latest })
                }
            }
        }
    }

    fn remember(&self, type_name: &str, stored: &StoredEvent) -> Result<Arc<Compiled>> {
        let version = decode(type_name, stored)?;
        let validator = compile(&version.schema).map_err(|e| Error::Corrupt {
            type_name: type_name.to_owned(),
            version: version.version,
            reason: e.to_string(),
        })?;
        let compiled = Arc::new(Compiled { version, validator });
        self.cache
            .write()
            .expect("schema cache lock")
            .insert((type_name.to_owned(), compiled.version.version), compiled.clone());
        Ok(compiled)
    }

    /// One version of a type (the latest when `version` is `None`).
    pub async fn get(&self, type_name: &str, version: Option<u64>) -> Result<SchemaVersion> {
        Ok(self.version(type_name, version).await?.version.clone())
    }

    /// Every version of a type, oldest first.
    pub async fn history(&self, type_name: &str) -> Result<Vec<SchemaVersion>> {
        let key = check_type_name(type_name)?;
        let events = self.store.read_aggregate(&key, AggregateQuery::all()).await?;
        if events.is_empty() {
            return Err(Error::UnknownSchema { type_name: type_name.to_owned() });
        }
        events.iter().map(|stored| decode(type_name, stored)).collect()
    }

    /// Every type (starting with `prefix`) and its latest version, sorted.
    pub async fn list(&self, prefix: Option<&str>) -> Result<Vec<SchemaType>> {
        // One event per schema version, so an aggregate's event count is its latest version.
        let mut types: Vec<SchemaType> = self
            .store
            .aggregates(SCHEMA_AGGREGATE)
            .await?
            .into_iter()
            .filter(|(key, _)| prefix.is_none_or(|p| key.aggregate_id().starts_with(p)))
            .map(|(key, versions)| SchemaType { type_name: key.aggregate_id().to_owned(), latest_version: versions })
            .collect();
        types.sort_by(|a, b| a.type_name.cmp(&b.type_name));
        Ok(types)
    }

    /// Validates `instance` against a version of a type (the latest when
    /// `version` is `None`); every violation names its JSON pointer.
    pub async fn validate(&self, type_name: &str, version: Option<u64>, instance: &Value) -> Result<ValidationReport> {
        let compiled = self.version(type_name, version).await?;
        let errors: Vec<Violation> = compiled
            .validator
            .iter_errors(instance)
            .map(|e| Violation {
                pointer: e.instance_path().as_str().to_owned(),
                schema_pointer: e.schema_path().as_str().to_owned(),
                message: e.to_string(),
            })
            .collect();
        Ok(ValidationReport {
            type_name: type_name.to_owned(),
            version: compiled.version.version,
            valid: errors.is_empty(),
            errors,
        })
    }
}

/// Reads a `SchemaVersionRegistered` event back.
fn decode(type_name: &str, stored: &StoredEvent) -> Result<SchemaVersion> {
    let envelope = &stored.event.envelope;
    let corrupt = |reason: &str| Error::Corrupt {
        type_name: type_name.to_owned(),
        version: envelope.version(),
        reason: reason.to_owned(),
    };
    if envelope.event_type() != SCHEMA_REGISTERED {
        return Err(corrupt("not a SchemaVersionRegistered event"));
    }
    let Ipld::Map(payload) = envelope.payload() else { return Err(corrupt("the payload is not a map")) };
    let Some(Ipld::String(text)) = payload.get("schema_json") else { return Err(corrupt("schema_json is missing")) };
    let schema = serde_json::from_str(text).map_err(|e| corrupt(&format!("schema_json is not JSON: {e}")))?;
    let description = match payload.get("description") {
        Some(Ipld::String(text)) => Some(text.clone()),
        _ => None,
    };
    Ok(SchemaVersion {
        type_name: type_name.to_owned(),
        version: envelope.version(),
        schema,
        description,
        cid: stored.event.cid.to_string(),
        registered_at: envelope.timestamp().to_string(),
    })
}

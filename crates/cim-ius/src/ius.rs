//! The Information Unit System's core: commands that append events with
//! optimistic concurrency after validating the state they produce.

use std::sync::Arc;
use std::time::Duration;

use cim_cid::{AggregateKey, Cid, Event, EventEnvelope, NewEvent, Timestamp};
use cim_ius_api::{Attach, Committed, Create, Detach, IusCode, Relate, Retire, Tags, Target, Update};
use cim_registry_api::{RegistryCode, ValidationReport, Violation};
use cim_store::{EventStore, ExpectedVersion, ObjectStore, StoredEvent};
use futures::StreamExt;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::events;
use crate::kinds::{METADATA_TYPE, schema_type, valid_kind};
use crate::media::sniff;
use crate::model::{ApplyError, AttachedObject, Change, Relation, UNIT_AGGREGATE, UnitState, apply, link, state_cid};
use crate::projection::{Current, Projection};
use crate::settings::IusSettings;

/// How often a command without `expected_version` is retried after losing a race.
const RACE_RETRIES: usize = 8;
/// How long to wait for the projection to show a version the store has.
const CATCH_UP: Duration = Duration::from_secs(5);

/// The Information Unit System. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ius {
    pub(crate) store: EventStore,
    pub(crate) objects: ObjectStore,
    pub(crate) projection: Projection,
    pub(crate) registry: cim_registry_api::Client,
    pub(crate) settings: Arc<IusSettings>,
}

pub(crate) fn unit_key(id: &str) -> Result<AggregateKey> {
    check_name("id", id, |b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')?;
    AggregateKey::new(UNIT_AGGREGATE, id).map_err(|e| Error::InvalidInput { field: "id", reason: e.to_string() })
}

fn check_name(field: &'static str, value: &str, allowed: impl Fn(u8) -> bool) -> Result<()> {
    if value.is_empty() || value.len() > 64 || !value.bytes().all(allowed) {
        return Err(Error::InvalidInput {
            field,
            reason: format!("{value:?} must be 1-64 bytes of the allowed characters"),
        });
    }
    Ok(())
}

fn check_tags(tags: &[String]) -> Result<()> {
    for tag in tags {
        check_name("tags", tag, |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.'))?;
    }
    Ok(())
}

fn parse_cid(field: &'static str, text: &str) -> Result<Cid> {
    text.parse().map_err(|e| Error::InvalidInput { field, reason: format!("{text:?} is not a CID: {e}") })
}

/// Whether `next` is `state` again but for its version and time: a command
/// that would store no change (an empty patch, a tag it has, a relation
/// or attachment it has) is refused rather than stored as a new version.
/// Only commands are judged; events already stored replay as they are.
fn changes_nothing(state: &UnitState, next: &UnitState) -> bool {
    let same_time = UnitState { version: state.version, updated_at: state.updated_at.clone(), ..next.clone() };
    &same_time == state
}

fn rejected(id: &str, error: ApplyError) -> Error {
    match error {
        ApplyError::Patch { operation, path, reason } => {
            Error::PatchFailed { id: id.to_owned(), operation, path, reason }
        }
        ApplyError::Retired { .. } => Error::Rejected { code: IusCode::UnitRetired, reason: error.to_string() },
        ApplyError::Sequence(reason) => Error::Rejected { code: IusCode::UnitExists, reason },
        ApplyError::NoOp(reason) => Error::Rejected { code: IusCode::NoChange, reason },
    }
}

impl Ius {
    /// The projection of current states.
    pub fn projection(&self) -> &Projection {
        &self.projection
    }

    /// The current state of `id`; if this instance has not seen the unit
    /// (or not its latest version) yet, waits briefly for the tail to bring it.
    pub(crate) async fn load(&self, id: &str) -> Result<Arc<Current>> {
        let key = unit_key(id)?;
        let seen = self.projection.get(id).map_or(0, |c| c.state.version);
        if seen == 0 {
            match self.store.head(&key).await? {
                Some((version, _)) => {
                    self.projection.wait_for_version(id, version, CATCH_UP).await;
                }
                None => return Err(Error::UnknownUnit { id: id.to_owned() }),
            }
        }
        self.projection.get(id).ok_or_else(|| Error::UnknownUnit { id: id.to_owned() })
    }

    /// Creates a unit.
    pub async fn create(&self, command: Create) -> Result<Committed> {
        if !valid_kind(&command.kind) {
            return Err(Error::InvalidInput {
                field: "kind",
                reason: format!("{:?} must be [a-z0-9-], starting with a letter", command.kind),
            });
        }
        let id = command.id.unwrap_or_else(|| nuid::next().to_string());
        let key = unit_key(&id)?;
        check_tags(&command.tags)?;
        let parents = command.caused_by.iter().map(|c| parse_cid("caused_by", c)).collect::<Result<Vec<_>>>()?;
        let kind_version = match self.registry.schema(&schema_type(&command.kind), None).await {
            Ok(schema) => schema.version,
            Err(e) if e.is(RegistryCode::UnknownSchema) => return Err(Error::UnknownKind { kind: command.kind }),
            Err(e) => return Err(Error::Registry(e)),
        };
        let change = Change::UnitCreated {
            kind: command.kind,
            kind_version,
            content: command.content,
            metadata: command.metadata,
            tags: command.tags.into_iter().collect(),
        };
        match self.commit(&key, None, change, parents).await {
            Err(Error::VersionConflict { current, .. }) => Err(Error::Rejected {
                code: IusCode::UnitExists,
                reason: format!("unit {id} already exists (version {current})"),
            }),
            other => other,
        }
    }

    /// Patches content and metadata.
    pub async fn update(&self, command: Update) -> Result<Committed> {
        self.change(&command.target, Change::UnitUpdated { patch: command.patch }).await
    }

    /// Adds tags.
    pub async fn tag(&self, command: Tags) -> Result<Committed> {
        check_tags(&command.tags)?;
        self.change(&command.target, Change::UnitTagged { tags: command.tags.into_iter().collect() }).await
    }

    /// Removes tags.
    pub async fn untag(&self, command: Tags) -> Result<Committed> {
        check_tags(&command.tags)?;
        self.change(&command.target, Change::UnitUntagged { tags: command.tags.into_iter().collect() }).await
    }

    /// Adds a relation; the other unit must exist.
    pub async fn relate(&self, command: Relate) -> Result<Committed> {
        check_name("relation", &command.relation, |b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
        })?;
        self.load(&command.to).await?;
        self.change(&command.target, Change::UnitRelated(Relation { relation: command.relation, target: command.to }))
            .await
    }

    /// Removes a relation.
    pub async fn unrelate(&self, command: Relate) -> Result<Committed> {
        self.change(&command.target, Change::UnitUnrelated(Relation { relation: command.relation, target: command.to }))
            .await
    }

    /// Attaches an object from the object store, reading its media type and
    /// (for images) dimensions from its first chunk.
    pub async fn attach(&self, command: Attach) -> Result<Committed> {
        check_name("role", &command.role, |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')?;
        let cid = parse_cid("cid", &command.cid)?;
        let meta = self.objects.stat(&cid).await?.ok_or_else(|| Error::UnknownObject { cid: command.cid.clone() })?;
        let header = match self.objects.get(&cid).await?.next().await {
            Some(chunk) => chunk?,
            None => Default::default(),
        };
        let sniffed = sniff(&header);
        let object = AttachedObject {
            cid: link(&cid),
            media_type: command
                .media_type
                .or(sniffed.media_type.map(str::to_owned))
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            size: meta.size,
            width: sniffed.dimensions.map(|d| d.0),
            height: sniffed.dimensions.map(|d| d.1),
        };
        self.change(&command.target, Change::ObjectAttached { role: command.role, object }).await
    }

    /// Detaches an object.
    pub async fn detach(&self, command: Detach) -> Result<Committed> {
        self.change(&command.target, Change::ObjectDetached { role: command.role }).await
    }

    /// Retires a unit.
    pub async fn retire(&self, command: Retire) -> Result<Committed> {
        self.change(&command.target, Change::UnitRetired { reason: command.reason }).await
    }

    async fn change(&self, target: &Target, change: Change) -> Result<Committed> {
        let key = unit_key(&target.id)?;
        let parents = target.caused_by.iter().map(|c| parse_cid("caused_by", c)).collect::<Result<Vec<_>>>()?;
        self.load(&target.id).await?;
        self.commit(&key, target.expected_version, change, parents).await
    }

    /// Computes, validates and appends the next state. Without an expected
    /// version, a lost race is retried on the newer state; with one, it is
    /// the caller's `version_conflict`.
    async fn commit(
        &self,
        key: &AggregateKey,
        expected: Option<u64>,
        change: Change,
        parents: Vec<Cid>,
    ) -> Result<Committed> {
        let id = key.aggregate_id();
        let mut attempt = 0;
        loop {
            let current = self.projection.get(id);
            let version = current.as_ref().map_or(0, |c| c.state.version);
            if let Some(expected) = expected
                && expected != version
            {
                if expected > version && self.projection.wait_for_version(id, expected, CATCH_UP).await {
                    continue;
                }
                return Err(Error::VersionConflict { id: id.to_owned(), expected, current: version });
            }
            let at = Timestamp::now();
            let next = apply(id, current.as_ref().map(|c| &c.state), &change, at).map_err(|e| rejected(id, e))?;
            if let Some(current) = &current
                && changes_nothing(&current.state, &next)
            {
                return Err(Error::Rejected {
                    code: IusCode::NoChange,
                    reason: format!("{} would change nothing in unit {id} at version {version}", change.event_type()),
                });
            }
            self.validate(&next, &change).await?;
            let cid = state_cid(&next).map_err(cim_store::Error::from)?;
            let payload = events::encode(&change, &cid).map_err(cim_store::Error::from)?;
            let event = NewEvent::new(change.event_type(), payload).with_parents(parents.clone()).with_timestamp(at);
            match self.store.append(key, ExpectedVersion::Exact(version), vec![event.clone()]).await {
                Ok(appended) => {
                    let stored = appended.events[0];
                    // The tail will deliver this event too; applying it now
                    // lets this caller read its own write at once.
                    let envelope = EventEnvelope::chained(key, stored.version, current.as_ref().map(|c| c.head), event)
                        .map_err(cim_store::Error::from)?;
                    let (event, _) = Event::encode(envelope).map_err(cim_store::Error::from)?;
                    if event.cid == stored.cid {
                        self.projection.apply_appended(&StoredEvent { seq: stored.seq, stored_at: at, event });
                    }
                    return Ok(Committed {
                        id: id.to_owned(),
                        version: stored.version,
                        event_cid: stored.cid.to_string(),
                        state_cid: cid.to_string(),
                    });
                }
                Err(cim_store::Error::ConcurrencyConflict { actual, .. }) => {
                    if let Some(expected) = expected {
                        return Err(Error::VersionConflict { id: id.to_owned(), expected, current: actual });
                    }
                    attempt += 1;
                    if attempt > RACE_RETRIES || !self.projection.wait_for_version(id, actual, CATCH_UP).await {
                        return Err(Error::VersionConflict { id: id.to_owned(), expected: version, current: actual });
                    }
                }
                Err(cim_store::Error::DanglingLink { parent, .. }) => {
                    return Err(Error::UnknownParent { cid: parent.to_string() });
                }
                Err(cim_store::Error::EventTooLarge { size, max, .. }) => {
                    return Err(Error::PayloadTooLarge { size, limit: max });
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// For changes of content or metadata: checks the new state's size, its
    /// content against the kind's schema version and its metadata against the
    /// metadata schema, through the registry's validation API.
    async fn validate(&self, next: &UnitState, change: &Change) -> Result<()> {
        if !matches!(change, Change::UnitCreated { .. } | Change::UnitUpdated { .. }) {
            return Ok(());
        }
        let size = serde_json::to_vec(&(&next.content, &next.metadata)).map_or(0, |bytes| bytes.len());
        if size > self.settings.max_unit_bytes {
            return Err(Error::PayloadTooLarge { size, limit: self.settings.max_unit_bytes });
        }
        let kind_schema = schema_type(&next.kind);
        let report = match self.registry.validate(&kind_schema, Some(next.kind_version), &next.content).await {
            Err(e) if e.is(RegistryCode::UnknownSchema) || e.is(RegistryCode::UnknownSchemaVersion) => {
                return Err(Error::UnknownKind { kind: next.kind.clone() });
            }
            other => other.map_err(Error::Registry)?,
        };
        violations(&next.id, "content", report)?;
        let report = self.registry.validate(METADATA_TYPE, None, &next.metadata).await.map_err(Error::Registry)?;
        violations(&next.id, "metadata", report)
    }
}

/// A report with violations as an error whose pointers start at the unit
/// (`/content/…`, `/metadata/…`).
fn violations(id: &str, what: &'static str, report: ValidationReport) -> Result<()> {
    if report.valid {
        return Ok(());
    }
    let violations =
        report.errors.into_iter().map(|v| Violation { pointer: format!("/{what}{}", v.pointer), ..v }).collect();
    Err(Error::SchemaViolation {
        id: id.to_owned(),
        what,
        schema: report.type_name,
        version: report.version,
        violations,
    })
}

/// The JSON of a value read as IPLD, for replies.
pub(crate) fn json_of(value: &cim_cid::Ipld) -> Value {
    cim_cid::ipld_to_json(value).unwrap_or(Value::Null)
}

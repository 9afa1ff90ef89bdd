//! The stream and buckets a store uses: created or adapted by the admin
//! (provisioning), attached to by everyone else.
//!
//! Two paths, never mixed:
//! - **provision** (the admin's: `cim provision`, cim-provision.service,
//!   `cim up`, the CLI's own commands) creates what is missing with an
//!   explicit configuration — JetStream's defaults are wrong for an event
//!   store (see `docs/spec/jetstream.md`) — and adapts what the store needs
//!   of an existing one;
//! - **attach** (a component's) only asks for the stream's information
//!   (`STREAM.INFO`), checks that it can work with it, and fails with a
//!   typed error otherwise: [`Error::NotProvisioned`] when it is missing,
//!   [`Error::Incompatible`] when it is configured otherwise. A component's
//!   NATS user may not create, update, purge or delete streams
//!   (`docs/spec/permissions.md`).

use std::time::Duration;

use async_nats::jetstream::context::{GetStreamError, GetStreamErrorKind};
use async_nats::jetstream::object_store as nats_objects;
use async_nats::jetstream::{self, ErrorCode, kv, stream};
use tracing::{info, warn};

use crate::kv::KvOptions;
use crate::{Error, Result, StoreConfig, retry};

/// How the admin's provisioning should leave a stream or bucket.
const PROVISION_HINT: &str = "provisioning (`cim provision` as the admin user) adapts it";

/// The event stream's configuration: file storage, no age, count or size
/// limit (events are kept until safely tiered), refuse rather than discard
/// when an operator-set limit is reached, a deduplication window keyed by
/// event CID, direct get, atomic batches, and no deletion of single events.
pub fn events_stream_config(config: &StoreConfig) -> stream::Config {
    let names = config.names();
    stream::Config {
        name: names.events_stream.clone(),
        description: Some("CIM event store: CID-chained dag-cbor events, one subject per aggregate".to_owned()),
        subjects: vec![names.all_events()],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        num_replicas: config.replicas,
        max_age: Duration::ZERO,
        max_messages: -1,
        max_bytes: -1,
        max_messages_per_subject: -1,
        discard: stream::DiscardPolicy::New,
        duplicate_window: config.duplicate_window(),
        allow_direct: true,
        allow_atomic_publish: true,
        deny_delete: true,
        ..Default::default()
    }
}

/// The stream of a KV bucket `bucket` (the full name, `<namespace>-<name>`)
/// kept as `options` say: what `async-nats` creates for a bucket, with file
/// storage, the store's replicas, and nothing left to defaults.
pub fn kv_stream_config(config: &StoreConfig, bucket: &str, options: &KvOptions) -> stream::Config {
    stream::Config {
        name: format!("KV_{bucket}"),
        description: (!options.description.is_empty()).then(|| options.description.clone()),
        subjects: vec![format!("$KV.{bucket}.>")],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        num_replicas: config.replicas,
        max_messages_per_subject: options.history,
        max_age: options.ttl.unwrap_or_default(),
        max_messages: -1,
        max_bytes: -1,
        max_message_size: -1,
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        allow_message_ttl: options.per_key_ttl_markers.is_some(),
        subject_delete_marker_ttl: options.per_key_ttl_markers,
        ..Default::default()
    }
}

/// Whether a stream information request failed only because no server
/// could answer right now (a cluster electing a leader, a client failing
/// over).
fn info_unavailable(error: &GetStreamError) -> bool {
    match error.kind() {
        GetStreamErrorKind::JetStream(e) => {
            [ErrorCode::CLUSTER_NOT_AVAILABLE, ErrorCode::CLUSTER_NOT_LEADER].contains(&e.error_code())
        }
        GetStreamErrorKind::Request => retry::request_unanswered(std::error::Error::source(error)),
        _ => false,
    }
}

/// Attaches to the stream `name` (`STREAM.INFO` only): `resource` names it
/// in errors. Missing: [`Error::NotProvisioned`].
async fn attach_stream(js: &jetstream::Context, name: &str, resource: &str) -> Result<stream::Stream> {
    let subject = format!("$JS.API.STREAM.INFO.{name}");
    let found = retry::while_unavailable(&subject, || js.get_stream(name), info_unavailable).await;
    match found {
        Ok(stream) => Ok(stream),
        Err(retry::Failure::Failed(e)) if matches!(e.kind(), GetStreamErrorKind::JetStream(ref e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND) => {
            Err(Error::NotProvisioned { resource: resource.to_owned() })
        }
        Err(e) => Err(Error::nats("reading a stream's configuration", e)),
    }
}

/// Checks that an existing event stream can hold the store's events:
/// `Ok(false)` when only what [`provision_events_stream`] adapts differs.
fn check_events_stream(existing: &stream::Config, wanted: &stream::Config) -> Result<bool> {
    let resource = format!("stream {}", wanted.name);
    if existing.storage != stream::StorageType::File {
        return Err(Error::Incompatible {
            resource,
            reason: "it keeps events in memory; an event store needs file storage".to_owned(),
        });
    }
    if !existing.subjects.contains(&wanted.subjects[0]) {
        return Err(Error::Incompatible {
            resource,
            reason: format!("its subjects are {:?}, but the store writes {}", existing.subjects, wanted.subjects[0]),
        });
    }
    if existing.max_age != Duration::ZERO || existing.max_messages > 0 || existing.max_bytes > 0 {
        warn!(stream = %wanted.name, "the event stream has limits set by an operator; events beyond them are refused or removed");
    }
    Ok(existing.allow_atomic_publish && existing.allow_direct)
}

/// Attaches to the event stream. It must exist and allow what the store
/// does (atomic batches, direct gets).
pub(crate) async fn attach_events_stream(js: &jetstream::Context, config: &StoreConfig) -> Result<stream::Stream> {
    let wanted = events_stream_config(config);
    let resource = format!("the event stream {}", wanted.name);
    let stream = attach_stream(js, &wanted.name, &resource).await?;
    let existing = &stream.cached_info().config;
    if !check_events_stream(existing, &wanted)? {
        return Err(Error::Incompatible {
            resource,
            reason: format!("it does not allow atomic batches and direct gets; {PROVISION_HINT}"),
        });
    }
    if existing.duplicate_window != wanted.duplicate_window || existing.num_replicas != wanted.num_replicas {
        info!(
            stream = %wanted.name,
            replicas = existing.num_replicas,
            duplicate_window = ?existing.duplicate_window,
            "the event stream's replicas or deduplication window differ from this store's configuration; provisioning sets them"
        );
    }
    Ok(stream)
}

/// Creates the event stream, or enables what the store needs on an
/// existing one (atomic batches, direct gets, the configured replicas and
/// deduplication window). The admin's path.
pub(crate) async fn provision_events_stream(js: &jetstream::Context, config: &StoreConfig) -> Result<stream::Stream> {
    let wanted = events_stream_config(config);
    let create = format!("$JS.API.STREAM.CREATE.{}", wanted.name);
    match retry::unless_denied(&create, js.create_stream(wanted.clone())).await {
        Ok(stream) => return Ok(stream),
        Err(retry::Failure::Denied(denied)) => return Err(Error::nats("creating the event stream", denied)),
        Err(retry::Failure::Failed(_exists_or_other)) => {}
    }
    let mut stream = js.get_stream(&wanted.name).await.map_err(|e| Error::nats("opening the event stream", e))?;
    let existing =
        stream.info().await.map_err(|e| Error::nats("reading the event stream's configuration", e))?.config.clone();
    let usable = check_events_stream(&existing, &wanted)?;
    let needs_update =
        !usable || existing.num_replicas != wanted.num_replicas || existing.duplicate_window != wanted.duplicate_window;
    if needs_update {
        let updated = stream::Config {
            allow_atomic_publish: true,
            allow_direct: true,
            num_replicas: wanted.num_replicas,
            duplicate_window: wanted.duplicate_window,
            ..existing
        };
        info!(stream = %wanted.name, "updating the event stream's configuration");
        let update = format!("$JS.API.STREAM.UPDATE.{}", wanted.name);
        retry::unless_denied(&update, js.update_stream(updated))
            .await
            .map_err(|e| Error::nats("updating the event stream's configuration", e))?;
    }
    Ok(stream)
}

/// The object bucket's stream, `OBJ_<bucket>`.
fn objects_stream_name(config: &StoreConfig) -> String {
    format!("OBJ_{}", config.names().objects_bucket)
}

/// Attaches to the object bucket's stream.
pub(crate) async fn attach_objects_bucket(js: &jetstream::Context, config: &StoreConfig) -> Result<stream::Stream> {
    let name = objects_stream_name(config);
    attach_stream(js, &name, &format!("the object bucket {}", config.names().objects_bucket)).await
}

/// Creates the object store bucket (a standard JetStream object store) if
/// missing; returns its stream. The admin's path.
pub(crate) async fn provision_objects_bucket(js: &jetstream::Context, config: &StoreConfig) -> Result<stream::Stream> {
    let bucket = config.names().objects_bucket;
    let create = format!("$JS.API.STREAM.CREATE.OBJ_{bucket}");
    let created = retry::unless_denied(
        &create,
        js.create_object_store(nats_objects::Config {
            bucket: bucket.clone(),
            description: Some("CIM content-addressed objects, named by CID".to_owned()),
            storage: stream::StorageType::File,
            num_replicas: config.replicas,
            ..Default::default()
        }),
    )
    .await;
    if let Err(retry::Failure::Denied(denied)) = created {
        return Err(Error::nats("creating the object store bucket", denied));
    }
    js.get_stream(objects_stream_name(config)).await.map_err(|e| Error::nats("opening the object store stream", e))
}

/// What differs between a KV bucket's stream and the configuration wanted,
/// in words; empty when nothing that matters does.
fn kv_differences(existing: &stream::Config, wanted: &stream::Config) -> Vec<String> {
    let mut differences = Vec::new();
    if existing.max_messages_per_subject != wanted.max_messages_per_subject {
        differences.push(format!(
            "it keeps {} revisions per key, not {}",
            existing.max_messages_per_subject, wanted.max_messages_per_subject
        ));
    }
    if existing.max_age != wanted.max_age {
        differences.push(format!("its entries expire after {:?}, not {:?}", existing.max_age, wanted.max_age));
    }
    if existing.allow_message_ttl != wanted.allow_message_ttl {
        let allows = |yes: bool| if yes { "allows" } else { "does not allow" };
        differences.push(format!(
            "it {} a TTL per entry, where the store's configuration {}",
            allows(existing.allow_message_ttl),
            allows(wanted.allow_message_ttl)
        ));
    }
    if existing.subject_delete_marker_ttl != wanted.subject_delete_marker_ttl {
        differences.push(format!(
            "its removal markers are kept {:?}, not {:?}",
            existing.subject_delete_marker_ttl, wanted.subject_delete_marker_ttl
        ));
    }
    differences
}

/// Attaches to the KV bucket `bucket` (its full name) and checks it is kept
/// as `options` say.
pub(crate) async fn attach_kv_bucket(
    js: &jetstream::Context,
    config: &StoreConfig,
    bucket: &str,
    options: &KvOptions,
) -> Result<kv::Store> {
    let wanted = kv_stream_config(config, bucket, options);
    let resource = format!("the KV bucket {bucket}");
    let stream = attach_stream(js, &wanted.name, &resource).await?;
    let differences = kv_differences(&stream.cached_info().config, &wanted);
    if !differences.is_empty() {
        return Err(Error::Incompatible { resource, reason: format!("{}; {PROVISION_HINT}", differences.join(", ")) });
    }
    js.get_key_value(bucket).await.map_err(|e| Error::nats("opening a KV bucket", e))
}

/// Creates the KV bucket `bucket` (its full name) as `options` say, or
/// adapts an existing one to them. The admin's path.
pub(crate) async fn provision_kv_bucket(
    js: &jetstream::Context,
    config: &StoreConfig,
    bucket: &str,
    options: &KvOptions,
) -> Result<kv::Store> {
    let wanted = kv_stream_config(config, bucket, options);
    let create = format!("$JS.API.STREAM.CREATE.{}", wanted.name);
    match retry::unless_denied(&create, js.create_stream(wanted.clone())).await {
        Ok(_) => {}
        Err(retry::Failure::Denied(denied)) => return Err(Error::nats("creating a KV bucket", denied)),
        Err(retry::Failure::Failed(_exists_or_other)) => {
            let mut stream =
                js.get_stream(&wanted.name).await.map_err(|e| Error::nats("opening a KV bucket's stream", e))?;
            let existing =
                stream.info().await.map_err(|e| Error::nats("reading a KV bucket's configuration", e))?.config.clone();
            let differences = kv_differences(&existing, &wanted);
            if !differences.is_empty() || existing.num_replicas != wanted.num_replicas {
                info!(bucket, ?differences, "adapting the KV bucket's configuration");
                let updated = stream::Config {
                    max_messages_per_subject: wanted.max_messages_per_subject,
                    max_age: wanted.max_age,
                    allow_message_ttl: wanted.allow_message_ttl,
                    subject_delete_marker_ttl: wanted.subject_delete_marker_ttl,
                    num_replicas: wanted.num_replicas,
                    ..existing
                };
                let update = format!("$JS.API.STREAM.UPDATE.{}", wanted.name);
                retry::unless_denied(&update, js.update_stream(updated))
                    .await
                    .map_err(|e| Error::nats("updating a KV bucket's configuration", e))?;
            }
        }
    }
    js.get_key_value(bucket).await.map_err(|e| Error::nats("opening a KV bucket", e))
}

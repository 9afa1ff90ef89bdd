//! Creates, or checks and adapts, the stream and buckets a store uses. The
//! configurations are explicit rather than JetStream's defaults, because the
//! defaults are wrong for an event store (see `docs/spec/jetstream.md`).

use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store as nats_objects, stream};
use tracing::{info, warn};

use crate::{Error, Result, StoreConfig, retry};

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

/// Opens the event stream, creating it or enabling what the store needs.
pub async fn events_stream(js: &jetstream::Context, config: &StoreConfig) -> Result<stream::Stream> {
    let wanted = events_stream_config(config);
    // A user that may not create streams (a component, under least
    // privilege) is refused at once rather than after the request timeout.
    let create = format!("$JS.API.STREAM.CREATE.{}", wanted.name);
    if let Ok(stream) = retry::unless_denied(&create, js.create_stream(wanted.clone())).await {
        return Ok(stream);
    }
    let mut stream = js.get_stream(&wanted.name).await.map_err(|e| Error::nats("opening the event stream", e))?;
    let existing =
        stream.info().await.map_err(|e| Error::nats("reading the event stream's configuration", e))?.config.clone();
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
    let needs_update = !existing.allow_atomic_publish
        || !existing.allow_direct
        || existing.num_replicas != wanted.num_replicas
        || existing.duplicate_window != wanted.duplicate_window;
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

/// Opens the object store bucket (a standard JetStream object store), creating it if missing.
pub async fn objects_bucket(
    js: &jetstream::Context,
    config: &StoreConfig,
) -> Result<(nats_objects::ObjectStore, stream::Stream)> {
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
    let store = match created {
        Ok(store) => store,
        Err(_) => js.get_object_store(&bucket).await.map_err(|e| Error::nats("opening the object store bucket", e))?,
    };
    let stream =
        js.get_stream(format!("OBJ_{bucket}")).await.map_err(|e| Error::nats("opening the object store stream", e))?;
    Ok((store, stream))
}

/// Opens a KV bucket with the store's replicas, creating it if missing.
pub async fn kv_bucket(js: &jetstream::Context, config: &StoreConfig, kv_config: kv::Config) -> Result<kv::Store> {
    let bucket = kv_config.bucket.clone();
    let kv_config = kv::Config { num_replicas: config.replicas, storage: stream::StorageType::File, ..kv_config };
    let create = format!("$JS.API.STREAM.CREATE.KV_{bucket}");
    match retry::unless_denied(&create, js.create_key_value(kv_config)).await {
        Ok(store) => Ok(store),
        Err(_) => js.get_key_value(&bucket).await.map_err(|e| Error::nats("opening a KV bucket", e)),
    }
}

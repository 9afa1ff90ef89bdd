//! `cim status`: the server, the store's stream and buckets, counts, sizes.

use futures::TryStreamExt;
use serde_json::json;

use crate::exit::Exit;
use crate::output::Output;
use crate::session::Session;

/// Runs `cim status`.
pub async fn run(session: &Session, out: &Output) -> anyhow::Result<Exit> {
    let info = session.events.client().server_info();
    let names = session.events.names().clone();
    let log = session.events.log_state().await?;
    let objects = session.objects.list().await?;
    let object_bytes: u64 = objects.iter().map(|o| o.size).sum();
    let named = session.named.names().await?;
    let js = session.events.jetstream();
    let account = js.query_account().await?;
    let streams: Vec<_> = js.streams().try_collect().await?;
    let streams: Vec<_> = streams
        .iter()
        .map(|s| json!({ "name": s.config.name, "messages": s.state.messages, "bytes": s.state.bytes, "subjects": s.state.subjects_count }))
        .collect();
    let status = json!({
        "server": {
            "url": session.url,
            "mode": session.embedded_description(),
            "name": info.server_name,
            "version": info.version,
            "max_payload": info.max_payload,
        },
        "namespace": session.events.config().namespace,
        "events": {
            "stream": names.events_stream,
            "events": log.events,
            "aggregates": log.aggregates,
            "bytes": log.bytes,
            "first_seq": log.first_seq,
            "last_seq": log.last_seq,
        },
        "objects": { "bucket": names.objects_bucket, "objects": objects.len(), "bytes": object_bytes },
        "names": { "bucket": names.names_bucket, "names": named.len() },
        "jetstream": {
            "storage_bytes": account.storage,
            "memory_bytes": account.memory,
            "streams": account.streams,
            "consumers": account.consumers,
        },
        "streams": streams,
    });
    out.emit(&status, || {
        let mut text = format!(
            "server     {} — nats-server {} ({}), {}\nnamespace  {}\nevents     {} events in {} aggregates, {} bytes \
             (stream {}, sequences {}..{})\nobjects    {} objects, {} bytes (bucket {})\nnames      {} (bucket {})\n\
             jetstream  {} bytes on disk, {} streams, {} consumers\nstreams:",
            session.url,
            info.version,
            info.server_name,
            session.embedded_description(),
            session.events.config().namespace,
            log.events,
            log.aggregates,
            log.bytes,
            names.events_stream,
            log.first_seq,
            log.last_seq,
            objects.len(),
            object_bytes,
            names.objects_bucket,
            named.len(),
            names.names_bucket,
            account.storage,
            account.streams,
            account.consumers,
        );
        for stream in &streams {
            text.push_str(&format!(
                "\n  {:<28} {:>10} messages {:>14} bytes",
                stream["name"].as_str().unwrap_or(""),
                stream["messages"],
                stream["bytes"]
            ));
        }
        text
    });
    Ok(Exit::Ok)
}

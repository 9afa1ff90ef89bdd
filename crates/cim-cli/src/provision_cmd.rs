//! `cim provision`: creates (or checks and adapts) everything the store and
//! the components of `components.toml` use in the namespace — the event
//! stream, the object and names buckets, every component's KV bucket —
//! with their exact configuration. Run as the admin user: components only
//! attach to what this creates (cim-provision.service on NixOS runs it).

use serde_json::json;

use crate::exit::Exit;
use crate::output::Output;
use crate::session::Session;

/// Runs `cim provision`.
pub async fn run(session: &Session, out: &Output) -> anyhow::Result<Exit> {
    let deployment = cim_deploy::Deployment::embedded()?;
    let client = session.events.client().clone();
    let done = cim_deploy::provision::provision(client, session.events.config(), &deployment).await?;
    let buckets: Vec<_> =
        done.buckets.iter().map(|(bucket, owner)| json!({ "bucket": bucket, "component": owner })).collect();
    let report = json!({
        "namespace": done.namespace,
        "events_stream": done.events_stream,
        "objects_bucket": done.objects_bucket,
        "names_bucket": done.names_bucket,
        "component_buckets": buckets,
    });
    out.emit(&report, || {
        let mut text = format!(
            "provisioned namespace {}:\n  stream {:<24} events\n  bucket {:<24} objects\n  bucket {:<24} object names",
            done.namespace, done.events_stream, done.objects_bucket, done.names_bucket
        );
        for (bucket, owner) in &done.buckets {
            text.push_str(&format!("\n  bucket {bucket:<24} component {owner}"));
        }
        text
    });
    Ok(Exit::Ok)
}

//! `cim demo`: what CIM does, in one command. Appends events across four
//! aggregates linked causally by parents, stores objects (raw, structured,
//! and a named object in two versions) linked from the payloads; with the
//! components running (`cim up`), lists them through the registry and keeps
//! a unit in the Information Unit System (`demo_services`); then verifies
//! the whole store, finds the causal path through the DAG and exports the
//! demo's aggregates to a CAR file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use cim_cid::{AggregateKey, Cid, Ipld, NewEvent};
use cim_store::ExpectedVersion;
use clap::Args;
use serde_json::json;

use crate::exit::Exit;
use crate::output::Output;
use crate::session::Session;
use crate::settings::{Settings, Target};
use crate::{demo_services, export, verify_cmd};

/// Arguments of `cim demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Write the CAR here [default: <data dir>/exports/demo-<run>.car].
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

struct Appended {
    aggregate: AggregateKey,
    event_type: &'static str,
    cid: Cid,
    version: u64,
}

/// Runs the demonstration.
pub async fn run(session: &Session, settings: &Settings, args: DemoArgs, out: &Output) -> anyhow::Result<Exit> {
    // A fresh suffix per run, so the demo can run again on the same store.
    let run = format!("{:x}", cim_cid::Timestamp::now().unix_micros());
    let key = |kind: &str, prefix: &str| AggregateKey::new(kind, format!("{prefix}-{run}"));
    let (customer, order, payment, shipment) =
        (key("customer", "c")?, key("order", "o")?, key("payment", "p")?, key("shipment", "s")?);
    out.note(format!("cim demo: run {run} on {} ({})", session.url, session.embedded_description()));

    // Objects: raw bytes, a structured IPLD object, a named object in two versions.
    let invoice =
        session.objects.put_bytes(format!("INVOICE {run}\n1 x CIM starter kit   42.00 EUR\n").as_bytes()).await?;
    let product = session
        .objects
        .put_ipld(&ipld(json!({ "sku": "CIM-1", "name": "CIM starter kit", "price_cents": 4200 }))?)
        .await?;
    let terms_name = format!("demo/{run}/terms.txt");
    session.named.put(&terms_name, &b"Terms v1: payment within 30 days.\n"[..]).await?;
    let terms = session.named.put(&terms_name, &b"Terms v2: payment within 14 days.\n"[..]).await?;

    // Events, each caused by the one before, across four aggregates.
    let mut log: Vec<Appended> = Vec::new();
    let mut append =
        async |aggregate: &AggregateKey, event_type: &'static str, payload: serde_json::Value| -> anyhow::Result<Cid> {
            let expected = log.iter().filter(|a| &a.aggregate == aggregate).count() as u64;
            let parents: Vec<Cid> = log.last().map(|a| a.cid).into_iter().collect();
            let event = NewEvent::new(event_type, ipld(payload)?).with_parents(parents);
            let appended = session
                .events
                .append(aggregate, ExpectedVersion::Exact(expected), vec![event])
                .await
                .with_context(|| format!("appending {event_type} to {aggregate}"))?;
            let cid = appended.last_cid();
            log.push(Appended { aggregate: aggregate.clone(), event_type, cid, version: appended.version() });
            Ok(cid)
        };
    let link = |cid: Cid| json!({ "/": cid.to_string() });
    let registered = append(&customer, "CustomerRegistered", json!({ "name": "Ada Lovelace" })).await?;
    append(
        &order,
        "OrderPlaced",
        json!({
            "customer": customer.to_string(),
            "items": [{ "product": link(product), "quantity": 1 }],
            "terms": link(terms.cid),
        }),
    )
    .await?;
    append(&payment, "PaymentReceived", json!({ "order": order.to_string(), "amount_cents": 4200 })).await?;
    append(&order, "OrderPaid", json!({ "payment": payment.to_string() })).await?;
    append(&shipment, "ShipmentDispatched", json!({ "order": order.to_string(), "invoice": link(invoice) })).await?;
    let shipped = append(&order, "OrderShipped", json!({ "shipment": shipment.to_string() })).await?;

    // The components, if they run: the registry's list and a unit caused by the shipment.
    let services = demo_services::run(session, &run, shipped, invoice).await?;

    let report = verify_cmd::verify_store(session, true, out).await?;
    let path = {
        let live = session.events.dag().await?;
        live.catch_up().await?;
        live.read().causal_path(&registered, &shipped)?.unwrap_or_default()
    };
    let car = match args.output {
        Some(path) => path,
        None => {
            let dir = settings.data_dir()?.join("exports");
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            dir.join(format!("demo-{run}.car"))
        }
    };
    let mut aggregates = vec![customer.clone(), order.clone(), payment.clone(), shipment.clone()];
    if let Some(unit) = services.as_ref().and_then(|s| s.unit.as_ref()) {
        aggregates.push(AggregateKey::new(cim_ius_api::model::UNIT_AGGREGATE, unit.id.as_str())?);
    }
    let exported = export::export(session, &aggregates, None, None, &car, out).await?;

    let events: Vec<_> = log
        .iter()
        .map(|a| json!({ "aggregate": a.aggregate.to_string(), "version": a.version, "event_type": a.event_type, "cid": a.cid.to_string() }))
        .collect();
    let result = json!({
        "run": run,
        "events": events,
        "objects": { "invoice": invoice.to_string(), "product": product.to_string(), "terms": {
            "name": terms_name, "version": terms.record.version, "record": terms.cid.to_string(), "content": terms.record.content.to_string() } },
        "verify": report,
        "causal_path": path.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "export": exported,
        "services": services,
    });
    // The commands to try next reach this same store.
    let base = match &settings.target {
        Target::Embedded => format!("cim --data-dir {}", settings.data_dir()?.display()),
        Target::Remote { url, .. } => format!("cim --nats {url}"),
    };
    let cim = format!("{base} --namespace {}", settings.store.namespace);
    out.emit(&result, || {
        let mut by_aggregate: BTreeMap<String, Vec<&Appended>> = BTreeMap::new();
        for a in &log {
            by_aggregate.entry(a.aggregate.to_string()).or_default().push(a);
        }
        let mut text = String::from("\n1. Stored objects, each under the CID of its content:\n");
        text += &format!("   invoice (raw bytes)        {invoice}\n   product (IPLD, dag-cbor)   {product}\n");
        text += &format!("   {terms_name} v{} (named; v2 links v1)  record {}\n", terms.record.version, terms.cid);
        text += &format!("\n2. Appended {} events to {} aggregates, each linked to its cause by `parents`:\n", log.len(), by_aggregate.len());
        for a in &log {
            text += &format!("   {:<28} v{}  {:<20} {}\n", a.aggregate.to_string(), a.version, a.event_type, a.cid);
        }
        text += "\n3. The components working on the same store:";
        text += &demo_services::text(services.as_ref());
        text += &format!(
            "\n4. Verified the store: {} events in {} aggregates, {} objects, {} names — {}\n",
            report.events,
            report.aggregates,
            report.objects,
            report.names,
            if report.ok { "every CID and chain checks".to_owned() } else { format!("{} PROBLEMS", report.problems.len()) }
        );
        text += &format!("\n5. Causal path through the DAG from the registration to the shipment: {} events\n", path.len());
        text += &format!("\n6. Exported the demo to a CAR file (CARv1, root = export manifest):\n   {}\n", export::summary(&exported).replace('\n', "\n   "));
        text += &format!(
            "\nTry next:\n   {cim} events read {order}\n   {cim} dag ancestors {shipped} --format dot | dot -Tsvg > dag.svg\n   \
             {cim} objects history {terms_name}\n   {base} --namespace copy import {}\n   {cim} status",
            exported.path.display()
        );
        if let Some(unit) = services.as_ref().and_then(|s| s.unit.as_ref()) {
            text += &format!("\n   {cim} units history {}\n   {cim} registry components", unit.id);
        }
        text
    });
    Ok(if report.ok { Exit::Ok } else { Exit::Problems })
}

fn ipld(value: serde_json::Value) -> anyhow::Result<Ipld> {
    Ok(cim_cid::ipld_from_json(&value)?)
}

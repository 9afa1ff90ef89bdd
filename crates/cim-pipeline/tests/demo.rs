//! The demo pipeline (`pipelines/pdf-text.toml`): attaching a PDF to a unit
//! creates a text unit with the extracted text, related to the original,
//! whose creating event's parents include the attach event; the DAG leads
//! from it back to the attach.

use std::time::Duration;

use cim_cid::AggregateKey;
use cim_ius_api::{Attach, Create, List, Target, Traverse};
use cim_store::{ObjectStore, StoreConfig};
use cim_test_support::{ServiceProcess, service_config, workspace_binary};

use crate::support::{Engines, TIMEOUT, wait_instances, wait_until};

pub const PDF_TEXT: &str = include_str!("../pipelines/pdf-text.toml");

/// Starts the registry and the IUS beside the engines.
pub async fn services(engines: &Engines) -> Vec<ServiceProcess> {
    let registry = ServiceProcess::start(
        workspace_binary("cim-registry", "cim-registry"),
        engines.dir.path(),
        "registry",
        &service_config(&engines.server, "r1", "[registry]\ncomponent_ttl_secs = 60\n"),
    );
    let ius = ServiceProcess::start(
        workspace_binary("cim-ius", "cim-ius"),
        engines.dir.path(),
        "ius",
        &service_config(&engines.server, "i1", ""),
    );
    let logs = || format!("{}\n{}", registry.log(), ius.log());
    wait_instances(&engines.client, "cim-registry", 1, logs).await;
    wait_instances(&engines.client, "cim-ius", 1, logs).await;
    vec![registry, ius]
}

#[tokio::test(flavor = "multi_thread")]
async fn attaching_a_pdf_creates_a_related_text_unit_whose_parents_include_the_attach() {
    let engines = Engines::start(1, "").await;
    let services = services(&engines).await;
    let logs = || format!("{}\n{}", engines.logs(), services.iter().map(ServiceProcess::log).collect::<String>());
    let put = engines.put(PDF_TEXT).await;
    assert_eq!(put.name, "pdf-text");

    let ius = cim_ius_api::Client::new(engines.client.clone(), TIMEOUT);
    let objects = ObjectStore::open(engines.client.clone(), &StoreConfig::default()).await.expect("objects");
    ius.create(&Create {
        kind: "pdf".into(),
        id: Some("report".into()),
        content: serde_json::json!({}),
        metadata: serde_json::json!({"title": "Quarterly report"}),
        tags: vec![],
        caused_by: vec![],
    })
    .await
    .expect("create the pdf unit");
    let pdf = cim_pipeline::media::make_pdf(&["Revenue grew by twelve percent", "Costs stayed flat"]);
    let cid = objects.put_bytes(&pdf).await.expect("put the pdf");
    let attached = ius
        .attach(&Attach {
            target: Target { id: "report".into(), expected_version: None, caused_by: vec![] },
            role: "body".into(),
            cid: cid.to_string(),
            media_type: None,
        })
        .await
        .expect("attach the pdf");

    wait_until(Duration::from_secs(60), "the text unit", logs, || async {
        let list = ius.list(&List { kind: Some("text-document".into()), ..List::default() }).await.expect("list");
        !list.units.is_empty()
    })
    .await;
    let list = ius.list(&List { kind: Some("text-document".into()), ..List::default() }).await.expect("list");
    assert_eq!(list.units.len(), 1, "one text unit per attach");
    let text_unit = &list.units[0];
    let view = ius.get(&cim_ius_api::Get { id: Some(text_unit.id.clone()), ..Default::default() }).await.expect("get");
    let text = view.state.content["text"].as_str().expect("text");
    assert!(text.contains("Revenue grew by twelve percent") && text.contains("Costs stayed flat"), "{text}");
    assert_eq!(view.state.metadata["title"], "Text of report (2 pages)");
    // Related to the original.
    let related = ius
        .traverse(&Traverse { id: text_unit.id.clone(), depth: None, relation: None, direction: Default::default() })
        .await
        .expect("traverse");
    assert!(related.units.iter().any(|u| u.id == "report" && u.relation == "extracted-from"), "{related:?}");
    // Its creating event's parents include the attach event.
    let history = ius.history(&text_unit.id).await.expect("history");
    assert_eq!(history.events[0].event_type, "UnitCreated");
    assert!(history.events[0].parents.contains(&attached.event_cid), "{:?}", history.events[0]);
    // The DAG leads from it back to the attach.
    let store = &engines.store;
    let dag = store.dag().await.expect("dag");
    dag.catch_up().await.expect("catch up");
    let created: cim_cid::Cid = history.events[0].cid.parse().expect("cid");
    let ancestors: Vec<cim_cid::Cid> =
        dag.read().ancestors(&created, None).expect("ancestors").map(|e| e.cid).collect();
    assert!(ancestors.contains(&attached.event_cid.parse().expect("cid")));
    // And the run is journaled with the attach as its input.
    let runs = crate::support::events_of_type(store, "pipeline-run").await;
    let completed = runs.iter().find(|e| e.event.envelope.event_type() == "RunCompleted").expect("a completed run");
    assert_eq!(completed.event.envelope.parents()[0].to_string(), attached.event_cid);
    assert!(store.head(&AggregateKey::new("unit", text_unit.id.as_str()).expect("key")).await.expect("head").is_some());
}

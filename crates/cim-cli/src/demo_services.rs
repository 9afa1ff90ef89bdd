//! The part of `cim demo` that needs the running components (`cim up`):
//! the registry lists them, and the Information Unit System keeps a unit of
//! information — created as a consequence of the demo's last event, updated
//! by a JSON Patch, given the demo's invoice object as an attachment —
//! whose chain it then verifies. Without the components (nobody answers the
//! registry) the demo skips this part and says how to see it.

use cim_cid::Cid;
use cim_ius_api::model::AttachedObject;
use cim_ius_api::{Attach, Committed, Create, Get, Target, Update};
use cim_registry_api::{ComponentQuery, ComponentRecord};
use cim_wire::RequestError;
use serde::Serialize;
use serde_json::json;

use crate::services::{Remote, ServiceArgs};
use crate::session::Session;

/// What the components did.
#[derive(Debug, Serialize)]
pub struct ServicesDemo {
    /// The live components, as the registry lists them.
    pub components: Vec<ComponentRecord>,
    /// The unit, if the IUS runs.
    pub unit: Option<UnitDemo>,
}

/// A unit's life in the demo.
#[derive(Debug, Serialize)]
pub struct UnitDemo {
    /// Its id.
    pub id: String,
    /// `create`, caused by the demo's last event.
    pub created: Committed,
    /// `update` by JSON Patch.
    pub updated: Committed,
    /// `attach` of the invoice object.
    pub attached: Committed,
    /// The attachment as the IUS read it (media type, size).
    pub object: Option<AttachedObject>,
    /// Events in its history.
    pub history: usize,
    /// Events the IUS verified on its chain, and the problems it found.
    pub verified: u64,
    /// Problems found (none expected).
    pub problems: Vec<String>,
}

/// Runs the services part, or `None` when no registry answers.
pub async fn run(session: &Session, run: &str, cause: Cid, invoice: Cid) -> anyhow::Result<Option<ServicesDemo>> {
    let args = ServiceArgs { timeout: 10 };
    let registry = Remote::registry(session, &args);
    let components = match registry.client.components(&ComponentQuery::default()).await {
        Err(RequestError::NoResponders { .. }) => return Ok(None),
        result => registry.check(result, |_| None)?.components,
    };
    let ius_runs = components.iter().any(|c| c.registration.name == cim_ius_api::SERVICE.name);
    let unit = if ius_runs { Some(unit(session, &args, run, cause, invoice).await?) } else { None };
    Ok(Some(ServicesDemo { components, unit }))
}

async fn unit(session: &Session, args: &ServiceArgs, run: &str, cause: Cid, invoice: Cid) -> anyhow::Result<UnitDemo> {
    let ius = Remote::ius(session, args);
    let id = format!("minutes-{run}");
    let target = |version: u64| Target { id: id.clone(), expected_version: Some(version), caused_by: vec![] };
    let create = Create {
        kind: "text-document".to_owned(),
        id: Some(id.clone()),
        content: json!({ "text": "Order shipped; invoice attached." }),
        metadata: json!({ "title": format!("Shipping minutes {run}") }),
        tags: vec!["demo".to_owned()],
        caused_by: vec![cause.to_string()],
    };
    let created = ius.check(ius.client.create(&create).await, |_| None)?;
    let patch = json!([
        { "op": "replace", "path": "/content/text", "value": "Order shipped and paid; invoice attached." },
        { "op": "add", "path": "/metadata/language", "value": "en" },
    ]);
    let updated = ius.check(ius.client.update(&Update { target: target(created.version), patch }).await, |_| None)?;
    let attach = Attach {
        target: target(updated.version),
        role: "invoice".to_owned(),
        cid: invoice.to_string(),
        // Raw text: the IUS recognises PDF and PNG by their content, and takes a stated type for the rest.
        media_type: Some("text/plain".to_owned()),
    };
    let attached = ius.check(ius.client.attach(&attach).await, |_| None)?;
    let query = Get { id: Some(id.clone()), min_version: Some(attached.version), ..Get::default() };
    let view = ius.check(ius.client.get(&query).await, |_| None)?;
    let object = view.state.objects.get("invoice").cloned();
    let history = ius.check(ius.client.history(&id).await, |_| None)?.events.len();
    let verified = ius.check(ius.client.verify(&id).await, |_| None)?;
    Ok(UnitDemo {
        id,
        created,
        updated,
        attached,
        object,
        history,
        verified: verified.verified,
        problems: verified.problems,
    })
}

/// The services part for people.
pub fn text(demo: Option<&ServicesDemo>) -> String {
    let Some(demo) = demo else {
        return "\n   (No component answers, so no units: `cim up` runs the whole stack, and `cim demo` beside it \
                also shows the registry and a unit.)\n"
            .to_owned();
    };
    let mut text = format!("\n   The registry (cim-registry) lists {} live components:\n", demo.components.len());
    for record in &demo.components {
        let r = &record.registration;
        text += &format!("     {:<14} {}\n", r.name, r.capabilities.join(", "));
    }
    let Some(unit) = &demo.unit else {
        return text + "   (cim-ius is not among them, so no unit.)\n";
    };
    let object = unit.object.as_ref().map(crate::units_text::object_facts).unwrap_or_default();
    let attached = format!("the invoice attached as \"invoice\" ({object})");
    text +=
        &format!("   The Information Unit System (cim-ius) keeps unit {}, its events in the same stream:\n", unit.id);
    for (version, what, cid) in [
        (unit.created.version, "created (kind text-document), caused by the shipment", &unit.created.event_cid),
        (unit.updated.version, "updated by a JSON Patch (text, language)", &unit.updated.event_cid),
        (unit.attached.version, attached.as_str(), &unit.attached.event_cid),
    ] {
        text += &format!("     v{version} {what:<54} {cid}\n");
    }
    text += &format!(
        "     cim-ius verified its chain of {} events: {}\n",
        unit.history,
        if unit.problems.is_empty() { "no problems".to_owned() } else { unit.problems.join("; ") }
    );
    text
}

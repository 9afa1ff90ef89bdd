//! How `cim units` prints units, their history and lists for people
//! (`--json` prints the replies as JSON instead).

use cim_ius_api::model::AttachedObject;
use cim_ius_api::{Committed, HistoryEntry, Page, UnitView};
use serde_json::Value;

use crate::output::Output;

pub fn print_committed(out: &Output, verb: &str, committed: &Committed) {
    out.emit(committed, || format!("{}\n{verb}: {}", committed.event_cid, committed_text(committed)));
}

pub fn committed_text(committed: &Committed) -> String {
    format!("unit {} is now at version {} (state {})", committed.id, committed.version, committed.state_cid)
}

pub fn history_line(event: &HistoryEntry) -> String {
    let state = event.payload.get("state").and_then(Value::as_str).unwrap_or("-");
    let mut line =
        format!("v{:<4} {:<15} {}  {}  state {state}\n", event.version, event.event_type, event.cid, event.timestamp);
    for parent in &event.parents {
        line.push_str(&format!("      caused by {parent}\n"));
    }
    line
}

pub fn object_facts(object: &AttachedObject) -> String {
    let mut facts = format!("{}, {} bytes", object.media_type, object.size);
    if let (Some(width), Some(height)) = (object.width, object.height) {
        facts.push_str(&format!(", {width}×{height} pixels"));
    }
    facts
}

/// A unit's state for people.
pub fn describe(view: &UnitView) -> String {
    let state = &view.state;
    let pretty = |value: &Value| serde_json::to_string_pretty(value).unwrap_or_default().replace('\n', "\n           ");
    let list = |items: Vec<String>| if items.is_empty() { "none".to_owned() } else { items.join(", ") };
    let relations = list(state.relations.iter().map(|r| format!("{} → {}", r.relation, r.target)).collect());
    let objects = list(
        state
            .objects
            .iter()
            .map(|(role, object)| format!("{role}: {} ({})", link_text(&object.cid), object_facts(object)))
            .collect(),
    );
    format!(
        "unit       {} ({}, schema v{}){}\nversion    {}\nstate      {}\nevent      {}\ncreated    {}\nupdated    {}\n\
         tags       {}\nrelations  {relations}\nobjects    {objects}\nmetadata   {}\ncontent    {}",
        state.id,
        state.kind,
        state.kind_version,
        if state.retired { " — retired" } else { "" },
        state.version,
        view.state_cid,
        view.event_cid,
        state.created_at,
        state.updated_at,
        list(state.tags.iter().cloned().collect()),
        pretty(&state.metadata),
        pretty(&state.content),
    )
}

/// `{"/": "<cid>"}` as the CID.
fn link_text(link: &Value) -> String {
    link.get("/").and_then(Value::as_str).map_or_else(|| link.to_string(), str::to_owned)
}

pub fn list_text(page: &Page) -> String {
    if page.units.is_empty() {
        return "no units".to_owned();
    }
    page.units
        .iter()
        .map(|u| {
            format!(
                "{:<24} {:<16} v{:<4} {}{}{}\n",
                u.id,
                u.kind,
                u.version,
                u.title.as_deref().unwrap_or("-"),
                if u.tags.is_empty() { String::new() } else { format!("  [{}]", u.tags.join(", ")) },
                if u.retired { "  (retired)" } else { "" },
            )
        })
        .collect()
}

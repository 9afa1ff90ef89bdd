//! Reading units: current and past states, history, verification,
//! relationship traversal and paged lists.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use cim_cid::Timestamp;
use cim_ius_api::{
    Direction, Get, History, HistoryEntry, List, Page, Reached, Summary, Traversal, Traverse, UnitView, Verified,
};
use cim_store::AggregateQuery;

use crate::error::{Error, Result};
use crate::events;
use crate::ius::{Ius, json_of, unit_key};
use crate::model::{UnitState, apply, state_cid};
use crate::projection::Current;

/// Default page size of lists.
const DEFAULT_PAGE: usize = 100;

fn view(current: &Current) -> UnitView {
    UnitView {
        state: current.state.clone(),
        state_cid: current.state_cid.to_string(),
        event_cid: current.head.to_string(),
    }
}

impl Ius {
    /// A unit's state: current, or past by version, time or state CID.
    pub async fn get(&self, query: Get) -> Result<UnitView> {
        if let Some(text) = &query.state_cid {
            let cid = text.parse().map_err(|e| Error::InvalidInput {
                field: "state_cid",
                reason: format!("{text:?} is not a CID: {e}"),
            })?;
            let (id, version) =
                self.projection.find_state(&cid).ok_or_else(|| Error::UnknownState { cid: text.clone() })?;
            return self.replay(&id, AggregateQuery::up_to_version(version)).await;
        }
        let id = query.id.ok_or(Error::InvalidInput { field: "id", reason: "give id (or state_cid)".to_owned() })?;
        if let Some(version) = query.version {
            let view = self.replay(&id, AggregateQuery::up_to_version(version)).await?;
            if view.state.version != version {
                return Err(Error::InvalidInput {
                    field: "version",
                    reason: format!("unit {id} has {} versions", view.state.version),
                });
            }
            return Ok(view);
        }
        if let Some(at) = &query.at {
            let time =
                Timestamp::parse_rfc3339(at).map_err(|e| Error::InvalidInput { field: "at", reason: e.to_string() })?;
            return self.replay(&id, AggregateQuery::as_of(time)).await;
        }
        if let Some(version) = query.min_version {
            let wait = Duration::from_millis(self.settings.read_wait_ms);
            if !self.projection.wait_for_version(&id, version, wait).await {
                let current = self.projection.get(&id).map_or(0, |c| c.state.version);
                return Err(Error::VersionConflict { id, expected: version, current });
            }
        }
        Ok(view(&*self.load(&id).await?))
    }

    /// Rebuilds a past state from the unit's events, checking every state
    /// CID the events recorded.
    async fn replay(&self, id: &str, query: AggregateQuery) -> Result<UnitView> {
        let key = unit_key(id)?;
        let stored = self.store.read_aggregate(&key, query).await?;
        let mut state: Option<(UnitState, cim_cid::Cid, cim_cid::Cid)> = None;
        for event in &stored {
            let corrupt = |reason: String| {
                Error::from(cim_store::Error::CorruptEvent { seq: event.seq, cid: Some(event.event.cid), reason })
            };
            let decoded = events::decode(event).map_err(corrupt)?;
            let next = apply(id, state.as_ref().map(|s| &s.0), &decoded.change, event.event.envelope.timestamp())
                .map_err(|e| corrupt(e.to_string()))?;
            let cid = state_cid(&next).map_err(cim_store::Error::from)?;
            if cid != decoded.state {
                return Err(corrupt(format!("replaying it gives state {cid}, but it recorded {}", decoded.state)));
            }
            state = Some((next, cid, event.event.cid));
        }
        let (state, cid, head) = state.ok_or_else(|| Error::UnknownUnit { id: id.to_owned() })?;
        Ok(UnitView { state, state_cid: cid.to_string(), event_cid: head.to_string() })
    }

    /// Every event of a unit with its CID, oldest first.
    pub async fn history(&self, id: &str) -> Result<History> {
        let key = unit_key(id)?;
        let stored = self.store.read_aggregate(&key, AggregateQuery::all()).await?;
        if stored.is_empty() {
            return Err(Error::UnknownUnit { id: id.to_owned() });
        }
        let events = stored
            .iter()
            .map(|s| {
                let envelope = &s.event.envelope;
                HistoryEntry {
                    version: envelope.version(),
                    cid: s.event.cid.to_string(),
                    prev: envelope.prev().map(ToString::to_string),
                    parents: envelope.parents().iter().map(ToString::to_string).collect(),
                    event_type: envelope.event_type().to_owned(),
                    timestamp: envelope.timestamp().to_string(),
                    payload: json_of(envelope.payload()),
                }
            })
            .collect();
        Ok(History { events })
    }

    /// Verifies a unit's chain in the store.
    pub async fn verify(&self, id: &str) -> Result<Verified> {
        let key = unit_key(id)?;
        let report = self.store.verify_aggregate(&key).await?;
        if report.verified == 0 && report.problems.is_empty() {
            return Err(Error::UnknownUnit { id: id.to_owned() });
        }
        Ok(Verified { verified: report.verified, problems: report.problems.iter().map(ToString::to_string).collect() })
    }

    /// Units reachable from `id` over relations, nearest first.
    pub async fn traverse(&self, query: Traverse) -> Result<Traversal> {
        self.load(&query.id).await?;
        let depth = query.depth.unwrap_or(1).min(self.settings.max_traversal_depth);
        let all = self.projection.scan(None, usize::MAX, |_| true);
        let wanted = |relation: &str| query.relation.as_deref().is_none_or(|r| r == relation);
        let mut seen = HashSet::from([query.id.clone()]);
        let mut queue = VecDeque::from([(query.id.clone(), 0)]);
        let mut units = Vec::new();
        while let Some((from, level)) = queue.pop_front() {
            if level == depth {
                continue;
            }
            let mut next: Vec<(String, String)> = Vec::new();
            if matches!(query.direction, Direction::Out | Direction::Both)
                && let Some(current) = self.projection.get(&from)
            {
                next.extend(
                    current
                        .state
                        .relations
                        .iter()
                        .filter(|r| wanted(&r.relation))
                        .map(|r| (r.target.clone(), r.relation.clone())),
                );
            }
            if matches!(query.direction, Direction::In | Direction::Both) {
                for other in &all {
                    for relation in other.state.relations.iter().filter(|r| r.target == from && wanted(&r.relation)) {
                        next.push((other.state.id.clone(), relation.relation.clone()));
                    }
                }
            }
            for (id, relation) in next {
                if seen.insert(id.clone()) {
                    let kind = self.projection.get(&id).map(|c| c.state.kind.clone()).unwrap_or_default();
                    units.push(Reached { id: id.clone(), kind, depth: level + 1, from: from.clone(), relation });
                    queue.push_back((id, level + 1));
                }
            }
        }
        Ok(Traversal { units })
    }

    /// One page of units matching the filters, in id order.
    pub fn list(&self, query: &List) -> Result<Page> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > self.settings.max_page_size {
            return Err(Error::InvalidInput {
                field: "limit",
                reason: format!("must be between 1 and {}", self.settings.max_page_size),
            });
        }
        let keep = |state: &UnitState| {
            (query.include_retired || !state.retired)
                && query.kind.as_deref().is_none_or(|kind| state.kind == kind)
                && query.tag.as_deref().is_none_or(|tag| state.tags.contains(tag))
                && query.metadata.iter().all(|(key, value)| state.metadata.get(key) == Some(value))
        };
        let units: Vec<Arc<Current>> = self.projection.scan(query.after.as_deref(), limit + 1, keep);
        let more = units.len() > limit;
        let units: Vec<Summary> = units
            .iter()
            .take(limit)
            .map(|c| Summary {
                id: c.state.id.clone(),
                kind: c.state.kind.clone(),
                version: c.state.version,
                title: c.state.metadata.get("title").and_then(|t| t.as_str()).map(str::to_owned),
                tags: c.state.tags.iter().cloned().collect(),
                retired: c.state.retired,
                state_cid: c.state_cid.to_string(),
            })
            .collect();
        let next = if more { units.last().map(|u| u.id.clone()) } else { None };
        Ok(Page { units, next })
    }
}

//! The current state of every unit: a projection of the event stream, held
//! in memory — a [`cim_store::Follower`] of the units' events, rebuilt from
//! the units' first event at every start and kept current from the live tail
//! by the same ordered consumer. It holds nothing the stream does not: delete
//! it (restart the process) and it comes back identical, which
//! [`ProjectionStatus::digest`](cim_ius_api::ProjectionStatus::digest) lets anyone check.
//!
//! Each event is applied with [`crate::model::apply`] and the state CID it
//! recorded is checked; a mismatch is kept as a problem, not applied over.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use cim_cid::{Cid, encode_dag_cbor};
use cim_ius_api::ProjectionStatus;
use cim_store::{EventStore, Feed, Follower, FollowerState, Problem, StoredEvent};
use tracing::info;

use crate::events;
use crate::model::{UNIT_AGGREGATE, UnitState, apply, state_cid};

/// A unit's current state and the CIDs that name it.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    /// The state.
    pub state: UnitState,
    /// Its CID.
    pub state_cid: Cid,
    /// The CID of the event that produced it.
    pub head: Cid,
}

/// The state the follower keeps: every unit's current state.
#[derive(Debug, Default)]
struct Units {
    units: BTreeMap<String, Arc<Current>>,
    /// State CID → (unit, version), for queries by state CID.
    by_state: HashMap<Cid, (String, u64)>,
}

impl FollowerState for Units {
    fn apply(&mut self, events: Vec<StoredEvent>, problems: &mut Vec<Problem>) {
        for stored in &events {
            if let Err(reason) = apply_stored(self, stored) {
                problems.push(Problem::Rejected { seq: stored.seq, cid: stored.event.cid, reason });
            }
        }
    }
}

/// The projection: a [`Follower`] of the units' events. Cheap to clone; the
/// feeding task stops with the last clone.
#[derive(Debug, Clone)]
pub struct Projection {
    follower: Follower<Units>,
}

impl Projection {
    /// Replays every unit event stored (only the units' subjects are read)
    /// and returns once they are applied; the same ordered consumer then
    /// follows the units' live tail, so nothing is missed between the two.
    ///
    /// # Errors
    /// Reading the stream fails, or the rebuild stalls ([`cim_store::Error::Stalled`]).
    pub async fn start(store: &EventStore) -> Result<Self, cim_store::Error> {
        let started = std::time::Instant::now();
        let follower = store.follow(Feed::AggregateType(UNIT_AGGREGATE.to_owned()), Units::default()).await?;
        let projection = Self { follower };
        info!(units = projection.len(), elapsed = ?started.elapsed(), "unit projection rebuilt from the event stream");
        Ok(projection)
    }

    /// Waits until the unit events up to stream sequence `seq` are applied.
    ///
    /// # Errors
    /// [`cim_store::Error::Stalled`] when the projection makes no progress
    /// towards `seq` for `patience` (see [`Follower::wait_for`]).
    pub async fn wait_for_seq(&self, seq: u64, patience: Duration) -> Result<(), cim_store::Error> {
        self.follower.wait_for(seq, patience).await
    }

    /// Waits up to `timeout` for unit `id` to reach `version`; true if it did.
    pub async fn wait_for_version(&self, id: &str, version: u64, timeout: Duration) -> bool {
        self.follower.wait_until(timeout, |units| units.units.get(id).is_some_and(|c| c.state.version >= version)).await
    }

    /// Units held.
    pub fn len(&self) -> usize {
        self.follower.read().units.len()
    }

    /// True when no unit is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A unit's current state.
    pub fn get(&self, id: &str) -> Option<Arc<Current>> {
        self.follower.read().units.get(id).cloned()
    }

    /// The unit and version a state CID names.
    pub fn find_state(&self, cid: &Cid) -> Option<(String, u64)> {
        self.follower.read().by_state.get(cid).cloned()
    }

    /// Units in id order after `after`, for which `keep` holds, at most `limit`.
    pub fn scan(&self, after: Option<&str>, limit: usize, keep: impl Fn(&UnitState) -> bool) -> Vec<Arc<Current>> {
        let inner = self.follower.read();
        let range = match after {
            Some(after) => inner.units.range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => inner.units.range::<str, _>(..),
        };
        range.map(|(_, current)| current).filter(|current| keep(&current.state)).take(limit).cloned().collect()
    }

    /// Applies an event this process appended, without waiting for the tail
    /// to deliver it (which then finds it applied).
    pub fn apply_appended(&self, stored: &StoredEvent) {
        self.follower.apply_now(std::slice::from_ref(stored));
    }

    /// What the projection holds.
    pub fn status(&self) -> ProjectionStatus {
        let (units, digest) = {
            let inner = self.follower.read();
            let pairs: Vec<(String, String)> =
                inner.units.iter().map(|(id, current)| (id.clone(), current.state_cid.to_string())).collect();
            (inner.units.len(), encode_dag_cbor(&pairs).map(|(cid, _)| cid.to_string()).unwrap_or_default())
        };
        ProjectionStatus {
            units,
            applied_seq: self.follower.applied_seq(),
            digest,
            problems: self.follower.problems().iter().map(ToString::to_string).collect(),
        }
    }
}

/// Applies one event of a unit if it is the unit's next; earlier versions
/// were applied already, later ones arrive in order from the tail. An event
/// that does not replay to the state it recorded is refused (and kept as a
/// problem by the follower), not applied over.
fn apply_stored(units: &mut Units, stored: &StoredEvent) -> Result<(), String> {
    let envelope = &stored.event.envelope;
    let id = envelope.aggregate_id();
    let current = units.units.get(id).cloned();
    let version = current.as_ref().map_or(0, |c| c.state.version);
    if envelope.version() != version + 1 {
        return Ok(());
    }
    let (state, cid) = events::decode(stored)
        .and_then(|event| {
            let state = apply(id, current.as_ref().map(|c| &c.state), &event.change, envelope.timestamp())
                .map_err(|e| e.to_string())?;
            let cid = state_cid(&state).map_err(|e| e.to_string())?;
            if cid != event.state {
                return Err(format!("replaying it gives state {cid}, but the event recorded {}", event.state));
            }
            Ok((state, cid))
        })
        .map_err(|reason| format!("unit {id} version {}: {reason}", envelope.version()))?;
    units.by_state.insert(cid, (id.to_owned(), state.version));
    units.units.insert(id.to_owned(), Arc::new(Current { state, state_cid: cid, head: stored.event.cid }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use cim_cid::{AggregateKey, NewEvent, ipld_from_json};
    use cim_store::{Error, ExpectedVersion, StallCause, StoreConfig};
    use cim_test_support::NatsServer;

    use super::*;

    const PATIENCE: Duration = Duration::from_secs(3);
    /// A bound only a hang reaches.
    const HANG: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_stalled_feed_is_reported_within_the_patience() {
        let mut server = NatsServer::start().await;
        let store = EventStore::provision(server.connect().await, StoreConfig::default()).await.expect("store");
        let projection = Projection::start(&store).await.expect("projection");
        let note = AggregateKey::new("note", "n1").expect("key");
        let payload = ipld_from_json(&serde_json::json!({})).expect("IPLD");
        let other = store
            .append(&note, ExpectedVersion::Exact(0), vec![NewEvent::new("Written", payload)])
            .await
            .expect("append")
            .events[0]
            .seq;

        // No unit event is stored up to another aggregate's event.
        tokio::time::timeout(HANG, projection.wait_for_seq(other, PATIENCE)).await.expect("ends").expect("reached");
        assert_eq!(projection.status().applied_seq, other);

        // A position that is never stored.
        let error = tokio::time::timeout(HANG, projection.wait_for_seq(other + 10, PATIENCE))
            .await
            .expect("the wait ends")
            .expect_err("a stall");
        assert!(
            matches!(error, Error::Stalled { cause: StallCause::NotStored { last }, .. } if last == other),
            "{error}"
        );

        // The server goes away.
        server.stop().await;
        let error = tokio::time::timeout(HANG, projection.wait_for_seq(other + 1, PATIENCE))
            .await
            .expect("the wait ends")
            .expect_err("a stall");
        assert!(matches!(error, Error::Stalled { cause: StallCause::Unreachable { .. }, .. }), "{error}");
        assert!(projection.status().problems.is_empty());
    }
}

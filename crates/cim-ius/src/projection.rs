//! The current state of every unit: a projection of the event stream, held
//! in memory, rebuilt from the units' first event at every start and kept
//! current from the live tail, which starts right after the last event the
//! rebuild read. It holds nothing the stream does not: delete it (restart the
//! process) and it comes back identical, which [`Projection::digest`] lets
//! anyone check.
//!
//! Each event is applied with [`crate::model::apply`] and the state CID it
//! recorded is checked; a mismatch is kept as a problem, not applied over.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cim_cid::{Cid, encode_dag_cbor};
use cim_store::{EventStore, StartAt, StoredEvent};
use futures::StreamExt;
use tokio::sync::watch;
use tracing::{error, info, warn};

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

#[derive(Debug, Default)]
struct Inner {
    units: BTreeMap<String, Arc<Current>>,
    /// State CID → (unit, version), for queries by state CID.
    by_state: HashMap<Cid, (String, u64)>,
    problems: Vec<String>,
}

/// The projection. Cheap to clone; the feeding task stops with the last clone.
#[derive(Debug, Clone)]
pub struct Projection {
    inner: Arc<RwLock<Inner>>,
    applied: watch::Receiver<u64>,
    _feeder: Arc<Feeder>,
}

#[derive(Debug)]
struct Feeder(tokio::task::JoinHandle<()>);

impl Drop for Feeder {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Applies one read unit event; returns its stream sequence unless reading
/// itself failed. A corrupt event is kept as a problem and skipped.
fn apply_item(inner: &RwLock<Inner>, item: Result<StoredEvent, cim_store::Error>) -> Option<u64> {
    match item {
        Ok(stored) => {
            apply_stored(inner, &stored);
            Some(stored.seq)
        }
        Err(cim_store::Error::CorruptEvent { seq, cid, reason }) => {
            error!(seq, ?cid, %reason, "corrupt event in the stream; skipped");
            inner.write().expect("projection lock").problems.push(format!("stream sequence {seq}: {reason}"));
            Some(seq)
        }
        Err(e) => {
            warn!(error = %e, "reading the event stream for the projection");
            None
        }
    }
}

/// What the projection holds, for comparing two of them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProjectionStatus {
    /// Units held.
    pub units: usize,
    /// Stream sequence of the last event applied.
    pub applied_seq: u64,
    /// CID of the sorted list of `[unit id, state CID]`: equal digests, equal projections.
    pub digest: String,
    /// Events that could not be applied.
    pub problems: Vec<String>,
}

impl Projection {
    /// Replays every unit event stored (only the units' subjects are read)
    /// and returns once they are applied; then follows the units' live tail
    /// from the next stream sequence, so nothing is missed between the two.
    pub async fn start(store: &EventStore) -> Result<Self, cim_store::Error> {
        let started = std::time::Instant::now();
        let inner = Arc::new(RwLock::new(Inner::default()));
        let mut applied_seq = 0;
        let mut stored = store.read_type(UNIT_AGGREGATE, StartAt::Beginning).await?;
        while let Some(item) = stored.next().await {
            applied_seq = apply_item(&inner, item).unwrap_or(applied_seq);
        }
        let mut events = store.subscribe_type(UNIT_AGGREGATE, StartAt::Sequence(applied_seq + 1)).await?;
        let (applied_tx, applied) = watch::channel(applied_seq);
        let feeder = tokio::spawn({
            let inner = inner.clone();
            async move {
                while let Some(item) = events.next().await {
                    if let Some(seq) = apply_item(&inner, item) {
                        applied_tx.send_replace(seq);
                    }
                }
            }
        });
        let projection = Self { inner, applied, _feeder: Arc::new(Feeder(feeder)) };
        info!(units = projection.len(), elapsed = ?started.elapsed(), "unit projection rebuilt from the event stream");
        Ok(projection)
    }

    /// Waits until the events up to stream sequence `seq` are applied.
    pub async fn wait_for_seq(&self, seq: u64) {
        let mut applied = self.applied.clone();
        let _ = applied.wait_for(|&applied| applied >= seq).await;
    }

    /// Waits up to `timeout` for unit `id` to reach `version`; true if it did.
    pub async fn wait_for_version(&self, id: &str, version: u64, timeout: Duration) -> bool {
        let mut applied = self.applied.clone();
        let reached = |p: &Self| p.get(id).is_some_and(|c| c.state.version >= version);
        let wait = async {
            loop {
                if reached(self) {
                    return;
                }
                if applied.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        reached(self)
    }

    /// Units held.
    pub fn len(&self) -> usize {
        self.inner.read().expect("projection lock").units.len()
    }

    /// True when no unit is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A unit's current state.
    pub fn get(&self, id: &str) -> Option<Arc<Current>> {
        self.inner.read().expect("projection lock").units.get(id).cloned()
    }

    /// The unit and version a state CID names.
    pub fn find_state(&self, cid: &Cid) -> Option<(String, u64)> {
        self.inner.read().expect("projection lock").by_state.get(cid).cloned()
    }

    /// Units in id order after `after`, for which `keep` holds, at most `limit`.
    pub fn scan(&self, after: Option<&str>, limit: usize, keep: impl Fn(&UnitState) -> bool) -> Vec<Arc<Current>> {
        let inner = self.inner.read().expect("projection lock");
        let range = match after {
            Some(after) => inner.units.range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => inner.units.range::<str, _>(..),
        };
        range.map(|(_, current)| current).filter(|current| keep(&current.state)).take(limit).cloned().collect()
    }

    /// Applies an event this process appended, without waiting for the tail
    /// to deliver it (which then finds it applied).
    pub fn apply_appended(&self, stored: &StoredEvent) {
        apply_stored(&self.inner, stored);
    }

    /// What the projection holds.
    pub fn status(&self) -> ProjectionStatus {
        let inner = self.inner.read().expect("projection lock");
        let pairs: Vec<(String, String)> =
            inner.units.iter().map(|(id, current)| (id.clone(), current.state_cid.to_string())).collect();
        let digest = encode_dag_cbor(&pairs).map(|(cid, _)| cid.to_string()).unwrap_or_default();
        ProjectionStatus {
            units: inner.units.len(),
            applied_seq: *self.applied.borrow(),
            digest,
            problems: inner.problems.clone(),
        }
    }
}

/// Applies one event of a unit if it is the unit's next; earlier versions
/// were applied already, later ones arrive in order from the tail.
fn apply_stored(inner: &RwLock<Inner>, stored: &StoredEvent) {
    let envelope = &stored.event.envelope;
    let id = envelope.aggregate_id();
    let mut inner = inner.write().expect("projection lock");
    let current = inner.units.get(id).cloned();
    let version = current.as_ref().map_or(0, |c| c.state.version);
    if envelope.version() != version + 1 {
        return;
    }
    let outcome = events::decode(stored).and_then(|event| {
        let state = apply(id, current.as_ref().map(|c| &c.state), &event.change, envelope.timestamp())
            .map_err(|e| e.to_string())?;
        let cid = state_cid(&state).map_err(|e| e.to_string())?;
        if cid != event.state {
            return Err(format!("replaying it gives state {cid}, but the event recorded {}", event.state));
        }
        Ok((state, cid))
    });
    match outcome {
        Ok((state, cid)) => {
            inner.by_state.insert(cid, (id.to_owned(), state.version));
            inner.units.insert(id.to_owned(), Arc::new(Current { state, state_cid: cid, head: stored.event.cid }));
        }
        Err(reason) => {
            error!(unit = id, version = envelope.version(), %reason, "unit event not applied");
            inner.problems.push(format!("unit {id} version {}: {reason}", envelope.version()));
        }
    }
}

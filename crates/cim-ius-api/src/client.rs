//! The client side of the IUS's request API.

use std::time::Duration;

use cim_wire::{Caller, Empty, RequestError};
use serde_json::Value;

use crate::{
    ATTACH, Attach, CREATE, Committed, Create, DETACH, Detach, GET, Get, HISTORY, History, IusCode, KIND_LIST,
    KIND_REGISTER, Kind, Kinds, LIST, List, Page, ProjectionStatus, RELATE, RETIRE, RegisterKind, Relate, Retire,
    STATUS, TAG, TRAVERSE, Tags, Traversal, Traverse, UNRELATE, UNTAG, UPDATE, UnitRef, UnitView, Update, VERIFY,
    Verified,
};

/// What an IUS request ends with.
pub type Result<T> = std::result::Result<T, RequestError<IusCode>>;

/// Talks to any instance of the IUS. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    caller: Caller,
}

impl Client {
    /// A client on `nats`, waiting `timeout` for each reply.
    pub fn new(nats: async_nats::Client, timeout: Duration) -> Self {
        Self { caller: Caller::new(nats, timeout) }
    }

    /// A client calling through `caller`.
    pub fn with_caller(caller: Caller) -> Self {
        Self { caller }
    }

    /// The caller it uses.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Creates a unit.
    pub async fn create(&self, command: &Create) -> Result<Committed> {
        self.caller.call(&CREATE, command).await
    }

    /// Patches a unit's content and metadata.
    pub async fn update(&self, command: &Update) -> Result<Committed> {
        self.caller.call(&UPDATE, command).await
    }

    /// Adds tags.
    pub async fn tag(&self, command: &Tags) -> Result<Committed> {
        self.caller.call(&TAG, command).await
    }

    /// Removes tags.
    pub async fn untag(&self, command: &Tags) -> Result<Committed> {
        self.caller.call(&UNTAG, command).await
    }

    /// Adds a relation.
    pub async fn relate(&self, command: &Relate) -> Result<Committed> {
        self.caller.call(&RELATE, command).await
    }

    /// Removes a relation.
    pub async fn unrelate(&self, command: &Relate) -> Result<Committed> {
        self.caller.call(&UNRELATE, command).await
    }

    /// Attaches an object already in the object store (put it there first,
    /// e.g. with `cim_store::ObjectStore::put`).
    pub async fn attach(&self, command: &Attach) -> Result<Committed> {
        self.caller.call(&ATTACH, command).await
    }

    /// Detaches an object.
    pub async fn detach(&self, command: &Detach) -> Result<Committed> {
        self.caller.call(&DETACH, command).await
    }

    /// Retires a unit.
    pub async fn retire(&self, command: &Retire) -> Result<Committed> {
        self.caller.call(&RETIRE, command).await
    }

    /// A unit's state, current or past.
    pub async fn get(&self, query: &Get) -> Result<UnitView> {
        self.caller.call(&GET, query).await
    }

    /// A unit's events with their CIDs.
    pub async fn history(&self, id: &str) -> Result<History> {
        self.caller.call(&HISTORY, &UnitRef { id: id.to_owned() }).await
    }

    /// Verifies a unit's chain.
    pub async fn verify(&self, id: &str) -> Result<Verified> {
        self.caller.call(&VERIFY, &UnitRef { id: id.to_owned() }).await
    }

    /// Walks relations.
    pub async fn traverse(&self, query: &Traverse) -> Result<Traversal> {
        self.caller.call(&TRAVERSE, query).await
    }

    /// A page of units.
    pub async fn list(&self, query: &List) -> Result<Page> {
        self.caller.call(&LIST, query).await
    }

    /// Registers a kind.
    pub async fn register_kind(&self, kind: &str, schema: Value) -> Result<Kind> {
        self.caller.call(&KIND_REGISTER, &RegisterKind { kind: kind.to_owned(), schema }).await
    }

    /// Every kind.
    pub async fn kinds(&self) -> Result<Kinds> {
        self.caller.call(&KIND_LIST, &Empty {}).await
    }

    /// The answering instance's projection status.
    pub async fn status(&self) -> Result<ProjectionStatus> {
        self.caller.call(&STATUS, &Empty {}).await
    }
}

//! A client of the IUS request API over NATS, for the CLI and other
//! components. Objects are put into the object store directly (a standard
//! JetStream object store) and then attached by CID.

use std::time::Duration;

use cim_runtime::{RequestError, request};
use cim_store::{ObjectStore, StoreConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{
    Attach, Committed, Create, Detach, Get, History, Kind, Kinds, List, Page, RegisterKind, Relate, Retire, Status,
    Tags, Traversal, Traverse, UnitRef, UnitView, Update, Verified, endpoints, subject,
};

/// Why putting a file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// Storing the object failed.
    #[error("storing the object: {0}")]
    Store(Box<cim_store::Error>),
    /// The attach command failed.
    #[error(transparent)]
    Request(#[from] RequestError),
}

impl From<cim_store::Error> for AttachError {
    fn from(error: cim_store::Error) -> Self {
        Self::Store(Box::new(error))
    }
}

/// Talks to any instance of the IUS. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    nats: async_nats::Client,
    timeout: Duration,
}

impl Client {
    /// A client on `nats`, waiting `timeout` for each reply.
    pub fn new(nats: async_nats::Client, timeout: Duration) -> Self {
        Self { nats, timeout }
    }

    async fn call<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        endpoint: &str,
        body: &Req,
    ) -> Result<Resp, RequestError> {
        request(&self.nats, &subject(endpoint), body, self.timeout).await
    }

    /// Creates a unit.
    pub async fn create(&self, command: &Create) -> Result<Committed, RequestError> {
        self.call(endpoints::CREATE, command).await
    }

    /// Patches a unit's content and metadata.
    pub async fn update(&self, command: &Update) -> Result<Committed, RequestError> {
        self.call(endpoints::UPDATE, command).await
    }

    /// Adds tags.
    pub async fn tag(&self, command: &Tags) -> Result<Committed, RequestError> {
        self.call(endpoints::TAG, command).await
    }

    /// Removes tags.
    pub async fn untag(&self, command: &Tags) -> Result<Committed, RequestError> {
        self.call(endpoints::UNTAG, command).await
    }

    /// Adds a relation.
    pub async fn relate(&self, command: &Relate) -> Result<Committed, RequestError> {
        self.call(endpoints::RELATE, command).await
    }

    /// Removes a relation.
    pub async fn unrelate(&self, command: &Relate) -> Result<Committed, RequestError> {
        self.call(endpoints::UNRELATE, command).await
    }

    /// Attaches an object already in the object store.
    pub async fn attach(&self, command: &Attach) -> Result<Committed, RequestError> {
        self.call(endpoints::ATTACH, command).await
    }

    /// Puts `bytes` into the object store of `store` and attaches them to a unit under `role`.
    pub async fn attach_bytes(
        &self,
        store: &StoreConfig,
        target: crate::api::Target,
        role: &str,
        bytes: &[u8],
    ) -> Result<Committed, AttachError> {
        let objects = ObjectStore::open(self.nats.clone(), store).await?;
        let cid = objects.put_bytes(bytes).await?;
        Ok(self.attach(&Attach { target, role: role.to_owned(), cid: cid.to_string(), media_type: None }).await?)
    }

    /// Detaches an object.
    pub async fn detach(&self, command: &Detach) -> Result<Committed, RequestError> {
        self.call(endpoints::DETACH, command).await
    }

    /// Retires a unit.
    pub async fn retire(&self, command: &Retire) -> Result<Committed, RequestError> {
        self.call(endpoints::RETIRE, command).await
    }

    /// A unit's state, current or past.
    pub async fn get(&self, query: &Get) -> Result<UnitView, RequestError> {
        self.call(endpoints::GET, query).await
    }

    /// A unit's events with their CIDs.
    pub async fn history(&self, id: &str) -> Result<History, RequestError> {
        self.call(endpoints::HISTORY, &UnitRef { id: id.to_owned() }).await
    }

    /// Verifies a unit's chain.
    pub async fn verify(&self, id: &str) -> Result<Verified, RequestError> {
        self.call(endpoints::VERIFY, &UnitRef { id: id.to_owned() }).await
    }

    /// Walks relations.
    pub async fn traverse(&self, query: &Traverse) -> Result<Traversal, RequestError> {
        self.call(endpoints::TRAVERSE, query).await
    }

    /// A page of units.
    pub async fn list(&self, query: &List) -> Result<Page, RequestError> {
        self.call(endpoints::LIST, query).await
    }

    /// Registers a kind.
    pub async fn register_kind(&self, kind: &str, schema: Value) -> Result<Kind, RequestError> {
        self.call(endpoints::KIND_REGISTER, &RegisterKind { kind: kind.to_owned(), schema }).await
    }

    /// Every kind.
    pub async fn kinds(&self) -> Result<Kinds, RequestError> {
        self.call(endpoints::KIND_LIST, &serde_json::json!({})).await
    }

    /// The answering instance's projection status.
    pub async fn status(&self) -> Result<Status, RequestError> {
        self.call(endpoints::STATUS, &serde_json::json!({})).await
    }
}

//! The client side of the registry's request API.

use std::time::Duration;

use cim_wire::{Caller, Empty, RequestError};
use serde_json::Value;

use crate::{
    ComponentList, ComponentQuery, GRAPH, Graph, LIST, ListSchemas, RegisterSchema, Registered, RegistryCode,
    SCHEMA_GET, SCHEMA_HISTORY, SCHEMA_LIST, SCHEMA_REGISTER, SCHEMA_VALIDATE, SchemaHistory, SchemaRef, SchemaTypes,
    SchemaVersion, Validate, ValidationReport,
};

/// What a registry request ends with.
pub type Result<T> = std::result::Result<T, RequestError<RegistryCode>>;

/// Talks to any instance of the registry. Cheap to clone.
///
/// Registration is not here: the runtime sends it (`REGISTER` with
/// [`Caller::call_for`]) for every component.
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

    /// Live components matching `query`.
    pub async fn components(&self, query: &ComponentQuery) -> Result<ComponentList> {
        self.caller.call(&LIST, query).await
    }

    /// The component graph.
    pub async fn graph(&self) -> Result<Graph> {
        self.caller.call(&GRAPH, &Empty {}).await
    }

    /// Registers a new version of a schema type.
    pub async fn register_schema(&self, request: &RegisterSchema) -> Result<Registered> {
        self.caller.call(&SCHEMA_REGISTER, request).await
    }

    /// One version of a type (the latest when `version` is `None`).
    pub async fn schema(&self, type_name: &str, version: Option<u64>) -> Result<SchemaVersion> {
        self.caller.call(&SCHEMA_GET, &SchemaRef { type_name: type_name.to_owned(), version }).await
    }

    /// Every version of a type.
    pub async fn schema_history(&self, type_name: &str) -> Result<SchemaHistory> {
        self.caller.call(&SCHEMA_HISTORY, &SchemaRef { type_name: type_name.to_owned(), version: None }).await
    }

    /// Schema types, optionally only those starting with `prefix`.
    pub async fn schemas(&self, prefix: Option<&str>) -> Result<SchemaTypes> {
        self.caller.call(&SCHEMA_LIST, &ListSchemas { prefix: prefix.map(str::to_owned) }).await
    }

    /// Validates `instance` against a version of a type.
    pub async fn validate(&self, type_name: &str, version: Option<u64>, instance: &Value) -> Result<ValidationReport> {
        let request = Validate { type_name: type_name.to_owned(), version, instance: instance.clone() };
        self.caller.call(&SCHEMA_VALIDATE, &request).await
    }
}

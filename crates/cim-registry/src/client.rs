//! A client of the registry's request API over NATS.

use std::time::Duration;

use cim_runtime::{RequestError, request};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{
    ComponentList, ComponentQuery, Graph, ListSchemas, RegisterSchema, Registered, SchemaHistory, SchemaRef,
    SchemaTypes, SchemaVersion, Validate, ValidationReport, endpoints, subject,
};

/// Talks to any instance of the registry. Cheap to clone.
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

    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        endpoint: &str,
        body: &Req,
    ) -> Result<Resp, RequestError> {
        request(&self.nats, &subject(endpoint), body, self.timeout).await
    }

    /// Live components matching `query`.
    pub async fn components(&self, query: &ComponentQuery) -> Result<ComponentList, RequestError> {
        self.call(endpoints::LIST, query).await
    }

    /// The component graph.
    pub async fn graph(&self) -> Result<Graph, RequestError> {
        self.call(endpoints::GRAPH, &serde_json::json!({})).await
    }

    /// Registers a new version of a schema type.
    pub async fn register_schema(&self, request: &RegisterSchema) -> Result<Registered, RequestError> {
        self.call(endpoints::SCHEMA_REGISTER, request).await
    }

    /// One version of a type (the latest when `version` is `None`).
    pub async fn schema(&self, type_name: &str, version: Option<u64>) -> Result<SchemaVersion, RequestError> {
        self.call(endpoints::SCHEMA_GET, &SchemaRef { type_name: type_name.to_owned(), version }).await
    }

    /// Every version of a type.
    pub async fn schema_history(&self, type_name: &str) -> Result<SchemaHistory, RequestError> {
        self.call(endpoints::SCHEMA_HISTORY, &SchemaRef { type_name: type_name.to_owned(), version: None }).await
    }

    /// Schema types, optionally only those starting with `prefix`.
    pub async fn schemas(&self, prefix: Option<&str>) -> Result<SchemaTypes, RequestError> {
        self.call(endpoints::SCHEMA_LIST, &ListSchemas { prefix: prefix.map(str::to_owned) }).await
    }

    /// Validates `instance` against a version of a type.
    pub async fn validate(
        &self,
        type_name: &str,
        version: Option<u64>,
        instance: &Value,
    ) -> Result<ValidationReport, RequestError> {
        self.call(
            endpoints::VALIDATE,
            &Validate { type_name: type_name.to_owned(), version, instance: instance.clone() },
        )
        .await
    }
}

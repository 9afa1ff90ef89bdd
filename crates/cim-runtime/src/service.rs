//! A component's request API: named endpoints under one subject prefix,
//! served as a NATS micro service so `$SRV.PING`, `$SRV.INFO` and
//! `$SRV.STATS` discover and describe it.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::ApiError;
use crate::registration::SchemaUse;

/// One request as an endpoint handler sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The subject it arrived on.
    pub subject: String,
    /// Its headers, if any.
    pub headers: Option<HeaderMap>,
    /// The body.
    pub payload: Bytes,
}

impl Request {
    /// Decodes the body as JSON; a mismatch is a `bad_request` naming the
    /// JSON path, line and column.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let mut deserializer = serde_json::Deserializer::from_slice(&self.payload);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            let message = if path == "." {
                format!("invalid request: {}", e.inner())
            } else {
                format!("invalid request at `{path}`: {}", e.inner())
            };
            ApiError::bad_request(message).with_details(serde_json::json!({ "path": path }))
        })
    }
}

pub(crate) type Handler = Arc<dyn Fn(Request) -> BoxFuture<'static, Result<Bytes, ApiError>> + Send + Sync>;

/// What a component serves: its micro service name and version, the
/// subject prefix of its endpoints, the endpoints, and what it tells the
/// registry about itself.
#[derive(Clone)]
pub struct ServiceDefinition {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) description: String,
    pub(crate) prefix: String,
    pub(crate) endpoints: Vec<(String, Handler)>,
    pub(crate) capabilities: Vec<String>,
    pub(crate) schemas: SchemaUse,
}

impl fmt::Debug for ServiceDefinition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceDefinition")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("endpoints", &self.endpoints.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ServiceDefinition {
    /// A service `name` (`[A-Za-z0-9_-]`) at `version` (SemVer) whose
    /// endpoints are `<prefix>.<endpoint>`.
    pub fn new(name: impl Into<String>, version: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            prefix: prefix.into(),
            endpoints: Vec::new(),
            capabilities: Vec::new(),
            schemas: SchemaUse::default(),
        }
    }

    /// What the service does.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// A capability others discover the component by.
    pub fn capability(mut self, capability: impl Into<String>) -> Self {
        self.capabilities.push(capability.into());
        self
    }

    /// Schema types the component produces.
    pub fn produces(mut self, types: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.schemas.produces.extend(types.into_iter().map(Into::into));
        self
    }

    /// Schema types the component consumes.
    pub fn consumes(mut self, types: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.schemas.consumes.extend(types.into_iter().map(Into::into));
        self
    }

    /// An endpoint on `<prefix>.<name>` taking raw requests.
    pub fn raw_endpoint<F, Fut>(mut self, name: &str, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bytes, ApiError>> + Send + 'static,
    {
        self.endpoints.push((name.to_owned(), Arc::new(move |request| Box::pin(handler(request)))));
        self
    }

    /// An endpoint on `<prefix>.<name>` taking a JSON `T` and answering a JSON `R`.
    pub fn endpoint<T, R, F, Fut>(self, name: &str, handler: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        R: Serialize + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ApiError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.raw_endpoint(name, move |request| {
            let handler = handler.clone();
            async move {
                let body: T = request.json()?;
                let reply = handler(body).await?;
                serde_json::to_vec(&reply)
                    .map(Bytes::from)
                    .map_err(|e| ApiError::internal(format!("encoding the reply: {e}")))
            }
        })
    }

    /// The subjects of all endpoints.
    pub fn subjects(&self) -> Vec<String> {
        self.endpoints.iter().map(|(name, _)| format!("{}.{name}", self.prefix)).collect()
    }
}

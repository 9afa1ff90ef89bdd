//! A component's request API: typed endpoints served as a NATS micro
//! service, so `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` discover and
//! describe it; and the HTTP routes it adds beside the runtime's own.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_nats::HeaderMap;
use bytes::Bytes;
use cim_registry_api::SchemaUse;
use cim_wire::{ApiError, Code, Endpoint, NoCode, Service, WireError};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

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
    /// Decodes the body strictly ([`crate::strict_json`]): a JSON object,
    /// no unknown field, no integer beyond 64 bits. A refusal is a
    /// `bad_request` naming where (a JSON path or a byte offset).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        crate::strict_json::from_slice(&self.payload).map_err(|refusal| {
            let separator = if refusal.path == "." { ":" } else { "" };
            ApiError::bad_request(format!("invalid request{separator} {refusal}"))
                .with_details(serde_json::json!({ "path": refusal.path }))
        })
    }
}

pub(crate) type Handler = Arc<dyn Fn(Request) -> BoxFuture<'static, Result<Bytes, WireError>> + Send + Sync>;

/// One endpoint as the runtime serves it.
#[derive(Clone)]
pub(crate) struct Served {
    /// Its name below the prefix, e.g. `units.create`: the metrics label.
    pub name: String,
    /// Its subject, e.g. `cim.service.ius.units.create`.
    pub subject: String,
    pub handler: Handler,
}

impl Served {
    /// The micro endpoint name: `[A-Za-z0-9_-]`, e.g. `units-create`;
    /// `components.register.*` becomes `components-register`.
    pub fn micro_name(&self) -> String {
        self.name.strip_suffix(".*").unwrap_or(&self.name).replace('.', "-")
    }
}

/// What a component serves: its micro service name and version, the
/// subject prefix of its endpoints, the endpoints, the HTTP routes it adds,
/// and what it tells the registry about itself.
#[derive(Clone)]
pub struct ServiceDefinition {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) description: String,
    pub(crate) prefix: String,
    pub(crate) endpoints: Vec<Served>,
    pub(crate) capabilities: Vec<String>,
    pub(crate) schemas: SchemaUse,
    pub(crate) routes: Option<axum::Router>,
}

impl fmt::Debug for ServiceDefinition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceDefinition")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("endpoints", &self.endpoints.iter().map(|e| &e.subject).collect::<Vec<_>>())
            .field("routes", &self.routes.is_some())
            .finish_non_exhaustive()
    }
}

/// Encodes a handler's reply, or its error for the wire.
fn reply<R: Serialize, C: Code>(outcome: Result<R, ApiError<C>>) -> Result<Bytes, WireError> {
    let reply = outcome?;
    serde_json::to_vec(&reply)
        .map(Bytes::from)
        .map_err(|e| ApiError::<NoCode>::internal(format!("encoding the reply: {e}")).into())
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
            routes: None,
        }
    }

    /// The service an API crate declares (its name and prefix), at `version`.
    pub fn of(service: Service, version: impl Into<String>) -> Self {
        Self::new(service.name, version, service.prefix)
    }

    /// What the service does.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// A capability others discover the component by, named like a subject
    /// (`units.write`): the registry matches patterns by subject tokens.
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

    /// HTTP routes served beside the runtime's `/metrics`, `/healthz` and
    /// `/readyz` (which win over a route of the same path), on `[http]
    /// listen`, from the moment the service starts serving. Calling it again
    /// merges more routes.
    pub fn routes(mut self, router: axum::Router) -> Self {
        self.routes = Some(match self.routes.take() {
            Some(routes) => routes.merge(router),
            None => router,
        });
        self
    }

    /// Serves `endpoint`: its body decoded as `Req` (a mismatch is
    /// `bad_request`), `handler`'s reply encoded as `Resp`, its error sent
    /// as the error reply.
    pub fn handle<Req, Resp, C, F, Fut>(self, endpoint: &Endpoint<Req, Resp, C>, handler: F) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + 'static,
        C: Code,
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, ApiError<C>>> + Send + 'static,
    {
        self.handle_for(endpoint, move |_token, request| handler(request))
    }

    /// As [`ServiceDefinition::handle`], for an endpoint taking a subject
    /// token (`….*`): `handler` also receives the token the request's
    /// subject ends with (e.g. the registering component's name). For an
    /// endpoint without one the token is empty.
    pub fn handle_for<Req, Resp, C, F, Fut>(self, endpoint: &Endpoint<Req, Resp, C>, handler: F) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + 'static,
        C: Code,
        F: Fn(String, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, ApiError<C>>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let endpoint = *endpoint;
        let serve: Handler = Arc::new(move |request: Request| {
            let handler = handler.clone();
            Box::pin(async move {
                let token = if endpoint.takes_token() {
                    match endpoint.token_of(&request.subject) {
                        Some(token) => token.to_owned(),
                        None => {
                            let message = format!("{} is not a subject of {}", request.subject, endpoint.subject());
                            return Err(ApiError::<NoCode>::bad_request(message).into());
                        }
                    }
                } else {
                    String::new()
                };
                let body: Req = request.json()?;
                reply(handler(token, body).await)
            })
        });
        self.add(endpoint.name().to_owned(), endpoint.subject(), serve)
    }

    /// An endpoint on `<prefix>.<name>` taking raw requests and answering
    /// raw bytes, for what a typed endpoint cannot express.
    pub fn raw_endpoint<F, Fut>(self, name: &str, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bytes, WireError>> + Send + 'static,
    {
        let subject = format!("{}.{name}", self.prefix);
        self.add(name.to_owned(), subject, Arc::new(move |request| Box::pin(handler(request))))
    }

    fn add(mut self, name: String, subject: String, handler: Handler) -> Self {
        self.endpoints.push(Served { name, subject, handler });
        self
    }

    /// The subjects of all endpoints.
    pub fn subjects(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| e.subject.clone()).collect()
    }
}

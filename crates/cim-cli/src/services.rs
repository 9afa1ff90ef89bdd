//! Reaching CIM's services (the Information Unit System, the Component
//! Registry) on the session's NATS connection: their clients, and what a
//! failed request means for the operator. `cim units` and `cim registry`
//! are thin on top: each builds a request, calls the client and prints the
//! reply; the services do the work and the checking.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cim_ius_api::IusCode;
use cim_pipeline_api::PipelineCode;
use cim_registry_api::RegistryCode;
use cim_wire::{ApiError, Code, NoCode, RequestError, WireError};
use clap::Args;

use crate::session::Session;

/// Options of the commands that talk to a service.
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    /// Seconds to wait for each reply (a service that is not running is reported at once).
    #[arg(long, global = true, default_value_t = 10, value_name = "SECS")]
    pub timeout: u64,
}

/// A service as the operator knows it.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// Its binary and micro service name.
    pub name: &'static str,
    /// What it is, for people.
    pub title: &'static str,
}

/// The Information Unit System.
pub const IUS: Service = Service { name: cim_ius_api::SERVICE.name, title: "the Information Unit System" };

/// The Pipeline Engine.
pub const PIPELINE: Service = Service { name: cim_pipeline_api::SERVICE.name, title: "the Pipeline Engine" };

/// The Component Registry.
pub const REGISTRY: Service = Service { name: cim_registry_api::SERVICE.name, title: "the Component Registry" };

/// The Integration Hub.
pub const HUB: Service = Service { name: cim_hub_api::SERVICE.name, title: "the Integration Hub" };
/// The Storage Manager.
pub const STORAGE: Service = Service { name: cim_storage_api::SERVICE.name, title: "the Storage Manager" };

/// A service's client, and what is needed to explain its failures.
#[derive(Debug)]
pub struct Remote<C> {
    /// The client.
    pub client: C,
    service: Service,
    url: String,
    transient: bool,
    /// The data directory of the `cim up` in use.
    up: Option<PathBuf>,
    timeout: Duration,
}

impl Remote<cim_ius_api::Client> {
    /// The IUS on the session's connection.
    pub fn ius(session: &Session, args: &ServiceArgs) -> Self {
        let timeout = Duration::from_secs(args.timeout.max(1));
        Self::new(cim_ius_api::Client::new(session.events.client().clone(), timeout), IUS, session, timeout)
    }
}

impl Remote<cim_registry_api::Client> {
    /// The registry on the session's connection.
    pub fn registry(session: &Session, args: &ServiceArgs) -> Self {
        let timeout = Duration::from_secs(args.timeout.max(1));
        let client = cim_registry_api::Client::new(session.events.client().clone(), timeout);
        Self::new(client, REGISTRY, session, timeout)
    }
}

impl Remote<cim_hub_api::Client> {
    /// The hub on the session's connection.
    pub fn hub(session: &Session, args: &ServiceArgs) -> Self {
        let timeout = Duration::from_secs(args.timeout.max(1));
        Self::new(cim_hub_api::Client::new(session.events.client().clone(), timeout), HUB, session, timeout)
    }
}

impl Remote<cim_pipeline_api::Client> {
    /// The Pipeline Engine on the session's connection.
    pub fn pipeline(session: &Session, args: &ServiceArgs) -> Self {
        let timeout = Duration::from_secs(args.timeout.max(1));
        let client = cim_pipeline_api::Client::new(session.events.client().clone(), timeout);
        Self::new(client, PIPELINE, session, timeout)
    }
}

impl Remote<cim_storage_api::Client> {
    /// The Storage Manager on the session's connection, waiting `timeout`
    /// for each reply (seals, scrubs and restores take long).
    pub fn storage(session: &Session, timeout: Duration) -> Self {
        let client = cim_storage_api::Client::new(session.events.client().clone(), timeout);
        Self::new(client, STORAGE, session, timeout)
    }
}

impl<C> Remote<C> {
    fn new(client: C, service: Service, session: &Session, timeout: Duration) -> Self {
        let up = session.up_data_dir().map(Path::to_owned);
        Self { client, service, url: session.url.clone(), transient: session.is_transient(), up, timeout }
    }

    /// The reply, or an error that says what to do. `hint` explains a
    /// refusal by the service (`None`: its own message says it all); the
    /// exit code follows from the refusal's status (see `exit.rs`).
    pub fn check<T, K: Code>(
        &self,
        result: Result<T, RequestError<K>>,
        hint: impl FnOnce(&ApiError<K>) -> Option<String>,
    ) -> anyhow::Result<T> {
        let error = match result {
            Ok(reply) => return Ok(reply),
            Err(error) => error,
        };
        let Service { name, title } = self.service;
        let context = match &error {
            RequestError::Remote(refusal) => match hint(refusal) {
                Some(hint) => hint,
                None => return Err(error.into()),
            },
            RequestError::NoResponders { .. } if self.transient => format!(
                "{title} ({name}) is not running: cim started an embedded nats-server just for this command, which \
                 no service uses; run the whole stack with `cim up` on this data directory, or pass --nats with \
                 the URL of the server {name} uses"
            ),
            RequestError::NoResponders { .. } if self.up.is_some() => format!(
                "{title} ({name}) is not running under `cim up` right now (it restarts components that exit, or \
                 {name} is not in its components.toml): see {}",
                self.up.as_deref().unwrap_or(Path::new(".")).join(format!("logs/{name}.log")).display()
            ),
            RequestError::NoResponders { .. } => format!(
                "{title} ({name}) is not running on {}: start `{name} --config <FILE>` with that server as its \
                 [nats] url, or pass --nats with the URL of the server it uses",
                self.url
            ),
            RequestError::Timeout { .. } => format!(
                "{name} did not answer within {}s: check its log and its /readyz endpoint, or wait longer with \
                 --timeout",
                self.timeout.as_secs()
            ),
            RequestError::PermissionDenied { .. } => format!(
                "the NATS server does not let this connection's user call {title} ({name}): use a user that may \
                 (`[nats]` user, credentials) or ask the operator to grant it"
            ),
            _ => format!("talking to {name} on {}", self.url),
        };
        Err(anyhow::Error::new(error).context(context))
    }
}

/// The `current_version` a conflict reports.
pub fn current_version<K: Code>(error: &ApiError<K>) -> Option<u64> {
    error.details.get("current_version").and_then(serde_json::Value::as_u64)
}

/// A failed request to one of the services `cim` calls, whatever its API.
pub fn request_error_of<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<RequestFailure<'a>> {
    if let Some(error) = cause.downcast_ref::<RequestError<IusCode>>() {
        return Some(RequestFailure::Ius(error));
    }
    if let Some(error) = cause.downcast_ref::<RequestError<RegistryCode>>() {
        return Some(RequestFailure::Registry(error));
    }
    if let Some(error) = cause.downcast_ref::<RequestError<cim_hub_api::HubCode>>() {
        return Some(RequestFailure::Hub(error));
    }
    if let Some(error) = cause.downcast_ref::<RequestError<PipelineCode>>() {
        return Some(RequestFailure::Pipeline(error));
    }
    if let Some(error) = cause.downcast_ref::<RequestError<cim_storage_api::StorageCode>>() {
        return Some(RequestFailure::Storage(error));
    }
    cause.downcast_ref::<RequestError<NoCode>>().map(RequestFailure::Other)
}

/// The service's refusal in an error's chain, in its wire form.
pub fn refusal_of(cause: &(dyn std::error::Error + 'static)) -> Option<WireError> {
    match request_error_of(cause)? {
        RequestFailure::Ius(error) => error.remote().map(ApiError::to_wire),
        RequestFailure::Registry(error) => error.remote().map(ApiError::to_wire),
        RequestFailure::Hub(error) => error.remote().map(ApiError::to_wire),
        RequestFailure::Pipeline(error) => error.remote().map(ApiError::to_wire),
        RequestFailure::Storage(error) => error.remote().map(ApiError::to_wire),
        RequestFailure::Other(error) => error.remote().map(ApiError::to_wire),
    }
}

/// A failed request, by the API it went to.
#[derive(Debug, Clone, Copy)]
pub enum RequestFailure<'a> {
    /// To the IUS.
    Ius(&'a RequestError<IusCode>),
    /// To the registry.
    Registry(&'a RequestError<RegistryCode>),
    /// To the hub.
    Hub(&'a RequestError<cim_hub_api::HubCode>),
    /// To the Pipeline Engine.
    Pipeline(&'a RequestError<PipelineCode>),
    /// To the Storage Manager.
    Storage(&'a RequestError<cim_storage_api::StorageCode>),
    /// To an API whose codes `cim` does not know.
    Other(&'a RequestError<NoCode>),
}

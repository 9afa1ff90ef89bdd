//! A running component: connected to NATS, serving metrics and health, then
//! serving its request API until SIGTERM or SIGINT, and shutting down in
//! order — stop taking requests, finish those in flight, leave the micro
//! service, deregister, flush.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::service::ServiceExt;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use cim_registry_api::Registration;
use cim_wire::{ApiError, Caller, ConnectError, NoCode};

use crate::config::{Config, Settings};
use crate::http::ExtraRoutes;
use crate::metrics::{EndpointLabels, Metrics, RequestLabels};
use crate::nats::connect;
use crate::registration::{deregister, heartbeat};
use crate::service::{Handler, Request, ServiceDefinition};

/// Why a component could not start or serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// NATS could not be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The HTTP endpoint could not listen.
    #[error("http.listen: cannot listen on {addr}: {source}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The micro service or an endpoint could not be started.
    #[error("cannot start the {service} service: {reason}")]
    Service {
        /// The service name.
        service: String,
        /// Why.
        reason: String,
    },
}

/// A component's running environment. Components build their state from
/// [`Runtime::client`] and [`Runtime::config`], then call [`Runtime::serve`].
#[derive(Debug)]
pub struct Runtime<S> {
    config: Config<S>,
    client: async_nats::Client,
    instance_id: String,
    metrics: Arc<Metrics>,
    serving: Arc<AtomicBool>,
    shutdown: CancellationToken,
    http: Option<(SocketAddr, tokio::task::JoinHandle<()>, CancellationToken)>,
    routes: ExtraRoutes,
    started_at: String,
}

impl<S: Settings> Runtime<S> {
    /// Connects to NATS and starts the HTTP endpoint. `name` is the
    /// component's name, used for the connection unless configured.
    pub async fn start(config: Config<S>, name: &str) -> Result<Self, RuntimeError> {
        let client = connect(&config.nats, name).await?;
        let instance_id = config.runtime.instance_id.clone().unwrap_or_else(|| nuid::next().to_string());
        let metrics = Arc::new(Metrics::new());
        let serving = Arc::new(AtomicBool::new(false));
        let routes = ExtraRoutes::default();
        let http = if config.http.enabled {
            let addr = config.http.address().map_err(|e| RuntimeError::Http {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source: std::io::Error::other(e.reason),
            })?;
            let stop = CancellationToken::new();
            let (bound, task) = crate::http::serve(
                addr,
                metrics.clone(),
                client.clone(),
                serving.clone(),
                routes.clone(),
                stop.clone(),
            )
            .await
            .map_err(|source| RuntimeError::Http { addr, source })?;
            info!(address = %bound, "serving /metrics, /healthz and /readyz");
            Some((bound, task, stop))
        } else {
            None
        };
        let started_at =
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        Ok(Self {
            config,
            client,
            instance_id,
            metrics,
            serving,
            shutdown: CancellationToken::new(),
            http,
            routes,
            started_at,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config<S> {
        &self.config
    }

    /// The NATS connection.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The metrics registry, for the component's own metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The bound HTTP address, when the endpoint runs.
    pub fn http_address(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|(addr, ..)| *addr)
    }

    /// Cancelling this token shuts the service down as SIGTERM does.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// How long to wait for replies to requests this component sends.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.config.nats.request_timeout_secs)
    }

    /// A caller of other components' endpoints on this connection, waiting
    /// [`Runtime::request_timeout`] for each reply.
    pub fn caller(&self) -> Caller {
        Caller::new(self.client.clone(), self.request_timeout())
    }

    /// Serves `definition` until SIGTERM, SIGINT or [`Runtime::shutdown_token`],
    /// then shuts down in order and returns.
    pub async fn serve(self, definition: ServiceDefinition) -> Result<(), RuntimeError> {
        let service_error = |reason: String| RuntimeError::Service { service: definition.name.clone(), reason };
        let service = self
            .client
            .service_builder()
            .description(&definition.description)
            .metadata([("instance_id".to_owned(), self.instance_id.clone())].into())
            .start(&definition.name, &definition.version)
            .await
            .map_err(|e| service_error(e.to_string()))?;
        let service_id = service.info().await.id;
        let stop_taking = CancellationToken::new();
        let tracker = TaskTracker::new();
        let permits = Arc::new(Semaphore::new(self.config.runtime.max_in_flight));
        let mut loops = Vec::new();
        for served in &definition.endpoints {
            let endpoint = service
                .endpoint_builder()
                .name(served.micro_name())
                .add(&served.subject)
                .await
                .map_err(|e| service_error(e.to_string()))?;
            let context = EndpointContext {
                name: served.name.clone(),
                handler: served.handler.clone(),
                metrics: self.metrics.clone(),
                max_request_bytes: self.config.runtime.max_request_bytes,
            };
            loops.push(tokio::spawn(endpoint_loop(
                endpoint,
                context,
                tracker.clone(),
                permits.clone(),
                stop_taking.clone(),
            )));
        }
        if let Some(routes) = &definition.routes {
            *self.routes.write().unwrap_or_else(|e| e.into_inner()) = Some(routes.clone());
        }
        self.serving.store(true, Ordering::SeqCst);
        info!(service = %definition.name, instance = %self.instance_id, id = %service_id, subjects = ?definition.subjects(), "serving");

        let registration = Registration {
            name: definition.name.clone(),
            version: definition.version.clone(),
            instance_id: self.instance_id.clone(),
            service_id,
            description: definition.description.clone(),
            subjects: definition.subjects(),
            capabilities: definition.capabilities.clone(),
            schemas: definition.schemas.clone(),
            http: self.http_address().map(|addr| addr.to_string()),
            started_at: self.started_at.clone(),
            heartbeat_secs: self.config.runtime.heartbeat_secs,
        };
        let stop_beating = CancellationToken::new();
        let beats = self.config.runtime.register.then(|| {
            tokio::spawn(heartbeat(
                self.caller(),
                registration.clone(),
                self.config.runtime.heartbeat_secs,
                self.metrics.clone(),
                stop_beating.clone(),
            ))
        });

        let signal = wait_for_signal(self.shutdown.clone()).await;
        info!(signal, "shutting down: no new requests");
        self.serving.store(false, Ordering::SeqCst);
        stop_taking.cancel();
        for task in loops {
            let _ = task.await;
        }
        tracker.close();
        let grace = Duration::from_secs(self.config.runtime.shutdown_grace_secs);
        let waiting = Instant::now();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            warn!(in_flight = tracker.len(), ?grace, "requests still in flight after the grace period; leaving them");
        } else {
            info!(elapsed = ?waiting.elapsed(), "in-flight requests finished");
        }
        if let Err(error) = service.stop().await {
            warn!(%error, "stopping the micro service");
        }
        stop_beating.cancel();
        if let Some(beats) = beats {
            let _ = beats.await;
            let caller = self.caller().with_timeout(self.request_timeout().min(Duration::from_secs(5)));
            deregister(&caller, &registration).await;
        }
        if let Err(error) = self.client.flush().await {
            warn!(%error, "flushing the NATS connection");
        }
        if let Some((_, task, stop)) = self.http {
            stop.cancel();
            let _ = task.await;
        }
        info!("stopped");
        Ok(())
    }
}

/// What an endpoint's loop needs to handle one request.
#[derive(Clone)]
struct EndpointContext {
    name: String,
    handler: Handler,
    metrics: Arc<Metrics>,
    max_request_bytes: usize,
}

/// Takes requests until `stop_taking`; then unsubscribes and still handles
/// what had already arrived, so no accepted request goes unanswered.
async fn endpoint_loop(
    mut endpoint: async_nats::service::endpoint::Endpoint,
    context: EndpointContext,
    tracker: TaskTracker,
    permits: Arc<Semaphore>,
    stop_taking: CancellationToken,
) {
    let mut stopping = false;
    loop {
        let request = tokio::select! {
            biased;
            () = stop_taking.cancelled(), if !stopping => {
                stopping = true;
                if let Err(error) = endpoint.stop().await {
                    warn!(endpoint = %context.name, %error, "unsubscribing");
                }
                continue;
            }
            request = endpoint.next() => request,
        };
        let Some(request) = request else { break };
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        let context = context.clone();
        tracker.spawn(async move {
            let _permit = permit;
            handle(request, context).await;
        });
    }
}

async fn handle(request: async_nats::service::Request, context: EndpointContext) {
    let started = Instant::now();
    context.metrics.in_flight.inc();
    let message = &request.message;
    let outcome = if message.payload.len() > context.max_request_bytes {
        Err(ApiError::<NoCode>::payload_too_large(message.payload.len(), context.max_request_bytes).into())
    } else {
        let call = Request {
            subject: message.subject.to_string(),
            headers: message.headers.clone(),
            payload: message.payload.clone(),
        };
        (context.handler)(call).await
    };
    let label = match &outcome {
        Ok(_) => "ok".to_owned(),
        Err(error) => error.code.clone(),
    };
    let sent = match outcome {
        Ok(body) => request.respond(Ok(body)).await,
        Err(error) => {
            if error.status >= 500 {
                error!(endpoint = %context.name, code = %error.code, error = %error.message, "request failed");
            }
            let (headers, body) = error.to_reply();
            request.respond_with_headers(Ok(body.into()), headers).await
        }
    };
    if let Err(error) = sent {
        warn!(endpoint = %context.name, %error, "could not send the reply");
    }
    context.metrics.requests.get_or_create(&RequestLabels { endpoint: context.name.clone(), outcome: label }).inc();
    context
        .metrics
        .duration
        .get_or_create(&EndpointLabels { endpoint: context.name })
        .observe(started.elapsed().as_secs_f64());
    context.metrics.in_flight.dec();
}

/// Waits for SIGTERM, SIGINT or the token; returns which.
async fn wait_for_signal(token: CancellationToken) -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        error!("cannot install signal handlers; stopping only on request");
        token.cancelled().await;
        return "shutdown request";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        () = token.cancelled() => "shutdown request",
    }
}

//! The client side of every endpoint.

use std::time::Duration;

use async_nats::RequestErrorKind;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::code::Code;
use crate::denials;
use crate::endpoint::Endpoint;
use crate::error::{RequestError, WireError};

/// Calls endpoints of any service over one NATS connection, waiting
/// `timeout` for each reply. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Caller {
    client: async_nats::Client,
    timeout: Duration,
}

impl Caller {
    /// A caller on `client`.
    pub fn new(client: async_nats::Client, timeout: Duration) -> Self {
        Self { client, timeout }
    }

    /// The connection.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// How long it waits for a reply.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same caller waiting `timeout` instead.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self { client: self.client.clone(), timeout }
    }

    /// Sends `body` to the endpoint and decodes the reply, or the service's
    /// error.
    pub async fn call<Req, Resp, C>(
        &self,
        endpoint: &Endpoint<Req, Resp, C>,
        body: &Req,
    ) -> Result<Resp, RequestError<C>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        C: Code,
    {
        self.send(endpoint.subject(), body).await
    }

    /// As [`Caller::call`], for an endpoint that takes a subject token
    /// (`….*`): sends to its subject with `token` last.
    pub async fn call_for<Req, Resp, C>(
        &self,
        endpoint: &Endpoint<Req, Resp, C>,
        token: &str,
        body: &Req,
    ) -> Result<Resp, RequestError<C>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        C: Code,
    {
        let subject = endpoint.subject_for(token).ok_or_else(|| RequestError::Transport {
            subject: endpoint.subject(),
            reason: format!("{token:?} is not one literal subject token"),
        })?;
        self.send(subject, body).await
    }

    /// As [`Caller::call`], for an endpoint whose reply is not JSON: the
    /// reply message, headers and raw body (an error reply is still decoded
    /// into [`RequestError::Remote`]).
    pub async fn call_raw<Req, Resp, C>(
        &self,
        endpoint: &Endpoint<Req, Resp, C>,
        body: &Req,
    ) -> Result<async_nats::Message, RequestError<C>>
    where
        Req: Serialize,
        C: Code,
    {
        self.request(endpoint.subject(), body).await
    }

    async fn send<Req: Serialize, Resp: DeserializeOwned, C: Code>(
        &self,
        subject: String,
        body: &Req,
    ) -> Result<Resp, RequestError<C>> {
        let message = self.request(subject.clone(), body).await?;
        serde_json::from_slice(&message.payload).map_err(|e| RequestError::Transport {
            subject,
            reason: format!("the reply is not the expected JSON: {e}"),
        })
    }

    /// Sends `body` and returns the reply message, or the service's error.
    async fn request<Req: Serialize, C: Code>(
        &self,
        subject: String,
        body: &Req,
    ) -> Result<async_nats::Message, RequestError<C>> {
        let transport = |subject: &str, reason: String| RequestError::Transport { subject: subject.to_owned(), reason };
        let payload =
            serde_json::to_vec(body).map_err(|e| transport(&subject, format!("encoding the request: {e}")))?;
        let since = denials::mark();
        let request = async_nats::Request::new().payload(payload.into()).timeout(Some(self.timeout));
        let reply = tokio::select! {
            reply = self.client.send_request(subject.clone(), request) => reply,
            () = denials::wait(&subject, since) => return Err(RequestError::PermissionDenied { subject }),
        };
        let message = reply.map_err(|e| {
            if denials::denied_since(&subject, since) {
                return RequestError::PermissionDenied { subject: subject.clone() };
            }
            match e.kind() {
                RequestErrorKind::NoResponders => RequestError::NoResponders { subject: subject.clone() },
                RequestErrorKind::TimedOut => RequestError::Timeout { subject: subject.clone(), timeout: self.timeout },
                _ => transport(&subject, e.to_string()),
            }
        })?;
        if let Some(error) = WireError::from_reply(message.headers.as_ref(), &message.payload) {
            return Err(RequestError::Remote(error.typed()));
        }
        Ok(message)
    }
}

//! A connection to a store: the NATS client, the event store, the object
//! store and named objects, and the embedded server if one was needed.

use anyhow::Context;
use cim_store::{EventStore, NamedObjects, ObjectStore};

use cim_wire::NatsConfig;

use crate::embedded::{Attachment, attach};
use crate::output::Output;
use crate::settings::{Settings, Target};

/// An open store. Call [`Session::close`] when done.
#[derive(Debug)]
pub struct Session {
    /// The event store.
    pub events: EventStore,
    /// The object store.
    pub objects: ObjectStore,
    /// Named, versioned objects.
    pub named: NamedObjects,
    /// The server's URL as connected.
    pub url: String,
    /// How the embedded server is used, if it is.
    attachment: Option<Attachment>,
}

impl Session {
    /// Connects as the settings say (starting an embedded server if needed)
    /// and opens the stores as the admin does, creating their stream and
    /// buckets if missing (the components' buckets: `cim provision`).
    pub async fn open(settings: &Settings, out: &Output) -> anyhow::Result<Self> {
        let (url, nats, attachment) = match &settings.target {
            Target::Remote { url, nats } => (url.clone(), nats.as_ref().clone(), None),
            Target::Embedded => {
                let attachment = attach(settings.data_dir()?, settings.nats_server.as_deref(), out).await?;
                let (url, credentials) = match &attachment {
                    Attachment::Shared(running) => (running.url.clone(), running.credentials.clone()),
                    Attachment::Transient(server) => (server.url(), None),
                };
                // Under `cim up` the server has users: log in as its admin.
                let (user, password_file) = credentials.map(|c| (c.user, c.password_file)).unzip();
                let nats = NatsConfig { url: vec![url.clone()], user, password_file, ..NatsConfig::default() };
                (url, nats, Some(attachment))
            }
        };
        // A one-shot command fails fast rather than retrying like a service.
        // cim-wire records the permission denials the server reports, so a
        // refused request fails as refused instead of timing out.
        let options = cim_wire::connect_options(&nats, "cim", |_| {}).await?;
        let client = options.connect(cim_wire::server_addrs(&nats)?).await.with_context(|| {
            format!("cannot connect to NATS at {url}: check --nats / CIM_NATS_URL / [nats] url, or leave them unset to use the embedded server")
        })?;
        let events = EventStore::provision(client.clone(), settings.store.clone())
            .await
            .context("cannot open the event store")?;
        let objects =
            ObjectStore::provision(client.clone(), &settings.store).await.context("cannot open the object store")?;
        let named = NamedObjects::provision(objects.clone(), client, &settings.store)
            .await
            .context("cannot open the names bucket")?;
        Ok(Self { events, objects, named, url, attachment })
    }

    /// Whether this command runs its own embedded server.
    pub fn embedded_description(&self) -> &'static str {
        match &self.attachment {
            None => "external",
            Some(Attachment::Shared(running)) if running.credentials.is_some() => "embedded (cim up)",
            Some(Attachment::Shared(_)) => "embedded (cim server)",
            Some(Attachment::Transient(_)) => "embedded (started for this command)",
        }
    }

    /// The data directory of the `cim up` this command is attached to.
    pub fn up_data_dir(&self) -> Option<&std::path::Path> {
        match &self.attachment {
            Some(Attachment::Shared(running)) if running.credentials.is_some() => Some(&running.data_dir),
            _ => None,
        }
    }

    /// Whether the server was started just for this command (so no
    /// service can be using it).
    pub fn is_transient(&self) -> bool {
        matches!(self.attachment, Some(Attachment::Transient(_)))
    }

    /// Flushes the connection and stops a transient embedded server.
    pub async fn close(self) -> anyhow::Result<()> {
        let client = self.events.client().clone();
        client.flush().await.context("flushing the NATS connection")?;
        drop((self.events, self.objects, self.named, client));
        if let Some(Attachment::Transient(server)) = self.attachment {
            server.stop().await?;
        }
        Ok(())
    }
}

//! `cim hub`: the Integration Hub through its client (`cim_hub_api::Client`):
//! API tokens (created with a scope and shown once, listed, revoked),
//! outbound webhook subscriptions and their delivery log, and inbound
//! webhook endpoints.

use cim_hub_api::{
    CreateInbound, CreateSubscription, CreateToken, DeliveryOutcome, DeliveryQuery, EventFilter, Scope,
    SubscriptionInfo,
};
use clap::{Args, Subcommand, ValueEnum};

use crate::exit::Exit;
use crate::output::Output;
use crate::services::{Remote, ServiceArgs};
use crate::session::Session;

/// `cim hub …`.
#[derive(Debug, Args)]
pub struct HubArgs {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(subcommand)]
    command: HubCommand,
}

#[derive(Debug, Subcommand)]
enum HubCommand {
    /// Bearer tokens of the hub's HTTP API and MCP server.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Outbound webhooks: URLs that receive events, signed (Standard Webhooks).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Inbound webhooks: endpoints whose signed requests become events.
    #[command(subcommand)]
    Inbound(InboundCommand),
}

/// A token's scope.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScopeArg {
    /// Read events, objects, units, the registry, the feed.
    Read,
    /// Also append events, put objects, change units.
    Write,
    /// Also verify the whole store.
    Admin,
}

impl From<ScopeArg> for Scope {
    fn from(scope: ScopeArg) -> Self {
        match scope {
            ScopeArg::Read => Scope::Read,
            ScopeArg::Write => Scope::Write,
            ScopeArg::Admin => Scope::Admin,
        }
    }
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Create a token; it is printed this once (the hub keeps only its hash).
    Create {
        /// Who or what it is for; recorded with every event it appends.
        name: String,
        /// What it may do.
        #[arg(long, value_enum, default_value = "read")]
        scope: ScopeArg,
        /// Requests per second on average [default: the hub's].
        #[arg(long)]
        rate: Option<u32>,
        /// Requests at once above the average [default: the hub's].
        #[arg(long)]
        burst: Option<u32>,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token by id: every hub instance refuses it from then on.
    Revoke {
        /// The token's id (`cimhub_<id>_…`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum WebhooksCommand {
    /// Subscribe a URL to events; prints the signing secret this once.
    Create {
        /// The receiver's http(s) URL.
        url: String,
        /// Only events of this aggregate type.
        #[arg(long)]
        aggregate_type: Option<String>,
        /// Only events of this aggregate id (with --aggregate-type).
        #[arg(long)]
        aggregate_id: Option<String>,
        /// Only events of this type.
        #[arg(long)]
        event_type: Option<String>,
        /// Also deliver stored events after this stream sequence (0: all) [default: only new ones].
        #[arg(long, value_name = "SEQ")]
        after: Option<u64>,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List subscriptions with their status and position.
    List,
    /// Delete a subscription.
    Delete {
        /// Its id.
        id: String,
    },
    /// Resume a paused subscription where it stopped.
    Resume {
        /// Its id.
        id: String,
    },
    /// The delivery log, newest first.
    Deliveries {
        /// Only this subscription's.
        #[arg(long)]
        subscription: Option<String>,
        /// Only the dead letters.
        #[arg(long)]
        dead: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
enum InboundCommand {
    /// Create an endpoint `/v1/hooks/<id>`; prints its secret this once.
    Create {
        /// Its id (a-z 0-9 _ -), also the aggregate id of its events.
        id: String,
        /// The aggregate type of its events.
        #[arg(long)]
        aggregate_type: String,
        /// The event type, unless a request's body has a valid `type`.
        #[arg(long, default_value = "WebhookReceived")]
        event_type: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List endpoints.
    List,
    /// Delete an endpoint.
    Delete {
        /// Its id.
        id: String,
    },
}

fn subscription_line(s: &SubscriptionInfo) -> String {
    let filter = [&s.filter.aggregate_type, &s.filter.aggregate_id, &s.filter.event_type]
        .iter()
        .map(|f| f.as_deref().unwrap_or("*"))
        .collect::<Vec<_>>()
        .join("/");
    let status = match &s.paused_reason {
        Some(reason) => format!("paused ({reason})"),
        None => format!("{:?}", s.status).to_lowercase(),
    };
    format!("{}  {}  {filter}  delivered to seq {}  {status}", s.id, s.url, s.delivered_seq)
}

/// Runs a `hub` command.
pub async fn run(session: &Session, args: HubArgs, out: &Output) -> anyhow::Result<Exit> {
    let hub = Remote::hub(session, &args.service);
    let client = &hub.client;
    match args.command {
        HubCommand::Tokens(TokensCommand::Create { name, scope, rate, burst }) => {
            let request = CreateToken { name, scope: scope.into(), rate_per_sec: rate, burst };
            let created = hub.check(client.create_token(&request).await, |_| None)?;
            out.emit(&created, || {
                format!(
                    "token {} ({}, scope {}, {}/s burst {}):\n{}\nKeep it now: it is not shown again.",
                    created.info.id,
                    created.info.name,
                    created.info.scope,
                    created.info.rate_per_sec,
                    created.info.burst,
                    created.token
                )
            });
        }
        HubCommand::Tokens(TokensCommand::List) => {
            let list = hub.check(client.tokens().await, |_| None)?;
            out.emit(&list, || {
                list.tokens
                    .iter()
                    .map(|t| {
                        format!(
                            "{}  {:<5}  {}/s burst {}  {}  {}\n",
                            t.id, t.scope, t.rate_per_sec, t.burst, t.created_at, t.name
                        )
                    })
                    .collect()
            });
        }
        HubCommand::Tokens(TokensCommand::Revoke { id }) => {
            let revoked = hub.check(client.revoke_token(&id).await, |_| None)?;
            out.emit(&revoked, || format!("token {id} revoked"));
        }
        HubCommand::Webhooks(WebhooksCommand::Create {
            url,
            aggregate_type,
            aggregate_id,
            event_type,
            after,
            description,
        }) => {
            let request = CreateSubscription {
                url,
                filter: EventFilter { aggregate_type, aggregate_id, event_type },
                description,
                after_seq: after,
            };
            let created = hub.check(client.subscribe(&request).await, |_| None)?;
            out.emit(&created, || {
                format!(
                    "{}\nsigning secret (Standard Webhooks): {}\nKeep it now: it is not shown again.",
                    subscription_line(&created.info),
                    created.secret
                )
            });
        }
        HubCommand::Webhooks(WebhooksCommand::List) => {
            let list = hub.check(client.subscriptions().await, |_| None)?;
            out.emit(&list, || list.subscriptions.iter().map(|s| subscription_line(s) + "\n").collect());
        }
        HubCommand::Webhooks(WebhooksCommand::Delete { id }) => {
            let deleted = hub.check(client.unsubscribe(&id).await, |_| None)?;
            out.emit(&deleted, || format!("subscription {id} deleted"));
        }
        HubCommand::Webhooks(WebhooksCommand::Resume { id }) => {
            let resumed = hub.check(client.resume(&id).await, |_| None)?;
            out.emit(&resumed, || subscription_line(&resumed));
        }
        HubCommand::Webhooks(WebhooksCommand::Deliveries { subscription, dead, limit }) => {
            let query =
                DeliveryQuery { subscription, outcome: dead.then_some(DeliveryOutcome::Dead), limit: Some(limit) };
            let log = hub.check(client.deliveries(&query).await, |_| None)?;
            out.emit(&log, || {
                log.deliveries
                    .iter()
                    .map(|d| {
                        format!(
                            "{}  {}  seq {}  {}  {:?} after {} attempt(s){}{}\n",
                            d.at,
                            d.subscription,
                            d.seq,
                            d.event_type,
                            d.outcome,
                            d.attempts,
                            d.http_status.map(|s| format!(", HTTP {s}")).unwrap_or_default(),
                            d.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
                        )
                    })
                    .collect()
            });
        }
        HubCommand::Inbound(InboundCommand::Create { id, aggregate_type, event_type, description }) => {
            let request = CreateInbound { id, aggregate_type, event_type, description };
            let created = hub.check(client.create_inbound(&request).await, |_| None)?;
            out.emit(&created, || {
                format!(
                    "POST {} (events of {}/{})\nsigning secret (Standard Webhooks): {}\nKeep it now: it is not shown again.",
                    created.info.path, created.info.aggregate_type, created.info.id, created.secret
                )
            });
        }
        HubCommand::Inbound(InboundCommand::List) => {
            let list = hub.check(client.inbound().await, |_| None)?;
            out.emit(&list, || {
                list.endpoints
                    .iter()
                    .map(|e| {
                        format!("{}  {}/{}  {}  {}\n", e.path, e.aggregate_type, e.id, e.event_type, e.description)
                    })
                    .collect()
            });
        }
        HubCommand::Inbound(InboundCommand::Delete { id }) => {
            let deleted = hub.check(client.delete_inbound(&id).await, |_| None)?;
            out.emit(&deleted, || format!("inbound endpoint {id} deleted"));
        }
    }
    Ok(Exit::Ok)
}

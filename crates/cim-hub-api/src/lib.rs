//! The Integration Hub's request API on NATS, shared by the hub (which
//! serves it) and the `cim hub …` commands of the CLI:
//!
//! - API tokens for the hub's HTTP API and MCP server: created with scopes
//!   and a rate limit, shown once, stored hashed; listed; revoked.
//! - Outbound webhook subscriptions: a URL, an event filter, a Standard
//!   Webhooks secret; listed, deleted, resumed after the hub paused them.
//! - Inbound webhook endpoints: requests signed with their secret become
//!   events.
//! - The delivery log of outbound webhooks, dead letters included.
//!
//! The HTTP API itself is described by the OpenAPI document the hub serves
//! (`/v1/openapi.json`), not by this crate.
//!
//! API boundary: depends on `cim-wire`, serde and serde_json only.
//! `docs/spec/subjects.md` specifies the subjects and bodies.

mod client;
mod code;
mod messages;

use cim_wire::{Empty, Endpoint, Service};

pub use client::Client;
pub use code::HubCode;
pub use messages::{
    CreateInbound, CreateSubscription, CreateToken, CreatedInbound, CreatedSubscription, CreatedToken, Deleted,
    Deliveries, DeliveryOutcome, DeliveryQuery, DeliveryRecord, EventFilter, InboundInfo, InboundList, InboundRef,
    Scope, SubscriptionInfo, SubscriptionList, SubscriptionRef, SubscriptionStatus, TokenInfo, TokenList, TokenRef,
};

/// The hub's micro service: name `cim-hub`, subjects `cim.service.hub.…`.
pub const SERVICE: Service = Service::new("cim-hub", "cim.service.hub");

/// Create an API token; the reply holds the token, shown this once.
pub const TOKEN_CREATE: Endpoint<CreateToken, CreatedToken, HubCode> = SERVICE.endpoint("tokens.create");
/// Every token (never the tokens themselves).
pub const TOKEN_LIST: Endpoint<Empty, TokenList, HubCode> = SERVICE.endpoint("tokens.list");
/// Revoke a token: every hub instance refuses it from then on.
pub const TOKEN_REVOKE: Endpoint<TokenRef, Deleted, HubCode> = SERVICE.endpoint("tokens.revoke");

/// Subscribe a URL to events; the reply holds the signing secret, shown once.
pub const WEBHOOK_CREATE: Endpoint<CreateSubscription, CreatedSubscription, HubCode> =
    SERVICE.endpoint("webhooks.create");
/// Every subscription with its delivery position and status.
pub const WEBHOOK_LIST: Endpoint<Empty, SubscriptionList, HubCode> = SERVICE.endpoint("webhooks.list");
/// Delete a subscription; its delivery log is kept until it expires.
pub const WEBHOOK_DELETE: Endpoint<SubscriptionRef, Deleted, HubCode> = SERVICE.endpoint("webhooks.delete");
/// Resume a paused subscription where it stopped.
pub const WEBHOOK_RESUME: Endpoint<SubscriptionRef, SubscriptionInfo, HubCode> = SERVICE.endpoint("webhooks.resume");
/// The delivery log: attempts, deliveries and dead letters, newest first.
pub const DELIVERIES: Endpoint<DeliveryQuery, Deliveries, HubCode> = SERVICE.endpoint("deliveries.list");

/// Create an inbound webhook endpoint; the reply holds its secret, shown once.
pub const INBOUND_CREATE: Endpoint<CreateInbound, CreatedInbound, HubCode> = SERVICE.endpoint("inbound.create");
/// Every inbound endpoint.
pub const INBOUND_LIST: Endpoint<Empty, InboundList, HubCode> = SERVICE.endpoint("inbound.list");
/// Delete an inbound endpoint.
pub const INBOUND_DELETE: Endpoint<InboundRef, Deleted, HubCode> = SERVICE.endpoint("inbound.delete");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_the_documented_ones() {
        assert_eq!(TOKEN_CREATE.subject(), "cim.service.hub.tokens.create");
        assert_eq!(WEBHOOK_RESUME.subject(), "cim.service.hub.webhooks.resume");
        assert_eq!(DELIVERIES.subject(), "cim.service.hub.deliveries.list");
        assert_eq!(INBOUND_DELETE.subject(), "cim.service.hub.inbound.delete");
    }
}

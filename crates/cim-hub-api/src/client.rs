//! The client side of the hub's NATS API.

use std::time::Duration;

use cim_wire::{Caller, Empty, RequestError};

use crate::{
    CreateInbound, CreateSubscription, CreateToken, CreatedInbound, CreatedSubscription, CreatedToken, DELIVERIES,
    Deleted, Deliveries, DeliveryQuery, HubCode, INBOUND_CREATE, INBOUND_DELETE, INBOUND_LIST, InboundList, InboundRef,
    SubscriptionInfo, SubscriptionList, SubscriptionRef, TOKEN_CREATE, TOKEN_LIST, TOKEN_REVOKE, TokenList, TokenRef,
    WEBHOOK_CREATE, WEBHOOK_DELETE, WEBHOOK_LIST, WEBHOOK_RESUME,
};

/// What a hub request ends with.
pub type Result<T> = std::result::Result<T, RequestError<HubCode>>;

/// Talks to any instance of the hub. Cheap to clone.
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

    /// Creates an API token.
    pub async fn create_token(&self, request: &CreateToken) -> Result<CreatedToken> {
        self.caller.call(&TOKEN_CREATE, request).await
    }

    /// Every token.
    pub async fn tokens(&self) -> Result<TokenList> {
        self.caller.call(&TOKEN_LIST, &Empty {}).await
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, id: &str) -> Result<Deleted> {
        self.caller.call(&TOKEN_REVOKE, &TokenRef { id: id.to_owned() }).await
    }

    /// Subscribes a URL to events.
    pub async fn subscribe(&self, request: &CreateSubscription) -> Result<CreatedSubscription> {
        self.caller.call(&WEBHOOK_CREATE, request).await
    }

    /// Every subscription.
    pub async fn subscriptions(&self) -> Result<SubscriptionList> {
        self.caller.call(&WEBHOOK_LIST, &Empty {}).await
    }

    /// Deletes a subscription.
    pub async fn unsubscribe(&self, id: &str) -> Result<Deleted> {
        self.caller.call(&WEBHOOK_DELETE, &SubscriptionRef { id: id.to_owned() }).await
    }

    /// Resumes a paused subscription.
    pub async fn resume(&self, id: &str) -> Result<SubscriptionInfo> {
        self.caller.call(&WEBHOOK_RESUME, &SubscriptionRef { id: id.to_owned() }).await
    }

    /// Entries of the delivery log.
    pub async fn deliveries(&self, query: &DeliveryQuery) -> Result<Deliveries> {
        self.caller.call(&DELIVERIES, query).await
    }

    /// Creates an inbound webhook endpoint.
    pub async fn create_inbound(&self, request: &CreateInbound) -> Result<CreatedInbound> {
        self.caller.call(&INBOUND_CREATE, request).await
    }

    /// Every inbound endpoint.
    pub async fn inbound(&self) -> Result<InboundList> {
        self.caller.call(&INBOUND_LIST, &Empty {}).await
    }

    /// Deletes an inbound endpoint.
    pub async fn delete_inbound(&self, id: &str) -> Result<Deleted> {
        self.caller.call(&INBOUND_DELETE, &InboundRef { id: id.to_owned() }).await
    }
}

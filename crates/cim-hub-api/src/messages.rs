//! The hub's messages. `docs/spec/subjects.md` specifies their JSON.

use serde::{Deserialize, Serialize};

/// What a token may do. Each scope includes the ones before it: `write`
/// can read, `admin` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read events, objects, units, the registry; the live feed.
    Read,
    /// Also append events, put objects, change units.
    Write,
    /// Also verify the whole store.
    Admin,
}

impl Scope {
    /// The scope's name: `read`, `write` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    /// Whether a token with this scope may do what `needed` allows.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "admin" => Ok(Self::Admin),
            other => Err(format!("{other:?} is not a scope (read, write, admin)")),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Creates an API token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Who or what it is for (1-64 printable characters); recorded with every write.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// Requests per second it may make on average (each hub instance
    /// counts its own); the hub's default when absent.
    #[serde(default)]
    pub rate_per_sec: Option<u32>,
    /// Requests it may make at once above the average; the hub's default when absent.
    #[serde(default)]
    pub burst: Option<u32>,
}

/// A token as listed: never the token itself, which only its creator saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Its id, the part of the token before the secret (`cimhub_<id>_…`).
    pub id: String,
    /// What it is for.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// Average requests per second.
    pub rate_per_sec: u32,
    /// Burst above the average.
    pub burst: u32,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// A new token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The token as listed.
    pub info: TokenInfo,
    /// The bearer token, `cimhub_<id>_<secret>`: shown this once, stored
    /// only as a hash.
    pub token: String,
}

/// Every token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenList {
    /// By id.
    pub tokens: Vec<TokenInfo>,
}

/// Names a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRef {
    /// Its id.
    pub id: String,
}

/// Whether something was there to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// False when it did not exist.
    pub deleted: bool,
}

/// Which events a subscription or a feed takes: all of the fields given
/// must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// Only this aggregate type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate_type: Option<String>,
    /// Only this aggregate id (with `aggregate_type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate_id: Option<String>,
    /// Only this event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
}

/// Subscribes a URL to events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    /// Where to POST: an `http` or `https` URL.
    pub url: String,
    /// Which events.
    #[serde(default)]
    pub filter: EventFilter,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Deliver events after this stream sequence (0: every stored event);
    /// without it, only events stored from now on.
    #[serde(default)]
    pub after_seq: Option<u64>,
}

/// Whether a subscription delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    /// Delivering.
    Active,
    /// Stopped after repeated failures, until resumed.
    Paused,
}

/// A subscription as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionInfo {
    /// Its id.
    pub id: String,
    /// Where it POSTs.
    pub url: String,
    /// Which events.
    pub filter: EventFilter,
    /// What it is for.
    pub description: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Active or paused.
    pub status: SubscriptionStatus,
    /// Why it was paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
    /// Every event up to this stream sequence is delivered or dead-lettered.
    pub delivered_seq: u64,
    /// Dead letters in a row (reset by a delivery).
    pub consecutive_dead: u32,
}

/// A new subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedSubscription {
    /// The subscription.
    pub info: SubscriptionInfo,
    /// Its signing secret, `whsec_<base64>` (Standard Webhooks): shown this once.
    pub secret: String,
}

/// Every subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionList {
    /// By id.
    pub subscriptions: Vec<SubscriptionInfo>,
}

/// Names a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionRef {
    /// Its id.
    pub id: String,
}

/// Which entries of the delivery log to return.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// Only this subscription's.
    #[serde(default)]
    pub subscription: Option<String>,
    /// Only entries with this outcome (`dead` for the dead letters).
    #[serde(default)]
    pub outcome: Option<DeliveryOutcome>,
    /// At most this many (default 100, at most 1000), newest first.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// How an event's delivery to a subscription ended (so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// The last attempt failed; another is scheduled.
    Retrying,
    /// Every attempt failed: a dead letter, skipped.
    Dead,
}

/// One event's delivery to one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The subscription.
    pub subscription: String,
    /// The `webhook-id` sent: the same for every attempt.
    pub webhook_id: String,
    /// The event's stream sequence.
    pub seq: u64,
    /// The event's CID.
    pub event_cid: String,
    /// Its type.
    pub event_type: String,
    /// Attempts made.
    pub attempts: u32,
    /// The outcome so far.
    pub outcome: DeliveryOutcome,
    /// The last response's HTTP status, if there was a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the last attempt was made (RFC 3339).
    pub at: String,
}

/// Entries of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deliveries {
    /// Newest first.
    pub deliveries: Vec<DeliveryRecord>,
}

/// Creates an inbound webhook endpoint: POSTs to `/v1/hooks/<id>` signed
/// with its secret become events of aggregate `<aggregate_type>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInbound {
    /// The endpoint's id: 1-64 of `a-z 0-9 _ -`; also the aggregate id.
    pub id: String,
    /// The aggregate type its events are appended to.
    pub aggregate_type: String,
    /// The event type, unless the body's `type` field gives a valid one.
    pub event_type: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
}

/// An inbound endpoint as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundInfo {
    /// Its id.
    pub id: String,
    /// The aggregate type of its events.
    pub aggregate_type: String,
    /// The default event type.
    pub event_type: String,
    /// What it is for.
    pub description: String,
    /// The path to POST to, e.g. `/v1/hooks/github`.
    pub path: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// A new inbound endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedInbound {
    /// The endpoint.
    pub info: InboundInfo,
    /// The secret senders sign with, `whsec_<base64>`: shown this once.
    pub secret: String,
}

/// Every inbound endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundList {
    /// By id.
    pub endpoints: Vec<InboundInfo>,
}

/// Names an inbound endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundRef {
    /// Its id.
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_include_the_lesser_ones() {
        assert!(Scope::Admin.allows(Scope::Write) && Scope::Write.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Write) && !Scope::Write.allows(Scope::Admin));
        assert_eq!(serde_json::to_string(&Scope::Write).unwrap(), "\"write\"");
        assert_eq!("admin".parse::<Scope>(), Ok(Scope::Admin));
    }
}

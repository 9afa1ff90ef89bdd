//! What the hub keeps in its KV bucket (`<namespace>-hub`) and delivery log
//! (`<namespace>-hublog`); `docs/spec/jetstream.md` lists the keys.

use cim_hub_api::{DeliveryRecord, EventFilter, InboundInfo, SubscriptionInfo, SubscriptionStatus};
use serde::{Deserialize, Serialize};

/// Key prefix of subscriptions.
pub const WEBHOOK_PREFIX: &str = "webhook.";
/// Key prefix of subscriptions' delivery positions.
pub const CURSOR_PREFIX: &str = "cursor.";
/// Key prefix of inbound endpoints.
pub const INBOUND_PREFIX: &str = "inbound.";
/// Key prefix of inbound deliveries seen (replay protection; expire).
pub const SEEN_PREFIX: &str = "seen.";
/// The key of the outbound dispatcher's lease.
pub const LEASE_KEY: &str = "lease.dispatcher";

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// Its id.
    pub id: String,
    /// Where it POSTs.
    pub url: String,
    /// Which events.
    pub filter: EventFilter,
    /// What it is for.
    pub description: String,
    /// When it was created.
    pub created_at: String,
    /// Active or paused.
    pub status: SubscriptionStatus,
    /// Why it was paused.
    #[serde(default)]
    pub paused_reason: Option<String>,
    /// Its signing secret, `whsec_…` (the hub must sign with it, so it is
    /// kept as is: the bucket is readable by the hub's and the admin user only).
    pub secret: String,
}

/// How far a subscription got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Every matching event up to this stream sequence is delivered or dead.
    pub delivered_seq: u64,
    /// Dead letters in a row.
    pub consecutive_dead: u32,
}

impl SubscriptionRecord {
    /// The listing, with its position.
    pub fn info(&self, cursor: Cursor) -> SubscriptionInfo {
        SubscriptionInfo {
            id: self.id.clone(),
            url: self.url.clone(),
            filter: self.filter.clone(),
            description: self.description.clone(),
            created_at: self.created_at.clone(),
            status: self.status,
            paused_reason: self.paused_reason.clone(),
            delivered_seq: cursor.delivered_seq,
            consecutive_dead: cursor.consecutive_dead,
        }
    }
}

/// An inbound endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundRecord {
    /// The listing.
    #[serde(flatten)]
    pub info: InboundInfo,
    /// The secret senders sign with.
    pub secret: String,
}

/// The delivery log key of an event's delivery to a subscription: newest
/// sort last.
pub fn log_key(subscription: &str, seq: u64) -> String {
    format!("{subscription}.{seq:020}")
}

/// A delivery log entry as stored.
pub type LogEntry = DeliveryRecord;

/// Now, RFC 3339.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Whether `id` can name a subscription, token or endpoint: 1-64 of `a-z 0-9 _ -`.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

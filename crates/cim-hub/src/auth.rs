//! Bearer tokens: generated, shown once, stored hashed in the hub's KV
//! bucket; checked on every request against an in-memory copy that a KV
//! watch keeps current (so a revocation reaches every instance at once);
//! scopes; per-token rate limits.
//!
//! A token is `cimhub_<id>_<secret>`: `id` (12 hex digits) names its record,
//! `secret` is 32 random bytes (base64url). The record keeps the SHA-256 of
//! the secret. A password hash (bcrypt, argon2) exists to slow down guessing
//! secrets people chose; a 256-bit random secret cannot be guessed, and the
//! hash is checked on every request, where a deliberately slow one would
//! cost milliseconds of CPU each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cim_hub_api::{Scope, TokenInfo};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::hub::Hub;
use crate::problem::Problem;

/// KV key prefix of token records.
pub const TOKEN_PREFIX: &str = "token.";
/// What every token starts with.
pub const TOKEN_MARK: &str = "cimhub_";

/// A token as stored: its listing and the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// What `cim hub tokens list` shows.
    #[serde(flatten)]
    pub info: TokenInfo,
    /// SHA-256 of the secret, hex.
    pub secret_sha256: String,
}

/// Who is calling: the token that authenticated the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's id.
    pub token_id: String,
    /// The token's name.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
}

impl Principal {
    /// How the caller is recorded with the events it appends (the
    /// `Cim-Caller` header): `hub:token:<id>:<name>`.
    pub fn caller(&self) -> String {
        format!("hub:token:{}:{}", self.token_id, self.name)
    }

    /// Refuses unless the token's scope allows `needed`.
    pub fn require(&self, needed: Scope) -> Result<(), Problem> {
        if self.scope.allows(needed) {
            Ok(())
        } else {
            Err(Problem::new(
                axum::http::StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("this needs a token with scope {needed}; token {} has {}", self.token_id, self.scope),
            )
            .with_details(serde_json::json!({ "needed": needed.as_str(), "scope": self.scope.as_str() })))
        }
    }
}

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes
}

/// A new token: its id, the full token and the hash to store.
pub fn generate() -> (String, String, String) {
    let id: String = random_bytes::<6>().iter().map(|b| format!("{b:02x}")).collect();
    let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let token = format!("{TOKEN_MARK}{id}_{secret}");
    (id, token, hash_secret(&secret))
}

/// SHA-256 of a secret, hex.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits a token into id and secret; `None` if it is not one of ours.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(TOKEN_MARK)?;
    let (id, secret) = rest.split_once('_')?;
    let valid_id = id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit());
    (valid_id && !secret.is_empty()).then_some((id, secret))
}

/// The tokens every request is checked against, kept current by a KV watch.
#[derive(Debug, Default)]
pub struct Tokens {
    /// By id: the latest KV revision seen and the record (`None`: deleted).
    known: RwLock<HashMap<String, (u64, Option<TokenRecord>)>>,
    limits: Mutex<HashMap<String, Bucket>>,
}

/// A token bucket for one token's rate limit.
#[derive(Debug)]
struct Bucket {
    available: f64,
    at: Instant,
}

impl Tokens {
    /// Records what the KV bucket says about token `id` at `revision`,
    /// unless something newer is known.
    pub fn observe(&self, id: &str, revision: u64, record: Option<TokenRecord>) {
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        match known.get(id) {
            Some((seen, _)) if *seen >= revision => {}
            _ => {
                known.insert(id.to_owned(), (revision, record));
            }
        }
    }

    fn lookup(&self, id: &str) -> Option<Option<TokenRecord>> {
        self.known.read().unwrap_or_else(|e| e.into_inner()).get(id).map(|(_, r)| r.clone())
    }

    /// Takes one request from the token's allowance; `Err(seconds)` to wait when none is left.
    pub fn take(&self, record: &TokenInfo) -> Result<(), u64> {
        let now = Instant::now();
        let mut limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        let burst = f64::from(record.burst.max(1));
        let rate = f64::from(record.rate_per_sec.max(1));
        let bucket = limits.entry(record.id.clone()).or_insert(Bucket { available: burst, at: now });
        bucket.available = (bucket.available + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.available >= 1.0 {
            bucket.available -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.available) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// Follows the token records in the KV bucket for as long as the hub runs.
pub async fn follow_tokens(hub: Hub) {
    loop {
        match hub.kv().inner().watch(format!("{TOKEN_PREFIX}>")).await {
            Ok(mut watch) => {
                while let Some(entry) = watch.next().await {
                    let Ok(entry) = entry else { break };
                    let Some(id) = entry.key.strip_prefix(TOKEN_PREFIX) else { continue };
                    let record = match entry.operation {
                        async_nats::jetstream::kv::Operation::Put => serde_json::from_slice(&entry.value).ok(),
                        _ => None,
                    };
                    hub.tokens().observe(id, entry.revision, record);
                }
            }
            Err(error) => tracing::warn!(%error, "watching the token records; trying again"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Authenticates a bearer token: the principal, or the problem to answer.
pub async fn authenticate(hub: &Hub, header: Option<&str>) -> Result<(Principal, TokenInfo), Problem> {
    let Some(header) = header else {
        return Err(Problem::unauthorized("this needs a bearer token: Authorization: Bearer cimhub_…"));
    };
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or_else(|| Problem::unauthorized("the Authorization header must be `Bearer <token>`"))?
        .trim();
    let invalid = || Problem::unauthorized("the token is not valid (unknown, revoked or mistyped)");
    let (id, secret) = parse(token).ok_or_else(invalid)?;
    let record = match hub.tokens().lookup(id) {
        Some(record) => record,
        None => {
            // Created a moment ago on another instance: the watch has not
            // brought it yet.
            let key = format!("{TOKEN_PREFIX}{id}");
            match hub.kv().inner().entry(&key).await {
                Ok(Some(entry)) if entry.operation == async_nats::jetstream::kv::Operation::Put => {
                    let record: Option<TokenRecord> = serde_json::from_slice(&entry.value).ok();
                    hub.tokens().observe(id, entry.revision, record.clone());
                    record
                }
                Ok(_) => None,
                Err(error) => return Err(Problem::unavailable(format!("reading the token records: {error}"))),
            }
        }
    };
    let record = record.ok_or_else(invalid)?;
    let presented = hash_secret(secret);
    if !bool::from(presented.as_bytes().ct_eq(record.secret_sha256.as_bytes())) {
        return Err(invalid());
    }
    let principal =
        Principal { token_id: record.info.id.clone(), name: record.info.name.clone(), scope: record.info.scope };
    Ok((principal, record.info))
}

/// Middleware of the authenticated routes: checks the bearer token and the
/// token's rate limit, and puts the [`Principal`] into the request.
pub async fn require_token(State(hub): State<Hub>, mut request: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    let header = request.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let (principal, info) = match authenticate(&hub, header).await {
        Ok(found) => found,
        Err(problem) => return problem.into_response(),
    };
    if let Err(wait) = hub.tokens().take(&info) {
        let mut problem = Problem::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("token {} may make {} requests a second (burst {})", info.id, info.rate_per_sec, info.burst),
        )
        .retryable();
        problem.retry_after = Some(wait);
        return problem.into_response();
    }
    request.extensions_mut().insert(Arc::new(principal));
    next.run(request).await
}

/// The authenticated caller, for handlers behind [`require_token`].
#[derive(Debug, Clone)]
pub struct Auth(pub Arc<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Arc<Principal>>()
            .cloned()
            .map(Auth)
            .ok_or_else(|| Problem::unauthorized("this needs a bearer token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_back_and_hash_their_secret() {
        let (id, token, hash) = generate();
        let (parsed_id, secret) = parse(&token).expect("our own token");
        assert_eq!(parsed_id, id);
        assert_eq!(hash_secret(secret), hash);
        assert_eq!(secret.len(), 43);
        assert!(parse("cimhub_short_x").is_none());
        assert!(parse("Bearer x").is_none());
        assert_ne!(generate().1, token);
    }

    #[test]
    fn the_rate_limit_allows_the_burst_then_the_rate() {
        let tokens = Tokens::default();
        let info = TokenInfo {
            id: "t".into(),
            name: "n".into(),
            scope: Scope::Read,
            rate_per_sec: 1,
            burst: 3,
            created_at: String::new(),
        };
        assert!((0..3).all(|_| tokens.take(&info).is_ok()));
        assert_eq!(tokens.take(&info), Err(1));
    }
}

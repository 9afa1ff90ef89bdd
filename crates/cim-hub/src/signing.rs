//! Standard Webhooks 1.0 signatures: `webhook-id`, `webhook-timestamp`
//! (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "<id>.<timestamp>.<body>">`, keyed by the bytes of a `whsec_<base64>`
//! secret. Outbound deliveries are signed with it; inbound requests are
//! checked with it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The prefix of a secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Header names.
pub const ID: &str = "webhook-id";
/// Header names.
pub const TIMESTAMP: &str = "webhook-timestamp";
/// Header names.
pub const SIGNATURE: &str = "webhook-signature";

/// A new secret: 32 random bytes.
pub fn new_secret() -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(crate::auth::random_bytes::<32>()))
}

fn key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD.decode(encoded).map_err(|e| format!("the secret is not base64: {e}"))
}

/// The signature header value of a message.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    Ok(format!("v1,{}", STANDARD.encode(mac(&key(secret)?, id, timestamp, body))))
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A header is missing or malformed.
    #[error("{0}")]
    Malformed(String),
    /// The timestamp is too far from now.
    #[error("the timestamp {timestamp} is more than {tolerance} seconds from the hub's clock ({now})")]
    Stale {
        /// The request's.
        timestamp: i64,
        /// The hub's.
        now: i64,
        /// The window.
        tolerance: u64,
    },
    /// No signature matches.
    #[error("no v1 signature matches the body")]
    BadSignature,
}

/// Checks a request's signature and timestamp; `now` in Unix seconds.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
    tolerance: u64,
) -> Result<i64, Refusal> {
    if id.is_empty() || id.len() > 256 {
        return Err(Refusal::Malformed("webhook-id must be 1-256 bytes".to_owned()));
    }
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Refusal::Malformed(format!("webhook-timestamp {timestamp:?} is not Unix seconds")))?;
    if timestamp.abs_diff(now) > tolerance {
        return Err(Refusal::Stale { timestamp, now, tolerance });
    }
    let key = key(secret).map_err(Refusal::Malformed)?;
    let expected = mac(&key, id, timestamp, body);
    let matched = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| STANDARD.decode(s).ok())
        .any(|given| bool::from(given.ct_eq(&expected)));
    if matched { Ok(timestamp) } else { Err(Refusal::BadSignature) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn the_specification_example_signs_and_verifies() {
        let signature = sign(SECRET, ID, TS, BODY).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(verify(SECRET, ID, &TS.to_string(), &format!("v1,bogus {signature}"), BODY, TS + 10, 300), Ok(TS));
    }

    #[test]
    fn tampering_and_staleness_are_refused() {
        let signature = sign(SECRET, ID, TS, BODY).unwrap();
        assert_eq!(verify(SECRET, ID, &TS.to_string(), &signature, b"{}", TS, 300), Err(Refusal::BadSignature));
        assert_eq!(verify(SECRET, "other", &TS.to_string(), &signature, BODY, TS, 300), Err(Refusal::BadSignature));
        assert!(matches!(
            verify(SECRET, ID, &TS.to_string(), &signature, BODY, TS + 301, 300),
            Err(Refusal::Stale { .. })
        ));
        assert!(matches!(verify(SECRET, ID, "x", &signature, BODY, TS, 300), Err(Refusal::Malformed(_))));
        let other = new_secret();
        assert_eq!(verify(&other, ID, &TS.to_string(), &signature, BODY, TS, 300), Err(Refusal::BadSignature));
    }
}

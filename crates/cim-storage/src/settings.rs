//! `[storage]` settings: the two S3 tiers, and the policies for sealing,
//! copying, scrubbing, retention and garbage collection.

use std::path::PathBuf;

use cim_runtime::{Invalid, Settings};
use serde::{Deserialize, Serialize};

/// `[storage]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// `[storage.warm]`: the NAS (MinIO-like).
    pub warm: TierSettings,
    /// `[storage.cold]`: the cloud (Wasabi-like).
    pub cold: TierSettings,
    /// `[storage.seal]`.
    pub seal: SealPolicy,
    /// `[storage.copy]`.
    pub copy: CopyPolicy,
    /// `[storage.scrub]`.
    pub scrub: ScrubPolicy,
    /// `[storage.retention]`.
    pub retention: RetentionPolicy,
    /// `[storage.gc]`.
    pub gc: GcPolicy,
    /// Local directory for segments being built (default: the system's
    /// temporary directory).
    pub work_dir: Option<PathBuf>,
}

/// One tier: an S3 bucket, or (for development and testing) a directory.
/// S3 credentials are read from files (`access_key_file`,
/// `secret_key_file`), never written in the configuration.
///
/// A directory tier has `endpoint = "file:///absolute/path"`: that
/// directory plays the S3 server and `bucket` names a subdirectory of it,
/// which must exist (the manager creates no buckets, nor their
/// directories). It takes no credentials. Both copies on one disk protect
/// against little: it is for trying the stack out (`cim up`) and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TierSettings {
    /// The S3 endpoint, e.g. `http://nas.local:9000` or
    /// `https://s3.eu-central-1.wasabisys.com`; or `file:///path` for a
    /// directory tier.
    pub endpoint: String,
    /// The bucket. It must exist: the manager never creates buckets.
    pub bucket: String,
    /// The region signed into requests.
    pub region: String,
    /// Key prefix inside the bucket (`""`, or ending in `/`).
    pub prefix: String,
    /// File holding the access key id.
    pub access_key_file: Option<PathBuf>,
    /// File holding the secret access key.
    pub secret_key_file: Option<PathBuf>,
    /// Whether the provider honours `If-None-Match: *` on PUT (MinIO,
    /// SeaweedFS, AWS and Wasabi do). When it does not, the manager asks
    /// whether an item exists before writing it instead; every write is
    /// read back and re-hashed either way.
    pub conditional_put: bool,
    /// Allow plain `http://` endpoints.
    pub allow_http: bool,
    /// Seconds a request may take (a 64 MiB object included).
    pub timeout_secs: u64,
    /// Seconds to connect.
    pub connect_timeout_secs: u64,
    /// Retries of a request that failed in a way retrying can help (5xx,
    /// connection errors, timeouts), with exponential backoff.
    pub max_retries: usize,
    /// Total seconds those retries may take.
    pub retry_timeout_secs: u64,
}

impl Default for TierSettings {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            bucket: String::new(),
            region: "us-east-1".to_owned(),
            prefix: String::new(),
            access_key_file: None,
            secret_key_file: None,
            conditional_put: true,
            allow_http: false,
            timeout_secs: 300,
            connect_timeout_secs: 5,
            max_retries: 5,
            retry_timeout_secs: 60,
        }
    }
}

/// When the event stream is sealed into a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SealPolicy {
    /// Most events in one segment; a segment is sealed once this many are
    /// waiting.
    pub max_events: u64,
    /// Most bytes of events in one segment; sealed once this many wait.
    pub max_bytes: u64,
    /// A segment is sealed once its oldest event is this old, however
    /// few are waiting (0: never by age).
    pub max_age_secs: u64,
    /// How often the policy is checked, seconds (0: only on request).
    pub interval_secs: u64,
}

impl Default for SealPolicy {
    fn default() -> Self {
        Self { max_events: 100_000, max_bytes: 64 * 1024 * 1024, max_age_secs: 3600, interval_secs: 30 }
    }
}

/// How objects are copied down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CopyPolicy {
    /// How often new objects are looked for, seconds (0: only on request).
    pub interval_secs: u64,
    /// Objects copied at once.
    pub concurrency: usize,
    /// Objects up to this size are put in one request; larger ones as
    /// multipart uploads.
    pub single_put_max_bytes: u64,
    /// Part size of multipart uploads (S3: at least 5 MiB).
    pub part_bytes: u64,
}

impl Default for CopyPolicy {
    fn default() -> Self {
        Self { interval_secs: 30, concurrency: 4, single_put_max_bytes: 16 * 1024 * 1024, part_bytes: 8 * 1024 * 1024 }
    }
}

/// When every tier is re-hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScrubPolicy {
    /// Seconds between scrubs (0: only on request).
    pub interval_secs: u64,
    /// Repair what is missing or corrupt from a good copy.
    pub repair: bool,
    /// Items re-hashed at once.
    pub concurrency: usize,
}

impl Default for ScrubPolicy {
    fn default() -> Self {
        Self { interval_secs: 7 * 24 * 3600, repair: true, concurrency: 4 }
    }
}

/// What the hot tier may drop. Only what is verified on both tiers is
/// ever dropped. Disabled by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Apply retention at all.
    pub enabled: bool,
    /// Seconds between runs (0: only on request).
    pub interval_secs: u64,
    /// Sealed segments whose newest event is older than this are dropped
    /// from hot (0: age does not drop).
    pub events_max_age_secs: u64,
    /// Keep at most this many events in hot, dropping whole sealed
    /// segments, oldest first (0: no limit).
    pub events_max_hot: u64,
    /// Objects stored longer ago than this are dropped from hot (0: age
    /// does not drop).
    pub objects_max_age_secs: u64,
    /// Keep at most this many bytes of objects in hot, dropping the oldest
    /// first (0: no limit).
    pub objects_max_hot_bytes: u64,
    /// Keep at most this many objects in hot, dropping the oldest first
    /// (0: no limit).
    pub objects_max_hot_count: u64,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            enabled: false,
            interval_secs: 3600,
            events_max_age_secs: 0,
            events_max_hot: 0,
            objects_max_age_secs: 0,
            objects_max_hot_bytes: 0,
            objects_max_hot_count: 0,
        }
    }
}

/// Garbage collection of unreferenced objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcPolicy {
    /// Sweep at all (a dry run is always possible).
    pub enabled: bool,
    /// Seconds between runs (0: only on request).
    pub interval_secs: u64,
    /// An object unreferenced for this long is swept from every tier.
    pub grace_secs: u64,
}

impl Default for GcPolicy {
    fn default() -> Self {
        Self { enabled: false, interval_secs: 24 * 3600, grace_secs: 7 * 24 * 3600 }
    }
}

impl Settings for StorageSettings {
    const SECTION: &'static str = "storage";

    fn validate(&self) -> Result<(), Invalid> {
        self.warm.validate("warm")?;
        self.cold.validate("cold")?;
        if self.warm.endpoint == self.cold.endpoint
            && self.warm.bucket == self.cold.bucket
            && self.warm.prefix == self.cold.prefix
        {
            return Err(Invalid::new(
                "cold",
                "must not be the same bucket and prefix as warm: two copies are the point",
            ));
        }
        let seal = &self.seal;
        if !(1..=1_000_000).contains(&seal.max_events) {
            return Err(Invalid::new("seal.max_events", "must be between 1 and 1000000"));
        }
        if !(1024..=4 * 1024 * 1024 * 1024).contains(&seal.max_bytes) {
            return Err(Invalid::new("seal.max_bytes", "must be between 1024 and 4294967296"));
        }
        let copy = &self.copy;
        if !(1..=64).contains(&copy.concurrency) {
            return Err(Invalid::new("copy.concurrency", "must be between 1 and 64"));
        }
        if !(5 * 1024 * 1024..=512 * 1024 * 1024).contains(&copy.part_bytes) {
            return Err(Invalid::new("copy.part_bytes", "must be between 5 MiB and 512 MiB (S3's part sizes)"));
        }
        if copy.single_put_max_bytes > 5 * 1024 * 1024 * 1024 {
            return Err(Invalid::new("copy.single_put_max_bytes", "must be at most 5 GiB (S3's largest single put)"));
        }
        if !(1..=64).contains(&self.scrub.concurrency) {
            return Err(Invalid::new("scrub.concurrency", "must be between 1 and 64"));
        }
        if self.gc.enabled && self.gc.grace_secs < 60 {
            return Err(Invalid::new("gc.grace_secs", "must be at least 60 when gc is enabled"));
        }
        Ok(())
    }
}

impl TierSettings {
    /// The directory of a directory tier (`endpoint = "file:///path"`).
    pub fn directory(&self) -> Option<&std::path::Path> {
        self.endpoint.strip_prefix("file://").map(std::path::Path::new)
    }

    fn validate(&self, tier: &str) -> Result<(), Invalid> {
        let key = |k: &str| format!("{tier}.{k}");
        if self.endpoint.is_empty() {
            return Err(Invalid::new(key("endpoint"), "is required: the tier's S3 endpoint URL (or file:///dir)"));
        }
        if let Some(dir) = self.directory() {
            if !dir.is_absolute()
                || dir.components().any(|c| matches!(c, std::path::Component::ParentDir))
                || self.endpoint.contains(['?', '#'])
            {
                return Err(Invalid::new(key("endpoint"), "must be file:// and an absolute path without `..`"));
            }
            if self.access_key_file.is_some() || self.secret_key_file.is_some() {
                return Err(Invalid::new(
                    key("access_key_file"),
                    "is not used by a directory tier (file://): remove the key files",
                ));
            }
        } else {
            let http = self.endpoint.starts_with("http://");
            if !http && !self.endpoint.starts_with("https://") {
                return Err(Invalid::new(key("endpoint"), "must be an http:// or https:// URL (or file:///dir)"));
            }
            if http && !self.allow_http {
                return Err(Invalid::new(key("endpoint"), "is plain http: set allow_http = true to allow it"));
            }
        }
        if !valid_bucket(&self.bucket) {
            return Err(Invalid::new(
                key("bucket"),
                "is required: 3-63 characters of [a-z0-9.-], starting and ending with a letter or digit",
            ));
        }
        if !self.prefix.is_empty()
            && (!self.prefix.ends_with('/')
                || self.prefix.starts_with('/')
                || self.prefix.contains("//")
                || !self.prefix.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.')))
        {
            return Err(Invalid::new(key("prefix"), "must be empty or like `cim/` ([A-Za-z0-9/._-], ending in /)"));
        }
        if self.directory().is_none() && self.access_key_file.is_none() {
            return Err(Invalid::new(key("access_key_file"), "is required: a file holding the access key id"));
        }
        if self.directory().is_none() && self.secret_key_file.is_none() {
            return Err(Invalid::new(key("secret_key_file"), "is required: a file holding the secret key"));
        }
        if self.region.is_empty() {
            return Err(Invalid::new(key("region"), "must not be empty"));
        }
        if !(1..=3600).contains(&self.timeout_secs) {
            return Err(Invalid::new(key("timeout_secs"), "must be between 1 and 3600"));
        }
        if !(1..=300).contains(&self.connect_timeout_secs) {
            return Err(Invalid::new(key("connect_timeout_secs"), "must be between 1 and 300"));
        }
        if self.max_retries > 100 {
            return Err(Invalid::new(key("max_retries"), "must be at most 100"));
        }
        Ok(())
    }
}

fn valid_bucket(bucket: &str) -> bool {
    let bytes = bucket.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(endpoint: &str, bucket: &str) -> TierSettings {
        TierSettings {
            endpoint: endpoint.to_owned(),
            bucket: bucket.to_owned(),
            allow_http: true,
            access_key_file: Some("/run/k".into()),
            secret_key_file: Some("/run/s".into()),
            ..TierSettings::default()
        }
    }

    #[test]
    fn tiers_are_required_and_distinct() {
        let mut settings = StorageSettings::default();
        assert_eq!(settings.validate().expect_err("no tiers").key, "warm.endpoint");
        settings.warm = tier("http://nas:9000", "cim-warm");
        settings.cold = tier("http://nas:9000", "cim-warm");
        assert_eq!(settings.validate().expect_err("same").key, "cold");
        settings.cold = tier("https://s3.wasabisys.com", "cim-cold");
        settings.validate().expect("valid");
        settings.cold.allow_http = false;
        settings.validate().expect("https needs no allow_http");
        settings.warm.allow_http = false;
        assert_eq!(settings.validate().expect_err("plain http").key, "warm.endpoint");
        settings.warm.allow_http = true;
        settings.warm.bucket = "Bad_Bucket".to_owned();
        assert_eq!(settings.validate().expect_err("bucket").key, "warm.bucket");
        settings.warm.bucket = "cim-warm".to_owned();
        settings.warm.prefix = "cim".to_owned();
        assert_eq!(settings.validate().expect_err("prefix").key, "warm.prefix");
        settings.warm.secret_key_file = None;
        settings.warm.prefix = "cim/".to_owned();
        assert_eq!(settings.validate().expect_err("secret").key, "warm.secret_key_file");
    }

    #[test]
    fn directory_tiers() {
        let dir = |endpoint: &str, bucket: &str| TierSettings {
            endpoint: endpoint.to_owned(),
            bucket: bucket.to_owned(),
            ..TierSettings::default()
        };
        let mut settings = StorageSettings {
            warm: dir("file:///var/lib/cim/tiers", "warm"),
            cold: dir("file:///var/lib/cim/tiers", "cold"),
            ..StorageSettings::default()
        };
        settings.validate().expect("two directory tiers, no credentials");
        assert_eq!(settings.warm.directory(), Some(std::path::Path::new("/var/lib/cim/tiers")));
        settings.cold.bucket = "warm".to_owned();
        assert_eq!(settings.validate().expect_err("same directory").key, "cold");
        settings.cold = dir("file://tiers", "cold");
        assert_eq!(settings.validate().expect_err("relative").key, "cold.endpoint");
        settings.cold = dir("file:///var/lib/../cim", "cold");
        assert_eq!(settings.validate().expect_err("..").key, "cold.endpoint");
        settings.cold = dir("file:///var/lib/cim/tiers", "");
        assert_eq!(settings.validate().expect_err("no bucket").key, "cold.bucket");
        settings.cold = TierSettings { access_key_file: Some("/run/k".into()), ..dir("file:///srv", "cold") };
        assert_eq!(settings.validate().expect_err("credentials").key, "cold.access_key_file");
        settings.cold = dir("ftp://srv", "cold");
        assert_eq!(settings.validate().expect_err("scheme").key, "cold.endpoint");
    }
}

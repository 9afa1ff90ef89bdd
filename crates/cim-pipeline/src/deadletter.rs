//! The dead-letter stream: inputs a pipeline gave up on, with the reason.
//!
//! It is the KV bucket `<namespace>-pipeline-dlq` (stream
//! `KV_<namespace>-pipeline-dlq`), one entry per (pipeline, input): key
//! `<pipeline>.<input CID>`, value a JSON [`DeadLetter`]; the bucket keeps
//! an entry's last 5 revisions (the failures of earlier replays). An input
//! dead-lettered twice overwrites its entry rather than adding a second.
//! Replaying an entry runs the input with the pipeline's current version;
//! if that completes, the entry is deleted.

use cim_pipeline_api::DeadLetter;
use cim_store::{KvBucket, KvOptions, StoreConfig};

/// The bucket's name under the namespace.
pub const BUCKET: &str = "pipeline-dlq";

/// The dead-letter stream. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    bucket: KvBucket,
}

/// The key of a pipeline's input.
pub fn key(pipeline: &str, input_cid: &str) -> String {
    format!("{pipeline}.{input_cid}")
}

impl DeadLetters {
    /// How the bucket keeps its entries: `[buckets.pipeline-dlq]` of
    /// `components.toml`, which provisioning creates it with.
    pub fn bucket_options() -> KvOptions {
        KvOptions {
            description: "CIM Pipeline Engine dead letters: <pipeline>.<input CID> -> the input and the reason"
                .to_owned(),
            history: 5,
            ttl: None,
            per_key_ttl_markers: None,
        }
    }

    /// Attaches to the provisioned bucket.
    ///
    /// # Errors
    /// The bucket is missing (`cim_store::Error::NotProvisioned`) or kept
    /// otherwise than [`DeadLetters::bucket_options`] (`Incompatible`).
    pub async fn open(client: async_nats::Client, config: &StoreConfig) -> cim_store::Result<Self> {
        let bucket = KvBucket::open(client, config, BUCKET, Self::bucket_options()).await?;
        Ok(Self { bucket })
    }

    /// Records an input given up on.
    pub async fn put(&self, letter: &DeadLetter) -> cim_store::Result<()> {
        self.bucket.put_json(&key(&letter.pipeline, &letter.input_cid), letter).await.map(|_| ())
    }

    /// Removes an entry (after a successful replay).
    pub async fn remove(&self, pipeline: &str, input_cid: &str) -> cim_store::Result<()> {
        self.bucket.delete(&key(pipeline, input_cid)).await
    }

    /// The entries, of one pipeline or all, sorted by key, at most `limit`.
    pub async fn list(&self, pipeline: Option<&str>, limit: usize) -> cim_store::Result<Vec<DeadLetter>> {
        let mut keys = self.bucket.keys().await?;
        keys.sort();
        let mut letters = Vec::new();
        for key in keys {
            if let Some(pipeline) = pipeline
                && key.split_once('.').map(|(p, _)| p) != Some(pipeline)
            {
                continue;
            }
            if letters.len() == limit {
                break;
            }
            if let Some(letter) = self.bucket.get_json::<DeadLetter>(&key).await? {
                letters.push(letter);
            }
        }
        Ok(letters)
    }

    /// How many entries a pipeline has.
    pub async fn count(&self, pipeline: &str) -> cim_store::Result<u64> {
        let keys = self.bucket.keys().await?;
        Ok(keys.iter().filter(|k| k.split_once('.').map(|(p, _)| p) == Some(pipeline)).count() as u64)
    }
}

//! The streams of one simulator, by name: create, delete, look up by name
//! or ARN.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::clock::Clock;
use crate::config::Limits;
use crate::protocol::ApiError;
use crate::state::{Stream, StreamSpec};

/// All streams.
#[derive(Debug)]
pub struct Registry {
    streams: RwLock<HashMap<String, Arc<Stream>>>,
    incarnations: AtomicU64,
    /// Region for ARNs.
    pub region: String,
    /// Account for ARNs and messages.
    pub account: String,
    /// The clock every stream runs on.
    pub clock: Clock,
}

impl Registry {
    /// Empty registry.
    pub fn new(region: &str, account: &str) -> Self {
        Registry {
            streams: RwLock::new(HashMap::new()),
            incarnations: AtomicU64::new(1),
            region: region.to_string(),
            account: account.to_string(),
            clock: Clock::new(),
        }
    }

    /// Create a stream (ACTIVE at once).
    pub fn create(
        &self,
        name: &str,
        spec: StreamSpec,
        limits: &Limits,
    ) -> Result<Arc<Stream>, ApiError> {
        let shards = spec.shards;
        validate_stream_name(name)?;
        if shards == 0 {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{shards}' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )));
        }
        if shards > limits.max_shards_per_stream {
            return Err(ApiError::new(
                400,
                "LimitExceededException",
                format!(
                    "This request would exceed the shard limit for the account {}. Current shard limit is {}.",
                    self.account, limits.max_shards_per_stream
                ),
            ));
        }
        let mut map = self.streams.write();
        if map.contains_key(name) {
            return Err(ApiError::new(
                400,
                "ResourceInUseException",
                format!(
                    "Stream {name} under account {} already exists.",
                    self.account
                ),
            ));
        }
        let inc = self.incarnations.fetch_add(1, Ordering::Relaxed);
        let s = Arc::new(Stream::new(
            name,
            spec,
            &self.region,
            &self.account,
            inc,
            limits,
            self.clock,
        ));
        map.insert(name.to_string(), s.clone());
        Ok(s)
    }

    /// Delete a stream.
    pub fn delete(&self, name: &str) -> Result<(), ApiError> {
        match self.streams.write().remove(name) {
            Some(_) => Ok(()),
            None => Err(self.not_found(name)),
        }
    }

    /// Look a stream up.
    pub fn get(&self, name: &str) -> Result<Arc<Stream>, ApiError> {
        self.streams
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| self.not_found(name))
    }

    /// Look a stream up by name or ARN (as requests give them): the ARN
    /// must be this stream's, region and account included.
    pub fn resolve(&self, name: Option<&str>, arn: Option<&str>) -> Result<Arc<Stream>, ApiError> {
        match (name, arn) {
            (Some(name), _) => {
                let s = self.get(name)?;
                if arn.is_some_and(|a| a != s.arn) {
                    return Err(ApiError::invalid_argument(format!(
                        "StreamARN {} does not name stream {name}",
                        arn.unwrap_or_default()
                    )));
                }
                Ok(s)
            }
            (None, Some(arn)) => {
                let name = match arn.rsplit_once(":stream/") {
                    Some((_, n)) if !n.is_empty() && arn.starts_with("arn:aws") => n,
                    _ => {
                        return Err(ApiError::validation(format!(
                            "1 validation error detected: Value '{arn}' at 'streamARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{{12}}:stream/\\S+"
                        )));
                    }
                };
                match self.find(name) {
                    Some(s) if s.arn == arn => Ok(s),
                    _ => Err(ApiError::not_found(format!(
                        "Stream {arn} under account {} not found.",
                        self.account
                    ))),
                }
            }
            (None, None) => Err(ApiError::invalid_argument(
                "Either StreamName or StreamARN should be provided.",
            )),
        }
    }

    /// Look a stream up by what a client names it with: its ARN if that
    /// starts with `arn:`, its name otherwise.
    pub fn lookup(&self, stream: &str) -> Result<Arc<Stream>, ApiError> {
        if stream.starts_with("arn:") {
            self.resolve(None, Some(stream))
        } else {
            self.get(stream)
        }
    }

    /// Every stream.
    pub fn all(&self) -> Vec<Arc<Stream>> {
        self.streams.read().values().cloned().collect()
    }

    /// Look a stream up, without an error.
    pub fn find(&self, name: &str) -> Option<Arc<Stream>> {
        self.streams.read().get(name).cloned()
    }

    /// Stream names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.streams.read().keys().cloned().collect();
        v.sort();
        v
    }

    /// The service's not-found error for a stream.
    pub fn not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(format!(
            "Stream {name} under account {} not found.",
            self.account
        ))
    }
}

/// Stream names: 1..128 of `[a-zA-Z0-9_.-]`.
pub fn validate_stream_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{name}' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        )));
    }
    Ok(())
}

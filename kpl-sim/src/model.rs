//! The simulator's state as an in-process model of Kinesis: the same
//! streams, limits, faults and resharding its HTTP server serves, called
//! directly. On a tokio runtime with a paused clock it runs in simulated
//! time, which is how kpl-core's simulation suite drives the producer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::SimStats;
use crate::api::{Shared, check_entry};
use crate::config::{Faults, Limits, SimConfig};
use crate::faults::{FaultState, RequestFault};
use crate::protocol::ApiError;
use crate::state::{PutOutcome, Registry, StoredShard, seq_string};

/// One record of a PutRecords call to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRecord {
    /// The partition key.
    pub partition_key: String,
    /// The explicit hash key, if any.
    pub explicit_hash_key: Option<String>,
    /// The data.
    pub data: Bytes,
}

/// What the model did with one record of a PutRecords call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelOutcome {
    /// Stored.
    Stored {
        /// The shard.
        shard_id: String,
        /// The sequence number.
        sequence_number: String,
    },
    /// Not stored.
    Failed {
        /// The service's error code.
        code: &'static str,
        /// The service's message.
        message: String,
    },
}

/// One shard as ListShards describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelShard {
    /// The shard id.
    pub shard_id: String,
    /// First hash key.
    pub start: u128,
    /// Last hash key (inclusive).
    pub end: u128,
    /// Whether it takes writes.
    pub open: bool,
}

/// Kinesis in-process: the simulator's state without its server.
///
/// ```
/// use kpl_sim::{Model, ModelOutcome, ModelRecord, SimConfig};
///
/// let model = Model::new(&SimConfig::default().stream("orders", 2)).unwrap();
/// let outcomes = model
///     .put_records("orders", vec![ModelRecord {
///         partition_key: "k".into(),
///         explicit_hash_key: None,
///         data: "v".into(),
///     }])
///     .unwrap();
/// assert!(matches!(outcomes[0], ModelOutcome::Stored { .. }));
/// assert_eq!(model.list_shards("orders").unwrap().len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Model {
    pub(crate) shared: Arc<Shared>,
}

impl Model {
    /// A model with `config`'s limits, faults, retention and streams (its
    /// address settings are not used).
    pub fn new(config: &SimConfig) -> Result<Model, ApiError> {
        let shared = Arc::new(Shared {
            registry: Registry::new(&config.region, &config.account),
            limits: RwLock::new(Arc::new(config.limits.clone())),
            retention: config.retention,
            faults: FaultState::new(config.faults.clone()),
            counters: Default::default(),
            cloudwatch: Default::default(),
        });
        for (name, shards) in &config.streams {
            shared.registry.create(name, *shards, &config.limits)?;
        }
        Ok(Model { shared })
    }

    /// One PutRecords call: the request's checks, then one outcome per
    /// record, in order. Request-level faults are not drawn here: see
    /// [`Model::request_fault`].
    pub fn put_records(
        &self,
        stream: &str,
        records: Vec<ModelRecord>,
    ) -> Result<Vec<ModelOutcome>, ApiError> {
        let shared = &self.shared;
        shared
            .counters
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        shared
            .counters
            .put_records_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let limits = shared.limits();
        if records.is_empty() || records.len() > limits.max_records_per_request {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '[...]' at 'records' failed to satisfy constraint: Member must have length between 1 and {}",
                limits.max_records_per_request
            )));
        }
        let mut entries = Vec::with_capacity(records.len());
        for (i, r) in records.into_iter().enumerate() {
            let ehk = r.explicit_hash_key.as_deref();
            entries.push(check_entry(
                Some(i),
                &r.partition_key,
                ehk,
                r.data,
                &limits,
            )?);
        }
        let sizes = entries.iter().map(|e| e.size()).collect();
        let (stream, outcomes) = shared.put_entries(stream, entries, sizes, &limits)?;
        Ok(outcomes
            .into_iter()
            .map(|o| match o {
                PutOutcome::Ok { shard, seq } => ModelOutcome::Stored {
                    shard_id: shard.id.clone(),
                    sequence_number: seq_string(seq),
                },
                PutOutcome::Throttled { shard } => ModelOutcome::Failed {
                    code: "ProvisionedThroughputExceededException",
                    message: shared.throttle_message(&stream, &shard),
                },
                PutOutcome::InternalFailure => ModelOutcome::Failed {
                    code: "InternalFailure",
                    message: "Internal service failure.".to_owned(),
                },
            })
            .collect())
    }

    /// Every shard of the stream, open and closed, as ListShards lists them.
    pub fn list_shards(&self, stream: &str) -> Result<Vec<ModelShard>, ApiError> {
        self.shared
            .counters
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stream = self.shared.registry.get(stream)?;
        let set = stream.shards.read();
        Ok(set
            .all
            .iter()
            .map(|s| ModelShard {
                shard_id: s.id.clone(),
                start: s.start,
                end: s.end,
                open: s.is_open(),
            })
            .collect())
    }

    /// The stream's ARN and open shard count (DescribeStreamSummary).
    pub fn describe_stream_summary(&self, stream: &str) -> Result<(String, u32), ApiError> {
        let stream = self.shared.registry.get(stream)?;
        let open = stream.shards.read().open.len() as u32;
        Ok((stream.arn.clone(), open))
    }

    /// Draws the request-level fault for one call (what the server does
    /// before it handles a request).
    pub fn request_fault(&self) -> RequestFault {
        self.shared.faults.request_fault()
    }

    /// Draws the latency to add to one call.
    pub fn latency(&self) -> Duration {
        self.shared.faults.latency()
    }

    /// Splits an open shard at `new_start` (the second child's first key).
    pub fn split_shard(&self, stream: &str, shard: &str, new_start: u128) -> Result<(), ApiError> {
        let s = self.shared.registry.get(stream)?;
        s.split(
            shard,
            new_start,
            &self.shared.limits(),
            &self.shared.registry.account,
        )
    }

    /// Merges two adjacent open shards.
    pub fn merge_shards(&self, stream: &str, shard: &str, adjacent: &str) -> Result<(), ApiError> {
        let s = self.shared.registry.get(stream)?;
        s.merge(
            shard,
            adjacent,
            &self.shared.limits(),
            &self.shared.registry.account,
        )
    }

    /// Create a stream (ACTIVE at once).
    pub fn create_stream(&self, name: &str, shards: u32) -> Result<(), ApiError> {
        self.shared
            .registry
            .create(name, shards, &self.shared.limits())
            .map(|_| ())
    }

    /// Delete a stream.
    pub fn delete_stream(&self, name: &str) -> Result<(), ApiError> {
        self.shared.registry.delete(name)
    }

    /// Names of all streams.
    pub fn stream_names(&self) -> Vec<String> {
        self.shared.registry.names()
    }

    /// Every shard of `stream` (open and closed) with its retained records;
    /// `None` if there is no such stream.
    pub fn records(&self, stream: &str) -> Option<Vec<StoredShard>> {
        self.shared.registry.find(stream).map(|s| s.snapshot())
    }

    /// Replace the fault injection (reseeds the fault RNG).
    pub fn set_faults(&self, f: Faults) {
        self.shared.faults.set(f);
    }

    /// The current fault injection.
    pub fn faults(&self) -> Faults {
        self.shared.faults.get()
    }

    /// Replace the limits. Per-shard buckets keep their current level.
    pub fn set_limits(&self, l: Limits) {
        *self.shared.limits.write() = Arc::new(l);
    }

    /// The current limits.
    pub fn limits(&self) -> Limits {
        (*self.shared.limits()).clone()
    }

    /// Counters so far.
    pub fn stats(&self) -> SimStats {
        self.shared.counters.snapshot()
    }
}

//! The simulator's state as an in-process model of Kinesis: the same
//! streams, limits, faults and resharding its HTTP server serves, called
//! directly. On a tokio runtime with a paused clock it runs in simulated
//! time, which is how kpl-core's simulation suite drives the producer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::SimStats;
use crate::api::Shared;
use crate::config::{Faults, Limits, SimConfig};
use crate::entries::check_entry;
use crate::faults::{FaultState, RequestFault};
use crate::protocol::ApiError;
use crate::state::{PutOutcome, Registry, StoredShard, StreamSpec, check_record_kib, seq_string};

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

/// What DescribeStreamSummary tells about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSummary {
    /// The stream's name.
    pub stream_name: String,
    /// The stream's ARN.
    pub stream_arn: String,
    /// Open shards.
    pub open_shard_count: u32,
    /// `MaxRecordSizeInKiB`: the largest record (data + partition key) in KiB.
    pub max_record_size_kib: u32,
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
            on_demand: config.on_demand.clone(),
            counters: Default::default(),
            cloudwatch: Default::default(),
        });
        for (name, spec) in &config.streams {
            shared.registry.create(name, *spec, &config.limits)?;
        }
        Ok(Model { shared })
    }

    /// One PutRecords call to a stream named by name or ARN: the request's
    /// checks (each record against the stream's `MaxRecordSizeInKiB`, the
    /// request against its size limit), then one outcome per record, in
    /// order. Request-level faults are not drawn here: see
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
        let stream = shared.registry.lookup(stream)?;
        let mut entries = Vec::with_capacity(records.len());
        for (i, r) in records.into_iter().enumerate() {
            let ehk = r.explicit_hash_key.as_deref();
            entries.push(check_entry(
                Some(i),
                &r.partition_key,
                ehk,
                r.data,
                &stream,
                &limits,
            )?);
        }
        let sizes = entries.iter().map(|e| e.size()).collect();
        let outcomes = shared.put_entries(&stream, entries, sizes, &limits)?;
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
        let stream = self.shared.registry.lookup(stream)?;
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

    /// What DescribeStreamSummary tells about a stream named by name or ARN.
    pub fn describe_stream_summary(&self, stream: &str) -> Result<ModelSummary, ApiError> {
        let stream = self.shared.registry.lookup(stream)?;
        let open_shard_count = stream.shards.read().open.len() as u32;
        Ok(ModelSummary {
            stream_name: stream.name.clone(),
            stream_arn: stream.arn.clone(),
            open_shard_count,
            max_record_size_kib: stream.max_record_kib(),
        })
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

    /// Create a provisioned stream with the default 1 MiB record limit
    /// (ACTIVE at once).
    pub fn create_stream(&self, name: &str, shards: u32) -> Result<(), ApiError> {
        self.create_stream_with(name, StreamSpec::provisioned(shards))
    }

    /// Create a stream of any mode and record size limit (ACTIVE at once).
    pub fn create_stream_with(&self, name: &str, spec: StreamSpec) -> Result<(), ApiError> {
        self.shared
            .registry
            .create(name, spec, &self.shared.limits())
            .map(|_| ())
    }

    /// Set a stream's `MaxRecordSizeInKiB` (as UpdateMaxRecordSize does).
    pub fn set_max_record_size(&self, stream: &str, kib: u32) -> Result<(), ApiError> {
        let kib = check_record_kib(kib as i64)?;
        self.shared.registry.get(stream)?.set_max_record_kib(kib);
        Ok(())
    }

    /// The ARN of a stream, if there is one of that name.
    pub fn stream_arn(&self, stream: &str) -> Option<String> {
        self.shared.registry.find(stream).map(|s| s.arn.clone())
    }

    /// Open shards of a stream, if there is one of that name.
    pub fn open_shard_count(&self, stream: &str) -> Option<usize> {
        self.shared
            .registry
            .find(stream)
            .map(|s| s.shards.read().open.len())
    }

    /// Scales out the on-demand streams (see [`crate::OnDemand`]) every
    /// window, on the simulator's clock (simulated time on a runtime with a
    /// paused clock), until `shutdown` turns true. [`crate::Sim`] runs it
    /// for its server; a test driving a model spawns it itself.
    pub async fn run_on_demand(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        let rule = self.shared.on_demand.clone();
        crate::ondemand::run(self.shared.clone(), rule, shutdown).await
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

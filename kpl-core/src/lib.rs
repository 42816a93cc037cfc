//! kpl-core: an in-process Kinesis producer.
//!
//! It does what the Kinesis Producer Library (KPL) does, without a child
//! process: aggregates many small user records into one Kinesis record
//! (the KPL's protobuf format, readable by the KCL and the aws-kinesis-agg
//! deaggregators), collects records into PutRecords requests, limits and
//! retries per shard, and reports a result for every record.
//!
//! - [`Producer`]: the asynchronous producer (tokio).
//! - [`Config`]: settings by the KPL's names, defaults and ranges.
//! - [`aggregation`]: the wire format, pure and synchronous.
//!
//! # Delivery contract
//! At least once. Every record put ends in exactly one result: a
//! [`PutResult`] or an [`Error`] that hands the record back. A record can be
//! written twice when a request's answer is lost (timeout, dropped
//! connection) after Kinesis stored it, or when an aggregate landed on a
//! shard that no longer holds all of its records (a reshard happened while
//! it was in flight): consumers drop such an aggregate whole, so its records
//! are sent again.
#![deny(missing_docs)]

pub mod aggregation;
pub mod client;
mod codes;
mod config;
mod error;
mod hash;
pub mod kinesis;
mod limiter;
mod metrics;
mod pipeline;
mod producer;
mod proxy;
mod record;
mod record_size;
mod shard_map;
pub mod spool;
mod transport;

pub use config::{Config, ConfigBuilder, StaticCredentials};
pub use error::{Error, ErrorKind};
pub use hash::HashKey;
pub use metrics::{Metrics, MetricsDimension, MetricsGranularity, MetricsLevel};
pub use pipeline::Room;
pub use producer::{PipelineStats, Producer, PutHandle};
pub use record::{Attempt, MAX_PARTITION_KEY_CHARS, PutResult, UserRecord};
pub use spool::{SpoolFullPolicy, SpoolSync};

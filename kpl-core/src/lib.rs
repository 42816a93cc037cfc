//! kpl-core: an in-process Kinesis producer.
//!
//! It does what the Kinesis Producer Library (KPL) does, without a child
//! process: aggregates many small user records into one Kinesis record
//! (the KPL's protobuf format, readable by the KCL and the aws-kinesis-agg
//! deaggregators), collects records into PutRecords requests, limits and
//! retries per shard, and reports a result for every record.
//!
//! The format layer ([`aggregation`], [`HashKey`], [`UserRecord`]) is pure
//! and synchronous and can be used on its own.
#![deny(missing_docs)]

pub mod aggregation;
mod error;
mod hash;
mod record;

pub use error::{Error, ErrorKind};
pub use hash::HashKey;
pub use record::{Attempt, MAX_PARTITION_KEY_CHARS, PutResult, UserRecord};

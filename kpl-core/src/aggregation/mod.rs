//! The KPL aggregation format: many user records in one Kinesis record.
//!
//! An aggregated record is the magic `F3 89 9A C2`, a protobuf
//! `AggregatedRecord`, and the 16-byte MD5 of the protobuf bytes. The
//! [`Aggregator`] writes it byte for byte as the reference KPL does, and
//! [`Deaggregator`] reads it with the KCL's rules. Both are pure: no I/O, no
//! clock.
//!
//! ```
//! use bytes::Bytes;
//! use kpl_core::aggregation::{deaggregate, Aggregator};
//! use kpl_core::UserRecord;
//!
//! let mut agg = Aggregator::new(51_200, usize::MAX);
//! for i in 0..3 {
//!     agg.add(UserRecord::new(format!("key-{i}"), format!("reading {i}"))).unwrap();
//! }
//! let kinesis_record = agg.finish().unwrap();
//! assert_eq!(kinesis_record.partition_key, "a");
//!
//! let records = deaggregate(
//!     &kinesis_record.partition_key,
//!     kinesis_record.explicit_hash_key.as_deref(),
//!     kinesis_record.data.clone(),
//! )
//! .unwrap();
//! assert_eq!(records.len(), 3);
//! assert_eq!(records[2].data, Bytes::from("reading 2"));
//! assert_eq!(records[2].sub_sequence_number, 2);
//! ```

mod aggregator;
mod deaggregator;
pub(crate) mod md5;
pub(crate) mod proto;

pub(crate) use aggregator::seal;
pub use aggregator::{Aggregator, KinesisRecord};
pub use deaggregator::{DeaggregatedRecord, Deaggregator, deaggregate};

/// The four bytes every aggregated record starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// Length of the MD5 trailer.
pub const DIGEST_LEN: usize = 16;

/// Bytes an aggregated record adds around its protobuf: magic and MD5.
pub const OVERHEAD: usize = MAGIC.len() + DIGEST_LEN;

/// Outer partition key of every aggregate of two or more records. Routing
/// uses the explicit hash key instead, so its value does not matter.
pub const AGGREGATE_PARTITION_KEY: &str = "a";

#[cfg(test)]
mod tests;

//! The Kinesis operations the producer needs, as a trait.
//!
//! The producer talks to Kinesis only through [`Kinesis`]. The default
//! implementation is the AWS SDK client ([`Producer::new`]); another one can
//! be passed to [`Producer::with_kinesis`]: a client with its own transport,
//! or an in-process model of the service for tests that run in simulated
//! time (kpl-rs's own simulation suite drives the producer that way, over
//! kpl-sim's state).
//!
//! [`Producer::new`]: crate::Producer::new
//! [`Producer::with_kinesis`]: crate::Producer::with_kinesis

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::Error;

/// A boxed future, as the [`Kinesis`] methods return (the trait stays
/// object-safe, so a producer holds any implementation behind one pointer).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The three Kinesis operations a producer uses.
///
/// Implementations report failures as [`Error`]s with the service's error
/// code ([`Error::code`]) where there is one: the producer decides from the
/// code whether to retry, pause a shard or fail the records. A transport
/// failure with no code is [`ErrorKind::Transport`](crate::ErrorKind::Transport)
/// and is retried.
///
/// ```
/// use std::sync::Arc;
/// use kpl_core::{Error, ErrorKind};
/// use kpl_core::kinesis::{BoxFuture, Entry, EntryOutcome, Kinesis, ShardInfo, StreamSummary};
///
/// /// A stream of one shard that stores nothing and acknowledges everything.
/// struct Sink;
///
/// impl Kinesis for Sink {
///     fn list_shards<'a>(&'a self, _stream: &'a str) -> BoxFuture<'a, Result<Vec<ShardInfo>, Error>> {
///         Box::pin(async { Ok(vec![ShardInfo::new("shardId-000000000000", 0, u128::MAX, true)]) })
///     }
///     fn put_records<'a>(&'a self, _stream: &'a str, entries: Vec<Entry>)
///         -> BoxFuture<'a, Result<Vec<EntryOutcome>, Error>> {
///         Box::pin(async move {
///             Ok(entries
///                 .iter()
///                 .enumerate()
///                 .map(|(i, _)| EntryOutcome::Delivered {
///                     shard_id: "shardId-000000000000".into(),
///                     sequence_number: format!("{i:056}").into(),
///                 })
///                 .collect())
///         })
///     }
///     fn describe_stream_summary<'a>(&'a self, stream: &'a str)
///         -> BoxFuture<'a, Result<StreamSummary, Error>> {
///         Box::pin(async move { Err(Error::service("ResourceNotFoundException", format!("no {stream}"))) })
///     }
/// }
/// let _client: Arc<dyn Kinesis> = Arc::new(Sink);
/// ```
pub trait Kinesis: Send + Sync + 'static {
    /// Every shard of `stream`, open and closed (closed ones tell where an
    /// aggregate sent before a reshard landed), all pages.
    fn list_shards<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<Vec<ShardInfo>, Error>>;

    /// One PutRecords call: one outcome per entry, in order.
    fn put_records<'a>(
        &'a self,
        stream: &'a str,
        entries: Vec<Entry>,
    ) -> BoxFuture<'a, Result<Vec<EntryOutcome>, Error>>;

    /// The stream's summary (DescribeStreamSummary).
    fn describe_stream_summary<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<StreamSummary, Error>>;
}

/// One shard: its id, inclusive hash key range, and whether it still takes
/// writes (a reshard closes its parents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// The shard id, e.g. `shardId-000000000003`.
    pub id: Arc<str>,
    /// First hash key of the shard's range.
    pub start: u128,
    /// Last hash key of the shard's range (inclusive).
    pub end: u128,
    /// Whether the shard is open (has no ending sequence number).
    pub open: bool,
}

impl ShardInfo {
    /// A shard from its id, range and state.
    pub fn new(id: impl Into<Arc<str>>, start: u128, end: u128, open: bool) -> ShardInfo {
        ShardInfo {
            id: id.into(),
            start,
            end,
            open,
        }
    }
}

/// One Kinesis record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The partition key.
    pub partition_key: String,
    /// The explicit hash key, when the record has one.
    pub explicit_hash_key: Option<String>,
    /// The record's bytes (an aggregate or a plain user record).
    pub data: Bytes,
}

/// What the service said about one entry of a PutRecords call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    /// Stored.
    Delivered {
        /// The shard that stored it.
        shard_id: Arc<str>,
        /// Its sequence number.
        sequence_number: Arc<str>,
    },
    /// Not stored.
    Failed {
        /// The service's error code, e.g. `ProvisionedThroughputExceededException`.
        code: String,
        /// The service's message.
        message: String,
    },
}

/// A stream's record size limit when the service does not say
/// (`MaxRecordSizeInKiB` absent: a service or emulator from before large
/// records, whose limit is 1 MiB).
pub const DEFAULT_MAX_RECORD_SIZE: usize = 1024 * 1024;

/// What DescribeStreamSummary tells about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamSummary {
    /// The stream's name.
    pub stream_name: String,
    /// The stream's ARN.
    pub stream_arn: String,
    /// Open shards.
    pub open_shard_count: u32,
    /// The largest record the stream takes, data plus partition key, in
    /// bytes (its `MaxRecordSizeInKiB` x 1024; records over it are failed
    /// before sending).
    pub max_record_size: usize,
}

impl Default for StreamSummary {
    /// An empty summary with the service's default record limit (1 MiB).
    fn default() -> StreamSummary {
        StreamSummary {
            stream_name: String::new(),
            stream_arn: String::new(),
            open_shard_count: 0,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
        }
    }
}

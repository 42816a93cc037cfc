//! Kinesis JSON 1.1 shapes: requests, errors, timestamps.

use std::borrow::Cow;

use serde::Deserialize;

/// Content type of the Kinesis JSON protocol.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// Prefix of `X-Amz-Target`.
pub const TARGET_PREFIX: &str = "Kinesis_20131202.";

/// An error answered in the service's shape: `{"__type": kind, "message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `__type`, e.g. `ResourceNotFoundException`.
    pub kind: &'static str,
    /// Message.
    pub message: String,
}

impl ApiError {
    /// Any error.
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }
    /// 400 ValidationException.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(400, "ValidationException", message)
    }
    /// 400 InvalidArgumentException.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidArgumentException", message)
    }
    /// 400 ResourceNotFoundException.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(400, "ResourceNotFoundException", message)
    }
    /// 400 SerializationException.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(400, "SerializationException", message)
    }
    /// 500 InternalFailure.
    pub fn internal() -> Self {
        Self::new(500, "InternalFailure", "Internal service failure.")
    }
    /// 503 ServiceUnavailable.
    pub fn unavailable() -> Self {
        Self::new(
            503,
            "ServiceUnavailable",
            "Service is unavailable. Please try again later.",
        )
    }
    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"__type": self.kind, "message": self.message}))
            .unwrap_or_default()
    }
    /// A "missing required member" validation error.
    pub fn missing(member: &str) -> Self {
        Self::validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    }
}

/// Parse a request body; syntax and type errors are SerializationException.
pub fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::serialization(e.to_string()))
}

/// Epoch seconds as the awsJson protocol writes timestamps.
pub fn epoch_secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// CreateStream.
#[derive(Debug, Deserialize)]
pub struct CreateStream {
    /// StreamName.
    #[serde(rename = "StreamName")]
    pub stream_name: Option<String>,
    /// ShardCount.
    #[serde(rename = "ShardCount")]
    pub shard_count: Option<i64>,
    /// StreamModeDetails.
    #[serde(rename = "StreamModeDetails")]
    pub stream_mode_details: Option<StreamModeDetails>,
    /// MaxRecordSizeInKiB (1024..=10240).
    #[serde(rename = "MaxRecordSizeInKiB")]
    pub max_record_size_in_kib: Option<i64>,
}

/// StreamModeDetails.
#[derive(Debug, Deserialize)]
pub struct StreamModeDetails {
    /// PROVISIONED or ON_DEMAND.
    #[serde(rename = "StreamMode")]
    pub stream_mode: Option<String>,
}

/// A request naming a stream plus paging fields used by several operations.
#[derive(Debug, Deserialize)]
pub struct StreamOp<'a> {
    /// StreamName.
    #[serde(rename = "StreamName", borrow, default)]
    pub stream_name: Option<Cow<'a, str>>,
    /// StreamARN.
    #[serde(rename = "StreamARN", borrow, default)]
    pub stream_arn: Option<Cow<'a, str>>,
    /// Limit (DescribeStream, ListStreams, GetRecords).
    #[serde(rename = "Limit")]
    pub limit: Option<i64>,
    /// ExclusiveStartShardId (DescribeStream, ListShards).
    #[serde(rename = "ExclusiveStartShardId")]
    pub exclusive_start_shard_id: Option<String>,
    /// ExclusiveStartStreamName (ListStreams).
    #[serde(rename = "ExclusiveStartStreamName")]
    pub exclusive_start_stream_name: Option<String>,
    /// MaxResults (ListShards).
    #[serde(rename = "MaxResults")]
    pub max_results: Option<i64>,
    /// NextToken (ListShards, ListStreams).
    #[serde(rename = "NextToken")]
    pub next_token: Option<String>,
    /// ShardFilter (ListShards).
    #[serde(rename = "ShardFilter")]
    pub shard_filter: Option<ShardFilter>,
    /// ShardId (GetShardIterator).
    #[serde(rename = "ShardId")]
    pub shard_id: Option<String>,
    /// ShardIteratorType (GetShardIterator).
    #[serde(rename = "ShardIteratorType")]
    pub shard_iterator_type: Option<String>,
    /// StartingSequenceNumber (GetShardIterator).
    #[serde(rename = "StartingSequenceNumber")]
    pub starting_sequence_number: Option<String>,
    /// Timestamp (GetShardIterator AT_TIMESTAMP).
    #[serde(rename = "Timestamp")]
    pub timestamp: Option<f64>,
    /// ShardIterator (GetRecords).
    #[serde(rename = "ShardIterator")]
    pub shard_iterator: Option<String>,
    /// ShardToSplit (SplitShard).
    #[serde(rename = "ShardToSplit")]
    pub shard_to_split: Option<String>,
    /// NewStartingHashKey (SplitShard).
    #[serde(rename = "NewStartingHashKey")]
    pub new_starting_hash_key: Option<String>,
    /// ShardToMerge (MergeShards).
    #[serde(rename = "ShardToMerge")]
    pub shard_to_merge: Option<String>,
    /// AdjacentShardToMerge (MergeShards).
    #[serde(rename = "AdjacentShardToMerge")]
    pub adjacent_shard_to_merge: Option<String>,
    /// TargetShardCount (UpdateShardCount).
    #[serde(rename = "TargetShardCount")]
    pub target_shard_count: Option<i64>,
    /// ScalingType (UpdateShardCount).
    #[serde(rename = "ScalingType")]
    pub scaling_type: Option<String>,
    /// MaxRecordSizeInKiB (UpdateMaxRecordSize).
    #[serde(rename = "MaxRecordSizeInKiB")]
    pub max_record_size_in_kib: Option<i64>,
}

/// ShardFilter of ListShards.
#[derive(Debug, Deserialize)]
pub struct ShardFilter {
    /// Type.
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    /// ShardId (AFTER_SHARD_ID).
    #[serde(rename = "ShardId")]
    pub shard_id: Option<String>,
}

/// One PutRecords entry, borrowing from the request body where it can.
#[derive(Debug, Deserialize)]
pub struct PutRecordsEntry<'a> {
    /// Base64 data.
    #[serde(rename = "Data", borrow)]
    pub data: Option<Cow<'a, str>>,
    /// Partition key.
    #[serde(rename = "PartitionKey", borrow)]
    pub partition_key: Option<Cow<'a, str>>,
    /// Explicit hash key.
    #[serde(rename = "ExplicitHashKey", borrow)]
    pub explicit_hash_key: Option<Cow<'a, str>>,
}

/// PutRecords.
#[derive(Debug, Deserialize)]
pub struct PutRecords<'a> {
    /// StreamName.
    #[serde(rename = "StreamName", borrow, default)]
    pub stream_name: Option<Cow<'a, str>>,
    /// StreamARN.
    #[serde(rename = "StreamARN", borrow, default)]
    pub stream_arn: Option<Cow<'a, str>>,
    /// Records.
    #[serde(rename = "Records", borrow)]
    pub records: Option<Vec<PutRecordsEntry<'a>>>,
}

/// PutRecord.
#[derive(Debug, Deserialize)]
pub struct PutRecord<'a> {
    /// StreamName.
    #[serde(rename = "StreamName", borrow, default)]
    pub stream_name: Option<Cow<'a, str>>,
    /// StreamARN.
    #[serde(rename = "StreamARN", borrow, default)]
    pub stream_arn: Option<Cow<'a, str>>,
    /// Base64 data.
    #[serde(rename = "Data", borrow)]
    pub data: Option<Cow<'a, str>>,
    /// Partition key.
    #[serde(rename = "PartitionKey", borrow)]
    pub partition_key: Option<Cow<'a, str>>,
    /// Explicit hash key.
    #[serde(rename = "ExplicitHashKey", borrow)]
    pub explicit_hash_key: Option<Cow<'a, str>>,
}

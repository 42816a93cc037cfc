//! The Kinesis operations.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64_simd::STANDARD as B64;
use parking_lot::RwLock;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{Limits, OnDemand, Retention};
use crate::faults::FaultState;
use crate::protocol::{self, ApiError, CreateStream, StreamOp, epoch_secs};
use crate::state::{
    Registry, Shard, Stream, StreamSpec, check_record_kib, parse_hash_key, seq_string,
    shard_index_of,
};

/// Counters kept while the simulator runs.
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) errors_4xx: AtomicU64,
    pub(crate) put_records_calls: AtomicU64,
    pub(crate) records_accepted: AtomicU64,
    pub(crate) bytes_accepted: AtomicU64,
    pub(crate) records_throttled: AtomicU64,
    pub(crate) records_internal_failure: AtomicU64,
    pub(crate) requests_500: AtomicU64,
    pub(crate) requests_503: AtomicU64,
    pub(crate) connections_dropped: AtomicU64,
    pub(crate) requests_timed_out: AtomicU64,
    pub(crate) records_read: AtomicU64,
}

/// A snapshot of the simulator's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// Kinesis API requests received (admin requests not counted).
    pub requests: u64,
    /// Requests answered with a 4xx error.
    pub errors_4xx: u64,
    /// PutRecords calls handled.
    pub put_records_calls: u64,
    /// Records stored (PutRecord and PutRecords).
    pub records_accepted: u64,
    /// Bytes (data + partition key) stored.
    pub bytes_accepted: u64,
    /// Records refused with ProvisionedThroughputExceededException.
    pub records_throttled: u64,
    /// Records failed with an injected InternalFailure.
    pub records_internal_failure: u64,
    /// Requests answered with an injected 500.
    pub requests_500: u64,
    /// Requests answered with an injected 503.
    pub requests_503: u64,
    /// Connections dropped by injection.
    pub connections_dropped: u64,
    /// Requests held by the timeout injection.
    pub requests_timed_out: u64,
    /// Records returned by GetRecords.
    pub records_read: u64,
}

impl Counters {
    /// Snapshot.
    pub fn snapshot(&self) -> SimStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SimStats {
            requests: g(&self.requests),
            errors_4xx: g(&self.errors_4xx),
            put_records_calls: g(&self.put_records_calls),
            records_accepted: g(&self.records_accepted),
            bytes_accepted: g(&self.bytes_accepted),
            records_throttled: g(&self.records_throttled),
            records_internal_failure: g(&self.records_internal_failure),
            requests_500: g(&self.requests_500),
            requests_503: g(&self.requests_503),
            connections_dropped: g(&self.connections_dropped),
            requests_timed_out: g(&self.requests_timed_out),
            records_read: g(&self.records_read),
        }
    }
}

/// State shared by the server tasks and the `Sim` handle.
#[derive(Debug)]
pub struct Shared {
    /// Streams.
    pub registry: Registry,
    /// Current limits.
    pub limits: RwLock<Arc<Limits>>,
    /// Retention.
    pub retention: Retention,
    /// Faults.
    pub faults: FaultState,
    /// How on-demand streams start and scale.
    pub on_demand: OnDemand,
    /// Counters.
    pub counters: Counters,
    /// What CloudWatch PutMetricData received.
    pub cloudwatch: crate::cloudwatch::CloudWatch,
}

pub(crate) fn add(a: &AtomicU64, n: u64) {
    if n > 0 {
        a.fetch_add(n, Ordering::Relaxed);
    }
}

pub(crate) fn to_json(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

impl Shared {
    /// The current limits.
    pub fn limits(&self) -> Arc<Limits> {
        self.limits.read().clone()
    }

    /// Run one operation; `Ok` is the 200 response body.
    pub fn dispatch(&self, op: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        match op {
            "PutRecords" => self.put_records(body),
            "PutRecord" => self.put_record(body),
            "CreateStream" => self.create_stream(body),
            "DeleteStream" => {
                let r: StreamOp = protocol::parse(body)?;
                let stream = self.stream(&r)?;
                self.registry.delete(&stream.name)?;
                Ok(Vec::new())
            }
            "ListStreams" => self.list_streams(body),
            "DescribeStream" => self.describe_stream(body),
            "DescribeStreamSummary" => self.describe_stream_summary(body),
            "UpdateMaxRecordSize" => {
                let r: StreamOp = protocol::parse(body)?;
                let kib = r
                    .max_record_size_in_kib
                    .ok_or_else(|| ApiError::missing("maxRecordSizeInKiB"))?;
                let kib = check_record_kib(kib)?;
                if r.stream_arn.is_none() {
                    return Err(ApiError::invalid_argument("StreamARN must be provided."));
                }
                self.stream(&r)?.set_max_record_kib(kib);
                Ok(Vec::new())
            }
            "ListShards" => self.list_shards(body),
            "GetShardIterator" => self.get_shard_iterator(body),
            "GetRecords" => self.get_records(body),
            "SplitShard" => {
                let r: StreamOp = protocol::parse(body)?;
                let stream = self.stream(&r)?;
                let shard = r
                    .shard_to_split
                    .ok_or_else(|| ApiError::missing("shardToSplit"))?;
                let key = r
                    .new_starting_hash_key
                    .ok_or_else(|| ApiError::missing("newStartingHashKey"))?;
                let key = parse_hash_key(&key).ok_or_else(|| {
                    ApiError::invalid_argument(format!("Invalid NewStartingHashKey {key}"))
                })?;
                stream.split(&shard, key, &self.limits(), &self.registry.account)?;
                Ok(Vec::new())
            }
            "MergeShards" => {
                let r: StreamOp = protocol::parse(body)?;
                let stream = self.stream(&r)?;
                let a = r
                    .shard_to_merge
                    .ok_or_else(|| ApiError::missing("shardToMerge"))?;
                let b = r
                    .adjacent_shard_to_merge
                    .ok_or_else(|| ApiError::missing("adjacentShardToMerge"))?;
                stream.merge(&a, &b, &self.limits(), &self.registry.account)?;
                Ok(Vec::new())
            }
            "UpdateShardCount" => {
                let r: StreamOp = protocol::parse(body)?;
                let stream = self.stream(&r)?;
                let target = r
                    .target_shard_count
                    .ok_or_else(|| ApiError::missing("targetShardCount"))?;
                match r.scaling_type.as_deref() {
                    Some("UNIFORM_SCALING") => {}
                    None => return Err(ApiError::missing("scalingType")),
                    Some(other) => {
                        return Err(ApiError::validation(format!(
                            "1 validation error detected: Value '{other}' at 'scalingType' failed to satisfy constraint: Member must satisfy enum value set: [UNIFORM_SCALING]"
                        )));
                    }
                }
                if !(1..=100_000).contains(&target) {
                    return Err(ApiError::validation(format!(
                        "1 validation error detected: Value '{target}' at 'targetShardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
                    )));
                }
                let current = stream.update_shard_count(target as u32, &self.limits())?;
                Ok(to_json(&json!({
                    "StreamName": stream.name,
                    "StreamARN": stream.arn,
                    "CurrentShardCount": current,
                    "TargetShardCount": target,
                })))
            }
            _ => Err(ApiError::new(
                400,
                "UnknownOperationException",
                format!("Unknown operation {op}"),
            )),
        }
    }

    pub(crate) fn stream(&self, r: &StreamOp) -> Result<Arc<Stream>, ApiError> {
        self.registry
            .resolve(r.stream_name.as_deref(), r.stream_arn.as_deref())
    }

    fn create_stream(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let r: CreateStream = protocol::parse(body)?;
        let name = r
            .stream_name
            .ok_or_else(|| ApiError::missing("streamName"))?;
        let on_demand = match r.stream_mode_details.and_then(|m| m.stream_mode).as_deref() {
            None | Some("PROVISIONED") => false,
            Some("ON_DEMAND") => true,
            Some(other) => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{other}' at 'streamModeDetails.streamMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]"
                )));
            }
        };
        let max_record_kib = check_record_kib(
            r.max_record_size_in_kib
                .unwrap_or(crate::config::DEFAULT_RECORD_KIB as i64),
        )?;
        let shards = match r.shard_count {
            Some(_) if on_demand => {
                return Err(ApiError::invalid_argument(
                    "ShardCount must not be given for ON_DEMAND streams",
                ));
            }
            Some(n) => n,
            None if on_demand => self.on_demand.initial_shards as i64,
            None => {
                return Err(ApiError::invalid_argument(
                    "ShardCount is required for PROVISIONED streams",
                ));
            }
        };
        let shards = u32::try_from(shards).map_err(|_| {
            ApiError::validation(format!(
                "1 validation error detected: Value '{shards}' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
            ))
        })?;
        let spec = StreamSpec {
            shards,
            on_demand,
            max_record_kib,
        };
        self.registry.create(&name, spec, &self.limits())?;
        Ok(Vec::new())
    }

    fn list_streams(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let r: StreamOp = protocol::parse(body)?;
        let limit = r.limit.unwrap_or(100).clamp(1, 10_000) as usize;
        let after = r
            .next_token
            .as_deref()
            .and_then(|t| B64.decode_to_vec(t).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .or(r.exclusive_start_stream_name);
        let names: Vec<String> = self
            .registry
            .names()
            .into_iter()
            .filter(|n| after.as_ref().is_none_or(|a| n > a))
            .collect();
        let page: Vec<&String> = names.iter().take(limit).collect();
        let more = names.len() > page.len();
        let summaries: Vec<Value> = page
            .iter()
            .filter_map(|n| self.registry.find(n))
            .map(|s| {
                json!({
                    "StreamName": s.name,
                    "StreamARN": s.arn,
                    "StreamStatus": "ACTIVE",
                    "StreamModeDetails": {"StreamMode": s.mode_name()},
                    "StreamCreationTimestamp": epoch_secs(s.created_ms),
                })
            })
            .collect();
        let mut out = json!({
            "StreamNames": page,
            "HasMoreStreams": more,
            "StreamSummaries": summaries,
        });
        if more && let Some(last) = page.last() {
            out["NextToken"] = json!(B64.encode_to_string(last.as_bytes()));
        }
        Ok(to_json(&out))
    }

    fn describe_stream(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let r: StreamOp = protocol::parse(body)?;
        let stream = self.stream(&r)?;
        let limit = r.limit.unwrap_or(100).clamp(1, 10_000) as usize;
        let set = stream.shards.read();
        let after = r
            .exclusive_start_shard_id
            .as_deref()
            .and_then(shard_index_of);
        let shards: Vec<&Arc<Shard>> = set
            .all
            .iter()
            .filter(|s| after.is_none_or(|a| s.index > a))
            .collect();
        let page: Vec<Value> = shards.iter().take(limit).map(|s| shard_json(s)).collect();
        let more = shards.len() > page.len();
        Ok(to_json(&json!({
            "StreamDescription": {
                "StreamName": stream.name,
                "StreamARN": stream.arn,
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": {"StreamMode": stream.mode_name()},
                "Shards": page,
                "HasMoreShards": more,
                "RetentionPeriodHours": 24,
                "StreamCreationTimestamp": epoch_secs(stream.created_ms),
                "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
                "EncryptionType": "NONE",
            }
        })))
    }

    fn describe_stream_summary(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let r: StreamOp = protocol::parse(body)?;
        let stream = self.stream(&r)?;
        let open = stream.shards.read().open.len();
        Ok(to_json(&json!({
            "StreamDescriptionSummary": {
                "StreamName": stream.name,
                "StreamARN": stream.arn,
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": {"StreamMode": stream.mode_name()},
                "RetentionPeriodHours": 24,
                "StreamCreationTimestamp": epoch_secs(stream.created_ms),
                "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
                "EncryptionType": "NONE",
                "OpenShardCount": open,
                "MaxRecordSizeInKiB": stream.max_record_kib(),
                "ConsumerCount": 0,
            }
        })))
    }

    fn list_shards(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let r: StreamOp = protocol::parse(body)?;
        let max = r.max_results.unwrap_or(1000);
        if !(1..=10_000).contains(&max) {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{max}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 10000"
            )));
        }
        // NextToken = base64("stream\nlast shard index\nfilter").
        let (name, after, filter) = if let Some(token) = &r.next_token {
            if r.stream_name.is_some() || r.stream_arn.is_some() {
                return Err(ApiError::invalid_argument(
                    "NextToken and StreamName cannot be provided together.",
                ));
            }
            let bad = || ApiError::invalid_argument(format!("Invalid NextToken {token}"));
            let raw = B64.decode_to_vec(token).map_err(|_| bad())?;
            let raw = String::from_utf8(raw).map_err(|_| bad())?;
            let mut it = raw.split('\n');
            let name = it.next().ok_or_else(bad)?.to_string();
            let after: u32 = it.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
            let filter = it.next().unwrap_or("").to_string();
            (name, Some(after), filter)
        } else {
            let name = self.stream(&r)?.name.clone();
            let mut after = r
                .exclusive_start_shard_id
                .as_deref()
                .and_then(shard_index_of);
            let mut filter = String::new();
            if let Some(f) = &r.shard_filter {
                let kind = f
                    .kind
                    .clone()
                    .ok_or_else(|| ApiError::missing("shardFilter.type"))?;
                if kind == "AFTER_SHARD_ID" {
                    let id = f.shard_id.as_deref().ok_or_else(|| {
                        ApiError::invalid_argument("ShardFilter AFTER_SHARD_ID needs ShardId")
                    })?;
                    after = shard_index_of(id);
                }
                filter = kind;
            }
            (name, after, filter)
        };
        let stream = self.registry.get(&name)?;
        let set = stream.shards.read();
        let at_latest = filter == "AT_LATEST";
        let shards: Vec<&Arc<Shard>> = set
            .all
            .iter()
            .filter(|s| after.is_none_or(|a| s.index > a))
            .filter(|s| !at_latest || s.is_open())
            .collect();
        let page: Vec<&Arc<Shard>> = shards.iter().take(max as usize).copied().collect();
        let mut out = json!({ "Shards": page.iter().map(|s| shard_json(s)).collect::<Vec<_>>() });
        if shards.len() > page.len()
            && let Some(last) = page.last()
        {
            out["NextToken"] =
                json!(B64.encode_to_string(format!("{}\n{}\n{}", name, last.index, filter)));
        }
        Ok(to_json(&out))
    }

    /// Count one request's error status.
    pub fn count_error(&self, status: u16) {
        if (400..500).contains(&status) {
            add(&self.counters.errors_4xx, 1);
        }
    }

    /// A moment's timestamp for logs.
    pub fn now_ms(&self) -> u64 {
        self.registry.clock.epoch_millis()
    }
}

fn shard_json(s: &Shard) -> Value {
    let ending = s.data.lock().ending_seq;
    let mut range = json!({ "StartingSequenceNumber": seq_string(s.starting_seq) });
    if let Some(e) = ending {
        range["EndingSequenceNumber"] = json!(seq_string(e));
    }
    let mut v = json!({
        "ShardId": s.id,
        "HashKeyRange": {"StartingHashKey": s.start.to_string(), "EndingHashKey": s.end.to_string()},
        "SequenceNumberRange": range,
    });
    if let Some(p) = &s.parent {
        v["ParentShardId"] = json!(p);
    }
    if let Some(p) = &s.adjacent_parent {
        v["AdjacentParentShardId"] = json!(p);
    }
    v
}

//! The read side: GetShardIterator and GetRecords, and the iterators
//! they hand out (stream name, incarnation, shard and position, base64).

use base64_simd::STANDARD as B64;
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{Shared, add, to_json};
use crate::protocol::{self, ApiError, StreamOp, epoch_secs};
use crate::state::{Rec, Shard, Stream, parse_seq, seq_string};

impl Shared {
    pub(crate) fn get_shard_iterator(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let r: StreamOp = protocol::parse(body)?;
        let stream = self.stream(&r)?;
        let shard_id = r
            .shard_id
            .as_deref()
            .ok_or_else(|| ApiError::missing("shardId"))?;
        let kind = r
            .shard_iterator_type
            .as_deref()
            .ok_or_else(|| ApiError::missing("shardIteratorType"))?;
        let set = stream.shards.read();
        let shard = set.by_id(shard_id).ok_or_else(|| {
            ApiError::not_found(format!(
                "Shard {shard_id} in stream {} under account {} does not exist",
                stream.name, self.registry.account
            ))
        })?;
        let seq_arg = || -> Result<u64, ApiError> {
            let s = r
                .starting_sequence_number
                .as_deref()
                .ok_or_else(|| ApiError::invalid_argument("StartingSequenceNumber is required"))?;
            parse_seq(s).ok_or_else(|| {
                ApiError::invalid_argument(format!(
                    "StartingSequenceNumber {s} used in GetShardIterator on shard {shard_id} in stream {} under account {} is invalid.",
                    stream.name, self.registry.account
                ))
            })
        };
        let pos = match kind {
            "TRIM_HORIZON" => 0,
            "LATEST" => {
                let d = shard.data.lock();
                match d.ending_seq {
                    Some(e) => e,
                    None => stream.next_seq(),
                }
            }
            "AT_SEQUENCE_NUMBER" => seq_arg()?,
            "AFTER_SEQUENCE_NUMBER" => seq_arg()? + 1,
            "AT_TIMESTAMP" => {
                let ts = r.timestamp.ok_or_else(|| {
                    ApiError::invalid_argument("Timestamp is required for AT_TIMESTAMP")
                })?;
                let ms = (ts * 1000.0).max(0.0) as u64;
                let d = shard.data.lock();
                d.records
                    .iter()
                    .find(|rec| rec.arrival_ms >= ms)
                    .map(|rec| rec.seq)
                    .unwrap_or_else(|| d.ending_seq.unwrap_or_else(|| stream.next_seq()))
            }
            other => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{other}' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]"
                )));
            }
        };
        Ok(to_json(
            &json!({ "ShardIterator": encode_iterator(&stream, shard.index, pos) }),
        ))
    }

    pub(crate) fn get_records(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let r: StreamOp = protocol::parse(body)?;
        let it = r
            .shard_iterator
            .as_deref()
            .ok_or_else(|| ApiError::missing("shardIterator"))?;
        let limits = self.limits();
        let limit = r.limit.unwrap_or(limits.max_get_records as i64);
        if limit < 1 || limit > limits.max_get_records as i64 {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to {}",
                limits.max_get_records
            )));
        }
        let (name, inc, index, pos) = decode_iterator(it)
            .ok_or_else(|| ApiError::invalid_argument(format!("Invalid ShardIterator: {it}")))?;
        let stream = self.registry.get(&name)?;
        if stream.incarnation != inc {
            return Err(ApiError::new(
                400,
                "ExpiredIteratorException",
                "Iterator refers to a stream that no longer exists.",
            ));
        }
        let shard = stream
            .shards
            .read()
            .all
            .get(index as usize)
            .cloned()
            .ok_or_else(|| ApiError::invalid_argument("Invalid ShardIterator"))?;
        let now_ms = self.registry.clock.epoch_millis();
        let res = read_shard(&shard, pos, limit as usize, limits.max_get_bytes, now_ms);
        add(&self.counters.records_read, res.records.len() as u64);
        #[derive(Serialize)]
        struct OutRec<'a> {
            #[serde(rename = "SequenceNumber")]
            sequence_number: String,
            #[serde(rename = "ApproximateArrivalTimestamp")]
            approximate_arrival_timestamp: f64,
            #[serde(rename = "Data")]
            data: String,
            #[serde(rename = "PartitionKey")]
            partition_key: &'a str,
        }
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(rename = "Records")]
            records: Vec<OutRec<'a>>,
            #[serde(rename = "NextShardIterator")]
            next_shard_iterator: Option<String>,
            #[serde(rename = "MillisBehindLatest")]
            millis_behind_latest: u64,
            #[serde(rename = "ChildShards", skip_serializing_if = "Option::is_none")]
            child_shards: Option<Vec<Value>>,
        }
        let child_shards = if res.next.is_none() {
            let set = stream.shards.read();
            Some(
                set.all
                    .iter()
                    .filter(|s| {
                        s.parent.as_deref() == Some(&shard.id) || s.adjacent_parent.as_deref() == Some(&shard.id)
                    })
                    .map(|s| {
                        let mut parents = vec![];
                        parents.extend(s.parent.clone());
                        parents.extend(s.adjacent_parent.clone());
                        json!({
                            "ShardId": s.id,
                            "ParentShards": parents,
                            "HashKeyRange": {"StartingHashKey": s.start.to_string(), "EndingHashKey": s.end.to_string()},
                        })
                    })
                    .collect(),
            )
        } else {
            None
        };
        let out = Out {
            records: res
                .records
                .iter()
                .map(|rec| OutRec {
                    sequence_number: seq_string(rec.seq),
                    approximate_arrival_timestamp: epoch_secs(rec.arrival_ms),
                    data: B64.encode_to_string(&rec.data),
                    partition_key: &rec.partition_key,
                })
                .collect(),
            next_shard_iterator: res.next.map(|p| encode_iterator(&stream, index, p)),
            millis_behind_latest: res.millis_behind,
            child_shards,
        };
        Ok(serde_json::to_vec(&out).unwrap_or_default())
    }
}

fn encode_iterator(stream: &Stream, shard_index: u32, pos: u64) -> String {
    B64.encode_to_string(format!(
        "{}\n{}\n{}\n{}",
        stream.name, stream.incarnation, shard_index, pos
    ))
}

fn decode_iterator(it: &str) -> Option<(String, u64, u32, u64)> {
    let raw = String::from_utf8(B64.decode_to_vec(it).ok()?).ok()?;
    let mut p = raw.split('\n');
    let name = p.next()?.to_string();
    let inc = p.next()?.parse().ok()?;
    let idx = p.next()?.parse().ok()?;
    let pos = p.next()?.parse().ok()?;
    Some((name, inc, idx, pos))
}

/// Result of reading a shard.
#[derive(Debug)]
pub struct ReadResult {
    /// Records read.
    pub records: Vec<Rec>,
    /// Position for the next iterator; `None` when the shard is closed and drained.
    pub next: Option<u64>,
    /// How far behind the shard's tip the read ends, in milliseconds.
    pub millis_behind: u64,
}

/// Read records of `shard` with counter >= `pos`; `now_ms` is the epoch time now.
pub fn read_shard(
    shard: &Shard,
    pos: u64,
    limit: usize,
    max_bytes: usize,
    now_ms: u64,
) -> ReadResult {
    let d = shard.data.lock();
    let first = d.records.partition_point(|r| r.seq < pos);
    let mut records = Vec::new();
    let mut bytes = 0usize;
    let mut i = first;
    while i < d.records.len() && records.len() < limit {
        let r = &d.records[i];
        let size = r.size();
        if !records.is_empty() && bytes + size > max_bytes {
            break;
        }
        bytes += size;
        records.push(r.clone());
        i += 1;
    }
    let next_pos = records.last().map(|r: &Rec| r.seq + 1).unwrap_or(pos);
    let remaining = i < d.records.len();
    let next = match d.ending_seq {
        Some(_) if !remaining => None,
        _ => Some(next_pos),
    };
    let millis_behind = match (remaining, records.last()) {
        (true, Some(r)) => d
            .records
            .back()
            .map(|tip| tip.arrival_ms.saturating_sub(r.arrival_ms))
            .unwrap_or(0)
            .max(now_ms.saturating_sub(r.arrival_ms)),
        _ => 0,
    };
    ReadResult {
        records,
        next,
        millis_behind,
    }
}

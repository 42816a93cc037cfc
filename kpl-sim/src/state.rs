//! Streams and shards: hash ranges, sequence numbers, records, resharding.
//!
//! Locking: the stream map is behind one `RwLock` (read on every request);
//! each stream's shard set is behind its own `RwLock` (read while putting or
//! reading, written only when resharding); each shard's records are behind
//! their own `Mutex`. Writers to different shards never wait for each other.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::clock::Clock;
use crate::config::{DEFAULT_RECORD_KIB, Limits, MAX_RECORD_KIB, Retention};
use crate::limits::ShardBuckets;
use crate::protocol::ApiError;
pub use crate::registry::{Registry, validate_stream_name};

mod resharding;

/// Largest hash key, 2^128 - 1.
pub const MAX_HASH_KEY: u128 = u128::MAX;

/// One retained record of a shard, as `Sim::records` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Sequence number (56 decimal digits).
    pub sequence_number: String,
    /// Partition key as sent.
    pub partition_key: String,
    /// Explicit hash key as sent, if any.
    pub explicit_hash_key: Option<String>,
    /// The record's data.
    pub data: Bytes,
    /// When the simulator accepted it.
    pub arrival: SystemTime,
}

/// One shard with its retained records, as `Sim::records` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredShard {
    /// `shardId-000000000000` style id.
    pub shard_id: String,
    /// First hash key of the shard's range.
    pub starting_hash_key: u128,
    /// Last hash key of the shard's range (inclusive).
    pub ending_hash_key: u128,
    /// Parent shard (split or merge), if any.
    pub parent_shard_id: Option<String>,
    /// Adjacent parent shard (merge), if any.
    pub adjacent_parent_shard_id: Option<String>,
    /// Whether the shard still accepts records.
    pub open: bool,
    /// Starting sequence number of the shard.
    pub starting_sequence_number: String,
    /// Ending sequence number, set once the shard is closed.
    pub ending_sequence_number: Option<String>,
    /// Retained records, oldest first.
    pub records: Vec<StoredRecord>,
}

pub use crate::keys::{even_ranges, hash_partition_key, parse_hash_key, parse_seq, seq_string};

/// A record inside a shard.
#[derive(Debug, Clone)]
pub struct Rec {
    /// Stream-wide counter value (the sequence number).
    pub seq: u64,
    /// Partition key.
    pub partition_key: Box<str>,
    /// Explicit hash key as sent.
    pub explicit_hash_key: Option<Box<str>>,
    /// Data.
    pub data: Bytes,
    /// Arrival, epoch milliseconds.
    pub arrival_ms: u64,
}

impl Rec {
    pub(crate) fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// Mutable part of a shard.
#[derive(Debug)]
pub struct ShardData {
    /// Retained records, oldest first, increasing `seq`.
    pub records: VecDeque<Rec>,
    /// Bytes (data + key) retained.
    pub bytes: usize,
    /// Set when the shard is closed.
    pub ending_seq: Option<u64>,
    buckets: ShardBuckets,
}

/// One shard.
#[derive(Debug)]
pub struct Shard {
    /// Shard id.
    pub id: String,
    /// Position in the stream's list of all shards.
    pub index: u32,
    /// First hash key.
    pub start: u128,
    /// Last hash key (inclusive).
    pub end: u128,
    /// Parent shard id.
    pub parent: Option<String>,
    /// Adjacent parent shard id.
    pub adjacent_parent: Option<String>,
    /// Counter value when the shard was created.
    pub starting_seq: u64,
    /// Records and throughput state.
    pub data: Mutex<ShardData>,
}

impl Shard {
    /// Whether the shard is open.
    pub fn is_open(&self) -> bool {
        self.data.lock().ending_seq.is_none()
    }
}

/// All shards of a stream.
#[derive(Debug, Default)]
pub struct ShardSet {
    /// Every shard ever made, by index.
    pub all: Vec<Arc<Shard>>,
    /// Open shards, sorted by starting hash key, covering the whole range.
    pub open: Vec<Arc<Shard>>,
}

impl ShardSet {
    /// The open shard holding `hash`.
    pub fn route(&self, hash: u128) -> &Arc<Shard> {
        let i = self.open.partition_point(|s| s.start <= hash);
        &self.open[i.saturating_sub(1)]
    }

    /// A shard by id.
    pub fn by_id(&self, id: &str) -> Option<&Arc<Shard>> {
        let idx = shard_index_of(id)?;
        self.all.get(idx as usize).filter(|s| s.id == id)
    }
}

/// `shardId-000000000007` -> 7.
pub fn shard_index_of(id: &str) -> Option<u32> {
    id.strip_prefix("shardId-")?.parse().ok()
}

fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// One stream.
#[derive(Debug)]
pub struct Stream {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Creation time, epoch milliseconds.
    pub created_ms: u64,
    /// Unique id of this incarnation (a recreated stream gets a new one).
    pub incarnation: u64,
    seq: AtomicU64,
    /// Shards.
    pub shards: RwLock<ShardSet>,
    /// `MaxRecordSizeInKiB`: the largest record (data + key) it takes.
    max_record_kib: AtomicU32,
    /// On-demand (scales by itself) rather than provisioned.
    on_demand: AtomicBool,
    /// Records and bytes offered (accepted or throttled) since the
    /// on-demand scaler last looked.
    pub(crate) demand_records: AtomicU64,
    pub(crate) demand_bytes: AtomicU64,
    /// Consecutive scaler windows near the limit.
    pub(crate) hot_windows: AtomicU32,
    clock: Clock,
}

/// How a stream is created: shards, capacity mode, record size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    /// Open shards at creation.
    pub shards: u32,
    /// On-demand capacity mode.
    pub on_demand: bool,
    /// `MaxRecordSizeInKiB` (1024..=10240).
    pub max_record_kib: u32,
}

impl StreamSpec {
    /// A provisioned stream of `shards` shards with the default 1 MiB record limit.
    pub fn provisioned(shards: u32) -> Self {
        StreamSpec {
            shards,
            on_demand: false,
            max_record_kib: DEFAULT_RECORD_KIB,
        }
    }
}

/// Checks a `MaxRecordSizeInKiB` value against the service's range.
pub fn check_record_kib(kib: i64) -> Result<u32, ApiError> {
    if (DEFAULT_RECORD_KIB as i64..=MAX_RECORD_KIB as i64).contains(&kib) {
        Ok(kib as u32)
    } else {
        Err(ApiError::validation(format!(
            "1 validation error detected: Value '{kib}' at 'maxRecordSizeInKiB' failed to satisfy constraint: Member must have value between {DEFAULT_RECORD_KIB} and {MAX_RECORD_KIB}"
        )))
    }
}

/// What happened to one record of a put.
#[derive(Debug)]
pub enum PutOutcome {
    /// Stored.
    Ok {
        /// The shard.
        shard: Arc<Shard>,
        /// Counter value.
        seq: u64,
    },
    /// Throttled by the shard's throughput limit.
    Throttled {
        /// The shard.
        shard: Arc<Shard>,
    },
    /// Failed by fault injection.
    InternalFailure,
}

/// A record to put.
#[derive(Debug)]
pub struct PutEntry {
    /// Partition key.
    pub partition_key: Box<str>,
    /// Explicit hash key as sent.
    pub explicit_hash_key: Option<Box<str>>,
    /// Hash key used for routing.
    pub hash: u128,
    /// Data.
    pub data: Bytes,
    /// Fail it with InternalFailure (fault injection).
    pub fail: bool,
}

impl PutEntry {
    /// Data plus partition key, as the service counts a record's size.
    pub fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

impl Stream {
    pub(crate) fn new(
        name: &str,
        spec: StreamSpec,
        region: &str,
        account: &str,
        incarnation: u64,
        limits: &Limits,
        clock: Clock,
    ) -> Self {
        let now = clock.now();
        let mut set = ShardSet::default();
        for (i, (start, end)) in even_ranges(spec.shards).into_iter().enumerate() {
            let s = Arc::new(Shard {
                id: shard_id(i as u32),
                index: i as u32,
                start,
                end,
                parent: None,
                adjacent_parent: None,
                starting_seq: 0,
                data: Mutex::new(ShardData {
                    records: VecDeque::new(),
                    bytes: 0,
                    ending_seq: None,
                    buckets: ShardBuckets::new(limits, now),
                }),
            });
            set.all.push(s.clone());
            set.open.push(s);
        }
        Stream {
            name: name.to_string(),
            arn: format!("arn:aws:kinesis:{region}:{account}:stream/{name}"),
            created_ms: clock.epoch_millis(),
            incarnation,
            seq: AtomicU64::new(1),
            shards: RwLock::new(set),
            max_record_kib: AtomicU32::new(spec.max_record_kib),
            on_demand: AtomicBool::new(spec.on_demand),
            demand_records: AtomicU64::new(0),
            demand_bytes: AtomicU64::new(0),
            hot_windows: AtomicU32::new(0),
            clock,
        }
    }

    /// `MaxRecordSizeInKiB`.
    pub fn max_record_kib(&self) -> u32 {
        self.max_record_kib.load(Ordering::Relaxed)
    }

    /// The largest record (data + partition key) in bytes.
    pub fn max_record_bytes(&self) -> usize {
        self.max_record_kib() as usize * 1024
    }

    /// Change `MaxRecordSizeInKiB` (UpdateMaxRecordSize).
    pub fn set_max_record_kib(&self, kib: u32) {
        self.max_record_kib.store(kib, Ordering::Relaxed);
    }

    /// Whether the stream is on-demand.
    pub fn is_on_demand(&self) -> bool {
        self.on_demand.load(Ordering::Relaxed)
    }

    /// `PROVISIONED` or `ON_DEMAND`.
    pub fn mode_name(&self) -> &'static str {
        if self.is_on_demand() {
            "ON_DEMAND"
        } else {
            "PROVISIONED"
        }
    }

    /// The counter value the next record will get at least.
    pub fn next_seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Put records in order. Consecutive records of one shard share one lock.
    pub fn put(
        &self,
        entries: Vec<PutEntry>,
        limits: &Limits,
        retention: &Retention,
    ) -> Vec<PutOutcome> {
        let set = self.shards.read();
        let now = self.clock.now();
        let arrival_ms = self.clock.epoch_millis();
        let mut out = Vec::with_capacity(entries.len());
        let mut cur: Option<(u32, parking_lot::MutexGuard<'_, ShardData>)> = None;
        for e in entries {
            if e.fail {
                out.push(PutOutcome::InternalFailure);
                continue;
            }
            let shard = set.route(e.hash);
            if cur.as_ref().map(|(i, _)| *i) != Some(shard.index) {
                drop(cur.take()); // never hold two shard locks at once
                cur = Some((shard.index, shard.data.lock()));
            }
            let data = &mut cur.as_mut().expect("locked").1;
            let size = e.data.len() + e.partition_key.len();
            self.demand_records.fetch_add(1, Ordering::Relaxed);
            self.demand_bytes.fetch_add(size as u64, Ordering::Relaxed);
            if !data.buckets.try_take(limits, size, now) {
                out.push(PutOutcome::Throttled {
                    shard: shard.clone(),
                });
                continue;
            }
            let seq = self.seq.fetch_add(1, Ordering::SeqCst);
            data.records.push_back(Rec {
                seq,
                partition_key: e.partition_key,
                explicit_hash_key: e.explicit_hash_key,
                data: e.data,
                arrival_ms,
            });
            data.bytes += size;
            trim(data, retention);
            out.push(PutOutcome::Ok {
                shard: shard.clone(),
                seq,
            });
        }
        out
    }

    /// Snapshot for `Sim::records`.
    pub fn snapshot(&self) -> Vec<StoredShard> {
        let set = self.shards.read();
        set.all
            .iter()
            .map(|s| {
                let d = s.data.lock();
                StoredShard {
                    shard_id: s.id.clone(),
                    starting_hash_key: s.start,
                    ending_hash_key: s.end,
                    parent_shard_id: s.parent.clone(),
                    adjacent_parent_shard_id: s.adjacent_parent.clone(),
                    open: d.ending_seq.is_none(),
                    starting_sequence_number: seq_string(s.starting_seq),
                    ending_sequence_number: d.ending_seq.map(seq_string),
                    records: d
                        .records
                        .iter()
                        .map(|r| StoredRecord {
                            sequence_number: seq_string(r.seq),
                            partition_key: r.partition_key.to_string(),
                            explicit_hash_key: r.explicit_hash_key.as_ref().map(|s| s.to_string()),
                            data: r.data.clone(),
                            arrival: UNIX_EPOCH + std::time::Duration::from_millis(r.arrival_ms),
                        })
                        .collect(),
                }
            })
            .collect()
    }
}

fn trim(data: &mut ShardData, retention: &Retention) {
    let max_n = retention.max_records_per_shard.unwrap_or(usize::MAX);
    let max_b = retention.max_bytes_per_shard.unwrap_or(usize::MAX);
    while data.records.len() > max_n || (data.bytes > max_b && !data.records.is_empty()) {
        if let Some(r) = data.records.pop_front() {
            data.bytes -= r.size();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_service() {
        let r = even_ranges(1);
        assert_eq!(r, vec![(0, MAX_HASH_KEY)]);
        let r = even_ranges(2);
        assert_eq!(r[0].1, 170141183460469231731687303715884105727);
        assert_eq!(r[1].0, 170141183460469231731687303715884105728);
        let r = even_ranges(3);
        assert_eq!(r[1].0, 113427455640312821154458202477256070485);
        assert_eq!(r[0].1, 113427455640312821154458202477256070484);
        assert_eq!(r[2].1, MAX_HASH_KEY);
        let r = even_ranges(4);
        assert_eq!(r[1].0, 1u128 << 126);
    }

    #[test]
    fn seq_roundtrip_and_order() {
        let a = seq_string(9);
        let b = seq_string(10);
        assert_eq!(a.len(), 56);
        assert!(a < b);
        assert_eq!(parse_seq(&b), Some(10));
        assert_eq!(parse_seq("123"), None);
    }

    #[test]
    fn md5_hash() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(hash_partition_key("a"), 0x0cc175b9c0f1b6a831c399e269772661);
    }
}

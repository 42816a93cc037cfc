//! What the pipeline holds for one stream, and where a record goes in it:
//! shard map -> aggregation container of the predicted shard -> that
//! shard's rate-limited queue -> the stream's PutRecords collector.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::batcher::{Batcher, Collection, HasSize};
use super::maps::{MapLifecycle, MapState};
use super::ordering::Gate;
use super::pending::Pending;
use crate::aggregation::{Aggregator, KinesisRecord};
use crate::config::Config;
use crate::kinesis::Entry;
use crate::limiter::ShardLimiter;
use crate::record_size;
use crate::shard_map::ShardMap;

/// A Kinesis record on its way, with the shard it was predicted for.
pub(crate) struct Outbound {
    pub record: KinesisRecord<Pending>,
    pub shard: Option<Arc<str>>,
}

impl Outbound {
    pub fn entry(&self) -> Entry {
        Entry {
            partition_key: self.record.partition_key.clone(),
            explicit_hash_key: self.record.explicit_hash_key.clone(),
            data: self.record.data.clone(),
        }
    }
}

impl HasSize for Outbound {
    fn size(&self) -> usize {
        self.record.size()
    }
}

/// An aggregate delivered to another shard than predicted, waiting for a
/// fresh map to tell whether that shard holds all of its records.
pub(crate) struct Suspect {
    pub outbound: Outbound,
    pub shard_id: Arc<str>,
    pub sequence_number: Arc<str>,
    pub seen_at: Instant,
}

pub(crate) struct ShardState {
    pub id: Arc<str>,
    pub container: Batcher<Aggregator<Pending>>,
    pub queue: VecDeque<KinesisRecord<Pending>>,
    pub drain_at: Option<Instant>,
    pub limiter: ShardLimiter,
}

/// Where a record goes.
pub(crate) enum Route {
    /// No map yet: wait for it.
    Wait,
    /// No shard known for it: send it plain, Kinesis routes it.
    Plain,
    /// Into this shard's container.
    Shard(usize),
}

pub(crate) struct StreamState {
    pub name: Arc<str>,
    pub map: MapLifecycle,
    pub shards: Vec<ShardState>,
    pub shard_index: HashMap<Arc<str>, usize>,
    pub unrouted: Vec<Pending>,
    pub collector: Batcher<Collection<Outbound>>,
    /// Aggregates that landed on a shard other than the predicted one,
    /// waiting for a fresh map to tell whether the shard holds them all.
    pub suspects: Vec<Suspect>,
    /// Set when a record came back from another shard than predicted: the
    /// map is stale (the stream was resharded), so requests wait in `held`
    /// until a map read after this instant is in, rather than send more
    /// aggregates that may straddle a new boundary.
    pub held_since: Option<Instant>,
    pub held: Vec<Vec<Outbound>>,
    pub request_backoff: Duration,
    /// PutRecords calls of this stream in flight.
    pub in_flight: usize,
    /// When a record was last put to this stream.
    pub last_put: Instant,
    /// The stream's record limit (`MaxRecordSizeInKiB`), once known.
    pub max_record_size: Option<usize>,
    /// `StrictOrdering`: the keys with a record out (`ordering`).
    pub gate: Gate,
    /// `StrictOrdering`: records that were out, to be put back at the head
    /// of their shards' queues at the end of the engine's turn.
    pub resend: Vec<Pending>,
}

impl StreamState {
    pub fn new(name: Arc<str>, config: &Config, now: Instant) -> StreamState {
        StreamState {
            name,
            map: MapLifecycle::new(),
            shards: Vec::new(),
            shard_index: HashMap::new(),
            unrouted: Vec::new(),
            collector: Batcher::new(Collection::new(
                config.collection_max_count,
                record_size::request_cap(config),
            )),
            suspects: Vec::new(),
            held_since: None,
            held: Vec::new(),
            request_backoff: Duration::ZERO,
            in_flight: 0,
            last_put: now,
            max_record_size: None,
            gate: Gate::default(),
            resend: Vec::new(),
        }
    }

    pub fn route_of(&self, hash_key: u128) -> Route {
        match &self.map.state {
            MapState::Loading => Route::Wait,
            MapState::Unavailable => Route::Plain,
            MapState::Ready(map) => match map.shard_for(hash_key) {
                Some(shard) => Route::Shard(shard),
                None => Route::Plain,
            },
        }
    }

    /// Replaces the shard set with the new map's open shards; limiters
    /// carry over for shards that stay. Returns the user records that were
    /// buffered for the old shards (and unrouted), to be routed again.
    pub fn replace_shards(&mut self, map: ShardMap, config: &Config, now: Instant) -> Vec<Pending> {
        let mut rerouted = std::mem::take(&mut self.unrouted);
        let mut limiters: HashMap<Arc<str>, ShardLimiter> = HashMap::new();
        for mut shard in self.shards.drain(..) {
            // The queue holds older records than the container: put order.
            for kr in shard.queue.drain(..) {
                rerouted.extend(kr.records);
            }
            if let Some(kr) = shard.container.release() {
                rerouted.extend(kr.records);
            }
            limiters.insert(shard.id.clone(), shard.limiter);
        }
        self.shard_index.clear();
        for (i, info) in map.shards().iter().enumerate() {
            self.shard_index.insert(info.id.clone(), i);
            self.shards.push(ShardState {
                id: info.id.clone(),
                container: Batcher::new(self.aggregator(config)),
                queue: VecDeque::new(),
                drain_at: None,
                limiter: limiters
                    .remove(&info.id)
                    .unwrap_or_else(|| ShardLimiter::new(config.rate_limit, now)),
            });
        }
        self.map.install(map);
        rerouted
    }

    /// An empty aggregate for this stream's shards.
    pub fn aggregator(&self, config: &Config) -> Aggregator<Pending> {
        let max_count = usize::try_from(config.aggregation_max_count).unwrap_or(usize::MAX);
        Aggregator::new(
            record_size::aggregate_cap(config, self.max_record_size),
            max_count,
        )
    }

    /// Takes every user record the stream holds that is not in flight.
    pub fn take_all(&mut self) -> Vec<Pending> {
        let mut all = std::mem::take(&mut self.unrouted);
        all.append(&mut self.resend);
        for shard in &mut self.shards {
            if let Some(kr) = shard.container.release() {
                all.extend(kr.records);
            }
            for kr in shard.queue.drain(..) {
                all.extend(kr.records);
            }
        }
        for ob in self.collector.release().into_iter().flatten() {
            all.extend(ob.record.records);
        }
        for suspect in self.suspects.drain(..) {
            all.extend(suspect.outbound.record.records);
        }
        self.held_since = None;
        for ob in self.held.drain(..).flatten() {
            all.extend(ob.record.records);
        }
        all
    }

    /// Whether the stream holds nothing and waits for nothing.
    pub fn is_empty(&self) -> bool {
        self.in_flight == 0
            && self.unrouted.is_empty()
            && self.resend.is_empty()
            && self.gate.is_empty()
            && self.suspects.is_empty()
            && self.held.is_empty()
            && self.collector.batch().items().is_empty()
            && self
                .shards
                .iter()
                .all(|s| s.queue.is_empty() && s.container.batch().is_empty())
    }

    /// Whether the predicted shard of `ob` is gone from the current map.
    pub fn is_stale(&self, ob: &Outbound) -> bool {
        ob.shard
            .as_ref()
            .is_some_and(|id| !self.shard_index.contains_key(id))
    }
}

/// A Kinesis record holding one user record, sent plain.
pub(crate) fn single(p: Pending) -> KinesisRecord<Pending> {
    KinesisRecord {
        partition_key: p.record.partition_key().to_owned(),
        explicit_hash_key: p.record.explicit_hash_key().map(str::to_owned),
        data: p.record.data().clone(),
        records: vec![p],
        unsealed: false,
    }
}

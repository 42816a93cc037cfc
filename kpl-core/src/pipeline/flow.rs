//! The way forward: a record from admission through its shard's container
//! and queue into its stream's collector, and from there to the sender.

use std::time::Duration;

use tokio::time::Instant;

use super::pending::Expired;
use super::router::{Outbound, Route, StreamState, single};
use super::streams::StreamId;
use super::{Engine, Pending, Timer};
use crate::aggregation::KinesisRecord;
use crate::error::{Error, ErrorKind};
use crate::record_size;

/// Least time between two releases of a rate-limited shard's queue: wait
/// for a batch's worth of budget, not one record's (records released one by
/// one make one-record requests).
const MIN_DRAIN_WAIT: Duration = Duration::from_millis(20);

impl Engine {
    pub(super) fn accept(&mut self, mut p: Pending, now: Instant) {
        if self.aborting {
            let err = Error::new(ErrorKind::ShutDown, "the producer is shutting down");
            return self.resolution.refuse(p, err);
        }
        self.resolution.admit(&mut p);
        let id = self.stream_for(p.stream(), now);
        if let Some(stream) = self.streams.get_mut(id) {
            stream.last_put = now;
        }
        self.route_in(id, p, now);
    }

    /// Routes a record (new, or to be sent again) by its stream's map.
    pub(super) fn route(&mut self, p: Pending, now: Instant) {
        let id = self.stream_for(p.stream(), now);
        self.route_in(id, p, now);
    }

    /// Which records are past RecordTtl at `now`.
    pub(super) fn expired_at(&mut self, now: Instant) -> Expired {
        if self.ttl_cutoff.0 != now {
            self.ttl_cutoff = (now, Expired::at(now, &self.config));
        }
        self.ttl_cutoff.1
    }

    fn route_in(&mut self, id: StreamId, mut p: Pending, now: Instant) {
        if self.expired_at(now).holds(&p) {
            return self.resolution.expire(p, now);
        }
        let Some(stream) = self.streams.get_mut(id) else {
            unreachable!("stream_for returns a stream in the table");
        };
        if let Some(limit) = stream.max_record_size
            && let Some((err, attempt)) = record_size::over_stream_limit(
                &p.record,
                p.stream(),
                limit,
                p.wait_before(super::Stamp::of(now)),
            )
        {
            p.keep_attempt(attempt.into());
            return self.resolution.fail(p, err, now);
        }
        if p.gated {
            // Out under StrictOrdering: back to its shard's head.
            stream.resend.push(p);
            return self.resending.push(id);
        }
        match stream.route_of(p.hash_key().0) {
            Route::Wait => stream.unrouted.push(p),
            // Records sent plain pass no gate: under StrictOrdering they
            // wait for a map (ListShards is retried; their TTL still runs).
            Route::Plain if self.config.strict_ordering && stream.map.map().is_none() => {
                stream.unrouted.push(p)
            }
            Route::Plain => self.collect(
                id,
                Outbound {
                    record: single(p),
                    shard: None,
                },
                now,
            ),
            Route::Shard(shard) => self.add_to_container(id, shard, p, now),
        }
    }

    /// The stream's id, adding it to the table (and loading its map) if new.
    pub(super) fn stream_for(&mut self, name: &std::sync::Arc<str>, now: Instant) -> StreamId {
        if let Some(id) = self.streams.find_arc(name) {
            return id;
        }
        let id = self
            .streams
            .insert(StreamState::new(name.clone(), &self.config, now));
        self.load_map(id, now);
        id
    }

    fn add_to_container(&mut self, id: StreamId, shard: usize, p: Pending, now: Instant) {
        let deadline = if self.resolution.is_forced(&p) {
            now
        } else {
            p.deadline(&self.config)
        };
        if !self.config.aggregation_enabled {
            return self.enqueue_shard(id, shard, single(p), now);
        }
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        let map_version = stream.map.version;
        let added = stream.shards[shard].container.add(p, deadline);
        if let Some((at, generation)) = added.timer {
            let timer = Timer::Container {
                stream: id,
                shard,
                map_version,
                generation,
            };
            self.timers.set(at, timer);
        }
        for kr in added.before.into_iter().chain(added.full) {
            self.enqueue_shard(id, shard, kr, now);
        }
    }

    pub(super) fn on_container_timer(
        &mut self,
        id: StreamId,
        shard: usize,
        map_version: u64,
        generation: u64,
        now: Instant,
    ) {
        let kr = self
            .streams
            .get_mut(id)
            .filter(|s| s.map.version == map_version)
            .and_then(|s| s.shards[shard].container.on_timer(generation));
        if let Some(kr) = kr {
            self.enqueue_shard(id, shard, kr, now);
        }
    }

    pub(super) fn release_container(&mut self, id: StreamId, shard: usize, now: Instant) {
        let kr = self
            .streams
            .get_mut(id)
            .and_then(|s| s.shards[shard].container.release());
        if let Some(kr) = kr {
            self.enqueue_shard(id, shard, kr, now);
        }
    }

    fn enqueue_shard(
        &mut self,
        id: StreamId,
        shard: usize,
        kr: KinesisRecord<Pending>,
        now: Instant,
    ) {
        if let Some(stream) = self.streams.get_mut(id) {
            stream.shards[shard].queue.push_back(kr);
            self.drain_shard(id, shard, now);
        }
    }

    /// Moves what the shard's budget allows from its queue to the collector.
    pub(super) fn drain_shard(&mut self, id: StreamId, shard: usize, now: Instant) {
        if self.config.strict_ordering {
            return self.drain_in_order(id, shard, now);
        }
        loop {
            let Some(stream) = self.streams.get_mut(id) else {
                return;
            };
            let state = &mut stream.shards[shard];
            let Some(front) = state.queue.front() else {
                return;
            };
            match state.limiter.try_take(front.size(), now) {
                Ok(()) => {
                    let record = state.queue.pop_front().expect("front exists");
                    let shard_id = Some(state.id.clone());
                    self.collect(
                        id,
                        Outbound {
                            record,
                            shard: shard_id,
                        },
                        now,
                    );
                }
                Err(wait) => return self.drain_later(id, shard, wait, now),
            }
        }
    }

    /// Drains the shard again after `wait` (at least `MIN_DRAIN_WAIT`).
    pub(super) fn drain_later(&mut self, id: StreamId, shard: usize, wait: Duration, now: Instant) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        let map_version = stream.map.version;
        let state = &mut stream.shards[shard];
        let at = now + wait.max(MIN_DRAIN_WAIT);
        if state.drain_at.is_none_or(|d| at < d) {
            state.drain_at = Some(at);
            let timer = Timer::Drain {
                stream: id,
                shard,
                map_version,
            };
            self.timers.set(at, timer);
        }
    }

    pub(super) fn on_drain_timer(
        &mut self,
        id: StreamId,
        shard: usize,
        map_version: u64,
        now: Instant,
    ) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        if stream.map.version == map_version {
            stream.shards[shard].drain_at = None;
            self.drain_shard(id, shard, now);
        }
    }

    /// Adds a Kinesis record to its stream's next PutRecords.
    pub(super) fn collect(&mut self, id: StreamId, ob: Outbound, now: Instant) {
        let forced = ob
            .record
            .records
            .iter()
            .any(|p| self.resolution.is_forced(p));
        let deadline = match Pending::earliest_deadline(&ob.record.records, &self.config) {
            Some(_) if forced => now,
            Some(d) => d,
            None => now,
        };
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        let added = stream.collector.add(ob, deadline);
        if let Some((at, generation)) = added.timer {
            // A deadline already past fires after the timers due before it
            // (shard drains), so their records share the request.
            self.timers.set(
                at.max(now),
                Timer::Collector {
                    stream: id,
                    generation,
                },
            );
        }
        for batch in added.before.into_iter().chain(added.full) {
            self.dispatch(id, batch, now);
        }
    }

    pub(super) fn release_collector(&mut self, id: StreamId, now: Instant) {
        if let Some(batch) = self.streams.get_mut(id).and_then(|s| s.collector.release()) {
            self.dispatch(id, batch, now);
        }
    }

    /// Hands a collected request to the sender; records past their TTL
    /// leave here rather than be sent (the rest of their aggregate is
    /// routed again).
    pub(super) fn dispatch(&mut self, id: StreamId, batch: Vec<Outbound>, now: Instant) {
        let mut live = Vec::with_capacity(batch.len());
        let expired = self.expired_at(now);
        for ob in batch {
            if ob.record.records.iter().any(|p| expired.holds(p)) {
                for p in ob.record.records {
                    if expired.holds(&p) {
                        self.resolution.expire(p, now);
                    } else {
                        self.route(p, now);
                    }
                }
            } else {
                live.push(ob);
            }
        }
        if !live.is_empty() {
            self.sender.enqueue(id, live);
        }
    }

    /// Sends everything buffered now; `done` fires once every record
    /// accepted before this call is resolved.
    pub(super) fn flush(&mut self, done: Option<tokio::sync::oneshot::Sender<()>>, now: Instant) {
        self.resolution.flush(done);
        for id in self.streams.ids() {
            let shards = self.streams.get(id).map_or(0, |s| s.shards.len());
            for shard in 0..shards {
                self.release_container(id, shard, now);
            }
            self.release_collector(id, now);
        }
    }

    /// Sends records again, at once or after `delay`.
    pub(super) fn retry(&mut self, records: Vec<Pending>, delay: Duration, now: Instant) {
        self.resolution
            .shared()
            .metrics
            .retried(records.len() as u64);
        if delay.is_zero() {
            for p in records {
                self.route(p, now);
            }
        } else {
            self.timers.set(now + delay, Timer::Retry(records));
        }
    }
}

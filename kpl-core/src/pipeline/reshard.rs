//! Shard maps in the engine: loading and refreshing them, replacing the
//! shard set when the stream was resharded, judging suspect aggregates,
//! and letting streams go that are gone or unused.

use std::time::Duration;

use tokio::time::Instant;

use super::maps::MapState;
use super::router::{Outbound, Suspect};
use super::streams::StreamId;
use super::{Engine, Timer};
use crate::codes::{Disposition, disposition_of};
use crate::error::Error;
use crate::kinesis::ShardInfo;
use crate::record_size;
use crate::shard_map::ShardMap;

/// A stream that held nothing and was put nothing for this long leaves the
/// table (its map is read again if records come back).
const STREAM_IDLE: Duration = Duration::from_secs(600);

impl Engine {
    /// Reads the stream's map, unless a read is in flight (then another
    /// follows it).
    pub(super) fn load_map(&mut self, id: StreamId, now: Instant) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        if stream.map.want_load(now) {
            self.sender.load_map(id, stream.name.clone());
        }
    }

    pub(super) fn on_map(
        &mut self,
        id: StreamId,
        result: Result<Vec<ShardInfo>, Error>,
        max_record_size: Result<usize, Error>,
        now: Instant,
    ) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        // Before the records waiting for the map are routed: they are
        // checked against the stream's limit.
        stream.max_record_size =
            record_size::learned(&stream.name, max_record_size, stream.max_record_size);
        let started = stream.map.load_ended(now);
        match result {
            Ok(shards) => self.on_map_loaded(id, shards, started, now),
            Err(err) if disposition_of(&err) == Disposition::StreamGone => {
                self.stream_gone(id, err, now)
            }
            Err(err) => self.on_map_failed(id, err, now),
        }
    }

    fn on_map_loaded(
        &mut self,
        id: StreamId,
        shards: Vec<ShardInfo>,
        started: Instant,
        now: Instant,
    ) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        stream.map.succeeded();
        if !stream.map.map().is_some_and(|m| m.same_as(&shards)) {
            tracing::debug!(stream = %stream.name, shards = shards.len(), "shard map loaded");
            self.install_map(id, ShardMap::new(shards), now);
        }
        self.settle_suspects(id, started, now);
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        if stream.held_since.is_some_and(|at| at <= started) {
            self.release_held(id, now);
        }
        let Some(stream) = self.streams.get(id) else {
            return;
        };
        if stream.map.reload_wanted() || !stream.suspects.is_empty() {
            self.load_map(id, now);
        }
        let interval = self.config.shard_map_refresh_interval;
        self.schedule_map_timer(id, interval, now);
    }

    fn on_map_failed(&mut self, id: StreamId, err: Error, now: Instant) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        if err.kind() == crate::error::ErrorKind::Transport {
            stream.map.unreachable();
        }
        let backoff = stream.map.failed();
        tracing::warn!(stream = %stream.name, %err, ?backoff, "ListShards failed; sending records unaggregated until it succeeds");
        // Suspects stay: they were stored, and only a map can tell whether
        // a consumer keeps them (sending them again would duplicate them).
        let waiting = std::mem::take(&mut stream.unrouted);
        for p in waiting {
            self.route(p, now);
        }
        self.release_held(id, now);
        let delay = self.jitter(backoff);
        if let Some(stream) = self.streams.get_mut(id) {
            stream.map.back_off_until(now + delay);
        }
        self.schedule_map_timer(id, delay, now);
    }

    /// Sets the stream's one map timer (every earlier one goes stale): a
    /// refresh after `delay`, or, with refreshes off, an idleness check.
    fn schedule_map_timer(&mut self, id: StreamId, delay: Duration, now: Instant) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        let generation = stream.map.next_refresh();
        let delay = if delay.is_zero() { STREAM_IDLE } else { delay };
        self.timers.set(
            now + delay,
            Timer::MapRefresh {
                stream: id,
                generation,
            },
        );
    }

    pub(super) fn on_map_timer(&mut self, id: StreamId, generation: u64, now: Instant) {
        let Some(stream) = self.streams.get(id) else {
            return;
        };
        if !stream.map.is_current_refresh(generation) {
            return;
        }
        let idle =
            now.saturating_duration_since(stream.last_put) >= STREAM_IDLE && stream.is_empty();
        if idle && !stream.map.loading() {
            tracing::debug!(stream = %stream.name, "unused; its state is let go");
            self.streams.remove(id);
            return;
        }
        let refresh = self.config.shard_map_refresh_interval;
        let ready = matches!(stream.map.state, MapState::Ready(_));
        if refresh.is_zero() && ready && stream.suspects.is_empty() {
            self.schedule_map_timer(id, refresh, now);
        } else if let Some(stream) = self.streams.get_mut(id)
            && stream.map.want_load_now(now)
        {
            self.sender.load_map(id, stream.name.clone());
        }
    }

    /// The service does not know the stream: everything buffered for it
    /// fails, and its state leaves the table (a later put starts over).
    fn stream_gone(&mut self, id: StreamId, err: Error, now: Instant) {
        let Some(mut stream) = self.streams.remove(id) else {
            return;
        };
        tracing::warn!(stream = %stream.name, %err, "the stream does not exist; failing its records");
        let mut records = stream.take_all();
        for (_, batch) in self.sender.take_queued(Some(id)) {
            records.extend(batch.into_iter().flat_map(|ob| ob.record.records));
        }
        for p in records {
            self.resolution.fail(p, err.for_another_record(), now);
        }
    }

    /// Replaces the shard set: everything buffered for the old shards is
    /// routed again by the new map.
    fn install_map(&mut self, id: StreamId, map: ShardMap, now: Instant) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        let rerouted = stream.replace_shards(map, &self.config, now);
        let collected = stream.collector.release().unwrap_or_default();
        for p in rerouted {
            self.route(p, now);
        }
        // Kinesis records already collected or queued for a request, bound
        // for shards the new map does not have: an aggregate of them may
        // straddle a new boundary, so their records are routed again.
        for ob in self.without_stale(id, collected, now) {
            self.collect(id, ob, now);
        }
        for (qs, batch) in self.sender.take_queued(Some(id)) {
            let batch = self.without_stale(qs, batch, now);
            if !batch.is_empty() {
                self.sender.enqueue(qs, batch);
            }
        }
    }

    /// The Kinesis records of `batch` whose predicted shard is in the
    /// stream's map; the user records of the others are routed again.
    fn without_stale(&mut self, id: StreamId, batch: Vec<Outbound>, now: Instant) -> Vec<Outbound> {
        let Some(stream) = self.streams.get(id) else {
            return batch;
        };
        let (stale, keep): (Vec<Outbound>, Vec<Outbound>) =
            batch.into_iter().partition(|ob| stream.is_stale(ob));
        for p in stale.into_iter().flat_map(|ob| ob.record.records) {
            self.route(p, now);
        }
        keep
    }

    /// Ends a hold (see `StreamState::held_since`): held requests go out
    /// first, less what the current map routes elsewhere.
    fn release_held(&mut self, id: StreamId, now: Instant) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        stream.held_since = None;
        let held = std::mem::take(&mut stream.held);
        let mut batches = Vec::with_capacity(held.len());
        for batch in held {
            let batch = self.without_stale(id, batch, now);
            if !batch.is_empty() {
                batches.push(batch);
            }
        }
        self.sender.requeue_first(id, batches);
    }

    /// Aggregates that landed on an unexpected shard: delivered if that
    /// shard's range holds all their records, else sent again. Only a map
    /// read after the aggregate's answer came back may judge it.
    fn settle_suspects(&mut self, id: StreamId, map_read_at: Instant, now: Instant) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        let (ready, waiting): (Vec<Suspect>, Vec<Suspect>) = std::mem::take(&mut stream.suspects)
            .into_iter()
            .partition(|s| s.seen_at <= map_read_at);
        stream.suspects = waiting;
        let ranges: Vec<Option<(u128, u128)>> = ready
            .iter()
            .map(|s| stream.map.map().and_then(|m| m.range_of(&s.shard_id)))
            .collect();
        let name = stream.name.clone();
        for (suspect, range) in ready.into_iter().zip(ranges) {
            let Suspect {
                outbound: ob,
                shard_id,
                sequence_number,
                ..
            } = suspect;
            let fits = range.is_some_and(|(start, end)| {
                ob.record
                    .records
                    .iter()
                    .all(|p| (start..=end).contains(&p.hash_key().0))
            });
            if fits {
                self.resolution
                    .delivered(ob.record, &shard_id, &sequence_number, None, now);
            } else {
                tracing::warn!(
                    stream = %name,
                    shard = %shard_id,
                    sequence_number = %sequence_number,
                    records = ob.record.records.len(),
                    "an aggregate landed on a shard that does not hold all its records (the stream was resharded); \
                     consumers drop it, so its records are sent again"
                );
                self.retry(ob.record.records, Duration::ZERO, now);
            }
        }
    }
}

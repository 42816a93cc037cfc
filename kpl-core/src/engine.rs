//! The pipeline task. One task owns all buffered state, so the hot path
//! takes no locks:
//!
//! ```text
//! put -> route (shard map) -> container per shard (Aggregator, deadline)
//!     -> shard queue (token buckets, backoff) -> collector per stream
//!     -> send queue (<= MaxConnections in flight) -> request task
//!     -> completion -> result per user record | retry -> route
//! ```
//!
//! Every deadline lives in one timer heap; stale entries are skipped by
//! generation number instead of being cancelled.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::aggregation::{Aggregator, KinesisRecord};
use crate::config::Config;
use crate::error::{Error, ErrorKind, is_retryable_code};
use crate::hash::HashKey;
use crate::limiter::{ShardLimiter, jitter};
use crate::metrics::Recorder;
use crate::record::{Attempt, Attempts, PutResult, UserRecord};
use crate::record_size;
use crate::shard_map::ShardMap;
use crate::transport::{Entry, EntryOutcome, ShardInfo, Transport};

const THROTTLED: &str = "ProvisionedThroughputExceededException";
const MIN_REQUEST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_REQUEST_BACKOFF: Duration = Duration::from_secs(5);
/// Least time between two releases of a rate-limited shard's queue.
const MIN_DRAIN_WAIT: Duration = Duration::from_millis(20);
/// Commands handled per wake-up before timers and sends get a turn.
const COMMAND_BATCH: usize = 4096;

/// One callback for a batch of records, told each record's position.
pub(crate) type IndexedCallback = Arc<dyn Fn(usize, Result<PutResult, Error>) + Send + Sync>;

/// Where a record's result goes.
pub(crate) enum Reply {
    Channel(oneshot::Sender<Result<PutResult, Error>>),
    Callback(Box<dyn FnOnce(Result<PutResult, Error>) + Send>),
    /// A batch's shared callback and this record's position in the batch:
    /// no allocation per record.
    Indexed(IndexedCallback, usize),
}

impl Reply {
    pub(crate) fn send(self, result: Result<PutResult, Error>) {
        match self {
            // The caller may have dropped its handle: nobody to tell.
            Reply::Channel(tx) => drop(tx.send(result)),
            Reply::Callback(f) => f(result),
            Reply::Indexed(f, i) => f(i, result),
        }
    }
}

/// A user record inside the producer, with its bookkeeping.
pub(crate) struct Pending {
    pub record: UserRecord,
    pub stream: Arc<str>,
    pub hash_key: HashKey,
    pub arrival: Instant,
    pub deadline: Instant,
    pub expiry: Instant,
    pub last_attempt_end: Instant,
    pub attempts: Vec<Attempt>,
    pub epoch: u64,
    pub reply: Reply,
}

impl AsRef<UserRecord> for Pending {
    fn as_ref(&self) -> &UserRecord {
        &self.record
    }
}

/// What producers ask of the engine.
// `Put` is the hot path: boxing it would cost an allocation per record.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    Put(Pending),
    PutMany(Vec<Pending>),
    Flush(oneshot::Sender<()>),
    /// Stop retrying: fail what is not in flight with `ShutDown`, then exit
    /// once the requests in flight are answered.
    Abort,
}

/// State the producer handles and the engine share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub metrics: Recorder,
    pub outstanding: AtomicU64,
    pub buffered_bytes: AtomicU64,
    pub record_permits: Semaphore,
    pub byte_permits: Semaphore,
}

/// What spawned tasks report back.
enum Event {
    Sent(Completion),
    Map {
        stream: usize,
        result: Result<Vec<ShardInfo>, Error>,
        max_record_size: Result<usize, Error>,
    },
}

struct Completion {
    stream: usize,
    batch: Vec<Outbound>,
    started: Instant,
    ended: Instant,
    result: Result<Vec<EntryOutcome>, Error>,
}

/// An aggregate delivered to another shard than predicted, waiting for a
/// fresh map to tell whether that shard holds all of its records.
struct Suspect {
    outbound: Outbound,
    shard_id: Arc<str>,
    sequence_number: Arc<str>,
    seen_at: Instant,
}

/// A Kinesis record on its way, with the shard it was predicted for.
struct Outbound {
    record: KinesisRecord<Pending>,
    shard: Option<Arc<str>>,
}

enum Timer {
    Container {
        stream: usize,
        shard: usize,
        map_version: u64,
        generation: u64,
    },
    Collector {
        stream: usize,
        generation: u64,
    },
    Drain {
        stream: usize,
        shard: usize,
        map_version: u64,
    },
    Retry(Vec<Pending>),
    MapRefresh {
        stream: usize,
    },
}

struct TimerEntry {
    at: Instant,
    seq: u64,
    timer: Timer,
}

impl PartialEq for TimerEntry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for TimerEntry {}
impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TimerEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct ShardState {
    id: Arc<str>,
    container: Aggregator<Pending>,
    container_deadline: Option<Instant>,
    /// Bumped whenever the container empties, so older timers are ignored.
    generation: u64,
    queue: VecDeque<KinesisRecord<Pending>>,
    drain_at: Option<Instant>,
    limiter: ShardLimiter,
}

enum MapState {
    Loading,
    Ready(ShardMap),
    /// ListShards failed: records go out plain (Kinesis routes them) and
    /// the map is retried.
    Unavailable,
}

struct StreamState {
    name: Arc<str>,
    map: MapState,
    /// When the ListShards in flight started, if one is.
    map_load_started: Option<Instant>,
    /// Read the map again once the load in flight is in: something it
    /// cannot know about happened after it started.
    map_reload: bool,
    map_failures: u32,
    /// Bumped when the shard set is replaced; shard timers carry it.
    map_version: u64,
    shards: Vec<ShardState>,
    shard_index: HashMap<Arc<str>, usize>,
    unrouted: Vec<Pending>,
    collector: Vec<Outbound>,
    collector_bytes: usize,
    collector_deadline: Option<Instant>,
    collector_generation: u64,
    /// Aggregates that landed on a shard other than the predicted one,
    /// waiting for a fresh map to tell whether the shard holds them all.
    suspects: Vec<Suspect>,
    /// Set when a record came back from another shard than predicted: the
    /// map is stale (the stream was resharded), so requests wait in `held`
    /// until a map read after this instant is in, rather than send more
    /// aggregates that may straddle a new boundary.
    held_since: Option<Instant>,
    held: Vec<Vec<Outbound>>,
    request_backoff: Duration,
    /// The stream's record limit (`MaxRecordSizeInKiB`), once known.
    max_record_size: Option<usize>,
}

pub(crate) struct Engine {
    config: Arc<Config>,
    transport: Transport,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    events_tx: mpsc::UnboundedSender<Event>,
    events: mpsc::UnboundedReceiver<Event>,
    streams: Vec<StreamState>,
    stream_index: HashMap<Arc<str>, usize, foldhash::fast::RandomState>,
    timers: BinaryHeap<Reverse<TimerEntry>>,
    timer_seq: u64,
    send_queue: VecDeque<(usize, Vec<Outbound>)>,
    in_flight: usize,
    /// Unresolved records per flush epoch; `epochs[0]` is epoch `epoch_base`.
    epochs: VecDeque<u64>,
    epoch_base: u64,
    flush_waiters: Vec<(u64, oneshot::Sender<()>)>,
    /// Records of epochs below this were put before a flush: send at once.
    flushed_epoch: u64,
    aborting: bool,
    closing: bool,
    /// The time at the start of this turn of the loop: one clock read per
    /// wake-up instead of several per record.
    clock: Instant,
}

impl Engine {
    pub fn new(
        config: Arc<Config>,
        transport: Transport,
        shared: Arc<Shared>,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Engine {
        let (events_tx, events) = mpsc::unbounded_channel();
        Engine {
            config,
            transport,
            shared,
            commands,
            events_tx,
            events,
            streams: Vec::new(),
            stream_index: HashMap::default(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            send_queue: VecDeque::new(),
            in_flight: 0,
            epochs: VecDeque::from([0]),
            epoch_base: 0,
            flush_waiters: Vec::new(),
            flushed_epoch: 0,
            aborting: false,
            closing: false,
            clock: Instant::now(),
        }
    }

    /// Runs until every producer handle is gone (or `Abort`) and nothing
    /// is left to resolve.
    pub async fn run(mut self) {
        loop {
            let next_timer = self.timers.peek().map(|t| t.0.at);
            tokio::select! {
                biased;
                Some(event) = self.events.recv() => self.on_event(event),
                command = self.commands.recv(), if !self.closing => match command {
                    Some(command) => self.on_command(command),
                    None => self.begin_close(),
                },
                _ = sleep_until(next_timer), if next_timer.is_some() => {}
            }
            self.clock = Instant::now();
            for _ in 0..COMMAND_BATCH {
                match self.events.try_recv() {
                    Ok(event) => self.on_event(event),
                    Err(_) => break,
                }
            }
            if !self.closing {
                for _ in 0..COMMAND_BATCH {
                    match self.commands.try_recv() {
                        Ok(command) => self.on_command(command),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            self.begin_close();
                            break;
                        }
                    }
                }
            }
            self.fire_due_timers();
            self.start_requests();
            if (self.closing || self.aborting) && self.is_idle() {
                break;
            }
        }
        tracing::debug!("producer engine stopped");
    }

    fn is_idle(&self) -> bool {
        self.in_flight == 0 && self.epochs.iter().all(|&n| n == 0)
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Put(p) => self.accept(p),
            Command::PutMany(ps) => {
                for p in ps {
                    self.accept(p);
                }
            }
            Command::Flush(done) => self.flush(Some(done)),
            Command::Abort => self.abort(),
        }
    }

    fn begin_close(&mut self) {
        self.closing = true;
        self.flush(None);
    }

    fn accept(&mut self, mut p: Pending) {
        if self.aborting {
            let err = Error::new(ErrorKind::ShutDown, "the producer is shutting down");
            return self.finish_untracked(p, err);
        }
        p.epoch = self.epoch_base + self.epochs.len() as u64 - 1;
        *self.epochs.back_mut().expect("one epoch always exists") += 1;
        self.route(p);
    }

    /// Sends everything buffered now; `done` fires once every record
    /// accepted before this call is resolved.
    fn flush(&mut self, done: Option<oneshot::Sender<()>>) {
        let current = self.epoch_base + self.epochs.len() as u64 - 1;
        self.epochs.push_back(0);
        self.flushed_epoch = current + 1;
        for s in 0..self.streams.len() {
            for shard in 0..self.streams[s].shards.len() {
                self.flush_container(s, shard);
            }
            self.flush_collector(s);
        }
        if let Some(done) = done {
            self.flush_waiters.push((current, done));
        }
        self.settle_epochs();
    }

    fn abort(&mut self) {
        self.aborting = true;
        let shut_down = || {
            Error::new(
                ErrorKind::ShutDown,
                "the producer shut down before the record was sent",
            )
        };
        let mut dropped = Vec::new();
        for stream in &mut self.streams {
            dropped.append(&mut stream.unrouted);
            for shard in &mut stream.shards {
                if let Some(kr) = shard.container.finish() {
                    dropped.extend(kr.records);
                }
                for kr in shard.queue.drain(..) {
                    dropped.extend(kr.records);
                }
            }
            for ob in stream.collector.drain(..) {
                dropped.extend(ob.record.records);
            }
            for suspect in stream.suspects.drain(..) {
                dropped.extend(suspect.outbound.record.records);
            }
            stream.held_since = None;
            for ob in stream.held.drain(..).flatten() {
                dropped.extend(ob.record.records);
            }
        }
        for (_, batch) in self.send_queue.drain(..) {
            for ob in batch {
                dropped.extend(ob.record.records);
            }
        }
        for t in self.timers.drain() {
            if let Timer::Retry(ps) = t.0.timer {
                dropped.extend(ps);
            }
        }
        for p in dropped {
            self.fail(p, shut_down());
        }
    }

    // ---- routing and containers -------------------------------------------------

    fn stream_for(&mut self, name: &Arc<str>) -> usize {
        if let Some(&i) = self.stream_index.get(name) {
            return i;
        }
        let i = self.streams.len();
        self.streams.push(StreamState {
            name: name.clone(),
            map: MapState::Loading,
            map_load_started: None,
            map_reload: false,
            map_failures: 0,
            map_version: 0,
            shards: Vec::new(),
            shard_index: HashMap::new(),
            unrouted: Vec::new(),
            collector: Vec::new(),
            collector_bytes: 0,
            collector_deadline: None,
            collector_generation: 0,
            suspects: Vec::new(),
            held_since: None,
            held: Vec::new(),
            request_backoff: Duration::ZERO,
            max_record_size: None,
        });
        self.stream_index.insert(name.clone(), i);
        self.load_map(i);
        i
    }

    fn route(&mut self, mut p: Pending) {
        let now = self.clock;
        if now >= p.expiry {
            return self.expire(p);
        }
        let s = self.stream_for(&p.stream);
        if let Some(limit) = self.streams[s].max_record_size
            && let Some((err, attempt)) = record_size::over_stream_limit(
                &p.record,
                &p.stream,
                limit,
                now.saturating_duration_since(p.last_attempt_end),
            )
        {
            p.attempts.push(attempt);
            return self.fail(p, err);
        }
        match &self.streams[s].map {
            MapState::Loading => self.streams[s].unrouted.push(p),
            MapState::Unavailable => {
                let kr = single(p);
                self.collect(
                    s,
                    Outbound {
                        record: kr,
                        shard: None,
                    },
                );
            }
            MapState::Ready(map) => match map.shard_for(p.hash_key.0) {
                Some(shard) => self.add_to_container(s, shard, p, now),
                None => {
                    let kr = single(p);
                    self.collect(
                        s,
                        Outbound {
                            record: kr,
                            shard: None,
                        },
                    );
                }
            },
        }
    }

    fn add_to_container(&mut self, s: usize, shard: usize, p: Pending, now: Instant) {
        let deadline = if p.epoch < self.flushed_epoch {
            now
        } else {
            p.deadline
        };
        if !self.config.aggregation_enabled {
            return self.enqueue_shard(s, shard, single(p));
        }
        let state = &mut self.streams[s].shards[shard];
        if let Err(p) = state.container.add(p) {
            self.flush_container(s, shard);
            let state = &mut self.streams[s].shards[shard];
            if state.container.add(p).is_err() {
                unreachable!("an empty aggregator accepts any record");
            }
        }
        let state = &mut self.streams[s].shards[shard];
        if state.container.is_full() {
            return self.flush_container(s, shard);
        }
        if state.container_deadline.is_none_or(|d| deadline < d) {
            state.container_deadline = Some(deadline);
            let generation = state.generation;
            let map_version = self.streams[s].map_version;
            self.schedule(
                deadline,
                Timer::Container {
                    stream: s,
                    shard,
                    map_version,
                    generation,
                },
            );
        }
    }

    fn flush_container(&mut self, s: usize, shard: usize) {
        let state = &mut self.streams[s].shards[shard];
        state.generation += 1;
        state.container_deadline = None;
        if let Some(kr) = state.container.finish() {
            self.enqueue_shard(s, shard, kr);
        }
    }

    // ---- per-shard rate limiting ---------------------------------------------------

    fn enqueue_shard(&mut self, s: usize, shard: usize, kr: KinesisRecord<Pending>) {
        self.streams[s].shards[shard].queue.push_back(kr);
        self.drain_shard(s, shard);
    }

    fn drain_shard(&mut self, s: usize, shard: usize) {
        let now = self.clock;
        loop {
            let state = &mut self.streams[s].shards[shard];
            let Some(front) = state.queue.front() else {
                break;
            };
            match state.limiter.try_take(front.size(), now) {
                Ok(()) => {
                    let kr = state.queue.pop_front().expect("front exists");
                    let id = state.id.clone();
                    self.collect(
                        s,
                        Outbound {
                            record: kr,
                            shard: Some(id),
                        },
                    );
                }
                Err(wait) => {
                    // Wait for a batch's worth of budget, not one record's:
                    // records released one by one make one-record requests.
                    let at = now + wait.max(MIN_DRAIN_WAIT);
                    if state.drain_at.is_none_or(|d| at < d) {
                        state.drain_at = Some(at);
                        let map_version = self.streams[s].map_version;
                        self.schedule(
                            at,
                            Timer::Drain {
                                stream: s,
                                shard,
                                map_version,
                            },
                        );
                    }
                    break;
                }
            }
        }
    }

    // ---- collection into PutRecords ----------------------------------------------------

    fn collect(&mut self, s: usize, ob: Outbound) {
        let size = ob.record.size();
        let (max_count, max_size) = (
            self.config.collection_max_count,
            record_size::request_cap(&self.config),
        );
        let stream = &mut self.streams[s];
        if !stream.collector.is_empty() && stream.collector_bytes + size > max_size {
            self.flush_collector(s);
        }
        let deadline = ob.record.records.iter().map(|p| p.deadline).min();
        let forced = ob
            .record
            .records
            .iter()
            .any(|p| p.epoch < self.flushed_epoch);
        let stream = &mut self.streams[s];
        stream.collector_bytes += size;
        stream.collector.push(ob);
        if stream.collector.len() >= max_count {
            return self.flush_collector(s);
        }
        let deadline = if forced {
            Some(Instant::now())
        } else {
            deadline
        };
        if let Some(deadline) = deadline
            && stream.collector_deadline.is_none_or(|d| deadline < d)
        {
            stream.collector_deadline = Some(deadline);
            let generation = stream.collector_generation;
            // A deadline already past fires after the timers due before
            // it (shard drains), so their records share the request.
            self.schedule(
                deadline.max(Instant::now()),
                Timer::Collector {
                    stream: s,
                    generation,
                },
            );
        }
    }

    fn flush_collector(&mut self, s: usize) {
        let stream = &mut self.streams[s];
        stream.collector_generation += 1;
        stream.collector_deadline = None;
        stream.collector_bytes = 0;
        if stream.collector.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut stream.collector);
        // Records past their TTL leave here rather than be sent.
        let now = Instant::now();
        let mut live = Vec::with_capacity(batch.len());
        for ob in batch {
            if ob.record.records.iter().any(|p| now >= p.expiry) {
                for p in ob.record.records {
                    if now >= p.expiry {
                        self.expire(p);
                    } else {
                        self.route(p);
                    }
                }
            } else {
                live.push(ob);
            }
        }
        if !live.is_empty() {
            self.send_queue.push_back((s, live));
        }
    }

    // ---- sending ------------------------------------------------------------------

    fn start_requests(&mut self) {
        while self.in_flight < self.config.max_connections {
            let Some((s, batch)) = self.send_queue.pop_front() else {
                break;
            };
            if self.streams[s].held_since.is_some() {
                self.streams[s].held.push(batch);
                continue;
            }
            self.in_flight += 1;
            let transport = self.transport.clone();
            let stream = self.streams[s].name.clone();
            let events = self.events_tx.clone();
            tokio::spawn(async move {
                let entries = batch
                    .iter()
                    .map(|ob| Entry {
                        partition_key: ob.record.partition_key.clone(),
                        explicit_hash_key: ob.record.explicit_hash_key.clone(),
                        data: ob.record.data.clone(),
                    })
                    .collect();
                let started = Instant::now();
                let result = transport.put_records(&stream, entries).await;
                let ended = Instant::now();
                // The engine outlives every request it started.
                let _ = events.send(Event::Sent(Completion {
                    stream: s,
                    batch,
                    started,
                    ended,
                    result,
                }));
            });
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Sent(c) => self.on_completion(c),
            Event::Map {
                stream,
                result,
                max_record_size,
            } => {
                let known = self.streams[stream].max_record_size;
                let name = &self.streams[stream].name;
                self.streams[stream].max_record_size =
                    record_size::learned(name, max_record_size, known);
                self.on_map(stream, result)
            }
        }
    }

    fn on_completion(&mut self, c: Completion) {
        self.in_flight -= 1;
        let Completion {
            stream: s,
            batch,
            started,
            ended,
            result,
        } = c;
        let duration = ended - started;
        match result {
            Ok(outcomes) => {
                // Count the request before any result goes out: a flush
                // waiting on these records must see it in the metrics.
                let (ok_records, ok_bytes) = batch
                    .iter()
                    .zip(&outcomes)
                    .filter(|(_, o)| matches!(o, EntryOutcome::Delivered { .. }))
                    .fold((0, 0), |(n, b), (ob, _)| {
                        (n + 1, b + ob.record.size() as u64)
                    });
                self.shared
                    .metrics
                    .request(duration, ok_records, ok_bytes, false);
                let mut needs_refresh = false;
                let mut throttled_shards: Vec<usize> = Vec::new();
                for (ob, outcome) in batch.into_iter().zip(outcomes) {
                    match outcome {
                        EntryOutcome::Delivered {
                            shard_id,
                            sequence_number,
                        } => {
                            if let Some(i) = self.streams[s].shard_index.get(&shard_id).copied() {
                                self.streams[s].shards[i]
                                    .limiter
                                    .delivered(ob.record.size(), ended);
                            }
                            let misrouted = ob.shard.as_ref().is_some_and(|p| *p != shard_id);
                            if misrouted {
                                needs_refresh = true;
                                self.streams[s].held_since.get_or_insert(ended);
                            }
                            if misrouted && ob.record.is_aggregated() {
                                // Delivered only if the shard's range holds every record:
                                // decided once a fresh map is in.
                                let mut ob = ob;
                                for p in &mut ob.record.records {
                                    record_attempt(p, started, ended, None);
                                }
                                self.streams[s].suspects.push(Suspect {
                                    outbound: ob,
                                    shard_id,
                                    sequence_number,
                                    seen_at: ended,
                                });
                            } else {
                                self.deliver(
                                    ob.record,
                                    &shard_id,
                                    &sequence_number,
                                    started,
                                    ended,
                                );
                            }
                        }
                        EntryOutcome::Failed { code, message } => {
                            self.shared.metrics.error(&code, 1);
                            if code == THROTTLED
                                && let Some(i) = ob
                                    .shard
                                    .as_ref()
                                    .and_then(|id| self.streams[s].shard_index.get(id).copied())
                                && !throttled_shards.contains(&i)
                            {
                                throttled_shards.push(i);
                            }
                            self.entry_failed(ob, &code, &message, started, ended);
                        }
                    }
                }
                // One congestion signal per shard per response, however
                // many of its records were throttled.
                for i in throttled_shards {
                    self.streams[s].shards[i]
                        .limiter
                        .throttled(started, Instant::now());
                }
                self.streams[s].request_backoff = Duration::ZERO;
                if needs_refresh {
                    self.load_map(s);
                }
            }
            Err(err) => {
                self.shared.metrics.request(duration, 0, 0, true);
                let code = err.code().unwrap_or(err.kind().as_str()).to_owned();
                self.shared.metrics.error(&code, 1);
                let records: Vec<Pending> = batch
                    .into_iter()
                    .flat_map(|ob| ob.record.records)
                    .map(|mut p| {
                        record_attempt(&mut p, started, ended, Some((&code, err.message())));
                        p
                    })
                    .collect();
                let retryable = err.is_retryable() || err.code() == Some("ResultCountMismatch");
                if retryable && !self.aborting {
                    let stream = &mut self.streams[s];
                    stream.request_backoff = (stream.request_backoff * 2)
                        .clamp(MIN_REQUEST_BACKOFF, MAX_REQUEST_BACKOFF);
                    let delay = jitter(stream.request_backoff);
                    tracing::debug!(stream = %stream.name, %err, ?delay, "PutRecords failed; retrying");
                    self.retry(records, delay);
                } else if retryable {
                    for p in records {
                        let err = Error::new(
                            ErrorKind::ShutDown,
                            format!("the producer shut down; the last attempt failed: {err}"),
                        );
                        self.fail(p, err);
                    }
                } else {
                    tracing::warn!(stream = %self.streams[s].name, %err, "PutRecords failed; failing its records");
                    for p in records {
                        self.fail(p, clone_error(&err));
                    }
                }
            }
        }
    }

    fn entry_failed(
        &mut self,
        ob: Outbound,
        code: &str,
        message: &str,
        started: Instant,
        ended: Instant,
    ) {
        let mut records = ob.record.records;
        for p in &mut records {
            record_attempt(p, started, ended, Some((code, message)));
        }
        if code == THROTTLED && self.config.fail_if_throttled {
            for p in records {
                let err = Error::new(
                    ErrorKind::Throttled,
                    format!("throttled by Kinesis ({message}); FailIfThrottled is set"),
                )
                .with_code(code);
                self.fail(p, err);
            }
            return;
        }
        if !is_retryable_code(code) {
            for p in records {
                self.fail(p, Error::service(code, message));
            }
        } else if self.aborting {
            for p in records {
                let err = Error::new(
                    ErrorKind::ShutDown,
                    format!(
                        "the producer shut down; the last attempt failed with {code}: {message}"
                    ),
                );
                self.fail(p, err);
            }
        } else {
            self.retry(records, Duration::ZERO);
        }
    }

    fn retry(&mut self, records: Vec<Pending>, delay: Duration) {
        self.shared.metrics.retried(records.len() as u64);
        if delay.is_zero() {
            for p in records {
                self.route(p);
            }
        } else {
            self.schedule(Instant::now() + delay, Timer::Retry(records));
        }
    }

    // ---- shard maps ------------------------------------------------------------------

    fn load_map(&mut self, s: usize) {
        let stream = &mut self.streams[s];
        if stream.map_load_started.is_some() {
            stream.map_reload = true;
            return;
        }
        stream.map_load_started = Some(Instant::now());
        stream.map_reload = false;
        let transport = self.transport.clone();
        let name = stream.name.clone();
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            let (result, max_record_size) = tokio::join!(
                transport.list_shards(&name),
                transport.max_record_size(&name)
            );
            let _ = events.send(Event::Map {
                stream: s,
                result,
                max_record_size,
            });
        });
    }

    fn on_map(&mut self, s: usize, result: Result<Vec<ShardInfo>, Error>) {
        let started = self.streams[s]
            .map_load_started
            .take()
            .unwrap_or(self.clock);
        let refresh = self.config.shard_map_refresh_interval;
        match result {
            Ok(shards) => {
                self.streams[s].map_failures = 0;
                let unchanged =
                    matches!(&self.streams[s].map, MapState::Ready(m) if m.same_as(&shards));
                if !unchanged {
                    tracing::debug!(stream = %self.streams[s].name, shards = shards.len(), "shard map loaded");
                    self.install_map(s, ShardMap::new(shards));
                }
                self.settle_suspects(s, started);
                if self.streams[s].held_since.is_some_and(|at| at <= started) {
                    self.release_held(s);
                }
                if self.streams[s].map_reload || !self.streams[s].suspects.is_empty() {
                    self.load_map(s);
                } else if !refresh.is_zero() {
                    self.schedule(Instant::now() + refresh, Timer::MapRefresh { stream: s });
                }
            }
            Err(err) => {
                let stream = &mut self.streams[s];
                stream.map_failures += 1;
                let delay = jitter(
                    (MIN_REQUEST_BACKOFF * 2u32.saturating_pow(stream.map_failures.min(6)))
                        .min(MAX_REQUEST_BACKOFF * 6),
                );
                tracing::warn!(stream = %stream.name, %err, ?delay, "ListShards failed; sending records unaggregated until it succeeds");
                if matches!(stream.map, MapState::Loading) {
                    stream.map = MapState::Unavailable;
                }
                let waiting = std::mem::take(&mut stream.unrouted);
                for p in waiting {
                    self.route(p);
                }
                // Suspects cannot be judged without a map: send them again.
                let suspects = std::mem::take(&mut self.streams[s].suspects);
                for suspect in suspects {
                    self.retry(suspect.outbound.record.records, Duration::ZERO);
                }
                self.release_held(s);
                self.schedule(Instant::now() + delay, Timer::MapRefresh { stream: s });
            }
        }
    }

    /// Replaces the shard set: everything buffered for the old shards is
    /// routed again by the new map; limiters carry over for shards that stay.
    fn install_map(&mut self, s: usize, map: ShardMap) {
        let now = Instant::now();
        let stream = &mut self.streams[s];
        let mut old: HashMap<Arc<str>, ShardLimiter> = HashMap::new();
        let mut rerouted = std::mem::take(&mut stream.unrouted);
        for mut shard in stream.shards.drain(..) {
            if let Some(kr) = shard.container.finish() {
                rerouted.extend(kr.records);
            }
            for kr in shard.queue.drain(..) {
                rerouted.extend(kr.records);
            }
            old.insert(shard.id.clone(), shard.limiter);
        }
        let max_count = usize::try_from(self.config.aggregation_max_count).unwrap_or(usize::MAX);
        let max_size = record_size::aggregate_cap(&self.config, stream.max_record_size);
        stream.shard_index.clear();
        for (i, info) in map.shards().iter().enumerate() {
            stream.shard_index.insert(info.id.clone(), i);
            stream.shards.push(ShardState {
                id: info.id.clone(),
                container: Aggregator::new(max_size, max_count),
                container_deadline: None,
                generation: 0,
                queue: VecDeque::new(),
                drain_at: None,
                limiter: old
                    .remove(&info.id)
                    .unwrap_or_else(|| ShardLimiter::new(self.config.rate_limit, now)),
            });
        }
        stream.map = MapState::Ready(map);
        stream.map_version += 1;
        for p in rerouted {
            self.route(p);
        }
        // Kinesis records already collected or queued for a request, bound
        // for shards the new map does not have: an aggregate of them may
        // straddle a new boundary, so their records are routed again.
        let stream = &mut self.streams[s];
        let collected = std::mem::take(&mut stream.collector);
        stream.collector_bytes = 0;
        stream.collector_deadline = None;
        stream.collector_generation += 1;
        for ob in self.without_stale(s, collected) {
            self.collect(s, ob);
        }
        for (qs, batch) in std::mem::take(&mut self.send_queue) {
            let batch = if qs == s {
                self.without_stale(s, batch)
            } else {
                batch
            };
            if !batch.is_empty() {
                self.send_queue.push_back((qs, batch));
            }
        }
    }

    /// The Kinesis records of `batch` whose predicted shard is in the
    /// stream's map; the user records of the others are routed again.
    fn without_stale(&mut self, s: usize, batch: Vec<Outbound>) -> Vec<Outbound> {
        let mut keep = Vec::with_capacity(batch.len());
        let mut again = Vec::new();
        for ob in batch {
            let stale = ob
                .shard
                .as_ref()
                .is_some_and(|id| !self.streams[s].shard_index.contains_key(id));
            if stale {
                again.extend(ob.record.records);
            } else {
                keep.push(ob);
            }
        }
        for p in again {
            self.route(p);
        }
        keep
    }

    /// Ends a hold (see `StreamState::held_since`): held requests go out
    /// first, less what the current map routes elsewhere.
    fn release_held(&mut self, s: usize) {
        self.streams[s].held_since = None;
        let held = std::mem::take(&mut self.streams[s].held);
        let mut batches = Vec::with_capacity(held.len());
        for batch in held {
            let batch = self.without_stale(s, batch);
            if !batch.is_empty() {
                batches.push(batch);
            }
        }
        for batch in batches.into_iter().rev() {
            self.send_queue.push_front((s, batch));
        }
    }

    /// Aggregates that landed on an unexpected shard: delivered if that
    /// shard's range holds all their records, else sent again. Only a map
    /// read after the aggregate's answer came back may judge it.
    fn settle_suspects(&mut self, s: usize, map_read_at: Instant) {
        let (ready, waiting): (Vec<Suspect>, Vec<Suspect>) =
            std::mem::take(&mut self.streams[s].suspects)
                .into_iter()
                .partition(|suspect| suspect.seen_at <= map_read_at);
        self.streams[s].suspects = waiting;
        for suspect in ready {
            let Suspect {
                outbound: ob,
                shard_id,
                sequence_number,
                ..
            } = suspect;
            let range = match &self.streams[s].map {
                MapState::Ready(map) => map.range_of(&shard_id),
                _ => None,
            };
            let fits = range.is_some_and(|(start, end)| {
                ob.record
                    .records
                    .iter()
                    .all(|p| (start..=end).contains(&p.hash_key.0))
            });
            if fits {
                self.complete_delivered(ob.record, &shard_id, &sequence_number, None);
            } else {
                tracing::warn!(
                    stream = %self.streams[s].name,
                    shard = %shard_id,
                    sequence_number = %sequence_number,
                    records = ob.record.records.len(),
                    "an aggregate landed on a shard that does not hold all its records (the stream was resharded); \
                     consumers drop it, so its records are sent again"
                );
                self.retry(ob.record.records, Duration::ZERO);
            }
        }
    }

    // ---- timers ----------------------------------------------------------------------

    fn schedule(&mut self, at: Instant, timer: Timer) {
        self.timer_seq += 1;
        self.timers.push(Reverse(TimerEntry {
            at,
            seq: self.timer_seq,
            timer,
        }));
    }

    fn fire_due_timers(&mut self) {
        self.clock = Instant::now();
        let now = self.clock;
        while self.timers.peek().is_some_and(|t| t.0.at <= now) {
            let entry = self.timers.pop().expect("peeked").0;
            match entry.timer {
                Timer::Container {
                    stream,
                    shard,
                    map_version,
                    generation,
                } => {
                    let st = &self.streams[stream];
                    if st.map_version == map_version && st.shards[shard].generation == generation {
                        self.flush_container(stream, shard);
                    }
                }
                Timer::Collector { stream, generation } => {
                    if self.streams[stream].collector_generation == generation {
                        self.flush_collector(stream);
                    }
                }
                Timer::Drain {
                    stream,
                    shard,
                    map_version,
                } => {
                    if self.streams[stream].map_version == map_version {
                        self.streams[stream].shards[shard].drain_at = None;
                        self.drain_shard(stream, shard);
                    }
                }
                Timer::Retry(records) => {
                    for p in records {
                        self.route(p);
                    }
                }
                Timer::MapRefresh { stream } => self.load_map(stream),
            }
        }
    }

    // ---- results ---------------------------------------------------------------------

    /// Delivered on this attempt (`started`..`ended`).
    fn deliver(
        &mut self,
        kr: KinesisRecord<Pending>,
        shard_id: &Arc<str>,
        seq: &Arc<str>,
        started: Instant,
        ended: Instant,
    ) {
        self.complete_delivered(kr, shard_id, seq, Some((started, ended)));
    }

    /// Resolves the records of a delivered Kinesis record. `attempt` is the
    /// successful one when it is not yet in their lists.
    fn complete_delivered(
        &mut self,
        kr: KinesisRecord<Pending>,
        shard_id: &Arc<str>,
        seq: &Arc<str>,
        attempt: Option<(Instant, Instant)>,
    ) {
        let aggregated = kr.is_aggregated();
        // Counters and buffer room first, once per Kinesis record: whoever
        // sees a result must also see it counted and its room given back.
        let (mut bytes, mut buffering_sum, mut buffering_max) = (0, Duration::ZERO, Duration::ZERO);
        for p in &kr.records {
            let buffering = self.clock.saturating_duration_since(p.arrival);
            buffering_sum += buffering;
            buffering_max = buffering_max.max(buffering);
            bytes += p.record.size();
        }
        let count = kr.records.len();
        self.shared
            .metrics
            .user_records_done(true, count as u64, buffering_sum, buffering_max);
        self.release_buffer(count, bytes);
        for (i, mut p) in kr.records.into_iter().enumerate() {
            let attempts = match attempt {
                Some((started, ended)) => {
                    let last = Attempt {
                        delay: started.saturating_duration_since(p.last_attempt_end),
                        duration: ended - started,
                        error_code: None,
                        error_message: None,
                    };
                    Attempts::from(std::mem::take(&mut p.attempts), last)
                }
                None => Attempts::Many(std::mem::take(&mut p.attempts)),
            };
            let result = PutResult {
                shard_id: shard_id.clone(),
                sequence_number: seq.clone(),
                sub_sequence_number: if aggregated { i as u64 } else { 0 },
                aggregated,
                attempts,
            };
            self.settle_record(p.epoch);
            p.reply.send(Ok(result));
        }
        self.settle_epochs();
    }

    fn expire(&mut self, p: Pending) {
        self.shared.metrics.expired();
        let last = p.attempts.last().and_then(|a| a.error_code.clone());
        let message = match last {
            Some(code) => format!(
                "not delivered within RecordTtl ({} ms) after {} attempt(s); the last failed with {code}",
                self.config.record_ttl.as_millis(),
                p.attempts.len()
            ),
            None => format!(
                "not sent within RecordTtl ({} ms)",
                self.config.record_ttl.as_millis()
            ),
        };
        self.fail(p, Error::new(ErrorKind::Expired, message));
    }

    fn fail(&mut self, p: Pending, err: Error) {
        let size = p.record.size();
        let epoch = p.epoch;
        let buffering = self.clock.saturating_duration_since(p.arrival);
        self.shared
            .metrics
            .user_records_done(false, 1, buffering, buffering);
        self.release_buffer(1, size);
        self.settle_record(epoch);
        let err = err.with_record(p.record).with_attempts(p.attempts);
        p.reply.send(Err(err));
        self.settle_epochs();
    }

    /// A record that never entered the buffer's accounting (refused while aborting).
    fn finish_untracked(&mut self, p: Pending, err: Error) {
        let size = p.record.size();
        self.release_buffer(1, size);
        let err = err.with_record(p.record);
        p.reply.send(Err(err));
    }

    fn settle_record(&mut self, epoch: u64) {
        self.epochs[(epoch - self.epoch_base) as usize] -= 1;
    }

    /// Gives resolved records' room back to waiting puts.
    fn release_buffer(&self, records: usize, bytes: usize) {
        self.shared.outstanding.fetch_sub(records as u64, Relaxed);
        self.shared.buffered_bytes.fetch_sub(bytes as u64, Relaxed);
        self.shared.record_permits.add_permits(records);
        self.shared.byte_permits.add_permits(bytes);
    }

    /// Drops finished epochs and wakes the flushes waiting on them.
    fn settle_epochs(&mut self) {
        while self.epochs.len() > 1 && self.epochs[0] == 0 {
            self.epochs.pop_front();
            self.epoch_base += 1;
        }
        if self.flush_waiters.iter().any(|(e, _)| *e < self.epoch_base) {
            let base = self.epoch_base;
            let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flush_waiters)
                .into_iter()
                .partition(|(e, _)| *e < base);
            self.flush_waiters = waiting;
            for (_, tx) in done {
                let _ = tx.send(());
            }
        }
    }
}

/// A Kinesis record holding one user record, sent plain.
fn single(p: Pending) -> KinesisRecord<Pending> {
    KinesisRecord {
        partition_key: p.record.partition_key().to_owned(),
        explicit_hash_key: p.record.explicit_hash_key().map(str::to_owned),
        data: p.record.data().clone(),
        records: vec![p],
    }
}

fn record_attempt(p: &mut Pending, started: Instant, ended: Instant, error: Option<(&str, &str)>) {
    p.attempts.push(Attempt {
        delay: started.saturating_duration_since(p.last_attempt_end),
        duration: ended - started,
        error_code: error.map(|(c, _)| c.to_owned()),
        error_message: error.map(|(_, m)| m.to_owned()),
    });
    p.last_attempt_end = ended;
}

fn clone_error(err: &Error) -> Error {
    let copy = Error::new(err.kind(), err.message());
    match err.code() {
        Some(code) => copy.with_code(code),
        None => copy,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

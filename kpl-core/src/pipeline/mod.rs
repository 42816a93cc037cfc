//! The pipeline task. One task owns all buffered state, so the hot path
//! takes no locks. Its parts each own one concern and return what should
//! happen next rather than call each other:
//!
//! ```text
//! put -> flow: route (router: shard map) -> container per shard (batcher)
//!     -> shard queue (limiter) -> collector per stream (batcher)
//!     -> sender (<= MaxConnections in flight, a task per request)
//!     -> completion: retrier verdicts -> resolution | route again
//! maps: one ListShards at a time per stream, one refresh timer, reshards
//! timers: one heap for every deadline; stale entries are skipped
//! ```
//!
//! The loop reads the clock once per turn and passes `now` down, so every
//! part runs the same under tokio's paused clock (the simulation suite).

mod batcher;
mod completion;
mod flow;
mod maps;
mod ordering;
mod pending;
mod reshard;
mod resolution;
mod retrier;
mod room;
mod router;
mod sender;
mod streams;
mod timers;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

pub(crate) use pending::{
    BatchCallback, Failure, IndexedCallback, IndexedRoomCallback, Pending, Reply, Stamp,
};
pub use room::Room;

use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::kinesis::Kinesis;
use crate::metrics::{Hooks, Recorder};
use resolution::Resolution;
use sender::{Event, Sender};
use streams::{StreamId, Streams};
use timers::Timers;

/// Commands handled per wake-up before timers and sends get a turn.
const COMMAND_BATCH: usize = 4096;

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
    /// Streams in the pipeline's table, as of its last turn.
    pub streams: AtomicU64,
    /// Entries in the pipeline's timer heap, as of its last turn.
    pub timers: AtomicU64,
    /// Where final results of spooled records are marked, if there is a spool.
    pub spool_done: Option<Arc<crate::spool::Done>>,
}

/// Hands a command to the pipeline; if it is gone (shut down), the
/// records in it are resolved with `ShutDown` here.
pub(crate) fn send_command(
    commands: &mpsc::UnboundedSender<Command>,
    shared: &Shared,
    command: Command,
) {
    if let Err(mpsc::error::SendError(command)) = commands.send(command) {
        let pending = match command {
            Command::Put(p) => vec![p],
            Command::PutMany(ps) => ps,
            _ => Vec::new(),
        };
        for p in pending {
            let size = p.record.size();
            shared.outstanding.fetch_sub(1, Relaxed);
            shared.buffered_bytes.fetch_sub(size as u64, Relaxed);
            shared.give_back(size);
            let err = Error::new(ErrorKind::ShutDown, "the producer is shut down");
            p.reply.send(Err(err.with_record(p.record)));
        }
    }
}

enum Timer {
    Container {
        stream: StreamId,
        shard: usize,
        map_version: u64,
        generation: u64,
    },
    Collector {
        stream: StreamId,
        generation: u64,
    },
    Drain {
        stream: StreamId,
        shard: usize,
        map_version: u64,
    },
    Retry(Vec<Pending>),
    /// The stream's one map timer: refresh the map, or let an idle stream go.
    MapRefresh {
        stream: StreamId,
        generation: u64,
    },
    /// Sample UserRecordsPending; cut the metrics window when it is due.
    Metrics,
}

/// What woke the loop.
enum Wake {
    Event(Event),
    Command(Command),
    Closed,
    Timer,
}

pub(crate) struct Engine {
    config: Arc<Config>,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedReceiver<Event>,
    streams: Streams,
    timers: Timers<Timer>,
    sender: Sender,
    resolution: Resolution,
    /// Streams with records to put back at their shards' heads
    /// (`StrictOrdering`; see `ordering::settle_order`).
    resending: Vec<StreamId>,
    rng: SmallRng,
    /// RecordTtl's cutoff at the `now` it was last worked out for: a turn
    /// routes many records at one `now`.
    ttl_cutoff: (Instant, pending::Expired),
    aborting: bool,
    closing: bool,
}

impl Engine {
    pub fn new(
        config: Arc<Config>,
        kinesis: Arc<dyn Kinesis>,
        shared: Arc<Shared>,
        commands: mpsc::UnboundedReceiver<Command>,
        metrics_hooks: Hooks,
    ) -> Engine {
        let (events_tx, events) = mpsc::unbounded_channel();
        let rng = match config.random_seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_rng(&mut rand::rng()),
        };
        let first_metrics_tick = metrics_hooks.first_tick();
        let now = Instant::now();
        let mut engine = Engine {
            ttl_cutoff: (now, pending::Expired::at(now, &config)),
            sender: Sender::new(kinesis, events_tx, config.max_connections),
            resolution: Resolution::new(shared, config.record_ttl, metrics_hooks),
            config,
            commands,
            events,
            streams: Streams::new(),
            timers: Timers::new(),
            resending: Vec::new(),
            rng,
            aborting: false,
            closing: false,
        };
        if let Some(at) = first_metrics_tick {
            engine.timers.set(at, Timer::Metrics);
        }
        engine
    }

    /// Runs until every producer handle is gone (or `Abort`) and nothing
    /// is left to resolve.
    pub async fn run(mut self) {
        loop {
            let wake = self.wait().await;
            let now = Instant::now();
            match wake {
                Wake::Event(event) => self.on_event(event, now),
                Wake::Command(command) => self.on_command(command, now),
                Wake::Closed => self.begin_close(now),
                Wake::Timer => {}
            }
            self.take_ready(now);
            self.fire_due_timers(now);
            self.settle_order(now);
            self.sender.start(&mut self.streams);
            let shared = self.resolution.shared();
            shared.streams.store(self.streams.len() as u64, Relaxed);
            shared.timers.store(self.timers.len() as u64, Relaxed);
            if (self.closing || self.aborting) && self.is_idle() {
                break;
            }
        }
        tracing::debug!("producer engine stopped");
    }

    async fn wait(&mut self) -> Wake {
        let next_timer = self.timers.next();
        tokio::select! {
            biased;
            Some(event) = self.events.recv() => Wake::Event(event),
            command = self.commands.recv(), if !self.closing => match command {
                Some(command) => Wake::Command(command),
                None => Wake::Closed,
            },
            _ = sleep_until(next_timer), if next_timer.is_some() => Wake::Timer,
        }
    }

    /// Handles what else is ready without waiting, a bounded batch of each.
    fn take_ready(&mut self, now: Instant) {
        for _ in 0..COMMAND_BATCH {
            match self.events.try_recv() {
                Ok(event) => self.on_event(event, now),
                Err(_) => break,
            }
        }
        if self.closing {
            return;
        }
        for _ in 0..COMMAND_BATCH {
            match self.commands.try_recv() {
                Ok(command) => self.on_command(command, now),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.begin_close(now);
                    break;
                }
            }
        }
    }

    fn is_idle(&self) -> bool {
        self.sender.in_flight() == 0 && self.resolution.is_idle()
    }

    fn on_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Sent(c) => self.on_completion(c, now),
            Event::Map {
                stream,
                result,
                max_record_size,
            } => self.on_map(stream, result, max_record_size, now),
        }
    }

    fn on_command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Put(p) => self.accept(p, now),
            Command::PutMany(ps) => {
                for p in ps {
                    self.accept(p, now);
                }
            }
            Command::Flush(done) => self.flush(Some(done), now),
            Command::Abort => self.abort(now),
        }
    }

    fn begin_close(&mut self, now: Instant) {
        self.closing = true;
        self.flush(None, now);
    }

    fn abort(&mut self, now: Instant) {
        self.aborting = true;
        let mut dropped = Vec::new();
        for id in self.streams.ids() {
            if let Some(stream) = self.streams.get_mut(id) {
                dropped.extend(stream.take_all());
            }
        }
        for (_, batch) in self.sender.take_queued(None) {
            dropped.extend(batch.into_iter().flat_map(|ob| ob.record.records));
        }
        for timer in self.timers.drain() {
            if let Timer::Retry(ps) = timer {
                dropped.extend(ps);
            }
        }
        for p in dropped {
            let err = Error::new(
                ErrorKind::ShutDown,
                "the producer shut down before the record was sent",
            );
            self.resolution.fail(p, err, now);
        }
    }

    fn fire_due_timers(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Container {
                    stream,
                    shard,
                    map_version,
                    generation,
                } => self.on_container_timer(stream, shard, map_version, generation, now),
                Timer::Collector { stream, generation } => {
                    let batch = self
                        .streams
                        .get_mut(stream)
                        .and_then(|s| s.collector.on_timer(generation));
                    if let Some(batch) = batch {
                        self.dispatch(stream, batch, now);
                    }
                }
                Timer::Drain {
                    stream,
                    shard,
                    map_version,
                } => self.on_drain_timer(stream, shard, map_version, now),
                Timer::Retry(records) => {
                    for p in records {
                        self.route(p, now);
                    }
                }
                Timer::MapRefresh { stream, generation } => {
                    self.on_map_timer(stream, generation, now)
                }
                Timer::Metrics => {
                    let next = self.resolution.metrics_hooks().tick(now);
                    self.timers.set(next, Timer::Metrics);
                }
            }
        }
    }

    /// A random duration between half of `d` and `d` ("equal jitter"),
    /// from the engine's own generator (seeded for reproducible runs).
    fn jitter(&mut self, d: Duration) -> Duration {
        crate::limiter::jitter(d, &mut self.rng)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Wake puts waiting for room: nobody will give it back now.
        let shared = self.resolution.shared();
        shared.record_permits.close();
        shared.byte_permits.close();
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

//! The durable spool (`SpoolDirectory`): every accepted record is written
//! to disk before its put returns and leaves the disk only once it has a
//! final result, so records survive a killed process (and, with
//! `SpoolSync = always`, a lost host) and wait out long outages on disk.
//!
//! - `frame`: one record on disk (length, CRC32C, magic to resync on).
//! - `segment`: segment files, scanning them at open, reading them back.
//! - `completion`: which records have a final result; the checkpoint file.
//! - `writer`: puts: disk space (`SpoolMaxBytes`, `SpoolFullPolicy`),
//!   appending, straight into the pipeline or into the backlog.
//! - `backlog`: records on disk that are not in memory yet, with their replies.
//! - `feeder`: a thread that moves the backlog into the pipeline as buffer
//!   room frees up.
//! - `syncer`: a thread that fsyncs (`SpoolSync`), writes the checkpoint
//!   and deletes finished segments.
//! - `recovery`: opening a directory: lock, checkpoint, scan, backlog.
//! - `inspect`: what a spool directory holds (`kpl spool`).
//! - `settings`: `SpoolSync` and `SpoolFullPolicy`.

mod backlog;
mod completion;
mod feeder;
mod frame;
mod inspect;
mod recovery;
mod segment;
mod settings;
mod syncer;
mod writer;

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};
use tokio::sync::{Notify, mpsc, watch};

pub use inspect::{SpoolReport, inspect};
pub use settings::{SpoolFullPolicy, SpoolSync};

use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::pipeline::{Command, Shared};
use backlog::Backlog;
use completion::Completion;

/// Records between two age samples (the oldest record's age is known to
/// within this many records).
const AGE_SAMPLE_EVERY: u64 = 1024;

/// A spool directory, open and locked by one producer.
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    sync: SpoolSync,
    interval: Duration,
    full_policy: SpoolFullPolicy,
    state: Mutex<State>,
    /// Wakes the feeder (backlog grew, or closing) and the syncer (a put
    /// waits for an fsync, or closing); both wait on `state`.
    feed_wake: Condvar,
    sync_wake: Condvar,
    /// Wakes puts waiting for disk space.
    space: Notify,
    /// Wakes the feeder while it waits for buffer room, to stop.
    closing: Notify,
    /// Bytes appended so far that are on disk (fsynced).
    synced: watch::Sender<u64>,
    /// The oldest record not yet handed to the pipeline (`u64::MAX`: none).
    fed: watch::Sender<u64>,
    /// Where records go: set once by `start`.
    handoff: OnceLock<Handoff>,
    pub(crate) done: Arc<Done>,
    pub(crate) stats: Arc<Stats>,
    closed: AtomicBool,
    /// Set by shutdown: puts are refused, the feeder goes on.
    stopping: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Held (flock) while the spool is open; closing releases it.
    lock: Mutex<Option<File>>,
}

/// What the writer, the feeder and the syncer share.
struct State {
    /// Segments on disk, oldest first; the last is the one written to.
    segments: VecDeque<Segment>,
    active: Option<Arc<File>>,
    next_seq: u64,
    disk_bytes: u64,
    /// Bytes appended since open (all segments), and the part fsynced.
    written: u64,
    synced: u64,
    backlog: Backlog,
    /// Set when an fsync failed: nothing later can be promised durable.
    failed: Option<String>,
    /// Reused buffer for encoding frames.
    buf: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    first_seq: u64,
    /// Bytes in the file (header included).
    bytes: u64,
}

impl State {
    /// The segment that holds `seq`: the last one that starts at or before it.
    fn segment_of(&self, seq: u64) -> Option<usize> {
        let after = self.segments.partition_point(|s| s.first_seq <= seq);
        after.checked_sub(1)
    }
}

/// The completion side: what the pipeline's results mark, and what the
/// checkpoint saves.
#[derive(Debug)]
pub(crate) struct Done {
    completion: Mutex<Completion>,
    /// `(seq, written_ms)` every `AGE_SAMPLE_EVERY` records, for the oldest
    /// record's age.
    samples: Mutex<VecDeque<(u64, u64)>>,
}

impl Done {
    /// Marks spooled records final (delivered, or failed for good).
    pub(crate) fn complete(&self, seqs: impl IntoIterator<Item = u64>) {
        let mut c = self.completion.lock();
        for seq in seqs {
            c.complete(seq);
        }
    }
}

/// Counters of what the spool did, for metrics and logs.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub dropped: AtomicU64,
    pub recovered: AtomicU64,
    pub recovered_delivered: AtomicU64,
    pub recovered_failed: AtomicU64,
    pub damaged: AtomicU64,
    /// Bytes written to disk: frames, segment headers, checkpoints.
    pub written: AtomicU64,
}

/// The spool's part of [`crate::Metrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct SpoolFigures {
    pub records: u64,
    pub bytes: u64,
    pub oldest_age_ms: u64,
    pub dropped: u64,
    pub recovered: u64,
    pub recovered_delivered: u64,
    pub recovered_failed: u64,
    pub damaged: u64,
    pub written: u64,
}

/// The pipeline side the spool hands records to.
pub(crate) struct Handoff {
    pub config: Arc<Config>,
    pub shared: Arc<Shared>,
    pub commands: mpsc::UnboundedSender<Command>,
    pub runtime: tokio::runtime::Handle,
}

impl Spool {
    /// Starts the feeder and the syncer threads.
    pub(crate) fn start(self: &Arc<Self>, handoff: Handoff) -> Result<(), Error> {
        if self.handoff.set(handoff).is_err() {
            return Ok(());
        }
        let feeder = {
            let spool = self.clone();
            std::thread::Builder::new()
                .name("kpl-spool-feed".into())
                .spawn(move || feeder::run(&spool))
        };
        let syncer = {
            let spool = self.clone();
            std::thread::Builder::new()
                .name("kpl-spool-sync".into())
                .spawn(move || syncer::run(&spool))
        };
        let spawn_error = |e: std::io::Error| {
            Error::new(
                ErrorKind::Spool,
                format!("cannot start the spool's threads: {e}"),
            )
        };
        let mut threads = self.threads.lock();
        threads.push(feeder.map_err(spawn_error)?);
        threads.push(syncer.map_err(spawn_error)?);
        Ok(())
    }

    /// Waits until every record written before the call was handed to the
    /// pipeline (so a flush after this covers them).
    pub(crate) async fn fed_through_now(&self) {
        let target = self.state.lock().next_seq;
        let mut fed = self.fed.subscribe();
        let _ = fed.wait_for(|&front| front >= target).await;
    }

    /// Stops the threads, writes the last checkpoint (synced unless
    /// `SpoolSync = never`), deletes finished segments and releases the
    /// directory. Records still on disk are sent by the next producer that
    /// opens it; puts waiting on the spool fail with `ShutDown`.
    pub(crate) fn close(&self) {
        if self.closed.swap(true, Relaxed) {
            return;
        }
        {
            let _st = self.state.lock();
            self.feed_wake.notify_all();
            self.sync_wake.notify_all();
        }
        self.space.notify_waiters();
        self.closing.notify_one();
        let me = std::thread::current().id();
        for thread in self.threads.lock().drain(..) {
            // A result callback on the feeder may drop the last producer
            // handle: that thread cannot wait for itself (it ends by itself).
            if thread.thread().id() != me {
                let _ = thread.join();
            }
        }
        let left = {
            let mut st = self.state.lock();
            let replies = st.backlog.take_all();
            drop(st);
            replies
        };
        // Their records stay on disk; the replies tell the callers.
        drop(left);
        syncer::final_sync(self);
        self.lock.lock().take();
    }

    /// Shutdown began: later puts are refused, waiting ones wake and fail.
    pub(crate) fn stop_accepting(&self) {
        self.stopping.store(true, Relaxed);
        self.space.notify_waiters();
    }

    /// The spool's figures now.
    pub(crate) fn figures(&self) -> SpoolFigures {
        let (next_seq, disk_bytes) = {
            let st = self.state.lock();
            (st.next_seq, st.disk_bytes)
        };
        let (watermark, done_above) = {
            let c = self.done.completion.lock();
            (c.watermark(), c.runs().iter().map(|r| r.1).sum::<u64>())
        };
        let records = next_seq
            .saturating_sub(watermark)
            .saturating_sub(done_above);
        let oldest_age_ms = if records == 0 {
            0
        } else {
            let samples = self.done.samples.lock();
            let oldest = samples
                .iter()
                .take_while(|(seq, _)| *seq <= watermark)
                .last()
                .or(samples.front());
            oldest.map_or(0, |(_, ms)| now_ms().saturating_sub(*ms))
        };
        let stats = &self.stats;
        SpoolFigures {
            records,
            bytes: disk_bytes,
            oldest_age_ms,
            dropped: stats.dropped.load(Relaxed),
            recovered: stats.recovered.load(Relaxed),
            recovered_delivered: stats.recovered_delivered.load(Relaxed),
            recovered_failed: stats.recovered_failed.load(Relaxed),
            damaged: stats.damaged.load(Relaxed),
            written: stats.written.load(Relaxed),
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    /// Publishes the backlog's front for `fed_through_now`.
    fn publish_front(&self, st: &State) {
        let front = st.backlog.front_seq().unwrap_or(u64::MAX);
        self.fed
            .send_if_modified(|f| std::mem::replace(f, front) != front);
    }
}

/// Milliseconds since the Unix epoch (the write time stored with each record).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn io_error(what: &str, path: &std::path::Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Spool, format!("{what} {}: {e}", path.display())).with_source(e)
}

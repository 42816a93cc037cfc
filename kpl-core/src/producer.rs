//! The public producer handle.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::Config;
use crate::engine::{Command, Engine, IndexedCallback, Pending, Reply, Shared};
use crate::error::{Error, ErrorKind};
use crate::metrics::{self, Metrics, Recorder};
use crate::record::{PutResult, UserRecord};
use crate::transport::Transport;

/// Records sent to the engine in one command by [`Producer::put_many`].
const PUT_MANY_CHUNK: usize = 1024;

/// A Kinesis producer: aggregates, collects, rate-limits and retries, and
/// reports a result for every record.
///
/// Cloning is cheap; clones share one buffer and one pipeline task, which
/// runs on the tokio runtime the producer was created in.
///
/// ```no_run
/// use kpl_core::{Config, Producer, UserRecord};
///
/// # async fn example() -> Result<(), kpl_core::Error> {
/// let config = Config::builder().stream("readings").region("eu-west-1").build()?;
/// let producer = Producer::new(config).await?;
///
/// // Waits for buffer room, then hands back a handle to the result.
/// let handle = producer.put(UserRecord::new("sensor-17", "21.5")).await?;
/// let result = handle.await?; // resolves once Kinesis acknowledged the record
/// println!("{} {} #{}", result.shard_id(), result.sequence_number(), result.sub_sequence_number());
///
/// producer.shutdown(std::time::Duration::from_secs(10)).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    default_stream: Option<Arc<str>>,
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    closed: AtomicBool,
    runtime: tokio::runtime::Handle,
    engine: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("stream", &self.inner.default_stream)
            .field("outstanding", &self.outstanding())
            .finish()
    }
}

/// The result of one put, resolved when Kinesis acknowledged the record or
/// the producer gave up on it.
///
/// Dropping the handle does not cancel the record.
#[derive(Debug)]
pub struct PutHandle {
    rx: oneshot::Receiver<Result<PutResult, Error>>,
}

impl Future for PutHandle {
    type Output = Result<PutResult, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::ShutDown,
                    "the producer stopped without resolving the record",
                ))
            })
        })
    }
}

impl PutHandle {
    /// Waits for the result on a thread outside any async runtime.
    pub fn wait(self) -> Result<PutResult, Error> {
        futures::executor::block_on(self)
    }
}

impl Producer {
    /// Creates a producer: builds the Kinesis client (credentials and region
    /// from the configuration or aws-config's default chain) and starts the
    /// pipeline on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn new(config: Config) -> Result<Producer, Error> {
        let transport = Transport::connect(&config).await?;
        Ok(Producer::start(config, transport))
    }

    /// Creates a producer over a Kinesis client the application built
    /// (its own retry settings should be off; the producer retries).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn with_client(config: Config, client: aws_sdk_kinesis::Client) -> Producer {
        Producer::start(config, Transport::from_client(client))
    }

    fn start(config: Config, transport: Transport) -> Producer {
        let config = Arc::new(config);
        let shared = Arc::new(Shared {
            metrics: Recorder::default(),
            outstanding: AtomicU64::new(0),
            buffered_bytes: AtomicU64::new(0),
            record_permits: Semaphore::new(config.max_buffered_records),
            byte_permits: Semaphore::new(config.max_buffered_bytes),
        });
        let (commands, rx) = mpsc::unbounded_channel();
        let (hooks, windows) = metrics::Hooks::new(&config);
        if let Some(windows) = windows {
            metrics::spawn_upload(config.clone(), windows, shared.clone());
        }
        let engine = Engine::new(config.clone(), transport, shared.clone(), rx, hooks);
        let handle = tokio::spawn(engine.run());
        Producer {
            inner: Arc::new(Inner {
                default_stream: config.stream.as_deref().map(Arc::from),
                config,
                commands,
                shared,
                closed: AtomicBool::new(false),
                runtime: tokio::runtime::Handle::current(),
                engine: Mutex::new(Some(handle)),
            }),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Puts a record, waiting while the buffer is full (at most
    /// `UserRecordTimeoutInMillis`, if set). The returned handle resolves
    /// with the record's result.
    ///
    /// Fails at once, with the record, if it is invalid or the producer is
    /// shut down.
    pub async fn put(&self, record: UserRecord) -> Result<PutHandle, Error> {
        let (tx, rx) = oneshot::channel();
        self.submit(record, Reply::Channel(tx)).await?;
        Ok(PutHandle { rx })
    }

    /// Puts a record without waiting: a full buffer is an
    /// [`ErrorKind::BufferFull`] error that hands the record back.
    pub fn try_put(&self, record: UserRecord) -> Result<PutHandle, Error> {
        let (tx, rx) = oneshot::channel();
        self.submit_now(record, Reply::Channel(tx))?;
        Ok(PutHandle { rx })
    }

    /// Puts a record from synchronous code, blocking the thread while the
    /// buffer is full (at most `timeout`, then `BufferFull`).
    ///
    /// # Panics
    /// When called from inside an async runtime: use [`put`](Self::put).
    pub fn put_blocking(
        &self,
        record: UserRecord,
        timeout: Option<Duration>,
    ) -> Result<PutHandle, Error> {
        let (tx, rx) = oneshot::channel();
        self.submit_blocking(record, Reply::Channel(tx), timeout)?;
        Ok(PutHandle { rx })
    }

    /// Like [`put`](Self::put), but the result goes to `callback`, which
    /// runs on the producer's pipeline task: keep it short and never block
    /// in it. It is not called when the put itself fails.
    pub async fn put_with<F>(&self, record: UserRecord, callback: F) -> Result<(), Error>
    where
        F: FnOnce(Result<PutResult, Error>) + Send + 'static,
    {
        self.submit(record, Reply::Callback(Box::new(callback)))
            .await
    }

    /// Like [`try_put`](Self::try_put), with a result callback (see
    /// [`put_with`](Self::put_with)).
    pub fn try_put_with<F>(&self, record: UserRecord, callback: F) -> Result<(), Error>
    where
        F: FnOnce(Result<PutResult, Error>) + Send + 'static,
    {
        self.submit_now(record, Reply::Callback(Box::new(callback)))
    }

    /// Like [`put_blocking`](Self::put_blocking), with a result callback
    /// (see [`put_with`](Self::put_with)).
    pub fn put_blocking_with<F>(
        &self,
        record: UserRecord,
        timeout: Option<Duration>,
        callback: F,
    ) -> Result<(), Error>
    where
        F: FnOnce(Result<PutResult, Error>) + Send + 'static,
    {
        self.submit_blocking(record, Reply::Callback(Box::new(callback)), timeout)
    }

    /// Puts many records, waiting for room as needed; one result per
    /// record, in order. Cheaper per record than `put` in a loop.
    pub async fn put_many(
        &self,
        records: impl IntoIterator<Item = UserRecord>,
    ) -> Vec<Result<PutHandle, Error>> {
        let mut out = Vec::new();
        let refused = self
            .submit_many(records, Some(self.put_timeout()), |_| {
                let (tx, rx) = oneshot::channel();
                out.push(Ok(PutHandle { rx }));
                Reply::Channel(tx)
            })
            .await;
        for (i, e) in refused {
            out[i] = Err(e);
        }
        out
    }

    /// Puts many records, waiting for room as needed, with one callback for
    /// all of them: it is called exactly once per record with the record's
    /// position in `records` and its outcome, refusals (invalid records)
    /// included. It runs on the pipeline task (or, for refusals, here):
    /// keep it short. The cheapest way to put from a binding.
    ///
    /// ```no_run
    /// # async fn example(producer: kpl_core::Producer) {
    /// use kpl_core::UserRecord;
    ///
    /// let records = (0..1000).map(|i| UserRecord::new(format!("key-{i}"), vec![0u8; 100]));
    /// producer
    ///     .put_many_with(records, |index, outcome| {
    ///         if let Err(e) = outcome {
    ///             eprintln!("record {index}: {e}");
    ///         }
    ///     })
    ///     .await;
    /// # }
    /// ```
    pub async fn put_many_with<F>(&self, records: impl IntoIterator<Item = UserRecord>, callback: F)
    where
        F: Fn(usize, Result<PutResult, Error>) + Send + Sync + 'static,
    {
        self.put_many_indexed(records, Arc::new(callback), Some(self.put_timeout()))
            .await
    }

    /// Like [`put_many_with`](Self::put_many_with) without waiting: records
    /// that find the buffer full get a `BufferFull` error (with the record)
    /// through the callback.
    pub fn try_put_many_with<F>(&self, records: impl IntoIterator<Item = UserRecord>, callback: F)
    where
        F: Fn(usize, Result<PutResult, Error>) + Send + Sync + 'static,
    {
        let put = self.put_many_indexed(records, Arc::new(callback), None);
        // Never waits, so it completes on its first poll.
        futures::executor::block_on(put);
    }

    /// Like [`put_many_with`](Self::put_many_with) from synchronous code:
    /// blocks while the buffer is full, each record at most `timeout`
    /// (then `BufferFull` through the callback).
    ///
    /// # Panics
    /// When called from inside an async runtime.
    pub fn put_many_blocking_with<F>(
        &self,
        records: impl IntoIterator<Item = UserRecord>,
        timeout: Option<Duration>,
        callback: F,
    ) where
        F: Fn(usize, Result<PutResult, Error>) + Send + Sync + 'static,
    {
        let put = self.put_many_indexed(records, Arc::new(callback), Some(timeout));
        self.inner.runtime.block_on(put);
    }

    async fn put_many_indexed(
        &self,
        records: impl IntoIterator<Item = UserRecord>,
        callback: IndexedCallback,
        wait: Option<Option<Duration>>,
    ) {
        let refused = self
            .submit_many(records, wait, |i| Reply::Indexed(callback.clone(), i))
            .await;
        for (i, e) in refused {
            callback(i, Err(e));
        }
    }

    /// Admits records in chunks, one command per chunk. `wait`: `None`
    /// never waits, `Some(timeout)` waits for room (at most `timeout` per
    /// record). Returns the refused records' positions and errors.
    async fn submit_many(
        &self,
        records: impl IntoIterator<Item = UserRecord>,
        wait: Option<Option<Duration>>,
        mut reply_for: impl FnMut(usize) -> Reply,
    ) -> Vec<(usize, Error)> {
        let mut refused = Vec::new();
        let mut chunk = Vec::with_capacity(PUT_MANY_CHUNK);
        for (i, record) in records.into_iter().enumerate() {
            let admitted = match self.admit(record, reply_for(i)) {
                Ok(a) => a,
                Err(e) => {
                    refused.push((i, e));
                    continue;
                }
            };
            let size = admitted.record.size();
            if !self.try_reserve(size) {
                // About to wait (or give up): let the engine work on what we have.
                if !chunk.is_empty() {
                    self.send(Command::PutMany(std::mem::take(&mut chunk)));
                }
                let reserved = match wait {
                    None => Err(buffer_full()),
                    Some(timeout) => self.reserve_within(size, timeout).await,
                };
                if let Err(e) = reserved {
                    refused.push((i, e.with_record(admitted.record)));
                    continue;
                }
            }
            chunk.push(self.arrived(admitted, size));
            if chunk.len() >= PUT_MANY_CHUNK {
                self.send(Command::PutMany(std::mem::take(&mut chunk)));
            }
        }
        if !chunk.is_empty() {
            self.send(Command::PutMany(chunk));
        }
        refused
    }

    /// Sends everything buffered now, without waiting for
    /// `RecordMaxBufferedTime`, and returns once every record put before
    /// the call has its result (delivered, failed or expired).
    pub async fn flush(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        if self.inner.commands.send(Command::Flush(tx)).is_err() {
            return Err(shut_down());
        }
        rx.await.map_err(|_| shut_down())
    }

    /// Stops accepting records, flushes, and stops the pipeline. Records
    /// not resolved within `timeout` fail with [`ErrorKind::ShutDown`]
    /// (requests already in flight are waited for, at most
    /// `RequestTimeout` longer). Later puts fail with `ShutDown`.
    ///
    /// Returns an error when records had to be failed.
    pub async fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        if self.inner.closed.swap(true, Relaxed) {
            return Ok(());
        }
        // Wake puts waiting for room: they fail with ShutDown.
        self.inner.shared.record_permits.close();
        self.inner.shared.byte_permits.close();
        let flushed = tokio::time::timeout(timeout, self.flush()).await;
        let left = self.outstanding();
        let _ = self.inner.commands.send(Command::Abort);
        let engine = self.inner.engine.lock().take();
        if let Some(engine) = engine {
            let grace = self.inner.config.request_timeout + Duration::from_secs(1);
            if tokio::time::timeout(grace, engine).await.is_err() {
                tracing::error!("the producer's pipeline did not stop within RequestTimeout");
            }
        }
        match flushed {
            Ok(Ok(())) => Ok(()),
            _ => Err(Error::new(
                ErrorKind::ShutDown,
                format!(
                    "shutdown timed out after {} ms with {left} record(s) unresolved; they failed with ShutDown",
                    timeout.as_millis()
                ),
            )),
        }
    }

    /// Records put and not yet resolved.
    pub fn outstanding(&self) -> u64 {
        self.inner.shared.outstanding.load(Relaxed)
    }

    /// A snapshot of the metrics.
    pub fn metrics(&self) -> Metrics {
        let shared = &self.inner.shared;
        shared
            .metrics
            .snapshot(self.outstanding(), shared.buffered_bytes.load(Relaxed))
    }

    // ---- admission -------------------------------------------------------------

    /// Validates a record and finds its stream; no buffer room is taken yet.
    fn admit(&self, record: UserRecord, reply: Reply) -> Result<Admitted, Error> {
        if self.inner.closed.load(Relaxed) {
            return Err(shut_down().with_record(record));
        }
        let hash_key = match record.validate(self.inner.config.max_user_record_size) {
            Ok(h) => h,
            Err(e) => return Err(e.with_record(record)),
        };
        let stream = match record.stream_arc().or(self.inner.default_stream.as_ref()) {
            Some(s) => s.clone(),
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidRecord,
                    "the record names no stream and the producer has no default stream (StreamName)",
                )
                .with_record(record));
            }
        };
        Ok(Admitted {
            record,
            stream,
            hash_key,
            reply,
        })
    }

    /// Stamps the record's clock once it has room: its buffering time and
    /// TTL start now.
    fn arrived(&self, a: Admitted, size: usize) -> Pending {
        let now = Instant::now();
        let config = &self.inner.config;
        let expiry = now + config.record_ttl;
        let shared = &self.inner.shared;
        shared.outstanding.fetch_add(1, Relaxed);
        shared.buffered_bytes.fetch_add(size as u64, Relaxed);
        shared.metrics.received(1);
        Pending {
            record: a.record,
            stream: a.stream,
            hash_key: a.hash_key,
            arrival: now,
            deadline: (now + config.record_max_buffered_time).min(expiry),
            expiry,
            last_attempt_end: now,
            attempts: Vec::new(),
            epoch: 0,
            reply: a.reply,
        }
    }

    async fn submit(&self, record: UserRecord, reply: Reply) -> Result<(), Error> {
        let p = self.admit(record, reply)?;
        let size = p.record.size();
        let reserved = self.reserve_within(size, self.put_timeout()).await;
        if let Err(e) = reserved {
            return Err(e.with_record(p.record));
        }
        self.send(Command::Put(self.arrived(p, size)));
        Ok(())
    }

    fn submit_now(&self, record: UserRecord, reply: Reply) -> Result<(), Error> {
        let p = self.admit(record, reply)?;
        let size = p.record.size();
        if !self.try_reserve(size) {
            return Err(buffer_full().with_record(p.record));
        }
        self.send(Command::Put(self.arrived(p, size)));
        Ok(())
    }

    fn submit_blocking(
        &self,
        record: UserRecord,
        reply: Reply,
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        let p = self.admit(record, reply)?;
        let size = p.record.size();
        if !self.try_reserve(size) {
            let reserved = self
                .inner
                .runtime
                .block_on(self.reserve_within(size, timeout));
            if let Err(e) = reserved {
                return Err(e.with_record(p.record));
            }
        }
        self.send(Command::Put(self.arrived(p, size)));
        Ok(())
    }

    /// `UserRecordTimeoutInMillis` as a wait limit (0: none).
    fn put_timeout(&self) -> Option<Duration> {
        let t = self.inner.config.user_record_timeout;
        (!t.is_zero()).then_some(t)
    }

    fn try_reserve(&self, size: usize) -> bool {
        let shared = &self.inner.shared;
        let Ok(records) = shared.record_permits.try_acquire() else {
            return false;
        };
        match shared.byte_permits.try_acquire_many(permits(size)) {
            Ok(bytes) => {
                records.forget();
                bytes.forget();
                true
            }
            Err(_) => false,
        }
    }

    /// Waits for room, at most `timeout` (`None`: as long as it takes).
    async fn reserve_within(&self, size: usize, timeout: Option<Duration>) -> Result<(), Error> {
        match timeout {
            None => self.reserve(size).await,
            Some(t) => tokio::time::timeout(t, self.reserve(size))
                .await
                .unwrap_or_else(|_| Err(buffer_full())),
        }
    }

    /// Waits for room for one record of `size` bytes. The permits are
    /// given back by the engine when the record is resolved.
    async fn reserve(&self, size: usize) -> Result<(), Error> {
        let shared = &self.inner.shared;
        let records = shared
            .record_permits
            .acquire()
            .await
            .map_err(|_| shut_down())?;
        let bytes = shared
            .byte_permits
            .acquire_many(permits(size))
            .await
            .map_err(|_| shut_down())?;
        records.forget();
        bytes.forget();
        Ok(())
    }

    fn send(&self, command: Command) {
        if let Err(mpsc::error::SendError(command)) = self.inner.commands.send(command) {
            // The engine is gone (shut down): resolve what we were sending.
            let pending = match command {
                Command::Put(p) => vec![p],
                Command::PutMany(ps) => ps,
                _ => Vec::new(),
            };
            let shared = &self.inner.shared;
            for p in pending {
                let size = p.record.size();
                shared.outstanding.fetch_sub(1, Relaxed);
                shared.buffered_bytes.fetch_sub(size as u64, Relaxed);
                p.reply.send(Err(shut_down().with_record(p.record)));
            }
        }
    }
}

/// A validated record waiting for buffer room.
struct Admitted {
    record: UserRecord,
    stream: Arc<str>,
    hash_key: crate::hash::HashKey,
    reply: Reply,
}

fn permits(size: usize) -> u32 {
    // Records are at most 10 MiB, well inside u32.
    u32::try_from(size).unwrap_or(u32::MAX)
}

fn shut_down() -> Error {
    Error::new(ErrorKind::ShutDown, "the producer is shut down")
}

fn buffer_full() -> Error {
    Error::new(
        ErrorKind::BufferFull,
        "the producer's buffer is full (MaxBufferedRecords / MaxBufferedBytes); put again later",
    )
}

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

mod admission;
mod batch;
mod spooled;
mod with_room;

pub(crate) use admission::Admitted;
use admission::shut_down;

use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::kinesis::Kinesis;
use crate::metrics::{self, Metrics, Recorder};
use crate::pipeline::{Command, Engine, IndexedCallback, Reply, Shared};
use crate::record::{PutResult, UserRecord};
use crate::spool::{Handoff, Spool};
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
    /// The CloudWatch upload task, if metrics are on: shutdown waits for
    /// it to send the last window.
    uploads: Mutex<Option<JoinHandle<()>>>,
    /// The outcome of the first `shutdown`; later calls wait for it.
    shutdown: tokio::sync::OnceCell<Result<(), String>>,
    /// The durable spool, with `SpoolDirectory`.
    spool: Option<Arc<Spool>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropped without shutdown: stop the spool's threads (they hold
        // the pipeline's command channel open) and release the directory.
        if let Some(spool) = &self.spool {
            spool.close();
        }
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("stream", &self.inner.default_stream)
            .field("outstanding", &self.outstanding())
            .finish()
    }
}

/// The pipeline's own state, from [`Producer::pipeline_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineStats {
    /// Streams the pipeline keeps state for.
    pub streams: u64,
    /// Timers pending in the pipeline's heap.
    pub timers: u64,
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
    ///
    /// On a thread that drives a tokio runtime it returns an
    /// [`ErrorKind::WrongThread`] error at once instead of blocking: the
    /// result comes from a task that the blocked thread might be the one to
    /// run. Await the handle there.
    pub fn wait(self) -> Result<PutResult, Error> {
        refuse_runtime_thread("PutHandle::wait")?;
        futures::executor::block_on(self)
    }
}

impl Producer {
    /// Creates a producer: builds the Kinesis client (credentials and region
    /// from the configuration or aws-config's default chain) and starts the
    /// pipeline on the current tokio runtime. PutRecords, the call it makes
    /// many times a second, goes out signed by the producer itself with the
    /// client's credentials, endpoint and connections, without the SDK's
    /// fixed cost per request; the other calls go through the SDK.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn new(config: Config) -> Result<Producer, Error> {
        let transport = Transport::connect(&config).await?;
        Producer::start(config, Arc::new(transport))
    }

    /// Creates a producer over a Kinesis client the application built
    /// (its own retry settings should be off; the producer retries). Every
    /// call, PutRecords included, goes through that client, so whatever it
    /// was given (interceptors, say) applies.
    /// Fails only if the spool (`SpoolDirectory`) cannot be opened.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn with_client(config: Config, client: aws_sdk_kinesis::Client) -> Result<Producer, Error> {
        Producer::with_kinesis(config, Arc::new(Transport::from_client(client)))
    }

    /// Creates a producer over any [`Kinesis`] implementation: a client
    /// with a transport of its own, or an in-process model of the service
    /// (the simulation tests run the producer on one, in simulated time).
    /// Fails only if the spool (`SpoolDirectory`) cannot be opened.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn with_kinesis(config: Config, kinesis: Arc<dyn Kinesis>) -> Result<Producer, Error> {
        Producer::start(config, kinesis)
    }

    fn start(config: Config, transport: Arc<dyn Kinesis>) -> Result<Producer, Error> {
        let config = Arc::new(config);
        let spool = match config.spool_directory {
            Some(_) => Some(Spool::open(&config)?),
            None => None,
        };
        let shared = Arc::new(Shared {
            spool_done: spool.as_ref().map(|s| s.done.clone()),
            metrics: Recorder::default(),
            outstanding: AtomicU64::new(0),
            buffered_bytes: AtomicU64::new(0),
            record_permits: Semaphore::new(config.max_buffered_records),
            byte_permits: Semaphore::new(config.max_buffered_bytes),
            streams: AtomicU64::new(0),
            timers: AtomicU64::new(0),
        });
        let (commands, rx) = mpsc::unbounded_channel();
        let (hooks, windows) = metrics::Hooks::new(&config);
        let uploads = windows.map(|w| metrics::spawn_upload(config.clone(), w, shared.clone()));
        let engine = Engine::new(config.clone(), transport, shared.clone(), rx, hooks);
        let handle = tokio::spawn(engine.run());
        if let Some(spool) = &spool {
            spool.start(Handoff {
                config: config.clone(),
                shared: shared.clone(),
                commands: commands.clone(),
                runtime: tokio::runtime::Handle::current(),
            })?;
        }
        Ok(Producer {
            inner: Arc::new(Inner {
                default_stream: config.stream.as_deref().map(Arc::from),
                config,
                commands,
                shared,
                closed: AtomicBool::new(false),
                runtime: tokio::runtime::Handle::current(),
                engine: Mutex::new(Some(handle)),
                uploads: Mutex::new(uploads),
                shutdown: tokio::sync::OnceCell::new(),
                spool,
            }),
        })
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
        self.submit(record, Reply::channel(tx)).await?;
        Ok(PutHandle { rx })
    }

    /// Puts a record without waiting: a full buffer is an
    /// [`ErrorKind::BufferFull`] error that hands the record back.
    pub fn try_put(&self, record: UserRecord) -> Result<PutHandle, Error> {
        let (tx, rx) = oneshot::channel();
        self.submit_now(record, Reply::channel(tx))?;
        Ok(PutHandle { rx })
    }

    /// Puts a record from synchronous code, blocking the thread while the
    /// buffer is full (at most `timeout`, then `BufferFull`).
    ///
    /// On a thread that drives an async runtime it fails at once with
    /// [`ErrorKind::WrongThread`] (and the record): use [`put`](Self::put).
    pub fn put_blocking(
        &self,
        record: UserRecord,
        timeout: Option<Duration>,
    ) -> Result<PutHandle, Error> {
        let (tx, rx) = oneshot::channel();
        self.submit_blocking(record, Reply::channel(tx), timeout)?;
        Ok(PutHandle { rx })
    }

    /// Like [`put`](Self::put), but the result goes to `callback`, which
    /// runs on the producer's pipeline task: keep it short and never block
    /// in it. It is not called when the put itself fails.
    pub async fn put_with<F>(&self, record: UserRecord, callback: F) -> Result<(), Error>
    where
        F: FnOnce(Result<PutResult, Error>) + Send + 'static,
    {
        self.submit(record, Reply::callback(Box::new(callback)))
            .await
    }

    /// Like [`try_put`](Self::try_put), with a result callback (see
    /// [`put_with`](Self::put_with)).
    pub fn try_put_with<F>(&self, record: UserRecord, callback: F) -> Result<(), Error>
    where
        F: FnOnce(Result<PutResult, Error>) + Send + 'static,
    {
        self.submit_now(record, Reply::callback(Box::new(callback)))
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
        self.submit_blocking(record, Reply::callback(Box::new(callback)), timeout)
    }

    /// Puts many records, waiting for room as needed; one result per
    /// record, in order. Cheaper per record than `put` in a loop.
    pub async fn put_many(
        &self,
        records: impl IntoIterator<Item = UserRecord>,
    ) -> Vec<Result<PutHandle, Error>> {
        let mut out = Vec::new();
        let mut refused = Vec::new();
        self.submit_many(
            records,
            Some(self.put_timeout()),
            |_| {
                let (tx, rx) = oneshot::channel();
                out.push(Ok(PutHandle { rx }));
                Reply::channel(tx)
            },
            |i, e| refused.push((i, e)),
        )
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
        self.put_many_indexed(
            records,
            Arc::new(Box::new(callback)),
            Some(self.put_timeout()),
        )
        .await
    }

    /// Like [`put_many_with`](Self::put_many_with) without waiting: the
    /// first record that finds the buffer full, and every valid record
    /// after it, get a `BufferFull` error (with the record) through the
    /// callback, so putting those again in order keeps the batch's order.
    pub fn try_put_many_with<F>(&self, records: impl IntoIterator<Item = UserRecord>, callback: F)
    where
        F: Fn(usize, Result<PutResult, Error>) + Send + Sync + 'static,
    {
        let put = self.put_many_indexed(records, Arc::new(Box::new(callback)), None);
        // Never waits, so it completes on its first poll.
        futures::executor::block_on(put);
    }

    /// Like [`put_many_with`](Self::put_many_with) from synchronous code:
    /// blocks while the buffer is full, each record at most `timeout`
    /// (then `BufferFull` through the callback).
    ///
    /// On a thread that drives an async runtime every record gets an
    /// [`ErrorKind::WrongThread`] error through the callback instead.
    pub fn put_many_blocking_with<F>(
        &self,
        records: impl IntoIterator<Item = UserRecord>,
        timeout: Option<Duration>,
        callback: F,
    ) where
        F: Fn(usize, Result<PutResult, Error>) + Send + Sync + 'static,
    {
        if let Err(e) = refuse_runtime_thread("Producer::put_many_blocking_with") {
            for (i, record) in records.into_iter().enumerate() {
                callback(i, Err(e.for_another_record().with_record(record)));
            }
            return;
        }
        let put = self.put_many_indexed(records, Arc::new(Box::new(callback)), Some(timeout));
        self.inner.runtime.block_on(put);
    }

    async fn put_many_indexed(
        &self,
        records: impl IntoIterator<Item = UserRecord>,
        callback: IndexedCallback,
        wait: Option<Option<Duration>>,
    ) {
        let reply_for = |i| Reply::indexed(callback.clone(), i);
        self.submit_many(records, wait, reply_for, |i, e| callback(i, Err(e)))
            .await;
    }

    /// Sends everything buffered now, without waiting for
    /// `RecordMaxBufferedTime`, and returns once every record put before
    /// the call has its result (delivered, failed or expired).
    pub async fn flush(&self) -> Result<(), Error> {
        if let Some(spool) = &self.inner.spool {
            // Records still on disk only are fed in first.
            spool.fed_through_now().await;
        }
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
    /// Returns an error when records had to be failed. A second call waits
    /// until the first has finished, then returns `Ok` (the first call
    /// reports the outcome).
    pub async fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        // An atomic, not a Cell: the future must stay Send.
        let ran = AtomicBool::new(false);
        let outcome = self
            .inner
            .shutdown
            .get_or_init(|| async {
                ran.store(true, Relaxed);
                self.shut_down(timeout).await
            })
            .await;
        if !ran.load(Relaxed) {
            // Another call did the work and reports its outcome.
            return Ok(());
        }
        outcome
            .clone()
            .map_err(|message| Error::new(ErrorKind::ShutDown, message))
    }

    /// The first `shutdown`'s work; a later call waits for it to end.
    async fn shut_down(&self, timeout: Duration) -> Result<(), String> {
        self.inner.closed.store(true, Relaxed);
        match &self.inner.spool {
            // Puts wait for disk space, not buffer room: the feeder still
            // needs the room to move the backlog in while this flushes.
            Some(spool) => spool.stop_accepting(),
            None => {
                // Wake puts waiting for room: they fail with ShutDown.
                self.inner.shared.record_permits.close();
                self.inner.shared.byte_permits.close();
            }
        }
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
        // The pipeline cut the last metrics window as it stopped.
        let uploads = self.inner.uploads.lock().take();
        if let Some(uploads) = uploads {
            let grace = self.inner.config.request_timeout + Duration::from_secs(1);
            if tokio::time::timeout(grace, uploads).await.is_err() {
                tracing::warn!("the last metrics window was not uploaded within RequestTimeout");
            }
        }
        if let Some(spool) = self.inner.spool.clone() {
            let _ = tokio::task::spawn_blocking(move || spool.close()).await;
        }
        match flushed {
            Ok(Ok(())) => Ok(()),
            _ => Err(format!(
                "shutdown timed out after {} ms with {left} record(s) unresolved; they failed with ShutDown",
                timeout.as_millis()
            )),
        }
    }

    /// Records put and not yet resolved. With a spool, those still only
    /// on disk (waiting for buffer room) are not counted: see
    /// [`Metrics::spool_records`].
    pub fn outstanding(&self) -> u64 {
        self.inner.shared.outstanding.load(Relaxed)
    }

    /// Bytes of the records put and not yet resolved (partition key plus
    /// data, as `MaxBufferedBytes` counts them): an atomic load, cheap
    /// enough to sample after every put.
    ///
    /// ```
    /// # async fn run(producer: kpl_core::Producer) {
    /// let fill = producer.buffered_bytes() as f64 / producer.config().max_buffered_bytes as f64;
    /// if fill > 0.9 {
    ///     tracing::warn!("the producer's buffer is {:.0}% full", fill * 100.0);
    /// }
    /// # }
    /// ```
    pub fn buffered_bytes(&self) -> u64 {
        self.inner.shared.buffered_bytes.load(Relaxed)
    }

    /// The pipeline's own state, for diagnostics: how many streams it
    /// keeps and how many timers it holds (both stay bounded however long
    /// a producer runs; streams that are gone or unused leave).
    pub fn pipeline_stats(&self) -> PipelineStats {
        let shared = &self.inner.shared;
        PipelineStats {
            streams: shared.streams.load(Relaxed),
            timers: shared.timers.load(Relaxed),
        }
    }

    /// A snapshot of the metrics.
    pub fn metrics(&self) -> Metrics {
        let shared = &self.inner.shared;
        let mut metrics = shared
            .metrics
            .snapshot(self.outstanding(), shared.buffered_bytes.load(Relaxed));
        if let Some(spool) = &self.inner.spool {
            metrics.add_spool(spool.figures());
        }
        metrics
    }
}

/// Fails with [`ErrorKind::WrongThread`] on a thread that drives a tokio
/// runtime, where blocking would stall the producer's own tasks.
fn refuse_runtime_thread(what: &str) -> Result<(), Error> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::new(
            ErrorKind::WrongThread,
            format!(
                "{what} blocks the calling thread, which runs an async runtime: \
                 blocking there would stall the producer (and deadlock a current-thread runtime); \
                 use the async API (await) on this thread"
            ),
        ));
    }
    Ok(())
}

//! The native half of the `kpl-rs` npm package (napi-rs).
//!
//! It is deliberately low level: the hand-written `index.js` gives it its
//! public shape (promises, `Error` subclasses, record normalization).
//!
//! - Errors never cross as thrown exceptions: every fallible call returns an
//!   [`ErrInfo`] (or `null` on success) and `index.js` maps it, in one
//!   place, to a `KplError` subclass.
//! - Results come back through ONE weak (unref'd) threadsafe function per
//!   producer. kpl-core calls our result callback on its pipeline task; the
//!   callback only pushes `(id, result)` onto a mailbox and, when the
//!   mailbox was empty, schedules the JS callback in non-blocking mode. The
//!   JS side drains the whole mailbox at once, so a burst of results costs
//!   one hop to the JS thread, and the engine never blocks.
//! - Async operations (create, waiting put, flush, close) run on napi-rs'
//!   tokio runtime, which is also the runtime the producer's pipeline runs
//!   on: one runtime per process.

#![deny(clippy::all)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kpl_core::{
    Attempt, Config, Error as KplError, ErrorKind, Producer, PutResult, Room, UserRecord,
};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use parking_lot::Mutex;

type Outcome = std::result::Result<PutResult, KplError>;

/// A record's attempt, as the KPL reports it.
#[napi(object)]
pub struct AttemptJs {
    pub delay_ms: f64,
    pub duration_ms: f64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// A delivered record's place in the stream.
#[napi(object)]
pub struct PutResultJs {
    pub shard_id: String,
    pub sequence_number: String,
    pub sub_sequence_number: f64,
    pub aggregated: bool,
    pub attempts: Vec<AttemptJs>,
}

/// The record an error hands back.
#[napi(object)]
pub struct RecordJs {
    pub partition_key: String,
    pub data: Buffer,
    pub stream_name: Option<String>,
    pub explicit_hash_key: Option<String>,
}

/// An error from kpl-core, as plain data: `kind` is `ErrorKind::as_str()`
/// and `index.js` turns it into the matching `KplError` subclass.
#[napi(object)]
pub struct ErrInfo {
    pub kind: String,
    pub service_code: Option<String>,
    pub message: String,
    pub retryable: bool,
    pub record: Option<RecordJs>,
    pub attempts: Vec<AttemptJs>,
}

/// One record's outcome, for the producer's result callback.
#[napi(object)]
pub struct Delivery {
    pub id: u32,
    /// The record's position in its batch (0 for a single put).
    pub index: u32,
    pub result: Option<PutResultJs>,
    pub error: Option<ErrInfo>,
}

/// A user record read out of a Kinesis record.
#[napi(object)]
pub struct DeaggregatedJs {
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Buffer,
    pub sub_sequence_number: f64,
    pub aggregated: bool,
}

fn attempts_js(attempts: &[Attempt]) -> Vec<AttemptJs> {
    attempts
        .iter()
        .map(|a| AttemptJs {
            delay_ms: a.delay.as_secs_f64() * 1000.0,
            duration_ms: a.duration.as_secs_f64() * 1000.0,
            error_code: a.error_code.clone(),
            error_message: a.error_message.clone(),
        })
        .collect()
}

/// The error as plain data (kpl-core fills in the default stream of a
/// record that named none).
fn err_info(e: KplError) -> ErrInfo {
    let record = e.record().map(|r| RecordJs {
        partition_key: r.partition_key().to_owned(),
        data: Buffer::from(r.data().to_vec()),
        stream_name: r.stream().map(str::to_owned),
        explicit_hash_key: r.explicit_hash_key().map(str::to_owned),
    });
    ErrInfo {
        kind: e.kind().as_str().to_owned(),
        service_code: e.code().map(str::to_owned),
        message: e.message().to_owned(),
        retryable: e.is_retryable(),
        record,
        attempts: attempts_js(e.attempts()),
    }
}

/// An outcome for the JS thread: `(id, index in the batch, outcome)`, and
/// the record's buffer room, given back once the JS thread took the batch
/// (so a busy event loop makes puts wait instead of queueing unbounded).
type Posted = (u32, u32, Outcome, Room);

/// Results waiting for the JS thread, and whether a drain is scheduled.
#[derive(Default)]
struct Mailbox {
    inner: Mutex<(Vec<Posted>, bool)>,
}

type ResultsFn = ThreadsafeFunction<(), (), ResultBatch, Status, false, true>;

struct Shared {
    producer: Producer,
    mailbox: Arc<Mailbox>,
    notify: ResultsFn,
}

impl Shared {
    /// The result callback handed to kpl-core; runs on the pipeline task.
    fn deliver(self: &Arc<Self>, id: u32) -> impl FnOnce(Outcome, Room) + Send + 'static {
        let shared = self.clone();
        move |outcome, room| shared.post(id, 0, outcome, room)
    }

    /// Queues one outcome for the JS thread; runs on the pipeline task.
    fn post(&self, id: u32, index: u32, outcome: Outcome, room: Room) {
        let wake = {
            let mut g = self.mailbox.inner.lock();
            g.0.push((id, index, outcome, room));
            !std::mem::replace(&mut g.1, true)
        };
        if wake {
            // Non-blocking; the queue is unbounded, so this only fails
            // when the environment is closing (process exit).
            let _ = self
                .notify
                .call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

/// A batch of outcomes in columnar form, cheap to cross into JS: records
/// of one Kinesis record share their shard, sequence number and attempts
/// (one `groups` entry); `index.js` builds each record's PutResult.
#[napi(object)]
pub struct ResultBatch {
    /// Ids of the delivered records (a put's id, or a batch's).
    pub ids: Uint32Array,
    /// Per delivered record, its position in its batch (0 for a put).
    pub indexes: Uint32Array,
    /// Per delivered record, its index into `groups`.
    pub group_of: Uint32Array,
    /// Per delivered record, its sub-sequence number.
    pub sub_sequence_numbers: Float64Array,
    /// Shared parts of the results: records of one Kinesis record share
    /// the strings.
    pub groups: Vec<ResultGroup>,
    /// Per delivered record, how many attempts it had; their times are
    /// consecutive in `delays_ms` / `durations_ms`.
    pub attempt_counts: Uint32Array,
    pub delays_ms: Float64Array,
    pub durations_ms: Float64Array,
    /// The attempts (by position in `delays_ms`) that have an error code
    /// or message: few.
    pub attempt_errors: Vec<AttemptError>,
    /// Records that failed.
    pub failures: Vec<Delivery>,
}

/// The part of a PutResult that records of one Kinesis record share.
#[napi(object)]
pub struct ResultGroup {
    pub shard_id: String,
    pub sequence_number: String,
    pub aggregated: bool,
}

/// An attempt's error, for `ResultBatch::attempt_errors`.
#[napi(object)]
pub struct AttemptError {
    pub at: u32,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

fn drain(mailbox: &Mailbox) -> ResultBatch {
    let batch = {
        let mut g = mailbox.inner.lock();
        g.1 = false;
        std::mem::take(&mut g.0)
    };
    let mut ids = Vec::with_capacity(batch.len());
    let mut indexes = Vec::with_capacity(batch.len());
    let mut group_of = Vec::with_capacity(batch.len());
    let mut subs = Vec::with_capacity(batch.len());
    let mut groups: Vec<ResultGroup> = Vec::new();
    let mut attempt_counts = Vec::with_capacity(batch.len());
    let mut delays = Vec::with_capacity(batch.len());
    let mut durations = Vec::with_capacity(batch.len());
    let mut attempt_errors = Vec::new();
    let mut last: Option<PutResult> = None;
    let mut failures = Vec::new();
    let mut rooms = Vec::with_capacity(batch.len());
    for (id, index, outcome, room) in batch {
        rooms.push(room);
        match outcome {
            Ok(r) => {
                let same = last.as_ref().is_some_and(|l| {
                    l.sequence_number() == r.sequence_number()
                        && l.shard_id() == r.shard_id()
                        && l.is_aggregated() == r.is_aggregated()
                });
                if !same {
                    groups.push(ResultGroup {
                        shard_id: r.shard_id().to_owned(),
                        sequence_number: r.sequence_number().to_owned(),
                        aggregated: r.is_aggregated(),
                    });
                }
                attempt_counts.push(r.attempts().len() as u32);
                for a in r.attempts() {
                    if a.error_code.is_some() || a.error_message.is_some() {
                        attempt_errors.push(AttemptError {
                            at: delays.len() as u32,
                            error_code: a.error_code.clone(),
                            error_message: a.error_message.clone(),
                        });
                    }
                    delays.push(a.delay.as_secs_f64() * 1000.0);
                    durations.push(a.duration.as_secs_f64() * 1000.0);
                }
                ids.push(id);
                indexes.push(index);
                group_of.push((groups.len() - 1) as u32);
                subs.push(r.sub_sequence_number() as f64);
                last = Some(r);
            }
            Err(e) => failures.push(Delivery {
                id,
                index,
                result: None,
                error: Some(err_info(e)),
            }),
        }
    }
    ResultBatch {
        ids: Uint32Array::new(ids),
        indexes: Uint32Array::new(indexes),
        group_of: Uint32Array::new(group_of),
        sub_sequence_numbers: Float64Array::new(subs),
        groups,
        attempt_counts: Uint32Array::new(attempt_counts),
        delays_ms: Float64Array::new(delays),
        durations_ms: Float64Array::new(durations),
        attempt_errors,
        failures,
    }
}

fn make_record(
    partition_key: String,
    data: &[u8],
    stream_name: Option<String>,
    explicit_hash_key: Option<String>,
) -> UserRecord {
    let mut record = UserRecord::new(partition_key, Bytes::copy_from_slice(data));
    if let Some(s) = stream_name {
        record = record.with_stream(s);
    }
    if let Some(k) = explicit_hash_key {
        record = record.with_explicit_hash_key(k);
    }
    record
}

/// The native producer; use `Producer` from `index.js`.
#[napi]
pub struct NativeProducer {
    shared: Arc<Shared>,
}

/// Builds a configuration from `[name, value]` settings (KPL names in any
/// case style) applied over an optional properties file.
fn build_config(
    settings: Vec<Vec<String>>,
    properties_path: Option<String>,
) -> std::result::Result<Config, KplError> {
    let pairs = settings
        .into_iter()
        .map(|pair| {
            <[String; 2]>::try_from(pair)
                .map(|[n, v]| (n, v))
                .map_err(|_| {
                    KplError::new(
                        ErrorKind::InvalidConfig,
                        "settings must be [name, value] pairs",
                    )
                })
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Config::from_parts(properties_path.as_deref().map(Path::new), pairs)?.build()
}

/// Creates a producer. Resolves to the producer or to an `ErrInfo`.
/// `on_results` receives `ResultBatch`es.
#[napi(ts_return_type = "Promise<NativeProducer | ErrInfo>")]
pub fn create_producer<'env>(
    env: &'env Env,
    settings: Vec<Vec<String>>,
    properties_path: Option<String>,
    on_results: Function<'env, ResultBatch, ()>,
) -> Result<PromiseRaw<'env, Either<NativeProducer, ErrInfo>>> {
    let mailbox = Arc::new(Mailbox::default());
    let drain_from = mailbox.clone();
    let notify: ResultsFn = on_results
        .build_threadsafe_function::<()>()
        .callee_handled::<false>()
        .weak::<true>()
        .build_callback(move |_ctx| Ok(drain(&drain_from)))?;
    let config = build_config(settings, properties_path);
    env.spawn_future(async move {
        let config = match config {
            Ok(c) => c,
            Err(e) => return Ok(Either::B(err_info(e))),
        };
        Ok(match Producer::new(config).await {
            Ok(producer) => Either::A(NativeProducer {
                shared: Arc::new(Shared {
                    producer,
                    mailbox,
                    notify,
                }),
            }),
            Err(e) => Either::B(err_info(e)),
        })
    })
}

/// Checks settings without creating a producer; `null` when they are valid.
#[napi]
pub fn check_config(
    settings: Vec<Vec<String>>,
    properties_path: Option<String>,
) -> Option<ErrInfo> {
    build_config(settings, properties_path).err().map(err_info)
}

#[napi]
impl NativeProducer {
    /// Puts without waiting. `null`: accepted, the result goes to the
    /// results callback under `id`. Otherwise the error (BufferFull,
    /// InvalidRecord, ShutDown), and no result will follow.
    #[napi]
    pub fn try_put(
        &self,
        id: u32,
        partition_key: String,
        data: Uint8ArraySlice,
        stream_name: Option<String>,
        explicit_hash_key: Option<String>,
    ) -> Option<ErrInfo> {
        let record = make_record(partition_key, &data, stream_name, explicit_hash_key);
        self.shared
            .producer
            .try_put_with_room(record, self.shared.deliver(id))
            .err()
            .map(err_info)
    }

    /// Puts, waiting for buffer room. Resolves to `null` once the record
    /// was accepted (its result follows through the callback), or to the
    /// error.
    #[napi(ts_return_type = "Promise<ErrInfo | null>")]
    pub fn put_wait<'env>(
        &self,
        env: &'env Env,
        id: u32,
        partition_key: String,
        data: Uint8ArraySlice,
        stream_name: Option<String>,
        explicit_hash_key: Option<String>,
    ) -> Result<PromiseRaw<'env, Option<ErrInfo>>> {
        let record = make_record(partition_key, &data, stream_name, explicit_hash_key);
        let shared = self.shared.clone();
        env.spawn_future(async move {
            let callback = shared.deliver(id);
            Ok(shared
                .producer
                .put_with_room(record, callback)
                .await
                .err()
                .map(err_info))
        })
    }

    /// Puts a batch of records, waiting for buffer room as needed, with
    /// ONE result callback for all of them. `packed` holds, per record, its
    /// partition key (UTF-8) then its data; record `i`'s key is
    /// `packed[offsets[2i]..offsets[2i + 1]]` and its data
    /// `packed[offsets[2i + 1]..offsets[2i + 2]]`. The batch crosses as
    /// one copy (no string conversion per record), and each record's data
    /// is a slice of it. `streams` / `explicit_hash_keys`, when given, hold
    /// one entry per record. Every record's outcome (refusals included)
    /// goes to the results callback under `id`, with the record's position
    /// as its index. Resolves once every record was admitted or refused.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn put_many<'env>(
        &self,
        env: &'env Env,
        id: u32,
        packed: Uint8ArraySlice,
        offsets: Uint32Array,
        streams: Option<Vec<Option<String>>>,
        explicit_hash_keys: Option<Vec<Option<String>>>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let n = offsets.len().saturating_sub(1) / 2;
        if offsets.len() != 2 * n + 1
            || streams.as_ref().is_some_and(|s| s.len() != n)
            || explicit_hash_keys.as_ref().is_some_and(|s| s.len() != n)
            || offsets.windows(2).any(|w| w[0] > w[1])
            || offsets
                .last()
                .is_some_and(|&end| end as usize > packed.len())
        {
            return Err(Error::from_reason("putMany: inconsistent batch"));
        }
        let end = offsets.last().copied().unwrap_or(0) as usize;
        let all = Bytes::copy_from_slice(&packed[..end]);
        let mut streams = streams.map(Vec::into_iter);
        let mut ehks = explicit_hash_keys.map(Vec::into_iter);
        let mut records = Vec::with_capacity(n);
        for i in 0..n {
            let at = |k: usize| offsets[2 * i + k] as usize;
            let key = std::str::from_utf8(&all[at(0)..at(1)])
                .map_err(|_| Error::from_reason("putMany: a partition key is not UTF-8"))?
                .to_owned();
            let mut record = UserRecord::new(key, all.slice(at(1)..at(2)));
            if let Some(s) = streams.as_mut().and_then(Iterator::next).flatten() {
                record = record.with_stream(s);
            }
            if let Some(k) = ehks.as_mut().and_then(Iterator::next).flatten() {
                record = record.with_explicit_hash_key(k);
            }
            records.push(record);
        }
        let shared = self.shared.clone();
        env.spawn_future(async move {
            let to = shared.clone();
            let callback = move |index: usize, outcome: Outcome, room: Room| {
                to.post(id, index as u32, outcome, room)
            };
            Producer::put_many_with_room(&shared.producer, records, callback).await;
            Ok(())
        })
    }

    /// Sends everything buffered; resolves when every record put before
    /// has its result. `null` or the error.
    #[napi(ts_return_type = "Promise<ErrInfo | null>")]
    pub fn flush<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Option<ErrInfo>>> {
        let shared = self.shared.clone();
        env.spawn_future(async move { Ok(shared.producer.flush().await.err().map(err_info)) })
    }

    /// Flushes (at most `timeout_ms`), then stops the pipeline.
    #[napi(ts_return_type = "Promise<ErrInfo | null>")]
    pub fn close<'env>(
        &self,
        env: &'env Env,
        timeout_ms: f64,
    ) -> Result<PromiseRaw<'env, Option<ErrInfo>>> {
        let shared = self.shared.clone();
        let timeout = Duration::from_secs_f64(timeout_ms.max(0.0) / 1000.0);
        env.spawn_future(
            async move { Ok(shared.producer.shutdown(timeout).await.err().map(err_info)) },
        )
    }

    /// Records put and not yet resolved.
    #[napi]
    pub fn outstanding(&self) -> f64 {
        self.shared.producer.outstanding() as f64
    }

    /// The metrics, by the KPL's names.
    #[napi(ts_return_type = "Record<string, any>")]
    pub fn metrics(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self.shared.producer.metrics())
            .map_err(|e| Error::from_reason(e.to_string()))
    }

    /// The effective configuration, as KPL names and text values.
    #[napi(ts_return_type = "Record<string, string>")]
    pub fn config(&self) -> serde_json::Value {
        self.shared
            .producer
            .config()
            .entries()
            .into_iter()
            .filter(|(name, _)| !name.starts_with("Aws"))
            .map(|(name, value)| (name.to_owned(), serde_json::Value::String(value)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// Deaggregates one Kinesis record by the KCL's rules. Returns the user
/// records or an `ErrInfo`.
#[napi(ts_return_type = "Array<DeaggregatedJs> | ErrInfo")]
pub fn deaggregate(
    partition_key: String,
    explicit_hash_key: Option<String>,
    data: Uint8ArraySlice,
) -> Either<Vec<DeaggregatedJs>, ErrInfo> {
    let bytes = Bytes::copy_from_slice(&data);
    match kpl_core::aggregation::deaggregate(&partition_key, explicit_hash_key.as_deref(), bytes) {
        Ok(records) => Either::A(
            records
                .into_iter()
                .map(|r| DeaggregatedJs {
                    partition_key: r.partition_key,
                    explicit_hash_key: r.explicit_hash_key,
                    data: Buffer::from(r.data.to_vec()),
                    sub_sequence_number: r.sub_sequence_number as f64,
                    aggregated: r.aggregated,
                })
                .collect(),
        ),
        Err(e) => Either::B(err_info(e)),
    }
}

//! `NativeProducer`: puts, flush, close, metrics and configuration.

use std::sync::Arc;

use bytes::Bytes;
use kpl_core::{Error as KplError, ErrorKind, Producer, Room, UserRecord};
use kpl_host::record::from_parts;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use parking_lot::Mutex;

use kpl_host::mailbox::Mailbox;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;

use crate::results::{Posted, ResultsFn};
use crate::types::{ErrInfo, Outcome, err_info};

/// What the producer and its result callbacks share.
pub(crate) struct Shared {
    pub(crate) producer: Producer,
    pub(crate) mailbox: Arc<Mailbox<Posted>>,
    pub(crate) notify: ResultsFn,
}

impl Shared {
    /// The result callback handed to kpl-core; runs on the pipeline task.
    pub(crate) fn deliver(
        self: &Arc<Self>,
        id: u32,
    ) -> impl FnOnce(Outcome, Room) + Send + 'static {
        let shared = self.clone();
        move |outcome, room| shared.post(id, 0, outcome, room)
    }

    /// Queues one outcome for the JS thread; runs on the pipeline task.
    pub(crate) fn post(&self, id: u32, index: u32, outcome: Outcome, room: Room) {
        // The mailbox never closes: a post always goes in.
        if let Ok(true) = self.mailbox.post((id, index, outcome, room)) {
            // Non-blocking; the queue is unbounded, so this only fails
            // when the environment is closing (process exit).
            let _ = self
                .notify
                .call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

/// The native producer; use `Producer` from `index.js`.
#[napi]
pub struct NativeProducer {
    pub(crate) shared: Arc<Shared>,
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
        let record = from_parts(
            stream_name.map(Into::into),
            partition_key,
            explicit_hash_key,
            Bytes::copy_from_slice(&data),
        );
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
        let record = from_parts(
            stream_name.map(Into::into),
            partition_key,
            explicit_hash_key,
            Bytes::copy_from_slice(&data),
        );
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
    /// as its index. Returns `undefined` when every record was admitted (or
    /// refused) at once, which is the usual case; else a promise that
    /// resolves once the rest, which found the buffer full, were admitted
    /// or refused, in order.
    #[napi(ts_return_type = "Promise<void> | undefined")]
    pub fn put_many<'env>(
        &self,
        env: &'env Env,
        id: u32,
        packed: Uint8ArraySlice,
        offsets: Uint32Array,
        streams: Option<Vec<Option<String>>>,
        explicit_hash_keys: Option<Vec<Option<String>>>,
    ) -> Result<Option<PromiseRaw<'env, ()>>> {
        let records = unpack_batch(&packed, &offsets, streams, explicit_hash_keys)?;
        let shared = self.shared.clone();
        if shared.producer.config().spool_directory.is_some() {
            // A spooled put may wait for its fsync: never on the JS thread.
            return self.put_many_later(env, id, records, None).map(Some);
        }
        // Admit at once what fits, without a trip through the runtime; the
        // first record that finds the buffer full comes back here with the
        // rest of the batch after it (kpl-core keeps them in order).
        let no_room: Arc<Mutex<Vec<(usize, KplError)>>> = Arc::default();
        let callback = {
            let no_room = no_room.clone();
            move |index: usize, outcome: Outcome, room: Room| match outcome {
                Err(e) if e.kind() == ErrorKind::BufferFull => no_room.lock().push((index, e)),
                outcome => shared.post(id, index as u32, outcome, room),
            }
        };
        self.shared
            .producer
            .try_put_many_with_room(records, callback);
        let mut no_room = std::mem::take(&mut *no_room.lock());
        if no_room.is_empty() {
            return Ok(None);
        }
        no_room.sort_unstable_by_key(|(index, _)| *index);
        let positions = no_room.iter().map(|(index, _)| *index as u32).collect();
        let rest = no_room
            .into_iter()
            .map(|(_, e)| e.into_record().expect("BufferFull hands the record back"))
            .collect();
        self.put_many_later(env, id, rest, Some(positions))
            .map(Some)
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
        let timeout = kpl_host::timeout::from_millis_f64(timeout_ms);
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
        crate::entries(self.shared.producer.config())
    }
}

impl NativeProducer {
    /// `records` on a task that waits for buffer room for each, in order;
    /// record `k`'s outcome goes under index `positions[k]` (or `k`).
    fn put_many_later<'env>(
        &self,
        env: &'env Env,
        id: u32,
        records: Vec<UserRecord>,
        positions: Option<Vec<u32>>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let shared = self.shared.clone();
        env.spawn_future(async move {
            let to = shared.clone();
            let callback = move |k: usize, outcome: Outcome, room: Room| {
                let index = positions.as_ref().map_or(k as u32, |p| p[k]);
                to.post(id, index, outcome, room)
            };
            Producer::put_many_with_room(&shared.producer, records, callback).await;
            Ok(())
        })
    }
}

/// The records of a packed batch (see [`NativeProducer::put_many`]).
fn unpack_batch(
    packed: &[u8],
    offsets: &[u32],
    streams: Option<Vec<Option<String>>>,
    explicit_hash_keys: Option<Vec<Option<String>>>,
) -> Result<Vec<UserRecord>> {
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
        let stream = streams.as_mut().and_then(Iterator::next).flatten();
        let ehk = ehks.as_mut().and_then(Iterator::next).flatten();
        records.push(from_parts(
            stream.map(Into::into),
            key,
            ehk,
            all.slice(at(1)..at(2)),
        ));
    }
    Ok(records)
}

//! `NativeProducer`: puts, flush, close, metrics and configuration.

use std::sync::Arc;

use bytes::Bytes;
use kpl_core::{Producer, Room};
use kpl_host::record::from_parts;
use napi::bindgen_prelude::*;
use napi_derive::napi;

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
            let stream = streams.as_mut().and_then(Iterator::next).flatten();
            let ehk = ehks.as_mut().and_then(Iterator::next).flatten();
            records.push(from_parts(
                stream.map(Into::into),
                key,
                ehk,
                all.slice(at(1)..at(2)),
            ));
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

//! `NativeProducer`: puts, flush, close, metrics and configuration.

use std::sync::Arc;

use bytes::Bytes;
use kpl_core::{Producer, Room};
use kpl_host::mailbox::Mailbox;
use kpl_host::record::from_parts;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;

use crate::admission::{Admission, Chunk, check_layout};
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
        if let Ok(true) = self.mailbox.post_holding((id, index, outcome), room) {
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
    pub(crate) admission: Admission,
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
            &partition_key,
            explicit_hash_key.as_deref(),
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
            &partition_key,
            explicit_hash_key.as_deref(),
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
    /// one entry per record. The records are admitted on the runtime, after
    /// every batch handed over before (see `admission`); every record's
    /// outcome (refusals included) goes to the results callback under
    /// `id`, with the record's position as its index. Returns `undefined`
    /// when the caller may hand over the next batch at once, which is the
    /// usual case; else a promise that resolves once this batch was
    /// admitted (the buffer or the queue before it is full: backpressure).
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
        check_layout(
            &packed,
            &offsets,
            streams.as_deref(),
            explicit_hash_keys.as_deref(),
        )
        .map_err(Error::from_reason)?;
        let end = offsets.last().copied().unwrap_or(0) as usize;
        let chunk = Chunk {
            id,
            // `packed` is reused by the JS side for its next batch.
            packed: Bytes::copy_from_slice(&packed[..end]),
            offsets: offsets.to_vec(),
            streams,
            explicit_hash_keys,
        };
        match self.admission.send(chunk) {
            None => Ok(None),
            Some(admitted) => env
                .spawn_future(async move {
                    let _ = admitted.await;
                    Ok(())
                })
                .map(Some),
        }
    }

    /// Sends everything buffered; resolves when every record put before
    /// has its result. `null` or the error.
    #[napi(ts_return_type = "Promise<ErrInfo | null>")]
    pub fn flush<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Option<ErrInfo>>> {
        let shared = self.shared.clone();
        let admitted = self.admission.barrier();
        env.spawn_future(async move {
            let _ = admitted.await;
            Ok(shared.producer.flush().await.err().map(err_info))
        })
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
        let admitted = self.admission.barrier();
        env.spawn_future(async move {
            // Records put before may still wait for buffer room, which a
            // stalled stream never gives back: they get the timeout's
            // time, then fail with ShutDown as the shutdown closes the
            // buffer.
            let started = tokio::time::Instant::now();
            let _ = tokio::time::timeout(timeout, admitted).await;
            let left = timeout.saturating_sub(started.elapsed());
            Ok(shared.producer.shutdown(left).await.err().map(err_info))
        })
    }

    /// Records put and not yet resolved.
    #[napi]
    pub fn outstanding(&self) -> f64 {
        // A record can count twice for a moment: admitted, and its batch
        // not yet done.
        (self.shared.producer.outstanding() + self.admission.queued() as u64) as f64
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

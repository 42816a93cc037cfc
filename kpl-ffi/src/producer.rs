//! `kpl_producer`: puts with delivery callbacks, flush, shutdown, metrics.

use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;
use kpl_core::{Producer, UserRecord};
use kpl_host::record::{StreamNames, from_parts};
use kpl_host::timeout;

use crate::config::{config_ref, kpl_config};
use crate::delivery::{delivery, kpl_delivery_callback};
use crate::error::{self, code, fail_with, guard, kpl_error};
use crate::runtime;
use crate::{bytes, utf8, utf8_opt};

/// A producer (opaque). Thread-safe: any number of threads may put, flush
/// and read metrics on one producer at the same time. Only
/// `kpl_producer_free` must not race with other calls on the same handle.
pub struct kpl_producer {
    inner: Producer,
    /// Stream names of puts, so repeated names share one string.
    streams: StreamNames,
}

/// # Safety
/// `p` is NULL or a live producer.
unsafe fn producer_ref<'a>(p: *const kpl_producer) -> Result<&'a kpl_producer, kpl_error> {
    // SAFETY: per the contract.
    unsafe { p.as_ref() }
        .ok_or_else(|| error::fail(kpl_error::KPL_ERR_INVALID_ARGUMENT, "producer is NULL"))
}

/// Creates a producer from `config` (copied; free it whenever you like)
/// and stores it in `*out`. Starts the library's runtime on first use.
///
/// Returns `KPL_ERR_INVALID_CONFIG` when the settings do not form a valid
/// configuration (e.g. missing credentials or region are reported here or,
/// if resolved lazily, on the first request).
///
/// # Safety
/// `config` is NULL or a live config; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_producer_new(
    config: *const kpl_config,
    out: *mut *mut kpl_producer,
) -> kpl_error {
    guard(|| {
        code((|| {
            // SAFETY: `out` is NULL or writable per the contract.
            unsafe { error::clear_out(out)? };
            // SAFETY: per the contract.
            let config = unsafe { config_ref(config)? };
            runtime::check_may_block("kpl_producer_new")?;
            let config = config.builder.clone().build().map_err(|e| fail_with(&e))?;
            let producer = runtime::get()?
                .block_on(Producer::new(config))
                .map_err(|e| fail_with(&e))?;
            let handle = Box::new(kpl_producer {
                inner: producer,
                streams: StreamNames::default(),
            });
            // SAFETY: as above.
            unsafe { *out = Box::into_raw(handle) };
            Ok(())
        })())
    })
}

/// Builds the record from the C arguments (everything copied; a key of up
/// to 24 bytes is copied into the record itself, without an allocation).
///
/// # Safety
/// As for `kpl_producer_put`.
unsafe fn record(
    p: &kpl_producer,
    stream: *const c_char,
    partition_key: *const c_char,
    explicit_hash_key: *const c_char,
    data: *const u8,
    data_len: usize,
) -> Result<UserRecord, kpl_error> {
    // SAFETY: per the contract of the put functions.
    let (stream, key, ehk, data) = unsafe {
        (
            utf8_opt(stream, "stream")?,
            utf8(partition_key, "partition_key")?,
            utf8_opt(explicit_hash_key, "explicit_hash_key")?,
            bytes(data, data_len, "data")?,
        )
    };
    Ok(from_parts(
        stream.map(|s| p.streams.intern(s)),
        key,
        ehk,
        Bytes::copy_from_slice(data),
    ))
}

/// Puts a record, blocking the calling thread while the producer's buffer
/// is full: at most `timeout_ms` milliseconds (0 = no limit), then
/// `KPL_ERR_BUFFER_FULL`.
///
/// - `stream`: NULL for the producer's default stream (`StreamName`).
/// - `partition_key`: required, 1..256 characters.
/// - `explicit_hash_key`: NULL, or a decimal 128-bit hash key.
/// - `data`, `data_len`: the payload (NULL allowed when `data_len` is 0).
///
/// All strings are NUL-terminated UTF-8 (else `KPL_ERR_INVALID_ARGUMENT`).
/// Everything is copied before this returns. On `KPL_OK` the record was
/// accepted and `callback` (may be NULL) will be called exactly once with
/// its result, on a library thread; on any other code the record was not
/// accepted and `callback` is never called.
///
/// Must not be called from a delivery callback (`KPL_ERR_INVALID_ARGUMENT`).
///
/// # Safety
/// `producer` is NULL or live; strings are NULL or NUL-terminated;
/// `data` points to `data_len` readable bytes; `user_data` may be used
/// from a library thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_producer_put(
    producer: *const kpl_producer,
    stream: *const c_char,
    partition_key: *const c_char,
    explicit_hash_key: *const c_char,
    data: *const u8,
    data_len: usize,
    timeout_ms: u64,
    callback: kpl_delivery_callback,
    user_data: *mut c_void,
) -> kpl_error {
    guard(|| {
        code((|| {
            // SAFETY: per the contract.
            let p = unsafe { producer_ref(producer)? };
            // SAFETY: per the contract.
            let record =
                unsafe { record(p, stream, partition_key, explicit_hash_key, data, data_len)? };
            runtime::check_may_block("kpl_producer_put")?;
            p.inner
                .put_blocking_with(
                    record,
                    timeout::from_millis(timeout_ms),
                    delivery(callback, user_data),
                )
                .map_err(|e| fail_with(&e))
        })())
    })
}

/// Like `kpl_producer_put`, but never waits: a full buffer fails at once
/// with `KPL_ERR_BUFFER_FULL` (the record is not accepted; put it again
/// later). May be called from a delivery callback.
///
/// # Safety
/// As `kpl_producer_put`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_producer_try_put(
    producer: *const kpl_producer,
    stream: *const c_char,
    partition_key: *const c_char,
    explicit_hash_key: *const c_char,
    data: *const u8,
    data_len: usize,
    callback: kpl_delivery_callback,
    user_data: *mut c_void,
) -> kpl_error {
    guard(|| {
        code((|| {
            // SAFETY: per the contract.
            let p = unsafe { producer_ref(producer)? };
            // SAFETY: per the contract.
            let record =
                unsafe { record(p, stream, partition_key, explicit_hash_key, data, data_len)? };
            p.inner
                .try_put_with(record, delivery(callback, user_data))
                .map_err(|e| fail_with(&e))
        })())
    })
}

/// Sends everything buffered now and waits until every record put before
/// this call has its result (its callback has returned), at most
/// `timeout_ms` milliseconds (0 = no limit), then `KPL_ERR_TIMEOUT`.
///
/// # Safety
/// `producer` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_producer_flush(
    producer: *const kpl_producer,
    timeout_ms: u64,
) -> kpl_error {
    guard(|| {
        code((|| {
            // SAFETY: per the contract.
            let p = unsafe { producer_ref(producer)? };
            runtime::check_may_block("kpl_producer_flush")?;
            let flush = p.inner.flush();
            let runtime = runtime::get()?;
            let done = match timeout::from_millis(timeout_ms) {
                None => runtime.block_on(flush),
                Some(t) => runtime
                    .block_on(async { tokio::time::timeout(t, flush).await })
                    .map_err(|_| {
                        error::fail(
                            kpl_error::KPL_ERR_TIMEOUT,
                            format!(
                                "flush timed out after {timeout_ms} ms with {} record(s) outstanding",
                                p.inner.outstanding()
                            ),
                        )
                    })?,
            };
            done.map_err(|e| fail_with(&e))
        })())
    })
}

fn shutdown(p: &kpl_producer, timeout_ms: u64) -> Result<(), kpl_error> {
    let t = timeout::or_forever(timeout::from_millis(timeout_ms));
    runtime::get()?
        .block_on(p.inner.shutdown(t))
        .map_err(|e| error::fail(kpl_error::KPL_ERR_TIMEOUT, e.to_string()))
}

/// Stops accepting records, flushes (at most `timeout_ms`, 0 = no limit)
/// and stops the producer's pipeline. Records not resolved in time fail
/// with `KPL_ERR_SHUT_DOWN` through their callbacks, and this returns
/// `KPL_ERR_TIMEOUT`. Later puts fail with `KPL_ERR_SHUT_DOWN`. The handle
/// stays valid until `kpl_producer_free`. A second call returns `KPL_OK`.
///
/// # Safety
/// `producer` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_producer_shutdown(
    producer: *const kpl_producer,
    timeout_ms: u64,
) -> kpl_error {
    guard(|| {
        code((|| {
            // SAFETY: per the contract.
            let p = unsafe { producer_ref(producer)? };
            runtime::check_may_block("kpl_producer_shutdown")?;
            shutdown(p, timeout_ms)
        })())
    })
}

/// Shuts the producer down (as `kpl_producer_shutdown` with `timeout_ms`:
/// every callback has run when this returns) and frees it. NULL is allowed
/// (`KPL_OK`). Returns `KPL_ERR_TIMEOUT` when records had to be failed;
/// the handle is freed in every case. Called from a delivery callback, the
/// shutdown continues in the background and this returns at once.
///
/// # Safety
/// `producer` is NULL or live, not used by any other thread during or
/// after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_producer_free(
    producer: *mut kpl_producer,
    timeout_ms: u64,
) -> kpl_error {
    if producer.is_null() {
        return kpl_error::KPL_OK;
    }
    // SAFETY: from kpl_producer_new, per the contract.
    let p = unsafe { Box::from_raw(producer) };
    guard(move || {
        if tokio::runtime::Handle::try_current().is_ok() {
            let t = timeout::or_forever(timeout::from_millis(timeout_ms));
            let inner = p.inner.clone();
            return match runtime::get() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        let _ = inner.shutdown(t).await;
                    });
                    kpl_error::KPL_OK
                }
                Err(code) => code,
            };
        }
        code(shutdown(&p, timeout_ms))
    })
}

/// Records put and not yet resolved (0 for NULL).
///
/// # Safety
/// `producer` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_producer_outstanding(producer: *const kpl_producer) -> u64 {
    // SAFETY: per the contract.
    match unsafe { producer.as_ref() } {
        Some(p) => catch_unwind(AssertUnwindSafe(|| p.inner.outstanding())).unwrap_or(0),
        None => 0,
    }
}

/// The producer's metrics as a JSON object with the KPL's metric names
/// (`UserRecordsPut`, `KinesisRecordsPut`, `ErrorsByCode`, ...), stored in
/// `*out`; free it with `kpl_string_free`.
///
/// # Safety
/// `producer` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_producer_metrics_json(
    producer: *const kpl_producer,
    out: *mut *mut c_char,
) -> kpl_error {
    guard(|| {
        code((|| {
            // SAFETY: `out` is NULL or writable per the contract.
            unsafe { error::clear_out(out)? };
            // SAFETY: per the contract.
            let p = unsafe { producer_ref(producer)? };
            let json = serde_json::to_string(&p.inner.metrics())
                .map_err(|e| error::fail(kpl_error::KPL_ERR_INTERNAL, e.to_string()))?;
            // SAFETY: checked above.
            unsafe { error::give_string(out, json) }
        })())
    })
}

/// Frees a string kpl returned (`kpl_producer_metrics_json`). NULL is allowed.
///
/// # Safety
/// `s` is NULL or a string from kpl, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: from CString::into_raw, per the contract.
        drop(unsafe { std::ffi::CString::from_raw(s) });
    }
}

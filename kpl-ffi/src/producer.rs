//! `kpl_producer`: puts with delivery callbacks, flush, shutdown, metrics.

use std::cell::RefCell;
use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kpl_core::{Attempt, Error, Producer, PutResult, UserRecord};

use crate::config::kpl_config;
use crate::error::{self, code, code_of, fail_with, guard, kpl_error};
use crate::runtime;
use crate::{bytes, utf8, utf8_opt};

/// A producer (opaque). Thread-safe: any number of threads may put, flush
/// and read metrics on one producer at the same time. Only
/// `kpl_producer_free` must not race with other calls on the same handle.
pub struct kpl_producer {
    inner: Producer,
    /// The last stream named in a put, so repeated names share one string.
    last_stream: std::sync::Mutex<Option<Arc<str>>>,
}

/// One attempt at delivering a record, as the KPL reports it.
#[repr(C)]
pub struct kpl_attempt {
    /// Milliseconds from the previous attempt's end (or from the put) to
    /// this attempt's start.
    pub delay_ms: u64,
    /// Milliseconds the request took.
    pub duration_ms: u64,
    /// The service's or transport's error code; NULL for a successful attempt.
    pub error_code: *const c_char,
    /// The error's message; NULL for a successful attempt.
    pub error_message: *const c_char,
}

/// The outcome of one record, passed to the delivery callback.
///
/// Everything it points to is valid only during the callback: copy what
/// you need to keep.
#[repr(C)]
pub struct kpl_result {
    /// true: Kinesis stored the record (then `error` is `KPL_OK`).
    pub success: bool,
    /// Why the record failed; `KPL_OK` on success.
    pub error: kpl_error,
    /// The failure's message; NULL on success.
    pub error_message: *const c_char,
    /// The service's error code of the failure (e.g.
    /// `"ResourceNotFoundException"`), when there is one; else NULL.
    pub error_code: *const c_char,
    /// The shard the record was written to; NULL on failure.
    pub shard_id: *const c_char,
    /// The sequence number of the Kinesis record that holds the record;
    /// NULL on failure.
    pub sequence_number: *const c_char,
    /// The record's position in its aggregate (0 when not aggregated).
    pub sub_sequence_number: u64,
    /// Whether the record travelled in an aggregate of two or more.
    pub aggregated: bool,
    /// Every attempt made, oldest first (the last one successful on
    /// success). NULL when `attempt_count` is 0.
    pub attempts: *const kpl_attempt,
    /// Number of entries in `attempts`.
    pub attempt_count: usize,
    /// On failure, the failed record's partition key (handed back so it can
    /// be put again); NULL on success.
    pub partition_key: *const c_char,
    /// On failure, the failed record's data; NULL on success.
    pub data: *const u8,
    /// Length of `data` in bytes.
    pub data_len: usize,
}

/// The delivery callback: called exactly once per accepted record with its
/// result and the `user_data` given to the put.
///
/// It runs on a kpl library thread (a worker of the library's runtime,
/// named `kpl-worker`), never on the thread that called put, and directly
/// on the producer's pipeline task: while it runs, that producer's
/// pipeline waits. Keep it short (count, copy, signal), never block in it,
/// and do not call blocking functions (`kpl_producer_put`,
/// `kpl_producer_flush`, `kpl_producer_shutdown`, `kpl_producer_new`) from
/// it: they fail with `KPL_ERR_INVALID_ARGUMENT` there.
/// `kpl_producer_try_put`, `kpl_producer_outstanding` and
/// `kpl_producer_metrics_json` are allowed. Hand heavier work to a thread
/// of your own.
pub type kpl_delivery_callback =
    Option<unsafe extern "C" fn(result: *const kpl_result, user_data: *mut c_void)>;

/// The C callback and its user data, moved to the pipeline task.
struct Delivery {
    callback: unsafe extern "C" fn(*const kpl_result, *mut c_void),
    user_data: *mut c_void,
}

// SAFETY: the caller of put promises that `user_data` may be used from the
// library thread the callback runs on (documented in kpl.h).
unsafe impl Send for Delivery {}

#[derive(Default)]
struct Scratch {
    text: Vec<u8>,
    attempts: Vec<kpl_attempt>,
}

thread_local! {
    /// Reused per library thread so a result costs no allocation.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Where a string was put in the scratch text, before pointers are taken.
#[derive(Clone, Copy)]
struct Slot(Option<usize>);

impl Scratch {
    fn push(&mut self, s: Option<&str>) -> Slot {
        Slot(s.map(|s| {
            let at = self.text.len();
            self.text.extend(s.bytes().filter(|&b| b != 0));
            self.text.push(0);
            at
        }))
    }

    fn ptr(&self, slot: Slot) -> *const c_char {
        match slot.0 {
            Some(at) => self.text[at..].as_ptr().cast(),
            None => std::ptr::null(),
        }
    }
}

impl Delivery {
    fn deliver(self, outcome: Result<PutResult, Error>) {
        // A panic must not unwind into the pipeline task.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
                Ok(mut s) => self.call(&mut s, &outcome),
                Err(_) => self.call(&mut Scratch::default(), &outcome),
            })
        }));
    }

    fn call(&self, s: &mut Scratch, outcome: &Result<PutResult, Error>) {
        s.text.clear();
        s.attempts.clear();
        let attempts: &[Attempt] = match outcome {
            Ok(r) => r.attempts(),
            Err(e) => e.attempts(),
        };
        let mut slots = Vec::new();
        if attempts.iter().any(|a| !a.is_success()) {
            slots.reserve(attempts.len());
            for a in attempts {
                slots.push((
                    s.push(a.error_code.as_deref()),
                    s.push(a.error_message.as_deref()),
                ));
            }
        }
        let mut result = kpl_result {
            success: outcome.is_ok(),
            error: kpl_error::KPL_OK,
            error_message: std::ptr::null(),
            error_code: std::ptr::null(),
            shard_id: std::ptr::null(),
            sequence_number: std::ptr::null(),
            sub_sequence_number: 0,
            aggregated: false,
            attempts: std::ptr::null(),
            attempt_count: attempts.len(),
            partition_key: std::ptr::null(),
            data: std::ptr::null(),
            data_len: 0,
        };
        match outcome {
            Ok(r) => {
                let shard = s.push(Some(r.shard_id()));
                let seq = s.push(Some(r.sequence_number()));
                result.shard_id = s.ptr(shard);
                result.sequence_number = s.ptr(seq);
                result.sub_sequence_number = r.sub_sequence_number();
                result.aggregated = r.is_aggregated();
            }
            Err(e) => {
                let message = s.push(Some(&e.to_string()));
                let service_code = s.push(e.code());
                let key = s.push(e.record().map(|r| r.partition_key()));
                result.error = code_of(e.kind());
                result.error_message = s.ptr(message);
                result.error_code = s.ptr(service_code);
                result.partition_key = s.ptr(key);
                if let Some(r) = e.record() {
                    result.data = r.data().as_ptr();
                    result.data_len = r.data().len();
                }
            }
        }
        // Pointers into `text` are taken only now that it no longer grows.
        for (i, a) in attempts.iter().enumerate() {
            let (code, message) = slots
                .get(i)
                .map(|&(c, m)| (s.ptr(c), s.ptr(m)))
                .unwrap_or((std::ptr::null(), std::ptr::null()));
            s.attempts.push(kpl_attempt {
                delay_ms: millis(a.delay),
                duration_ms: millis(a.duration),
                error_code: code,
                error_message: message,
            });
        }
        if !s.attempts.is_empty() {
            result.attempts = s.attempts.as_ptr();
        }
        // SAFETY: the callback was given by the caller for this purpose;
        // `result` and everything it points to live until it returns.
        unsafe { (self.callback)(&result, self.user_data) };
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
            let config = unsafe { config.as_ref() }.ok_or_else(|| {
                error::fail(kpl_error::KPL_ERR_INVALID_ARGUMENT, "config is NULL")
            })?;
            runtime::check_may_block("kpl_producer_new")?;
            let config = config.builder.clone().build().map_err(|e| fail_with(&e))?;
            let producer = runtime::get()
                .block_on(Producer::new(config))
                .map_err(|e| fail_with(&e))?;
            let handle = Box::new(kpl_producer {
                inner: producer,
                last_stream: std::sync::Mutex::new(None),
            });
            // SAFETY: as above.
            unsafe { *out = Box::into_raw(handle) };
            Ok(())
        })())
    })
}

/// Builds the record from the C arguments (everything copied).
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
    let mut record = UserRecord::new(key, Bytes::copy_from_slice(data));
    if let Some(stream) = stream {
        let mut last = p.last_stream.lock().unwrap_or_else(|e| e.into_inner());
        let name = match &*last {
            Some(s) if &**s == stream => s.clone(),
            _ => {
                let s: Arc<str> = Arc::from(stream);
                *last = Some(s.clone());
                s
            }
        };
        record = record.with_stream(name);
    }
    if let Some(ehk) = ehk {
        record = record.with_explicit_hash_key(ehk);
    }
    Ok(record)
}

fn delivery(
    callback: kpl_delivery_callback,
    user_data: *mut c_void,
) -> impl FnOnce(Result<PutResult, Error>) + Send + 'static {
    let delivery = callback.map(|callback| Delivery {
        callback,
        user_data,
    });
    move |outcome| {
        if let Some(d) = delivery {
            d.deliver(outcome);
        }
    }
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
                    runtime::timeout(timeout_ms),
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
            let done = match runtime::timeout(timeout_ms) {
                None => runtime::get().block_on(flush),
                Some(t) => runtime::get()
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
    // 0 = no limit: a century stands in for forever.
    let t = runtime::timeout(timeout_ms).unwrap_or(Duration::from_secs(100 * 365 * 86_400));
    runtime::get()
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
            let t = runtime::timeout(timeout_ms).unwrap_or(Duration::from_secs(100 * 365 * 86_400));
            let inner = p.inner.clone();
            runtime::get().spawn(async move {
                let _ = inner.shutdown(t).await;
            });
            return kpl_error::KPL_OK;
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
            let json = std::ffi::CString::new(json)
                .map_err(|e| error::fail(kpl_error::KPL_ERR_INTERNAL, e.to_string()))?;
            // SAFETY: as above.
            unsafe { *out = json.into_raw() };
            Ok(())
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

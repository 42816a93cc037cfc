//! `kpl_result` and the delivery callback: one record's outcome as C sees
//! it, built in a per-thread scratch buffer so a result allocates nothing.

use std::cell::RefCell;
use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use kpl_core::{Attempt, Error, PutResult};
use kpl_host::timeout::millis;

use crate::error::{code_of, kpl_error};

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
    /// On failure, the record's stream (its own or `StreamName`); NULL on success.
    pub stream: *const c_char,
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
            stream: std::ptr::null(),
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
                let stream = s.push(e.record().and_then(|r| r.stream()));
                result.error = code_of(e.kind());
                result.error_message = s.ptr(message);
                result.error_code = s.ptr(service_code);
                result.partition_key = s.ptr(key);
                result.stream = s.ptr(stream);
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

pub(crate) fn delivery(
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

//! Results towards the JS thread: kpl-host's mailbox per producer, drained
//! by the JS thread as one columnar `ResultBatch`.

use kpl_core::PutResult;
use kpl_host::mailbox::Mailbox;
use kpl_host::timeout::millis_f64;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;

use crate::types::{Delivery, Outcome, err_info};

/// An outcome for the JS thread: `(id, index in the batch, outcome)`. Its
/// record's buffer room waits in the mailbox beside it, given back once
/// the JS thread took the batch (so a busy event loop makes puts wait
/// instead of queueing unbounded).
pub(crate) type Posted = (u32, u32, Outcome);

pub(crate) type ResultsFn = ThreadsafeFunction<(), (), ResultBatch, Status, false, true>;

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
    /// Per delivered record, where its attempts start in `delays_ms` /
    /// `durations_ms`, and one more entry: the end of the last record's
    /// (record `i` had `attempt_starts[i + 1] - attempt_starts[i]`).
    pub attempt_starts: Uint32Array,
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

/// Everything in the mailbox as one batch (the JS thread takes all).
pub(crate) fn drain(mailbox: &Mailbox<Posted>) -> ResultBatch {
    let taken = mailbox.take(usize::MAX);
    // Given back as this returns, with the batch on its way to JS.
    let _room = taken.room;
    let batch = taken.items;
    let mut ids = Vec::with_capacity(batch.len());
    let mut indexes = Vec::with_capacity(batch.len());
    let mut group_of = Vec::with_capacity(batch.len());
    let mut subs = Vec::with_capacity(batch.len());
    let mut groups: Vec<ResultGroup> = Vec::new();
    let mut attempt_starts = Vec::with_capacity(batch.len() + 1);
    let mut delays = Vec::with_capacity(batch.len());
    let mut durations = Vec::with_capacity(batch.len());
    let mut attempt_errors = Vec::new();
    let mut last: Option<PutResult> = None;
    let mut failures = Vec::new();
    for (id, index, outcome) in batch {
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
                attempt_starts.push(delays.len() as u32);
                for a in r.attempts() {
                    if a.error_code.is_some() || a.error_message.is_some() {
                        attempt_errors.push(AttemptError {
                            at: delays.len() as u32,
                            error_code: a.error_code.clone(),
                            error_message: a.error_message.clone(),
                        });
                    }
                    delays.push(millis_f64(a.delay));
                    durations.push(millis_f64(a.duration));
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
    attempt_starts.push(delays.len() as u32);
    ResultBatch {
        ids: Uint32Array::new(ids),
        indexes: Uint32Array::new(indexes),
        group_of: Uint32Array::new(group_of),
        sub_sequence_numbers: Float64Array::new(subs),
        groups,
        attempt_starts: Uint32Array::new(attempt_starts),
        delays_ms: Float64Array::new(delays),
        durations_ms: Float64Array::new(durations),
        attempt_errors,
        failures,
    }
}

//! The plain objects that cross into JS, and kpl-core errors as `ErrInfo`.

use kpl_core::{Attempt, Error as KplError, PutResult};
use kpl_host::timeout::millis_f64;
use napi::bindgen_prelude::*;
use napi_derive::napi;

pub(crate) type Outcome = std::result::Result<PutResult, KplError>;

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
    /// The setting an `InvalidConfig` or `UnknownSetting` error is about.
    pub setting: Option<String>,
    /// For `UnknownSetting`: the closest known names, best first.
    pub suggestions: Vec<String>,
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

pub(crate) fn attempts_js(attempts: &[Attempt]) -> Vec<AttemptJs> {
    attempts
        .iter()
        .map(|a| AttemptJs {
            delay_ms: millis_f64(a.delay),
            duration_ms: millis_f64(a.duration),
            error_code: a.error_code.clone(),
            error_message: a.error_message.clone(),
        })
        .collect()
}

/// The error as plain data (kpl-core fills in the default stream of a
/// record that named none).
pub(crate) fn err_info(e: KplError) -> ErrInfo {
    let record = e.record().map(|r| RecordJs {
        partition_key: r.partition_key().to_owned(),
        data: Buffer::from(r.data().to_vec()),
        stream_name: r.stream().map(str::to_owned),
        explicit_hash_key: r.explicit_hash_key().map(str::to_owned),
    });
    ErrInfo {
        kind: e.kind().as_str().to_owned(),
        setting: e.setting().map(str::to_owned),
        suggestions: e.suggestions().iter().map(|s| (*s).to_owned()).collect(),
        service_code: e.code().map(str::to_owned),
        message: e.message().to_owned(),
        retryable: e.is_retryable(),
        record,
        attempts: attempts_js(e.attempts()),
    }
}

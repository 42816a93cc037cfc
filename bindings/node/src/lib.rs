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
//!
//! - putMany chunks cross as one copy of their bytes; a task on the runtime
//!   unpacks and admits them in order (`admission`), off the JS thread.
//!
//! Modules: `types` (the objects that cross, `ErrInfo`), `results` (the
//! mailbox and `ResultBatch`), `admission` (putMany chunks on their way
//! in), `producer` (`NativeProducer`); kpl-host
//! holds what the bindings share (records from parts, the mailbox,
//! timeouts).

#![deny(clippy::all)]

mod admission;
mod producer;
mod results;
mod types;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use kpl_core::{Config, Error as KplError, ErrorKind, Producer};
use kpl_host::mailbox::Mailbox;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use admission::Admission;
pub use producer::NativeProducer;
use producer::Shared;
pub use results::{AttemptError, ResultBatch, ResultGroup};
use results::{ResultsFn, drain};
use types::err_info;
pub use types::{AttemptJs, DeaggregatedJs, Delivery, ErrInfo, PutResultJs, RecordJs};

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
    let mailbox = Arc::new(Mailbox::new());
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
            Ok(producer) => {
                let shared = Arc::new(Shared {
                    producer,
                    mailbox,
                    notify,
                });
                Either::A(NativeProducer {
                    admission: Admission::start(shared.clone()),
                    shared,
                })
            }
            Err(e) => Either::B(err_info(e)),
        })
    })
}

/// Checks settings without creating a producer: the configuration they
/// make (KPL names and text values), or an `ErrInfo`.
#[napi(ts_return_type = "Record<string, string> | ErrInfo")]
pub fn check_config(
    settings: Vec<Vec<String>>,
    properties_path: Option<String>,
) -> Either<serde_json::Value, ErrInfo> {
    match build_config(settings, properties_path) {
        Ok(config) => Either::A(entries(&config)),
        Err(e) => Either::B(err_info(e)),
    }
}

/// A configuration as KPL names and text values (credentials left out).
pub(crate) fn entries(config: &Config) -> serde_json::Value {
    config
        .entries()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("Aws"))
        .map(|(name, value)| (name.to_owned(), serde_json::Value::String(value)))
        .collect::<serde_json::Map<_, _>>()
        .into()
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

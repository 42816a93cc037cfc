//! Metrics with the KPL's names.
//!
//! - [`Metrics`]: in-process counters, readable at any time through
//!   [`crate::Producer::metrics`].
//! - The KPL's CloudWatch metrics: the pipeline records into per-window
//!   statistics (`accumulator`, through `hooks`), and a task of its own
//!   uploads each window (`upload`) every `MetricsUploadDelay`.
//! - With the `metrics-facade` feature, the same windows also go to the
//!   `metrics` crate (`facade`).

mod accumulator;
#[cfg(feature = "metrics-facade")]
mod facade;
mod hooks;
mod names;
mod upload;

pub(crate) use hooks::Hooks;
pub use names::{MetricsDimension, MetricsGranularity, MetricsLevel};
pub(crate) use upload::spawn as spawn_upload;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

/// Counters the engine updates; cheap atomics, read as a [`Metrics`] snapshot.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    user_records_received: AtomicU64,
    user_records_put: AtomicU64,
    user_records_failed: AtomicU64,
    user_records_expired: AtomicU64,
    kinesis_records_put: AtomicU64,
    kinesis_records_data_put: AtomicU64,
    put_records_requests: AtomicU64,
    put_records_failed: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    buffering_time_us: AtomicU64,
    buffering_time_max_us: AtomicU64,
    request_time_us: AtomicU64,
    request_time_max_us: AtomicU64,
    errors_by_code: Mutex<BTreeMap<String, u64>>,
    metrics_datums_uploaded: AtomicU64,
    metrics_upload_failures: AtomicU64,
    metrics_windows_dropped: AtomicU64,
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

impl Recorder {
    pub fn received(&self, n: u64) {
        self.user_records_received.fetch_add(n, Relaxed);
    }

    /// `count` user records resolved, their buffering times summed and the longest.
    pub fn user_records_done(
        &self,
        ok: bool,
        count: u64,
        buffering_sum: Duration,
        buffering_max: Duration,
    ) {
        if ok {
            self.user_records_put.fetch_add(count, Relaxed);
        } else {
            self.user_records_failed.fetch_add(count, Relaxed);
        }
        self.buffering_time_us
            .fetch_add(micros(buffering_sum), Relaxed);
        self.buffering_time_max_us
            .fetch_max(micros(buffering_max), Relaxed);
    }

    pub fn expired(&self) {
        self.user_records_expired.fetch_add(1, Relaxed);
    }

    pub fn request(
        &self,
        duration: Duration,
        kinesis_records_ok: u64,
        bytes_ok: u64,
        failed: bool,
    ) {
        self.put_records_requests.fetch_add(1, Relaxed);
        if failed {
            self.put_records_failed.fetch_add(1, Relaxed);
        }
        self.kinesis_records_put
            .fetch_add(kinesis_records_ok, Relaxed);
        self.kinesis_records_data_put.fetch_add(bytes_ok, Relaxed);
        let us = micros(duration);
        self.request_time_us.fetch_add(us, Relaxed);
        self.request_time_max_us.fetch_max(us, Relaxed);
    }

    pub fn retried(&self, user_records: u64) {
        self.retries.fetch_add(user_records, Relaxed);
    }

    pub fn error(&self, code: &str, n: u64) {
        if code == "ProvisionedThroughputExceededException" {
            self.throttled.fetch_add(n, Relaxed);
        }
        *self
            .errors_by_code
            .lock()
            .entry(code.to_owned())
            .or_default() += n;
    }

    pub fn metrics_uploaded(&self, datums: u64) {
        self.metrics_datums_uploaded.fetch_add(datums, Relaxed);
    }

    pub fn metrics_upload_failed(&self) {
        self.metrics_upload_failures.fetch_add(1, Relaxed);
    }

    pub fn metrics_windows_dropped(&self, windows: u64) {
        self.metrics_windows_dropped.fetch_add(windows, Relaxed);
    }

    pub fn snapshot(&self, outstanding: u64, buffered_bytes: u64) -> Metrics {
        let put = self.user_records_put.load(Relaxed);
        let failed = self.user_records_failed.load(Relaxed);
        let kinesis = self.kinesis_records_put.load(Relaxed);
        let requests = self.put_records_requests.load(Relaxed);
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Metrics {
            user_records_received: self.user_records_received.load(Relaxed),
            user_records_put: put,
            user_records_failed: failed,
            user_record_expired: self.user_records_expired.load(Relaxed),
            user_records_pending: outstanding,
            buffered_bytes,
            kinesis_records_put: kinesis,
            kinesis_records_data_put: self.kinesis_records_data_put.load(Relaxed),
            put_records_requests: requests,
            put_records_failed: self.put_records_failed.load(Relaxed),
            user_records_per_kinesis_record: ratio(put, kinesis),
            kinesis_records_per_put_records_request: ratio(kinesis, requests),
            retries_per_record: ratio(self.retries.load(Relaxed), put + failed),
            throttled_attempts: self.throttled.load(Relaxed),
            buffering_time_avg_ms: ratio(self.buffering_time_us.load(Relaxed), put + failed)
                / 1000.0,
            buffering_time_max_ms: self.buffering_time_max_us.load(Relaxed) as f64 / 1000.0,
            request_time_avg_ms: ratio(self.request_time_us.load(Relaxed), requests) / 1000.0,
            request_time_max_ms: self.request_time_max_us.load(Relaxed) as f64 / 1000.0,
            errors_by_code: self.errors_by_code.lock().clone(),
            metrics_datums_uploaded: self.metrics_datums_uploaded.load(Relaxed),
            metrics_upload_failures: self.metrics_upload_failures.load(Relaxed),
            metrics_windows_dropped: self.metrics_windows_dropped.load(Relaxed),
            ..Metrics::default()
        }
    }
}

/// A snapshot of the producer's metrics, named as the KPL names them.
/// Serializes to JSON with those names.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Metrics {
    /// User records accepted by `put` (UserRecordsReceived).
    pub user_records_received: u64,
    /// User records delivered (UserRecordsPut).
    pub user_records_put: u64,
    /// User records that ended in an error (any kind).
    pub user_records_failed: u64,
    /// User records that failed because RecordTtl ran out (UserRecordExpired).
    pub user_record_expired: u64,
    /// User records accepted and not yet resolved (UserRecordsPending).
    pub user_records_pending: u64,
    /// Payload bytes held in the buffer now.
    pub buffered_bytes: u64,
    /// Kinesis records delivered (KinesisRecordsPut).
    pub kinesis_records_put: u64,
    /// Bytes of the delivered Kinesis records, keys and data (KinesisRecordsDataPut).
    pub kinesis_records_data_put: u64,
    /// PutRecords requests sent (AllErrors counts failures below).
    pub put_records_requests: u64,
    /// PutRecords requests that failed whole.
    pub put_records_failed: u64,
    /// Average user records per delivered Kinesis record (UserRecordsPerKinesisRecord).
    pub user_records_per_kinesis_record: f64,
    /// Average Kinesis records per request (KinesisRecordsPerPutRecordsRequest).
    pub kinesis_records_per_put_records_request: f64,
    /// Retries per resolved user record (RetriesPerRecord).
    pub retries_per_record: f64,
    /// Kinesis records throttled by the service (ErrorsByCode's
    /// ProvisionedThroughputExceededException).
    pub throttled_attempts: u64,
    /// Average time from put to result, ms (BufferingTime).
    pub buffering_time_avg_ms: f64,
    /// Longest time from put to result, ms.
    pub buffering_time_max_ms: f64,
    /// Average PutRecords duration, ms (RequestTime).
    pub request_time_avg_ms: f64,
    /// Longest PutRecords duration, ms.
    pub request_time_max_ms: f64,
    /// Errors per service or transport code, per Kinesis record or request (ErrorsByCode).
    pub errors_by_code: BTreeMap<String, u64>,
    /// CloudWatch datums uploaded (kpl-rs).
    pub metrics_datums_uploaded: u64,
    /// PutMetricData requests that failed (kpl-rs); each is logged.
    pub metrics_upload_failures: u64,
    /// Metrics windows dropped, oldest first, while CloudWatch could not
    /// take them (kpl-rs).
    pub metrics_windows_dropped: u64,
    /// Records in the spool without a final result yet (kpl-rs; 0 without
    /// a spool).
    pub spool_records: u64,
    /// Bytes of the spool's segment files (kpl-rs).
    pub spool_bytes: u64,
    /// Age of the oldest record in the spool, ms, to within 1,024 records (kpl-rs).
    pub spool_oldest_record_age_ms: u64,
    /// Records removed from a full spool by `SpoolFullPolicy = drop_oldest` (kpl-rs).
    pub spool_records_dropped: u64,
    /// Records an earlier producer left in the spool, sent again by this one (kpl-rs).
    pub spool_records_recovered: u64,
    /// Records lost to damage in the spool's files (kpl-rs).
    pub spool_records_damaged: u64,
    /// Bytes the spool wrote to disk: records, segment headers and
    /// checkpoints (kpl-rs).
    pub spool_bytes_written: u64,
}

impl Metrics {
    pub(crate) fn add_spool(&mut self, f: crate::spool::SpoolFigures) {
        self.spool_records = f.records;
        self.spool_bytes = f.bytes;
        self.spool_oldest_record_age_ms = f.oldest_age_ms;
        self.spool_records_dropped = f.dropped;
        self.spool_records_recovered = f.recovered;
        self.spool_records_damaged = f.damaged;
        self.spool_bytes_written = f.written;
    }
}

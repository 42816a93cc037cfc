//! What a perf run measured: results per record, the report, and how it is printed.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use kpl_core::{Error, PutResult};
use serde::Serialize;

/// Where each record's result said it went, interned to stay small for
/// millions of records.
#[derive(Default)]
pub(super) struct Results {
    pub(super) positions: Vec<Option<(u32, u32, u32)>>,
    pub(super) shard_ids: Interner,
    pub(super) sequence_numbers: Interner,
    pub(super) latency_us: Option<Histogram<u64>>,
    pub(super) failures: HashMap<String, u64>,
    pub(super) first_failure: Option<String>,
}

#[derive(Default)]
pub(super) struct Interner {
    pub(super) ids: HashMap<Arc<str>, u32, foldhash::fast::RandomState>,
    pub(super) names: Vec<Arc<str>>,
    /// The last name looked up: the records of one aggregate come one
    /// after the other with the same shard id and sequence number.
    pub(super) last: Option<(Arc<str>, u32)>,
}

impl Interner {
    pub(super) fn id(&mut self, name: &str) -> u32 {
        if let Some((last, id)) = &self.last
            && **last == *name
        {
            return *id;
        }
        let id = self.lookup(name);
        self.last = Some((self.names[id as usize].clone(), id));
        id
    }

    pub(super) fn lookup(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        let name: Arc<str> = name.into();
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    pub(super) fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }
}

impl Results {
    pub(super) fn record(
        &mut self,
        index: usize,
        latency: Duration,
        result: Result<PutResult, Error>,
    ) {
        if let Some(h) = &mut self.latency_us {
            h.saturating_record(latency.as_micros() as u64);
        }
        match result {
            Ok(r) => {
                let shard = self.shard_ids.id(r.shard_id());
                let seq = self.sequence_numbers.id(r.sequence_number());
                self.positions[index] = Some((shard, seq, r.sub_sequence_number() as u32));
            }
            Err(e) => {
                let key = e.code().unwrap_or(e.kind().as_str()).to_owned();
                *self.failures.entry(key).or_default() += 1;
                if self.first_failure.is_none() {
                    self.first_failure = Some(e.to_string());
                }
            }
        }
    }
}

/// The figures `kpl perf` prints.
#[derive(Serialize, Debug)]
pub(super) struct Report {
    pub(super) records: u64,
    pub(super) record_size: usize,
    pub(super) partition_keys: u64,
    pub(super) shards: u32,
    pub(super) aggregation: bool,
    pub(super) seconds: f64,
    pub(super) records_per_sec: f64,
    pub(super) mb_per_sec: f64,
    pub(super) kinesis_records: u64,
    pub(super) user_records_per_kinesis_record: f64,
    pub(super) put_records_calls: u64,
    pub(super) latency_ms_p50: f64,
    pub(super) latency_ms_p99: f64,
    pub(super) latency_ms_max: f64,
    pub(super) retries: u64,
    pub(super) throttled: u64,
    pub(super) failed: u64,
    pub(super) peak_buffered_bytes: u64,
    pub(super) cpu_seconds: f64,
    /// Delivered user records/s per shard, over the whole run.
    pub(super) per_shard_records_per_sec: std::collections::BTreeMap<String, f64>,
    pub(super) verified: Option<bool>,
    /// Records read back whose first occurrence comes after that of a
    /// record of their key put later (`StrictOrdering` makes it 0).
    pub(super) out_of_order: Option<u64>,
    /// MetricsLevel and MetricsGranularity of the run.
    pub(super) metrics: String,
    /// CloudWatch datums uploaded during the run.
    pub(super) metrics_datums_uploaded: u64,
    /// SpoolSync of the run's spool, if it had one.
    pub(super) spool: Option<String>,
    /// Bytes the spool wrote to disk per byte of user records (keys and data).
    pub(super) spool_bytes_per_user_byte: Option<f64>,
}

pub(super) fn per_shard_rates(
    results: &Results,
    elapsed: Duration,
) -> std::collections::BTreeMap<String, f64> {
    let mut counts = vec![0u64; results.shard_ids.names.len()];
    for (shard, _, _) in results.positions.iter().flatten() {
        counts[*shard as usize] += 1;
    }
    results
        .shard_ids
        .names
        .iter()
        .zip(counts)
        .map(|(name, n)| (name.to_string(), n as f64 / elapsed.as_secs_f64()))
        .collect()
}

pub(super) fn print_report(report: &Report, results: &Results, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("report serializes")
        );
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\n{} records in {:.2} s: {:.0} records/s, {:.2} MB/s (aggregation {})",
        report.records,
        report.seconds,
        report.records_per_sec,
        report.mb_per_sec,
        if report.aggregation { "on" } else { "off" }
    );
    let _ = writeln!(
        out,
        "{} Kinesis records ({:.1} user records each) in {} PutRecords calls",
        report.kinesis_records, report.user_records_per_kinesis_record, report.put_records_calls
    );
    let _ = writeln!(
        out,
        "put-to-result latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        report.latency_ms_p50, report.latency_ms_p99, report.latency_ms_max
    );
    let _ = writeln!(
        out,
        "retries {}, throttled attempts {} ({:.3} per record), failed records {}, peak buffered {:.1} MB, CPU {:.2} s ({:.2} s per million records)",
        report.retries,
        report.throttled,
        report.throttled as f64 / report.records as f64,
        report.failed,
        report.peak_buffered_bytes as f64 / 1e6,
        report.cpu_seconds,
        report.cpu_seconds / (report.records as f64 / 1e6)
    );
    let _ = writeln!(
        out,
        "metrics {}: {} CloudWatch datums uploaded during the run",
        report.metrics, report.metrics_datums_uploaded
    );
    if let (Some(sync), Some(per_byte)) = (&report.spool, report.spool_bytes_per_user_byte) {
        let _ = writeln!(
            out,
            "spool (SpoolSync = {sync}): {per_byte:.2} bytes written to disk per user byte"
        );
    }
    let per_shard: Vec<String> = report
        .per_shard_records_per_sec
        .iter()
        .map(|(shard, rate)| format!("{shard} {rate:.0}"))
        .collect();
    let _ = writeln!(
        out,
        "delivered records/s per shard: {}",
        per_shard.join(", ")
    );
    for (code, n) in &results.failures {
        let _ = writeln!(out, "  failed with {code}: {n}");
    }
    if let Some(first) = &results.first_failure {
        let _ = writeln!(out, "  first failure: {first}");
    }
    match report.verified {
        Some(true) => {
            let _ = writeln!(
                out,
                "verified: every acknowledged record is in the stream, intact, where its result says; \
                 {} out of put order for their key",
                report.out_of_order.unwrap_or(0)
            );
        }
        Some(false) => {
            let _ = writeln!(out, "verification FAILED");
        }
        None => {}
    }
}

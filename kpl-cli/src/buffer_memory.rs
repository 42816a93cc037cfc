//! `kpl perf --buffer-only`: how much memory a buffered record costs.
//!
//! Fills the producer's buffer with `--records` records that cannot leave
//! (the endpoint must accept connections and never answer, such as
//! `benches/peers/blackhole.py`), then reports the growth of the process's
//! resident set per record. The records' own bytes are part of that growth,
//! as they are for any producer that holds them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use kpl_core::Producer;
use serde::Serialize;

use crate::perf::{PUT_CHUNK, PerfArgs, partition_keys, records};

/// Long enough that no record expires while the run measures.
const HOLD_TTL_MS: u64 = 3_600_000;

/// The figures `kpl perf --buffer-only` prints.
#[derive(Serialize, Debug)]
struct MemoryReport {
    records: u64,
    record_size: usize,
    buffered_records: u64,
    sent_kinesis_records: u64,
    rss_before_mb: f64,
    rss_after_mb: f64,
    bytes_per_record: f64,
    seconds_to_buffer: f64,
}

/// Resident set size of this process, in bytes (Linux: /proc/self/status).
fn rss_bytes() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status for VmRSS: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| "no VmRSS line in /proc/self/status".to_owned())
}

pub async fn run(args: &PerfArgs, run_id: u32) -> Result<bool, String> {
    let Some(endpoint) = &args.producer.endpoint else {
        return Err(
            "--buffer-only needs --endpoint: a service that accepts connections and \
                    never answers (benches/peers/blackhole.py), so that no record leaves"
                .to_owned(),
        );
    };
    let bytes = args.records as usize * (args.record_size + 64);
    let config = args
        .producer
        .builder(&args.stream)?
        .max_buffered(args.records as usize, bytes.max(1 << 20))
        .record_ttl(Duration::from_millis(HOLD_TTL_MS))
        .build()
        .map_err(|e| e.to_string())?;
    let producer = Producer::new(config).await.map_err(|e| e.to_string())?;
    let keys = partition_keys(args.partition_keys);
    // Let the producer's runtime and the first connection attempts settle
    // before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_bytes()?;
    let started = Instant::now();
    let resolved = Arc::new(AtomicU64::new(0));
    let mut next = 0u64;
    while next < args.records {
        let count = PUT_CHUNK.min(args.records - next);
        let records = records(&keys, run_id, args.record_size, next..next + count);
        let resolved = resolved.clone();
        producer
            .put_many_with(records, move |_, _| {
                resolved.fetch_add(1, Relaxed);
            })
            .await;
        next += count;
    }
    let seconds_to_buffer = started.elapsed().as_secs_f64();
    // The engine takes records off its queue asynchronously: wait until it
    // holds them all (or one second without progress) before measuring.
    let mut last = (0, Instant::now());
    while producer.outstanding() < args.records && last.1.elapsed() < Duration::from_secs(1) {
        let now = producer.outstanding();
        if now != last.0 {
            last = (now, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes()?;
    let metrics = producer.metrics();
    let report = MemoryReport {
        records: args.records,
        record_size: args.record_size,
        buffered_records: producer.outstanding(),
        sent_kinesis_records: metrics.kinesis_records_put,
        rss_before_mb: before as f64 / 1e6,
        rss_after_mb: after as f64 / 1e6,
        bytes_per_record: after.saturating_sub(before) as f64 / args.records as f64,
        seconds_to_buffer,
    };
    let complete = report.buffered_records == args.records && resolved.load(Relaxed) == 0;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("report serializes")
        );
    } else {
        println!(
            "{} records of {} bytes buffered against {endpoint} in {:.2} s: RSS {:.1} MB -> {:.1} MB, \
             {:.0} bytes per buffered record ({} still buffered, {} Kinesis records sent)",
            report.records,
            report.record_size,
            report.seconds_to_buffer,
            report.rss_before_mb,
            report.rss_after_mb,
            report.bytes_per_record,
            report.buffered_records,
            report.sent_kinesis_records,
        );
    }
    if !complete {
        eprintln!(
            "buffer-only: {} of {} records still buffered and {} resolved; the endpoint must never answer",
            report.buffered_records,
            args.records,
            resolved.load(Relaxed)
        );
    }
    // Nothing was sent; the records fail with ShutDown, which is the point.
    let _ = producer.shutdown(Duration::ZERO).await;
    Ok(complete)
}

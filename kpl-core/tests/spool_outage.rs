//! The outage test: the endpoint refuses every connection for two minutes
//! while a child process puts 1,000,000 records through a spool. The
//! child's memory must stay under its buffer bound plus a fixed overhead,
//! the spool under `SpoolMaxBytes`; once the endpoint is back, every record
//! is delivered, and the stream holds each of them.
//!
//! The child is this test binary again, running `outage_child`.
//! `KPL_OUTAGE_SECS` shortens the outage for a quick local run.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::*;
use kpl_core::{Producer, UserRecord};
use kpl_sim::{Retention, Sim, SimConfig};

const RECORDS: u64 = 1_000_000;
const MAX_BUFFERED_RECORDS: usize = 20_000;
const MAX_BUFFERED_BYTES: usize = 8 << 20;
const SPOOL_MAX_BYTES: u64 = 256 << 20;
/// What the process needs besides its buffer: runtime, HTTP/TLS client,
/// allocator slack, the spool's read and write buffers (measured: see the
/// README's "Durable spool").
const FIXED_OVERHEAD: u64 = 64 << 20;
/// Pipeline bookkeeping per buffered record beyond its bytes (key, result
/// slot, aggregation tables), generously.
const PER_RECORD: u64 = 1024;

#[test]
#[ignore = "the child side of the outage test; run by the parent"]
fn outage_child() {
    let Ok(dir) = std::env::var("KPL_OUTAGE_DIR") else {
        return;
    };
    let endpoint = std::env::var("KPL_OUTAGE_ENDPOINT").unwrap();
    let summary = std::env::var("KPL_OUTAGE_SUMMARY").unwrap();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let config = config(&endpoint)
                .stream("outage")
                .spool_directory(&dir)
                .max_buffered(MAX_BUFFERED_RECORDS, MAX_BUFFERED_BYTES)
                .set("SpoolMaxBytes", &SPOOL_MAX_BYTES.to_string())
                .unwrap()
                .set("MetricsLevel", "none")
                .unwrap()
                .build()
                .unwrap();
            let producer = Producer::new(config).await.unwrap();
            let (delivered, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
            let peak_spool = Arc::new(AtomicU64::new(0));
            let outage_rss = Arc::new(AtomicU64::new(0));
            let sampler = {
                let (producer, peak) = (producer.clone(), peak_spool.clone());
                let (outage_rss, delivered) = (outage_rss.clone(), delivered.clone());
                tokio::spawn(async move {
                    loop {
                        peak.fetch_max(producer.metrics().spool_bytes, Relaxed);
                        if delivered.load(Relaxed) == 0 {
                            outage_rss.fetch_max(proc_status_kb("VmRSS:") * 1024, Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            };
            let started = Instant::now();
            for chunk in 0..RECORDS / 10_000 {
                let records = (chunk * 10_000..(chunk + 1) * 10_000)
                    .map(|id| UserRecord::new(format!("k{}", id % 1000), format!("{id:0100}")));
                let (d, f) = (delivered.clone(), failed.clone());
                producer
                    .put_many_with(records, move |_, outcome| {
                        let counter = if outcome.is_ok() { &d } else { &f };
                        counter.fetch_add(1, Relaxed);
                    })
                    .await;
            }
            let put_s = started.elapsed().as_secs_f64();
            while delivered.load(Relaxed) + failed.load(Relaxed) < RECORDS {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let done_s = started.elapsed().as_secs_f64();
            sampler.abort();
            producer.shutdown(Duration::from_secs(30)).await.unwrap();
            let line = format!(
                "{} {} {} {} {} {put_s:.1} {done_s:.1}\n",
                delivered.load(Relaxed),
                failed.load(Relaxed),
                proc_status_kb("VmHWM:") * 1024,
                outage_rss.load(Relaxed),
                peak_spool.load(Relaxed)
            );
            std::fs::write(summary, line).unwrap();
        });
}

/// A figure of /proc/self/status, in kB.
fn proc_status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn spawn_child(exe: &Path, dir: &Path, endpoint: &str, summary: &Path) -> std::process::Child {
    Command::new(exe)
        .args([
            "outage_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KPL_OUTAGE_DIR", dir)
        .env("KPL_OUTAGE_ENDPOINT", endpoint)
        .env("KPL_OUTAGE_SUMMARY", summary)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_minute_outage_is_waited_out_on_disk_in_bounded_memory() {
    let outage =
        Duration::from_secs(std::env::var("KPL_OUTAGE_SECS").map_or(120, |s| s.parse().unwrap()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = std::env::temp_dir().join(format!("kpl-outage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let summary = base.join("summary");
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut child = spawn_child(
        &std::env::current_exe().unwrap(),
        &base.join("spool"),
        &endpoint,
        &summary,
    );
    // Nothing listens on the port: every connection is refused.
    tokio::time::sleep(outage).await;
    let mut sim_config = SimConfig::default()
        .unlimited()
        .port(port)
        .stream("outage", 4);
    // Keep every record, so the read-back sees them all.
    sim_config.retention = Retention {
        max_records_per_shard: None,
        max_bytes_per_shard: None,
    };
    let sim = Sim::start(sim_config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not deliver everything within 10 minutes of the outage's end");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(status.success(), "the child failed: {status}");
    let figures: Vec<f64> = std::fs::read_to_string(&summary)
        .unwrap()
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    let [
        delivered,
        failed,
        peak_rss,
        outage_rss,
        peak_spool,
        put_s,
        done_s,
    ] = figures[..]
    else {
        panic!("summary: {figures:?}")
    };
    let bound = (MAX_BUFFERED_BYTES as u64
        + MAX_BUFFERED_RECORDS as u64 * PER_RECORD
        + FIXED_OVERHEAD) as f64;
    println!(
        "outage of {} s: {RECORDS} records put in {put_s} s, all resolved {done_s} s after the first put; \
         peak RSS {:.1} MiB during the outage, {:.1} MiB in all (bound {:.1} MiB), peak spool {:.1} MiB (SpoolMaxBytes {} MiB)",
        outage.as_secs(),
        outage_rss / 1048576.0,
        peak_rss / 1048576.0,
        bound / 1048576.0,
        peak_spool / 1048576.0,
        SPOOL_MAX_BYTES >> 20
    );
    assert_eq!((delivered as u64, failed as u64), (RECORDS, 0));
    assert!(peak_rss <= bound, "peak RSS {peak_rss} > {bound}");
    assert!(peak_spool > 0.0 && peak_spool <= SPOOL_MAX_BYTES as f64);
    let read = read_stream(&client(&sim.endpoint()), "outage").await;
    let ids: HashSet<&[u8]> = read.iter().map(|r| &r.data[..]).collect();
    let kinesis_records: HashSet<(&str, &str)> = read
        .iter()
        .map(|r| (r.shard_id.as_str(), r.sequence_number.as_str()))
        .collect();
    println!(
        "the stream holds {} user records ({} distinct) in {} Kinesis records",
        read.len(),
        ids.len(),
        kinesis_records.len()
    );
    assert_eq!(ids.len() as u64, RECORDS, "every record is in the stream");
    std::fs::remove_dir_all(&base).unwrap();
}

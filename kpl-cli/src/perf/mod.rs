//! `kpl perf`: the quickstart and the producer's performance test, in the
//! spirit of kafka-producer-perf-test. Without `--endpoint` it runs
//! against the simulator in this process, with the service's per-shard
//! limits on, and verifies that every record arrived.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use kpl_core::{Config, Producer, UserRecord};
use kpl_sim::{Retention, Sim, SimConfig};
use parking_lot::Mutex;

use crate::producer_args::ProducerArgs;

mod check;
mod report;

use check::check_stream;
use report::{Report, Results, per_shard_rates, print_report};

/// `RateLimit` under `--unlimited`: 10,000x the shard limits.
const UNLIMITED_RATE_PERCENT: u64 = 1_000_000;

/// Records handed to the producer per `put_many_with` call.
pub(crate) const PUT_CHUNK: u64 = 1000;

/// Bytes of a payload taken by the run id and the record index.
const PAYLOAD_HEADER: usize = 24;

/// With `--rate`, the driver wakes at most once per tick and puts what
/// came due since, as a gateway's reader takes what arrived since its
/// last read: waking for every record would measure the timer instead.
const PACE_TICK: Duration = Duration::from_millis(20);

/// How often a run without `--json` prints its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Hands out the indexes of the records to put next: as fast as they are
/// taken, or as they come due at `rate` records/s.
struct Pacer {
    started: Instant,
    rate: u64,
    total: u64,
    next: u64,
    last_wake: Instant,
}

impl Pacer {
    fn new(rate: u64, total: u64) -> Pacer {
        let now = Instant::now();
        Pacer {
            started: now,
            rate,
            total,
            next: 0,
            last_wake: now,
        }
    }

    /// The next records to put (at most [`PUT_CHUNK`]), once at least one
    /// is due; `None` when all were handed out.
    async fn next(&mut self) -> Option<std::ops::Range<u64>> {
        if self.next >= self.total {
            return None;
        }
        let mut count = PUT_CHUNK.min(self.total - self.next);
        if self.rate > 0 {
            loop {
                let due = (self.started.elapsed().as_secs_f64() * self.rate as f64) as u64;
                if due > self.next {
                    count = count.min(due - self.next);
                    break;
                }
                let first_due = self.started
                    + Duration::from_secs_f64((self.next + 1) as f64 / self.rate as f64);
                tokio::time::sleep_until(first_due.max(self.last_wake + PACE_TICK).into()).await;
                self.last_wake = Instant::now();
            }
        }
        let range = self.next..self.next + count;
        self.next += count;
        Some(range)
    }
}

/// Flags of `kpl perf`.
#[derive(Args, Debug)]
pub struct PerfArgs {
    /// User records to put.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) records: u64,
    /// Bytes of data per record.
    #[arg(long, default_value_t = 100)]
    pub(crate) record_size: usize,
    /// Distinct partition keys.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub(crate) partition_keys: u64,
    /// Shards of the stream, when it is created.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    shards: u32,
    /// Stream name (created when missing).
    #[arg(long, default_value = "kpl-perf")]
    pub(crate) stream: String,
    /// Offered load in user records/s (0: as fast as the producer takes
    /// them); the records that came due are put every 20 ms.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Lift the per-shard limits, the embedded simulator's and the
    /// producer's own rate limiter (RateLimit), for benchmarks.
    #[arg(long)]
    unlimited: bool,
    /// Read the stream back and check every record (default with the
    /// embedded simulator).
    #[arg(long, overrides_with = "no_verify")]
    verify: bool,
    /// Skip the read-back check.
    #[arg(long)]
    no_verify: bool,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Measure memory per buffered record instead: fill the buffer with
    /// --records records that cannot leave (--endpoint must accept
    /// connections and never answer), report RSS growth per record, exit.
    #[arg(long, requires = "endpoint")]
    buffer_only: bool,
    /// Measure the driver alone: pace and build the records exactly as a
    /// run would, hand them to no producer, report the CPU it took.
    #[arg(long, conflicts_with = "buffer_only")]
    driver_only: bool,
    #[command(flatten)]
    pub(crate) producer: ProducerArgs,
}

/// Record `index`'s payload: run id and index in hex, then a filler letter.
/// Built without formatting: the generator must not be what a run measures.
pub(crate) fn payload(run: u32, index: u64, size: usize) -> Bytes {
    let mut buf = vec![b'a' + (index % 26) as u8; size.max(PAYLOAD_HEADER)];
    write_hex(&mut buf[..8], u64::from(run));
    write_hex(&mut buf[8..PAYLOAD_HEADER], index);
    Bytes::from(buf)
}

/// Writes `value` as lowercase hex filling `out`, most significant digit first.
fn write_hex(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b"0123456789abcdef"[(value & 0xf) as usize];
        value >>= 4;
    }
}

pub(crate) fn partition_key(index: u64, keys: u64) -> String {
    format!("pk-{:06}", index % keys)
}

/// The run's partition keys, made once: each record copies its key in
/// (inline, with no allocation, as a host passing a borrowed key does).
pub(crate) fn partition_keys(count: u64) -> Vec<String> {
    (0..count).map(|k| partition_key(k, count)).collect()
}

/// Records `range` of run `run`: the partition key by index, the payload.
pub(crate) fn records(
    keys: &[String],
    run: u32,
    size: usize,
    range: std::ops::Range<u64>,
) -> impl Iterator<Item = UserRecord> + '_ {
    range.map(move |i| {
        UserRecord::new(
            &keys[(i % keys.len() as u64) as usize],
            payload(run, i, size),
        )
    })
}

pub async fn run(args: PerfArgs) -> Result<bool, String> {
    if args.record_size < PAYLOAD_HEADER {
        return Err(format!(
            "--record-size {} is too small: records carry a {PAYLOAD_HEADER}-byte header to be verified",
            args.record_size
        ));
    }
    let run_id: u32 = rand::random();
    if args.buffer_only {
        return crate::buffer_memory::run(&args, run_id).await;
    }
    if args.driver_only {
        return driver_only(&args, run_id).await;
    }
    let embedded = args.producer.endpoint.is_none();
    let verify = if embedded {
        !args.no_verify
    } else {
        args.verify && !args.no_verify
    };

    let sim = if embedded {
        // Keep the whole run: the check reads every record back, and the
        // simulator's default retention would trim a long run's first ones.
        let run_bytes = args.records as usize * (args.record_size.max(PAYLOAD_HEADER) + 64);
        let mut config = SimConfig::default()
            .stream(&args.stream, args.shards)
            .retention(Retention {
                max_records_per_shard: Some(args.records as usize),
                max_bytes_per_shard: Some(run_bytes),
            });
        if args.unlimited {
            config = config.unlimited();
        }
        Some(
            Sim::start(config)
                .await
                .map_err(|e| format!("cannot start the embedded simulator: {e}"))?,
        )
    } else {
        None
    };
    let endpoint = match &sim {
        Some(sim) => sim.endpoint(),
        None => args.producer.endpoint.clone().unwrap_or_default(),
    };
    let mut builder = args.producer.builder(&args.stream)?;
    if args.unlimited && args.producer.rate_limit.is_none() {
        // Limits off means ours too: the per-shard limiter would hold the
        // producer to the real shards' 1 MiB/s.
        builder = builder.rate_limit(UNLIMITED_RATE_PERCENT);
    }
    if let Some(sim) = &sim {
        builder = builder
            .endpoint(sim.endpoint())
            // The simulator takes the producer's CloudWatch metrics too.
            .cloudwatch_endpoint(sim.endpoint())
            .region("us-east-1")
            .credentials(kpl_readback::TEST_ACCESS_KEY, kpl_readback::TEST_SECRET_KEY);
    }
    let config = builder.build().map_err(|e| e.to_string())?;
    if sim.is_none() {
        kpl_readback::ensure_stream(&sdk_client(&config).await?, &args.stream, args.shards).await?;
    }
    let aggregation = config.aggregation_enabled;
    let metrics_setting = format!("{}/{}", config.metrics_level, config.metrics_granularity);
    let config_for_read = config.clone();
    let producer = Producer::new(config).await.map_err(|e| e.to_string())?;

    if !args.json {
        eprintln!(
            "kpl perf: {} records of {} bytes, {} partition keys, stream {} ({} shards) at {}{}{}",
            args.records,
            args.record_size,
            args.partition_keys,
            args.stream,
            args.shards,
            if embedded {
                "the embedded simulator "
            } else {
                ""
            },
            endpoint,
            match (embedded, args.unlimited) {
                (true, false) => " (real per-shard limits on)",
                (true, true) => " (limits off)",
                _ => "",
            }
        );
    }

    let results = Arc::new(Mutex::new(Results {
        positions: vec![None; args.records as usize],
        latency_us: Some(Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")),
        ..Results::default()
    }));
    let resolved = Arc::new(AtomicU64::new(0));
    // A line a second for people; none under --json, whose run then has no
    // timer of its own besides the pacer's.
    let progress =
        (!args.json).then(|| spawn_progress(producer.clone(), resolved.clone(), args.records));
    // Sampled after every put, when the buffer is at its fullest.
    let mut peak_buffered = 0;

    let cpu_start = cpu_time();
    let started = Instant::now();
    let keys = partition_keys(args.partition_keys);
    let mut pacer = Pacer::new(args.rate, args.records);
    while let Some(range) = pacer.next().await {
        let base = range.start;
        let records = records(&keys, run_id, args.record_size, range.clone());
        let results = results.clone();
        let resolved = resolved.clone();
        let put_at = Instant::now();
        producer
            .put_many_with(records, move |k, result| {
                results
                    .lock()
                    .record((base + k as u64) as usize, put_at.elapsed(), result);
                resolved.fetch_add(1, Relaxed);
            })
            .await;
        peak_buffered = peak_buffered.max(producer.buffered_bytes());
    }
    producer.flush().await.map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu_start;
    if let Some(progress) = progress {
        progress.abort();
    }
    let metrics = producer.metrics();
    producer
        .shutdown(Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    // Shut down: no callback runs any more, so the results are ours alone.
    let results = std::mem::take(&mut *results.lock());

    let (verified, out_of_order) = if verify {
        let client = match &sim {
            Some(sim) => kpl_readback::client(&sim.endpoint()),
            None => sdk_client(&config_for_read).await?,
        };
        if !args.json {
            eprintln!("verifying: reading {} back...", args.stream);
        }
        let (ok, out_of_order) = check_stream(&client, &args, run_id, &results).await?;
        (Some(ok), Some(out_of_order))
    } else {
        (None, None)
    };

    let latency = results.latency_us.as_ref().expect("histogram");
    let ms = |us: u64| us as f64 / 1000.0;
    let failed: u64 = results.failures.values().sum();
    let report = Report {
        records: args.records,
        record_size: args.record_size,
        partition_keys: args.partition_keys,
        shards: args.shards,
        aggregation,
        seconds: elapsed.as_secs_f64(),
        records_per_sec: args.records as f64 / elapsed.as_secs_f64(),
        mb_per_sec: (args.records as f64 * args.record_size as f64) / elapsed.as_secs_f64() / 1e6,
        kinesis_records: metrics.kinesis_records_put,
        user_records_per_kinesis_record: metrics.user_records_per_kinesis_record,
        put_records_calls: metrics.put_records_requests,
        latency_ms_p50: ms(latency.value_at_quantile(0.50)),
        latency_ms_p99: ms(latency.value_at_quantile(0.99)),
        latency_ms_max: ms(latency.max()),
        retries: (metrics.retries_per_record
            * (metrics.user_records_put + metrics.user_records_failed) as f64)
            .round() as u64,
        throttled: metrics.throttled_attempts,
        failed,
        peak_buffered_bytes: peak_buffered,
        cpu_seconds: cpu.as_secs_f64(),
        per_shard_records_per_sec: per_shard_rates(&results, elapsed),
        verified,
        out_of_order,
        metrics: metrics_setting,
        metrics_datums_uploaded: metrics.metrics_datums_uploaded,
        spool: config_for_read
            .spool_directory
            .as_ref()
            .map(|_| config_for_read.spool_sync.to_string()),
        spool_bytes_per_user_byte: config_for_read.spool_directory.as_ref().map(|_| {
            let key = partition_key(0, args.partition_keys).len();
            metrics.spool_bytes_written as f64
                / (args.records as f64 * (args.record_size + key) as f64)
        }),
    };
    print_report(&report, &results, args.json);
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    Ok(failed == 0 && verified != Some(false))
}

/// The driver's own cost: the records paced and built as a run does, then
/// dropped. A run's per-result bookkeeping (a lock and a histogram entry per
/// record) is not in it.
async fn driver_only(args: &PerfArgs, run_id: u32) -> Result<bool, String> {
    let cpu_start = cpu_time();
    let started = Instant::now();
    let keys = partition_keys(args.partition_keys);
    let mut pacer = Pacer::new(args.rate, args.records);
    let mut bytes = 0usize;
    while let Some(range) = pacer.next().await {
        for record in records(&keys, run_id, args.record_size, range) {
            // Read the record, so building it is not optimized away.
            bytes += std::hint::black_box(&record).data().len();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_time() - cpu_start).as_secs_f64();
    let report = serde_json::json!({
        "driver_only": true,
        "records": args.records,
        "record_size": args.record_size,
        "rate": args.rate,
        "seconds": elapsed,
        "records_per_sec": args.records as f64 / elapsed,
        "cpu_seconds": cpu,
        "cpu_seconds_per_million": cpu * 1e6 / args.records as f64,
        "bytes": bytes,
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "driver only: {} records of {} bytes built and paced in {elapsed:.2} s, CPU {cpu:.2} s ({:.2} s per million records)",
            args.records,
            args.record_size,
            cpu * 1e6 / args.records as f64
        );
    }
    Ok(true)
}

/// An SDK client for setting up and reading the stream, made as the
/// producer makes its own (region, credentials, endpoint, CaCertPath,
/// proxy), with the SDK's standard retries for these few calls.
async fn sdk_client(config: &Config) -> Result<aws_sdk_kinesis::Client, String> {
    let client = kpl_core::client::kinesis_client(config)
        .await
        .map_err(|e| e.to_string())?;
    let conf = client
        .config()
        .to_builder()
        .retry_config(aws_config::retry::RetryConfig::standard())
        .build();
    Ok(aws_sdk_kinesis::Client::from_conf(conf))
}

/// Prints a line a second: resolved records, their rate, the buffer.
fn spawn_progress(
    producer: Producer,
    resolved: Arc<AtomicU64>,
    total: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.tick().await;
        let mut last_print = Instant::now();
        let mut last_resolved = 0;
        loop {
            tick.tick().await;
            let m = producer.metrics();
            let done = resolved.load(Relaxed);
            let rate = (done - last_resolved) as f64 / last_print.elapsed().as_secs_f64();
            eprintln!(
                "{:>5.1}s  {done}/{total} resolved  {:>9.0} rec/s  buffered {} records / {:.1} MB  throttled {}",
                started.elapsed().as_secs_f64(),
                rate,
                m.user_records_pending,
                m.buffered_bytes as f64 / 1e6,
                m.throttled_attempts,
            );
            last_print = Instant::now();
            last_resolved = done;
        }
    })
}

/// CPU time (user + system) of this process so far.
pub fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

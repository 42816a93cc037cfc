//! Runs one plan: a producer over the model on a paused clock, the load
//! and the events on their schedule, then flush, shutdown and the checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use kpl_core::{Config, Error, ErrorKind, Producer, PutResult, UserRecord};
use kpl_sim::{Model, Retention, SimConfig};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::check::{self, Report};
use crate::client::{ModelClient, Outages};
use crate::plan::{Api, Burst, Event, Plan};

/// A record's one result, as the ledger keeps it.
#[derive(Debug, Clone)]
pub enum Settled {
    Delivered {
        shard_id: Arc<str>,
        sequence_number: Arc<str>,
        sub_sequence_number: u64,
    },
    Failed(ErrorKind, Option<String>),
}

/// Every record put, with the results it got.
pub struct Ledger {
    /// Per record: (stream index or None, results).
    pub records: Mutex<Vec<(Option<usize>, Vec<Settled>)>>,
    pub shut_down: AtomicBool,
    pub late: Mutex<u64>,
}

impl Ledger {
    fn settle(&self, id: usize, result: Result<PutResult, Error>) {
        if self.shut_down.load(Ordering::SeqCst) {
            *self.late.lock() += 1;
        }
        let settled = match result {
            Ok(r) => Settled::Delivered {
                shard_id: r.shard_id().into(),
                sequence_number: r.sequence_number().into(),
                sub_sequence_number: r.sub_sequence_number(),
            },
            Err(e) => Settled::Failed(e.kind(), e.code().map(str::to_owned)),
        };
        self.records.lock()[id].1.push(settled);
    }
}

/// The bytes of record `id`: its id, then filler derived from it.
pub fn payload(id: u64, size: usize) -> Bytes {
    let mut data = id.to_be_bytes().to_vec();
    data.extend((0..size.saturating_sub(8)).map(|i| (id as usize + i) as u8));
    Bytes::from(data)
}

/// Runs `plan` on a fresh single-thread runtime with a paused clock.
pub fn run(plan: &Plan) -> Report {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(run_paused(plan))
}

async fn run_paused(plan: &Plan) -> Report {
    let start = Instant::now();
    let mut sim = SimConfig::default()
        .limits(plan.limits.clone())
        .faults(plan.faults.clone())
        .retention(Retention {
            max_records_per_shard: None,
            max_bytes_per_shard: None,
        });
    for (name, shards) in &plan.streams {
        sim = sim.stream(name, *shards);
    }
    let model = Model::new(&sim).expect("the plan's streams are valid");
    let windows =
        |w: &[(Duration, Duration)]| w.iter().map(|&(a, b)| (start + a, start + b)).collect();
    let outages = Outages {
        list_shards: windows(&plan.list_shards_outages),
        credentials: windows(&plan.credential_outages),
    };
    let client = ModelClient::new(model.clone(), plan.request_timeout, outages);
    let producer = Producer::with_kinesis(config(plan), client.clone()).expect("no spool to open");
    let ledger = Arc::new(Ledger {
        records: Mutex::new(Vec::new()),
        shut_down: AtomicBool::new(false),
        late: Mutex::new(0),
    });
    let events = tokio::spawn(play_events(plan.clone(), model.clone(), start));
    let mut samples = check::Samples::default();
    for burst in &plan.bursts {
        tokio::time::sleep_until(start + burst.at).await;
        put_burst(plan, &producer, &ledger, burst).await;
        samples.take(&producer);
    }
    let deleted = events.await.expect("the event task ends");
    let flushed = producer.flush().await;
    samples.take(&producer);
    // Past every deadline, backoff and refresh interval: only live timers left.
    let rest = plan
        .refresh
        .max(plan.max_buffered_time)
        .max(Duration::from_secs(30));
    tokio::time::sleep(rest + Duration::from_secs(1)).await;
    samples.timers_at_rest = producer.pipeline_stats().timers;
    let shutdown = producer.shutdown(Duration::from_secs(60)).await;
    ledger.shut_down.store(true, Ordering::SeqCst);
    // Anything still to come would arrive in this time.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let elapsed = start.elapsed();
    let outstanding = producer.outstanding();
    drop(producer);
    check::check(check::Run {
        plan,
        model: &model,
        client: &client,
        ledger: &ledger,
        samples,
        deleted,
        elapsed,
        flushed: flushed.map_err(|e| e.to_string()),
        shutdown: shutdown.map_err(|e| e.to_string()),
        outstanding,
    })
}

fn config(plan: &Plan) -> Config {
    Config::builder()
        .stream(plan.streams[0].0.clone())
        .random_seed(plan.seed)
        .aggregation_enabled(plan.aggregation)
        .strict_ordering(plan.strict_ordering)
        .record_max_buffered_time(plan.max_buffered_time)
        .record_ttl(plan.ttl)
        .shard_map_refresh_interval(plan.refresh)
        .max_buffered(plan.max_buffered_records, 256 * 1024 * 1024)
        .max_connections(plan.max_connections)
        .rate_limit(plan.rate_limit)
        .request_timeout(plan.request_timeout)
        // The suite checks the pipeline; CloudWatch uploads have tests of their own.
        .set("MetricsLevel", "none")
        .expect("a KPL setting")
        .build()
        .expect("the plan's settings are in range")
}

async fn put_burst(plan: &Plan, producer: &Producer, ledger: &Arc<Ledger>, burst: &Burst) {
    let base = {
        let mut records = ledger.records.lock();
        let base = records.len();
        records.extend((0..burst.count).map(|_| (burst.stream, Vec::new())));
        base
    };
    let stream: Arc<str> = match burst.stream {
        Some(i) => plan.streams[i].0.as_str().into(),
        None => "no-such-stream".into(),
    };
    let records: Vec<UserRecord> = (0..burst.count as usize)
        .map(|i| record(plan, (base + i) as u64, &stream))
        .collect();
    match burst.api {
        Api::PutMany => {
            let ledger = ledger.clone();
            producer
                .put_many_with(records, move |i, r| ledger.settle(base + i, r))
                .await;
        }
        Api::PutWith => {
            for (i, r) in records.into_iter().enumerate() {
                let sink = ledger.clone();
                if let Err(e) = producer
                    .put_with(r, move |r| sink.settle(base + i, r))
                    .await
                {
                    ledger.settle(base + i, Err(e));
                }
            }
        }
        Api::TryPut => {
            for (i, r) in records.into_iter().enumerate() {
                let sink = ledger.clone();
                if let Err(e) = producer.try_put_with(r, move |r| sink.settle(base + i, r)) {
                    ledger.settle(base + i, Err(e));
                }
            }
        }
    }
}

fn record(plan: &Plan, id: u64, stream: &Arc<str>) -> UserRecord {
    let (lo, hi) = plan.record_size;
    let size = lo + (id as usize * 7919) % (hi - lo + 1);
    let key = format!("k{}", id % plan.keys as u64);
    let record = UserRecord::new(key, payload(id, size)).with_stream(stream.clone());
    if plan.explicit_every > 0 && id.is_multiple_of(plan.explicit_every as u64) {
        let ehk = (id as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
        return record.with_explicit_hash_key(ehk.to_string());
    }
    record
}

/// Plays the plan's reshards and deletions; returns the deleted streams.
async fn play_events(plan: Plan, model: Model, start: Instant) -> Vec<usize> {
    let mut deleted = Vec::new();
    for (at, event) in &plan.events {
        tokio::time::sleep_until(start + *at).await;
        match *event {
            Event::Split { stream } => split(&model, &plan.streams[stream].0),
            Event::Merge { stream } => merge(&model, &plan.streams[stream].0),
            Event::Delete { stream } => {
                if model.delete_stream(&plan.streams[stream].0).is_ok() {
                    deleted.push(stream);
                }
            }
        }
    }
    deleted
}

/// Splits the widest open shard in the middle of its range.
fn split(model: &Model, stream: &str) {
    let Ok(shards) = model.list_shards(stream) else {
        return;
    };
    if let Some(s) = shards
        .iter()
        .filter(|s| s.open)
        .max_by_key(|s| s.end - s.start)
    {
        let middle = s.start + (s.end - s.start) / 2 + 1;
        let _ = model.split_shard(stream, &s.shard_id, middle);
    }
}

/// Merges the first two adjacent open shards.
fn merge(model: &Model, stream: &str) {
    let Ok(mut shards) = model.list_shards(stream) else {
        return;
    };
    shards.retain(|s| s.open);
    shards.sort_by_key(|s| s.start);
    if let Some(pair) = shards
        .windows(2)
        .find(|w| w[0].end.checked_add(1) == Some(w[1].start))
    {
        let _ = model.merge_shards(stream, &pair[0].shard_id, &pair[1].shard_id);
    }
}

//! StrictOrdering in simulated time, one fault at a time: with it, no
//! record's first occurrence in the stream comes after a later record of
//! its key, and every record is delivered once; without it, the same
//! load comes out of order (so the check can fail).

use std::sync::Arc;
use std::time::Duration;

use kpl_core::{Config, Producer, UserRecord};
use kpl_sim::{Faults, Limits, Model, SimConfig};
use parking_lot::Mutex;

use crate::client::{ModelClient, Outages};
use crate::order::inversions;
use crate::run::payload;

/// A reshard played while records flow.
#[derive(Clone, Copy, PartialEq)]
enum Reshard {
    None,
    Split,
    Merge,
}

struct Load {
    strict: bool,
    aggregation: bool,
    /// Records per second offered, over `seconds`.
    rate: u32,
    seconds: u32,
    keys: u32,
    shards: u32,
    faults: Faults,
    reshard: Reshard,
}

impl Load {
    fn new(strict: bool, aggregation: bool, faults: Faults) -> Load {
        Load {
            strict,
            aggregation,
            // Three times what two 200-records/s shards take.
            rate: 1200,
            seconds: 5,
            keys: 100,
            shards: 2,
            faults,
            reshard: Reshard::None,
        }
    }
}

struct Outcome {
    inversions: u64,
    records: usize,
    /// Copies read beyond the first of each record.
    duplicates: usize,
    /// Shards the stream has had, closed ones too.
    shards: usize,
}

/// Runs `load` over a model and checks that every record got one result,
/// delivered, and that a KCL reader sees it; returns the inversions.
async fn play(load: Load) -> Outcome {
    let limits = Limits {
        shard_records_per_sec: 200,
        ..Limits::default()
    };
    let mut sim = SimConfig::default()
        .limits(limits)
        .faults(load.faults.clone())
        .stream("s", load.shards);
    sim = sim.retention(kpl_sim::Retention {
        max_records_per_shard: None,
        max_bytes_per_shard: None,
    });
    let model = Model::new(&sim).expect("a valid stream");
    let config = Config::builder()
        .stream("s")
        .random_seed(11)
        .aggregation_enabled(load.aggregation)
        .strict_ordering(load.strict)
        .record_ttl(Duration::from_secs(600))
        .request_timeout(Duration::from_secs(2))
        .shard_map_refresh_interval(Duration::from_secs(2))
        .set("MetricsLevel", "none")
        .expect("a KPL setting")
        .build()
        .expect("valid settings");
    let client = ModelClient::new(model.clone(), config.request_timeout, Outages::default());
    let producer = Producer::with_kinesis(config, client).expect("no spool to open");
    let total = (load.rate * load.seconds) as usize;
    let results: Arc<Mutex<Vec<Vec<bool>>>> = Arc::new(Mutex::new(vec![Vec::new(); total]));
    let per_tick = (load.rate / 100) as usize;
    for tick in 0..total / per_tick {
        if tick == total / per_tick / 2 {
            reshard(&model, load.reshard);
        }
        let base = tick * per_tick;
        let records = (base..base + per_tick).map(|id| {
            let key = format!("k{}", id as u32 % load.keys);
            UserRecord::new(key, payload(id as u64, 40))
        });
        let sink = results.clone();
        producer
            .put_many_with(records, move |i, r| sink.lock()[base + i].push(r.is_ok()))
            .await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    producer.flush().await.expect("flushed");
    producer
        .shutdown(Duration::from_secs(60))
        .await
        .expect("shut down");
    let results = results.lock();
    for (id, r) in results.iter().enumerate() {
        assert_eq!(r, &[true], "record {id}: one result, delivered");
    }
    let shards = model.records("s").expect("the stream");
    let read: Vec<u64> = shards
        .iter()
        .flat_map(crate::check::kcl_records)
        .map(|u| crate::check::id_of(&u.data))
        .collect();
    let seen: std::collections::HashSet<u64> = read.iter().copied().collect();
    assert_eq!(seen.len(), total, "a KCL reader sees every record");
    Outcome {
        inversions: inversions(&shards),
        records: total,
        duplicates: read.len() - total,
        shards: shards.len(),
    }
}

fn reshard(model: &Model, reshard: Reshard) {
    let mut open: Vec<_> = model
        .list_shards("s")
        .unwrap()
        .into_iter()
        .filter(|s| s.open)
        .collect();
    open.sort_by_key(|s| s.start);
    match reshard {
        Reshard::None => {}
        Reshard::Split => {
            let s = &open[0];
            model
                .split_shard("s", &s.shard_id, s.start + (s.end - s.start) / 2 + 1)
                .unwrap();
        }
        Reshard::Merge => {
            model
                .merge_shards("s", &open[0].shard_id, &open[1].shard_id)
                .unwrap();
        }
    }
}

/// Plays `load` with StrictOrdering, aggregation off and on: no inversion.
async fn in_order(faults: Faults, reshard: Reshard) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for aggregation in [false, true] {
        let mut load = Load::new(true, aggregation, faults.clone());
        load.reshard = reshard;
        let out = play(load).await;
        assert_eq!(
            out.inversions, 0,
            "aggregation {aggregation}: {} of {} records out of put order",
            out.inversions, out.records
        );
        outcomes.push(out);
    }
    outcomes
}

fn faults(f: impl FnOnce(&mut Faults)) -> Faults {
    let mut faults = Faults {
        seed: 5,
        ..Faults::none()
    };
    f(&mut faults);
    faults
}

#[tokio::test(start_paused = true)]
async fn without_strict_ordering_records_come_out_of_order() {
    for aggregation in [false, true] {
        // Per-record failures reorder plain records; a 500's backoff lets
        // newer aggregates overtake the ones it sends again.
        let faults = faults(|f| {
            f.record_internal_failure = 0.05;
            f.request_500 = 0.05;
        });
        let out = play(Load::new(false, aggregation, faults)).await;
        println!(
            "aggregation {aggregation}: {} of {} records out of put order",
            out.inversions, out.records
        );
        assert!(
            out.inversions > 0,
            "aggregation {aggregation}: throttling and failures reorder records without StrictOrdering"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn strict_ordering_through_throttling() {
    in_order(faults(|_| {}), Reshard::None).await;
}

#[tokio::test(start_paused = true)]
async fn strict_ordering_through_per_record_failures() {
    in_order(faults(|f| f.record_internal_failure = 0.1), Reshard::None).await;
}

#[tokio::test(start_paused = true)]
async fn strict_ordering_through_500s() {
    in_order(faults(|f| f.request_500 = 0.1), Reshard::None).await;
}

#[tokio::test(start_paused = true)]
async fn strict_ordering_through_timeouts_after_the_store() {
    let faults = faults(|f| {
        // Aggregated, a few dozen requests carry the whole load.
        f.timeout_after_store = 0.2;
        f.timeout_hold = Duration::from_secs(5);
    });
    for out in in_order(faults, Reshard::None).await {
        assert!(
            out.duplicates > 0,
            "stored requests timed out and went again"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn strict_ordering_across_a_split() {
    for out in in_order(faults(|f| f.record_internal_failure = 0.02), Reshard::Split).await {
        assert_eq!(out.shards, 4, "one shard split in two");
    }
}

#[tokio::test(start_paused = true)]
async fn strict_ordering_across_a_merge() {
    for out in in_order(faults(|f| f.record_internal_failure = 0.02), Reshard::Merge).await {
        assert_eq!(out.shards, 3, "two shards merged into one");
    }
}

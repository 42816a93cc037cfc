//! The producer under pressure, against kpl-sim with the service's limits
//! and injected faults: throttling, backoff, retry rules, expiry and
//! resharding. Every test ends with every record resolved.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use kpl_core::{Error, ErrorKind, Producer, PutResult, UserRecord};
use kpl_sim::{Faults, Sim, SimConfig};
use parking_lot::Mutex;

/// Results as they arrive, with the time each arrived.
#[derive(Default)]
struct Outcomes {
    results: Vec<(usize, Instant, Result<PutResult, Error>)>,
}

type Shared = Arc<Mutex<Outcomes>>;

async fn put_tracked(producer: &Producer, outcomes: &Shared, i: usize, record: UserRecord) {
    let outcomes = outcomes.clone();
    producer
        .put_with(record, move |r| {
            outcomes.lock().results.push((i, Instant::now(), r))
        })
        .await
        .expect("accepted");
}

fn limited_sim(streams: &[(&str, u32)], faults: Faults) -> SimConfig {
    let mut config = SimConfig::default().faults(faults);
    for (name, shards) in streams {
        config = config.stream(name, *shards);
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_times_capacity_delivers_at_capacity_with_few_throttles() {
    let sim = Sim::start(limited_sim(&[("busy", 2)], Faults::none()))
        .await
        .unwrap();
    let max_buffered = 3000;
    let producer = producer(
        config(&sim.endpoint())
            .stream("busy")
            .aggregation_enabled(false)
            .max_buffered(max_buffered, 64 << 20)
            .record_ttl(Duration::from_secs(60)),
    )
    .await;
    let outcomes = Shared::default();
    // Offer 6000 records/s (3x two shards' 2000/s) for 5 s.
    let offered = 30_000;
    let started = Instant::now();
    let mut peak_outstanding = 0;
    for i in 0..offered {
        let due = started + Duration::from_secs_f64(i as f64 / 6000.0);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        put_tracked(
            &producer,
            &outcomes,
            i,
            UserRecord::new(format!("k{i}"), payload(i)),
        )
        .await;
        peak_outstanding = peak_outstanding.max(producer.outstanding());
    }
    producer.flush().await.unwrap();
    let elapsed = started.elapsed();
    let outcomes = std::mem::take(&mut *outcomes.lock());
    assert_eq!(outcomes.results.len(), offered, "every record resolved");
    assert!(
        peak_outstanding <= max_buffered as u64,
        "{peak_outstanding} buffered"
    );
    let acked: Vec<_> = outcomes
        .results
        .iter()
        .filter_map(|(i, t, r)| r.as_ref().ok().map(|r| (*i, *t, r.clone())))
        .collect();
    assert_eq!(
        acked.len(),
        offered,
        "nothing failed: {:?}",
        outcomes.results.iter().find(|r| r.2.is_err())
    );
    // Delivered rate once the shards' one-second burst is spent, until the end.
    let window_start = started + Duration::from_secs(2);
    let window_end = started + elapsed - Duration::from_millis(500);
    let in_window = acked
        .iter()
        .filter(|(_, t, _)| *t >= window_start && *t < window_end)
        .count();
    let rate = in_window as f64 / (window_end - window_start).as_secs_f64();
    let metrics = producer.metrics();
    let throttled_per_record = metrics.throttled_attempts as f64 / offered as f64;
    eprintln!(
        "3x load on 2 shards: {rate:.0} records/s delivered (capacity 2000), {throttled_per_record:.3} \
         throttled attempts per record, peak {peak_outstanding} buffered, {elapsed:?} in all"
    );
    assert!(
        (1800.0..=2200.0).contains(&rate),
        "delivered {rate:.0}/s against 2000/s of capacity"
    );
    assert!(
        throttled_per_record < 0.2,
        "{throttled_per_record:.3} throttled attempts per record"
    );
    let put: Vec<_> = acked
        .into_iter()
        .map(|(i, _, r)| (format!("k{i}"), payload(i), r))
        .collect();
    verify(&read_stream(&client(&sim.endpoint()), "busy").await, &put);
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_shard_does_not_slow_the_others() {
    let sim = Sim::start(limited_sim(&[("hotcold", 2)], Faults::none()))
        .await
        .unwrap();
    let producer = producer(
        config(&sim.endpoint())
            .stream("hotcold")
            .aggregation_enabled(false),
    )
    .await;
    let hot = Shared::default();
    let cold = Shared::default();
    let mut cold_put_at = HashMap::new();
    let started = Instant::now();
    let mut i = 0;
    // 3000 records/s at shard 0 (3x its limit), 50/s at shard 1, for 4 s.
    while started.elapsed() < Duration::from_secs(4) {
        for _ in 0..30 {
            let r =
                UserRecord::new(format!("h{i}"), payload(i)).with_explicit_hash_key(i.to_string());
            put_tracked(&producer, &hot, i, r).await;
            i += 1;
        }
        if i % 600 == 0 {
            let r = UserRecord::new(format!("c{i}"), payload(i))
                .with_explicit_hash_key((u128::MAX - i as u128).to_string());
            cold_put_at.insert(i, Instant::now());
            put_tracked(&producer, &cold, i, r).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    producer.flush().await.unwrap();
    let cold = std::mem::take(&mut *cold.lock());
    let mut latencies: Vec<Duration> = cold
        .results
        .iter()
        .map(|(i, t, r)| {
            assert!(r.is_ok(), "{r:?}");
            *t - cold_put_at[i]
        })
        .collect();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    let hot_throttles = producer.metrics().throttled_attempts;
    eprintln!(
        "cold shard: {} records, p50 {:?}, p99 {p99:?}; hot shard throttled {hot_throttles} times",
        latencies.len(),
        latencies[latencies.len() / 2]
    );
    assert!(
        hot_throttles > 0,
        "the hot shard was never throttled: the test did not test"
    );
    // RecordMaxBufferedTime is 100 ms; the cold shard must not wait behind the hot one.
    assert!(p99 < Duration::from_millis(400), "cold shard p99 {p99:?}");
    assert!(hot.lock().results.iter().all(|(_, _, r)| r.is_ok()));
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_end_in_a_result_before_the_ttl_and_acked_records_are_stored() {
    let faults = Faults {
        seed: 7,
        record_internal_failure: 0.2,
        request_500: 0.1,
        request_503: 0.05,
        drop_connection: 0.05,
        timeout: 0.05,
        timeout_hold: Duration::from_secs(5),
        ..Faults::none()
    };
    let sim = Sim::start(limited_sim(&[("faulty", 2)], faults).unlimited())
        .await
        .unwrap();
    let ttl = Duration::from_secs(12);
    let producer = producer(
        config(&sim.endpoint())
            .stream("faulty")
            .record_ttl(ttl)
            .request_timeout(Duration::from_millis(800))
            // Many small requests, so every request-level fault shows up.
            .aggregation_enabled(false)
            .collection_max_count(10),
    )
    .await;
    let outcomes = Shared::default();
    let mut put_at = Vec::new();
    for i in 0..2000 {
        put_at.push(Instant::now());
        put_tracked(
            &producer,
            &outcomes,
            i,
            UserRecord::new(format!("k{}", i % 50), payload(i)),
        )
        .await;
    }
    producer.flush().await.unwrap();
    let outcomes = std::mem::take(&mut *outcomes.lock());
    assert_eq!(outcomes.results.len(), 2000);
    let mut acked = Vec::new();
    let mut failed = 0;
    for (i, t, r) in outcomes.results {
        assert!(
            t - put_at[i] < ttl + Duration::from_secs(2),
            "record {i} resolved after {:?}",
            t - put_at[i]
        );
        match r {
            Ok(r) => acked.push((format!("k{}", i % 50), payload(i), r)),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Expired, "{e}");
                failed += 1;
            }
        }
    }
    let metrics = producer.metrics();
    eprintln!(
        "faults: {} acked, {failed} expired, errors {:?}",
        acked.len(),
        metrics.errors_by_code
    );
    for code in [
        "InternalFailure",
        "ServiceUnavailable",
        "ConnectionError",
        "RequestTimeout",
    ] {
        assert!(
            metrics.errors_by_code.contains_key(code),
            "no {code} seen: {:?}",
            metrics.errors_by_code
        );
    }
    assert!(acked.len() > 1900, "only {} of 2000 delivered", acked.len());
    sim.set_faults(Faults::none()); // the read-back is not under test
    let duplicates = verify_acked(
        &read_stream(&client(&sim.endpoint()), "faulty").await,
        &acked,
    );
    eprintln!(
        "faults: {duplicates} records stored more than once (answers lost to timeouts and dropped connections)"
    );
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_stream_fails_records_at_once_not_at_their_ttl() {
    let sim = sim(&[("doomed", 1)]).await;
    let producer = producer(config(&sim.endpoint()).stream("doomed")).await;
    producer
        .put(UserRecord::new("k", "before"))
        .await
        .unwrap()
        .await
        .unwrap();
    sim.delete_stream("doomed").unwrap();
    let started = Instant::now();
    let handles = producer
        .put_many((0..50).map(|i| UserRecord::new(format!("k{i}"), payload(i))))
        .await;
    for h in handles {
        let err = h.unwrap().await.unwrap_err();
        assert_eq!(err.code(), Some("ResourceNotFoundException"), "{err}");
        assert_eq!(err.attempts().len(), 1, "permanent errors are not retried");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_if_throttled_fails_throttled_records_at_once() {
    let sim = Sim::start(limited_sim(&[("strict", 1)], Faults::none()))
        .await
        .unwrap();
    let producer = producer(
        config(&sim.endpoint())
            .stream("strict")
            .aggregation_enabled(false)
            .fail_if_throttled(true)
            // Our limiter would keep the shard from throttling at all.
            .rate_limit(1000),
    )
    .await;
    let handles = producer
        .put_many((0..3000).map(|i| UserRecord::new(format!("k{i}"), payload(i))))
        .await;
    let (mut ok, mut throttled) = (0, 0);
    for h in handles {
        match h.unwrap().await {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");
                assert_eq!(e.code(), Some("ProvisionedThroughputExceededException"));
                assert_eq!(e.attempts().len(), 1, "not retried");
                assert!(e.record().is_some());
                throttled += 1;
            }
        }
    }
    eprintln!("FailIfThrottled: {ok} delivered, {throttled} failed as throttled");
    assert!(throttled > 0 && ok > 0, "{ok} ok, {throttled} throttled");
    assert_eq!(producer.metrics().retries_per_record, 0.0);
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_keep_failing_expire_with_their_attempts() {
    let faults = Faults {
        record_internal_failure: 1.0,
        ..Faults::none()
    };
    let sim = Sim::start(limited_sim(&[("failing", 1)], faults).unlimited())
        .await
        .unwrap();
    let ttl = Duration::from_millis(600);
    let producer = producer(config(&sim.endpoint()).stream("failing").record_ttl(ttl)).await;
    let started = Instant::now();
    let handles = producer
        .put_many((0..10).map(|i| UserRecord::new(format!("k{i}"), payload(i))))
        .await;
    for h in handles {
        let err = h.unwrap().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Expired, "{err}");
        assert!(err.to_string().contains("InternalFailure"), "{err}");
        assert!(
            err.attempts().len() >= 2,
            "{} attempts",
            err.attempts().len()
        );
        assert!(
            err.attempts()
                .iter()
                .all(|a| a.error_code.as_deref() == Some("InternalFailure"))
        );
        assert!(err.is_retryable());
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= ttl && elapsed < ttl + Duration::from_secs(2),
        "expired after {elapsed:?}"
    );
    assert_eq!(producer.metrics().user_record_expired, 10);
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

/// What a reshard during a run left in the stream, as a KCL consumer sees it.
struct ReshardRun {
    records: usize,
    /// Aggregates that landed on a shard that does not hold all their records.
    dropped_aggregates: usize,
    duplicates: usize,
}

/// Records flow for 3 s into a 2-shard stream; at 1 s shard 0 is split, at
/// 2 s the split's upper child is merged with shard 1. Every record must be
/// acked, at the shard and sequence number its result names.
async fn reshard_while_records_flow(sim: Sim) -> ReshardRun {
    let client = client(&sim.endpoint());
    let producer = producer(
        config(&sim.endpoint())
            .stream("resharded")
            .record_max_buffered_time(Duration::from_millis(50)),
    )
    .await;
    let outcomes = Shared::default();
    let started = Instant::now();
    let mut i = 0;
    let mut split = false;
    let mut merged = false;
    while started.elapsed() < Duration::from_secs(3) {
        for _ in 0..50 {
            put_tracked(
                &producer,
                &outcomes,
                i,
                UserRecord::new(format!("k{}", i % 200), payload(i)),
            )
            .await;
            i += 1;
        }
        if !split && started.elapsed() > Duration::from_secs(1) {
            // Split shard 0 at its middle.
            client
                .split_shard()
                .stream_name("resharded")
                .shard_to_split("shardId-000000000000")
                .new_starting_hash_key((u128::MAX / 4).to_string())
                .send()
                .await
                .unwrap();
            split = true;
        }
        if !merged && started.elapsed() > Duration::from_secs(2) {
            // Merge the split's upper child with shard 1.
            let shards = sim.records("resharded").unwrap();
            let upper = shards
                .iter()
                .find(|s| s.open && s.starting_hash_key == u128::MAX / 4)
                .unwrap();
            let right = shards
                .iter()
                .find(|s| s.open && s.starting_hash_key == upper.ending_hash_key + 1)
                .unwrap();
            client
                .merge_shards()
                .stream_name("resharded")
                .shard_to_merge(&upper.shard_id)
                .adjacent_shard_to_merge(&right.shard_id)
                .send()
                .await
                .unwrap();
            merged = true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    producer.flush().await.unwrap();
    let outcomes = std::mem::take(&mut *outcomes.lock());
    assert_eq!(outcomes.results.len(), i);
    let acked: Vec<_> = outcomes
        .results
        .into_iter()
        .map(|(i, _, r)| (format!("k{}", i % 200), payload(i), r.expect("delivered")))
        .collect();
    let view = kpl_readback::read_stream_as_kcl(&client, "resharded")
        .await
        .unwrap();
    let duplicates = verify_acked(&view.records, &acked);
    assert_eq!(view.records.len() - duplicates, acked.len());
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
    ReshardRun {
        records: acked.len(),
        dropped_aggregates: view.dropped_aggregates.len(),
        duplicates,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_while_records_flow_loses_nothing_and_kcl_sees_each_record_once() {
    let run = reshard_while_records_flow(sim(&[("resharded", 2)]).await).await;
    eprintln!(
        "reshard: {} records, {} aggregates landed across a new boundary (dropped by consumers, their records sent again), \
         {} duplicates as a KCL consumer sees the stream",
        run.records, run.dropped_aggregates, run.duplicates
    );
    assert_eq!(run.duplicates, 0, "a KCL consumer sees some records twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reshard_only_requests_already_on_their_way_straddle_a_new_boundary() {
    // Every request, ListShards too, answered 150 ms late: many requests are
    // in flight at the split, and reading the new map takes as long again.
    // What was in flight at the split may land across the new boundary;
    // what the producer sends after the first answer from an unexpected
    // shard must not.
    let run =
        reshard_while_records_flow(slow_sim("resharded", 2, Duration::from_millis(150)).await)
            .await;
    eprintln!(
        "reshard under 150 ms latency: {} records, {} aggregates landed across a new boundary, {} duplicates (KCL view)",
        run.records, run.dropped_aggregates, run.duplicates
    );
    assert_eq!(run.duplicates, 0, "a KCL consumer sees some records twice");
    // Measured: 1 with the hold, 3 to 4 without it (the producer went on
    // sending aggregates built from the old map until the new map was in).
    assert!(
        run.dropped_aggregates <= 2,
        "{} aggregates straddled a new boundary: requests sent after the first answer from an \
         unexpected shard carried aggregates built from the old map",
        run.dropped_aggregates
    );
}

//! The producer and the service as it is now, against kpl-sim: each
//! stream's own record limit (`MaxRecordSizeInKiB`), 10 MiB requests, large
//! records among small ones at a shard's rate, and streams named by ARN.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use kpl_core::{ErrorKind, UserRecord};
use kpl_sim::{MIB, Sim, SimConfig, StreamSpec};

fn spec(shards: u32, max_record_kib: u32) -> StreamSpec {
    StreamSpec {
        max_record_kib,
        ..StreamSpec::provisioned(shards)
    }
}

/// A record of `size` bytes in all (data plus the key `k<i>`), distinct per `i`.
fn sized(i: usize, size: usize) -> UserRecord {
    let key = format!("k{i}");
    let mut data = vec![(i % 251) as u8; size - key.len()];
    data[..8].copy_from_slice(&(i as u64).to_be_bytes());
    UserRecord::new(key, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_up_to_the_stream_limit_arrive_and_larger_ones_fail_at_once_unsent() {
    let sim = Sim::start(
        SimConfig::default()
            .unlimited()
            .stream_with("big", spec(2, 10240))
            .stream_with("small", spec(1, 1024)),
    )
    .await
    .unwrap();
    let endpoint = sim.endpoint();
    let big = producer(
        config(&endpoint)
            .stream("big")
            .max_user_record_size(10 * MIB),
    )
    .await;
    // 5 MiB, exactly 10 MiB (data + key), and small ones around them.
    let records = vec![
        sized(0, 5 * MIB),
        sized(1, 100),
        sized(2, 10 * MIB),
        sized(3, MIB + 1),
    ];
    let put = deliver(&big, records).await;
    verify(&read_stream(&client(&endpoint), "big").await, &put);
    // One byte over 10 MiB is refused at put by MaxUserRecordSize.
    let err = big.put(sized(4, 10 * MIB + 1)).await.unwrap_err();
    assert!(err.to_string().contains("MaxUserRecordSize"), "{err}");
    big.shutdown(WAIT).await.unwrap();

    // The 1024 KiB stream: exactly 1 MiB goes; over it fails at once, with
    // the size, the limit and how to raise it, one attempt and no request.
    let small = producer(
        config(&endpoint)
            .stream("small")
            .max_user_record_size(10 * MIB),
    )
    .await;
    let put = deliver(&small, vec![sized(10, MIB)]).await;
    verify(&read_stream(&client(&endpoint), "small").await, &put);
    let calls = sim.stats().put_records_calls;
    for (i, size) in [(11, MIB + 1), (12, 5 * MIB), (13, 10 * MIB)] {
        let err = small.put(sized(i, size)).await.unwrap().await.unwrap_err();
        eprintln!("{size} bytes to a 1024 KiB stream: {err}");
        assert_eq!(err.kind(), ErrorKind::InvalidRecord);
        assert!(!err.is_retryable());
        for part in [
            &format!("record is {size} bytes"),
            "at most 1048576 bytes",
            "UpdateMaxRecordSize",
        ] {
            assert!(err.to_string().contains(part), "{part}: {err}");
        }
        assert_eq!(err.attempts().len(), 1, "{:?}", err.attempts());
        assert_eq!(err.record().map(|r| r.size()), Some(size));
    }
    assert_eq!(sim.stats().put_records_calls, calls, "a request was sent");
    small.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_records_requests_fill_up_to_ten_mib() {
    let sim = Sim::start(
        SimConfig::default()
            .unlimited()
            .stream_with("fill", spec(1, 10240)),
    )
    .await
    .unwrap();
    let producer = producer(
        config(&sim.endpoint())
            .stream("fill")
            .max_user_record_size(10 * MIB)
            .collection_max_size(64 * MIB)
            // The shard's limiter must not spread the records out over time.
            .rate_limit(2000)
            .record_max_buffered_time(Duration::from_secs(10))
            // A 10 MiB request to a debug build on a busy machine is slow;
            // a timeout would retry it and count another request.
            .request_timeout(Duration::from_secs(60)),
    )
    .await;
    // Ten records of 1 MiB (over AggregationMaxSize: each goes alone) make
    // one 10 MiB request; the eleventh byte-sized one needs a second.
    let mut records: Vec<_> = (0..10).map(|i| sized(i, MIB)).collect();
    records.push(sized(10, 64));
    let put = deliver(&producer, records).await;
    let metrics = producer.metrics();
    assert_eq!(sim.stats().put_records_calls, 2, "{metrics:?}");
    assert!(put.iter().all(|(_, _, r)| !r.is_aggregated()));
    verify(&read_stream(&client(&sim.endpoint()), "fill").await, &put);
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_records_among_small_ones_at_a_shards_rate_are_all_delivered() {
    // One shard with the service's limits (1 MiB/s). 200 records over about
    // 6 s: 198 of 1 KB and two large ones (2 and 3 MiB), ~0.9 MiB/s in all.
    let sim = Sim::start(SimConfig::default().stream_with("mixed", spec(1, 10240)))
        .await
        .unwrap();
    let producer = producer(
        config(&sim.endpoint())
            .stream("mixed")
            .max_user_record_size(10 * MIB)
            .record_ttl(Duration::from_secs(60)),
    )
    .await;
    let mut handles = Vec::new();
    let mut sent = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(30));
    for i in 0..200 {
        tick.tick().await;
        let record = match i {
            50 => sized(i, 2 * MIB),
            120 => sized(i, 3 * MIB),
            _ => sized(i, 1000),
        };
        sent.push((record.partition_key().to_owned(), record.data().clone()));
        handles.push(producer.put(record).await.expect("accepted"));
    }
    let mut put = Vec::new();
    for ((key, data), handle) in sent.into_iter().zip(handles) {
        put.push((key, data, handle.await.expect("delivered")));
    }
    let metrics = producer.metrics();
    let stats = sim.stats();
    println!(
        "mixed workload: {} records ({} large) delivered, {} throttled attempts (the simulator throttled {} records)",
        put.len(),
        2,
        metrics.throttled_attempts,
        stats.records_throttled
    );
    verify(&read_stream(&client(&sim.endpoint()), "mixed").await, &put);
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_named_by_its_arn_is_sent_to_by_arn() {
    let sim = sim(&[("by-arn", 2)]).await;
    let arn = sim.stream_arn("by-arn").unwrap();
    let producer = producer(config(&sim.endpoint()).stream(arn.as_str())).await;
    let records: Vec<_> = (0..300)
        .map(|i| UserRecord::new(format!("k{i}"), payload(i)))
        .collect();
    let put = deliver(&producer, records).await;
    // And a record naming the ARN itself, next to the default.
    let one = producer
        .put(UserRecord::new("x", "by record").with_stream(arn.as_str()))
        .await
        .unwrap()
        .await
        .unwrap();
    let mut put = put;
    put.push(("x".into(), Bytes::from_static(b"by record"), one));
    verify(&read_stream(&client(&sim.endpoint()), "by-arn").await, &put);
    // An ARN of another account names no stream: the records fail, not hang.
    let other = arn.replace("000000000000", "111111111111");
    let err = producer
        .put(UserRecord::new("k", "x").with_stream(other.as_str()))
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ResourceNotFoundException"), "{err}");
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

//! The producer against kpl-sim on loopback: records put come back from
//! the stream through GetRecords, intact and where their results say.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kpl_core::{ErrorKind, HashKey, PutResult, UserRecord};

async fn put_and_collect(
    producer: &kpl_core::Producer,
    records: Vec<UserRecord>,
) -> Vec<(String, Bytes, PutResult)> {
    let keys: Vec<(String, Bytes)> = records
        .iter()
        .map(|r| (r.partition_key().to_owned(), r.data().clone()))
        .collect();
    let handles = producer.put_many(records).await;
    let mut out = Vec::new();
    for ((key, data), handle) in keys.into_iter().zip(handles) {
        let result = tokio::time::timeout(WAIT, handle.expect("accepted"))
            .await
            .expect("a result within 30 s")
            .expect("delivered");
        out.push((key, data, result));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_records_arrive_intact_on_their_shards() {
    let sim = sim(&[("agg", 4)]).await;
    let producer = producer(config(&sim.endpoint()).stream("agg")).await;
    let records = (0..5000)
        .map(|i| UserRecord::new(format!("key-{}", i % 1000), payload(i)))
        .collect();
    let put = put_and_collect(&producer, records).await;
    let read = read_stream(&client(&sim.endpoint()), "agg").await;
    verify(&read, &put);
    assert!(read.iter().filter(|r| r.aggregated).count() > 4000);
    let metrics = producer.metrics();
    assert_eq!(metrics.user_records_put, 5000);
    assert!(
        metrics.user_records_per_kinesis_record > 10.0,
        "{metrics:?}"
    );
    // Four shards: every shard got records.
    let shards: std::collections::HashSet<_> = read.iter().map(|r| r.shard_id.clone()).collect();
    assert_eq!(shards.len(), 4);
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_aggregation_every_record_is_its_own_kinesis_record() {
    let sim = sim(&[("plain", 3)]).await;
    let producer = producer(
        config(&sim.endpoint())
            .stream("plain")
            .aggregation_enabled(false),
    )
    .await;
    let records = (0..1500)
        .map(|i| UserRecord::new(format!("k{}", i % 50), payload(i)))
        .collect();
    let put = put_and_collect(&producer, records).await;
    let read = read_stream(&client(&sim.endpoint()), "plain").await;
    verify(&read, &put);
    assert!(read.iter().all(|r| !r.aggregated));
    assert!(
        put.iter()
            .all(|(_, _, r)| r.sub_sequence_number() == 0 && !r.is_aggregated())
    );
    let m = producer.metrics();
    assert_eq!(m.kinesis_records_put, 1500);
    assert!(m.kinesis_records_per_put_records_request > 1.0, "{m:?}");
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_producer_feeds_many_streams() {
    let sim = sim(&[("s1", 1), ("s2", 2), ("s3", 5)]).await;
    let producer = producer(config(&sim.endpoint())).await;
    let mut expected: Vec<Vec<(String, Bytes, PutResult)>> = vec![Vec::new(); 3];
    let mut handles = Vec::new();
    for i in 0..3000 {
        let s = i % 3;
        let record =
            UserRecord::new(format!("k{i}"), payload(i)).with_stream(format!("s{}", s + 1));
        handles.push((
            s,
            format!("k{i}"),
            payload(i),
            producer.put(record).await.unwrap(),
        ));
    }
    for (s, key, data, handle) in handles {
        expected[s].push((key, data, handle.await.unwrap()));
    }
    let client = client(&sim.endpoint());
    for (s, put) in expected.iter().enumerate() {
        let read = read_stream(&client, &format!("s{}", s + 1)).await;
        verify(&read, put);
    }
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_hash_keys_route_records_to_the_shard_that_owns_them() {
    let sim = sim(&[("ehk", 4)]).await;
    let producer = producer(config(&sim.endpoint()).stream("ehk")).await;
    let quarter = u128::MAX / 4;
    let mut records = Vec::new();
    for i in 0..400u128 {
        let shard = i % 4;
        // The first and last key of every shard, and points inside.
        let hash = match i / 4 % 3 {
            0 => shard * (quarter + 1),
            1 => {
                if shard == 3 {
                    u128::MAX
                } else {
                    (shard + 1) * (quarter + 1) - 1
                }
            }
            _ => shard * (quarter + 1) + i * 7919,
        };
        records.push(
            UserRecord::new(format!("same-key-{}", i % 3), payload(i as usize))
                .with_explicit_hash_key(hash.to_string()),
        );
    }
    let put = put_and_collect(&producer, records).await;
    let read = read_stream(&client(&sim.endpoint()), "ehk").await;
    verify(&read, &put);
    for r in &read {
        let hash: HashKey = r
            .explicit_hash_key
            .as_deref()
            .expect("kept its EHK")
            .parse()
            .unwrap();
        let shard = sim
            .records("ehk")
            .unwrap()
            .into_iter()
            .find(|s| s.shard_id == r.shard_id)
            .unwrap();
        assert!((shard.starting_hash_key..=shard.ending_hash_key).contains(&hash.0));
    }
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_record_goes_out_when_its_buffered_time_is_up() {
    let sim = sim(&[("lone", 1)]).await;
    let buffered = Duration::from_millis(300);
    let producer = producer(
        config(&sim.endpoint())
            .stream("lone")
            .record_max_buffered_time(buffered),
    )
    .await;
    // The first put also waits for the shard map; measure the second.
    producer
        .put(UserRecord::new("warm", "up"))
        .await
        .unwrap()
        .await
        .unwrap();
    let started = Instant::now();
    let result = producer
        .put(UserRecord::new("k", "v"))
        .await
        .unwrap()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= buffered,
        "sent after {elapsed:?}, before RecordMaxBufferedTime"
    );
    assert!(
        elapsed < buffered + Duration::from_millis(200),
        "sent after {elapsed:?}"
    );
    assert_eq!(result.attempts().len(), 1);
    assert!(result.attempts()[0].delay >= buffered);
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_and_requests_respect_size_and_count_limits() {
    let sim = sim(&[("limits", 2)]).await;
    let producer = producer(
        config(&sim.endpoint())
            .stream("limits")
            .aggregation_max_count(7)
            .aggregation_max_size(2000)
            .collection_max_count(3),
    )
    .await;
    let records = (0..700)
        .map(|i| UserRecord::new(format!("k{}", i % 20), vec![b'z'; 50 + i % 300]))
        .collect();
    let put = put_and_collect(&producer, records).await;
    let read = read_stream(&client(&sim.endpoint()), "limits").await;
    verify(&read, &put);
    let mut per_kinesis_record: std::collections::HashMap<&str, usize> = Default::default();
    for r in &read {
        *per_kinesis_record.entry(&r.sequence_number).or_default() += 1;
    }
    assert!(per_kinesis_record.values().all(|&n| n <= 7));
    for shard in sim.records("limits").unwrap() {
        for stored in shard.records {
            assert!(
                stored.data.len() <= 2000,
                "aggregate of {} bytes",
                stored.data.len()
            );
        }
    }
    let m = producer.metrics();
    assert!(m.kinesis_records_per_put_records_request <= 3.0, "{m:?}");
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_makes_puts_wait_and_the_buffer_stays_bounded() {
    let sim = slow_sim("slow", 1, Duration::from_millis(300)).await;
    let producer = producer(
        config(&sim.endpoint())
            .stream("slow")
            .max_buffered(50, 1 << 20)
            .record_max_buffered_time(Duration::from_millis(10)),
    )
    .await;
    let mut handles = Vec::new();
    for i in 0..50 {
        handles.push(
            producer
                .try_put(UserRecord::new(format!("k{i}"), payload(i)))
                .unwrap(),
        );
    }
    let err = producer
        .try_put(UserRecord::new("over", "flow"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BufferFull);
    assert!(err.is_retryable());
    assert_eq!(err.record().unwrap().partition_key(), "over");
    assert_eq!(producer.outstanding(), 50);
    // A waiting put gets in once the first records resolve, not before.
    let started = Instant::now();
    let late = producer.put(UserRecord::new("late", "put")).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "put did not wait: {:?}",
        started.elapsed()
    );
    assert!(producer.outstanding() <= 50);
    for h in handles {
        h.await.unwrap();
    }
    late.await.unwrap();
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_sends_at_once_and_waits_for_every_result() {
    let sim = sim(&[("flush", 2)]).await;
    let producer = producer(
        config(&sim.endpoint())
            .stream("flush")
            .record_max_buffered_time(Duration::from_secs(20)),
    )
    .await;
    let handles = producer
        .put_many((0..300).map(|i| UserRecord::new(format!("k{i}"), payload(i))))
        .await;
    let started = Instant::now();
    producer.flush().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "flush took {:?}",
        started.elapsed()
    );
    assert_eq!(producer.outstanding(), 0);
    for h in handles {
        h.unwrap().await.unwrap();
    }
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delivers_what_is_in_flight_then_refuses_puts() {
    let sim = slow_sim("shut", 2, Duration::from_millis(200)).await;
    let producer = producer(config(&sim.endpoint()).stream("shut")).await;
    let handles = producer
        .put_many((0..200).map(|i| UserRecord::new(format!("k{i}"), payload(i))))
        .await;
    producer.shutdown(WAIT).await.unwrap();
    for h in handles {
        h.unwrap()
            .await
            .expect("delivered before shutdown returned");
    }
    let err = producer.put(UserRecord::new("k", "v")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShutDown);
    assert_eq!(err.record().unwrap().data(), &Bytes::from("v"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_fails_unsent_records_with_shutdown() {
    let sim = slow_sim("stuck", 1, Duration::from_millis(1500)).await;
    let producer = producer(
        config(&sim.endpoint())
            .stream("stuck")
            .max_connections(1)
            .collection_max_count(10)
            .aggregation_enabled(false),
    )
    .await;
    let handles = producer
        .put_many((0..100).map(|i| UserRecord::new(format!("k{i}"), payload(i))))
        .await;
    let started = Instant::now();
    let err = producer
        .shutdown(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShutDown);
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut delivered = 0;
    let mut shut_down = 0;
    for h in handles {
        match h.unwrap().await {
            Ok(_) => delivered += 1,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::ShutDown, "{e}");
                assert!(e.record().is_some());
                shut_down += 1;
            }
        }
    }
    assert_eq!(delivered + shut_down, 100);
    assert!(shut_down > 0, "nothing was left to fail");
    assert_eq!(producer.outstanding(), 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_records_are_refused_with_the_record_and_the_reason() {
    let sim = sim(&[("valid", 1)]).await;
    let producer = producer(
        config(&sim.endpoint())
            .stream("valid")
            .max_user_record_size(1000),
    )
    .await;
    let cases = [
        (UserRecord::new("", "x"), "0 characters"),
        (UserRecord::new("k".repeat(257), "x"), "257 characters"),
        (
            UserRecord::new("k", vec![0u8; 1000]),
            "limit (MaxUserRecordSize) is 1000",
        ),
        (
            UserRecord::new("k", "x").with_explicit_hash_key("-1"),
            "explicit hash key",
        ),
        (
            UserRecord::new("k", "x").with_explicit_hash_key(u128::MAX.to_string() + "0"),
            "explicit hash key",
        ),
    ];
    for (record, reason) in cases {
        let copy = record.clone();
        let err = producer.put(record).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRecord);
        assert!(err.to_string().contains(reason), "{err}");
        // Handed back whole, with the default stream it was going to.
        assert_eq!(err.record(), Some(&copy.clone().with_stream("valid")));
        let err = producer.try_put(copy).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRecord);
    }
    let no_stream = common::producer(config(&sim.endpoint())).await;
    let err = no_stream.put(UserRecord::new("k", "v")).await.unwrap_err();
    assert!(err.to_string().contains("no stream"), "{err}");
    assert_eq!(producer.outstanding(), 0);
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_stream_fails_records_at_once() {
    let sim = sim(&[("exists", 1)]).await;
    let producer = producer(config(&sim.endpoint()).stream("does-not-exist")).await;
    let started = Instant::now();
    let handle = producer.put(UserRecord::new("k", "v")).await.unwrap();
    let err = handle.await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed after {:?}",
        started.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::Service);
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    assert!(!err.is_retryable());
    assert_eq!(err.record().unwrap().partition_key(), "k");
    // ListShards said so before anything was sent: no PutRecords attempt.
    assert!(err.attempts().is_empty(), "{:?}", err.attempts());
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_callbacks_fire_once_per_record_refusals_included() {
    use std::sync::Mutex;
    let sim = sim(&[("batch", 2)]).await;
    let producer = producer(config(&sim.endpoint()).stream("batch")).await;
    let seen = std::sync::Arc::new(Mutex::new(
        (0..1000).map(|_| Vec::new()).collect::<Vec<_>>(),
    ));
    let records = (0..1000).map(|i| {
        // Every 100th record is invalid: an empty partition key.
        let key = if i % 100 == 0 {
            String::new()
        } else {
            format!("k{i}")
        };
        UserRecord::new(key, payload(i))
    });
    let sink = seen.clone();
    producer
        .put_many_with(records, move |i, outcome| {
            sink.lock().unwrap()[i].push(outcome)
        })
        .await;
    producer.flush().await.unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    for (i, outcomes) in seen.into_iter().enumerate() {
        assert_eq!(
            outcomes.len(),
            1,
            "record {i} got {} outcomes",
            outcomes.len()
        );
        match &outcomes[0] {
            Ok(r) => assert!(i % 100 != 0 && r.shard_id().starts_with("shardId-")),
            Err(e) => {
                assert_eq!(i % 100, 0, "record {i}: {e}");
                assert_eq!(e.kind(), ErrorKind::InvalidRecord);
                assert_eq!(e.record().unwrap().data(), &payload(i));
            }
        }
    }
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_put_many_hands_back_what_does_not_fit() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sim = slow_sim("tight", 1, Duration::from_millis(300)).await;
    let producer = producer(
        config(&sim.endpoint())
            .stream("tight")
            .max_buffered(20, 1 << 20),
    )
    .await;
    let (ok, full) = (
        std::sync::Arc::new(AtomicUsize::new(0)),
        std::sync::Arc::new(AtomicUsize::new(0)),
    );
    let (ok2, full2) = (ok.clone(), full.clone());
    producer.try_put_many_with(
        (0..50).map(|i| UserRecord::new(format!("k{i}"), payload(i))),
        move |_, outcome| match outcome {
            Ok(_) => drop(ok2.fetch_add(1, Ordering::SeqCst)),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::BufferFull);
                assert!(e.record().is_some());
                full2.fetch_add(1, Ordering::SeqCst);
            }
        },
    );
    assert_eq!(
        full.load(Ordering::SeqCst),
        30,
        "refused at once, not later"
    );
    producer.flush().await.unwrap();
    assert_eq!(ok.load(Ordering::SeqCst), 20);
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_is_counted_and_its_room_released_before_anyone_sees_it() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sim = sim(&[("order", 2)]).await;
    let producer = producer(config(&sim.endpoint()).stream("order")).await;
    let total = 3000;
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let at_last = std::sync::Arc::new(Mutex::new(None));
    let (observer, seen2, at_last2) = (producer.clone(), seen.clone(), at_last.clone());
    producer
        .put_many_with(
            (0..total).map(|i| UserRecord::new(format!("k{i}"), payload(i))),
            move |_, outcome| {
                assert!(outcome.is_ok());
                if seen2.fetch_add(1, Ordering::SeqCst) + 1 == total {
                    let m = observer.metrics();
                    *at_last2.lock().unwrap() = Some((observer.outstanding(), m.user_records_put));
                }
            },
        )
        .await;
    producer.flush().await.unwrap();
    let at_last = at_last.lock().unwrap().take();
    assert_eq!(
        at_last,
        Some((0, total as u64)),
        "(outstanding, UserRecordsPut) when the last result arrived"
    );
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

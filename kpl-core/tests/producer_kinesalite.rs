//! The producer against kinesalite, a Kinesis implementation we did not
//! write, for protocol fidelity. `scripts/test.sh` starts it on loopback and
//! sets `KPL_KINESALITE_ENDPOINT`; without it these tests are skipped
//! outside CI and fail in CI.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use common::*;
use kpl_core::{PutResult, UserRecord};

fn endpoint() -> Option<String> {
    match std::env::var("KPL_KINESALITE_ENDPOINT") {
        Ok(e) => Some(e),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!(
                "KPL_KINESALITE_ENDPOINT is not set: scripts/test.sh starts kinesalite and sets it"
            )
        }
        Err(_) => {
            eprintln!("skipped: KPL_KINESALITE_ENDPOINT is not set (scripts/test.sh sets it)");
            None
        }
    }
}

/// A stream name of its own per test: kinesalite outlives the tests.
fn fresh_stream(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn round_trip(
    endpoint: &str,
    stream: &str,
    shards: u32,
    builder: kpl_core::ConfigBuilder,
    records: Vec<UserRecord>,
) {
    let client = client(endpoint);
    kpl_readback::ensure_stream(&client, stream, shards)
        .await
        .unwrap();
    let producer = producer(builder.stream(stream)).await;
    let keys: Vec<(String, Bytes)> = records
        .iter()
        .map(|r| (r.partition_key().to_owned(), r.data().clone()))
        .collect();
    let handles = producer.put_many(records).await;
    let mut put: Vec<(String, Bytes, PutResult)> = Vec::new();
    for ((k, d), h) in keys.into_iter().zip(handles) {
        put.push((k, d, h.unwrap().await.expect("delivered to kinesalite")));
    }
    producer.shutdown(WAIT).await.unwrap();
    verify(&read_stream(&client, stream).await, &put);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_records_round_trip_through_kinesalite() {
    let Some(endpoint) = endpoint() else { return };
    let stream = fresh_stream("agg");
    let records = (0..3000)
        .map(|i| UserRecord::new(format!("key-{}", i % 300), payload(i)))
        .collect();
    round_trip(&endpoint, &stream, 3, config(&endpoint), records).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_records_round_trip_through_kinesalite() {
    let Some(endpoint) = endpoint() else { return };
    let stream = fresh_stream("plain");
    let records = (0..600)
        .map(|i| UserRecord::new(format!("key-{i}"), payload(i)))
        .collect();
    round_trip(
        &endpoint,
        &stream,
        2,
        config(&endpoint).aggregation_enabled(false),
        records,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_hash_keys_land_in_their_shards_on_kinesalite() {
    let Some(endpoint) = endpoint() else { return };
    let stream = fresh_stream("ehk");
    let step = u128::MAX / 40;
    let records = (0..400u128)
        .map(|i| {
            UserRecord::new(format!("k{}", i % 7), payload(i as usize))
                .with_explicit_hash_key(((i % 40) * step).to_string())
        })
        .collect();
    // read_stream checks every aggregate against its shard's range.
    round_trip(&endpoint, &stream, 4, config(&endpoint), records).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_streams_fail_with_the_services_code_on_kinesalite() {
    let Some(endpoint) = endpoint() else { return };
    let producer = producer(config(&endpoint).stream(fresh_stream("missing"))).await;
    let err = producer
        .put(UserRecord::new("k", "v"))
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ResourceNotFoundException"), "{err}");
    producer.shutdown(WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_max_record_size_takes_1_mib_and_larger_records_fail_unsent() {
    // kinesalite predates large records: DescribeStreamSummary has no
    // MaxRecordSizeInKiB, so the stream's limit is the service's 1 MiB.
    let Some(endpoint) = endpoint() else { return };
    let stream = fresh_stream("size");
    let client = client(&endpoint);
    kpl_readback::ensure_stream(&client, &stream, 1)
        .await
        .unwrap();
    let producer = producer(
        config(&endpoint)
            .stream(stream.as_str())
            .max_user_record_size(10 * 1024 * 1024),
    )
    .await;
    let fits = UserRecord::new("k", vec![7u8; 1024 * 1024 - 1]);
    let result = producer
        .put(fits.clone())
        .await
        .unwrap()
        .await
        .expect("1 MiB fits");
    for size in [1024 * 1024, 5 * 1024 * 1024] {
        let err = producer
            .put(UserRecord::new("k", vec![7u8; size]))
            .await
            .unwrap()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("UpdateMaxRecordSize"), "{err}");
        assert_eq!(err.attempts().len(), 1);
    }
    assert_eq!(
        producer.metrics().put_records_requests,
        1,
        "only the record that fits was sent"
    );
    producer.shutdown(WAIT).await.unwrap();
    let put = vec![("k".to_owned(), fits.data().clone(), result)];
    verify(&read_stream(&client, &stream).await, &put);
}

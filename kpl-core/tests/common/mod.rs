//! Shared helpers for the producer's integration tests: endpoints on
//! loopback, a producer for them, and reading a stream back through
//! GetRecords with the KCL's deaggregation rules.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use kpl_core::{Config, ConfigBuilder, Producer, PutResult, UserRecord};
use kpl_sim::{Faults, Sim, SimConfig};

/// A simulator with the service's limits off and the given streams.
pub async fn sim(streams: &[(&str, u32)]) -> Sim {
    let mut config = SimConfig::default().unlimited();
    for (name, shards) in streams {
        config = config.stream(name, *shards);
    }
    Sim::start(config)
        .await
        .expect("simulator starts on loopback")
}

/// A simulator with limits off that answers every request `latency` late.
pub async fn slow_sim(stream: &str, shards: u32, latency: Duration) -> Sim {
    let faults = Faults {
        latency,
        ..Faults::none()
    };
    Sim::start(
        SimConfig::default()
            .unlimited()
            .stream(stream, shards)
            .faults(faults),
    )
    .await
    .expect("simulator starts on loopback")
}

/// Producer settings for a loopback endpoint.
pub fn config(endpoint: &str) -> ConfigBuilder {
    Config::builder()
        .endpoint(endpoint)
        // kpl-sim takes the metrics too; elsewhere their upload fails, logged.
        .cloudwatch_endpoint(endpoint)
        .region("us-east-1")
        .credentials(kpl_readback::TEST_ACCESS_KEY, kpl_readback::TEST_SECRET_KEY)
}

pub async fn producer(builder: ConfigBuilder) -> Producer {
    Producer::new(builder.build().expect("valid config"))
        .await
        .expect("producer starts")
}

pub use kpl_readback::{ReadRecord, client};

/// Every user record in the stream, read back through GetRecords with the
/// KCL's rules and each shard's hash range enforced.
pub async fn read_stream(client: &aws_sdk_kinesis::Client, stream: &str) -> Vec<ReadRecord> {
    kpl_readback::read_stream(client, stream)
        .await
        .unwrap_or_else(|e| panic!("reading {stream} back: {e}"))
}

/// Checks that what the stream holds is exactly what was put (as a
/// multiset of key + data), and that every result names the shard,
/// sequence number and sub-sequence number under which the record sits.
pub fn verify(read: &[ReadRecord], put: &[(String, Bytes, PutResult)]) {
    assert_eq!(
        read.len(),
        put.len(),
        "the stream holds {} user records, {} were put",
        read.len(),
        put.len()
    );
    let mut by_position: HashMap<(&str, &str, u64), &ReadRecord> = HashMap::new();
    for r in read {
        let previous = by_position.insert(
            (
                r.shard_id.as_str(),
                r.sequence_number.as_str(),
                r.sub_sequence_number,
            ),
            r,
        );
        assert!(previous.is_none(), "two records at one position: {r:?}");
    }
    for (key, data, result) in put {
        let found = by_position
            .get(&(
                result.shard_id(),
                result.sequence_number(),
                result.sub_sequence_number(),
            ))
            .unwrap_or_else(|| panic!("no record in the stream where {result:?} says"));
        assert_eq!(&found.partition_key, key);
        assert_eq!(&found.data, data);
        assert_eq!(found.aggregated, result.is_aggregated());
    }
}

/// Payload `i`: distinct, with a length that varies.
pub fn payload(i: usize) -> Bytes {
    Bytes::from(format!("{i:08}-{}", "x".repeat(i % 97)))
}

pub const WAIT: Duration = Duration::from_secs(30);

/// Every acknowledged record is in the stream where its result says;
/// returns how many records the stream holds more than once.
pub fn verify_acked(read: &[ReadRecord], acked: &[(String, Bytes, PutResult)]) -> usize {
    let mut at: HashMap<(&str, &str, u64), &ReadRecord> = HashMap::new();
    let mut copies: HashMap<&Bytes, usize> = HashMap::new();
    for r in read {
        at.insert((&r.shard_id, &r.sequence_number, r.sub_sequence_number), r);
        *copies.entry(&r.data).or_default() += 1;
    }
    for (key, data, result) in acked {
        let found = at
            .get(&(
                result.shard_id(),
                result.sequence_number(),
                result.sub_sequence_number(),
            ))
            .unwrap_or_else(|| panic!("acked record {key} is not where {result:?} says"));
        assert_eq!((&found.partition_key, &found.data), (key, data));
    }
    copies.values().filter(|&&n| n > 1).count()
}

/// Puts `records`, flushes, and returns each delivered record with its
/// result; panics naming a record that was not delivered.
pub async fn deliver(
    producer: &kpl_core::Producer,
    records: Vec<UserRecord>,
) -> Vec<(String, Bytes, PutResult)> {
    let keys: Vec<_> = records
        .iter()
        .map(|r| (r.partition_key().to_owned(), r.data().clone()))
        .collect();
    let handles = producer.put_many(records).await;
    // Everything is in: no need to wait out RecordMaxBufferedTime.
    producer.flush().await.expect("flushed");
    let mut out = Vec::new();
    for ((key, data), handle) in keys.into_iter().zip(handles) {
        let result = tokio::time::timeout(WAIT, handle.expect("accepted"))
            .await
            .expect("a result in time")
            .unwrap_or_else(|e| panic!("{key} not delivered: {e}"));
        out.push((key, data, result));
    }
    out
}

/// This test binary run again as a child process that runs only the
/// ignored test `test` (the child side of a process-level test).
pub fn child_test(test: &str) -> std::process::Command {
    let mut c = std::process::Command::new(std::env::current_exe().expect("test binary"));
    c.args([
        test,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdout(std::process::Stdio::null());
    c
}

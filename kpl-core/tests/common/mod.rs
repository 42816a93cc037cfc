//! Shared helpers for the producer's integration tests: endpoints on
//! loopback, a producer for them, and reading a stream back through
//! GetRecords with the KCL's deaggregation rules.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::types::ShardIteratorType;
use bytes::Bytes;
use kpl_core::aggregation::Deaggregator;
use kpl_core::{Config, ConfigBuilder, Producer, PutResult};
use kpl_sim::{Sim, SimConfig};

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

/// Producer settings for a loopback endpoint.
pub fn config(endpoint: &str) -> ConfigBuilder {
    Config::builder()
        .endpoint(endpoint)
        .region("us-east-1")
        .credentials("AKIDTEST", "test-secret")
}

pub async fn producer(builder: ConfigBuilder) -> Producer {
    Producer::new(builder.build().expect("valid config"))
        .await
        .expect("producer starts")
}

/// A plain SDK client for the endpoint, to create streams and read back.
pub fn client(endpoint: &str) -> Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "AKIDTEST",
            "test-secret",
            None,
            None,
            "test",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(config)
}

/// A user record as read back from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    pub shard_id: String,
    pub sequence_number: String,
    pub sub_sequence_number: u64,
    pub aggregated: bool,
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Bytes,
}

/// Every user record in the stream, read with GetRecords from
/// TRIM_HORIZON of every shard (closed parents included) and deaggregated
/// with the shard's hash range enforced, as the KCL does: an aggregate
/// that spans shards fails the read.
pub async fn read_stream(client: &Client, stream: &str) -> Vec<ReadRecord> {
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("ListShards")
        .shards
        .unwrap_or_default();
    let mut out = Vec::new();
    for shard in shards {
        let range = shard.hash_key_range().expect("shard has a range");
        let start: u128 = range.starting_hash_key().parse().unwrap();
        let end: u128 = range.ending_hash_key().parse().unwrap();
        let deaggregator = Deaggregator::new().shard_range(start, end).strict(true);
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator;
        while let Some(it) = iterator {
            let page = client
                .get_records()
                .shard_iterator(it)
                .limit(10_000)
                .send()
                .await
                .expect("GetRecords");
            for record in page.records() {
                let subs = deaggregator
                    .deaggregate(
                        record
                            .partition_key()
                            .expect("records have a partition key"),
                        None,
                        Bytes::copy_from_slice(record.data().as_ref()),
                    )
                    .unwrap_or_else(|e| {
                        panic!(
                            "record {} of {} is not readable by the KCL's rules: {e}",
                            record.sequence_number(),
                            shard.shard_id()
                        )
                    });
                for sub in subs {
                    out.push(ReadRecord {
                        shard_id: shard.shard_id().to_owned(),
                        sequence_number: record.sequence_number().to_owned(),
                        sub_sequence_number: sub.sub_sequence_number,
                        aggregated: sub.aggregated,
                        partition_key: sub.partition_key,
                        explicit_hash_key: sub.explicit_hash_key,
                        data: sub.data,
                    });
                }
            }
            let caught_up = page.records().is_empty() && page.millis_behind_latest() == Some(0);
            iterator = page.next_shard_iterator.filter(|_| !caught_up);
        }
    }
    out
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

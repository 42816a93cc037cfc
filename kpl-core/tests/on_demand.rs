//! An on-demand stream in kpl-sim scales out while the producer writes to
//! it: nothing is lost, a KCL-rule reader sees each record once, and the
//! producer uses the new shards. In a file of its own so that it runs alone
//! (the scaler reacts to load; other tests' CPU use would blur it).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use kpl_core::UserRecord;
use kpl_sim::{Limits, MIB, OnDemand, Sim, SimConfig, StreamSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_demand_stream_scales_from_4_to_8_shards_while_records_flow() {
    let rule = OnDemand {
        window: Duration::from_millis(250),
        sustain: 2,
        // Margin for a loaded machine: this tests the producer following a
        // stream that scales, not the threshold (kpl-sim's tests do).
        utilization: 0.6,
        // One doubling, 4 -> 8, is what this test follows.
        max_shards: 8,
        ..OnDemand::default()
    };
    // Shards of a quarter of the service's byte rate, and a producer whose
    // RateLimit matches: the shards, not this debug build's speed, are what
    // the records press against, so the stream runs near its limit.
    let limits = Limits {
        shard_bytes_per_sec: 256 * 1024,
        ..Limits::default()
    };
    let sim = Sim::start(
        SimConfig::default()
            .limits(limits)
            .on_demand(rule)
            .stream_with(
                "od",
                StreamSpec {
                    on_demand: true,
                    ..StreamSpec::provisioned(4)
                },
            ),
    )
    .await
    .unwrap();
    let producer = producer(
        config(&sim.endpoint())
            .stream("od")
            .rate_limit(25)
            .record_ttl(Duration::from_secs(120))
            .max_buffered(300_000, 256 * MIB),
    )
    .await;
    // 200,000 records of ~25 bytes: ~5 MB, about 5 s of the four shards'
    // rate, or half that once there are eight.
    let records: Vec<_> = (0..200_000)
        .map(|i| {
            UserRecord::new(
                format!("k{}", i % 5000),
                Bytes::from(format!("{i:09}-{:010}", i * 7)),
            )
        })
        .collect();
    let put = deliver(&producer, records).await;
    assert_eq!(
        sim.open_shard_count("od"),
        Some(8),
        "the stream did not scale out"
    );
    let view = kpl_readback::read_stream_as_kcl(&client(&sim.endpoint()), "od")
        .await
        .unwrap();
    let duplicates = verify_acked(&view.records, &put);
    let new_shards: std::collections::HashSet<&str> = put
        .iter()
        .map(|(_, _, r)| r.shard_id())
        .filter(|id| id > &"shardId-000000000003")
        .collect();
    println!(
        "on-demand: {} records, 4 -> 8 shards, {} delivered to the new shards ({} of them), {} aggregates dropped by a KCL reader, {} duplicates",
        put.len(),
        put.iter()
            .filter(|(_, _, r)| r.shard_id() > "shardId-000000000003")
            .count(),
        new_shards.len(),
        view.dropped_aggregates.len(),
        duplicates
    );
    assert_eq!(view.records.len() - duplicates, put.len());
    assert_eq!(duplicates, 0, "a KCL reader sees some records twice");
    assert_eq!(
        new_shards.len(),
        8,
        "the producer did not use every new shard"
    );
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
}

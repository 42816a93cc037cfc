//! StrictOrdering against kpl-sim over HTTP: under throttling, per-record
//! InternalFailure and 500s, the first occurrence of every record in the
//! stream (read back through GetRecords) follows put order per key; the
//! same load without it comes out of order.

mod common;

use std::collections::HashSet;

use common::*;
use kpl_core::UserRecord;
use kpl_sim::{Faults, Limits, Sim, SimConfig};

/// Record `i` carries payload `i` (`common::payload`): its put index.
fn put_index(r: &ReadRecord) -> Option<u64> {
    std::str::from_utf8(r.data.get(..8)?).ok()?.parse().ok()
}

async fn play(strict: bool) -> u64 {
    let faults = Faults {
        record_internal_failure: 0.05,
        request_500: 0.03,
        seed: 3,
        ..Faults::none()
    };
    let limits = Limits {
        shard_records_per_sec: 300,
        ..Limits::default()
    };
    let sim = Sim::start(
        SimConfig::default()
            .limits(limits)
            .faults(faults)
            .stream("o", 2),
    )
    .await
    .unwrap();
    let producer = producer(
        config(&sim.endpoint())
            .stream("o")
            .aggregation_enabled(false)
            .strict_ordering(strict),
    )
    .await;
    // Three times what the shards take, over 100 keys.
    let records = (0..1800)
        .map(|i| UserRecord::new(format!("k{}", i % 100), payload(i)))
        .collect();
    let delivered = deliver(&producer, records).await;
    let read = read_stream(&client(&sim.endpoint()), "o").await;
    verify_acked(&read, &delivered);
    let distinct: HashSet<_> = read.iter().filter_map(put_index).collect();
    assert_eq!(distinct.len(), 1800, "every record is in the stream");
    let inversions = kpl_readback::out_of_order(&read, put_index);
    producer.shutdown(WAIT).await.unwrap();
    sim.shutdown().await;
    inversions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_ordering_keeps_put_order_per_key_over_http() {
    let strict = play(true).await;
    assert_eq!(
        strict, 0,
        "{strict} records out of order with StrictOrdering"
    );
    let loose = play(false).await;
    println!("without StrictOrdering: {loose} of 1800 records out of order");
    assert!(
        loose > 0,
        "the same load reorders records without StrictOrdering"
    );
}

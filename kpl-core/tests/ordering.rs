//! StrictOrdering against kpl-sim over HTTP: under throttling, per-record
//! InternalFailure, 500s, requests stored and then timed out, and a
//! SplitShard while records flow, the first occurrence of every record in
//! the stream (read back through GetRecords) follows put order per key;
//! the same load without it comes out of order.

mod common;

use std::collections::HashSet;
use std::time::Duration;

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
        // Held past RequestTimeout after the store: the records go again.
        timeout_after_store: 0.02,
        timeout_hold: Duration::from_millis(1500),
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
            .request_timeout(Duration::from_secs(1))
            .strict_ordering(strict),
    )
    .await;
    // Three times what the shards take, over 100 keys; the first shard is
    // split while the first half is still on its way.
    let record = |i: usize| UserRecord::new(format!("k{}", i % 100), payload(i));
    let mut handles = producer.put_many((0..900).map(record)).await;
    let model = sim.model();
    let first = model.list_shards("o").unwrap().remove(0);
    model
        .split_shard(
            "o",
            &first.shard_id,
            first.start + (first.end - first.start) / 2 + 1,
        )
        .unwrap();
    handles.extend(producer.put_many((900..1800).map(record)).await);
    producer.flush().await.unwrap();
    let mut delivered = Vec::new();
    for (i, handle) in handles.into_iter().enumerate() {
        let result = handle.expect("accepted").await.expect("delivered");
        let r = record(i);
        delivered.push((r.partition_key().to_owned(), r.data().clone(), result));
    }
    let read = read_stream(&client(&sim.endpoint()), "o").await;
    let duplicated = verify_acked(&read, &delivered);
    let shards: HashSet<&str> = read.iter().map(|r| r.shard_id.as_str()).collect();
    // The faults happened: stored requests went again, the split's
    // children took records.
    assert!(duplicated > 0, "no stored request timed out");
    assert!(shards.len() >= 3, "records in {} shards only", shards.len());
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

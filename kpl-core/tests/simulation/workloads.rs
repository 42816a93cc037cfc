//! Workloads the service's newer limits allow, in simulated time over the
//! model: large records (up to 10 MiB, which borrow from a shard's burst
//! and then leave it in debt) among small ones.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use kpl_core::aggregation::Deaggregator;
use kpl_core::{Config, PutHandle, UserRecord};
use kpl_sim::{Faults, Limits, MIB, Model, SimConfig, StreamSpec};

use crate::client::{ModelClient, Outages};

/// A record of `size` bytes of data, its id in the first eight.
fn record(id: u64, size: usize) -> UserRecord {
    let mut data = vec![(id % 251) as u8; size];
    data[..8].copy_from_slice(&id.to_be_bytes());
    UserRecord::new(format!("device-{}", id % 97), data)
}

fn id_of(data: &[u8]) -> u64 {
    u64::from_be_bytes(data[..8].try_into().expect("eight bytes"))
}

#[tokio::test(start_paused = true)]
async fn one_percent_of_records_2_to_8_mib_at_a_shards_rate_are_all_delivered() {
    // One shard with the service's limits (1 MiB/s, 1000 records/s), its
    // records up to 10 MiB. 1,000 records: every hundredth is large (2, 2.7,
    // ... 8 MiB: ten spread over 2-8 MiB), the rest 1 KB. Put at 95% of the
    // shard's byte rate: ~51 MiB over ~54 simulated seconds.
    let spec = StreamSpec {
        max_record_kib: 10_240,
        ..StreamSpec::provisioned(1)
    };
    let model = Model::new(
        &SimConfig::default()
            .limits(Limits::default())
            .faults(Faults::none())
            .stream_with("mixed", spec),
    )
    .expect("a valid stream");
    let config = Config::builder()
        .stream("mixed")
        .set("MetricsLevel", "none")
        .expect("a KPL setting")
        .max_user_record_size(10 * MIB)
        .random_seed(11)
        .build()
        .expect("valid config");
    let client = ModelClient::new(model.clone(), config.request_timeout, Outages::default());
    let producer = kpl_core::Producer::with_kinesis(config, client).expect("no spool to open");

    let rate = 0.95 * MIB as f64;
    let mut sent: HashMap<u64, (Bytes, PutHandle)> = HashMap::new();
    let mut large = Vec::new();
    for id in 0..1000u64 {
        let size = if id % 100 == 50 {
            let j = id as usize / 100; // 0..=9
            2 * MIB + j * 6 * MIB / 9
        } else {
            1000
        };
        if size > 1000 {
            large.push(size);
        }
        let r = record(id, size);
        let data = r.data().clone();
        sent.insert(id, (data, producer.put(r).await.expect("accepted")));
        tokio::time::sleep(Duration::from_secs_f64(size as f64 / rate)).await;
    }
    assert_eq!(large.first(), Some(&(2 * MIB)));
    assert_eq!(large.last(), Some(&(8 * MIB)));

    let mut results = HashMap::new();
    for (id, (data, handle)) in sent {
        let result = handle.await.unwrap_or_else(|e| panic!("record {id}: {e}"));
        results.insert(id, (data, result));
    }
    let metrics = producer.metrics();
    println!(
        "mixed workload (simulated): 1000 records ({} of 2-8 MiB, {:.1} MiB in all) delivered, \
         {} throttled attempts (the model throttled {} records)",
        large.len(),
        (large.iter().sum::<usize>() + 990 * 1000) as f64 / MIB as f64,
        metrics.throttled_attempts,
        model.stats().records_throttled,
    );

    // Read back: each record stored once, with its own bytes.
    let mut seen: HashMap<u64, u32> = HashMap::new();
    for shard in model.records("mixed").expect("the stream") {
        for r in &shard.records {
            let users = Deaggregator::new()
                .deaggregate(
                    &r.partition_key,
                    r.explicit_hash_key.as_deref(),
                    r.data.clone(),
                )
                .expect("a valid record");
            for u in users {
                let id = id_of(&u.data);
                assert_eq!(u.data, results[&id].0, "record {id} holds its own bytes");
                *seen.entry(id).or_default() += 1;
            }
        }
    }
    assert_eq!(seen.len(), 1000, "every record stored");
    assert!(seen.values().all(|&n| n == 1), "none stored twice");
    producer.shutdown(Duration::from_secs(60)).await.unwrap();
}

//! Memory stays bounded: retention trims the oldest records.

mod common;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use kpl_sim::{Retention, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_trims_oldest_and_trim_horizon_starts_after_them() {
    let (sim, c) = common::start(SimConfig::default().stream("s", 1).unlimited().retention(
        Retention {
            max_records_per_shard: Some(100),
            max_bytes_per_shard: Some(1000),
        },
    ))
    .await;
    // 250 records of 4 + 1 bytes: the count bound (100) applies.
    let batch: Vec<_> = (0..250)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key("k")
                .data(Blob::new(format!("{i:04}").into_bytes()))
                .build()
                .unwrap()
        })
        .collect();
    let r = c
        .put_records()
        .stream_name("s")
        .set_records(Some(batch))
        .send()
        .await
        .unwrap();
    let first_kept = r.records[150].sequence_number.clone().unwrap();
    let stored = &sim.records("s").unwrap()[0];
    assert_eq!(stored.records.len(), 100);
    assert_eq!(stored.records[0].data.as_ref(), b"0150");
    let it = c
        .get_shard_iterator()
        .stream_name("s")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let got = c.get_records().shard_iterator(it).send().await.unwrap();
    assert_eq!(got.records.len(), 100);
    assert_eq!(got.records[0].sequence_number, first_kept);
    // The byte bound: 10 records of 200 bytes keep at most 1000 bytes.
    for i in 0..10u8 {
        c.put_record()
            .stream_name("s")
            .partition_key("k")
            .data(Blob::new(vec![i; 199]))
            .send()
            .await
            .unwrap();
    }
    let stored = &sim.records("s").unwrap()[0];
    let bytes: usize = stored
        .records
        .iter()
        .map(|r| r.data.len() + r.partition_key.len())
        .sum();
    assert!(bytes <= 1000, "{bytes}");
    assert_eq!(stored.records.len(), 5);
    assert_eq!(stored.records.last().unwrap().data[0], 9);
    sim.shutdown().await;
}

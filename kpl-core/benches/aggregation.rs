//! Aggregation and deaggregation throughput.
//!
//! Workload: 100-byte records over 1000 distinct partition keys, aggregated
//! as the producer does it: every record is validated (`validate`, which
//! also computes the MD5 hash key of its partition key), added to an
//! aggregator with the KPL's default 51,200-byte limit, and each full
//! aggregate is finished (protobuf encoding plus MD5 trailer). Reported in
//! user records per second.
//!
//! Run: `cargo bench -p kpl-core --bench aggregation`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kpl_core::UserRecord;
use kpl_core::aggregation::{Aggregator, Deaggregator, KinesisRecord};

const RECORDS: usize = 100_000;
const DISTINCT_KEYS: usize = 1000;
const DATA_LEN: usize = 100;
const MAX_AGGREGATE: usize = 51_200;
const MAX_USER_RECORD: usize = 1 << 20;

fn user_records() -> Vec<UserRecord> {
    let payload = Bytes::from(vec![b'x'; DATA_LEN]);
    (0..RECORDS)
        .map(|i| {
            UserRecord::new(
                format!("partition-key-{:04}", i % DISTINCT_KEYS),
                payload.clone(),
            )
        })
        .collect()
}

/// What the producer does per record: validate, add, finish when full.
fn aggregate_all(records: Vec<UserRecord>) -> Vec<KinesisRecord> {
    let mut aggregator = Aggregator::new(MAX_AGGREGATE, usize::MAX);
    let mut out = Vec::with_capacity(records.len() / 400 + 1);
    for record in records {
        black_box(record.validate(MAX_USER_RECORD).expect("valid record"));
        if let Err(record) = aggregator.add(record) {
            out.extend(aggregator.finish());
            aggregator
                .add(record)
                .unwrap_or_else(|_| panic!("an empty aggregator refused a record"));
        }
        if aggregator.is_full() {
            out.extend(aggregator.finish());
        }
    }
    out.extend(aggregator.finish());
    out
}

fn bench_aggregation(c: &mut Criterion) {
    let records = user_records();
    let mut group = c.benchmark_group("aggregation");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(20);
    group.bench_function("aggregate_100B_1000keys_51200", |b| {
        b.iter_batched(
            || records.clone(),
            |records| black_box(aggregate_all(records)),
            BatchSize::LargeInput,
        )
    });

    let aggregates = aggregate_all(records.clone());
    assert!(aggregates.iter().all(KinesisRecord::is_aggregated));
    let deaggregator = Deaggregator::new();
    group.bench_function("deaggregate_100B_1000keys_51200", |b| {
        b.iter(|| {
            let mut count = 0;
            for aggregate in &aggregates {
                let records = deaggregator
                    .deaggregate(
                        &aggregate.partition_key,
                        aggregate.explicit_hash_key.as_deref(),
                        aggregate.data.clone(),
                    )
                    .expect("deaggregates");
                count += records.len();
                black_box(records);
            }
            assert_eq!(count, RECORDS);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_aggregation);
criterion_main!(benches);

//! The service as of October 2025: per-stream `MaxRecordSizeInKiB`,
//! `UpdateMaxRecordSize`, 10 MiB PutRecords, the burst model for large
//! records, StreamARN addressing and on-demand streams that scale out.

mod common;

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamMode, StreamModeDetails};
use kpl_sim::{Limits, MIB, OnDemand, SimConfig};

fn entry(pk: &str, len: usize) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .partition_key(pk)
        .data(Blob::new(vec![b'x'; len]))
        .build()
        .unwrap()
}

async fn put(c: &Client, arn: &str, records: Vec<PutRecordsRequestEntry>) -> Result<(), String> {
    c.put_records()
        .stream_arn(arn)
        .set_records(Some(records))
        .send()
        .await
        .map(|out| assert_eq!(out.failed_record_count(), Some(0)))
        .map_err(|e| {
            let e = e.into_service_error();
            format!(
                "{}: {}",
                e.meta().code().unwrap_or("?"),
                e.meta().message().unwrap_or("")
            )
        })
}

async fn max_kib(c: &Client, name: &str) -> Option<i32> {
    c.describe_stream_summary()
        .stream_name(name)
        .send()
        .await
        .unwrap()
        .stream_description_summary()
        .unwrap()
        .max_record_size_in_kib()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_size_limits_follow_the_stream() {
    let (sim, c) = common::start(SimConfig::default().unlimited()).await;
    c.create_stream()
        .stream_name("big")
        .shard_count(1)
        .max_record_size_in_kib(10240)
        .send()
        .await
        .unwrap();
    c.create_stream()
        .stream_name("small")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let bad = c
        .create_stream()
        .stream_name("x")
        .shard_count(1)
        .max_record_size_in_kib(1023)
        .send()
        .await;
    assert_eq!(
        bad.unwrap_err().into_service_error().meta().code(),
        Some("ValidationException")
    );
    assert_eq!(max_kib(&c, "big").await, Some(10240));
    assert_eq!(max_kib(&c, "small").await, Some(1024));
    let big = sim.stream_arn("big").unwrap();
    let small = sim.stream_arn("small").unwrap();

    // Each limit, exactly and one byte over (data + key).
    put(&c, &small, vec![entry("k", MIB - 1)]).await.unwrap();
    let err = put(&c, &small, vec![entry("k", MIB)]).await.unwrap_err();
    assert!(
        err.starts_with("ValidationException") && err.contains("1024 KiB"),
        "{err}"
    );
    put(&c, &big, vec![entry("k", 10 * MIB - 1)]).await.unwrap();
    let err = put(&c, &big, vec![entry("k", 10 * MIB)]).await.unwrap_err();
    assert!(err.starts_with("ValidationException"), "{err}");

    // UpdateMaxRecordSize takes the ARN and 1024..=10240.
    c.update_max_record_size()
        .stream_arn(&small)
        .max_record_size_in_kib(2 * 1024)
        .send()
        .await
        .unwrap();
    assert_eq!(max_kib(&c, "small").await, Some(2048));
    put(&c, &small, vec![entry("k", 2 * MIB - 1)])
        .await
        .unwrap();
    assert!(put(&c, &small, vec![entry("k", 2 * MIB)]).await.is_err());
    let err = c
        .update_max_record_size()
        .stream_arn(&small)
        .max_record_size_in_kib(10241)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("ValidationException")
    );

    // A PutRecords of exactly 10 MiB (data + keys) is taken; one byte more is not.
    let mut exact: Vec<_> = (0..9).map(|i| entry(&format!("k{i}"), MIB - 2)).collect();
    exact.push(entry("last", MIB - 4));
    // keys k0..k8 (2 bytes) + MIB - 2 each, "last" (4 bytes) + MIB - 4: 10 MiB.
    put(&c, &big, exact.clone()).await.unwrap();
    exact[9] = entry("last", MIB - 3);
    let err = put(&c, &big, exact).await.unwrap_err();
    assert!(err.starts_with("InvalidArgumentException"), "{err}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_record_bursts_and_the_shard_then_throttles_until_repaid() {
    let (sim, c) = common::start(SimConfig::default()).await;
    c.create_stream()
        .stream_name("s")
        .shard_count(1)
        .max_record_size_in_kib(10240)
        .send()
        .await
        .unwrap();
    let arn = sim.stream_arn("s").unwrap();
    // A rested shard takes 3 MiB at once (three times its per-second rate)...
    put(&c, &arn, vec![entry("k", 3 * MIB)]).await.unwrap();
    // ...and then throttles small records while the 2 MiB overdraft is repaid.
    let out = c
        .put_records()
        .stream_arn(&arn)
        .records(entry("k", 1000))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count(), Some(1));
    assert_eq!(
        out.records()[0].error_code(),
        Some("ProvisionedThroughputExceededException")
    );
    assert_eq!(sim.stats().records_throttled, 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_addressed_by_arn_everywhere() {
    let (sim, c) = common::start(SimConfig::default().stream("s", 2).unlimited()).await;
    let arn = sim.stream_arn("s").unwrap();
    assert_eq!(arn, "arn:aws:kinesis:us-east-1:000000000000:stream/s");
    put(&c, &arn, vec![entry("k", 10)]).await.unwrap();
    c.put_record()
        .stream_arn(&arn)
        .partition_key("k")
        .data(Blob::new(b"one".to_vec()))
        .send()
        .await
        .unwrap();
    let shards = c.list_shards().stream_arn(&arn).send().await.unwrap();
    assert_eq!(shards.shards().len(), 2);
    let d = c
        .describe_stream_summary()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(d.stream_description_summary().unwrap().stream_name(), "s");
    c.describe_stream().stream_arn(&arn).send().await.unwrap();
    let it = c
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(shards.shards()[0].shard_id())
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap();
    assert!(it.shard_iterator().is_some());
    // Another account's or region's ARN names no stream here.
    let other = arn.replace("000000000000", "111111111111");
    let err = c.list_shards().stream_arn(&other).send().await.unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("ResourceNotFoundException")
    );
    c.delete_stream().stream_arn(&arn).send().await.unwrap();
    assert!(sim.stream_names().is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_demand_stream_scales_out_under_sustained_load_only() {
    let rule = OnDemand {
        window: Duration::from_millis(100),
        sustain: 3,
        ..OnDemand::default()
    };
    let limits = Limits {
        shard_records_per_sec: 1000,
        ..Limits::default()
    };
    let (sim, c) = common::start(SimConfig::default().limits(limits).on_demand(rule)).await;
    let mode = StreamModeDetails::builder()
        .stream_mode(StreamMode::OnDemand)
        .build()
        .unwrap();
    c.create_stream()
        .stream_name("od")
        .stream_mode_details(mode.clone())
        .send()
        .await
        .unwrap();
    let summary = c
        .describe_stream_summary()
        .stream_name("od")
        .send()
        .await
        .unwrap();
    let summary = summary.stream_description_summary().unwrap();
    assert_eq!(
        summary.stream_mode_details().map(|m| m.stream_mode()),
        Some(&StreamMode::OnDemand)
    );
    assert_eq!(summary.open_shard_count(), 4);
    let arn = sim.stream_arn("od").unwrap();
    // Idle: no scaling.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sim.open_shard_count("od"), Some(4));
    // Offer ~4000 records/s (the four shards' whole rate) until it doubles.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut i = 0u64;
    while sim.open_shard_count("od") == Some(4) && tokio::time::Instant::now() < deadline {
        let batch = (0..400)
            .map(|_| {
                i += 1;
                entry(&i.to_string(), 10)
            })
            .collect();
        let _ = c
            .put_records()
            .stream_arn(&arn)
            .set_records(Some(batch))
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sim.open_shard_count("od"), Some(8));
    let shards = c.list_shards().stream_name("od").send().await.unwrap();
    assert_eq!(
        shards.shards().len(),
        12,
        "4 closed parents and 8 open children"
    );
    sim.shutdown().await;
}

fn model_record(len: usize) -> kpl_sim::ModelRecord {
    kpl_sim::ModelRecord {
        partition_key: "k".into(),
        explicit_hash_key: None,
        data: vec![0u8; len].into(),
    }
}

#[test]
fn the_model_applies_each_streams_record_limit_by_name_and_arn() {
    let model = kpl_sim::Model::new(&SimConfig::default().stream("s", 1)).unwrap();
    // 1 MiB of data plus a 1-byte key: over the default 1024 KiB.
    let err = model.put_records("s", vec![model_record(MIB)]).unwrap_err();
    assert_eq!(err.kind, "ValidationException", "{}", err.message);
    assert!(
        err.message.contains("MaxRecordSizeInKiB"),
        "{}",
        err.message
    );
    model.set_max_record_size("s", 2048).unwrap();
    // Two large records in a row: the size rule is checked, not the burst.
    model.set_limits(Limits {
        throughput_enabled: false,
        ..Limits::default()
    });
    let arn = model.stream_arn("s").unwrap();
    for stream in ["s", arn.as_str()] {
        let out = model.put_records(stream, vec![model_record(MIB)]).unwrap();
        assert!(
            matches!(out[0], kpl_sim::ModelOutcome::Stored { .. }),
            "{out:?}"
        );
    }
    let summary = model.describe_stream_summary(&arn).unwrap();
    assert_eq!(summary.max_record_size_kib, 2048);
    assert_eq!(summary.stream_name, "s");
}

#[tokio::test(start_paused = true)]
async fn the_models_on_demand_stream_scales_out_in_simulated_time() {
    let spec = kpl_sim::StreamSpec {
        shards: 4,
        on_demand: true,
        max_record_kib: 1024,
    };
    let rule = OnDemand {
        window: Duration::from_secs(1),
        sustain: 1,
        ..OnDemand::default()
    };
    let config = SimConfig::default().stream_with("od", spec).on_demand(rule);
    let model = kpl_sim::Model::new(&config).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scaler = tokio::spawn({
        let model = model.clone();
        async move { model.run_on_demand(stopped).await }
    });
    tokio::task::yield_now().await;
    // 4,000 records offered in one window: the 4 shards' whole record rate.
    for _ in 0..8 {
        let batch = (0..500).map(|_| model_record(10)).collect();
        model.put_records("od", batch).unwrap();
    }
    assert_eq!(model.open_shard_count("od"), Some(4));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(model.open_shard_count("od"), Some(8));
    stop.send(true).unwrap();
    scaler.await.unwrap();
}

//! The KPL's CloudWatch metrics, uploaded to kpl-sim's PutMetricData and
//! checked there: sums per dimension level, error codes, consistent
//! statistic sets, batches within the service's limits, and records that
//! are neither lost nor held up while CloudWatch fails.

#[allow(unused_imports)]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use kpl_core::{Config, MetricsLevel, Producer, UserRecord};
use kpl_sim::{Faults, Sim, SimConfig};
use serde_json::Value;

/// A simulator with limits off, one stream, and `faults`.
async fn sim_with(stream: &str, shards: u32, faults: Faults) -> Sim {
    let config = SimConfig::default()
        .unlimited()
        .stream(stream, shards)
        .faults(faults);
    Sim::start(config)
        .await
        .expect("simulator starts on loopback")
}

/// Every datum received so far, with the request it came in.
fn datums(sim: &Sim) -> Vec<Value> {
    let cw = sim.cloudwatch();
    cw["requests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["metric_data"].as_array().unwrap().clone())
        .collect()
}

fn dims(datum: &Value) -> Vec<(String, String)> {
    datum["Dimensions"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| {
                    (
                        d["Name"].as_str().unwrap().to_owned(),
                        d["Value"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sum of a statistic over every datum of `name` whose dimension names are `dim_names`.
fn total(datums: &[Value], name: &str, dim_names: &[&str], stat: &str) -> f64 {
    datums
        .iter()
        .filter(|d| d["MetricName"] == name)
        .filter(|d| {
            dims(d)
                .iter()
                .map(|(n, _)| n.as_str())
                .eq(dim_names.iter().copied())
        })
        .map(|d| d["StatisticValues"][stat].as_f64().unwrap())
        .sum()
}

/// Waits (bounded) until every datum the producer counted as uploaded is
/// in the sim and no more arrive: the upload task is done.
async fn wait_settled(sim: &Sim, producer: &Producer) -> Vec<Value> {
    let mut same = 0;
    for _ in 0..400 {
        let all = datums(sim);
        let uploaded = producer.metrics().metrics_datums_uploaded as usize;
        same = if uploaded > 0 && uploaded == all.len() {
            same + 1
        } else {
            0
        };
        if same == 3 {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the uploads did not settle: {:?}",
        sim.cloudwatch()["rejected"]
    );
}

async fn put_all(producer: &Producer, stream: &str, n: usize) {
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let record = UserRecord::new(format!("key-{i}"), Bytes::from(vec![b'x'; 100 + i % 50]))
            .with_stream(stream);
        handles.push(producer.put(record).await.expect("accepted"));
    }
    producer.flush().await.expect("flushed");
    for h in handles {
        h.await.expect("delivered");
    }
}

fn check_limits_and_sets(sim: &Sim, all: &[Value]) {
    let cw = sim.cloudwatch();
    assert_eq!(cw["rejected"], 0, "a request broke CloudWatch's limits");
    for request in cw["requests"].as_array().unwrap() {
        assert!(request["metric_data"].as_array().unwrap().len() <= 1000);
        assert!(request["payload_bytes"].as_u64().unwrap() <= 1024 * 1024);
    }
    for d in all {
        let s = &d["StatisticValues"];
        let (sum, n) = (
            s["Sum"].as_f64().unwrap(),
            s["SampleCount"].as_f64().unwrap(),
        );
        let (min, max) = (
            s["Minimum"].as_f64().unwrap(),
            s["Maximum"].as_f64().unwrap(),
        );
        let mean = sum / n;
        assert!(
            n >= 1.0 && min <= mean + 1e-9 && mean <= max + 1e-9,
            "inconsistent statistic set {d}"
        );
        assert!(d["Timestamp"].as_f64().unwrap() > 1.6e9, "{d}");
    }
}

#[tokio::test]
async fn detailed_shard_metrics_sum_to_the_records_at_every_level() {
    let faults = Faults {
        record_internal_failure: 0.2,
        seed: 11,
        ..Faults::none()
    };
    let sim = sim_with("cw", 4, faults).await;
    let producer = producer(
        config(&sim.endpoint())
            .set("MetricsUploadDelay", "200")
            .unwrap()
            .set("AdditionalMetricsDimensions", "Host=test-1")
            .unwrap()
            .aggregation_max_count(50),
    )
    .await;
    let n = 3000;
    put_all(&producer, "cw", n).await;
    let errors = producer.metrics().errors_by_code;
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
    let all = wait_settled(&sim, &producer).await;

    let n = n as f64;
    assert_eq!(total(&all, "UserRecordsPut", &[], "Sum"), n);
    assert_eq!(total(&all, "UserRecordsPut", &["Host"], "Sum"), n);
    assert_eq!(
        total(&all, "UserRecordsPut", &["Host", "StreamName"], "Sum"),
        n
    );
    assert_eq!(
        total(
            &all,
            "UserRecordsPut",
            &["Host", "StreamName", "ShardId"],
            "Sum"
        ),
        n
    );
    assert_eq!(
        total(&all, "UserRecordsReceived", &["Host", "StreamName"], "Sum"),
        n
    );
    let shards: std::collections::BTreeSet<String> = all
        .iter()
        .flat_map(|d| {
            dims(d)
                .into_iter()
                .filter(|(k, _)| k == "ShardId")
                .map(|(_, v)| v)
        })
        .collect();
    assert_eq!(shards.len(), 4, "{shards:?}");

    // The injected failures, by code, as the sim counted them.
    let injected = sim.stats().records_internal_failure as f64;
    assert!(injected > 0.0);
    assert_eq!(
        total(&all, "ErrorsByCode", &["Host", "ErrorCode"], "Sum"),
        injected
    );
    assert_eq!(
        errors.get("InternalFailure").copied().unwrap_or(0) as f64,
        injected
    );
    let codes: Vec<String> = all
        .iter()
        .filter(|d| d["MetricName"] == "ErrorsByCode")
        .flat_map(|d| {
            dims(d)
                .into_iter()
                .filter(|(k, _)| k == "ErrorCode")
                .map(|(_, v)| v)
        })
        .collect();
    assert!(codes.iter().all(|c| c == "InternalFailure"), "{codes:?}");
    // KinesisRecordsPut's average is the success rate: its zeros are the failures.
    let attempts = total(&all, "KinesisRecordsPut", &["Host"], "SampleCount");
    let delivered = total(&all, "KinesisRecordsPut", &["Host"], "Sum");
    assert_eq!(attempts - delivered, injected);

    // Detailed level: every name of the KPL's table, with its unit.
    let units: BTreeMap<String, String> = all
        .iter()
        .map(|d| {
            (
                d["MetricName"].as_str().unwrap().to_owned(),
                d["Unit"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (name, unit) in [
        ("UserRecordsDataPut", "Bytes"),
        ("KinesisRecordsDataPut", "Bytes"),
        ("BufferingTime", "Milliseconds"),
        ("RequestTime", "Milliseconds"),
        ("RetriesPerRecord", "Count"),
        ("UserRecordsPending", "Count"),
        ("AllErrors", "Count"),
        ("UserRecordsPerKinesisRecord", "Count"),
        ("KinesisRecordsPerPutRecordsRequest", "Count"),
        ("UserRecordsPerPutRecordsRequest", "Count"),
    ] {
        assert_eq!(units.get(name).map(String::as_str), Some(unit), "{name}");
    }
    let cw = sim.cloudwatch();
    let requests = cw["requests"].as_array().unwrap();
    assert!(
        requests
            .iter()
            .all(|r| r["namespace"] == "KinesisProducerLibrary")
    );
    check_limits_and_sets(&sim, &all);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_kpl_properties_file_chooses_level_granularity_and_namespace() {
    let sim = sim_with("props", 2, Faults::none()).await;
    let text = format!(
        "MetricsLevel = summary\nMetricsGranularity = stream\nMetricsNamespace = Team/Producer\n\
         MetricsUploadDelay = 60000\nCloudwatchEndpoint = {}\n",
        sim.endpoint()
    );
    let builder = config(&sim.endpoint())
        .properties(&text, "test.properties")
        .unwrap();
    let producer = producer(builder).await;
    put_all(&producer, "props", 500).await;
    // The one window is cut when the pipeline ends.
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
    let all = wait_settled(&sim, &producer).await;
    let names: std::collections::BTreeSet<&str> = all
        .iter()
        .map(|d| d["MetricName"].as_str().unwrap())
        .collect();
    let summary = [
        "AllErrors",
        "BufferingTime",
        "ErrorsByCode",
        "KinesisRecordsPut",
        "UserRecordExpired",
        "UserRecordsPut",
    ];
    assert!(names.iter().all(|n| summary.contains(n)), "{names:?}");
    assert!(
        all.iter()
            .all(|d| dims(d).iter().all(|(k, _)| k != "ShardId"))
    );
    assert_eq!(total(&all, "UserRecordsPut", &["StreamName"], "Sum"), 500.0);
    let cw = sim.cloudwatch();
    assert!(
        cw["requests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["namespace"] == "Team/Producer")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn large_dimensions_split_into_requests_within_the_limits() {
    let sim = sim_with("big", 8, Faults::none()).await;
    // 25 dimensions of 1,000 characters: about 26 KB per datum at the shard
    // level, so a window of a few hundred datums needs several requests.
    let dims: Vec<String> = (0..25)
        .map(|i| format!("D{i:02}={}@shard", "v".repeat(1000)))
        .collect();
    let producer = producer(
        config(&sim.endpoint())
            .set("AdditionalMetricsDimensions", &dims.join(","))
            .unwrap(),
    )
    .await;
    put_all(&producer, "big", 400).await;
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
    let all = wait_settled(&sim, &producer).await;
    let cw = sim.cloudwatch();
    let requests = cw["requests"].as_array().unwrap();
    assert!(requests.len() > 1, "{} requests", requests.len());
    // Every prefix of the path is a metric, as in the KPL.
    assert_eq!(
        total(&all, "UserRecordsPut", &["StreamName", "ShardId"], "Sum"),
        400.0
    );
    let full: Vec<String> = ["StreamName", "ShardId"]
        .into_iter()
        .map(str::to_owned)
        .chain((0..25).map(|i| format!("D{i:02}")))
        .collect();
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    assert_eq!(total(&all, "UserRecordsPut", &full, "Sum"), 400.0);
    check_limits_and_sets(&sim, &all);
    sim.shutdown().await;
}

#[tokio::test]
async fn failing_or_unreachable_cloudwatch_loses_no_records() {
    let faults = Faults {
        cloudwatch_500: 1.0,
        ..Faults::none()
    };
    let sim = sim_with("f", 2, faults).await;
    for endpoint in [sim.endpoint(), "http://127.0.0.1:9".to_owned()] {
        let producer = producer(
            config(&sim.endpoint())
                .cloudwatch_endpoint(endpoint.clone())
                .set("MetricsUploadDelay", "50")
                .unwrap(),
        )
        .await;
        for round in 0..4 {
            put_all(&producer, "f", 250).await;
            // Let a window or two go up (and fail) between rounds.
            tokio::time::sleep(Duration::from_millis(120)).await;
            let m = producer.metrics();
            assert_eq!(m.user_records_put, 250 * (round + 1), "{endpoint}");
        }
        let m = producer.metrics();
        assert_eq!(m.user_records_failed, 0);
        assert!(m.metrics_upload_failures > 0, "{endpoint}: {m:?}");
        assert_eq!(m.metrics_datums_uploaded, 0);
        producer.shutdown(Duration::from_secs(10)).await.unwrap();
    }
    let cw = sim.cloudwatch();
    assert!(cw["failed"].as_u64().unwrap() > 0);
    assert!(cw["requests"].as_array().unwrap().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn metrics_level_none_uploads_nothing_and_metrics_still_count() {
    let sim = sim_with("quiet", 1, Faults::none()).await;
    let config: Config = config(&sim.endpoint())
        .metrics_level(MetricsLevel::None)
        .metrics_upload_delay(Duration::from_millis(10))
        .build()
        .unwrap();
    let producer = Producer::new(config).await.unwrap();
    put_all(&producer, "quiet", 100).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(producer.metrics().user_records_put, 100);
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(sim.cloudwatch()["requests"].as_array().unwrap().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_returns_once_the_last_window_is_uploaded() {
    // One window for the whole run (60 s): the pipeline cuts it as it
    // stops, and shutdown waits for its upload, so a process that exits
    // (or stops its endpoint) right after keeps its last minute of metrics.
    let sim = sim_with("last", 2, Faults::none()).await;
    let producer = producer(
        config(&sim.endpoint())
            .set("MetricsUploadDelay", "60000")
            .unwrap(),
    )
    .await;
    put_all(&producer, "last", 100).await;
    assert_eq!(
        producer.metrics().metrics_datums_uploaded,
        0,
        "no window cut yet"
    );
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
    let all = datums(&sim);
    assert!(producer.metrics().metrics_datums_uploaded > 0);
    assert_eq!(all.len() as u64, producer.metrics().metrics_datums_uploaded);
    assert_eq!(total(&all, "UserRecordsPut", &[], "Sum"), 100.0);
    sim.shutdown().await;
}

//! Service limits, fault injection and the admin endpoint.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_kinesis::error::SdkError;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use kpl_sim::{Faults, Limits, MIB, Sim, SimConfig};

fn entry(pk: &str, data: Vec<u8>, ehk: Option<&str>) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .partition_key(pk)
        .data(Blob::new(data))
        .set_explicit_hash_key(ehk.map(str::to_string))
        .build()
        .unwrap()
}

async fn put_err_code(
    c: &aws_sdk_kinesis::Client,
    stream: &str,
    entries: Vec<PutRecordsRequestEntry>,
) -> String {
    let err = c
        .put_records()
        .stream_name(stream)
        .set_records(Some(entries))
        .send()
        .await
        .unwrap_err();
    err.into_service_error()
        .meta()
        .code()
        .unwrap_or("none")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_record_limits() {
    let (sim, c) = common::start(SimConfig::default().stream("s", 2).unlimited()).await;
    // Too many records.
    let many: Vec<_> = (0..501)
        .map(|i| entry(&i.to_string(), vec![1], None))
        .collect();
    assert_eq!(put_err_code(&c, "s", many).await, "ValidationException");
    // 500 is fine.
    let ok: Vec<_> = (0..500)
        .map(|i| entry(&i.to_string(), vec![1], None))
        .collect();
    c.put_records()
        .stream_name("s")
        .set_records(Some(ok))
        .send()
        .await
        .unwrap();
    // Data over 1 MiB.
    let big = vec![entry("k", vec![0; MIB + 1], None)];
    assert_eq!(put_err_code(&c, "s", big).await, "ValidationException");
    // Data + key over the stream's 1 MiB.
    let big = vec![entry("kk", vec![0; MIB - 1], None)];
    assert_eq!(put_err_code(&c, "s", big).await, "ValidationException");
    // Exactly 1 MiB of data + key is fine.
    let fits = vec![entry("k", vec![0; MIB - 1], None)];
    c.put_records()
        .stream_name("s")
        .set_records(Some(fits))
        .send()
        .await
        .unwrap();
    // Request over 10 MiB.
    let mut heavy: Vec<_> = (0..10)
        .map(|i| entry(&i.to_string(), vec![0; MIB - 10], None))
        .collect();
    heavy.push(entry("x", vec![0; 200], None));
    assert_eq!(
        put_err_code(&c, "s", heavy).await,
        "InvalidArgumentException"
    );
    // Partition keys: empty, 257 chars, 256 multi-byte chars.
    assert_eq!(
        put_err_code(&c, "s", vec![entry("", vec![1], None)]).await,
        "ValidationException"
    );
    let long = "x".repeat(257);
    assert_eq!(
        put_err_code(&c, "s", vec![entry(&long, vec![1], None)]).await,
        "ValidationException"
    );
    let wide = "é".repeat(256);
    c.put_records()
        .stream_name("s")
        .records(entry(&wide, vec![1], None))
        .send()
        .await
        .unwrap();
    // Explicit hash keys: not a number, 2^128, leading zero.
    assert_eq!(
        put_err_code(&c, "s", vec![entry("k", vec![1], Some("abc"))]).await,
        "ValidationException"
    );
    let over = "340282366920938463463374607431768211456";
    assert_eq!(
        put_err_code(&c, "s", vec![entry("k", vec![1], Some(over))]).await,
        "InvalidArgumentException"
    );
    assert_eq!(
        put_err_code(&c, "s", vec![entry("k", vec![1], Some("01"))]).await,
        "ValidationException"
    );
    let max = u128::MAX.to_string();
    let r = c
        .put_records()
        .stream_name("s")
        .records(entry("k", vec![1], Some(&max)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.records[0].shard_id.as_deref(),
        Some("shardId-000000000001")
    );
    // Unknown stream.
    assert_eq!(
        put_err_code(&c, "nope", vec![entry("k", vec![1], None)]).await,
        "ResourceNotFoundException"
    );
    let err = c
        .put_record()
        .stream_name("nope")
        .partition_key("k")
        .data(Blob::new(vec![1]))
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());
    // Records up to 10 MiB when the stream allows them.
    sim.set_limits(Limits::unlimited());
    sim.set_max_record_size("s", 10240).unwrap();
    c.put_record()
        .stream_name("s")
        .partition_key("k")
        .data(Blob::new(vec![7; 6 * MIB]))
        .send()
        .await
        .unwrap();
    assert!(sim.stats().errors_4xx >= 9);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_internal_failure_is_seeded() {
    let faults = Faults {
        seed: 42,
        record_internal_failure: 0.5,
        ..Faults::default()
    };
    let (sim, c) = common::start(
        SimConfig::default()
            .stream("s", 4)
            .unlimited()
            .faults(faults.clone()),
    )
    .await;
    let batch = || {
        (0..500)
            .map(|i| entry(&i.to_string(), vec![1; 10], None))
            .collect::<Vec<_>>()
    };
    let r = c
        .put_records()
        .stream_name("s")
        .set_records(Some(batch()))
        .send()
        .await
        .unwrap();
    let failed = r.failed_record_count.unwrap();
    assert!((200..=300).contains(&failed), "failed {failed}");
    let pattern: Vec<bool> = r.records.iter().map(|e| e.error_code.is_some()).collect();
    for e in r.records.iter().filter(|e| e.error_code.is_some()) {
        assert_eq!(e.error_code.as_deref(), Some("InternalFailure"));
        assert!(e.error_message.is_some());
        assert!(e.sequence_number.is_none());
    }
    // Same seed, same pattern.
    sim.set_faults(faults);
    let r2 = c
        .put_records()
        .stream_name("s")
        .set_records(Some(batch()))
        .send()
        .await
        .unwrap();
    let pattern2: Vec<bool> = r2.records.iter().map(|e| e.error_code.is_some()).collect();
    assert_eq!(pattern, pattern2);
    assert_eq!(sim.stats().records_internal_failure, 2 * failed as u64);
    // Only the accepted ones are stored.
    let stored: usize = sim
        .records("s")
        .unwrap()
        .iter()
        .map(|s| s.records.len())
        .sum();
    assert_eq!(stored, 1000 - 2 * failed as usize);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_500_and_503() {
    let (sim, c) = common::start(SimConfig::default().stream("s", 1)).await;
    sim.set_faults(Faults {
        request_500: 1.0,
        ..Faults::default()
    });
    let err = c
        .describe_stream_summary()
        .stream_name("s")
        .send()
        .await
        .unwrap_err();
    let SdkError::ServiceError(se) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(se.raw().status().as_u16(), 500);
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("InternalFailure")
    );
    sim.set_faults(Faults {
        request_503: 1.0,
        ..Faults::default()
    });
    let (status, body) = common::api(sim.local_addr(), "ListStreams", "{}").await;
    assert_eq!(status, 503);
    assert!(body.contains("ServiceUnavailable"), "{body}");
    // Half of them, seeded.
    sim.set_faults(Faults {
        seed: 3,
        request_500: 0.5,
        ..Faults::default()
    });
    let mut n500 = 0;
    for _ in 0..100 {
        if common::api(sim.local_addr(), "ListStreams", "{}").await.0 == 500 {
            n500 += 1;
        }
    }
    assert!((30..=70).contains(&n500), "{n500}");
    sim.set_faults(Faults::none());
    c.describe_stream_summary()
        .stream_name("s")
        .send()
        .await
        .unwrap();
    let st = sim.stats();
    assert_eq!(st.requests_500, 1 + n500);
    assert_eq!(st.requests_503, 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_is_a_connection_error() {
    let (sim, c) = common::start(SimConfig::default().stream("s", 1)).await;
    sim.set_faults(Faults {
        drop_connection: 1.0,
        ..Faults::default()
    });
    let err = c.list_streams().send().await.unwrap_err();
    assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
    assert_eq!(sim.stats().connections_dropped, 1);
    sim.set_faults(Faults::none());
    c.list_streams().send().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_fires_client_timeout_and_shutdown_ends_held_requests() {
    let sim = Sim::start(SimConfig::default().stream("s", 1).faults(Faults {
        timeout: 1.0,
        timeout_hold: Duration::from_secs(60),
        ..Faults::default()
    }))
    .await
    .unwrap();
    let c = common::client_with(&sim.endpoint(), Duration::from_millis(500));
    let t = Instant::now();
    let err = c.list_streams().send().await.unwrap_err();
    assert!(matches!(err, SdkError::TimeoutError(_)), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // A request still held when we shut down: shutdown must not wait 60 s.
    let addr = sim.local_addr();
    let held = tokio::spawn(async move {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::post("/")
            .header("x-amz-target", "Kinesis_20131202.ListStreams")
            .header("content-type", "application/x-amz-json-1.1")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
            .unwrap();
        send.send_request(req).await.is_err()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    sim.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        t.elapsed()
    );
    assert!(
        held.await.unwrap(),
        "held request should end without a response"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_added() {
    let (sim, c) = common::start(SimConfig::default().stream("s", 1)).await;
    c.list_streams().send().await.unwrap();
    sim.set_faults(Faults {
        latency: Duration::from_millis(300),
        latency_jitter: Duration::from_millis(100),
        ..Faults::default()
    });
    let t = Instant::now();
    c.list_streams().send().await.unwrap();
    let el = t.elapsed();
    assert!(
        el >= Duration::from_millis(300) && el < Duration::from_secs(2),
        "{el:?}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoint_switches_faults() {
    let sim = Sim::start(SimConfig::default().stream("s", 1))
        .await
        .unwrap();
    let addr = sim.local_addr();
    let (st, body) = common::raw(
        addr,
        "POST",
        "/_sim/faults",
        &[],
        br#"{"request_500": 1.0, "seed": 9}"#.to_vec(),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(sim.faults().request_500, 1.0);
    let (st, body) = common::raw(addr, "GET", "/_sim/faults", &[], vec![]).await;
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["request_500"], 1.0);
    assert_eq!(v["timeout_hold"], 30000);
    assert_eq!(common::api(addr, "ListStreams", "{}").await.0, 500);
    let (st, _) = common::raw(addr, "POST", "/_sim/faults", &[], b"{}".to_vec()).await;
    assert_eq!(st, 200);
    assert_eq!(common::api(addr, "ListStreams", "{}").await.0, 200);
    let (st, body) = common::raw(addr, "GET", "/_sim/stats", &[], vec![]).await;
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["requests_500"], 1);
    assert_eq!(v["requests"], 2);
    let (st, _) = common::raw(addr, "POST", "/_sim/faults", &[], b"not json".to_vec()).await;
    assert_eq!(st, 400);
    let (st, _) = common::raw(
        addr,
        "POST",
        "/_sim/limits",
        &[],
        br#"{"throughput_enabled": false}"#.to_vec(),
    )
    .await;
    assert_eq!(st, 200);
    assert!(!sim.limits().throughput_enabled);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttles_per_record_at_1000_per_second() {
    let (sim, c) = common::start(SimConfig::default().stream("s", 1)).await;
    let start = Instant::now();
    let mut per_sec = [0usize; 3];
    let mut sent = 0usize;
    let mut accepted_ids = vec![];
    // 300 records every 100 ms for 3 s = 3000 records/s.
    for tick in 0..30u32 {
        let target = start + Duration::from_millis(100 * tick as u64);
        tokio::time::sleep_until(target.into()).await;
        let batch: Vec<_> = (0..300)
            .map(|i| {
                let id = sent + i;
                entry(&id.to_string(), format!("{id:08}").into_bytes(), None)
            })
            .collect();
        let r = c
            .put_records()
            .stream_name("s")
            .set_records(Some(batch))
            .send()
            .await
            .unwrap();
        let sec = (start.elapsed().as_millis() / 1000).min(2) as usize;
        for (i, e) in r.records.iter().enumerate() {
            match e.error_code.as_deref() {
                None => {
                    per_sec[sec] += 1;
                    accepted_ids.push(sent + i);
                }
                Some(code) => assert_eq!(code, "ProvisionedThroughputExceededException"),
            }
        }
        sent += 300;
    }
    let accepted: usize = per_sec.iter().sum();
    // One second of burst plus ~1000/s.
    assert!(
        (2900..=4100).contains(&accepted),
        "accepted {accepted}, per second {per_sec:?}"
    );
    assert!(per_sec[0] <= 2100, "{per_sec:?}");
    for s in &per_sec[1..] {
        assert!((700..=1300).contains(s), "{per_sec:?}");
    }
    let st = sim.stats();
    assert_eq!(st.records_accepted as usize, accepted);
    assert_eq!(st.records_throttled as usize, sent - accepted);
    // PutRecord throttled is a 400 ProvisionedThroughputExceededException.
    // PutRecord: with 1 record/s a second call at once is throttled (a new stream, full bucket).
    sim.set_limits(Limits {
        shard_records_per_sec: 1,
        ..Limits::default()
    });
    sim.create_stream("slow", 1).unwrap();
    let put = || {
        c.put_record()
            .stream_name("slow")
            .partition_key("k")
            .data(Blob::new(vec![1]))
            .send()
    };
    put().await.unwrap();
    let e = put().await.unwrap_err();
    let saw = e
        .into_service_error()
        .is_provisioned_throughput_exceeded_exception();
    assert!(saw);
    // The accepted ones are readable, in order.
    let mut it = c
        .get_shard_iterator()
        .stream_name("s")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator;
    let mut read = vec![];
    while let Some(i) = it {
        let r = c
            .get_records()
            .shard_iterator(i)
            .limit(1000)
            .send()
            .await
            .unwrap();
        if r.records.is_empty() {
            break;
        }
        read.extend(
            r.records
                .into_iter()
                .map(|r| String::from_utf8(r.data.into_inner()).unwrap()),
        );
        it = r.next_shard_iterator;
    }
    let expect: Vec<String> = accepted_ids.iter().map(|id| format!("{id:08}")).collect();
    assert_eq!(&read[..expect.len()], &expect[..]);
    sim.shutdown().await;
}

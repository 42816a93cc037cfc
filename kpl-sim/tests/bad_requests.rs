//! Malformed and refused requests get the service's errors, never a crash or a hang.

mod common;

use kpl_sim::{Sim, SimConfig};

fn kind(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["__type"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_service_errors() {
    let sim = Sim::start(SimConfig::default().stream("s", 1))
        .await
        .unwrap();
    let a = sim.local_addr();
    let cases: Vec<(&str, &str, &str)> = vec![
        ("PutRecords", "{not json", "SerializationException"),
        (
            "PutRecords",
            r#"{"StreamName": 5, "Records": []}"#,
            "SerializationException",
        ),
        (
            "PutRecords",
            r#"{"StreamName": "s", "Records": "x"}"#,
            "SerializationException",
        ),
        (
            "PutRecords",
            r#"{"StreamName": "s"}"#,
            "ValidationException",
        ),
        (
            "PutRecords",
            r#"{"StreamName": "s", "Records": []}"#,
            "ValidationException",
        ),
        (
            "PutRecords",
            r#"{"StreamName": "s", "Records": [{"PartitionKey": "k"}]}"#,
            "ValidationException",
        ),
        (
            "PutRecords",
            r#"{"StreamName": "s", "Records": [{"Data": "AQ=="}]}"#,
            "ValidationException",
        ),
        (
            "PutRecords",
            r#"{"StreamName": "s", "Records": [{"Data": "!!", "PartitionKey": "k"}]}"#,
            "SerializationException",
        ),
        (
            // Unpadded base64: the decoder is strict.
            "PutRecords",
            r#"{"StreamName": "s", "Records": [{"Data": "AQ", "PartitionKey": "k"}]}"#,
            "SerializationException",
        ),
        (
            "PutRecords",
            r#"{"Records": [{"Data": "AQ==", "PartitionKey": "k"}]}"#,
            "InvalidArgumentException",
        ),
        (
            "PutRecords",
            r#"{"StreamName": "nope", "Records": [{"Data": "AQ==", "PartitionKey": "k"}]}"#,
            "ResourceNotFoundException",
        ),
        (
            "PutRecord",
            r#"{"StreamName": "s", "Data": "AQ=="}"#,
            "ValidationException",
        ),
        (
            "DescribeStream",
            r#"{"StreamName": "nope"}"#,
            "ResourceNotFoundException",
        ),
        (
            "GetRecords",
            r#"{"ShardIterator": "garbage"}"#,
            "InvalidArgumentException",
        ),
        ("GetRecords", r#"{}"#, "ValidationException"),
        (
            "GetShardIterator",
            r#"{"StreamName": "s", "ShardId": "shardId-000000000009", "ShardIteratorType": "LATEST"}"#,
            "ResourceNotFoundException",
        ),
        (
            "GetShardIterator",
            r#"{"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": "12"}"#,
            "InvalidArgumentException",
        ),
        (
            "GetShardIterator",
            r#"{"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "SIDEWAYS"}"#,
            "ValidationException",
        ),
        (
            "CreateStream",
            r#"{"StreamName": "bad name!", "ShardCount": 1}"#,
            "ValidationException",
        ),
        (
            "CreateStream",
            r#"{"StreamName": "x", "ShardCount": 0}"#,
            "ValidationException",
        ),
        (
            "CreateStream",
            r#"{"StreamName": "x", "ShardCount": 100000000}"#,
            "LimitExceededException",
        ),
        (
            "SplitShard",
            r#"{"StreamName": "s", "ShardToSplit": "shardId-000000000000", "NewStartingHashKey": "0"}"#,
            "InvalidArgumentException",
        ),
        (
            "ListShards",
            r#"{"StreamName": "s", "MaxResults": 0}"#,
            "ValidationException",
        ),
        (
            "ListShards",
            r#"{"NextToken": "%%%"}"#,
            "InvalidArgumentException",
        ),
        ("Frobnicate", "{}", "UnknownOperationException"),
    ];
    for (op, body, want) in cases {
        let (st, resp) = common::api(a, op, body).await;
        assert_eq!(st, 400, "{op} {body}: {resp}");
        assert_eq!(kind(&resp), want, "{op} {body}: {resp}");
    }
    // No target, wrong content type, GET.
    let (st, resp) = common::raw(
        a,
        "POST",
        "/",
        &[("content-type", "application/x-amz-json-1.1")],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        (st, kind(&resp).as_str()),
        (400, "UnknownOperationException")
    );
    let (st, resp) = common::raw(
        a,
        "POST",
        "/",
        &[
            ("content-type", "text/plain"),
            ("x-amz-target", "Kinesis_20131202.ListStreams"),
        ],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        (st, kind(&resp).as_str()),
        (400, "UnknownOperationException")
    );
    let (st, _) = common::raw(a, "GET", "/", &[], vec![]).await;
    assert_eq!(st, 400);
    // Oversized body (13 MiB, limit 12 MiB): refused, connection or 400, server fine afterwards.
    let big = vec![b' '; 13 * 1024 * 1024];
    let stream = tokio::net::TcpStream::connect(a).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post("/")
        .header("x-amz-target", "Kinesis_20131202.PutRecords")
        .header("content-type", "application/x-amz-json-1.1")
        .body(http_body_util::Full::new(bytes::Bytes::from(big)))
        .unwrap();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(10), send.send_request(req))
        .await
        .expect("oversized body must not hang");
    if let Ok(resp) = resp {
        assert_eq!(resp.status().as_u16(), 400);
    }
    // Still serving.
    let (st, resp) = common::api(a, "ListStreams", "{}").await;
    assert_eq!(st, 200, "{resp}");
    // Empty body is an empty request.
    let (st, _) = common::api(a, "ListStreams", "").await;
    assert_eq!(st, 200);
    sim.shutdown().await;
}

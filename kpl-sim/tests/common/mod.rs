//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::timeout::TimeoutConfig;
use aws_sdk_kinesis::config::{BehaviorVersion, Region};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use kpl_sim::{Sim, SimConfig};

/// An SDK client for `endpoint`, no retries, a 10 s operation timeout.
pub fn client(endpoint: &str) -> Client {
    client_with(endpoint, Duration::from_secs(10))
}

/// An SDK client with the given operation timeout and no retries.
pub fn client_with(endpoint: &str, op_timeout: Duration) -> Client {
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKID", "SECRET", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(op_timeout)
                .build(),
        )
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(conf)
}

/// A raw HTTP/1.1 request to the simulator; returns (status, body).
pub async fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = send
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A Kinesis API call over raw HTTP.
pub async fn api(addr: std::net::SocketAddr, op: &str, body: &str) -> (u16, String) {
    let target = format!("Kinesis_20131202.{op}");
    raw(
        addr,
        "POST",
        "/",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", &target),
        ],
        body.as_bytes().to_vec(),
    )
    .await
}

/// A simulator started with `config` and an SDK client pointed at it.
pub async fn start(config: SimConfig) -> (Sim, Client) {
    let sim = Sim::start(config)
        .await
        .expect("simulator starts on loopback");
    let client = client(&sim.endpoint());
    (sim, client)
}

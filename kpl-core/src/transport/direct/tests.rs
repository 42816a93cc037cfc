//! The producer's own PutRecords over real sockets: a loopback server that
//! records each request and answers what the test queued, and a SigV4
//! check written apart from `aws-sigv4`, itself checked on the SDK's own
//! request first.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, future};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;
use crate::client::Connectors;
use crate::config::Config;

const KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// A request as the server read it.
#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers a request with.
enum Answer {
    Status(u16, Vec<(&'static str, String)>, &'static str),
    /// Read the request, answer nothing.
    Hang,
}

fn ok(body: &'static str) -> Answer {
    Answer::Status(200, vec![], body)
}

/// Serves `answers` in order on 127.0.0.1; each request read is sent on
/// the channel.
async fn serve(answers: Vec<Answer>) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen_tx = seen_tx.clone();
            let answers = answers.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(request) = read_request(&mut socket, &mut buf).await else {
                        return;
                    };
                    let _ = seen_tx.send(request);
                    let answer = answers.lock().pop_front();
                    let Some(Answer::Status(status, headers, body)) = answer else {
                        // Hang (or nothing queued): keep the socket open.
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    };
                    let mut out =
                        format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                    for (name, value) in headers {
                        out.push_str(&format!("{name}: {value}\r\n"));
                    }
                    out.push_str("content-type: application/x-amz-json-1.1\r\n\r\n");
                    out.push_str(body);
                    if socket.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

async fn read_request(socket: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<Seen> {
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 8192];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap().split(' ');
    let (method, path) = (
        start.next().unwrap().to_owned(),
        start.next().unwrap().to_owned(),
    );
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    buf.drain(..head_end + 4);
    while buf.len() < length {
        let mut chunk = [0u8; 65536];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf.drain(..length).collect();
    Some(Seen {
        method,
        path,
        headers,
        body,
    })
}

/// The next request the server read; a test that waits longer failed.
async fn next(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("no request reached the server within 10 s")
        .expect("the server stopped")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Checks the request's SigV4 signature from what went over the wire:
/// the canonical request rebuilt from the headers it names, the key
/// derived from `secret`. Returns the signed header names.
fn verify_sigv4(seen: &Seen, secret: &str, region: &str) -> Vec<String> {
    let auth = seen
        .header("authorization")
        .expect("an Authorization header");
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .unwrap_or_else(|| panic!("not SigV4: {auth}"));
    let field = |name: &str| {
        rest.split(", ")
            .find_map(|p| p.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {auth}"))
            .to_owned()
    };
    let credential = field("Credential=");
    let signed = field("SignedHeaders=");
    let signature = field("Signature=");
    let (_key_id, scope) = credential.split_once('/').unwrap();
    let parts: Vec<&str> = scope.split('/').collect();
    assert_eq!(parts[1..], [region, "kinesis", "aws4_request"], "{scope}");
    let amz_date = seen.header("x-amz-date").expect("x-amz-date");
    assert!(amz_date.starts_with(parts[0]), "{amz_date} vs {scope}");

    let names: Vec<String> = signed.split(';').map(str::to_owned).collect();
    let mut canonical = format!("{}\n{}\n\n", seen.method, seen.path);
    for name in &names {
        let value = seen
            .header(name)
            .unwrap_or_else(|| panic!("signed header {name} was not sent"));
        canonical.push_str(&format!("{name}:{}\n", value.trim()));
    }
    canonical.push_str(&format!("\n{signed}\n{}", hex(&Sha256::digest(&seen.body))));
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), parts[0]);
    for part in &parts[1..] {
        key = hmac(&key, part);
    }
    assert_eq!(
        hex(&hmac(&key, &to_sign)),
        signature,
        "signature of\n{canonical}"
    );
    names
}

fn static_credentials(token: Option<&str>) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(
        KEY_ID,
        SECRET,
        token.map(str::to_owned),
        None,
        "test",
    ))
}

fn direct(url: &str, credentials: SharedCredentialsProvider, timeout: Duration) -> Direct {
    let config = Config::builder().endpoint(url).build().unwrap();
    let settings = aws_smithy_runtime_api::client::http::HttpConnectorSettings::builder()
        .connect_timeout(Duration::from_secs(2))
        .build();
    let sleep = aws_smithy_async::rt::sleep::default_async_sleep();
    Direct::new(Settings {
        connector: SharedHttpConnector::new(
            Connectors::new(&config)
                .unwrap()
                .connector(Some(settings), sleep),
        ),
        credentials: Some(credentials),
        region: "eu-west-1".into(),
        use_fips: false,
        use_dual_stack: false,
        endpoint_url: Some(url.to_owned()),
        time: SharedTimeSource::default(),
        request_timeout: timeout,
    })
}

fn entries() -> Vec<Entry> {
    ["a", "b", "c"]
        .iter()
        .map(|k| Entry {
            partition_key: (*k).into(),
            explicit_hash_key: None,
            data: Bytes::from_static(b"payload"),
        })
        .collect()
}

const THREE_RESULTS: &str = r#"{"FailedRecordCount":1,"Records":[
    {"SequenceNumber":"1","ShardId":"shardId-000000000000"},
    {"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded"},
    {"SequenceNumber":"2","ShardId":"shardId-000000000000"}]}"#;

#[tokio::test]
async fn the_checker_accepts_the_sdks_own_request() {
    let (url, mut seen) = serve(vec![ok(THREE_RESULTS)]).await;
    let config = Config::builder().endpoint(&url).build().unwrap();
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version_latest()
        .http_client(Connectors::new(&config).unwrap().http_client())
        .region(aws_sdk_kinesis::config::Region::new("eu-west-1"))
        .endpoint_url(&url)
        .credentials_provider(Credentials::new(KEY_ID, SECRET, None, None, "test"))
        .build();
    let client = aws_sdk_kinesis::Client::from_conf(conf);
    let entry = aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
        .partition_key("a")
        .data(aws_sdk_kinesis::primitives::Blob::new("payload"))
        .build()
        .unwrap();
    // Three results for one entry: the SDK does not mind; what counts is
    // what it sent.
    let sent = client
        .put_records()
        .stream_name("s")
        .records(entry)
        .send()
        .await;
    assert!(sent.is_ok(), "{sent:?}");
    let request = next(&mut seen).await;
    verify_sigv4(&request, SECRET, "eu-west-1");
    // And a wrong key is caught.
    let caught = std::panic::catch_unwind(|| verify_sigv4(&request, "not-the-secret", "eu-west-1"));
    assert!(caught.is_err());
}

#[tokio::test]
async fn put_records_is_signed_and_answered_entry_by_entry() {
    let (url, mut seen) = serve(vec![ok(THREE_RESULTS)]).await;
    let direct = direct(
        &url,
        static_credentials(Some("session-token")),
        Duration::from_secs(5),
    );
    let outcomes = direct.put_records("my-stream", &entries()).await.unwrap();
    assert_eq!(outcomes.len(), 3);
    assert!(
        matches!(&outcomes[0], EntryOutcome::Delivered { sequence_number, .. } if &**sequence_number == "1")
    );
    assert!(
        matches!(&outcomes[1], EntryOutcome::Failed { code, .. } if code == "ProvisionedThroughputExceededException")
    );

    let request = next(&mut seen).await;
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/")
    );
    assert_eq!(
        request.header("x-amz-target"),
        Some("Kinesis_20131202.PutRecords")
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-amz-json-1.1")
    );
    assert_eq!(
        request.header("host"),
        Some(url.strip_prefix("http://").unwrap())
    );
    assert_eq!(
        request.header("x-amz-security-token"),
        Some("session-token")
    );
    let signed = verify_sigv4(&request, SECRET, "eu-west-1");
    for name in [
        "content-type",
        "host",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-target",
    ] {
        assert!(
            signed.iter().any(|s| s == name),
            "{name} not signed: {signed:?}"
        );
    }
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["StreamName"], "my-stream");
    assert_eq!(body["Records"][2]["PartitionKey"], "c");
    assert_eq!(body["Records"][2]["Data"], "cGF5bG9hZA==");
}

#[tokio::test]
async fn service_errors_keep_their_codes_and_server_errors_stay_retryable() {
    let (url, _seen) = serve(vec![
        Answer::Status(
            400,
            vec![("x-amzn-errortype", "ResourceNotFoundException:http://internal.amazon.com/".into())],
            r#"{"__type":"ResourceNotFoundException","message":"Stream my-stream under account 1 not found."}"#,
        ),
        Answer::Status(500, vec![], ""),
        Answer::Status(200, vec![], "<html>"),
    ])
    .await;
    let direct = direct(&url, static_credentials(None), Duration::from_secs(5));
    let gone = direct
        .put_records("my-stream", &entries())
        .await
        .unwrap_err();
    assert_eq!(
        (gone.kind(), gone.code()),
        (ErrorKind::Service, Some("ResourceNotFoundException"))
    );
    assert!(gone.message().contains("not found"), "{gone}");
    assert!(!gone.is_retryable());
    let server = direct
        .put_records("my-stream", &entries())
        .await
        .unwrap_err();
    assert_eq!(
        (server.kind(), server.code()),
        (ErrorKind::Transport, Some("HTTP500"))
    );
    assert!(server.is_retryable());
    let garbled = direct
        .put_records("my-stream", &entries())
        .await
        .unwrap_err();
    assert_eq!(garbled.code(), Some("ResponseError"));
}

#[tokio::test]
async fn no_answer_is_a_request_timeout_and_no_server_a_connection_error() {
    let (url, _seen) = serve(vec![Answer::Hang]).await;
    let direct_to_hang = direct(&url, static_credentials(None), Duration::from_millis(300));
    let err = direct_to_hang
        .put_records("s", &entries())
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Transport, Some("RequestTimeout"))
    );

    // A port nothing listens on: bound, then closed.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let nobody = direct(&url, static_credentials(None), Duration::from_secs(5));
    let err = nobody.put_records("s", &entries()).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Transport, Some("ConnectionError"))
    );
    assert!(err.message().contains("connection failed"), "{err}");
}

/// Credentials that expire `ttl` after they are handed out.
#[derive(Debug)]
struct Expiring {
    ttl: Duration,
    loads: Arc<AtomicUsize>,
}

impl ProvideCredentials for Expiring {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let n = self.loads.fetch_add(1, SeqCst);
        future::ProvideCredentials::ready(Ok(Credentials::new(
            format!("{KEY_ID}{n}"),
            SECRET,
            None,
            Some(SystemTime::now() + self.ttl),
            "test",
        )))
    }
}

#[tokio::test]
async fn credentials_load_again_only_near_their_expiry() {
    for (ttl, expected_loads) in [(Duration::from_secs(3600), 1), (Duration::from_secs(60), 3)] {
        let (url, mut seen) = serve(vec![
            ok(THREE_RESULTS),
            ok(THREE_RESULTS),
            ok(THREE_RESULTS),
        ])
        .await;
        let loads = Arc::new(AtomicUsize::new(0));
        let provider = SharedCredentialsProvider::new(Expiring {
            ttl,
            loads: loads.clone(),
        });
        let direct = direct(&url, provider, Duration::from_secs(5));
        for _ in 0..3 {
            direct.put_records("s", &entries()).await.unwrap();
        }
        assert_eq!(loads.load(SeqCst), expected_loads, "ttl {ttl:?}");
        // The last request carries the last key loaded.
        for _ in 0..2 {
            next(&mut seen).await;
        }
        let last = next(&mut seen).await;
        let key_id = format!("Credential={KEY_ID}{}/", expected_loads - 1);
        assert!(last.header("authorization").unwrap().contains(&key_id));
    }
}

#[tokio::test]
async fn a_service_clock_an_hour_ahead_moves_the_signing_time() {
    let ahead = SystemTime::now() + Duration::from_secs(3600);
    let date = aws_smithy_types::DateTime::from(ahead)
        .fmt(Format::HttpDate)
        .unwrap();
    let (url, mut seen) = serve(vec![
        Answer::Status(200, vec![("date", date)], THREE_RESULTS),
        ok(THREE_RESULTS),
    ])
    .await;
    let direct = direct(&url, static_credentials(None), Duration::from_secs(5));
    direct.put_records("s", &entries()).await.unwrap();
    direct.put_records("s", &entries()).await.unwrap();
    let first = next(&mut seen).await;
    let second = next(&mut seen).await;
    let when = |s: &Seen| {
        let t = s.header("x-amz-date").unwrap();
        SystemTime::try_from(DateTime::from_str(t, Format::DateTime).unwrap_or_else(|_| {
            // x-amz-date is the basic ISO form: 20261202T101500Z.
            let iso = format!(
                "{}-{}-{}T{}:{}:{}Z",
                &t[0..4],
                &t[4..6],
                &t[6..8],
                &t[9..11],
                &t[11..13],
                &t[13..15]
            );
            DateTime::from_str(&iso, Format::DateTime).unwrap()
        }))
        .unwrap()
    };
    let moved = when(&second).duration_since(when(&first)).unwrap();
    assert!(
        moved > Duration::from_secs(3590) && moved < Duration::from_secs(3610),
        "{moved:?}"
    );
    verify_sigv4(&second, SECRET, "eu-west-1");
}

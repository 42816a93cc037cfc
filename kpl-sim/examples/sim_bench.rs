//! Load generator for kpl-sim (or any Kinesis endpoint).
//!
//! ```text
//! cargo run --release -p kpl-sim --example sim_bench -- [--secs 5] [--conns 8] [--endpoint http://127.0.0.1:4567]
//! ```
//! Without `--endpoint` (or `KPL_SIM_BENCH_ENDPOINT`) it starts kpl-sim
//! in-process with throughput limits off. It drives PutRecords from `conns`
//! tasks, each over its own keep-alive HTTP/1.1 connection, for two loads:
//! (a) 500 records of 100 bytes per request, (b) 100 records of 50 KiB. It
//! prints records/s and MB/s accepted, and the process CPU time (client and
//! in-process server together, from /proc/self/stat) per million records.

use std::time::{Duration, Instant};

use base64_simd::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use kpl_sim::{Retention, Sim, SimConfig};

struct Args {
    secs: u64,
    conns: usize,
    shards: u32,
    endpoint: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        secs: 5,
        conns: 8,
        shards: 16,
        endpoint: std::env::var("KPL_SIM_BENCH_ENDPOINT").ok(),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--secs" => a.secs = val.parse().expect("--secs N"),
            "--conns" => a.conns = val.parse().expect("--conns N"),
            "--shards" => a.shards = val.parse().expect("--shards N"),
            "--endpoint" => a.endpoint = Some(val),
            other => panic!("unknown argument {other}; use --secs --conns --shards --endpoint"),
        }
        i += 2;
    }
    a.secs = a.secs.clamp(1, 120);
    a
}

/// User + system CPU seconds of this process (Linux).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

fn host_port(endpoint: &str) -> String {
    endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

async fn call(
    send: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: &str,
    op: &str,
    body: Bytes,
) -> Result<(u16, Bytes), hyper::Error> {
    send.ready().await?;
    let req = hyper::Request::post("/")
        .header("host", host)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("Kinesis_20131202.{op}"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00",
        )
        .header("x-amz-date", "20250101T000000Z")
        .body(Full::new(body))
        .unwrap();
    let resp = send.send_request(req).await?;
    let status = resp.status().as_u16();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

async fn connect(host: &str) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let s = tokio::net::TcpStream::connect(host).await.expect("connect");
    s.set_nodelay(true).ok();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    send
}

fn body(stream: &str, records: usize, size: usize, salt: usize) -> Bytes {
    let data = B64.encode_to_string(vec![b'x'; size]);
    let mut s = format!("{{\"StreamName\":\"{stream}\",\"Records\":[");
    for i in 0..records {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"Data\":\"{data}\",\"PartitionKey\":\"pk-{salt}-{i}\"}}"
        ));
    }
    s.push_str("]}");
    Bytes::from(s)
}

fn failed_count(resp: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(resp).ok()?;
    let i = s.find("\"FailedRecordCount\":")? + "\"FailedRecordCount\":".len();
    let digits: String = s[i..]
        .chars()
        .skip_while(|c| *c == ' ')
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn run_load(host: &str, stream: &str, conns: usize, secs: u64, records: usize, size: usize) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    let mut tasks = vec![];
    for c in 0..conns {
        let host = host.to_string();
        let body = body(stream, records, size, c);
        tasks.push(tokio::spawn(async move {
            let mut send = connect(&host).await;
            let (mut ok, mut errs, mut calls) = (0usize, 0usize, 0usize);
            while Instant::now() < deadline {
                calls += 1;
                let Ok((st, resp)) = call(&mut send, &host, "PutRecords", body.clone()).await
                else {
                    errs += records;
                    send = connect(&host).await;
                    continue;
                };
                match (st, failed_count(&resp)) {
                    (200, Some(f)) => {
                        ok += records - f;
                        errs += f;
                    }
                    _ => errs += records,
                }
            }
            (ok, errs, calls)
        }));
    }
    let (mut ok, mut errs, mut calls) = (0, 0, 0);
    for t in tasks {
        let (a, b, c) = t.await.unwrap();
        ok += a;
        errs += b;
        calls += c;
    }
    let el = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let rps = ok as f64 / el;
    let mbps = rps * size as f64 / 1e6;
    println!(
        "{records:>3} x {size:>6} B: {rps:>10.0} records/s  {mbps:>8.1} MB/s  ({calls} calls, {errs} failed records, {conns} conns, {el:.1} s)  CPU {:.2} s = {:.2} CPU-s per million records",
        cpu,
        if ok > 0 {
            cpu / (ok as f64 / 1e6)
        } else {
            f64::NAN
        },
    );
}

#[tokio::main]
async fn main() {
    let a = args();
    let sim;
    let endpoint = match &a.endpoint {
        Some(e) => {
            sim = None;
            e.clone()
        }
        None => {
            let s = Sim::start(SimConfig::default().unlimited().retention(Retention {
                max_records_per_shard: Some(20_000),
                max_bytes_per_shard: Some(16 * 1024 * 1024),
            }))
            .await
            .expect("start sim");
            let e = s.endpoint();
            sim = Some(s);
            e
        }
    };
    let host = host_port(&endpoint);
    let stream = "bench";
    let mut send = connect(&host).await;
    let create = format!(
        "{{\"StreamName\":\"{stream}\",\"ShardCount\":{}}}",
        a.shards
    );
    let (st, resp) = call(&mut send, &host, "CreateStream", Bytes::from(create))
        .await
        .expect("CreateStream");
    if st != 200 && !String::from_utf8_lossy(&resp).contains("ResourceInUse") {
        panic!("CreateStream: {st} {}", String::from_utf8_lossy(&resp));
    }
    // Wait for ACTIVE (kinesalite takes a moment).
    for _ in 0..100 {
        let (_, resp) = call(
            &mut send,
            &host,
            "DescribeStreamSummary",
            Bytes::from(format!("{{\"StreamName\":\"{stream}\"}}")),
        )
        .await
        .expect("DescribeStreamSummary");
        if String::from_utf8_lossy(&resp).contains("\"ACTIVE\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "endpoint {endpoint} ({}), {} shards, {} conns, {} s per load",
        if sim.is_some() {
            "kpl-sim in-process, limits off"
        } else {
            "external"
        },
        a.shards,
        a.conns,
        a.secs
    );
    run_load(&host, stream, a.conns, a.secs, 500, 100).await;
    run_load(&host, stream, a.conns, a.secs, 100, 50 * 1024).await;
    if let Some(s) = sim {
        let st = s.stats();
        println!("sim stats: {st:?}");
        s.shutdown().await;
    }
}

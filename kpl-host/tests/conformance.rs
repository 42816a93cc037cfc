//! The conformance cases (tests/conformance/cases.tsv, whose header says
//! what each line means) from Rust, against kpl-sim in-process. C, Python
//! and Node run the same file and must see the same outcomes.

use std::time::Duration;

use bytes::Bytes;
use kpl_core::{Config, ConfigBuilder, Error, ErrorKind, Producer, PutResult};
use kpl_host::record::from_parts;
use kpl_sim::{Sim, SimConfig};

const CASES: &str = include_str!("../../tests/conformance/cases.tsv");

/// `-` is none; `TEXT*N` is TEXT repeated N times.
fn value(field: &str) -> Option<String> {
    if field == "-" {
        return None;
    }
    if let Some((text, n)) = field.rsplit_once('*')
        && let Ok(n) = n.parse::<usize>()
    {
        return Some(text.repeat(n));
    }
    Some(field.to_owned())
}

/// An error as the cases write it: its kind, and for an unknown setting
/// the best suggestion.
fn error_outcome(e: &Error) -> String {
    match (e.kind(), e.suggestions().first()) {
        (ErrorKind::UnknownSetting, Some(best)) => format!("UnknownSetting:{best}"),
        (kind, _) => kind.as_str().to_owned(),
    }
}

fn base(endpoint: &str, stream: &str) -> ConfigBuilder {
    Config::from_parts(
        None,
        [
            ("StreamName", stream),
            ("KinesisEndpoint", endpoint),
            ("Region", "us-east-1"),
            ("AwsAccessKeyId", "AKIDLOCALTEST"),
            ("AwsSecretAccessKey", "local-test-secret"),
            ("RecordMaxBufferedTime", "20"),
            ("RecordTtl", "10000"),
            ("MetricsLevel", "none"),
        ],
    )
    .expect("base settings")
}

async fn producer(b: ConfigBuilder) -> Producer {
    Producer::new(b.build().expect("valid config"))
        .await
        .expect("producer starts")
}

/// `set NAME VALUE OUTCOME`: the KPL name to read back comes from the
/// expected outcome (`KplName=value`).
fn set(name: &str, text: &str, expected: &str) -> String {
    let built = Config::from_parts(None, [(name, text)]).and_then(ConfigBuilder::build);
    match built {
        Err(e) => error_outcome(&e),
        Ok(config) => {
            let kpl_name = expected.split_once('=').map_or(name, |(n, _)| n);
            let shown = config
                .entries()
                .into_iter()
                .find(|(n, _)| *n == kpl_name)
                .map(|(_, v)| v);
            format!("{kpl_name}={}", shown.unwrap_or_default())
        }
    }
}

async fn record(p: &Producer, key: &str, data: &str, ehk: Option<String>) -> String {
    let r = from_parts(None, key, ehk.as_deref(), Bytes::from(data.to_owned()));
    match p.try_put(r) {
        Err(e) => error_outcome(&e),
        Ok(handle) => match handle.await {
            Ok(_) => "Delivered".to_owned(),
            Err(e) => format!("Failed:{}", error_outcome(&e)),
        },
    }
}

async fn failed(endpoint: &str, default_stream: &str, key: &str) -> String {
    let p = producer(base(endpoint, default_stream)).await;
    let r = from_parts(None, key, None, Bytes::from_static(b"x"));
    let outcome = match p.put(r).await {
        Err(e) => format!("refused {}", error_outcome(&e)),
        Ok(handle) => match handle.await {
            Ok(_) => "Delivered".to_owned(),
            Err(e) => format!(
                "{}:{}\t{}",
                error_outcome(&e),
                e.code().unwrap_or("-"),
                e.record().and_then(|r| r.stream()).unwrap_or("-")
            ),
        },
    };
    let _ = p.shutdown(Duration::from_secs(5)).await;
    outcome
}

async fn order(endpoint: &str, n: usize, buffered: &str, aggregation: &str) -> String {
    let mut b = base(endpoint, "main");
    for (name, value) in [
        ("StrictOrdering", "true"),
        ("MaxBufferedRecords", buffered),
        ("AggregationEnabled", aggregation),
    ] {
        b.apply(name, value).unwrap();
    }
    let p = producer(b).await;
    let records = (0..n).map(|i| from_parts(None, "k", None, Bytes::from(i.to_string())));
    let results = p.put_many(records).await;
    let mut out: Vec<PutResult> = Vec::with_capacity(n);
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Err(e) => return format!("record {i} refused: {}", error_outcome(&e)),
            Ok(handle) => match handle.await {
                Ok(r) => out.push(r),
                Err(e) => return format!("record {i} failed: {}", error_outcome(&e)),
            },
        }
    }
    let _ = p.shutdown(Duration::from_secs(5)).await;
    in_order(&out)
}

/// `in-order`, or the first record whose (sequence number, sub-sequence
/// number) does not rise over the one put before it.
fn in_order(results: &[PutResult]) -> String {
    let at = |r: &PutResult| {
        let seq = r.sequence_number();
        ((seq.len(), seq.to_owned()), r.sub_sequence_number())
    };
    match results.windows(2).position(|w| at(&w[0]) >= at(&w[1])) {
        None => "in-order".to_owned(),
        Some(i) => format!("record {} stored before record {i}", i + 1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_has_its_outcome() {
    let sim = Sim::start(SimConfig::default().stream("main", 2))
        .await
        .expect("simulator starts on loopback");
    let endpoint = sim.endpoint();
    let main = producer(base(&endpoint, "main")).await;
    let mut failures = Vec::new();
    let mut ran = 0;
    for (number, line) in CASES.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let (got, want) = match f.as_slice() {
            ["set", name, text, want] => (set(name, text, want), want.to_string()),
            ["record", key, data, ehk, want] => {
                let (key, data) = (value(key).unwrap(), value(data).unwrap());
                (
                    record(&main, &key, &data, value(ehk)).await,
                    want.to_string(),
                )
            }
            ["failed", stream, key, want, named] => (
                failed(&endpoint, stream, key).await,
                format!("{want}\t{named}"),
            ),
            ["order", n, buffered, aggregation] => (
                order(&endpoint, n.parse().unwrap(), buffered, aggregation).await,
                "in-order".to_owned(),
            ),
            _ => panic!("cases.tsv:{}: cannot read {line:?}", number + 1),
        };
        ran += 1;
        if got != want {
            failures.push(format!("cases.tsv:{}: {line:?}: got {got:?}", number + 1));
        }
    }
    main.shutdown(Duration::from_secs(5)).await.unwrap();
    println!("conformance: {ran} cases, {} failed", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 30, "only {ran} cases ran");
}

use super::*;
use crate::metrics::accumulator::Place;
use crate::metrics::names::MetricsDimension;

fn cell(name: Name, stream: &str, shard: Option<&str>, code: Option<&str>, values: &[f64]) -> Cell {
    let mut stats = StatSet::EMPTY;
    for v in values {
        stats.add(*v);
    }
    Cell {
        name,
        place: Place {
            stream: stream.into(),
            shard: shard.map(Into::into),
        },
        error_code: code.map(Into::into),
        stats,
    }
}

fn config(granularity: MetricsGranularity, dims: &str) -> Config {
    Config::builder()
        .metrics_granularity(granularity)
        .set("AdditionalMetricsDimensions", dims)
        .unwrap()
        .build()
        .unwrap()
}

fn dims(d: &Datum) -> Vec<String> {
    d.dimensions
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect()
}

#[test]
fn values_count_at_every_level_of_the_tree() {
    let cells = [
        cell(
            Name::UserRecordsPut,
            "a",
            Some("shard-1"),
            None,
            &[1.0, 1.0, 0.0],
        ),
        cell(Name::UserRecordsPut, "a", Some("shard-2"), None, &[1.0]),
        cell(Name::UserRecordsPut, "b", Some("shard-1"), None, &[1.0]),
        cell(Name::UserRecordsPut, "b", None, None, &[0.0]),
    ];
    let datums = roll_up(&cells, &config(MetricsGranularity::Shard, ""));
    let summary: Vec<(Vec<String>, f64, f64)> = datums
        .iter()
        .map(|d| (dims(d), d.stats.sum, d.stats.count))
        .collect();
    assert_eq!(
        summary,
        [
            (vec![], 4.0, 6.0),
            (vec!["StreamName=a".into()], 3.0, 4.0),
            (
                vec!["StreamName=a".into(), "ShardId=shard-1".into()],
                2.0,
                3.0
            ),
            (
                vec!["StreamName=a".into(), "ShardId=shard-2".into()],
                1.0,
                1.0
            ),
            (vec!["StreamName=b".into()], 1.0, 2.0),
            (
                vec!["StreamName=b".into(), "ShardId=shard-1".into()],
                1.0,
                1.0
            ),
        ]
    );
    let global = &datums[0].stats;
    assert_eq!((global.min, global.max), (0.0, 1.0));
}

#[test]
fn granularity_cuts_the_tree() {
    let cells = [cell(Name::RequestTime, "a", Some("s1"), None, &[5.0])];
    let stream = roll_up(&cells, &config(MetricsGranularity::Stream, ""));
    assert_eq!(stream.len(), 2);
    let global = roll_up(&cells, &config(MetricsGranularity::Global, ""));
    assert_eq!(global.len(), 1);
    assert!(global[0].dimensions.is_empty());
}

#[test]
fn errors_by_code_and_user_dimensions_follow_the_kpls_order() {
    let cells = [cell(
        Name::ErrorsByCode,
        "a",
        Some("s1"),
        Some("InternalFailure"),
        &[1.0, 1.0],
    )];
    let config = config(
        MetricsGranularity::Shard,
        "Host=h1, Az=z@shard, App=x@stream",
    );
    let datums = roll_up(&cells, &config);
    let paths: Vec<Vec<String>> = datums.iter().map(dims).collect();
    // Every prefix of MetricName, Host, ErrorCode, StreamName, App, ShardId, Az.
    let full = [
        "Host=h1",
        "ErrorCode=InternalFailure",
        "StreamName=a",
        "App=x",
        "ShardId=s1",
        "Az=z",
    ];
    let mut expected: Vec<Vec<String>> = (0..=full.len())
        .map(|k| full[..k].iter().map(|s| s.to_string()).collect())
        .collect();
    expected.sort();
    let mut got = paths.clone();
    got.sort();
    assert_eq!(got, expected);
    assert!(datums.iter().all(|d| d.stats.sum == 2.0));
    let _ = MetricsDimension::parse_list("");
}

#[test]
fn batches_stay_within_the_count_and_size_limits() {
    let small: Vec<Datum> = (0..2500)
        .map(|i| Datum {
            name: Name::UserRecordsPut,
            dimensions: vec![("ShardId".into(), format!("shardId-{i:012}"))],
            stats: StatSet::EMPTY,
        })
        .collect();
    let sizes: Vec<usize> = batches(small).iter().map(Vec::len).collect();
    assert_eq!(sizes, [1000, 1000, 500]);

    // 30 dimensions of 1,024-character values: the size limit binds first.
    let big: Vec<Datum> = (0..100)
        .map(|i| Datum {
            name: Name::BufferingTime,
            dimensions: (0..30)
                .map(|d| (format!("D{d}"), format!("{i}{}", "v".repeat(1020))))
                .collect(),
            stats: StatSet::EMPTY,
        })
        .collect();
    let out = batches(big);
    assert!(out.len() > 3, "{}", out.len());
    for b in &out {
        let bytes: usize = REQUEST_OVERHEAD + b.iter().map(Datum::encoded_size).sum::<usize>();
        assert!(bytes <= MAX_PAYLOAD_BYTES && b.len() <= MAX_DATUMS_PER_REQUEST);
    }
    assert_eq!(out.iter().map(Vec::len).sum::<usize>(), 100);
}

fn window_of(n: usize) -> Vec<Datum> {
    (0..n)
        .map(|i| Datum {
            name: Name::KinesisRecordsPut,
            dimensions: vec![("StreamName".into(), i.to_string())],
            stats: StatSet::EMPTY,
        })
        .collect()
}

#[test]
fn the_backlog_drops_the_oldest_windows_beyond_its_bound() {
    let mut backlog = Backlog::new(250);
    let t0 = SystemTime::UNIX_EPOCH;
    assert_eq!(backlog.push(t0, window_of(100)), 0);
    assert_eq!(
        backlog.push(t0 + std::time::Duration::from_secs(1), window_of(100)),
        0
    );
    assert_eq!(
        backlog.push(t0 + std::time::Duration::from_secs(2), window_of(100)),
        1
    );
    assert_eq!(backlog.datums(), 200);
    assert_eq!(backlog.dropped, 1);
    // The oldest left is the second window.
    assert_eq!(
        backlog.front().unwrap().0,
        t0 + std::time::Duration::from_secs(1)
    );
    // A window larger than the bound is kept alone.
    assert_eq!(backlog.push(t0, window_of(1200)), 2);
    assert_eq!(backlog.datums(), 1200);
    backlog.pop();
    assert_eq!(backlog.datums(), 200);
    backlog.pop();
    assert!(backlog.front().is_none());
    assert_eq!(backlog.push(t0, Vec::new()), 0);
}

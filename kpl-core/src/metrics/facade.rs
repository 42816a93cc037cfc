//! The same metrics through the `metrics` crate facade (feature
//! `metrics-facade`), for Prometheus or OpenTelemetry exporters.
//!
//! Each window, as it reaches the upload task, is reported under the KPL's
//! names with the dimensions as labels (`StreamName`, `ShardId` down to
//! `MetricsGranularity`, `ErrorCode`, the user dimensions):
//! - counters: UserRecordsReceived, UserRecordsPut (the successes),
//!   UserRecordsDataPut, KinesisRecordsPut, KinesisRecordsDataPut,
//!   ErrorsByCode, AllErrors, UserRecordExpired;
//! - a gauge: UserRecordsPending (the window's mean);
//! - histograms: BufferingTime, RequestTime, RetriesPerRecord and the
//!   per-record and per-request ratios. A window holds Sum, Min, Max and
//!   SampleCount, not every value, so each histogram gets SampleCount
//!   values at the window's mean: sums and counts are exact.

use metrics::{Label, Unit as FacadeUnit};

use super::accumulator::Cell;
use super::names::{MetricsGranularity, Name, Unit};
use crate::config::Config;

enum Kind {
    Counter,
    Gauge,
    Histogram,
}

fn kind(name: Name) -> Kind {
    match name {
        Name::UserRecordsPending => Kind::Gauge,
        Name::BufferingTime
        | Name::RequestTime
        | Name::RetriesPerRecord
        | Name::UserRecordsPerKinesisRecord
        | Name::KinesisRecordsPerPutRecordsRequest
        | Name::UserRecordsPerPutRecordsRequest => Kind::Histogram,
        _ => Kind::Counter,
    }
}

fn labels(cell: &Cell, config: &Config) -> Vec<Label> {
    let g = config.metrics_granularity;
    let mut labels = Vec::with_capacity(4);
    if let Some(code) = &cell.error_code {
        labels.push(Label::new("ErrorCode", code.to_string()));
    }
    if g >= MetricsGranularity::Stream {
        labels.push(Label::new("StreamName", cell.place.stream.to_string()));
    }
    if g >= MetricsGranularity::Shard
        && let Some(shard) = &cell.place.shard
    {
        labels.push(Label::new("ShardId", shard.to_string()));
    }
    for d in &config.metrics_dimensions {
        if d.granularity <= g {
            labels.push(Label::new(d.name.clone(), d.value.clone()));
        }
    }
    labels
}

/// Describes every metric once (its unit), for exporters that show them.
pub(crate) fn describe() {
    for name in Name::ALL {
        let unit = match name.unit() {
            Unit::Count => FacadeUnit::Count,
            Unit::Bytes => FacadeUnit::Bytes,
            Unit::Milliseconds => FacadeUnit::Milliseconds,
        };
        let text = "the KPL's metric of this name";
        match kind(name) {
            Kind::Counter => metrics::describe_counter!(name.as_str(), unit, text),
            Kind::Gauge => metrics::describe_gauge!(name.as_str(), unit, text),
            Kind::Histogram => metrics::describe_histogram!(name.as_str(), unit, text),
        }
    }
}

/// Reports one window's cells.
pub(crate) fn report(cells: &[Cell], config: &Config) {
    for cell in cells {
        let labels = labels(cell, config);
        let s = &cell.stats;
        match kind(cell.name) {
            Kind::Counter => metrics::counter!(cell.name.as_str(), labels).increment(s.sum as u64),
            Kind::Gauge => metrics::gauge!(cell.name.as_str(), labels).set(s.sum / s.count),
            Kind::Histogram => metrics::histogram!(cell.name.as_str(), labels)
                .record_many(s.sum / s.count, s.count as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;
    use crate::metrics::accumulator::{Place, StatSet};

    #[test]
    fn windows_reach_the_facade_with_the_kpls_names_and_labels() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let config = Config::builder()
            .set("AdditionalMetricsDimensions", "Host=h1")
            .unwrap()
            .build()
            .unwrap();
        let mut put = StatSet::EMPTY;
        for v in [1.0, 1.0, 0.0] {
            put.add(v);
        }
        let mut time = StatSet::EMPTY;
        for v in [2.0, 4.0] {
            time.add(v);
        }
        let place = Place {
            stream: "s".into(),
            shard: Some("shardId-000000000000".into()),
        };
        let cells = [
            Cell {
                name: Name::UserRecordsPut,
                place: place.clone(),
                error_code: None,
                stats: put,
            },
            Cell {
                name: Name::BufferingTime,
                place,
                error_code: None,
                stats: time,
            },
        ];
        metrics::with_local_recorder(&recorder, || {
            describe();
            report(&cells, &config);
        });
        let snapshot = snapshotter.snapshot().into_vec();
        let find = |name: &str| {
            snapshot
                .iter()
                .find(|(key, ..)| key.key().name() == name)
                .unwrap_or_else(|| panic!("{name} missing: {snapshot:?}"))
        };
        let (key, unit, _, value) = find("UserRecordsPut");
        assert_eq!(*value, DebugValue::Counter(2));
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        assert_eq!(
            labels,
            ["StreamName=s", "ShardId=shardId-000000000000", "Host=h1"]
        );
        assert_eq!(*unit, Some(FacadeUnit::Count));
        let (_, unit, _, value) = find("BufferingTime");
        assert_eq!(*unit, Some(FacadeUnit::Milliseconds));
        match value {
            DebugValue::Histogram(values) => {
                let values: Vec<f64> = values.iter().map(|v| v.into_inner()).collect();
                assert_eq!(values, [3.0, 3.0]);
            }
            other => panic!("{other:?}"),
        }
    }
}

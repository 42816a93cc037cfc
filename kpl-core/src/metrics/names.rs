//! The KPL's metric names, units and levels, and the settings that choose
//! which of them are kept (`MetricsLevel`, `MetricsGranularity`) and the
//! dimensions users add to them.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// Which metrics are kept and uploaded (`MetricsLevel`, default `detailed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum MetricsLevel {
    /// No metrics leave the process: no CloudWatch client is made.
    None,
    /// The summary metrics (records put, errors, expiry, buffering time).
    Summary,
    /// Every metric.
    #[default]
    Detailed,
}

/// The finest dimension level uploaded (`MetricsGranularity`, default `shard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum MetricsGranularity {
    /// Only the producer-wide datums.
    Global,
    /// Producer-wide and per `StreamName`.
    Stream,
    /// Producer-wide, per `StreamName` and per `StreamName`+`ShardId`.
    #[default]
    Shard,
}

impl MetricsLevel {
    /// The KPL's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricsLevel::None => "none",
            MetricsLevel::Summary => "summary",
            MetricsLevel::Detailed => "detailed",
        }
    }
}

impl MetricsGranularity {
    /// The KPL's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricsGranularity::Global => "global",
            MetricsGranularity::Stream => "stream",
            MetricsGranularity::Shard => "shard",
        }
    }
}

impl fmt::Display for MetricsLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for MetricsGranularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn invalid(name: &str, value: &str, allowed: &str) -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        format!("{name} = {value:?} is not valid: {allowed}"),
    )
}

impl FromStr for MetricsLevel {
    type Err = Error;

    /// ```
    /// use kpl_core::MetricsLevel;
    /// assert_eq!("Summary".parse::<MetricsLevel>().unwrap(), MetricsLevel::Summary);
    /// assert!("verbose".parse::<MetricsLevel>().is_err());
    /// ```
    fn from_str(value: &str) -> Result<Self, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(MetricsLevel::None),
            "summary" => Ok(MetricsLevel::Summary),
            "detailed" => Ok(MetricsLevel::Detailed),
            _ => Err(invalid(
                "MetricsLevel",
                value,
                "expected none, summary or detailed",
            )),
        }
    }
}

impl FromStr for MetricsGranularity {
    type Err = Error;

    /// ```
    /// use kpl_core::MetricsGranularity;
    /// assert_eq!("stream".parse::<MetricsGranularity>().unwrap(), MetricsGranularity::Stream);
    /// ```
    fn from_str(value: &str) -> Result<Self, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "global" => Ok(MetricsGranularity::Global),
            "stream" => Ok(MetricsGranularity::Stream),
            "shard" => Ok(MetricsGranularity::Shard),
            _ => Err(invalid(
                "MetricsGranularity",
                value,
                "expected global, stream or shard",
            )),
        }
    }
}

/// A dimension added to every metric (the KPL's
/// `addAdditionalMetricsDimension(key, value, granularity)`): it follows
/// `MetricName` (global), `StreamName` (stream) or `ShardId` (shard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsDimension {
    /// Dimension name, e.g. `Host`.
    pub name: String,
    /// Dimension value, e.g. `web-1`.
    pub value: String,
    /// The level it is inserted after.
    pub granularity: MetricsGranularity,
}

/// CloudWatch's limits on a dimension's name and value.
const MAX_DIMENSION_NAME: usize = 255;
const MAX_DIMENSION_VALUE: usize = 1024;

impl MetricsDimension {
    /// Checks the name and value against CloudWatch's limits.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let text = format!("{}={}@{}", self.name, self.value, self.granularity);
        let reserved = ["MetricName", "StreamName", "ShardId", "ErrorCode"];
        if self.name.trim().is_empty() || self.name.len() > MAX_DIMENSION_NAME {
            return Err(invalid(
                "AdditionalMetricsDimensions",
                &text,
                "a dimension name has 1 to 255 characters",
            ));
        }
        if self.value.trim().is_empty() || self.value.len() > MAX_DIMENSION_VALUE {
            return Err(invalid(
                "AdditionalMetricsDimensions",
                &text,
                "a dimension value has 1 to 1024 characters",
            ));
        }
        if reserved.contains(&self.name.as_str()) {
            return Err(invalid(
                "AdditionalMetricsDimensions",
                &text,
                "MetricName, StreamName, ShardId and ErrorCode are the producer's own dimensions",
            ));
        }
        Ok(())
    }

    /// Parses kpl-rs's `AdditionalMetricsDimensions` text:
    /// `Name=Value[@granularity]` items separated by commas (granularity
    /// `global` when left out).
    ///
    /// ```
    /// use kpl_core::{MetricsDimension, MetricsGranularity};
    /// let dims = MetricsDimension::parse_list("Host=web-1, Role=api@stream").unwrap();
    /// assert_eq!(dims[1].granularity, MetricsGranularity::Stream);
    /// ```
    pub fn parse_list(text: &str) -> Result<Vec<MetricsDimension>, Error> {
        let mut dims = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (pair, granularity) = match item.rsplit_once('@') {
                Some((pair, g)) => (pair, g.parse::<MetricsGranularity>()?),
                None => (item, MetricsGranularity::Global),
            };
            let Some((name, value)) = pair.split_once('=') else {
                return Err(invalid(
                    "AdditionalMetricsDimensions",
                    item,
                    "expected Name=Value or Name=Value@granularity, separated by commas",
                ));
            };
            let dim = MetricsDimension {
                name: name.trim().to_owned(),
                value: value.trim().to_owned(),
                granularity,
            };
            dim.check()?;
            dims.push(dim);
        }
        Ok(dims)
    }
}

/// CloudWatch's unit of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Count,
    Bytes,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// A metric the producer records, by the KPL's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub(crate) enum Name {
    UserRecordsReceived,
    UserRecordsPending,
    UserRecordsPut,
    UserRecordsDataPut,
    KinesisRecordsPut,
    KinesisRecordsDataPut,
    ErrorsByCode,
    AllErrors,
    RetriesPerRecord,
    UserRecordExpired,
    BufferingTime,
    RequestTime,
    UserRecordsPerKinesisRecord,
    KinesisRecordsPerPutRecordsRequest,
    UserRecordsPerPutRecordsRequest,
}

impl Name {
    pub const COUNT: usize = 15;

    pub const ALL: [Name; Name::COUNT] = [
        Name::UserRecordsReceived,
        Name::UserRecordsPending,
        Name::UserRecordsPut,
        Name::UserRecordsDataPut,
        Name::KinesisRecordsPut,
        Name::KinesisRecordsDataPut,
        Name::ErrorsByCode,
        Name::AllErrors,
        Name::RetriesPerRecord,
        Name::UserRecordExpired,
        Name::BufferingTime,
        Name::RequestTime,
        Name::UserRecordsPerKinesisRecord,
        Name::KinesisRecordsPerPutRecordsRequest,
        Name::UserRecordsPerPutRecordsRequest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Name::UserRecordsReceived => "UserRecordsReceived",
            Name::UserRecordsPending => "UserRecordsPending",
            Name::UserRecordsPut => "UserRecordsPut",
            Name::UserRecordsDataPut => "UserRecordsDataPut",
            Name::KinesisRecordsPut => "KinesisRecordsPut",
            Name::KinesisRecordsDataPut => "KinesisRecordsDataPut",
            Name::ErrorsByCode => "ErrorsByCode",
            Name::AllErrors => "AllErrors",
            Name::RetriesPerRecord => "RetriesPerRecord",
            Name::UserRecordExpired => "UserRecordExpired",
            Name::BufferingTime => "BufferingTime",
            Name::RequestTime => "RequestTime",
            Name::UserRecordsPerKinesisRecord => "UserRecordsPerKinesisRecord",
            Name::KinesisRecordsPerPutRecordsRequest => "KinesisRecordsPerPutRecordsRequest",
            Name::UserRecordsPerPutRecordsRequest => "UserRecordsPerPutRecordsRequest",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Name::UserRecordsDataPut | Name::KinesisRecordsDataPut => Unit::Bytes,
            Name::BufferingTime | Name::RequestTime => Unit::Milliseconds,
            _ => Unit::Count,
        }
    }

    /// The lowest `MetricsLevel` that keeps this metric (the KPL's table).
    pub fn level(self) -> MetricsLevel {
        match self {
            Name::UserRecordsPut
            | Name::KinesisRecordsPut
            | Name::ErrorsByCode
            | Name::AllErrors
            | Name::UserRecordExpired
            | Name::BufferingTime => MetricsLevel::Summary,
            _ => MetricsLevel::Detailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kpls_levels_and_units() {
        let summary: Vec<_> = Name::ALL
            .iter()
            .filter(|n| n.level() == MetricsLevel::Summary)
            .map(|n| n.as_str())
            .collect();
        assert_eq!(
            summary,
            [
                "UserRecordsPut",
                "KinesisRecordsPut",
                "ErrorsByCode",
                "AllErrors",
                "UserRecordExpired",
                "BufferingTime"
            ]
        );
        assert_eq!(Name::KinesisRecordsDataPut.unit(), Unit::Bytes);
        assert_eq!(Name::RequestTime.unit(), Unit::Milliseconds);
        assert_eq!(Name::RetriesPerRecord.unit(), Unit::Count);
        for (i, n) in Name::ALL.iter().enumerate() {
            assert_eq!(*n as usize, i);
        }
    }

    #[test]
    fn dimensions_parse_and_are_checked() {
        let dims = MetricsDimension::parse_list("Host=a, Az = b @ shard").unwrap();
        assert_eq!(dims.len(), 2);
        assert_eq!(dims[1].name, "Az");
        assert_eq!(dims[1].value, "b");
        assert_eq!(dims[1].granularity, MetricsGranularity::Shard);
        for bad in ["Host", "=x", "StreamName=x", "Host=x@planet"] {
            let err = MetricsDimension::parse_list(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{bad}");
        }
    }
}

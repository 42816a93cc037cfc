//! Size limits that come from the service rather than the configuration:
//! each stream's own record limit (`MaxRecordSizeInKiB`, 1..10 MiB, read
//! with DescribeStreamSummary when the stream's shard map is loaded) and
//! PutRecords' 10 MiB per request.

use std::time::Duration;

use crate::aggregation::AGGREGATE_PARTITION_KEY;
use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::record::{Attempt, UserRecord};

/// Bytes (data plus partition keys) one PutRecords may carry.
pub(crate) const MAX_REQUEST_SIZE: usize = 10 * 1024 * 1024;

/// The error code of a record refused for its stream's limit.
pub(crate) const TOO_LARGE: &str = "RecordTooLargeForStream";

/// The bytes to fill a PutRecords up to: `CollectionMaxSize`, but never
/// more than the service takes (its range has no upper bound in the KPL).
pub(crate) fn request_cap(config: &Config) -> usize {
    config.collection_max_size.min(MAX_REQUEST_SIZE)
}

/// The largest aggregate for a stream: `AggregationMaxSize`, and small
/// enough that the aggregate plus its partition key fit the stream's limit.
pub(crate) fn aggregate_cap(config: &Config, stream_limit: Option<usize>) -> usize {
    let cap = config.aggregation_max_size;
    match stream_limit {
        Some(limit) => cap.min(limit.saturating_sub(AGGREGATE_PARTITION_KEY.len())),
        None => cap,
    }
}

/// The stream limit to use after a DescribeStreamSummary: the answer, or
/// the one known before if the call failed (then the service's own check
/// still applies).
pub(crate) fn learned(
    stream: &str,
    answer: Result<usize, Error>,
    known: Option<usize>,
) -> Option<usize> {
    match answer {
        Ok(limit) => {
            if known != Some(limit) {
                tracing::debug!(stream, limit, "stream's maximum record size");
            }
            Some(limit)
        }
        Err(err) => {
            tracing::warn!(stream, %err, "DescribeStreamSummary failed: records are not checked against the stream's MaxRecordSizeInKiB until it succeeds");
            known
        }
    }
}

/// If `record` is larger than its stream takes: the error it fails with
/// and the one attempt that stands for the check (`waited` since the put).
/// Nothing is sent for it: the service would refuse it every time.
pub(crate) fn over_stream_limit(
    record: &UserRecord,
    stream: &str,
    limit: usize,
    waited: Duration,
) -> Option<(Error, Attempt)> {
    let size = record.size();
    if size <= limit {
        return None;
    }
    let message = format!(
        "record is {size} bytes ({} of data, {} of partition key); stream {stream} takes records \
         of at most {limit} bytes (its MaxRecordSizeInKiB is {}). Raise the stream's limit with \
         UpdateMaxRecordSize (up to 10240 KiB), e.g. `aws kinesis update-max-record-size \
         --stream-arn ARN --max-record-size-in-ki-b 10240`",
        record.data().len(),
        record.partition_key().len(),
        limit / 1024,
    );
    let attempt = Attempt {
        delay: waited,
        duration: Duration::ZERO,
        error_code: Some(TOO_LARGE.to_owned()),
        error_message: Some(message.clone()),
    };
    let err = Error::new(ErrorKind::InvalidRecord, message).with_code(TOO_LARGE);
    Some((err, attempt))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn records_over_the_stream_limit_fail_with_what_to_do() {
        let at_limit = UserRecord::new("k", vec![0u8; MIB - 1]);
        assert!(over_stream_limit(&at_limit, "s", MIB, Duration::ZERO).is_none());
        let over = UserRecord::new("k", vec![0u8; MIB]);
        let (err, attempt) = over_stream_limit(&over, "s", MIB, Duration::from_millis(3)).unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidRecord);
        assert!(!err.is_retryable());
        let text = err.to_string();
        for part in [
            "1048577 bytes",
            "at most 1048576 bytes",
            "MaxRecordSizeInKiB is 1024",
            "UpdateMaxRecordSize",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        assert_eq!(attempt.error_code.as_deref(), Some(TOO_LARGE));
        assert_eq!(attempt.delay, Duration::from_millis(3));
    }

    #[test]
    fn requests_and_aggregates_stay_within_the_service_limits() {
        let config = Config::builder()
            .collection_max_size(64 * MIB)
            .aggregation_max_size(10 * MIB)
            .build()
            .unwrap();
        assert_eq!(request_cap(&config), 10 * MIB);
        assert_eq!(aggregate_cap(&config, Some(MIB)), MIB - 1);
        assert_eq!(aggregate_cap(&config, None), 10 * MIB);
        assert_eq!(aggregate_cap(&Config::default(), Some(MIB)), 51_200);
    }

    #[test]
    fn a_failed_describe_keeps_what_was_known() {
        let err = || Error::new(ErrorKind::Transport, "down");
        assert_eq!(learned("s", Ok(5 * MIB), None), Some(5 * MIB));
        assert_eq!(learned("s", Err(err()), Some(MIB)), Some(MIB));
        assert_eq!(learned("s", Err(err()), None), None);
    }
}

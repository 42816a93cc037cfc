//! User records going in, results coming out.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use compact_str::CompactString;

use crate::error::{Error, ErrorKind};
use crate::hash::HashKey;

/// The most Unicode scalar values a partition key may have.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;

/// One record as the application hands it to the producer.
///
/// The payload is a [`Bytes`], so handing over a `Vec<u8>` or a `Bytes` you
/// already hold costs no copy.
///
/// ```
/// use kpl_core::UserRecord;
///
/// let record = UserRecord::new("sensor-17", b"{\"t\":21.5}".to_vec())
///     .with_stream("readings")
///     .with_explicit_hash_key("170141183460469231731687303715884105728");
/// assert_eq!(record.partition_key(), "sensor-17");
/// assert_eq!(record.stream(), Some("readings"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    stream: Option<Arc<str>>,
    /// The partition key, then the explicit hash key if there is one: one
    /// string, held inline when it is short (most keys are), so a buffered
    /// record costs no allocation for its keys.
    keys: CompactString,
    /// Bytes of `keys` that are the partition key.
    key_len: u32,
    has_explicit_hash_key: bool,
    data: Bytes,
}

impl UserRecord {
    /// A record with a partition key and a payload, for the producer's
    /// default stream.
    ///
    /// The key is copied: a key of up to 24 bytes is held inline, so a
    /// record built from a borrowed key allocates nothing for it.
    pub fn new(partition_key: impl AsRef<str>, data: impl Into<Bytes>) -> UserRecord {
        let keys = CompactString::new(partition_key);
        UserRecord {
            stream: None,
            // Keys over 4 GiB cannot be built; a long one is refused by
            // `validate` with its length.
            key_len: keys.len() as u32,
            keys,
            has_explicit_hash_key: false,
            data: data.into(),
        }
    }

    /// Sends the record to `stream` instead of the producer's default one.
    pub fn with_stream(mut self, stream: impl Into<Arc<str>>) -> UserRecord {
        self.stream = Some(stream.into());
        self
    }

    /// Routes the record by this decimal hash key instead of its partition
    /// key's MD5.
    pub fn with_explicit_hash_key(mut self, explicit_hash_key: impl AsRef<str>) -> UserRecord {
        self.keys.truncate(self.key_len as usize);
        self.keys.push_str(explicit_hash_key.as_ref());
        self.has_explicit_hash_key = true;
        self
    }

    /// The stream named for this record, if not the producer's default.
    pub fn stream(&self) -> Option<&str> {
        self.stream.as_deref()
    }

    pub(crate) fn stream_arc(&self) -> Option<&Arc<str>> {
        self.stream.as_ref()
    }

    /// The partition key.
    pub fn partition_key(&self) -> &str {
        &self.keys[..self.key_len as usize]
    }

    /// The explicit hash key, if one was set.
    pub fn explicit_hash_key(&self) -> Option<&str> {
        self.has_explicit_hash_key
            .then(|| &self.keys[self.key_len as usize..])
    }

    /// The payload.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Bytes the record counts against Kinesis' record and request limits:
    /// partition key plus data.
    pub fn size(&self) -> usize {
        self.key_len as usize + self.data.len()
    }

    /// Checks the record against Kinesis' rules and returns its hash key.
    ///
    /// The partition key must have 1 to 256 Unicode scalar values, the
    /// explicit hash key must be a decimal from 0 to 2^128-1, and partition
    /// key plus data must fit in `max_record_size` bytes (the service
    /// counts both; `MaxUserRecordSize`, 1 MiB by default).
    ///
    /// ```
    /// use kpl_core::UserRecord;
    ///
    /// let big = UserRecord::new("k", vec![0u8; 2 * 1024 * 1024]);
    /// let err = big.validate(1024 * 1024).unwrap_err();
    /// assert!(err.to_string().contains("2097153 bytes"), "{err}");
    /// ```
    pub fn validate(&self, max_record_size: usize) -> Result<HashKey, Error> {
        match self.check(max_record_size)? {
            Some(explicit) => Ok(explicit),
            None => Ok(HashKey::from_partition_key(self.partition_key())),
        }
    }

    /// [`validate`](Self::validate) without hashing the partition key:
    /// `Some` is the explicit hash key, `None` means the partition key's
    /// MD5 routes it (batch puts hash a chunk's keys together).
    pub(crate) fn check(&self, max_record_size: usize) -> Result<Option<HashKey>, Error> {
        let chars = self.partition_key().chars().count();
        if chars == 0 || chars > MAX_PARTITION_KEY_CHARS {
            return Err(Error::new(
                ErrorKind::InvalidRecord,
                format!(
                    "partition key has {chars} characters; it must have 1 to \
                     {MAX_PARTITION_KEY_CHARS} Unicode characters"
                ),
            ));
        }
        if self.size() > max_record_size {
            return Err(Error::new(
                ErrorKind::InvalidRecord,
                format!(
                    "record is {} bytes ({} of data, {} of partition key); \
                     the limit (MaxUserRecordSize) is {max_record_size} bytes; \
                     raise it (up to 10485760) for streams whose MaxRecordSizeInKiB allows more",
                    self.size(),
                    self.data.len(),
                    self.key_len
                ),
            ));
        }
        self.explicit_hash_key()
            .map(HashKey::parse_explicit)
            .transpose()
    }
}

impl AsRef<UserRecord> for UserRecord {
    fn as_ref(&self) -> &UserRecord {
        self
    }
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UserRecord");
        if let Some(stream) = &self.stream {
            d.field("stream", stream);
        }
        d.field("partition_key", &self.partition_key());
        if let Some(ehk) = self.explicit_hash_key() {
            d.field("explicit_hash_key", &ehk);
        }
        // Payloads can be megabytes; their length is what helps in a log.
        d.field("data_len", &self.data.len()).finish()
    }
}

/// Most attempts a record keeps (and its result reports): the first and
/// the latest. A record that retries through a long outage (no RecordTtl,
/// as with a spool) must not grow without bound.
pub(crate) const KEPT_ATTEMPTS: usize = 6;

/// One try at delivering a record, as the KPL reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Time from the previous attempt's end (or from the put, for the
    /// first attempt) to this attempt's start.
    pub delay: Duration,
    /// Time the request took.
    pub duration: Duration,
    /// The service's or the transport's error code; `None` on success.
    pub error_code: Option<String>,
    /// The error's message; `None` on success.
    pub error_message: Option<String>,
}

impl Attempt {
    /// Whether this attempt delivered the record.
    pub fn is_success(&self) -> bool {
        self.error_code.is_none()
    }
}

/// Where a delivered record is in the stream.
///
/// All user records of one aggregated Kinesis record share the shard and
/// sequence number; the sub-sequence number is the record's zero-based
/// position in the aggregate, as the KCL numbers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    pub(crate) shard_id: Arc<str>,
    pub(crate) sequence_number: Arc<str>,
    pub(crate) sub_sequence_number: u64,
    pub(crate) aggregated: bool,
    pub(crate) attempts: Attempts,
}

/// A record's attempts. Most records go through on their first try, so one
/// attempt is held inline: no allocation per delivered record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempts {
    One(Attempt),
    Many(Vec<Attempt>),
}

impl Attempts {
    /// The earlier attempts plus the last one.
    pub(crate) fn from(mut earlier: Vec<Attempt>, last: Attempt) -> Attempts {
        if earlier.len() >= KEPT_ATTEMPTS {
            earlier.remove(1);
        }
        if earlier.is_empty() {
            Attempts::One(last)
        } else {
            earlier.push(last);
            Attempts::Many(earlier)
        }
    }

    fn as_slice(&self) -> &[Attempt] {
        match self {
            Attempts::One(a) => std::slice::from_ref(a),
            Attempts::Many(v) => v,
        }
    }
}

impl PutResult {
    /// The shard the record was written to, e.g. `shardId-000000000003`.
    pub fn shard_id(&self) -> &str {
        &self.shard_id
    }

    /// The sequence number of the Kinesis record that holds this record.
    pub fn sequence_number(&self) -> &str {
        &self.sequence_number
    }

    /// The record's position inside its aggregate (0 when not aggregated).
    pub fn sub_sequence_number(&self) -> u64 {
        self.sub_sequence_number
    }

    /// Whether the record travelled inside an aggregate of two or more.
    pub fn is_aggregated(&self) -> bool {
        self.aggregated
    }

    /// The attempts made, the last one successful: all of them, or, for a
    /// record tried more than six times, the first and the five latest.
    pub fn attempts(&self) -> &[Attempt] {
        self.attempts.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_key_limits_count_characters_not_bytes() {
        let max = "é".repeat(MAX_PARTITION_KEY_CHARS);
        assert!(UserRecord::new(max.clone(), "x").validate(1 << 20).is_ok());
        let over = format!("{max}é");
        let err = UserRecord::new(over, "x").validate(1 << 20).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRecord);
        assert!(err.to_string().contains("257 characters"), "{err}");
        let err = UserRecord::new("", "x").validate(1 << 20).unwrap_err();
        assert!(err.to_string().contains("0 characters"), "{err}");
    }

    #[test]
    fn size_limit_counts_key_and_data() {
        let rec = UserRecord::new("ab", vec![0u8; 98]);
        assert!(rec.validate(100).is_ok());
        let err = rec.validate(99).unwrap_err();
        assert!(err.to_string().contains("record is 100 bytes"), "{err}");
        assert!(
            err.to_string().contains("limit (MaxUserRecordSize) is 99"),
            "{err}"
        );
    }

    #[test]
    fn validation_returns_the_routing_hash_key() {
        let rec = UserRecord::new("k", "x");
        assert_eq!(rec.validate(100).unwrap(), HashKey::from_partition_key("k"));
        let rec = rec.with_explicit_hash_key("42");
        assert_eq!(rec.validate(100).unwrap(), HashKey(42));
        let bad = UserRecord::new("k", "x").with_explicit_hash_key("4x2");
        assert_eq!(
            bad.validate(100).unwrap_err().kind(),
            ErrorKind::InvalidRecord
        );
    }
}

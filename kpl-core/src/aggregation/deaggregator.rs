//! Reading Kinesis records back into user records, by the KCL's rules.

use std::ops::RangeInclusive;

use bytes::Bytes;
use prost::Message;

use super::proto::AggregatedRecord;
use super::{DIGEST_LEN, MAGIC, OVERHEAD};
use crate::error::{Error, ErrorKind};
use crate::hash::HashKey;

/// A user record read out of a Kinesis record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeaggregatedRecord {
    /// The user record's partition key.
    pub partition_key: String,
    /// The user record's explicit hash key, if it had one.
    pub explicit_hash_key: Option<String>,
    /// The user record's payload (a slice of the Kinesis record's bytes).
    pub data: Bytes,
    /// Zero-based position in the aggregate; 0 for a plain record.
    pub sub_sequence_number: u64,
    /// Whether the record came out of an aggregate.
    pub aggregated: bool,
}

/// Deaggregates Kinesis records as the KCL does.
///
/// A record counts as aggregated only if it starts with the magic, is long
/// enough for magic and MD5, its MD5 matches and its protobuf parses;
/// otherwise it is passed on as one plain record. With a shard hash range
/// set, an aggregate holding any record outside it is rejected whole (the
/// KCL drops it; here it is an [`ErrorKind::OutsideShardRange`] error).
///
/// ```
/// use bytes::Bytes;
/// use kpl_core::aggregation::Deaggregator;
///
/// let plain = Deaggregator::new()
///     .deaggregate("key", None, Bytes::from_static(b"not aggregated"))
///     .unwrap();
/// assert_eq!(plain.len(), 1);
/// assert!(!plain[0].aggregated);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Deaggregator {
    shard_range: Option<RangeInclusive<u128>>,
    strict: bool,
}

impl Deaggregator {
    /// A deaggregator with the KCL's rules and no shard range check.
    pub fn new() -> Deaggregator {
        Deaggregator::default()
    }

    /// Checks every sub-record's hash key against the hash range of the
    /// shard the record was read from (both ends inclusive).
    pub fn shard_range(mut self, starting_hash_key: u128, ending_hash_key: u128) -> Deaggregator {
        self.shard_range = Some(starting_hash_key..=ending_hash_key);
        self
    }

    /// Treats a record that starts with the magic but fails the MD5 or
    /// protobuf check as corrupt (an error) instead of passing it on raw.
    pub fn strict(mut self, strict: bool) -> Deaggregator {
        self.strict = strict;
        self
    }

    /// The user records in one Kinesis record, given its partition key,
    /// explicit hash key and data.
    pub fn deaggregate(
        &self,
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        data: Bytes,
    ) -> Result<Vec<DeaggregatedRecord>, Error> {
        match self.parse(&data)? {
            Some(aggregate) => self.unpack(aggregate),
            None => Ok(vec![DeaggregatedRecord {
                partition_key: partition_key.to_owned(),
                explicit_hash_key: explicit_hash_key.map(str::to_owned),
                data,
                sub_sequence_number: 0,
                aggregated: false,
            }]),
        }
    }

    /// The protobuf, if the bytes are an aggregate by the KCL's rules.
    fn parse(&self, data: &Bytes) -> Result<Option<AggregatedRecord>, Error> {
        if data.len() < OVERHEAD || data[..MAGIC.len()] != MAGIC {
            return Ok(None);
        }
        let body = data.slice(MAGIC.len()..data.len() - DIGEST_LEN);
        let digest = super::md5::digest(&body);
        if digest.as_slice() != &data[data.len() - DIGEST_LEN..] {
            return self.not_aggregated("its MD5 trailer does not match its contents");
        }
        match AggregatedRecord::decode(body) {
            Ok(aggregate) => Ok(Some(aggregate)),
            Err(e) => self.not_aggregated(&format!("its protobuf does not parse ({e})")),
        }
    }

    fn not_aggregated(&self, why: &str) -> Result<Option<AggregatedRecord>, Error> {
        if self.strict {
            Err(Error::new(
                ErrorKind::Corrupt,
                format!("record starts with the aggregation magic but {why}"),
            ))
        } else {
            Ok(None)
        }
    }

    fn unpack(&self, aggregate: AggregatedRecord) -> Result<Vec<DeaggregatedRecord>, Error> {
        let AggregatedRecord {
            partition_key_table,
            explicit_hash_key_table,
            records,
        } = aggregate;
        let mut out = Vec::with_capacity(records.len());
        for (position, record) in records.into_iter().enumerate() {
            let corrupt = |what: String| {
                Error::new(
                    ErrorKind::Corrupt,
                    format!("aggregated record {position}: {what}"),
                )
            };
            let pk_index = record
                .partition_key_index
                .ok_or_else(|| corrupt("required partition_key_index is missing".into()))?;
            let partition_key = table_entry(&partition_key_table, pk_index).ok_or_else(|| {
                corrupt(format!(
                    "partition_key_index {pk_index} is outside the key table of {} entries",
                    partition_key_table.len()
                ))
            })?;
            let explicit_hash_key = match record.explicit_hash_key_index {
                None => None,
                Some(index) => {
                    Some(table_entry(&explicit_hash_key_table, index).ok_or_else(|| {
                        corrupt(format!(
                            "explicit_hash_key_index {index} is outside the explicit hash key \
                             table of {} entries",
                            explicit_hash_key_table.len()
                        ))
                    })?)
                }
            };
            let data = record
                .data
                .ok_or_else(|| corrupt("required data is missing".into()))?;
            if let Some(range) = &self.shard_range {
                let hash_key = match &explicit_hash_key {
                    Some(ehk) => {
                        HashKey::parse_explicit(ehk).map_err(|e| corrupt(e.message().to_owned()))?
                    }
                    None => HashKey::from_partition_key(&partition_key),
                };
                if !range.contains(&hash_key.0) {
                    return Err(Error::new(
                        ErrorKind::OutsideShardRange,
                        format!(
                            "aggregated record {position} (partition key {partition_key:?}) has \
                             hash key {hash_key}, outside the shard's range {}..={}; consumers \
                             drop the whole aggregate",
                            range.start(),
                            range.end()
                        ),
                    ));
                }
            }
            out.push(DeaggregatedRecord {
                partition_key,
                explicit_hash_key,
                data,
                sub_sequence_number: position as u64,
                aggregated: true,
            });
        }
        Ok(out)
    }
}

fn table_entry(table: &[String], index: u64) -> Option<String> {
    usize::try_from(index)
        .ok()
        .and_then(|i| table.get(i))
        .cloned()
}

/// Deaggregates one Kinesis record with the KCL's rules and no shard range
/// check; see [`Deaggregator`].
pub fn deaggregate(
    partition_key: &str,
    explicit_hash_key: Option<&str>,
    data: Bytes,
) -> Result<Vec<DeaggregatedRecord>, Error> {
    Deaggregator::new().deaggregate(partition_key, explicit_hash_key, data)
}

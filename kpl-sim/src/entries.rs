//! One record of a put, checked as the service checks it: the partition
//! key's length, the record's size against its stream's
//! `MaxRecordSizeInKiB`, the explicit hash key. The HTTP server (after
//! decoding base64) and the in-process [`crate::Model`] share it.

use bytes::Bytes;

use crate::config::{Limits, MAX_RECORD_KIB};
use crate::protocol::ApiError;
use crate::state::{PutEntry, Stream, hash_partition_key, parse_hash_key};

/// `records.N.member.m` for entry N of a PutRecords, `m` for a PutRecord.
pub(crate) fn member(i: Option<usize>, m: &str) -> String {
    match i {
        Some(i) => format!("records.{}.member.{m}", i + 1),
        None => m.to_string(),
    }
}

/// Checks a decoded entry against the service's rules (key length, the
/// stream's record size limit, explicit hash key) and makes it a `PutEntry`.
pub(crate) fn check_entry(
    i: Option<usize>,
    key: &str,
    ehk: Option<&str>,
    data: Bytes,
    stream: &Stream,
    limits: &Limits,
) -> Result<PutEntry, ApiError> {
    let chars = key.chars().count();
    if chars < 1 || chars > limits.max_partition_key_chars {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{key}' at '{}' failed to satisfy constraint: Member must have length {}",
            member(i, "partitionKey"),
            if chars < 1 {
                "greater than or equal to 1".to_string()
            } else {
                format!("less than or equal to {}", limits.max_partition_key_chars)
            }
        )));
    }
    let absolute = MAX_RECORD_KIB as usize * 1024;
    if data.len() > absolute {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length less than or equal to {absolute}",
            member(i, "data"),
        )));
    }
    let size = data.len() + key.len();
    if size > stream.max_record_bytes() {
        return Err(ApiError::validation(format!(
            "Record size (data + partition key) {size} bytes at '{}' exceeds the maximum record size of stream {} ({} KiB, MaxRecordSizeInKiB; UpdateMaxRecordSize raises it up to {MAX_RECORD_KIB})",
            member(i, "data"),
            stream.name,
            stream.max_record_kib(),
        )));
    }
    let hash = match ehk {
        Some(e) => parse_explicit_hash_key(i, e)?,
        None => hash_partition_key(key),
    };
    Ok(PutEntry {
        partition_key: key.into(),
        explicit_hash_key: ehk.map(Into::into),
        hash,
        data,
        fail: false,
    })
}

fn parse_explicit_hash_key(i: Option<usize>, e: &str) -> Result<u128, ApiError> {
    let valid_pattern = e == "0"
        || (!e.is_empty()
            && e.len() <= 39
            && !e.starts_with('0')
            && e.bytes().all(|b| b.is_ascii_digit()));
    if !valid_pattern {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{e}' at '{}' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{{0,38}})",
            member(i, "explicitHashKey")
        )));
    }
    parse_hash_key(e).ok_or_else(|| {
        ApiError::invalid_argument(format!(
            "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {e}"
        ))
    })
}

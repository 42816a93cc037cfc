//! PutRecords in the service's JSON protocol (`application/x-amz-json-1.1`):
//! the request body written in one pass into one buffer, the answer read
//! with borrowed strings.

use std::borrow::Cow;

use serde::Deserialize;

use crate::error::{Error, ErrorKind};
use crate::kinesis::{Entry, EntryOutcome};

/// The PutRecords request body. Members are in the order the service's
/// model lists them, as the SDK writes them.
pub(crate) fn put_records_body(stream: &str, entries: &[Entry]) -> Vec<u8> {
    let capacity = entries
        .iter()
        .map(|e| {
            e.data.len().div_ceil(3) * 4
                + e.partition_key.len()
                + e.explicit_hash_key.as_ref().map_or(0, |k| k.len() + 20)
                + 40
        })
        .sum::<usize>()
        + stream.len()
        + 32;
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(b"{\"Records\":[");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"Data\":\"");
        base64_simd::STANDARD.encode_append(&entry.data, &mut out);
        out.push(b'"');
        if let Some(key) = &entry.explicit_hash_key {
            out.extend_from_slice(b",\"ExplicitHashKey\":");
            json_string(&mut out, key);
        }
        out.extend_from_slice(b",\"PartitionKey\":");
        json_string(&mut out, &entry.partition_key);
        out.push(b'}');
    }
    out.extend_from_slice(if super::is_arn(stream) {
        b"],\"StreamARN\":"
    } else {
        b"],\"StreamName\":"
    });
    json_string(&mut out, stream);
    out.push(b'}');
    out
}

/// `s` as a JSON string: quotes, backslashes and control characters
/// escaped; everything else (UTF-8 included) as it is.
fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        plain = i + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

#[derive(Deserialize)]
struct Output<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<ResultEntry<'a>>,
}

#[derive(Deserialize)]
struct ResultEntry<'a> {
    #[serde(rename = "SequenceNumber", borrow, default)]
    sequence_number: Option<Cow<'a, str>>,
    #[serde(rename = "ShardId", borrow, default)]
    shard_id: Option<Cow<'a, str>>,
    #[serde(rename = "ErrorCode", borrow, default)]
    error_code: Option<Cow<'a, str>>,
    #[serde(rename = "ErrorMessage", borrow, default)]
    error_message: Option<Cow<'a, str>>,
}

/// The outcome of each entry of a successful (HTTP 200) PutRecords answer,
/// in order; `sent` entries were in the request.
pub(crate) fn put_records_outcomes(body: &[u8], sent: usize) -> Result<Vec<EntryOutcome>, Error> {
    let output: Output = serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorKind::Transport,
            format!("the response could not be read: PutRecords answered JSON that is not its output: {e}"),
        )
        .with_code("ResponseError")
    })?;
    if output.records.len() != sent {
        return Err(super::result_count_mismatch(output.records.len(), sent));
    }
    let mut shards = super::ShardNames::default();
    Ok(output
        .records
        .iter()
        .map(|r| {
            shards.outcome(
                r.error_code.as_deref(),
                r.error_message.as_deref(),
                r.shard_id.as_deref(),
                r.sequence_number.as_deref(),
            )
        })
        .collect())
}

#[derive(Deserialize, Default)]
struct ErrorBody<'a> {
    #[serde(rename = "__type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(alias = "Message", borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// The error an HTTP status other than 200 stands for, read as the SDK
/// reads the JSON protocol's errors: the code from `x-amzn-ErrorType`, else
/// the body's `__type`, without a namespace (`...#Code`) or a URI suffix
/// (`Code:http://...`).
pub(crate) fn error_of(status: u16, error_type: Option<&str>, body: &[u8]) -> Error {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = error_type
        .or(parsed.kind.as_deref())
        .map(sanitize_code)
        .filter(|c| !c.is_empty());
    let message = parsed.message.as_deref().unwrap_or("no message");
    super::service_error(code, status, message)
}

fn sanitize_code(raw: &str) -> &str {
    let raw = raw.split(':').next().unwrap_or(raw);
    raw.rsplit('#').next().unwrap_or(raw).trim()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn entry(key: &str, hash: Option<&str>, data: &'static [u8]) -> Entry {
        Entry {
            partition_key: key.into(),
            explicit_hash_key: hash.map(Into::into),
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn the_body_is_the_json_the_service_reads() {
        let entries = [
            entry("k\"1\\\n\u{1}é", None, b"\x00\x01hello"),
            entry("k2", Some("340282366920938463463374607431768211455"), b""),
        ];
        let body = put_records_body("my-stream", &entries);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "Records": [
                    {"Data": "AAFoZWxsbw==", "PartitionKey": "k\"1\\\n\u{1}é"},
                    {"Data": "", "ExplicitHashKey": "340282366920938463463374607431768211455",
                     "PartitionKey": "k2"},
                ],
                "StreamName": "my-stream",
            })
        );
        let arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/s";
        let json: serde_json::Value =
            serde_json::from_slice(&put_records_body(arn, &entries[1..])).unwrap();
        assert_eq!(json["StreamARN"], arn);
        assert!(json.get("StreamName").is_none());
    }

    #[test]
    fn every_control_character_is_escaped() {
        let key: String = (0u8..0x20).map(char::from).collect();
        let body = put_records_body("s", &[entry(&key, None, b"x")]);
        assert!(
            body.iter().all(|&b| b >= 0x20),
            "raw control byte in the body"
        );
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["Records"][0]["PartitionKey"], key.as_str());
    }

    #[test]
    fn outcomes_follow_the_entries_and_share_shard_names() {
        let body = br#"{"FailedRecordCount":1,"EncryptionType":"NONE","Records":[
            {"SequenceNumber":"495","ShardId":"shardId-000000000001"},
            {"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded"},
            {"SequenceNumber":"496","ShardId":"shardId-000000000001"},
            {}]}"#;
        let got = put_records_outcomes(body, 4).unwrap();
        let EntryOutcome::Delivered {
            shard_id: first,
            sequence_number,
        } = &got[0]
        else {
            panic!("{got:?}")
        };
        assert_eq!(
            (&**first, &**sequence_number),
            ("shardId-000000000001", "495")
        );
        let EntryOutcome::Delivered {
            shard_id: third, ..
        } = &got[2]
        else {
            panic!()
        };
        assert!(std::sync::Arc::ptr_eq(first, third));
        assert_eq!(
            got[1],
            EntryOutcome::Failed {
                code: "ProvisionedThroughputExceededException".into(),
                message: "Rate exceeded".into()
            }
        );
        assert!(matches!(&got[3], EntryOutcome::Failed { code, .. } if code == "MissingResult"));

        let short = put_records_outcomes(body, 5).unwrap_err();
        assert_eq!(short.code(), Some("ResultCountMismatch"));
        let garbled = put_records_outcomes(b"<html>", 1).unwrap_err();
        assert_eq!(
            (garbled.kind(), garbled.code()),
            (ErrorKind::Transport, Some("ResponseError"))
        );
    }

    #[test]
    fn errors_read_as_the_sdk_reads_them() {
        let body = br#"{"__type":"com.amazonaws.kinesis.v20131202#ResourceNotFoundException","message":"Stream s not found"}"#;
        let err = error_of(400, None, body);
        assert_eq!(err.kind(), ErrorKind::Service);
        assert_eq!(err.code(), Some("ResourceNotFoundException"));
        assert!(err.message().contains("Stream s not found"), "{err}");

        let header = error_of(
            400,
            Some("ProvisionedThroughputExceededException:http://internal.amazon.com/"),
            br#"{"Message":"Rate exceeded for stream s"}"#,
        );
        assert_eq!(
            header.code(),
            Some("ProvisionedThroughputExceededException")
        );
        assert!(header.message().contains("Rate exceeded"), "{header}");

        let bare = error_of(503, None, b"");
        assert_eq!(
            (bare.kind(), bare.code()),
            (ErrorKind::Transport, Some("HTTP503"))
        );
        let odd = error_of(404, None, b"not json");
        assert_eq!((odd.kind(), odd.code()), (ErrorKind::Unexpected, None));
    }
}

//! CloudWatch's PutMetricData, as the Rust SDK speaks it (Smithy RPC v2
//! CBOR: `POST /service/GraniteServiceVersion20100801/operation/PutMetricData`,
//! `smithy-protocol: rpc-v2-cbor`, a CBOR body, gzip allowed), with the
//! service's limits: 1 MB per request, 1,000 datums, 30 dimensions each.
//!
//! What it accepted is kept (the newest [`MAX_KEPT_REQUESTS`]) and shown by
//! `GET /_sim/cloudwatch`; `DELETE /_sim/cloudwatch` forgets it. The
//! `cloudwatch_500` fault answers a fraction of requests with a 500.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use minicbor::Decoder;
use minicbor::data::Type;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::Shared;

/// Path prefix of the CloudWatch operations.
pub const PATH_PREFIX: &str = "/service/GraniteServiceVersion20100801/operation/";
/// PutMetricData's payload limit (1 MB), applied to the decompressed body.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// PutMetricData's limit on datums per request.
pub const MAX_DATUMS: usize = 1000;
/// CloudWatch's limit on dimensions per datum.
pub const MAX_DIMENSIONS: usize = 30;
/// Requests kept for `GET /_sim/cloudwatch`.
pub const MAX_KEPT_REQUESTS: usize = 10_000;

/// One accepted PutMetricData.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    /// The request's `Namespace`.
    pub namespace: String,
    /// Body bytes as sent (compressed when `gzip`).
    pub wire_bytes: usize,
    /// Body bytes after decompression.
    pub payload_bytes: usize,
    /// Whether the body came gzip-compressed.
    pub gzip: bool,
    /// The datums, as JSON with the API's member names (`MetricName`,
    /// `Dimensions`, `StatisticValues`, `Unit`, `Timestamp` in epoch seconds).
    pub metric_data: Vec<Value>,
}

/// What the simulator's CloudWatch holds.
#[derive(Debug, Default)]
pub struct CloudWatch {
    received: Mutex<VecDeque<Received>>,
    rejected: AtomicU64,
    failed: AtomicU64,
}

impl CloudWatch {
    /// `GET /_sim/cloudwatch`: every request kept, and the counts of those
    /// refused for breaking a limit and those failed by fault injection.
    pub fn snapshot(&self) -> Value {
        serde_json::json!({
            "requests": *self.received.lock(),
            "rejected": self.rejected.load(Ordering::Relaxed),
            "failed": self.failed.load(Ordering::Relaxed),
        })
    }

    /// Forgets what was received.
    pub fn clear(&self) {
        self.received.lock().clear();
        self.rejected.store(0, Ordering::Relaxed);
        self.failed.store(0, Ordering::Relaxed);
    }
}

type Resp = Response<Full<Bytes>>;

fn cbor_response(status: u16, body: Vec<u8>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/cbor"),
    );
    h.insert(
        "smithy-protocol",
        hyper::header::HeaderValue::from_static("rpc-v2-cbor"),
    );
    r
}

fn error(status: u16, code: &str, message: &str) -> Resp {
    let mut e = minicbor::Encoder::new(Vec::new());
    let encoded = e
        .map(2)
        .and_then(|e| e.str("__type"))
        .and_then(|e| e.str(code))
        .and_then(|e| e.str("message"))
        .and_then(|e| e.str(message))
        .is_ok();
    let body = if encoded { e.into_writer() } else { Vec::new() };
    cbor_response(status, body)
}

impl CloudWatch {
    fn reject(&self, status: u16, code: &str, message: &str) -> Resp {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        error(status, code, message)
    }
}

/// Handles a request under [`PATH_PREFIX`].
pub async fn handle(shared: &Shared, req: Request<Incoming>) -> Resp {
    let cw = &shared.cloudwatch;
    let op = req.uri().path()[PATH_PREFIX.len()..].to_string();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let protocol = header("smithy-protocol");
    let content_type = header("content-type");
    let gzip = header("content-encoding").eq_ignore_ascii_case("gzip");
    let body = match Limited::new(req.into_body(), 4 * MAX_PAYLOAD_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return cw.reject(413, "RequestEntityTooLarge", "request body over 4 MiB"),
    };
    if op != "PutMetricData" {
        return error(
            400,
            "UnknownOperationException",
            &format!("{op} is not simulated"),
        );
    }
    if protocol != "rpc-v2-cbor" || !content_type.starts_with("application/cbor") {
        return cw.reject(
            400,
            "InvalidParameterValue",
            "expected smithy-protocol: rpc-v2-cbor and Content-Type: application/cbor",
        );
    }
    if shared.faults.cloudwatch_fault() {
        cw.failed.fetch_add(1, Ordering::Relaxed);
        return error(500, "InternalServiceError", "injected fault");
    }
    let payload = if gzip {
        let mut out = Vec::new();
        let limited = flate2::read::GzDecoder::new(&body[..]).take(MAX_PAYLOAD_BYTES as u64 + 1);
        if let Err(e) = { limited }.read_to_end(&mut out) {
            return cw.reject(400, "InvalidParameterValue", &format!("bad gzip body: {e}"));
        }
        out
    } else {
        body.to_vec()
    };
    if payload.len() > MAX_PAYLOAD_BYTES {
        return cw.reject(413, "RequestEntityTooLarge", "payload over 1 MB");
    }
    let input = match decode(&mut Decoder::new(&payload), 0) {
        Ok(v) => v,
        Err(e) => return cw.reject(400, "InvalidParameterValue", &format!("bad CBOR body: {e}")),
    };
    match check(&input) {
        Ok((namespace, metric_data)) => {
            let mut received = cw.received.lock();
            if received.len() == MAX_KEPT_REQUESTS {
                received.pop_front();
            }
            received.push_back(Received {
                namespace,
                wire_bytes: body.len(),
                payload_bytes: payload.len(),
                gzip,
                metric_data,
            });
            cbor_response(200, vec![0xa0])
        }
        Err((code, message)) => cw.reject(400, code, &message),
    }
}

/// The request's namespace and datums, or the error CloudWatch answers.
fn check(input: &Value) -> Result<(String, Vec<Value>), (&'static str, String)> {
    let missing = |what: &str| ("MissingParameter", format!("{what} is required"));
    let namespace = input
        .get("Namespace")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("Namespace"))?;
    if namespace.is_empty() || namespace.len() > 255 || namespace.starts_with("AWS/") {
        return Err((
            "InvalidParameterValue",
            format!("Namespace {namespace:?}: 1 to 255 characters, not AWS/"),
        ));
    }
    let data = input
        .get("MetricData")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("MetricData"))?;
    if data.is_empty() || data.len() > MAX_DATUMS {
        return Err((
            "InvalidParameterValue",
            format!(
                "MetricData has {} datums; 1 to {MAX_DATUMS} allowed",
                data.len()
            ),
        ));
    }
    for datum in data {
        datum
            .get("MetricName")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("MetricData.member.MetricName"))?;
        let dims = datum
            .get("Dimensions")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if dims > MAX_DIMENSIONS {
            return Err((
                "InvalidParameterValue",
                format!("{dims} dimensions; at most {MAX_DIMENSIONS}"),
            ));
        }
        if let Some(s) = datum.get("StatisticValues") {
            let f = |k: &str| s.get(k).and_then(Value::as_f64);
            match (f("SampleCount"), f("Sum"), f("Minimum"), f("Maximum")) {
                (Some(n), Some(_), Some(min), Some(max)) if n > 0.0 && min <= max => {}
                _ => {
                    return Err((
                        "InvalidParameterValue",
                        format!(
                            "StatisticValues {s}: needs SampleCount > 0, Sum, Minimum <= Maximum"
                        ),
                    ));
                }
            }
        }
    }
    Ok((namespace.to_string(), data.clone()))
}

/// One CBOR data item as JSON (tags dropped, byte strings as arrays).
fn decode(d: &mut Decoder<'_>, depth: usize) -> Result<Value, minicbor::decode::Error> {
    if depth > 32 {
        return Err(minicbor::decode::Error::message("nested too deeply"));
    }
    Ok(match d.datatype()? {
        Type::Bool => Value::Bool(d.bool()?),
        Type::Null | Type::Undefined => {
            d.skip()?;
            Value::Null
        }
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => Value::from(d.u64()?),
        Type::I8 | Type::I16 | Type::I32 | Type::I64 => Value::from(d.i64()?),
        Type::F16 => Value::from(d.f16()? as f64),
        Type::F32 => Value::from(d.f32()? as f64),
        Type::F64 => Value::from(d.f64()?),
        Type::String => Value::from(d.str()?),
        Type::StringIndef => {
            let mut s = String::new();
            for part in d.str_iter()? {
                s.push_str(part?);
            }
            Value::from(s)
        }
        Type::Tag => {
            d.tag()?;
            decode(d, depth + 1)?
        }
        Type::Array | Type::ArrayIndef => {
            let len = d.array()?;
            let mut items = Vec::new();
            while more(d, len, items.len())? {
                items.push(decode(d, depth + 1)?);
            }
            Value::Array(items)
        }
        Type::Map | Type::MapIndef => {
            let len = d.map()?;
            let mut map = Map::new();
            let mut n = 0;
            while more(d, len, n)? {
                let key = match decode(d, depth + 1)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                map.insert(key, decode(d, depth + 1)?);
                n += 1;
            }
            Value::Object(map)
        }
        other => {
            return Err(minicbor::decode::Error::message(format!(
                "unexpected CBOR {other}"
            )));
        }
    })
}

/// Whether a container of `len` items (`None`: indefinite, ended by a
/// break) has more after `seen`; consumes the break.
fn more(
    d: &mut Decoder<'_>,
    len: Option<u64>,
    seen: usize,
) -> Result<bool, minicbor::decode::Error> {
    match len {
        Some(n) => Ok((seen as u64) < n),
        None => {
            if d.datatype()? == Type::Break {
                d.skip()?;
                Ok(false)
            } else {
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_definite_and_indefinite_items() {
        let mut e = minicbor::Encoder::new(Vec::new());
        e.begin_map()
            .unwrap()
            .str("Namespace")
            .unwrap()
            .str("KinesisProducerLibrary")
            .unwrap()
            .str("MetricData")
            .unwrap()
            .array(1)
            .unwrap()
            .map(3)
            .unwrap()
            .str("MetricName")
            .unwrap()
            .str("UserRecordsPut")
            .unwrap()
            .str("Timestamp")
            .unwrap()
            .tag(minicbor::data::Tag::new(1))
            .unwrap()
            .f64(1.5e9)
            .unwrap()
            .str("StatisticValues")
            .unwrap()
            .map(4)
            .unwrap();
        for (k, v) in [
            ("SampleCount", 2.0),
            ("Sum", 1.0),
            ("Minimum", 0.0),
            ("Maximum", 1.0),
        ] {
            e.str(k).unwrap().f64(v).unwrap();
        }
        e.end().unwrap();
        let bytes = e.into_writer();
        let v = decode(&mut Decoder::new(&bytes), 0).unwrap();
        assert_eq!(v["MetricData"][0]["Timestamp"], 1.5e9);
        let (ns, data) = check(&v).unwrap();
        assert_eq!(ns, "KinesisProducerLibrary");
        assert_eq!(data[0]["StatisticValues"]["Sum"], 1.0);
        let mut bad = v.clone();
        bad["MetricData"][0]["StatisticValues"]["Minimum"] = 5.0.into();
        assert!(check(&bad).is_err());
    }
}

//! The admin endpoint under `/_sim/` on the same port(s) as the API:
//!
//! - `GET /_sim/faults` -> the current [`Faults`] as JSON (durations in ms)
//! - `POST /_sim/faults` with a [`Faults`] JSON (missing fields = no fault) -> sets them, answers the new value
//! - `GET /_sim/stats` -> [`crate::SimStats`] as JSON
//! - `GET /_sim/cloudwatch` -> the PutMetricData requests received (see
//!   [`crate::cloudwatch`]); `DELETE /_sim/cloudwatch` forgets them
//! - `GET /_sim/limits` -> whether throughput limits are on; `POST /_sim/limits` with
//!   `{"throughput_enabled": bool}` switches them.

use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use crate::api::Shared;
use crate::config::Faults;
use crate::server::json_response;

type Resp = Response<Full<bytes::Bytes>>;

fn bad(msg: String) -> Resp {
    json_response(
        400,
        serde_json::to_vec(&serde_json::json!({"__type": "ValidationException", "message": msg}))
            .unwrap_or_default(),
    )
}

/// Handle an admin request.
pub async fn handle(shared: &Shared, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body = match Limited::new(req.into_body(), 1024 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return bad(e.to_string()),
    };
    match (method, path.as_str()) {
        (Method::GET, "/_sim/faults") => json_response(200, serde_json::to_vec(&shared.faults.get()).unwrap_or_default()),
        (Method::POST, "/_sim/faults") | (Method::PUT, "/_sim/faults") => {
            match serde_json::from_slice::<Faults>(&body) {
                Ok(f) => {
                    shared.faults.set(f);
                    json_response(200, serde_json::to_vec(&shared.faults.get()).unwrap_or_default())
                }
                Err(e) => bad(format!("invalid faults JSON: {e}")),
            }
        }
        (Method::GET, "/_sim/cloudwatch") => json_response(200, serde_json::to_vec(&shared.cloudwatch.snapshot()).unwrap_or_default()),
        (Method::DELETE, "/_sim/cloudwatch") => {
            shared.cloudwatch.clear();
            json_response(200, b"{}".to_vec())
        }
        (Method::GET, "/_sim/stats") => json_response(200, serde_json::to_vec(&shared.counters.snapshot()).unwrap_or_default()),
        (Method::GET, "/_sim/limits") => {
            let on = shared.limits().throughput_enabled;
            json_response(200, serde_json::to_vec(&serde_json::json!({"throughput_enabled": on})).unwrap_or_default())
        }
        (Method::POST, "/_sim/limits") => {
            #[derive(serde::Deserialize)]
            struct L {
                throughput_enabled: bool,
            }
            match serde_json::from_slice::<L>(&body) {
                Ok(l) => {
                    let mut cur = (*shared.limits()).clone();
                    cur.throughput_enabled = l.throughput_enabled;
                    *shared.limits.write() = Arc::new(cur);
                    json_response(200, body.to_vec())
                }
                Err(e) => bad(format!("invalid limits JSON: {e}")),
            }
        }
        (_, p) => json_response(
            404,
            serde_json::to_vec(&serde_json::json!({"__type": "NotFound", "message": format!("no admin route {p}")}))
                .unwrap_or_default(),
        ),
    }
}

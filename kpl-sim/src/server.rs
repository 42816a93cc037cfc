//! HTTP/1.1 and HTTPS serving: accept loops, request handling, faults.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admin;
use crate::api::Shared;
use crate::faults::RequestFault;
use crate::protocol::{ApiError, CONTENT_TYPE, TARGET_PREFIX};

/// The error a handler returns to make hyper close the connection without a response.
#[derive(Debug)]
pub struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

type Resp = Response<Full<Bytes>>;

/// A JSON response.
pub fn json_response(status: u16, body: Vec<u8>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(CONTENT_TYPE),
    );
    let id = format!("{:032x}", rand::random::<u128>());
    if let Ok(v) = hyper::header::HeaderValue::from_str(&id) {
        h.insert("x-amzn-RequestId", v);
    }
    r
}

fn error_response(shared: &Shared, e: &ApiError) -> Resp {
    shared.count_error(e.status);
    json_response(e.status, e.body())
}

/// Handle one request.
pub async fn handle(
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    req: Request<Incoming>,
) -> Result<Resp, DropConnection> {
    if req.uri().path().starts_with("/_sim/") {
        return Ok(admin::handle(&shared, req).await);
    }
    shared.counters.requests.fetch_add(1, Ordering::Relaxed);

    // Request-level faults first: they do not depend on the request's content.
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = shared.faults.request_fault();
    match fault {
        RequestFault::None | RequestFault::TimeoutAfterStore(_) => {}
        RequestFault::Drop => {
            shared
                .counters
                .connections_dropped
                .fetch_add(1, Ordering::Relaxed);
            return Err(DropConnection);
        }
        RequestFault::Timeout(hold) => {
            shared
                .counters
                .requests_timed_out
                .fetch_add(1, Ordering::Relaxed);
            let mut shutdown = shutdown;
            tokio::select! {
                _ = tokio::time::sleep(hold) => {}
                _ = shutdown.wait_for(|s| *s) => {}
            }
            return Err(DropConnection);
        }
        RequestFault::Internal500 => {
            shared.counters.requests_500.fetch_add(1, Ordering::Relaxed);
            return Ok(error_response(&shared, &ApiError::internal()));
        }
        RequestFault::Unavailable503 => {
            shared.counters.requests_503.fetch_add(1, Ordering::Relaxed);
            return Ok(error_response(&shared, &ApiError::unavailable()));
        }
    }

    if req.method() != hyper::Method::POST {
        return Ok(error_response(
            &shared,
            &ApiError::new(400, "UnknownOperationException", "Only POST is supported"),
        ));
    }
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let content_type_ok = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with(CONTENT_TYPE) || v.starts_with("application/x-amz-json-1.0")
        });
    let limit = shared.limits().effective_body_limit();
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return Ok(error_response(
                    &shared,
                    &ApiError::validation(format!(
                        "Request body exceeds the maximum size of {limit} bytes"
                    )),
                ));
            }
            return Err(DropConnection);
        }
    };
    if !content_type_ok {
        return Ok(error_response(
            &shared,
            &ApiError::new(
                400,
                "UnknownOperationException",
                format!("Unsupported Content-Type; use {CONTENT_TYPE}"),
            ),
        ));
    }
    let op = match target
        .as_deref()
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
    {
        Some(op) => op,
        None => {
            return Ok(error_response(
                &shared,
                &ApiError::new(
                    400,
                    "UnknownOperationException",
                    "Missing or unknown X-Amz-Target",
                ),
            ));
        }
    };
    let result = shared.dispatch(op, &body);
    if let RequestFault::TimeoutAfterStore(hold) = fault {
        shared
            .counters
            .requests_timed_out
            .fetch_add(1, Ordering::Relaxed);
        let mut shutdown = shutdown;
        tokio::select! {
            _ = tokio::time::sleep(hold) => {}
            _ = shutdown.wait_for(|s| *s) => {}
        }
        return Err(DropConnection);
    }
    Ok(match result {
        Ok(body) => json_response(200, body),
        Err(e) => {
            if e.kind == "InternalFailure" {
                shared.counters.requests_500.fetch_add(1, Ordering::Relaxed);
            }
            error_response(&shared, &e)
        }
    })
}

/// Serve one connection until it ends or shutdown is signalled.
pub async fn serve_connection<IO>(io: IO, shared: Arc<Shared>, shutdown: watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let sd = shutdown.clone();
    let svc = service_fn(move |req| handle(shared.clone(), sd.clone(), req));
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut shutdown = shutdown;
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = shutdown.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
}

/// Accept loop for plain HTTP or (with `tls`) HTTPS.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    let mut sd = shutdown.clone();
    loop {
        tokio::select! {
            _ = sd.wait_for(|s| *s) => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let shutdown = shutdown.clone();
                match &tls {
                    None => { conns.spawn(serve_connection(stream, shared, shutdown)); }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        conns.spawn(async move {
                            let handshake = tokio::time::timeout(
                                std::time::Duration::from_secs(10),
                                acceptor.accept(stream),
                            );
                            if let Ok(Ok(tls_stream)) = handshake.await {
                                serve_connection(tls_stream, shared, shutdown).await;
                            }
                        });
                    }
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(6), drain)
        .await
        .is_err()
    {
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, and the TLS acceptor using it.
pub fn make_tls() -> std::io::Result<(tokio_rustls::TlsAcceptor, String)> {
    let err = |e: String| std::io::Error::other(e);
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(|e| err(e.to_string()))?;
    let pem = ck.cert.pem();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| err(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .map_err(|e| err(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), pem))
}

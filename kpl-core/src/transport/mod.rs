//! Talking to Kinesis: the AWS SDK client, configured for the producer,
//! and beside it the producer's own PutRecords path ([`direct`]), which
//! sends the requests the pipeline makes many times a second without the
//! SDK's fixed cost per request.
//!
//! The SDK's own retries are off (the producer's retrier owns them, per
//! shard and per error), its timeouts come from `ConnectTimeout` and
//! `RequestTimeout`, and TLS is rustls with the ring provider.

pub(crate) mod direct;
mod wire;

use std::sync::Arc;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::kinesis::{
    BoxFuture, DEFAULT_MAX_RECORD_SIZE, Entry, EntryOutcome, Kinesis, ShardInfo, StreamSummary,
};

/// Whether a stream is named by its ARN (`arn:aws:kinesis:...:stream/NAME`)
/// rather than its name: such requests carry `StreamARN`.
pub(crate) fn is_arn(stream: &str) -> bool {
    stream.starts_with("arn:")
}

/// The Kinesis client the producer sends through.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    client: Client,
    /// PutRecords without the SDK; `None` for a client the application
    /// built, whose settings (interceptors, say) only the SDK applies.
    direct: Option<Arc<direct::Direct>>,
    /// Asks the proxy why, when it refused a tunnel.
    probe: Option<crate::proxy::Probe>,
}

impl Transport {
    /// Builds the SDK client from the configuration (see [`crate::client`]).
    pub async fn connect(config: &Config) -> Result<Transport, Error> {
        let (client, direct) = crate::client::kinesis_clients(config).await?;
        Ok(Transport {
            client,
            direct: Some(Arc::new(direct)),
            probe: crate::proxy::Probe::new(config),
        })
    }

    /// Uses a client the application built itself.
    pub fn from_client(client: Client) -> Transport {
        Transport {
            client,
            direct: None,
            probe: None,
        }
    }

    /// Every shard of a stream, open and closed (closed ones tell where an
    /// aggregate sent before a reshard landed).
    pub async fn list_shards(&self, stream: &str) -> Result<Vec<ShardInfo>, Error> {
        let mut shards = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let request = match &next_token {
                Some(token) => self.client.list_shards().next_token(token),
                None if is_arn(stream) => self.client.list_shards().stream_arn(stream),
                None => self.client.list_shards().stream_name(stream),
            };
            let page = match request.send().await {
                Ok(page) => page,
                Err(e) => return Err(self.explain(classify(e)).await),
            };
            for shard in page.shards() {
                let open = shard
                    .sequence_number_range()
                    .is_none_or(|r| r.ending_sequence_number().is_none());
                let Some(range) = shard.hash_key_range() else {
                    continue;
                };
                let parse = |s: &str| {
                    s.parse::<u128>().map_err(|_| {
                        Error::new(
                            ErrorKind::Unexpected,
                            format!(
                                "ListShards gave shard {} a hash key {s:?}",
                                shard.shard_id()
                            ),
                        )
                    })
                };
                shards.push(ShardInfo {
                    id: shard.shard_id().into(),
                    start: parse(range.starting_hash_key())?,
                    end: parse(range.ending_hash_key())?,
                    open,
                });
            }
            next_token = page.next_token().map(str::to_owned);
            if next_token.is_none() {
                break;
            }
        }
        Ok(shards)
    }

    /// Sends one PutRecords. The result has one outcome per entry, in
    /// order, or is the whole request's error.
    pub async fn put_records(
        &self,
        stream: &str,
        entries: Vec<Entry>,
    ) -> Result<Vec<EntryOutcome>, Error> {
        if let Some(direct) = &self.direct {
            return match direct.put_records(stream, &entries).await {
                Ok(outcomes) => Ok(outcomes),
                Err(e) => Err(self.explain(e).await),
            };
        }
        let sent = entries.len();
        let mut request = self.client.put_records();
        request = if is_arn(stream) {
            request.stream_arn(stream)
        } else {
            request.stream_name(stream)
        };
        for entry in entries {
            let built = PutRecordsRequestEntry::builder()
                .partition_key(entry.partition_key)
                .set_explicit_hash_key(entry.explicit_hash_key)
                // Shares the pipeline's bytes (kept for a retry): no copy.
                .data(Blob::from_maybe_shared(entry.data))
                .build()
                .map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
            request = request.records(built);
        }
        let output = match request.send().await {
            Ok(output) => output,
            Err(e) => return Err(self.explain(classify(e)).await),
        };
        let results = output.records();
        if results.len() != sent {
            return Err(result_count_mismatch(results.len(), sent));
        }
        let mut shards = ShardNames::default();
        Ok(results
            .iter()
            .map(|r| {
                shards.outcome(
                    r.error_code(),
                    r.error_message(),
                    r.shard_id(),
                    r.sequence_number(),
                )
            })
            .collect())
    }

    /// DescribeStreamSummary, by name or ARN; the stream's record limit
    /// is its `MaxRecordSizeInKiB` (1 MiB where the service does not say).
    pub async fn describe_stream_summary(&self, stream: &str) -> Result<StreamSummary, Error> {
        let request = self.client.describe_stream_summary();
        let request = if is_arn(stream) {
            request.stream_arn(stream)
        } else {
            request.stream_name(stream)
        };
        let output = match request.send().await {
            Ok(output) => output,
            Err(e) => return Err(self.explain(classify(e)).await),
        };
        let summary = output.stream_description_summary().ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                format!("DescribeStreamSummary for {stream} answered no summary"),
            )
        })?;
        Ok(StreamSummary {
            stream_name: summary.stream_name().to_owned(),
            stream_arn: summary.stream_arn().to_owned(),
            open_shard_count: u32::try_from(summary.open_shard_count()).unwrap_or(0),
            max_record_size: summary
                .max_record_size_in_kib()
                .and_then(|kib| usize::try_from(kib).ok())
                .map_or(DEFAULT_MAX_RECORD_SIZE, |kib| kib * 1024),
        })
    }
}

impl Kinesis for Transport {
    fn list_shards<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<Vec<ShardInfo>, Error>> {
        Box::pin(Transport::list_shards(self, stream))
    }

    fn put_records<'a>(
        &'a self,
        stream: &'a str,
        entries: Vec<Entry>,
    ) -> BoxFuture<'a, Result<Vec<EntryOutcome>, Error>> {
        Box::pin(Transport::put_records(self, stream, entries))
    }

    fn describe_stream_summary<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<StreamSummary, Error>> {
        Box::pin(Transport::describe_stream_summary(self, stream))
    }
}

impl Transport {
    /// A proxy that refused a tunnel is asked why: a refusal of our
    /// credentials is final (retrying cannot pass it); anything else stays
    /// a transport failure, now with the proxy's status in its message.
    async fn explain(&self, err: Error) -> Error {
        let refused =
            err.code() == Some("ConnectionError") && err.message().contains("tunnel error");
        let Some(probe) = self.probe.as_ref().filter(|_| refused) else {
            return err;
        };
        match probe.connect_status().await {
            // 407 as HTTP says; tinyproxy answers wrong credentials with 401.
            Some(401 | 407) => proxy_refused_credentials(),
            Some(403) => Error::new(
                ErrorKind::InvalidConfig,
                "the HTTP proxy forbids the tunnel (CONNECT, 403): it must allow CONNECT to the \
                 Kinesis endpoint's host and port",
            )
            .with_code("ProxyTunnelForbidden"),
            Some(status) => Error::new(
                ErrorKind::Transport,
                format!("the HTTP proxy refused the tunnel (CONNECT) with status {status}"),
            )
            .with_code("ProxyTunnelRefused"),
            None => err,
        }
    }
}

fn proxy_refused_credentials() -> Error {
    Error::new(
        // Not retryable: the same credentials will be refused again.
        ErrorKind::InvalidConfig,
        "the HTTP proxy refused the credentials (Proxy Authentication Required): \
         check ProxyUserName and ProxyPassword (or the user:password in HTTPS_PROXY)",
    )
    .with_code("ProxyAuthenticationRequired")
}

/// Maps an SDK error to ours: the service's code where there is one, the
/// transport's failure otherwise.
pub(crate) fn classify<E>(err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    match &err {
        SdkError::TimeoutError(_) => request_timeout(),
        SdkError::DispatchFailure(failure) => dispatch_failure(failure.as_connector_error(), &err),
        SdkError::ServiceError(service) => {
            let inner = service.err();
            service_error(
                inner.code(),
                status.unwrap_or_default(),
                inner.message().unwrap_or("no message"),
            )
        }
        SdkError::ResponseError(_) => unreadable_response(status, &err),
        _ => Error::new(
            ErrorKind::Unexpected,
            format!(
                "the request could not be made: {}",
                DisplayErrorContext(&err)
            ),
        )
        .with_code("ConstructionFailure"),
    }
}

/// No answer within `RequestTimeout` (the request may have been stored).
pub(crate) fn request_timeout() -> Error {
    Error::new(
        ErrorKind::Transport,
        "the request did not complete within RequestTimeout",
    )
    .with_code("RequestTimeout")
}

/// The HTTP client could not send the request: `failure` says how;
/// `context` (the SDK's error, which names the operation, or the failure
/// itself) is shown.
pub(crate) fn dispatch_failure(
    failure: Option<&ConnectorError>,
    context: &(dyn std::error::Error + 'static),
) -> Error {
    if crate::proxy::refused_credentials(context) {
        return proxy_refused_credentials();
    }
    let what = match failure {
        Some(f) if f.is_timeout() => "timed out connecting",
        Some(f) if f.is_io() => "connection failed",
        _ => "the request could not be sent",
    };
    Error::new(
        ErrorKind::Transport,
        format!("{what}: {}", DisplayErrorContext(context)),
    )
    .with_code("ConnectionError")
}

/// An answer whose body could not be read: a server error stays one
/// (retried as such), anything else is a broken response.
pub(crate) fn unreadable_response(
    status: Option<u16>,
    context: &(dyn std::error::Error + 'static),
) -> Error {
    match status {
        Some(s) if s >= 500 => Error::new(
            ErrorKind::Transport,
            format!("HTTP {s} with an unreadable body"),
        )
        .with_code(format!("HTTP{s}")),
        _ => Error::new(
            ErrorKind::Transport,
            format!(
                "the response could not be read: {}",
                DisplayErrorContext(context)
            ),
        )
        .with_code("ResponseError"),
    }
}

/// The service's error answer: its code where it gave one; without one, a
/// server error (retried) or an answer the producer cannot use.
pub(crate) fn service_error(code: Option<&str>, status: u16, message: &str) -> Error {
    match code {
        Some(code) => Error::service(code, message),
        None if status >= 500 => {
            Error::new(ErrorKind::Transport, format!("HTTP {status}: {message}"))
                .with_code(format!("HTTP{status}"))
        }
        None => Error::new(ErrorKind::Unexpected, format!("HTTP {status}: {message}")),
    }
}

/// PutRecords answered `got` results for `sent` entries. Without a
/// one-to-one answer nothing can be matched; the caller retries every
/// entry (an at-least-once duplicate risk).
pub(crate) fn result_count_mismatch(got: usize, sent: usize) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("PutRecords answered {got} results for {sent} records"),
    )
    .with_code("ResultCountMismatch")
}

/// Reads a PutRecords answer's entries. A request's records land on a few
/// shards: each shard's name is allocated once and shared.
#[derive(Default)]
pub(crate) struct ShardNames(Vec<Arc<str>>);

impl ShardNames {
    /// One entry's outcome from the answer's fields.
    pub(crate) fn outcome(
        &mut self,
        error_code: Option<&str>,
        error_message: Option<&str>,
        shard_id: Option<&str>,
        sequence_number: Option<&str>,
    ) -> EntryOutcome {
        match (error_code, shard_id, sequence_number) {
            (None, Some(shard), Some(seq)) => EntryOutcome::Delivered {
                shard_id: self.name(shard),
                sequence_number: seq.into(),
            },
            (code, _, _) => EntryOutcome::Failed {
                code: code.unwrap_or("MissingResult").to_owned(),
                message: error_message
                    .unwrap_or("the service returned neither a sequence number nor an error")
                    .to_owned(),
            },
        }
    }

    fn name(&mut self, shard: &str) -> Arc<str> {
        if let Some(known) = self.0.iter().find(|s| &***s == shard) {
            return known.clone();
        }
        let new: Arc<str> = shard.into();
        self.0.push(new.clone());
        new
    }
}

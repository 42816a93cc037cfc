//! Talking to Kinesis: the AWS SDK client, configured for the producer.
//!
//! The SDK's own retries are off (the producer's retrier owns them, per
//! shard and per error), its timeouts come from `ConnectTimeout` and
//! `RequestTimeout`, and TLS is rustls with the ring provider.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::Region;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::kinesis::{BoxFuture, Entry, EntryOutcome, Kinesis, ShardInfo, StreamSummary};

/// Region used for signing when an endpoint is set and no region is found:
/// simulators accept any.
const FALLBACK_REGION: &str = "us-east-1";

/// The SDK settings every client of the producer shares (Kinesis and
/// CloudWatch): region, credentials (static, or aws-config's default
/// chain), timeouts, TLS trust (`CaCertPath`), SDK retries off.
pub(crate) async fn sdk_config(config: &Config) -> Result<aws_config::SdkConfig, Error> {
    let mut trust = TrustStore::default();
    if let Some(path) = &config.ca_cert_path {
        let pem = std::fs::read(path).map_err(|e| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("CaCertPath {}: cannot read it: {e}", path.display()),
            )
        })?;
        trust = trust.with_pem_certificate(pem);
    }
    let tls_context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("CaCertPath: cannot use the certificates: {e}"),
            )
        })?;
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(tls_context)
        .build_https();

    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(config.connect_timeout)
                .operation_attempt_timeout(config.request_timeout)
                .build(),
        );
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(creds) = &config.credentials {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.clone(),
            creds.session_token.clone(),
            None,
            "kpl-static",
        ));
    }
    Ok(loader.load().await)
}

/// The region to sign with when none is configured: an error without an
/// endpoint, else one any simulator accepts.
pub(crate) fn fallback_region(
    sdk_config: &aws_config::SdkConfig,
    endpoint: Option<&str>,
) -> Result<Option<Region>, Error> {
    if sdk_config.region().is_some() {
        return Ok(None);
    }
    if endpoint.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            "no AWS region: set Region, or AWS_REGION in the environment, or a profile's region",
        ));
    }
    Ok(Some(Region::new(FALLBACK_REGION)))
}

/// The Kinesis client the producer sends through.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    client: Client,
}

impl Transport {
    /// Builds the SDK client from the configuration: region, endpoint,
    /// credentials (static, or aws-config's default chain), timeouts, TLS.
    pub async fn connect(config: &Config) -> Result<Transport, Error> {
        let sdk_config = sdk_config(config).await?;
        let mut builder = aws_sdk_kinesis::config::Builder::from(&sdk_config);
        let endpoint = config.endpoint_url();
        if let Some(url) = &endpoint {
            builder = builder.endpoint_url(url.clone());
        }
        if let Some(region) = fallback_region(&sdk_config, endpoint.as_deref())? {
            builder = builder.region(region);
        }
        Ok(Transport {
            client: Client::from_conf(builder.build()),
        })
    }

    /// Uses a client the application built itself.
    pub fn from_client(client: Client) -> Transport {
        Transport { client }
    }

    /// Every shard of a stream, open and closed (closed ones tell where an
    /// aggregate sent before a reshard landed).
    pub async fn list_shards(&self, stream: &str) -> Result<Vec<ShardInfo>, Error> {
        let mut shards = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let request = match &next_token {
                Some(token) => self.client.list_shards().next_token(token),
                None => self.client.list_shards().stream_name(stream),
            };
            let page = request.send().await.map_err(classify)?;
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
        let sent = entries.len();
        let mut request = self.client.put_records().stream_name(stream);
        for entry in entries {
            let built = PutRecordsRequestEntry::builder()
                .partition_key(entry.partition_key)
                .set_explicit_hash_key(entry.explicit_hash_key)
                .data(Blob::new(entry.data))
                .build()
                .map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
            request = request.records(built);
        }
        let output = request.send().await.map_err(classify)?;
        let results = output.records();
        if results.len() != sent {
            // Without a one-to-one answer nothing can be matched; the
            // caller retries every entry (an at-least-once duplicate risk).
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!(
                    "PutRecords answered {} results for {sent} records",
                    results.len()
                ),
            )
            .with_code("ResultCountMismatch"));
        }
        Ok(results
            .iter()
            .map(
                |r| match (r.error_code(), r.shard_id(), r.sequence_number()) {
                    (None, Some(shard), Some(seq)) => EntryOutcome::Delivered {
                        shard_id: shard.into(),
                        sequence_number: seq.into(),
                    },
                    (code, _, _) => EntryOutcome::Failed {
                        code: code.unwrap_or("MissingResult").to_owned(),
                        message: r
                            .error_message()
                            .unwrap_or(
                                "the service returned neither a sequence number nor an error",
                            )
                            .to_owned(),
                    },
                },
            )
            .collect())
    }

    /// DescribeStreamSummary.
    pub async fn describe_stream_summary(&self, stream: &str) -> Result<StreamSummary, Error> {
        let output = self
            .client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .map_err(classify)?;
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

/// Maps an SDK error to ours: the service's code where there is one, the
/// transport's failure otherwise.
pub(crate) fn classify<E>(err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    match &err {
        SdkError::TimeoutError(_) => Error::new(
            ErrorKind::Transport,
            "the request did not complete within RequestTimeout",
        )
        .with_code("RequestTimeout"),
        SdkError::DispatchFailure(failure) => {
            let what = if failure.is_timeout() {
                "timed out connecting"
            } else if failure.is_io() {
                "connection failed"
            } else {
                "the request could not be sent"
            };
            Error::new(
                ErrorKind::Transport,
                format!(
                    "{what}: {}",
                    aws_sdk_kinesis::error::DisplayErrorContext(&err)
                ),
            )
            .with_code("ConnectionError")
        }
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let message = inner.message().unwrap_or("no message").to_owned();
            match (inner.code(), status) {
                (Some(code), _) => Error::service(code.to_owned(), message),
                (None, Some(s)) if s >= 500 => {
                    Error::new(ErrorKind::Transport, format!("HTTP {s}: {message}"))
                        .with_code(format!("HTTP{s}"))
                }
                (None, s) => Error::new(
                    ErrorKind::Unexpected,
                    format!("HTTP {}: {message}", s.unwrap_or_default()),
                ),
            }
        }
        SdkError::ResponseError(_) => match status {
            Some(s) if s >= 500 => Error::new(
                ErrorKind::Transport,
                format!("HTTP {s} with an unreadable body"),
            )
            .with_code(format!("HTTP{s}")),
            _ => Error::new(
                ErrorKind::Transport,
                format!(
                    "the response could not be read: {}",
                    aws_sdk_kinesis::error::DisplayErrorContext(&err)
                ),
            )
            .with_code("ResponseError"),
        },
        _ => Error::new(
            ErrorKind::Unexpected,
            format!(
                "the request could not be made: {}",
                aws_sdk_kinesis::error::DisplayErrorContext(&err)
            ),
        )
        .with_code("ConstructionFailure"),
    }
}

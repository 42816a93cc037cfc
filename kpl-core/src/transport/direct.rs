//! PutRecords without the SDK's orchestrator, the call a producer makes
//! every `RecordMaxBufferedTime` per stream.
//!
//! Through the SDK each request paid a fixed cost for its interceptors,
//! runtime plugins, config layers and endpoint rules: 0.2 to 0.4 ms of CPU
//! a request on the 2-core development machine, more than serializing and
//! signing the records at a gateway's rate, where a request leaves every
//! `RecordMaxBufferedTime` with 1,500 records in four aggregates
//! (benches/results/20261202-direct-putrecords.md).
//! This path keeps what the request needs and takes each piece from where
//! the SDK takes it: the same connections ([`crate::client::Connectors`]:
//! TLS, `CaCertPath`, proxy, `ConnectTimeout`), SigV4 from `aws-sigv4`,
//! credentials from the same provider chain (cached until five minutes
//! before they expire), the endpoint the SDK's rules resolve (once per
//! stream), the clock corrected by the service's `Date` as the SDK corrects
//! it, and the service's error codes read as the SDK reads them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_kinesis::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_runtime_api::client::http::{HttpConnector, SharedHttpConnector};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::date_time::{DateTime, Format};
use parking_lot::{Mutex, RwLock};

use super::wire;
use crate::error::{Error, ErrorKind};
use crate::kinesis::{Entry, EntryOutcome};

/// How long before they expire credentials are loaded again.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// `User-Agent` of the producer's requests.
const USER_AGENT: &str = concat!("kpl-rs/", env!("CARGO_PKG_VERSION"));

/// What a `Direct` is made from: the parts of the SDK's configuration a
/// PutRecords needs.
pub(crate) struct Settings {
    pub connector: SharedHttpConnector,
    pub credentials: Option<SharedCredentialsProvider>,
    pub region: String,
    pub use_fips: bool,
    pub use_dual_stack: bool,
    pub endpoint_url: Option<String>,
    pub time: SharedTimeSource,
    pub request_timeout: Duration,
}

/// Sends PutRecords requests.
pub(crate) struct Direct {
    connector: SharedHttpConnector,
    identities: Identities,
    region: String,
    use_fips: bool,
    use_dual_stack: bool,
    endpoint_url: Option<String>,
    /// Where each stream's requests go, resolved on its first request.
    targets: Mutex<HashMap<Box<str>, Arc<Target>>>,
    time: SharedTimeSource,
    /// The service's clock minus ours, in milliseconds, from the last
    /// answer's `Date`: signatures more than five minutes off are refused.
    skew_ms: AtomicI64,
    request_timeout: Duration,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .finish_non_exhaustive()
    }
}

/// A stream's endpoint: the request URI and its `Host`.
#[derive(Debug)]
struct Target {
    uri: String,
    host: String,
}

impl Direct {
    pub fn new(settings: Settings) -> Direct {
        Direct {
            connector: settings.connector,
            identities: Identities {
                provider: settings.credentials,
                current: RwLock::new(None),
                loading: tokio::sync::Mutex::new(()),
            },
            region: settings.region,
            use_fips: settings.use_fips,
            use_dual_stack: settings.use_dual_stack,
            endpoint_url: settings.endpoint_url,
            targets: Mutex::new(HashMap::new()),
            time: settings.time,
            skew_ms: AtomicI64::new(0),
            request_timeout: settings.request_timeout,
        }
    }

    /// Sends one PutRecords. The result has one outcome per entry, in
    /// order, or is the whole request's error.
    pub async fn put_records(
        &self,
        stream: &str,
        entries: &[Entry],
    ) -> Result<Vec<EntryOutcome>, Error> {
        tokio::time::timeout(self.request_timeout, self.send(stream, entries))
            .await
            .unwrap_or_else(|_| Err(super::request_timeout()))
    }

    async fn send(&self, stream: &str, entries: &[Entry]) -> Result<Vec<EntryOutcome>, Error> {
        let target = self.target(stream).await?;
        let identity = self.identities.get(self.time.now()).await?;
        let body = wire::put_records_body(stream, entries);
        let request = self.signed(&target, &identity, body)?;
        let mut response = self
            .connector
            .call(request)
            .await
            .map_err(|e| super::dispatch_failure(Some(&e), &e))?;
        let received = self.time.now();
        let headers = response.headers();
        if let Some(date) = headers.get("date") {
            self.note_service_time(date, received);
        }
        let error_type = headers.get("x-amzn-errortype").map(str::to_owned);
        let status = response.status().as_u16();
        let body = ByteStream::new(response.take_body())
            .collect()
            .await
            .map(|b| b.into_bytes());
        match (status, body) {
            (200, Ok(body)) => wire::put_records_outcomes(&body, entries.len()),
            (_, Ok(body)) => Err(wire::error_of(status, error_type.as_deref(), &body)),
            (_, Err(e)) => Err(super::unreadable_response(Some(status), &e)),
        }
    }

    /// The request, signed (SigV4, service `kinesis`) over the headers a
    /// proxy or the HTTP client will not change.
    fn signed(
        &self,
        target: &Target,
        identity: &Identity,
        body: Vec<u8>,
    ) -> Result<HttpRequest, Error> {
        const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
        const OPERATION: &str = "Kinesis_20131202.PutRecords";
        let unsignable = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::Unexpected,
                format!("cannot sign the PutRecords request: {e}"),
            )
            .with_code("ConstructionFailure")
        };
        let now = self.signing_time();
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(&self.region)
            .name("kinesis")
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| unsignable(&e))?
            .into();
        let headers = [
            ("content-type", CONTENT_TYPE),
            ("host", target.host.as_str()),
            ("x-amz-target", OPERATION),
        ];
        let signable = SignableRequest::new(
            "POST",
            target.uri.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| unsignable(&e))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| unsignable(&e))?
            .into_parts();

        let length = body.len().to_string();
        let mut request = HttpRequest::new(SdkBody::from(body));
        request.set_method("POST").map_err(|e| unsignable(&e))?;
        request
            .set_uri(target.uri.as_str())
            .map_err(|e| unsignable(&e))?;
        let h = request.headers_mut();
        for (name, value) in headers {
            h.insert(name, value.to_owned());
        }
        h.insert("content-length", length);
        h.insert("user-agent", USER_AGENT);
        let (added, _) = instructions.into_parts();
        for header in added {
            h.insert(header.name(), header.value().to_owned());
        }
        Ok(request)
    }

    fn signing_time(&self) -> SystemTime {
        let now = self.time.now();
        let skew = self.skew_ms.load(Relaxed);
        let by = Duration::from_millis(skew.unsigned_abs());
        if skew >= 0 { now + by } else { now - by }
    }

    fn note_service_time(&self, date: &str, received: SystemTime) {
        let Ok(service) = DateTime::from_str(date, Format::HttpDate) else {
            return;
        };
        let Ok(service) = SystemTime::try_from(service) else {
            return;
        };
        let skew = match service.duration_since(received) {
            Ok(ahead) => i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX),
            Err(behind) => -i64::try_from(behind.duration().as_millis()).unwrap_or(i64::MAX),
        };
        // `Date` has whole seconds: within a few, our own clock is better.
        let skew = if skew.abs() < 5_000 { 0 } else { skew };
        self.skew_ms.store(skew, Relaxed);
    }

    /// The stream's endpoint, from the SDK's endpoint rules (an ARN can
    /// name an account endpoint) or the configured endpoint.
    async fn target(&self, stream: &str) -> Result<Arc<Target>, Error> {
        if let Some(target) = self.targets.lock().get(stream) {
            return Ok(target.clone());
        }
        let mut params = Params::builder()
            .region(self.region.clone())
            .use_fips(self.use_fips)
            .use_dual_stack(self.use_dual_stack)
            .operation_type("data")
            .set_endpoint(self.endpoint_url.clone());
        if super::is_arn(stream) {
            params = params.stream_arn(stream);
        }
        let no_endpoint = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "no Kinesis endpoint for stream {stream} in region {}: {e}",
                    self.region
                ),
            )
        };
        let params = params.build().map_err(|e| no_endpoint(&e))?;
        let endpoint = DefaultResolver::new()
            .resolve_endpoint(&params)
            .await
            .map_err(|e| no_endpoint(&e))?;
        let target = Arc::new(Target::from_url(endpoint.url()).map_err(|e| no_endpoint(&e))?);
        self.targets.lock().insert(stream.into(), target.clone());
        Ok(target)
    }
}

impl Target {
    fn from_url(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| format!("{url:?} is not an http or https URL"))?;
        let (host, path) = match rest.find('/') {
            Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        let scheme_len = url.len() - rest.len();
        Ok(Target {
            uri: format!("{}{host}{path}/", &url[..scheme_len]),
            host: host.to_owned(),
        })
    }
}

/// Credentials as a signing identity, loaded once and again only when
/// they come within [`REFRESH_BEFORE_EXPIRY`] of expiring.
struct Identities {
    provider: Option<SharedCredentialsProvider>,
    current: RwLock<Option<Identity>>,
    /// One load at a time; the others wait for its result.
    loading: tokio::sync::Mutex<()>,
}

impl Identities {
    fn fresh(&self, now: SystemTime) -> Option<Identity> {
        let current = self.current.read();
        current
            .as_ref()
            .filter(|i| {
                i.expiration()
                    .is_none_or(|at| at > now + REFRESH_BEFORE_EXPIRY)
            })
            .cloned()
    }

    async fn get(&self, now: SystemTime) -> Result<Identity, Error> {
        if let Some(identity) = self.fresh(now) {
            return Ok(identity);
        }
        let _loading = self.loading.lock().await;
        if let Some(identity) = self.fresh(now) {
            return Ok(identity);
        }
        let provider = self
            .provider
            .as_ref()
            .ok_or_else(|| no_credentials("no credentials provider is configured".to_owned()))?;
        let credentials = provider.provide_credentials().await.map_err(|e| {
            no_credentials(aws_smithy_types::error::display::DisplayErrorContext(&e).to_string())
        })?;
        let identity = Identity::from(credentials);
        *self.current.write() = Some(identity.clone());
        Ok(identity)
    }
}

/// As the SDK reports a failed credentials load: the request could not
/// be sent (a passing failure, as of a metadata service, is retried).
fn no_credentials(why: String) -> Error {
    Error::new(
        ErrorKind::Transport,
        format!("the request could not be sent: cannot load AWS credentials: {why}"),
    )
    .with_code("ConnectionError")
}

#[cfg(test)]
mod tests;

//! The AWS SDK Kinesis client, as the producer makes it: region, endpoint,
//! credentials, timeouts, TLS trust (`CaCertPath`) and proxy
//! (`ProxyHost`..., or `HTTPS_PROXY`/`NO_PROXY`). Tools that talk to the
//! same stream (create it, read it back) build theirs here too, so they
//! reach it the same way.
//!
//! The SDK's own retries are off: the producer retries per shard and per
//! error. A tool that wants them turns them back on:
//!
//! ```no_run
//! # async fn demo() -> Result<(), kpl_core::Error> {
//! use aws_config::retry::RetryConfig;
//! let config = kpl_core::Config::builder().region("eu-west-1").build()?;
//! let client = kpl_core::client::kinesis_client(&config).await?;
//! let conf = client.config().to_builder().retry_config(RetryConfig::standard()).build();
//! let client = aws_sdk_kinesis::Client::from_conf(conf);
//! # let _ = client; Ok(()) }
//! ```

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::Region;
use aws_smithy_async::rt::sleep::SharedAsyncSleep;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, Connector};
use aws_smithy_runtime_api::client::http::{
    HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_types::service_config::ServiceConfigKey;

use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::proxy;
use crate::transport::direct::{Direct, Settings as DirectSettings};

/// Region used for signing when an endpoint is set and no region is found:
/// simulators accept any.
const FALLBACK_REGION: &str = "us-east-1";

/// The Kinesis client for `config`.
pub async fn kinesis_client(config: &Config) -> Result<Client, Error> {
    Ok(kinesis_clients(config).await?.0)
}

/// The SDK's Kinesis client and the producer's own PutRecords path
/// ([`crate::transport`]), from one loading of the settings: the same
/// region, endpoint, credentials, timeouts and connections.
pub(crate) async fn kinesis_clients(config: &Config) -> Result<(Client, Direct), Error> {
    let connectors = Connectors::new(config)?;
    let sdk_config = sdk_config_with(config, &connectors).await?;
    let mut builder = aws_sdk_kinesis::config::Builder::from(&sdk_config);
    let endpoint = config.endpoint_url();
    if let Some(url) = &endpoint {
        builder = builder.endpoint_url(url.clone());
    }
    let region = match fallback_region(&sdk_config, endpoint.as_deref())? {
        Some(region) => {
            builder = builder.region(region.clone());
            region
        }
        None => sdk_config
            .region()
            .cloned()
            .expect("fallback_region checked it"),
    };
    let settings = HttpConnectorSettings::builder()
        .connect_timeout(config.connect_timeout)
        .build();
    let direct = Direct::new(DirectSettings {
        connector: SharedHttpConnector::new(
            connectors.connector(Some(settings), sdk_config.sleep_impl()),
        ),
        credentials: sdk_config.credentials_provider(),
        region: region.to_string(),
        use_fips: sdk_config.use_fips().unwrap_or(false),
        use_dual_stack: sdk_config.use_dual_stack().unwrap_or(false),
        // Where the SDK client sends: ours, else AWS_ENDPOINT_URL_KINESIS,
        // a profile's endpoint_url, AWS_ENDPOINT_URL.
        endpoint_url: endpoint.or_else(|| configured_endpoint(&sdk_config)),
        time: sdk_config.time_source().unwrap_or_default(),
        request_timeout: config.request_timeout,
    });
    Ok((Client::from_conf(builder.build()), direct))
}

/// Builds the HTTP connections every client of the producer uses: TLS
/// (rustls with ring, `CaCertPath`), the proxy, TCP_NODELAY. The SDK's
/// clients get one per their settings; the producer's own PutRecords path
/// ([`crate::transport`]) gets one too.
#[derive(Clone)]
pub(crate) struct Connectors {
    provider: tls::Provider,
    tls_context: TlsContext,
    proxy: Option<aws_smithy_http_client::proxy::ProxyConfig>,
}

impl Connectors {
    pub(crate) fn new(config: &Config) -> Result<Connectors, Error> {
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
        Ok(Connectors {
            provider: tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring),
            tls_context,
            proxy: proxy::proxy_config(config)?,
        })
    }

    /// A connector (a pool of connections) with these settings.
    pub(crate) fn connector(
        &self,
        settings: Option<HttpConnectorSettings>,
        sleep: Option<SharedAsyncSleep>,
    ) -> Connector {
        let mut builder = Connector::builder();
        builder.set_connector_settings(settings);
        builder.set_sleep_impl(sleep);
        if let Some(proxy) = &self.proxy {
            builder = builder.proxy_config(proxy.clone());
        }
        builder
            .tls_provider(self.provider.clone())
            .tls_context(self.tls_context.clone())
            .build()
    }

    /// The same connections as the SDK's HTTP client.
    pub(crate) fn http_client(&self) -> SharedHttpClient {
        let this = self.clone();
        Builder::new().build_with_connector_fn(move |settings, components| {
            this.connector(settings.cloned(), components.and_then(|c| c.sleep_impl()))
        })
    }
}

/// The SDK settings every client of the producer shares (Kinesis and
/// CloudWatch): region, credentials (static, or aws-config's default
/// chain), timeouts, TLS trust, proxy, SDK retries off.
pub(crate) async fn sdk_config(config: &Config) -> Result<aws_config::SdkConfig, Error> {
    sdk_config_with(config, &Connectors::new(config)?).await
}

async fn sdk_config_with(
    config: &Config,
    connectors: &Connectors,
) -> Result<aws_config::SdkConfig, Error> {
    let http_client = connectors.http_client();

    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(RetryConfig::disabled())
        // RequestTimeout bounds every attempt already; the SDK's stalled
        // stream watch would add a clock read per body poll and a timer
        // per request, which a producer sending ten requests a second
        // pays on every one of them.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
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

/// The Kinesis endpoint aws-config found (`AWS_ENDPOINT_URL_KINESIS`, a
/// profile's `endpoint_url`, `AWS_ENDPOINT_URL`), chosen as the SDK's
/// Kinesis client chooses it.
fn configured_endpoint(sdk_config: &aws_config::SdkConfig) -> Option<String> {
    let general = sdk_config.endpoint_url().map(str::to_owned);
    if sdk_config.get_origin("endpoint_url").is_client_config() {
        return general;
    }
    let key = ServiceConfigKey::builder()
        .service_id("Kinesis")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk_config
        .service_config()
        .and_then(|c| c.load_config(key))
        .or(general)
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

#[cfg(test)]
mod tests {
    use aws_types::service_config::LoadServiceConfig;

    use super::*;

    /// An environment that names a Kinesis endpoint of its own.
    #[derive(Debug)]
    struct KinesisEndpointInEnv;

    impl LoadServiceConfig for KinesisEndpointInEnv {
        fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
            (key.service_id() == "Kinesis" && key.env() == "AWS_ENDPOINT_URL")
                .then(|| "http://127.0.0.1:4567".to_owned())
        }
    }

    #[test]
    fn the_endpoint_in_the_environment_is_found_as_the_sdk_finds_it() {
        let none = aws_config::SdkConfig::builder().build();
        assert_eq!(configured_endpoint(&none), None);
        let from_env = aws_config::SdkConfig::builder()
            .service_config(KinesisEndpointInEnv)
            .build();
        assert_eq!(
            configured_endpoint(&from_env).as_deref(),
            Some("http://127.0.0.1:4567")
        );
    }
}

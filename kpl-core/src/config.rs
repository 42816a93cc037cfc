//! Producer configuration, by the KPL's parameter names.
//!
//! Every setting has the reference KPL's name, default and range
//! (`KinesisProducerConfiguration`), so a KPL properties file works as it
//! is. Settings kpl-rs adds are marked as such.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::metrics::{MetricsDimension, MetricsGranularity, MetricsLevel};

/// A validated producer configuration. Build one with [`Config::builder`]
/// or read a KPL properties file with [`Config::from_properties`].
///
/// ```
/// use std::time::Duration;
/// use kpl_core::Config;
///
/// let config = Config::builder()
///     .stream("readings")
///     .region("eu-west-1")
///     .record_max_buffered_time(Duration::from_millis(50))
///     .set("AggregationMaxSize", "25600")
///     .unwrap()
///     .build()
///     .unwrap();
/// assert_eq!(config.aggregation_max_size, 25_600);
/// assert_eq!(config.collection_max_count, 500); // the KPL default
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Stream for records that name none (kpl-rs). `None`: every record
    /// must name its stream.
    pub stream: Option<String>,
    /// Pack many user records into one Kinesis record (`AggregationEnabled`, true).
    pub aggregation_enabled: bool,
    /// Most user records in one aggregate (`AggregationMaxCount`, 4294967295; 1..).
    pub aggregation_max_count: u64,
    /// Largest aggregate in bytes (`AggregationMaxSize`, 51200; 64..=10485760).
    pub aggregation_max_size: usize,
    /// Most Kinesis records in one PutRecords (`CollectionMaxCount`, 500; 1..=500).
    pub collection_max_count: usize,
    /// Largest PutRecords payload, keys plus data (`CollectionMaxSize`, 5242880; 52224..).
    pub collection_max_size: usize,
    /// TCP/TLS connect timeout (`ConnectTimeout`, 6000 ms; 100..=300000).
    pub connect_timeout: Duration,
    /// Time one request may take (`RequestTimeout`, 6000 ms; 100..=600000).
    pub request_timeout: Duration,
    /// Longest a record waits to be batched (`RecordMaxBufferedTime`, 100 ms).
    pub record_max_buffered_time: Duration,
    /// Time after which an undelivered record fails as expired (`RecordTtl`, 30000 ms; 100..).
    pub record_ttl: Duration,
    /// Per-shard send rate as a percentage of the shard limits (`RateLimit`, 150; 1..).
    pub rate_limit: u64,
    /// Fail throttled records at once instead of retrying (`FailIfThrottled`, false).
    pub fail_if_throttled: bool,
    /// Keep put order per partition key (and per explicit hash key) in the
    /// stream through throttling, retries, timeouts and reshards
    /// (`StrictOrdering`, false): a key has at most one Kinesis record in
    /// flight at a time, and a record sent again goes before newer ones.
    pub strict_ordering: bool,
    /// Most PutRecords requests in flight (`MaxConnections`, 24; 1..=256).
    pub max_connections: usize,
    /// AWS region (`Region`); `None`: from the environment or instance metadata.
    pub region: Option<String>,
    /// Kinesis endpoint host or URL (`KinesisEndpoint`); `None`: the region's.
    pub kinesis_endpoint: Option<String>,
    /// Port for a host-only `KinesisEndpoint` (`KinesisPort`, 443).
    pub kinesis_port: u16,
    /// Verify the endpoint's TLS certificate (`VerifyCertificate`, true).
    pub verify_certificate: bool,
    /// Extra CA certificates (PEM) to trust (`CaCertPath`).
    pub ca_cert_path: Option<PathBuf>,
    /// Largest user record, partition key plus data (`MaxUserRecordSize`,
    /// 1048576; 64..=10485760), checked at put. Each stream's own limit
    /// (its `MaxRecordSizeInKiB`, read with DescribeStreamSummary) applies
    /// as well: raise this to send records over 1 MiB to streams that take them.
    pub max_user_record_size: usize,
    /// Longest a waiting put waits for buffer room (`UserRecordTimeoutInMillis`,
    /// 0 = no limit).
    pub user_record_timeout: Duration,
    /// Most records buffered before puts wait (kpl-rs `MaxBufferedRecords`, 500000).
    pub max_buffered_records: usize,
    /// Most payload bytes buffered before puts wait (kpl-rs `MaxBufferedBytes`,
    /// 268435456 = 256 MiB).
    pub max_buffered_bytes: usize,
    /// How often shard maps are re-read, to follow streams that reshard on
    /// their own (kpl-rs `ShardMapRefreshInterval`, 60000 ms; 0 = never).
    pub shard_map_refresh_interval: Duration,
    /// Static credentials (kpl-rs `AwsAccessKeyId`, `AwsSecretAccessKey`,
    /// `AwsSessionToken`); `None`: aws-config's default chain.
    pub credentials: Option<StaticCredentials>,
    /// Which metrics are kept and uploaded (`MetricsLevel`, detailed;
    /// none | summary | detailed). `none`: no CloudWatch client.
    pub metrics_level: MetricsLevel,
    /// The finest dimension level uploaded (`MetricsGranularity`, shard;
    /// global | stream | shard).
    pub metrics_granularity: MetricsGranularity,
    /// CloudWatch namespace (`MetricsNamespace`, KinesisProducerLibrary).
    pub metrics_namespace: String,
    /// Time between uploads, the length of one metrics window
    /// (`MetricsUploadDelay`, 60000 ms; 1..=60000).
    pub metrics_upload_delay: Duration,
    /// CloudWatch endpoint host or URL (`CloudwatchEndpoint`); `None`: the
    /// region's, or, when `KinesisEndpoint` names a host outside AWS (a
    /// simulator such as kpl-sim, which serves both), that endpoint.
    pub cloudwatch_endpoint: Option<String>,
    /// Port for a host-only `CloudwatchEndpoint` (`CloudwatchPort`, 443).
    pub cloudwatch_port: u16,
    /// Dimensions added to every metric (the KPL's
    /// `addAdditionalMetricsDimension`; kpl-rs `AdditionalMetricsDimensions`).
    pub metrics_dimensions: Vec<MetricsDimension>,
    /// HTTP proxy host, or URL (`ProxyHost`); `None`: `HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` from the environment, as the
    /// AWS SDKs read them.
    pub proxy_host: Option<String>,
    /// Port of a host-only `ProxyHost` (`ProxyPort`, 443).
    pub proxy_port: u16,
    /// User for the proxy's Basic authentication (`ProxyUserName`).
    pub proxy_user_name: Option<String>,
    /// Password for the proxy (`ProxyPassword`); shown nowhere, not even in
    /// [`Config::entries`].
    pub proxy_password: Option<String>,
    /// Seed of the producer's random choices (backoff jitter), for runs
    /// that must repeat exactly, such as simulation tests; `None` (the
    /// default): seeded from the operating system.
    pub random_seed: Option<u64>,
}

/// An access key pair, for endpoints outside AWS (simulators) or tests.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token, for temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stream: None,
            aggregation_enabled: true,
            aggregation_max_count: 4_294_967_295,
            aggregation_max_size: 51_200,
            collection_max_count: 500,
            collection_max_size: 5_242_880,
            connect_timeout: Duration::from_millis(6000),
            request_timeout: Duration::from_millis(6000),
            record_max_buffered_time: Duration::from_millis(100),
            record_ttl: Duration::from_millis(30_000),
            rate_limit: 150,
            fail_if_throttled: false,
            strict_ordering: false,
            max_connections: 24,
            region: None,
            kinesis_endpoint: None,
            kinesis_port: 443,
            verify_certificate: true,
            ca_cert_path: None,
            max_user_record_size: 1_048_576,
            user_record_timeout: Duration::ZERO,
            max_buffered_records: 500_000,
            max_buffered_bytes: 256 * 1024 * 1024,
            shard_map_refresh_interval: Duration::from_secs(60),
            credentials: None,
            metrics_level: MetricsLevel::Detailed,
            metrics_granularity: MetricsGranularity::Shard,
            metrics_namespace: DEFAULT_METRICS_NAMESPACE.to_owned(),
            metrics_upload_delay: Duration::from_millis(60_000),
            cloudwatch_endpoint: None,
            cloudwatch_port: 443,
            metrics_dimensions: Vec::new(),
            proxy_host: None,
            proxy_port: 443,
            proxy_user_name: None,
            proxy_password: None,
            random_seed: None,
        }
    }
}

const DEFAULT_METRICS_NAMESPACE: &str = "KinesisProducerLibrary";

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Config");
        for (name, value) in self.entries() {
            d.field(name, &value);
        }
        d.finish()
    }
}

/// KPL settings that are accepted so existing properties files load, but
/// have no effect here (logs go through `tracing`).
const ACCEPTED_WITHOUT_EFFECT: &[&str] = &[
    "LogLevel",
    "MinConnections",
    "NativeExecutable",
    "TempDirectory",
    "EnableCoreDumps",
    "ThreadingModel",
    "ThreadPoolSize",
    "StsEndpoint",
    "StsPort",
    "CredentialsRefreshDelay",
];

impl Config {
    /// A builder starting from the KPL's defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default(),
        }
    }

    /// Reads a KPL properties file (`Name = value` lines, `#` or `!`
    /// comments). Unknown names are logged as warnings and skipped, as are
    /// KPL names that have no effect here.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("kpl-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let path = dir.join("default_config.properties");
    /// std::fs::write(&path, "# from the KPL sample\nRecordMaxBufferedTime = 15000\nRegion = us-west-1\n").unwrap();
    /// let config = kpl_core::Config::from_properties(&path).unwrap().build().unwrap();
    /// assert_eq!(config.record_max_buffered_time.as_millis(), 15_000);
    /// assert_eq!(config.region.as_deref(), Some("us-west-1"));
    /// ```
    pub fn from_properties(path: impl AsRef<Path>) -> Result<ConfigBuilder, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("cannot read properties file {}: {e}", path.display()),
            )
            .with_source(e)
        })?;
        Config::builder().properties(&text, &path.display().to_string())
    }

    /// The settings as KPL names and values, for logs and tools.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let ms = |d: Duration| d.as_millis().to_string();
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        vec![
            ("StreamName", opt(&self.stream)),
            ("AggregationEnabled", self.aggregation_enabled.to_string()),
            (
                "AggregationMaxCount",
                self.aggregation_max_count.to_string(),
            ),
            ("AggregationMaxSize", self.aggregation_max_size.to_string()),
            ("CollectionMaxCount", self.collection_max_count.to_string()),
            ("CollectionMaxSize", self.collection_max_size.to_string()),
            ("ConnectTimeout", ms(self.connect_timeout)),
            ("RequestTimeout", ms(self.request_timeout)),
            ("RecordMaxBufferedTime", ms(self.record_max_buffered_time)),
            ("RecordTtl", ms(self.record_ttl)),
            ("RateLimit", self.rate_limit.to_string()),
            ("FailIfThrottled", self.fail_if_throttled.to_string()),
            ("StrictOrdering", self.strict_ordering.to_string()),
            ("MaxConnections", self.max_connections.to_string()),
            ("Region", opt(&self.region)),
            ("KinesisEndpoint", opt(&self.kinesis_endpoint)),
            ("KinesisPort", self.kinesis_port.to_string()),
            ("VerifyCertificate", self.verify_certificate.to_string()),
            (
                "CaCertPath",
                self.ca_cert_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            ("MaxUserRecordSize", self.max_user_record_size.to_string()),
            ("UserRecordTimeoutInMillis", ms(self.user_record_timeout)),
            ("MaxBufferedRecords", self.max_buffered_records.to_string()),
            ("MaxBufferedBytes", self.max_buffered_bytes.to_string()),
            (
                "ShardMapRefreshInterval",
                ms(self.shard_map_refresh_interval),
            ),
            ("MetricsLevel", self.metrics_level.to_string()),
            ("MetricsGranularity", self.metrics_granularity.to_string()),
            ("MetricsNamespace", self.metrics_namespace.clone()),
            ("MetricsUploadDelay", ms(self.metrics_upload_delay)),
            ("CloudwatchEndpoint", opt(&self.cloudwatch_endpoint)),
            ("CloudwatchPort", self.cloudwatch_port.to_string()),
            (
                "AdditionalMetricsDimensions",
                self.metrics_dimensions
                    .iter()
                    .map(|d| format!("{}={}@{}", d.name, d.value, d.granularity))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("ProxyHost", opt(&self.proxy_host)),
            ("ProxyPort", self.proxy_port.to_string()),
            ("ProxyUserName", opt(&self.proxy_user_name)),
            (
                "ProxyPassword",
                self.proxy_password
                    .as_ref()
                    .map(|_| "** redacted **".to_owned())
                    .unwrap_or_default(),
            ),
        ]
    }

    /// The endpoint URL to send to, if one is configured: `KinesisEndpoint`
    /// as given when it has a scheme, else `https://host:KinesisPort`.
    pub fn endpoint_url(&self) -> Option<String> {
        url(&self.kinesis_endpoint, self.kinesis_port)
    }

    /// The CloudWatch endpoint URL, if one is configured: `CloudwatchEndpoint`
    /// as given when it has a scheme, else `https://host:CloudwatchPort`.
    /// Without one, a `KinesisEndpoint` outside AWS serves CloudWatch too:
    /// metrics of a producer pointed at a simulator stay with the simulator
    /// instead of going to AWS.
    pub fn cloudwatch_endpoint_url(&self) -> Option<String> {
        url(&self.cloudwatch_endpoint, self.cloudwatch_port).or_else(|| {
            self.endpoint_url().filter(|u| {
                !host_of(u).is_some_and(|h| {
                    h.ends_with(".amazonaws.com") || h.ends_with(".amazonaws.com.cn")
                })
            })
        })
    }
}

/// The host of an `scheme://host[:port][/...]` URL.
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(host.rsplit_once(':').map_or(host, |(h, _)| h))
}

fn url(endpoint: &Option<String>, port: u16) -> Option<String> {
    endpoint.as_ref().map(|endpoint| {
        if endpoint.contains("://") {
            endpoint.clone()
        } else {
            format!("https://{endpoint}:{port}")
        }
    })
}

/// Builds a [`Config`]; every setter has a KPL name usable with
/// [`ConfigBuilder::set`].
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    config: Config,
}

fn invalid(name: &str, value: &str, allowed: &str) -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        format!("{name} = {value:?} is not valid: {allowed}"),
    )
}

fn parse_int(name: &str, value: &str, min: u64, max: u64) -> Result<u64, Error> {
    let allowed = if max >= i64::MAX as u64 {
        format!("expected a whole number of at least {min}")
    } else {
        format!("expected a whole number from {min} to {max}")
    };
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(name, value, &allowed)),
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(name, value, "expected true or false")),
    }
}

fn parse_millis(name: &str, value: &str, min: u64, max: u64) -> Result<Duration, Error> {
    parse_int(name, value, min, max).map(Duration::from_millis)
}

fn non_empty(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

impl ConfigBuilder {
    /// Sets a parameter by its KPL name (e.g. `"RecordMaxBufferedTime"`)
    /// from text, as a properties file or a C caller gives it. The name may
    /// also be spelled in snake_case or camelCase
    /// (`record_max_buffered_time`, `recordMaxBufferedTime`), as the
    /// Python and Node bindings pass it.
    ///
    /// ```
    /// let err = kpl_core::Config::builder().set("CollectionMaxCount", "900").unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "InvalidConfig: CollectionMaxCount = \"900\" is not valid: expected a whole number from 1 to 500"
    /// );
    /// ```
    pub fn set(mut self, name: &str, value: &str) -> Result<ConfigBuilder, Error> {
        let name = canonical_name(name).unwrap_or(name);
        let c = &mut self.config;
        match name {
            "StreamName" => c.stream = non_empty(value),
            "AggregationEnabled" => c.aggregation_enabled = parse_bool(name, value)?,
            "AggregationMaxCount" => {
                c.aggregation_max_count = parse_int(name, value, 1, i64::MAX as u64)?
            }
            "AggregationMaxSize" => {
                c.aggregation_max_size = parse_int(name, value, 64, 10_485_760)? as usize
            }
            "CollectionMaxCount" => {
                c.collection_max_count = parse_int(name, value, 1, 500)? as usize
            }
            "CollectionMaxSize" => {
                c.collection_max_size = parse_int(name, value, 52_224, i64::MAX as u64)? as usize
            }
            "ConnectTimeout" => c.connect_timeout = parse_millis(name, value, 100, 300_000)?,
            "RequestTimeout" => c.request_timeout = parse_millis(name, value, 100, 600_000)?,
            "RecordMaxBufferedTime" => {
                c.record_max_buffered_time = parse_millis(name, value, 0, i64::MAX as u64)?
            }
            "RecordTtl" => c.record_ttl = parse_millis(name, value, 100, i64::MAX as u64)?,
            "RateLimit" => c.rate_limit = parse_int(name, value, 1, i64::MAX as u64)?,
            "FailIfThrottled" => c.fail_if_throttled = parse_bool(name, value)?,
            "StrictOrdering" => c.strict_ordering = parse_bool(name, value)?,
            "MaxConnections" => c.max_connections = parse_int(name, value, 1, 256)? as usize,
            "Region" => c.region = non_empty(value),
            "KinesisEndpoint" => c.kinesis_endpoint = non_empty(value),
            "KinesisPort" => c.kinesis_port = parse_int(name, value, 1, 65_535)? as u16,
            "VerifyCertificate" => c.verify_certificate = parse_bool(name, value)?,
            "CaCertPath" => c.ca_cert_path = non_empty(value).map(PathBuf::from),
            "MaxUserRecordSize" => {
                c.max_user_record_size = parse_int(name, value, 64, 10_485_760)? as usize
            }
            "UserRecordTimeoutInMillis" => {
                c.user_record_timeout = parse_millis(name, value, 0, i64::MAX as u64)?
            }
            "MaxBufferedRecords" => {
                c.max_buffered_records = parse_int(name, value, 1, u32::MAX as u64)? as usize
            }
            "MaxBufferedBytes" => {
                c.max_buffered_bytes = parse_int(name, value, 65_536, i64::MAX as u64)? as usize
            }
            "ShardMapRefreshInterval" => {
                c.shard_map_refresh_interval = parse_millis(name, value, 0, i64::MAX as u64)?
            }
            "AwsAccessKeyId" => credentials(c).access_key_id = value.trim().to_owned(),
            "AwsSecretAccessKey" => credentials(c).secret_access_key = value.trim().to_owned(),
            "AwsSessionToken" => credentials(c).session_token = non_empty(value),
            "MetricsLevel" => c.metrics_level = value.parse()?,
            "MetricsGranularity" => c.metrics_granularity = value.parse()?,
            "MetricsNamespace" => c.metrics_namespace = value.trim().to_owned(),
            "MetricsUploadDelay" => c.metrics_upload_delay = parse_millis(name, value, 1, 60_000)?,
            "CloudwatchEndpoint" => c.cloudwatch_endpoint = non_empty(value),
            "CloudwatchPort" => c.cloudwatch_port = parse_int(name, value, 1, 65_535)? as u16,
            "AdditionalMetricsDimensions" => {
                c.metrics_dimensions = MetricsDimension::parse_list(value)?
            }
            _ if ACCEPTED_WITHOUT_EFFECT.contains(&name) => {
                tracing::debug!(name, value, "KPL setting accepted without effect in kpl-rs");
            }
            "ProxyHost" => c.proxy_host = non_empty(value),
            "ProxyPort" => c.proxy_port = parse_int(name, value, 1, 65_535)? as u16,
            "ProxyUserName" => c.proxy_user_name = non_empty(value),
            // Not echoed back on error: a password has no wrong format.
            "ProxyPassword" => c.proxy_password = Some(value.trim().to_owned()),
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "unknown setting {name:?} (value {value:?}); settings use the KPL's names, e.g. RecordMaxBufferedTime"
                    ),
                ));
            }
        }
        Ok(self)
    }

    /// Applies the `Name = value` lines of a properties text; `origin`
    /// names it in messages. Unknown names are warnings; bad values are
    /// errors naming the line.
    pub fn properties(mut self, text: &str, origin: &str) -> Result<ConfigBuilder, Error> {
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((name, value)) = line.split_once(['=', ':']) else {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "{origin}:{}: expected `Name = value`, got {line:?}",
                        number + 1
                    ),
                ));
            };
            let name = name.trim();
            match self.clone().set(name, value) {
                Ok(next) => self = next,
                Err(e) if e.message().starts_with("unknown setting") => {
                    tracing::warn!("{origin}:{}: ignoring unknown setting {name:?}", number + 1);
                }
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!("{origin}:{}: {}", number + 1, e.message()),
                    ));
                }
            }
        }
        Ok(self)
    }

    /// Default stream for records that name none.
    pub fn stream(mut self, stream: impl Into<String>) -> Self {
        self.config.stream = Some(stream.into());
        self
    }

    /// AWS region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.config.region = Some(region.into());
        self
    }

    /// Endpoint URL (`http://127.0.0.1:4567`) or host name.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.config.kinesis_endpoint = Some(endpoint.into());
        self
    }

    /// Static credentials instead of the default chain.
    pub fn credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.config.credentials = Some(StaticCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        });
        self
    }

    /// Turns aggregation on or off.
    pub fn aggregation_enabled(mut self, enabled: bool) -> Self {
        self.config.aggregation_enabled = enabled;
        self
    }

    /// Largest aggregate in bytes.
    pub fn aggregation_max_size(mut self, bytes: usize) -> Self {
        self.config.aggregation_max_size = bytes;
        self
    }

    /// Most user records in one aggregate.
    pub fn aggregation_max_count(mut self, count: u64) -> Self {
        self.config.aggregation_max_count = count;
        self
    }

    /// Most Kinesis records in one PutRecords.
    pub fn collection_max_count(mut self, count: usize) -> Self {
        self.config.collection_max_count = count;
        self
    }

    /// Largest PutRecords payload in bytes.
    pub fn collection_max_size(mut self, bytes: usize) -> Self {
        self.config.collection_max_size = bytes;
        self
    }

    /// Longest a record waits to be batched.
    pub fn record_max_buffered_time(mut self, time: Duration) -> Self {
        self.config.record_max_buffered_time = time;
        self
    }

    /// Time after which an undelivered record fails as expired.
    pub fn record_ttl(mut self, ttl: Duration) -> Self {
        self.config.record_ttl = ttl;
        self
    }

    /// Per-shard send rate, percent of the shard limits.
    pub fn rate_limit(mut self, percent: u64) -> Self {
        self.config.rate_limit = percent;
        self
    }

    /// Fail throttled records at once instead of retrying.
    pub fn fail_if_throttled(mut self, fail: bool) -> Self {
        self.config.fail_if_throttled = fail;
        self
    }

    /// Keep put order per partition key (and explicit hash key) in the
    /// stream, whatever is throttled, retried, timed out or resharded
    /// (`StrictOrdering`). It costs throughput: a key has at most one
    /// Kinesis record in flight at a time.
    ///
    /// ```
    /// let config = kpl_core::Config::builder()
    ///     .strict_ordering(true)
    ///     .build()
    ///     .unwrap();
    /// assert!(config.strict_ordering);
    /// ```
    pub fn strict_ordering(mut self, strict: bool) -> Self {
        self.config.strict_ordering = strict;
        self
    }

    /// Most requests in flight.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.config.max_connections = connections;
        self
    }

    /// Time one request may take.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// Largest user record.
    pub fn max_user_record_size(mut self, bytes: usize) -> Self {
        self.config.max_user_record_size = bytes;
        self
    }

    /// Buffer bounds: puts wait (or `try_put` fails) beyond them.
    pub fn max_buffered(mut self, records: usize, bytes: usize) -> Self {
        self.config.max_buffered_records = records;
        self.config.max_buffered_bytes = bytes;
        self
    }

    /// How long a waiting put waits for room (zero: no limit).
    pub fn user_record_timeout(mut self, timeout: Duration) -> Self {
        self.config.user_record_timeout = timeout;
        self
    }

    /// An HTTP proxy for every request, with Basic authentication if
    /// `user` is given (`ProxyHost`, `ProxyPort`, `ProxyUserName`,
    /// `ProxyPassword`). `host` may be a URL (`http://proxy:3128`).
    pub fn proxy(mut self, host: impl Into<String>, port: u16, user: Option<(&str, &str)>) -> Self {
        self.config.proxy_host = Some(host.into());
        self.config.proxy_port = port;
        self.config.proxy_user_name = user.map(|(u, _)| u.to_owned());
        self.config.proxy_password = user.map(|(_, p)| p.to_owned());
        self
    }

    /// How often shard maps are re-read (zero: only on misrouted records).
    pub fn shard_map_refresh_interval(mut self, interval: Duration) -> Self {
        self.config.shard_map_refresh_interval = interval;
        self
    }

    /// Which metrics are kept and uploaded (`MetricsLevel`).
    pub fn metrics_level(mut self, level: MetricsLevel) -> Self {
        self.config.metrics_level = level;
        self
    }

    /// The finest dimension level uploaded (`MetricsGranularity`).
    pub fn metrics_granularity(mut self, granularity: MetricsGranularity) -> Self {
        self.config.metrics_granularity = granularity;
        self
    }

    /// CloudWatch namespace (`MetricsNamespace`).
    pub fn metrics_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.metrics_namespace = namespace.into();
        self
    }

    /// Time between uploads (`MetricsUploadDelay`, 1 ms to 60 s).
    pub fn metrics_upload_delay(mut self, delay: Duration) -> Self {
        self.config.metrics_upload_delay = delay;
        self
    }

    /// CloudWatch endpoint URL or host name (`CloudwatchEndpoint`).
    pub fn cloudwatch_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.config.cloudwatch_endpoint = Some(endpoint.into());
        self
    }

    /// Adds a dimension to every metric, after `MetricName` (global),
    /// `StreamName` (stream) or `ShardId` (shard), as the KPL's
    /// `addAdditionalMetricsDimension` does.
    ///
    /// ```
    /// use kpl_core::{Config, MetricsGranularity};
    /// let config = Config::builder()
    ///     .additional_metrics_dimension("Host", "web-1", MetricsGranularity::Global)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.metrics_dimensions[0].value, "web-1");
    /// ```
    pub fn additional_metrics_dimension(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        granularity: MetricsGranularity,
    ) -> Self {
        self.config.metrics_dimensions.push(MetricsDimension {
            name: name.into(),
            value: value.into(),
            granularity,
        });
        self
    }

    /// Seeds the producer's random choices (backoff jitter), so that a run
    /// against a deterministic endpoint repeats exactly.
    pub fn random_seed(mut self, seed: u64) -> Self {
        self.config.random_seed = Some(seed);
        self
    }

    /// Checks every value against its range and the combinations that
    /// cannot work, and returns the configuration.
    pub fn build(self) -> Result<Config, Error> {
        let c = self.config;
        // Typed setters bypass `set`, so re-check every range here once.
        let checks: [(&str, u64, u64, u64); 10] = [
            (
                "AggregationMaxCount",
                c.aggregation_max_count,
                1,
                i64::MAX as u64,
            ),
            (
                "AggregationMaxSize",
                c.aggregation_max_size as u64,
                64,
                10_485_760,
            ),
            ("CollectionMaxCount", c.collection_max_count as u64, 1, 500),
            (
                "CollectionMaxSize",
                c.collection_max_size as u64,
                52_224,
                i64::MAX as u64,
            ),
            (
                "ConnectTimeout",
                c.connect_timeout.as_millis() as u64,
                100,
                300_000,
            ),
            (
                "RequestTimeout",
                c.request_timeout.as_millis() as u64,
                100,
                600_000,
            ),
            (
                "RecordTtl",
                c.record_ttl.as_millis() as u64,
                100,
                i64::MAX as u64,
            ),
            ("RateLimit", c.rate_limit, 1, i64::MAX as u64),
            ("MaxConnections", c.max_connections as u64, 1, 256),
            (
                "MaxUserRecordSize",
                c.max_user_record_size as u64,
                64,
                10_485_760,
            ),
        ];
        for (name, value, min, max) in checks {
            parse_int(name, &value.to_string(), min, max)?;
        }
        if c.max_buffered_records == 0 || c.max_buffered_bytes < c.max_user_record_size {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "MaxBufferedRecords = {} and MaxBufferedBytes = {} must allow at least one \
                     record of MaxUserRecordSize = {} bytes",
                    c.max_buffered_records, c.max_buffered_bytes, c.max_user_record_size
                ),
            ));
        }
        if let Some(creds) = &c.credentials
            && (creds.access_key_id.is_empty() || creds.secret_access_key.is_empty())
        {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "AwsAccessKeyId and AwsSecretAccessKey must be set together",
            ));
        }
        check_metrics(&c)?;
        if c.proxy_password.is_some() && c.proxy_user_name.is_none() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "ProxyPassword is set without ProxyUserName: set both, or neither",
            ));
        }
        if c.proxy_user_name.is_some() && c.proxy_host.is_none() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "ProxyUserName is set without ProxyHost: set ProxyHost (or use HTTPS_PROXY with user:password@ in the URL)",
            ));
        }
        if !c.verify_certificate {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "VerifyCertificate = false is not supported: kpl-rs always verifies TLS. \
                 Set CaCertPath to the endpoint's CA certificate (PEM) instead",
            ));
        }
        Ok(c)
    }
}

fn check_metrics(c: &Config) -> Result<(), Error> {
    parse_int(
        "MetricsUploadDelay",
        &c.metrics_upload_delay.as_millis().to_string(),
        1,
        60_000,
    )?;
    let ns = &c.metrics_namespace;
    if ns.is_empty() || ns.chars().count() > 255 || ns.starts_with("AWS/") {
        return Err(invalid(
            "MetricsNamespace",
            ns,
            "expected 1 to 255 characters, not starting with AWS/",
        ));
    }
    // CloudWatch takes at most 30 dimensions per datum; the producer's own
    // take up to 3 (ErrorCode, StreamName, ShardId).
    if c.metrics_dimensions.len() > 27 {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "AdditionalMetricsDimensions has {} dimensions: at most 27 fit in CloudWatch's 30 per metric",
                c.metrics_dimensions.len()
            ),
        ));
    }
    c.metrics_dimensions
        .iter()
        .try_for_each(MetricsDimension::check)
}

/// Every name `set` knows, in the KPL's spelling.
const NAMES: &[&str] = &[
    "StreamName",
    "AggregationEnabled",
    "AggregationMaxCount",
    "AggregationMaxSize",
    "CollectionMaxCount",
    "CollectionMaxSize",
    "ConnectTimeout",
    "RequestTimeout",
    "RecordMaxBufferedTime",
    "RecordTtl",
    "RateLimit",
    "FailIfThrottled",
    "StrictOrdering",
    "MaxConnections",
    "Region",
    "KinesisEndpoint",
    "KinesisPort",
    "VerifyCertificate",
    "CaCertPath",
    "MaxUserRecordSize",
    "UserRecordTimeoutInMillis",
    "MaxBufferedRecords",
    "MaxBufferedBytes",
    "ShardMapRefreshInterval",
    "AwsAccessKeyId",
    "AwsSecretAccessKey",
    "AwsSessionToken",
    "MetricsLevel",
    "MetricsGranularity",
    "MetricsNamespace",
    "MetricsUploadDelay",
    "CloudwatchEndpoint",
    "CloudwatchPort",
    "AdditionalMetricsDimensions",
    "ProxyHost",
    "ProxyPort",
    "ProxyUserName",
    "ProxyPassword",
];

/// The KPL spelling of a setting name given in any case style.
fn canonical_name(name: &str) -> Option<&'static str> {
    let folded: String = name
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    NAMES
        .iter()
        .chain(ACCEPTED_WITHOUT_EFFECT)
        .find(|n| n.to_ascii_lowercase() == folded)
        .copied()
}

fn credentials(c: &mut Config) -> &mut StaticCredentials {
    c.credentials.get_or_insert_with(|| StaticCredentials {
        access_key_id: String::new(),
        secret_access_key: String::new(),
        session_token: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudwatch_follows_a_kinesis_endpoint_outside_aws_only() {
        let sim = Config::builder()
            .endpoint("http://127.0.0.1:4567")
            .build()
            .unwrap();
        assert_eq!(
            sim.cloudwatch_endpoint_url().as_deref(),
            Some("http://127.0.0.1:4567")
        );
        let aws = Config::builder()
            .endpoint("https://kinesis.eu-west-1.amazonaws.com")
            .build()
            .unwrap();
        assert_eq!(
            aws.cloudwatch_endpoint_url(),
            None,
            "the region's CloudWatch"
        );
        let both = Config::builder()
            .endpoint("http://127.0.0.1:4567")
            .set("CloudwatchEndpoint", "http://127.0.0.1:9999")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            both.cloudwatch_endpoint_url().as_deref(),
            Some("http://127.0.0.1:9999")
        );
        assert_eq!(Config::default().cloudwatch_endpoint_url(), None);
    }

    #[test]
    fn defaults_are_the_kpls() {
        let c = Config::builder().build().unwrap();
        assert!(c.aggregation_enabled);
        assert_eq!(c.aggregation_max_count, 4_294_967_295);
        assert_eq!(c.aggregation_max_size, 51_200);
        assert_eq!(c.collection_max_count, 500);
        assert_eq!(c.collection_max_size, 5_242_880);
        assert_eq!(c.record_max_buffered_time, Duration::from_millis(100));
        assert_eq!(c.record_ttl, Duration::from_millis(30_000));
        assert_eq!(c.rate_limit, 150);
        assert_eq!(c.max_connections, 24);
        assert_eq!(c.max_user_record_size, 1_048_576);
    }

    #[test]
    fn every_range_is_enforced_with_the_name_and_the_range() {
        let cases = [
            ("AggregationMaxSize", "63", "from 64 to 10485760"),
            ("AggregationMaxCount", "0", "at least 1"),
            ("CollectionMaxCount", "501", "from 1 to 500"),
            ("CollectionMaxSize", "52223", "at least 52224"),
            ("ConnectTimeout", "99", "from 100 to 300000"),
            ("RequestTimeout", "600001", "from 100 to 600000"),
            ("RecordTtl", "99", "at least 100"),
            ("RateLimit", "0", "at least 1"),
            ("MaxConnections", "257", "from 1 to 256"),
            ("MaxUserRecordSize", "10485761", "from 64 to 10485760"),
            ("KinesisPort", "70000", "from 1 to 65535"),
            ("RecordMaxBufferedTime", "-5", "whole number"),
            ("AggregationEnabled", "yes", "true or false"),
        ];
        for (name, value, allowed) in cases {
            let err = Config::builder().set(name, value).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig);
            let text = err.to_string();
            assert!(
                text.contains(name) && text.contains(value) && text.contains(allowed),
                "{text}"
            );
        }
    }

    #[test]
    fn typed_setters_are_checked_at_build() {
        let err = Config::builder()
            .collection_max_count(0)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("CollectionMaxCount"), "{err}");
        let err = Config::builder().max_buffered(10, 100).build().unwrap_err();
        assert!(err.to_string().contains("MaxBufferedBytes"), "{err}");
        let err = Config::builder()
            .set("VerifyCertificate", "false")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("CaCertPath"), "{err}");
    }

    #[test]
    fn properties_files_load_and_unknown_keys_are_skipped() {
        let text = "# comment\n! also a comment\nAggregationMaxCount = 100\nRegion: eu-west-1\n\
                    MetricsLevel = detailed\nSomethingNew = 1\nKinesisEndpoint = localhost\nKinesisPort = 4567\n";
        let c = Config::builder()
            .properties(text, "test.properties")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.aggregation_max_count, 100);
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.endpoint_url().as_deref(), Some("https://localhost:4567"));
        let err = Config::builder()
            .properties("a\nRateLimit = x\n", "f.properties")
            .unwrap_err();
        assert!(err.to_string().contains("f.properties:1"), "{err}");
        let err = Config::builder()
            .properties("RateLimit = x\n", "f.properties")
            .unwrap_err();
        assert!(
            err.to_string().contains("f.properties:1: RateLimit"),
            "{err}"
        );
    }

    #[test]
    fn names_may_be_snake_or_camel_case() {
        let c = Config::builder()
            .set("record_max_buffered_time", "7")
            .unwrap()
            .set("aggregationMaxSize", "1000")
            .unwrap()
            .set("user_record_timeout_in_millis", "5")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.record_max_buffered_time, Duration::from_millis(7));
        assert_eq!(c.aggregation_max_size, 1000);
        assert_eq!(c.user_record_timeout, Duration::from_millis(5));
        // Errors name the setting as the KPL does.
        let err = Config::builder().set("rate_limit", "x").unwrap_err();
        assert!(err.to_string().contains("RateLimit"), "{err}");
    }

    #[test]
    fn unknown_names_are_errors_for_set() {
        let err = Config::builder()
            .set("RecordMaxBuferedTime", "5")
            .unwrap_err();
        assert!(err.to_string().contains("unknown setting"), "{err}");
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let c = Config::builder()
            .credentials("AKID", "very-secret")
            .build()
            .unwrap();
        let text = format!("{:?}", c.credentials);
        assert!(!text.contains("very-secret"), "{text}");
    }
}

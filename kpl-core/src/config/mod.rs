//! Producer configuration, by the KPL's parameter names.
//!
//! Every setting has the reference KPL's name, default and range
//! (`KinesisProducerConfiguration`), so a KPL properties file works as it
//! is. Settings kpl-rs adds are marked as such.

mod builder;
mod kinds;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use builder::ConfigBuilder;
use kinds::{
    Credential, Dimensions, FilePath, Flag, Int, Kind, Millis, NO_MAX, Named, Secret, Text, Word,
};

use crate::error::{Error, ErrorKind};
use crate::metrics::{MetricsDimension, MetricsGranularity, MetricsLevel};
use crate::spool::{SpoolFullPolicy, SpoolSync};

/// One setting by its KPL name: how its text is applied, how its value is
/// shown, and how a value stored by a typed setter is checked.
pub(crate) struct Setting {
    pub name: &'static str,
    pub apply: fn(&mut Config, &str, &str) -> Result<(), Error>,
    pub show: fn(&Config) -> Option<String>,
    pub check: fn(&Config, &str) -> Result<(), Error>,
}

/// Declares `Config`, its `Default` and the settings table at once: each
/// field with its default and the KPL names that set it, with their kind
/// (parse, range, how it is shown). Adding a setting is adding a field here.
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct Config {
            $(
                $(#[doc = $doc:literal])*
                pub $field:ident: $ty:ty = $default:expr => [$($kpl:literal: $kind:expr),*],
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct Config {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Config { $( $field: $default, )* }
            }
        }

        /// Every setting, in the order [`Config::entries`] lists them.
        pub(crate) const SETTINGS: &[Setting] = &[
            $( $( Setting {
                name: $kpl,
                apply: |c, name, text| <_ as Kind<$ty>>::apply(&$kind, name, text, &mut c.$field),
                show: |c| <_ as Kind<$ty>>::show(&$kind, &c.$field),
                check: |c, name| <_ as Kind<$ty>>::check(&$kind, name, &c.$field),
            }, )* )*
        ];
    };
}

settings! {
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
    pub stream: Option<String> = None => ["StreamName": Text],
    /// Pack many user records into one Kinesis record (`AggregationEnabled`, true).
    pub aggregation_enabled: bool = true => ["AggregationEnabled": Flag],
    /// Most user records in one aggregate (`AggregationMaxCount`, 4294967295; 1..).
    pub aggregation_max_count: u64 = 4_294_967_295 => ["AggregationMaxCount": Int(1, NO_MAX)],
    /// Largest aggregate in bytes (`AggregationMaxSize`, 51200; 64..=10485760).
    pub aggregation_max_size: usize = 51_200 => ["AggregationMaxSize": Int(64, 10_485_760)],
    /// Most Kinesis records in one PutRecords (`CollectionMaxCount`, 500; 1..=500).
    pub collection_max_count: usize = 500 => ["CollectionMaxCount": Int(1, 500)],
    /// Largest PutRecords payload, keys plus data (`CollectionMaxSize`, 5242880; 52224..).
    pub collection_max_size: usize = 5_242_880 => ["CollectionMaxSize": Int(52_224, NO_MAX)],
    /// TCP/TLS connect timeout (`ConnectTimeout`, 6000 ms; 100..=300000).
    pub connect_timeout: Duration = Duration::from_millis(6000) => ["ConnectTimeout": Millis(100, 300_000)],
    /// Time one request may take (`RequestTimeout`, 6000 ms; 100..=600000).
    pub request_timeout: Duration = Duration::from_millis(6000) => ["RequestTimeout": Millis(100, 600_000)],
    /// Longest a record waits to be batched (`RecordMaxBufferedTime`, 100 ms).
    pub record_max_buffered_time: Duration = Duration::from_millis(100) => ["RecordMaxBufferedTime": Millis(0, NO_MAX)],
    /// Time after which an undelivered record fails as expired (`RecordTtl`, 30000 ms; 100..).
    pub record_ttl: Duration = Duration::from_millis(30_000) => ["RecordTtl": Millis(100, NO_MAX)],
    /// Per-shard send rate as a percentage of the shard limits (`RateLimit`, 150; 1..).
    pub rate_limit: u64 = 150 => ["RateLimit": Int(1, NO_MAX)],
    /// Fail throttled records at once instead of retrying (`FailIfThrottled`, false).
    pub fail_if_throttled: bool = false => ["FailIfThrottled": Flag],
    /// Keep put order per partition key (and per explicit hash key) in the
    /// stream through throttling, retries, timeouts and reshards
    /// (`StrictOrdering`, false; kpl-rs's own): a key has at most one
    /// Kinesis record in flight at a time, and a record sent again goes
    /// before newer ones.
    pub strict_ordering: bool = false => ["StrictOrdering": Flag],
    /// Most PutRecords requests in flight (`MaxConnections`, 24; 1..=256).
    pub max_connections: usize = 24 => ["MaxConnections": Int(1, 256)],
    /// AWS region (`Region`); `None`: from the environment or instance metadata.
    pub region: Option<String> = None => ["Region": Text],
    /// Kinesis endpoint host or URL (`KinesisEndpoint`); `None`: the region's.
    pub kinesis_endpoint: Option<String> = None => ["KinesisEndpoint": Text],
    /// Port for a host-only `KinesisEndpoint` (`KinesisPort`, 443).
    pub kinesis_port: u16 = 443 => ["KinesisPort": Int(1, 65_535)],
    /// Verify the endpoint's TLS certificate (`VerifyCertificate`, true).
    pub verify_certificate: bool = true => ["VerifyCertificate": Flag],
    /// Extra CA certificates (PEM) to trust (`CaCertPath`).
    pub ca_cert_path: Option<PathBuf> = None => ["CaCertPath": FilePath],
    /// Largest user record, partition key plus data (`MaxUserRecordSize`,
    /// 1048576; 64..=10485760), checked at put. Each stream's own limit
    /// (its `MaxRecordSizeInKiB`, read with DescribeStreamSummary) applies
    /// as well: raise this to send records over 1 MiB to streams that take them.
    pub max_user_record_size: usize = 1_048_576 => ["MaxUserRecordSize": Int(64, 10_485_760)],
    /// Longest a waiting put waits for buffer room (`UserRecordTimeoutInMillis`,
    /// 0 = no limit).
    pub user_record_timeout: Duration = Duration::ZERO => ["UserRecordTimeoutInMillis": Millis(0, NO_MAX)],
    /// Most records buffered before puts wait (kpl-rs `MaxBufferedRecords`,
    /// 100000: about 25 MB of 100-byte records, and more than enough to keep
    /// MaxConnections requests of CollectionMaxSize full).
    pub max_buffered_records: usize = 100_000 => ["MaxBufferedRecords": Int(1, u32::MAX as u64)],
    /// Most payload bytes buffered before puts wait (kpl-rs `MaxBufferedBytes`,
    /// 67108864 = 64 MiB).
    pub max_buffered_bytes: usize = 64 * 1024 * 1024 => ["MaxBufferedBytes": Int(65_536, NO_MAX)],
    /// Directory of the durable spool (kpl-rs `SpoolDirectory`; empty, the
    /// default: no spool). With a spool, a put returns once its record is
    /// on disk, records leave the disk only with a final result, a producer
    /// opening the directory sends what an earlier one left, and RecordTtl
    /// defaults to no limit (see the README's "Durable spool").
    pub spool_directory: Option<PathBuf> = None => ["SpoolDirectory": FilePath],
    /// Disk the spool may use, in bytes (kpl-rs `SpoolMaxBytes`,
    /// 1073741824 = 1 GiB; 1048576..).
    pub spool_max_bytes: u64 = 1 << 30 => ["SpoolMaxBytes": Int(1_048_576, NO_MAX)],
    /// When spooled records are fsynced (kpl-rs `SpoolSync`, interval;
    /// always | interval | never).
    pub spool_sync: SpoolSync = SpoolSync::Interval => ["SpoolSync": Named],
    /// fsync and checkpoint period (kpl-rs `SpoolSyncInterval`, 100 ms;
    /// 1..=60000).
    pub spool_sync_interval: Duration = Duration::from_millis(100) => ["SpoolSyncInterval": Millis(1, 60_000)],
    /// What puts do when the spool holds SpoolMaxBytes (kpl-rs
    /// `SpoolFullPolicy`, block; block | fail | drop_oldest).
    pub spool_full_policy: SpoolFullPolicy = SpoolFullPolicy::Block => ["SpoolFullPolicy": Named],
    /// How often shard maps are re-read, to follow streams that reshard on
    /// their own (kpl-rs `ShardMapRefreshInterval`, 60000 ms; 0 = never).
    pub shard_map_refresh_interval: Duration = Duration::from_secs(60) => ["ShardMapRefreshInterval": Millis(0, NO_MAX)],
    /// Static credentials (kpl-rs `AwsAccessKeyId`, `AwsSecretAccessKey`,
    /// `AwsSessionToken`); `None`: aws-config's default chain.
    pub credentials: Option<StaticCredentials> = None => ["AwsAccessKeyId": Credential::AccessKeyId, "AwsSecretAccessKey": Credential::SecretAccessKey, "AwsSessionToken": Credential::SessionToken],
    /// Which metrics are kept and uploaded (`MetricsLevel`, detailed;
    /// none | summary | detailed). `none`: no CloudWatch client.
    pub metrics_level: MetricsLevel = MetricsLevel::Detailed => ["MetricsLevel": Named],
    /// The finest dimension level uploaded (`MetricsGranularity`, shard;
    /// global | stream | shard).
    pub metrics_granularity: MetricsGranularity = MetricsGranularity::Shard => ["MetricsGranularity": Named],
    /// CloudWatch namespace (`MetricsNamespace`, KinesisProducerLibrary).
    pub metrics_namespace: String = DEFAULT_METRICS_NAMESPACE.to_owned() => ["MetricsNamespace": Word],
    /// Time between uploads, the length of one metrics window
    /// (`MetricsUploadDelay`, 60000 ms; 1..=60000).
    pub metrics_upload_delay: Duration = Duration::from_millis(60_000) => ["MetricsUploadDelay": Millis(1, 60_000)],
    /// CloudWatch endpoint host or URL (`CloudwatchEndpoint`); `None`: the
    /// region's, or, when `KinesisEndpoint` names a host outside AWS (a
    /// simulator such as kpl-sim, which serves both), that endpoint.
    pub cloudwatch_endpoint: Option<String> = None => ["CloudwatchEndpoint": Text],
    /// Port for a host-only `CloudwatchEndpoint` (`CloudwatchPort`, 443).
    pub cloudwatch_port: u16 = 443 => ["CloudwatchPort": Int(1, 65_535)],
    /// Dimensions added to every metric (the KPL's
    /// `addAdditionalMetricsDimension`; kpl-rs `AdditionalMetricsDimensions`).
    pub metrics_dimensions: Vec<MetricsDimension> = Vec::new() => ["AdditionalMetricsDimensions": Dimensions],
    /// HTTP proxy host, or URL (`ProxyHost`); `None`: `HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` from the environment, as the
    /// AWS SDKs read them.
    pub proxy_host: Option<String> = None => ["ProxyHost": Text],
    /// Port of a host-only `ProxyHost` (`ProxyPort`, 443).
    pub proxy_port: u16 = 443 => ["ProxyPort": Int(1, 65_535)],
    /// User for the proxy's Basic authentication (`ProxyUserName`).
    pub proxy_user_name: Option<String> = None => ["ProxyUserName": Text],
    /// Password for the proxy (`ProxyPassword`); shown nowhere, not even in
    /// [`Config::entries`].
    pub proxy_password: Option<String> = None => ["ProxyPassword": Secret],
    /// Seed of the producer's random choices (backoff jitter), for runs
    /// that must repeat exactly, such as simulation tests; `None` (the
    /// default): seeded from the operating system.
    pub random_seed: Option<u64> = None => [],
}
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

impl Config {
    /// A builder starting from the KPL's defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default(),
            ttl_given: false,
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

    /// The one way every front end (C, Python, Node, the `kpl` command)
    /// builds a configuration: a KPL properties file, if given, then
    /// `settings` in order, each overriding what came before. Names are
    /// the KPL's in any case style; errors are `set`'s and
    /// `from_properties`'s.
    ///
    /// ```
    /// let config = kpl_core::Config::from_parts(None, [("record_ttl", "5000"), ("RateLimit", "80")])
    ///     .unwrap()
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.record_ttl.as_millis(), 5000);
    /// assert_eq!(config.rate_limit, 80);
    /// ```
    pub fn from_parts<N: AsRef<str>, V: AsRef<str>>(
        properties: Option<&Path>,
        settings: impl IntoIterator<Item = (N, V)>,
    ) -> Result<ConfigBuilder, Error> {
        let mut builder = match properties {
            Some(path) => Config::from_properties(path)?,
            None => Config::builder(),
        };
        for (name, value) in settings {
            builder.apply(name.as_ref(), value.as_ref())?;
        }
        Ok(builder)
    }

    /// The settings as KPL names and values, for logs and tools (secrets
    /// redacted; credentials left out).
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        SETTINGS
            .iter()
            .filter_map(|s| (s.show)(self).map(|v| (s.name, v)))
            .collect()
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

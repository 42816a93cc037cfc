//! `ConfigBuilder`: settings by KPL name (through the table in `mod.rs`),
//! typed setters, properties files, and the checks across settings.

use std::time::Duration;

use super::kinds::invalid;
use super::{Config, SETTINGS, Setting, StaticCredentials};
use crate::error::{Error, ErrorKind};
use crate::metrics::{MetricsDimension, MetricsGranularity, MetricsLevel};

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

/// Builds a [`Config`]; every setter has a KPL name usable with
/// [`ConfigBuilder::set`].
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    pub(super) config: Config,
    /// RecordTtl was set: with a spool it otherwise defaults to no limit.
    pub(super) ttl_given: bool,
}

/// RecordTtl "without limit": a century, far beyond any run, and far
/// from overflowing an `Instant`.
pub(crate) const NO_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

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
        self.apply(name, value)?;
        Ok(self)
    }

    /// Like [`set`](Self::set), in place: the value is checked before it
    /// is stored, so on error the builder is as it was.
    ///
    /// ```
    /// let mut builder = kpl_core::Config::builder();
    /// builder.apply("RecordMaxBufferedTime", "50").unwrap();
    /// assert!(builder.apply("RecordTtl", "soon").is_err());
    /// assert_eq!(builder.build().unwrap().record_ttl.as_millis(), 30_000);
    /// ```
    pub fn apply(&mut self, name: &str, value: &str) -> Result<(), Error> {
        if let Some(setting) = setting(name) {
            (setting.apply)(&mut self.config, setting.name, value)?;
            self.ttl_given |= setting.name == "RecordTtl";
            return Ok(());
        }
        match ACCEPTED_WITHOUT_EFFECT.iter().find(|n| same_name(n, name)) {
            Some(known) => {
                tracing::debug!(
                    name = known,
                    value,
                    "KPL setting accepted without effect in kpl-rs"
                );
                Ok(())
            }
            None => Err(Error::unknown_setting(name, closest(name))),
        }
    }

    /// A setting's value as text, as [`Config::entries`] shows it, by its
    /// KPL name in any case style: `Ok(None)` for a setting never shown
    /// (a secret, credentials) or a KPL setting accepted without effect;
    /// an [`ErrorKind::UnknownSetting`] error for an unknown name.
    ///
    /// ```
    /// let mut builder = kpl_core::Config::builder();
    /// builder.apply("record_ttl", "5000").unwrap();
    /// assert_eq!(builder.get("RecordTtl").unwrap().as_deref(), Some("5000"));
    /// assert_eq!(builder.get("AwsSecretAccessKey").unwrap(), None);
    /// ```
    pub fn get(&self, name: &str) -> Result<Option<String>, Error> {
        match setting(name) {
            Some(s) => Ok((s.show)(&self.config)),
            None if is_known(name) => Ok(None),
            None => Err(Error::unknown_setting(name, closest(name))),
        }
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
            if !is_known(name) {
                tracing::warn!("{origin}:{}: ignoring unknown setting {name:?}", number + 1);
                continue;
            }
            self.apply(name, value).map_err(|e| {
                let at = Error::new(
                    e.kind(),
                    format!("{origin}:{}: {}", number + 1, e.message()),
                );
                match e.setting() {
                    Some(s) => at.with_setting(s),
                    None => at,
                }
            })?;
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
        self.ttl_given = true;
        self
    }

    /// Keeps records in a durable spool in `dir` (`SpoolDirectory`): see
    /// the README's "Durable spool" for what it promises.
    ///
    /// ```
    /// use kpl_core::{Config, SpoolSync};
    ///
    /// let config = Config::builder()
    ///     .stream("readings")
    ///     .spool_directory("/var/lib/gateway/kpl-spool")
    ///     .set("SpoolSync", "always")
    ///     .unwrap()
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.spool_sync, SpoolSync::Always);
    /// // With a spool, records wait out outages instead of expiring.
    /// assert!(config.record_ttl.as_secs() > 1_000_000_000);
    /// ```
    pub fn spool_directory(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.config.spool_directory = Some(dir.into());
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
        let mut c = self.config;
        if c.spool_directory.is_some() && !self.ttl_given {
            c.record_ttl = NO_TTL;
        }
        // Typed setters bypass `set`, so re-check every range here once.
        for setting in SETTINGS {
            (setting.check)(&c, setting.name)?;
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
        if c.spool_directory.is_some() && c.spool_max_bytes < 2 * c.max_user_record_size as u64 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "SpoolMaxBytes = {} must hold at least two records of MaxUserRecordSize = {} bytes",
                    c.spool_max_bytes, c.max_user_record_size
                ),
            ));
        }
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

/// The setting a name means, in the KPL's spelling or in snake_case or
/// camelCase.
fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| same_name(s.name, name))
}

/// Whether `name` is a setting, or a KPL setting accepted without effect.
pub(crate) fn is_known(name: &str) -> bool {
    setting(name).is_some() || ACCEPTED_WITHOUT_EFFECT.iter().any(|n| same_name(n, name))
}

/// The setting names closest to an unknown `name` (best first, at most
/// three): a few typos away, or holding it whole (`ttl` -> `RecordTtl`).
fn closest(name: &str) -> Vec<&'static str> {
    let given = folded(name);
    if given.is_empty() {
        return Vec::new();
    }
    let mut near: Vec<(usize, &'static str)> = SETTINGS
        .iter()
        .filter_map(|s| {
            let known = folded(s.name);
            let d = edit_distance(&given, &known);
            let contains = given.len() >= 3
                && (known.contains(given.as_str()) || given.contains(known.as_str()));
            (d <= (known.len() / 4).max(2) || contains).then_some((d, s.name))
        })
        .collect();
    near.sort();
    near.dedup_by_key(|(_, n)| *n);
    near.into_iter().take(3).map(|(_, n)| n).collect()
}

/// Lower case without `_` and `-`: the form names are compared in.
fn folded(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Levenshtein distance (insertions, deletions, substitutions).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

fn same_name(kpl: &str, given: &str) -> bool {
    let mut folded = given
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase);
    let mut kpl = kpl.chars().flat_map(char::to_lowercase);
    loop {
        match (kpl.next(), folded.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

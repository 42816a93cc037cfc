//! Configuration: service limits, fault injection, retention and the server settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One MiB.
pub const MIB: usize = 1024 * 1024;

/// A stream's `MaxRecordSizeInKiB` when CreateStream sets none (the service's default).
pub const DEFAULT_RECORD_KIB: u32 = 1024;
/// The largest `MaxRecordSizeInKiB` the service allows (10 MiB).
pub const MAX_RECORD_KIB: u32 = 10240;

/// The service limits the simulator enforces. `Default` is the real service's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Records per second one shard accepts (service: 1000).
    pub shard_records_per_sec: u32,
    /// Bytes (data + partition key) per second one shard accepts (service: 1 MiB).
    pub shard_bytes_per_sec: u64,
    /// Records in one PutRecords call (service: 500).
    pub max_records_per_request: usize,
    /// Bytes (data + partition keys) in one PutRecords call (service: 10 MiB).
    /// A record's own limit is its stream's `MaxRecordSizeInKiB`.
    pub max_request_bytes: usize,
    /// Characters in a partition key (service: 256).
    pub max_partition_key_chars: usize,
    /// Whether the per-shard write throughput limits apply (off for benchmarks).
    pub throughput_enabled: bool,
    /// Records one GetRecords call returns at most (service: 10000).
    pub max_get_records: usize,
    /// Bytes one GetRecords call returns at most (service: 10 MiB).
    pub max_get_bytes: usize,
    /// Largest HTTP request body read; larger bodies are refused with a 400.
    /// The effective limit is raised so that a maximal record always fits.
    pub max_body_bytes: usize,
    /// Most shards one stream may have (LimitExceededException beyond).
    pub max_shards_per_stream: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            shard_records_per_sec: 1000,
            shard_bytes_per_sec: MIB as u64,
            max_records_per_request: 500,
            max_request_bytes: 10 * MIB,
            max_partition_key_chars: 256,
            throughput_enabled: true,
            max_get_records: 10_000,
            max_get_bytes: 10 * MIB,
            max_body_bytes: 12 * MIB,
            max_shards_per_stream: 10_000,
        }
    }
}

impl Limits {
    /// The service limits with the per-shard throughput limits switched off.
    pub fn unlimited() -> Self {
        Limits {
            throughput_enabled: false,
            ..Limits::default()
        }
    }

    /// The body limit actually applied: `max_body_bytes`, raised so that a
    /// base64-encoded maximal record or request always fits.
    pub fn effective_body_limit(&self) -> usize {
        let biggest = MAX_RECORD_KIB as usize * 1024;
        let biggest = biggest.max(self.max_request_bytes);
        self.max_body_bytes.max(biggest / 3 * 4 + 4 + MIB)
    }
}

/// Fault injection. Every fraction is a probability in `0.0..=1.0`; all
/// random choices come from one RNG seeded with `seed`, so a run is repeatable
/// (given the same order of requests). `Default` injects nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Seed of the fault RNG. Setting faults reseeds it.
    pub seed: u64,
    /// Fraction of PutRecords entries that fail with `InternalFailure` inside a 200 response.
    pub record_internal_failure: f64,
    /// Fraction of API requests answered with a 500 `InternalFailure`.
    pub request_500: f64,
    /// Fraction of API requests answered with a 503 `ServiceUnavailable`.
    pub request_503: f64,
    /// Latency added to every API request.
    #[serde(with = "millis")]
    pub latency: Duration,
    /// Extra latency, uniform in `0..=latency_jitter`, added on top of `latency`.
    #[serde(with = "millis")]
    pub latency_jitter: Duration,
    /// Fraction of API requests whose connection is closed without a response.
    pub drop_connection: f64,
    /// Fraction of API requests held without a response for `timeout_hold`
    /// (or until shutdown); the connection is then closed.
    pub timeout: f64,
    /// How long a timed-out request is held.
    #[serde(with = "millis")]
    pub timeout_hold: Duration,
    /// Fraction of CloudWatch PutMetricData requests answered with a 500
    /// `InternalServiceError` (the Kinesis faults above leave CloudWatch alone).
    pub cloudwatch_500: f64,
    /// Fraction of API requests that are carried out (records stored) and
    /// then held without a response for `timeout_hold`, as when a reply is
    /// lost on its way back: a producer that retries them writes duplicates.
    pub timeout_after_store: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            seed: 0,
            record_internal_failure: 0.0,
            request_500: 0.0,
            request_503: 0.0,
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            drop_connection: 0.0,
            timeout: 0.0,
            timeout_hold: Duration::from_secs(30),
            cloudwatch_500: 0.0,
            timeout_after_store: 0.0,
        }
    }
}

impl Faults {
    /// No faults (same as `Default`).
    pub fn none() -> Self {
        Faults::default()
    }

    /// Whether any request-level fault or latency is configured.
    pub fn any_request_fault(&self) -> bool {
        self.request_500 > 0.0
            || self.request_503 > 0.0
            || self.drop_connection > 0.0
            || self.timeout > 0.0
            || self.timeout_after_store > 0.0
            || !self.latency.is_zero()
            || !self.latency_jitter.is_zero()
    }
}

/// Durations as integer milliseconds in the admin JSON (`"latency": 250`).
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// How much each shard keeps; the oldest records are trimmed first.
/// `None` means no bound of that kind. `Default`: 100 000 records and 64 MiB per shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Records retained per shard at most.
    pub max_records_per_shard: Option<usize>,
    /// Bytes (data + partition key) retained per shard at most.
    pub max_bytes_per_shard: Option<usize>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_records_per_shard: Some(100_000),
            max_bytes_per_shard: Some(64 * MIB),
        }
    }
}

/// How on-demand streams (`StreamModeDetails` `ON_DEMAND`) scale out.
///
/// The rule: every `window`, each on-demand stream's write demand in that
/// window (records and bytes offered, accepted or throttled) is compared with
/// what its open shards take (`shards x per-shard limits x window`). When
/// either ratio is at least `utilization` in `sustain` windows in a row, the
/// stream doubles its open shards as UpdateShardCount does (all open shards
/// close, children split the hash range evenly), up to `max_shards`. Streams
/// never scale in (the service does that over a day). `Default`: a new
/// on-demand stream has 4 shards; one-minute windows, 80 %, 2 windows in a
/// row. Tests shorten `window`.
#[derive(Debug, Clone, PartialEq)]
pub struct OnDemand {
    /// Shards of a new on-demand stream (the service starts at 4 MB/s of writes).
    pub initial_shards: u32,
    /// Length of one measuring window.
    pub window: Duration,
    /// Fraction of capacity that counts as near the limit.
    pub utilization: f64,
    /// Consecutive windows near the limit before the stream scales out.
    pub sustain: u32,
    /// Most open shards an on-demand stream grows to.
    pub max_shards: u32,
}

impl Default for OnDemand {
    fn default() -> Self {
        OnDemand {
            initial_shards: 4,
            window: Duration::from_secs(60),
            utilization: 0.8,
            sustain: 2,
            max_shards: 200,
        }
    }
}

/// Everything `Sim::start` needs. `Default`: service limits on, no faults,
/// bind 127.0.0.1:0, no TLS, no streams.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to bind (default 127.0.0.1).
    pub host: std::net::IpAddr,
    /// HTTP port (0 = ephemeral).
    pub port: u16,
    /// Whether to also serve HTTPS with a generated self-signed certificate.
    pub tls: bool,
    /// HTTPS port (0 = ephemeral), used when `tls` is on.
    pub tls_port: u16,
    /// Service limits.
    pub limits: Limits,
    /// Fault injection.
    pub faults: Faults,
    /// Retention per shard.
    pub retention: Retention,
    /// Streams created at start.
    pub streams: Vec<(String, crate::state::StreamSpec)>,
    /// How on-demand streams scale.
    pub on_demand: OnDemand,
    /// Region used in ARNs.
    pub region: String,
    /// Account id used in ARNs and messages.
    pub account: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            host: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port: 0,
            tls: false,
            tls_port: 0,
            limits: Limits::default(),
            faults: Faults::default(),
            retention: Retention::default(),
            streams: Vec::new(),
            on_demand: OnDemand::default(),
            region: "us-east-1".to_string(),
            account: "000000000000".to_string(),
        }
    }
}

impl SimConfig {
    /// Create a provisioned stream with `shards` shards at start.
    pub fn stream(mut self, name: &str, shards: u32) -> Self {
        self.streams.push((
            name.to_string(),
            crate::state::StreamSpec::provisioned(shards),
        ));
        self
    }

    /// Create a stream of any mode and record size limit at start.
    pub fn stream_with(mut self, name: &str, spec: crate::state::StreamSpec) -> Self {
        self.streams.push((name.to_string(), spec));
        self
    }

    /// Set the HTTP port (0 = ephemeral).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Set the HTTPS port (0 = ephemeral); only used with `tls(true)`.
    pub fn tls_port(mut self, port: u16) -> Self {
        self.tls_port = port;
        self
    }

    /// Set the bind address (default 127.0.0.1).
    pub fn host(mut self, host: std::net::IpAddr) -> Self {
        self.host = host;
        self
    }

    /// Serve HTTPS too, on a second port, with a self-signed certificate.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Replace the service limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Switch the per-shard throughput limits off (for benchmarks).
    pub fn unlimited(mut self) -> Self {
        self.limits.throughput_enabled = false;
        self
    }

    /// Set the fault injection.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Set the retention per shard.
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Set how on-demand streams scale.
    pub fn on_demand(mut self, on_demand: OnDemand) -> Self {
        self.on_demand = on_demand;
        self
    }

    /// Set the region used in ARNs.
    pub fn region(mut self, region: &str) -> Self {
        self.region = region.to_string();
        self
    }
}

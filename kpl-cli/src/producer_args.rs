//! Producer flags shared by `kpl perf` and `kpl put`: the KPL knobs by
//! name, a properties file, and the endpoint.

use std::path::PathBuf;

use clap::Args;
use kpl_core::{Config, ConfigBuilder};

/// Producer settings from the command line.
#[derive(Args, Debug, Clone)]
pub struct ProducerArgs {
    /// Kinesis endpoint URL, e.g. http://127.0.0.1:4567 (default: the region's).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// AWS region (default: from the environment or profile).
    #[arg(long)]
    pub region: Option<String>,
    /// A KPL properties file (`Name = value` lines); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Any KPL setting, by name: `--set RecordTtl=60000` (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub settings: Vec<String>,
    /// Send every user record as its own Kinesis record.
    #[arg(long)]
    pub no_aggregation: bool,
    /// RecordMaxBufferedTime, ms.
    #[arg(long, value_name = "MS")]
    pub record_max_buffered_time: Option<u64>,
    /// AggregationMaxSize, bytes.
    #[arg(long, value_name = "BYTES")]
    pub aggregation_max_size: Option<u64>,
    /// AggregationMaxCount.
    #[arg(long, value_name = "N")]
    pub aggregation_max_count: Option<u64>,
    /// CollectionMaxCount (Kinesis records per PutRecords, at most 500).
    #[arg(long, value_name = "N")]
    pub collection_max_count: Option<u64>,
    /// MaxConnections (PutRecords requests in flight).
    #[arg(long, value_name = "N")]
    pub max_connections: Option<u64>,
    /// RateLimit, percent of the per-shard limits.
    #[arg(long, value_name = "PERCENT")]
    pub rate_limit: Option<u64>,
    /// RecordTtl, ms.
    #[arg(long, value_name = "MS")]
    pub record_ttl: Option<u64>,
    /// Keep records in a durable spool in DIR (SpoolDirectory).
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// SpoolSync: always, interval or never.
    #[arg(long, value_name = "MODE")]
    pub spool_sync: Option<String>,
}

impl ProducerArgs {
    /// The configuration these flags describe, for `stream`.
    pub fn builder(&self, stream: &str) -> Result<ConfigBuilder, String> {
        let mut pairs = vec![("StreamName".to_owned(), stream.to_owned())];
        let flags: [(&str, Option<String>); 12] = [
            ("KinesisEndpoint", self.endpoint.clone()),
            ("Region", self.region.clone()),
            (
                "AggregationEnabled",
                self.no_aggregation.then(|| "false".into()),
            ),
            (
                "RecordMaxBufferedTime",
                self.record_max_buffered_time.map(|v| v.to_string()),
            ),
            (
                "AggregationMaxSize",
                self.aggregation_max_size.map(|v| v.to_string()),
            ),
            (
                "AggregationMaxCount",
                self.aggregation_max_count.map(|v| v.to_string()),
            ),
            (
                "CollectionMaxCount",
                self.collection_max_count.map(|v| v.to_string()),
            ),
            (
                "MaxConnections",
                self.max_connections.map(|v| v.to_string()),
            ),
            ("RateLimit", self.rate_limit.map(|v| v.to_string())),
            ("RecordTtl", self.record_ttl.map(|v| v.to_string())),
            (
                "SpoolDirectory",
                self.spool_dir.as_ref().map(|d| d.display().to_string()),
            ),
            ("SpoolSync", self.spool_sync.clone()),
        ];
        pairs.extend(
            flags
                .into_iter()
                .filter_map(|(name, value)| Some((name.to_owned(), value?))),
        );
        for setting in &self.settings {
            let (name, value) = setting
                .split_once('=')
                .ok_or_else(|| format!("--set {setting:?}: expected NAME=VALUE"))?;
            pairs.push((name.trim().to_owned(), value.to_owned()));
        }
        Config::from_parts(self.config.as_deref(), pairs).map_err(|e| e.to_string())
    }
}

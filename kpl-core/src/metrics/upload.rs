//! The upload task: rolls each window up the KPL's dimension tree and
//! sends it to CloudWatch as `StatisticSet` datums, off the pipeline.
//!
//! A datum's dimensions are a path: `MetricName`, the global user
//! dimensions, `ErrorCode` (ErrorsByCode only), `StreamName`, the stream
//! user dimensions, `ShardId`, the shard user dimensions. As in the KPL,
//! every prefix of that path is a metric of its own that counts every
//! value below it, kept when its level (shard if it has `ShardId`, stream
//! if it has `StreamName`, else global) is within `MetricsGranularity`.
//!
//! While CloudWatch cannot be reached, windows wait in a backlog bounded
//! by datums; the oldest are dropped first and counted.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};
use tokio::sync::mpsc;

use super::accumulator::{Cell, StatSet};
use super::hooks::Window;
use super::names::{MetricsGranularity, Name};
use crate::client::{fallback_region, sdk_config};
use crate::config::Config;
use crate::error::Error;
use crate::pipeline::Shared;
use crate::transport::classify;

/// CloudWatch's PutMetricData limits (API reference, 2023 on): at most
/// 1,000 metrics and 1 MB per request. The payload is kept under a
/// conservative estimate of its encoded size.
pub(crate) const MAX_DATUMS_PER_REQUEST: usize = 1000;
pub(crate) const MAX_PAYLOAD_BYTES: usize = 1_000_000;
/// Room for the request's own fields (namespace, framing).
const REQUEST_OVERHEAD: usize = 1024;
/// Datums kept while CloudWatch is unreachable (a shard-level window of
/// a 100-shard stream is about 3,000): beyond it the oldest windows go.
pub(crate) const MAX_BACKLOG_DATUMS: usize = 100_000;

/// One CloudWatch datum before it becomes the SDK's type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Datum {
    pub name: Name,
    pub dimensions: Vec<(String, String)>,
    pub stats: StatSet,
}

impl Datum {
    /// An upper bound of its encoded size (CBOR or query): names, values
    /// and a fixed allowance per field.
    fn encoded_size(&self) -> usize {
        let dims: usize = self
            .dimensions
            .iter()
            .map(|(n, v)| n.len() + v.len() + 32)
            .sum();
        256 + self.name.as_str().len() + dims
    }
}

/// The level of a dimension path.
fn granularity_of(path: &[(String, String)]) -> MetricsGranularity {
    if path.iter().any(|(n, _)| n == "ShardId") {
        MetricsGranularity::Shard
    } else if path.iter().any(|(n, _)| n == "StreamName") {
        MetricsGranularity::Stream
    } else {
        MetricsGranularity::Global
    }
}

/// The full dimension path of a cell.
fn path(cell: &Cell, config: &Config) -> Vec<(String, String)> {
    let extra = |g: MetricsGranularity| {
        config
            .metrics_dimensions
            .iter()
            .filter(move |d| d.granularity == g)
            .map(|d| (d.name.clone(), d.value.clone()))
    };
    let mut path: Vec<(String, String)> = extra(MetricsGranularity::Global).collect();
    if let Some(code) = &cell.error_code {
        path.push(("ErrorCode".into(), code.to_string()));
    }
    path.push(("StreamName".into(), cell.place.stream.to_string()));
    path.extend(extra(MetricsGranularity::Stream));
    if let Some(shard) = &cell.place.shard {
        path.push(("ShardId".into(), shard.to_string()));
        path.extend(extra(MetricsGranularity::Shard));
    }
    path
}

/// Every datum of a window: each cell counted in every prefix of its path
/// within the configured granularity.
pub(crate) fn roll_up(cells: &[Cell], config: &Config) -> Vec<Datum> {
    let mut tree: BTreeMap<(Name, Vec<(String, String)>), StatSet> = BTreeMap::new();
    for cell in cells {
        let full = path(cell, config);
        for k in 0..=full.len() {
            let prefix = &full[..k];
            if granularity_of(prefix) > config.metrics_granularity {
                break;
            }
            tree.entry((cell.name, prefix.to_vec()))
                .or_default()
                .merge(&cell.stats);
        }
    }
    tree.into_iter()
        .map(|((name, dimensions), stats)| Datum {
            name,
            dimensions,
            stats,
        })
        .collect()
}

/// Splits datums into requests within CloudWatch's limits.
pub(crate) fn batches(datums: Vec<Datum>) -> VecDeque<Vec<Datum>> {
    let mut out = VecDeque::new();
    let mut batch = Vec::new();
    let mut bytes = REQUEST_OVERHEAD;
    for datum in datums {
        let size = datum.encoded_size();
        if !batch.is_empty()
            && (batch.len() == MAX_DATUMS_PER_REQUEST || bytes + size > MAX_PAYLOAD_BYTES)
        {
            out.push_back(std::mem::take(&mut batch));
            bytes = REQUEST_OVERHEAD;
        }
        bytes += size;
        batch.push(datum);
    }
    if !batch.is_empty() {
        out.push_back(batch);
    }
    out
}

/// A window's requests still to send.
struct Waiting {
    time: SystemTime,
    batches: VecDeque<Vec<Datum>>,
    datums: usize,
}

/// Windows not yet uploaded, oldest first, bounded by datums.
pub(crate) struct Backlog {
    windows: VecDeque<Waiting>,
    datums: usize,
    max_datums: usize,
    /// Windows dropped to stay within the bound.
    pub dropped: u64,
}

impl Backlog {
    pub fn new(max_datums: usize) -> Backlog {
        Backlog {
            windows: VecDeque::new(),
            datums: 0,
            max_datums,
            dropped: 0,
        }
    }

    /// Queues a window's datums; drops the oldest windows beyond the bound
    /// (never the one just added). Returns how many were dropped.
    pub fn push(&mut self, time: SystemTime, datums: Vec<Datum>) -> u64 {
        if datums.is_empty() {
            return 0;
        }
        let n = datums.len();
        self.datums += n;
        self.windows.push_back(Waiting {
            time,
            batches: batches(datums),
            datums: n,
        });
        let mut dropped = 0;
        while self.datums > self.max_datums && self.windows.len() > 1 {
            let old = self.windows.pop_front().expect("more than one window");
            self.datums -= old.datums;
            dropped += 1;
        }
        self.dropped += dropped;
        dropped
    }

    /// The oldest request waiting, with its window's time.
    fn front(&self) -> Option<(SystemTime, &[Datum])> {
        let w = self.windows.front()?;
        Some((w.time, w.batches.front()?))
    }

    /// The oldest request is done with (sent, or refused for good).
    fn pop(&mut self) {
        if let Some(w) = self.windows.front_mut() {
            if let Some(b) = w.batches.pop_front() {
                self.datums -= b.len();
                w.datums -= b.len();
            }
            if w.batches.is_empty() {
                self.windows.pop_front();
            }
        }
    }

    pub fn datums(&self) -> usize {
        self.datums
    }
}

fn unit(name: Name) -> StandardUnit {
    StandardUnit::from(name.unit().as_str())
}

fn to_sdk(datum: &Datum, time: SystemTime) -> MetricDatum {
    let s = &datum.stats;
    MetricDatum::builder()
        .metric_name(datum.name.as_str())
        .set_dimensions(Some(
            datum
                .dimensions
                .iter()
                .map(|(n, v)| Dimension::builder().name(n).value(v).build())
                .collect(),
        ))
        .timestamp(aws_smithy_types::DateTime::from(time))
        .statistic_values(
            StatisticSet::builder()
                .sample_count(s.count)
                .sum(s.sum)
                .minimum(s.min)
                .maximum(s.max)
                .build(),
        )
        .unit(unit(datum.name))
        .build()
}

/// The CloudWatch client: the producer's SDK settings, `CloudwatchEndpoint`.
pub(crate) async fn connect(config: &Config) -> Result<Client, Error> {
    let sdk_config = sdk_config(config).await?;
    let mut builder = aws_sdk_cloudwatch::config::Builder::from(&sdk_config);
    let endpoint = config.cloudwatch_endpoint_url();
    if let Some(url) = &endpoint {
        builder = builder.endpoint_url(url.clone());
    }
    if let Some(region) = fallback_region(&sdk_config, endpoint.as_deref())? {
        builder = builder.region(region);
    }
    Ok(Client::from_conf(builder.build()))
}

/// Starts the upload task for the windows the pipeline cuts. It ends once
/// the pipeline has stopped and the last window was sent (or failed).
pub(crate) fn spawn(
    config: Arc<Config>,
    windows: mpsc::UnboundedReceiver<Window>,
    shared: Arc<Shared>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(config, windows, shared))
}

async fn run(
    config: Arc<Config>,
    mut windows: mpsc::UnboundedReceiver<Window>,
    shared: Arc<Shared>,
) {
    #[cfg(feature = "metrics-facade")]
    super::facade::describe();
    let client = match connect(&config).await {
        Ok(client) => Some(client),
        Err(err) => {
            tracing::error!(%err, "cannot make the CloudWatch client; metrics will not be uploaded");
            None
        }
    };
    let mut backlog = Backlog::new(MAX_BACKLOG_DATUMS);
    while let Some(window) = windows.recv().await {
        receive(window, &config, &mut backlog, &shared);
        // Take whatever else arrived while the last upload was in flight.
        while let Ok(window) = windows.try_recv() {
            receive(window, &config, &mut backlog, &shared);
        }
        if let Some(client) = &client {
            upload(client, &config.metrics_namespace, &mut backlog, &shared).await;
        }
    }
}

fn receive(window: Window, config: &Config, backlog: &mut Backlog, shared: &Shared) {
    #[cfg(feature = "metrics-facade")]
    super::facade::report(&window.cells, config);
    let dropped = backlog.push(window.time, roll_up(&window.cells, config));
    if dropped > 0 {
        shared.metrics.metrics_windows_dropped(dropped);
        tracing::warn!(
            dropped,
            waiting = backlog.datums(),
            "CloudWatch has not taken the metrics for a while; dropped the oldest windows"
        );
    }
}

/// Sends the backlog in order until it is empty or a request fails with a
/// retryable error (the rest waits for the next window).
async fn upload(client: &Client, namespace: &str, backlog: &mut Backlog, shared: &Shared) {
    while let Some((time, batch)) = backlog.front() {
        let data: Vec<MetricDatum> = batch.iter().map(|d| to_sdk(d, time)).collect();
        let count = data.len();
        let result = client
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(data))
            .send()
            .await
            .map_err(classify);
        match result {
            Ok(_) => {
                shared.metrics.metrics_uploaded(count as u64);
                backlog.pop();
            }
            Err(err) => {
                shared.metrics.metrics_upload_failed();
                if err.is_retryable() {
                    tracing::warn!(%err, datums = count, "metrics upload to CloudWatch failed; will retry");
                    return;
                }
                tracing::error!(%err, datums = count, "CloudWatch refused a metrics upload; dropped it");
                backlog.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests;

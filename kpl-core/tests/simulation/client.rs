//! The producer's `Kinesis` over kpl-sim's in-process model, in simulated
//! time: the model's request faults become what the SDK transport would
//! report, a timeout takes RequestTimeout of (simulated) time, and
//! credentials expire and are refreshed as the SDK's identity cache does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kpl_core::kinesis::{BoxFuture, Entry, EntryOutcome, Kinesis, ShardInfo, StreamSummary};
use kpl_core::{Error, ErrorKind};
use kpl_sim::{ApiError, Model, ModelOutcome, ModelRecord, RequestFault};
use parking_lot::Mutex;
use tokio::time::Instant;

/// Temporary credentials: valid this long once issued.
const CREDENTIALS_LIFETIME: Duration = Duration::from_secs(3600);
/// The SDK's identity cache refreshes this long before expiry.
const REFRESH_BUFFER: Duration = Duration::from_secs(300);

/// When things outside the model fail.
#[derive(Debug, Clone, Default)]
pub struct Outages {
    /// ListShards fails (LimitExceededException) inside these windows.
    pub list_shards: Vec<(Instant, Instant)>,
    /// The credentials provider cannot be reached inside these windows:
    /// credentials are not refreshed and may expire.
    pub credentials: Vec<(Instant, Instant)>,
}

fn inside(windows: &[(Instant, Instant)], now: Instant) -> bool {
    windows.iter().any(|&(a, b)| a <= now && now < b)
}

#[derive(Debug, Default)]
pub struct Calls {
    /// ListShards calls per stream.
    pub list_shards: HashMap<String, u64>,
    /// Failed ListShards calls per stream.
    pub list_shards_failed: HashMap<String, u64>,
    pub put_records: u64,
    /// Calls answered ExpiredTokenException.
    pub expired_token: u64,
    /// Credentials refreshed.
    pub refreshes: u64,
    /// Every PutRecords answered with outcomes.
    pub put_log: Vec<PutCall>,
}

/// One answered PutRecords call.
#[derive(Debug, Clone)]
pub struct PutCall {
    pub sent: Instant,
    pub answered: Instant,
    pub throttled: usize,
}

pub struct ModelClient {
    model: Model,
    request_timeout: Duration,
    outages: Outages,
    credentials_expire: Mutex<Instant>,
    pub calls: Mutex<Calls>,
}

impl ModelClient {
    pub fn new(model: Model, request_timeout: Duration, outages: Outages) -> Arc<ModelClient> {
        Arc::new(ModelClient {
            model,
            request_timeout,
            outages,
            credentials_expire: Mutex::new(Instant::now() + CREDENTIALS_LIFETIME),
            calls: Mutex::new(Calls::default()),
        })
    }

    /// Signs a call: refreshes the credentials when they are near expiry
    /// and the provider answers; `Err` when they have expired.
    fn sign(&self, now: Instant) -> Result<(), Error> {
        let mut expire = self.credentials_expire.lock();
        if now + REFRESH_BUFFER >= *expire && !inside(&self.outages.credentials, now) {
            *expire = now + CREDENTIALS_LIFETIME;
            self.calls.lock().refreshes += 1;
        }
        if now >= *expire {
            self.calls.lock().expired_token += 1;
            return Err(Error::service(
                "ExpiredTokenException",
                "The security token included in the request is expired",
            ));
        }
        Ok(())
    }

    /// What the service (or the connection) does before the operation.
    async fn before(&self) -> Result<Option<Duration>, Error> {
        let latency = self.model.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match self.model.request_fault() {
            RequestFault::None => Ok(None),
            RequestFault::Internal500 => Err(Error::service("InternalFailure", "HTTP 500")),
            RequestFault::Unavailable503 => Err(Error::service("ServiceUnavailable", "HTTP 503")),
            RequestFault::Drop => Err(connection_closed()),
            RequestFault::Timeout(hold) => Err(self.time_out(hold).await),
            RequestFault::TimeoutAfterStore(hold) => Ok(Some(hold)),
        }
    }

    /// A request held for `hold`: the producer gives up at RequestTimeout.
    async fn time_out(&self, hold: Duration) -> Error {
        tokio::time::sleep(hold.min(self.request_timeout)).await;
        if hold < self.request_timeout {
            connection_closed()
        } else {
            Error::new(
                ErrorKind::Transport,
                "the request did not complete within RequestTimeout",
            )
            .with_code("RequestTimeout")
        }
    }

    async fn put(&self, stream: &str, entries: Vec<Entry>) -> Result<Vec<EntryOutcome>, Error> {
        let sent = Instant::now();
        self.calls.lock().put_records += 1;
        self.sign(Instant::now())?;
        let after_store = self.before().await?;
        let records = entries
            .into_iter()
            .map(|e| ModelRecord {
                partition_key: e.partition_key,
                explicit_hash_key: e.explicit_hash_key,
                data: e.data,
            })
            .collect();
        let outcomes = self
            .model
            .put_records(stream, records)
            .map_err(service_error)?;
        if let Some(hold) = after_store {
            // Stored, but the answer never arrives.
            return Err(self.time_out(hold).await);
        }
        let throttled = outcomes
            .iter()
            .filter(|o| matches!(o, ModelOutcome::Failed { code, .. } if code.starts_with("Provisioned")))
            .count();
        self.calls.lock().put_log.push(PutCall {
            sent,
            answered: Instant::now(),
            throttled,
        });
        Ok(outcomes
            .into_iter()
            .map(|o| match o {
                ModelOutcome::Stored {
                    shard_id,
                    sequence_number,
                } => EntryOutcome::Delivered {
                    shard_id: shard_id.into(),
                    sequence_number: sequence_number.into(),
                },
                ModelOutcome::Failed { code, message } => EntryOutcome::Failed {
                    code: code.to_owned(),
                    message,
                },
            })
            .collect())
    }

    async fn shards(&self, stream: &str) -> Result<Vec<ShardInfo>, Error> {
        *self
            .calls
            .lock()
            .list_shards
            .entry(stream.to_owned())
            .or_default() += 1;
        let result = self.list(stream).await;
        if result.is_err() {
            *self
                .calls
                .lock()
                .list_shards_failed
                .entry(stream.to_owned())
                .or_default() += 1;
        }
        result
    }

    async fn list(&self, stream: &str) -> Result<Vec<ShardInfo>, Error> {
        let now = Instant::now();
        self.sign(now)?;
        if inside(&self.outages.list_shards, now) {
            return Err(Error::service(
                "LimitExceededException",
                "Rate exceeded for ListShards",
            ));
        }
        self.before().await?;
        let shards = self.model.list_shards(stream).map_err(service_error)?;
        Ok(shards
            .into_iter()
            .map(|s| ShardInfo::new(s.shard_id, s.start, s.end, s.open))
            .collect())
    }
}

fn connection_closed() -> Error {
    Error::new(
        ErrorKind::Transport,
        "connection closed before the response",
    )
    .with_code("ConnectionError")
}

fn service_error(e: ApiError) -> Error {
    Error::service(e.kind, e.message)
}

impl Kinesis for ModelClient {
    fn list_shards<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<Vec<ShardInfo>, Error>> {
        Box::pin(self.shards(stream))
    }

    fn put_records<'a>(
        &'a self,
        stream: &'a str,
        entries: Vec<Entry>,
    ) -> BoxFuture<'a, Result<Vec<EntryOutcome>, Error>> {
        Box::pin(self.put(stream, entries))
    }

    fn describe_stream_summary<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<StreamSummary, Error>> {
        Box::pin(async move {
            let described = self
                .model
                .describe_stream_summary(stream)
                .map_err(service_error)?;
            let mut summary = StreamSummary::default();
            summary.stream_name = described.stream_name;
            summary.stream_arn = described.stream_arn;
            summary.open_shard_count = described.open_shard_count;
            summary.max_record_size = described.max_record_size_kib as usize * 1024;
            Ok(summary)
        })
    }
}

//! kpl-sim: a Kinesis-protocol server for one machine, with the service's
//! limits and fault injection.
//!
//! It speaks the Kinesis JSON 1.1 protocol over HTTP/1.1 (and HTTPS with a
//! self-signed certificate made at start), accepts any or no SigV4 signature,
//! and binds 127.0.0.1 by default. On the same port it takes CloudWatch's
//! PutMetricData in the protocol the Rust SDK speaks (see [`cloudwatch`]),
//! so a producer's metrics can be checked too.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use kpl_sim::{Faults, Sim, SimConfig};
//! let sim = Sim::start(SimConfig::default().stream("orders", 4)).await?;
//! println!("Kinesis at {}", sim.endpoint());
//! sim.set_faults(Faults { record_internal_failure: 0.1, seed: 7, ..Faults::default() });
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod admin;
pub mod api;
pub mod clock;
pub mod cloudwatch;
pub mod config;
mod entries;
pub mod faults;
mod keys;
pub mod limits;
mod model;
pub mod ondemand;
pub mod protocol;
mod puts;
mod reads;
pub mod registry;
pub mod server;
pub mod state;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use api::SimStats;
pub use config::{
    DEFAULT_RECORD_KIB, Faults, Limits, MAX_RECORD_KIB, MIB, OnDemand, Retention, SimConfig,
};
pub use faults::RequestFault;
pub use model::{Model, ModelOutcome, ModelRecord, ModelShard, ModelSummary};
pub use protocol::ApiError;
pub use state::{StoredRecord, StoredShard, StreamSpec};

/// A running simulator. Dropping it without [`Sim::shutdown`] signals the
/// server tasks to stop but does not wait for them.
#[derive(Debug)]
pub struct Sim {
    model: Model,
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    ca_pem: Option<String>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Sim {
    /// Bind, create the configured streams and start serving.
    pub async fn start(config: SimConfig) -> std::io::Result<Sim> {
        let model = Model::new(&config)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.message))?;
        let shared = model.shared.clone();
        let (tx, rx) = watch::channel(false);
        let listener = TcpListener::bind((config.host, config.port)).await?;
        let addr = listener.local_addr()?;
        let mut tasks = vec![tokio::spawn(server::accept_loop(
            listener,
            None,
            shared.clone(),
            rx.clone(),
        ))];
        tasks.push(tokio::spawn(ondemand::run(
            shared.clone(),
            config.on_demand.clone(),
            rx.clone(),
        )));
        let (mut tls_addr, mut ca_pem) = (None, None);
        if config.tls {
            let (acceptor, pem) = server::make_tls()?;
            let l = TcpListener::bind((config.host, config.tls_port)).await?;
            tls_addr = Some(l.local_addr()?);
            ca_pem = Some(pem);
            tasks.push(tokio::spawn(server::accept_loop(
                l,
                Some(acceptor),
                shared.clone(),
                rx,
            )));
        }
        tracing::info!(%addr, ?tls_addr, "kpl-sim listening");
        Ok(Sim {
            model,
            addr,
            tls_addr,
            ca_pem,
            shutdown: tx,
            tasks,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The HTTP listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT2` when TLS is on.
    pub fn tls_endpoint(&self) -> Option<String> {
        self.tls_addr.map(|a| format!("https://{a}"))
    }

    /// The HTTPS listening address when TLS is on.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// PEM of the self-signed certificate (trust it as a CA) when TLS is on.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// The simulator's state as an in-process [`Model`] (the same streams
    /// the server serves).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Replace the fault injection (reseeds the fault RNG).
    pub fn set_faults(&self, f: Faults) {
        self.model.set_faults(f);
    }

    /// The current fault injection.
    pub fn faults(&self) -> Faults {
        self.model.faults()
    }

    /// Replace the limits. Per-shard buckets keep their current level.
    pub fn set_limits(&self, l: Limits) {
        self.model.set_limits(l);
    }

    /// The current limits.
    pub fn limits(&self) -> Limits {
        self.model.limits()
    }

    /// Counters so far.
    pub fn stats(&self) -> SimStats {
        self.model.stats()
    }

    /// The CloudWatch PutMetricData requests received, as
    /// `GET /_sim/cloudwatch` shows them: `{"requests": [..], "rejected": n, "failed": n}`.
    pub fn cloudwatch(&self) -> serde_json::Value {
        self.model.shared.cloudwatch.snapshot()
    }

    /// Every shard of `stream` (open and closed) with its retained records;
    /// `None` if there is no such stream.
    pub fn records(&self, stream: &str) -> Option<Vec<StoredShard>> {
        self.model.records(stream)
    }

    /// Create a provisioned stream with the default 1 MiB record limit (ACTIVE at once).
    pub fn create_stream(&self, name: &str, shards: u32) -> Result<(), ApiError> {
        self.model.create_stream(name, shards)
    }

    /// Create a stream of any mode and record size limit (ACTIVE at once).
    pub fn create_stream_with(&self, name: &str, spec: StreamSpec) -> Result<(), ApiError> {
        self.model.create_stream_with(name, spec)
    }

    /// Set a stream's `MaxRecordSizeInKiB` (as UpdateMaxRecordSize does).
    pub fn set_max_record_size(&self, stream: &str, kib: u32) -> Result<(), ApiError> {
        self.model.set_max_record_size(stream, kib)
    }

    /// The ARN of a stream, if there is one of that name.
    pub fn stream_arn(&self, stream: &str) -> Option<String> {
        self.model.stream_arn(stream)
    }

    /// Open shards of a stream, if there is one of that name.
    pub fn open_shard_count(&self, stream: &str) -> Option<usize> {
        self.model.open_shard_count(stream)
    }

    /// Delete a stream.
    pub fn delete_stream(&self, name: &str) -> Result<(), ApiError> {
        self.model.delete_stream(name)
    }

    /// Names of all streams.
    pub fn stream_names(&self) -> Vec<String> {
        self.model.stream_names()
    }

    /// Stop accepting, end held requests, let in-flight ones finish (bounded),
    /// and return once the server tasks are gone.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Start a simulator, print its endpoints, and serve until Ctrl-C.
pub async fn run_until_ctrl_c(config: SimConfig) -> std::io::Result<()> {
    let sim = Sim::start(config).await?;
    println!("kpl-sim listening on {}", sim.endpoint());
    if let Some(tls) = sim.tls_endpoint() {
        println!("kpl-sim TLS on {tls}");
    }
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}

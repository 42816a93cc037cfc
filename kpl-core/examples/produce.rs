//! Produces 10,000 records and prints where they went.
//!
//! ```sh
//! cargo run -p kpl-core --example produce
//! ```
//!
//! With no settings it starts a simulated 2-shard stream in this process
//! (kpl-sim, with the service's per-shard limits). Against a real stream
//! (credentials and region from the usual AWS chain):
//!
//! ```sh
//! KPL_STREAM=mine AWS_REGION=eu-west-1 cargo run -p kpl-core --example produce
//! ```
//!
//! `KPL_ENDPOINT` points it at another Kinesis endpoint (e.g. `kpl sim`).
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kpl_core::{Config, Producer, UserRecord};
use kpl_sim::{Sim, SimConfig};

const RECORDS: usize = 10_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sim = None;
    let config = match std::env::var("KPL_STREAM") {
        Ok(stream) => {
            let mut builder = Config::builder().stream(stream);
            if let Ok(endpoint) = std::env::var("KPL_ENDPOINT") {
                builder = builder.endpoint(endpoint);
            }
            builder
        }
        Err(_) => {
            let started = Sim::start(SimConfig::default().stream("example", 2)).await?;
            let builder = Config::builder()
                .stream("example")
                .region("us-east-1")
                .endpoint(started.endpoint())
                .credentials("AKIDLOCALTEST", "local-test-secret");
            println!(
                "simulated stream `example` (2 shards) at {}",
                started.endpoint()
            );
            sim = Some(started);
            builder
        }
    }
    .record_max_buffered_time(Duration::from_millis(50))
    .build()?;

    let producer = Producer::new(config).await?;
    let start = Instant::now();
    let records = (0..RECORDS).map(|i| {
        UserRecord::new(
            format!("sensor-{}", i % 100),
            format!("{{\"reading\": {i}}}"),
        )
    });
    let mut per_shard = BTreeMap::<String, usize>::new();
    for handle in producer.put_many(records).await {
        let result = handle?.await?;
        *per_shard.entry(result.shard_id().to_owned()).or_default() += 1;
    }
    producer.shutdown(Duration::from_secs(10)).await?;

    let metrics = producer.metrics();
    println!(
        "{RECORDS} records in {:.2?}: {} Kinesis records in {} PutRecords requests",
        start.elapsed(),
        metrics.kinesis_records_put,
        metrics.put_records_requests,
    );
    for (shard, count) in per_shard {
        println!("  {shard}: {count} records");
    }
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    Ok(())
}

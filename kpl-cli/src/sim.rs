//! `kpl sim`: the Kinesis simulator as a server.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use kpl_sim::{Faults, MIB, Retention, Sim, SimConfig};

/// Flags of `kpl sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// HTTP port (0: any free port).
    #[arg(long, default_value_t = 4567)]
    port: u16,
    /// Address to bind; loopback unless you mean otherwise.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Also serve HTTPS with a self-signed certificate.
    #[arg(long)]
    tls: bool,
    /// HTTPS port (0: any free port).
    #[arg(long, default_value_t = 4568)]
    tls_port: u16,
    /// Write the certificate (PEM) here, for clients to trust.
    #[arg(long, value_name = "FILE")]
    ca_out: Option<PathBuf>,
    /// Create a stream at start: NAME:SHARDS (repeatable).
    #[arg(long = "stream", value_name = "NAME:SHARDS", value_parser = parse_stream)]
    streams: Vec<(String, u32)>,
    /// Create an on-demand stream at start (4 shards, scales out by itself; repeatable).
    #[arg(long = "on-demand-stream", value_name = "NAME")]
    on_demand: Vec<String>,
    /// On-demand scaling window in ms (default one minute; see kpl_sim::OnDemand).
    #[arg(long, value_name = "MS")]
    on_demand_window_ms: Option<u64>,
    /// Lift the per-shard throughput limits (for benchmarks).
    #[arg(long)]
    unlimited: bool,
    /// Per-shard records/s limit.
    #[arg(long, default_value_t = 1000)]
    shard_records_per_sec: u32,
    /// Per-shard bytes/s limit.
    #[arg(long, default_value_t = 1_048_576)]
    shard_bytes_per_sec: u64,
    /// Fraction of records failing with InternalFailure.
    #[arg(long, default_value_t = 0.0)]
    fault_record_internal_failure: f64,
    /// Fraction of requests answered 500.
    #[arg(long, default_value_t = 0.0)]
    fault_500: f64,
    /// Fraction of requests answered 503.
    #[arg(long, default_value_t = 0.0)]
    fault_503: f64,
    /// Fraction of connections dropped mid-request.
    #[arg(long, default_value_t = 0.0)]
    fault_drop_connection: f64,
    /// Fraction of requests never answered.
    #[arg(long, default_value_t = 0.0)]
    fault_timeout: f64,
    /// Latency added to every request, ms.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Random latency added on top, up to this many ms.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Seed of the fault injection.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Kinesis records a shard keeps at most; the oldest go first (0: no cap).
    #[arg(long, default_value_t = 100_000)]
    retain_records_per_shard: usize,
    /// MiB of data and partition keys a shard keeps at most; the oldest
    /// records go first (0: no cap). One shard taking a million 100-byte
    /// records aggregated needs about 115.
    #[arg(long, default_value_t = 64)]
    retain_mib_per_shard: usize,
}

fn parse_stream(text: &str) -> Result<(String, u32), String> {
    let (name, shards) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not NAME:SHARDS"))?;
    let shards = shards
        .parse::<u32>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{shards:?} is not a shard count of at least 1"))?;
    Ok((name.to_owned(), shards))
}

pub async fn run(args: SimArgs) -> Result<(), String> {
    let mut config = SimConfig::default()
        .host(args.host)
        .port(args.port)
        .tls(args.tls)
        .tls_port(args.tls_port);
    config.limits.shard_records_per_sec = args.shard_records_per_sec;
    config.limits.shard_bytes_per_sec = args.shard_bytes_per_sec;
    config.limits.throughput_enabled = !args.unlimited;
    let cap = |n: usize| (n > 0).then_some(n);
    config = config.retention(Retention {
        max_records_per_shard: cap(args.retain_records_per_shard),
        max_bytes_per_shard: cap(args.retain_mib_per_shard).map(|mib| mib.saturating_mul(MIB)),
    });
    config = config.faults(Faults {
        seed: args.seed,
        record_internal_failure: args.fault_record_internal_failure,
        request_500: args.fault_500,
        request_503: args.fault_503,
        latency: Duration::from_millis(args.latency_ms),
        latency_jitter: Duration::from_millis(args.jitter_ms),
        drop_connection: args.fault_drop_connection,
        timeout: args.fault_timeout,
        ..Faults::none()
    });
    for (name, shards) in &args.streams {
        config = config.stream(name, *shards);
    }
    for name in &args.on_demand {
        let shards = config.on_demand.initial_shards;
        config = config.stream_with(
            name,
            kpl_sim::StreamSpec {
                on_demand: true,
                ..kpl_sim::StreamSpec::provisioned(shards)
            },
        );
    }
    if let Some(secs) = args.on_demand_window_ms {
        config.on_demand.window = Duration::from_millis(secs);
    }
    let sim = Sim::start(config)
        .await
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    println!("kpl sim listening on {}", sim.endpoint());
    if let Some(tls) = sim.tls_endpoint() {
        println!("kpl sim listening on {tls} (self-signed certificate)");
    }
    if let (Some(path), Some(pem)) = (&args.ca_out, sim.ca_pem()) {
        std::fs::write(path, pem).map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("certificate written to {}", path.display());
    }
    for (name, shards) in &args.streams {
        println!("stream {name}: {shards} shard(s)");
    }
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("waiting for Ctrl-C: {e}"))?;
    sim.shutdown().await;
    Ok(())
}

//! `kpl`: the kpl-rs command line.
//!
//! `kpl agg` / `kpl deagg` convert between user records and Kinesis records
//! in the KPL aggregation format; `kpl perf` measures the producer, `kpl
//! put` is a console producer, and `kpl sim` runs the local Kinesis
//! simulator.

mod agg;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kpl",
    version,
    about = "kpl-rs: a Kinesis producer with KPL aggregation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Aggregate JSON-line user records from stdin into Kinesis records.
    Agg(agg::AggArgs),
    /// Deaggregate Kinesis records (get-records JSON or JSON lines) from stdin.
    Deagg(agg::DeaggArgs),
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Agg(args) => agg::run_agg(args),
        Command::Deagg(args) => agg::run_deagg(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("kpl: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, so stdout stays clean for data; `RUST_LOG` sets the level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

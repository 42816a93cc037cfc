//! `kpl`: the kpl-rs command line.
//!
//! `kpl agg` / `kpl deagg` convert between user records and Kinesis records
//! in the KPL aggregation format; `kpl perf` measures the producer, `kpl
//! put` is a console producer, and `kpl sim` runs the local Kinesis
//! simulator.

mod agg;
mod buffer_memory;
mod perf;
mod producer_args;
mod put;
mod sim;
mod spool;

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
    /// Measure the producer (the quickstart): put records, report, verify.
    Perf(perf::PerfArgs),
    /// Console producer: each line of stdin becomes a record.
    Put(put::PutArgs),
    /// Run the Kinesis simulator on loopback.
    Sim(sim::SimArgs),
    /// Show what a spool directory holds (records pending, damage, lock).
    Spool(spool::SpoolArgs),
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Agg(args) => agg::run_agg(args),
        Command::Deagg(args) => agg::run_deagg(args),
        Command::Perf(args) => block_on(perf::run(args)).map(exit_status),
        Command::Put(args) => block_on(put::run(args)).map(exit_status),
        Command::Sim(args) => block_on(sim::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Spool(args) => spool::run(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("kpl: {message}");
            ExitCode::FAILURE
        }
    }
}

fn block_on<F>(future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    // Run the command on a worker, not on this thread: a paced `kpl perf`'s
    // timer wake, its put and the pipeline's turn then stay on one worker
    // instead of handing off between threads at every tick.
    match runtime.block_on(async { tokio::spawn(future).await }) {
        Ok(output) => output,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn exit_status(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Logs go to stderr, so stdout stays clean for data; `RUST_LOG` sets the level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

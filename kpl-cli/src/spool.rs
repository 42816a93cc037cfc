//! `kpl spool DIR`: what a spool directory holds, without changing it.

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct SpoolArgs {
    /// The spool directory (a producer's SpoolDirectory).
    pub dir: PathBuf,
}

/// Prints the report; fails if the directory cannot be read.
pub fn run(args: SpoolArgs) -> Result<(), String> {
    let report = kpl_core::spool::inspect(&args.dir).map_err(|e| e.to_string())?;
    println!("spool {}", args.dir.display());
    println!("{report}");
    Ok(())
}

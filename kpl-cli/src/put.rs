//! `kpl put`: a console producer. Each line of stdin becomes a record;
//! each result is reported on stdout, each failure on stderr.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use clap::Args;
use kpl_core::{Producer, UserRecord};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::producer_args::ProducerArgs;

/// Flags of `kpl put`.
#[derive(Args, Debug)]
pub struct PutArgs {
    /// Stream to put to.
    #[arg(long)]
    stream: String,
    /// Partition key for every record.
    #[arg(long, group = "key")]
    partition_key: Option<String>,
    /// Each line is a JSON object; this field's value is its partition key.
    #[arg(long, group = "key", value_name = "FIELD")]
    key_from_field: Option<String>,
    /// A random partition key per record.
    #[arg(long, group = "key")]
    random_key: bool,
    /// Print nothing for delivered records.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    producer: ProducerArgs,
}

enum KeyRule {
    Fixed(String),
    Field(String),
    Random,
}

impl KeyRule {
    fn key_for(&self, line: &str) -> Result<String, String> {
        match self {
            KeyRule::Fixed(k) => Ok(k.clone()),
            KeyRule::Random => Ok(format!("{:032x}", rand::random::<u128>())),
            KeyRule::Field(field) => {
                let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                    format!("not a JSON object ({e}), so it has no field {field:?}")
                })?;
                match value.get(field) {
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                        Ok(v.to_string())
                    }
                    Some(_) => Err(format!(
                        "field {field:?} is not a string, number or boolean"
                    )),
                    None => Err(format!("has no field {field:?}")),
                }
            }
        }
    }
}

pub async fn run(args: PutArgs) -> Result<bool, String> {
    let rule = match (&args.partition_key, &args.key_from_field, args.random_key) {
        (Some(k), _, _) => KeyRule::Fixed(k.clone()),
        (_, Some(f), _) => KeyRule::Field(f.clone()),
        (_, _, true) => KeyRule::Random,
        _ => return Err(
            "say how to key records: --partition-key KEY, --key-from-field FIELD or --random-key"
                .into(),
        ),
    };
    let config = args
        .producer
        .builder(&args.stream)?
        .build()
        .map_err(|e| e.to_string())?;
    let producer = Producer::new(config).await.map_err(|e| e.to_string())?;
    let failed = Arc::new(AtomicU64::new(0));
    let quiet = args.quiet;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut number = 0u64;
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| format!("reading stdin: {e}"))?
    {
        number += 1;
        let key = match rule.key_for(&line) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("line {number}: {e}");
                failed.fetch_add(1, Relaxed);
                continue;
            }
        };
        let failed_cb = failed.clone();
        let put = producer
            .put_with(
                UserRecord::new(key, line.into_bytes()),
                move |result| match result {
                    Ok(r) => {
                        if !quiet {
                            let mut out = std::io::stdout().lock();
                            let _ = writeln!(
                                out,
                                "line {number}: {} {} {}",
                                r.shard_id(),
                                r.sequence_number(),
                                r.sub_sequence_number()
                            );
                        }
                    }
                    Err(e) => {
                        failed_cb.fetch_add(1, Relaxed);
                        eprintln!("line {number}: {e} (after {} attempts)", e.attempts().len());
                    }
                },
            )
            .await;
        if let Err(e) = put {
            eprintln!("line {number}: {e}");
            failed.fetch_add(1, Relaxed);
        }
    }
    producer
        .shutdown(Duration::from_secs(60))
        .await
        .map_err(|e| e.to_string())?;
    Ok(failed.load(Relaxed) == 0)
}

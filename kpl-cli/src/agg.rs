//! `kpl agg` and `kpl deagg`: the aggregation format on the command line.

use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use clap::Args;
use kpl_core::UserRecord;
use kpl_core::aggregation::{Aggregator, Deaggregator, KinesisRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Flags of `kpl agg`.
#[derive(Args)]
pub struct AggArgs {
    /// Largest aggregate in bytes, magic and MD5 included (AggregationMaxSize).
    #[arg(long, default_value_t = 51_200, value_parser = clap::value_parser!(u64).range(64..=10_485_760))]
    max_size: u64,
    /// Most user records in one aggregate (AggregationMaxCount).
    #[arg(long, default_value_t = u32::MAX as u64, value_parser = clap::value_parser!(u64).range(1..))]
    max_count: u64,
    /// Largest user record, partition key plus data (MaxUserRecordSize).
    #[arg(long, default_value_t = 1_048_576, value_parser = clap::value_parser!(u64).range(64..=10_485_760))]
    max_record_size: u64,
}

/// Flags of `kpl deagg`.
#[derive(Args)]
pub struct DeaggArgs {
    /// Reject an aggregate holding a record whose hash key lies outside this
    /// shard range, as the KCL does: `START:END`, decimal, inclusive.
    #[arg(long, value_name = "START:END", value_parser = parse_range)]
    shard_range: Option<(u128, u128)>,
    /// A record with the aggregation magic but a bad MD5 or protobuf is an
    /// error (by default it is passed through raw, as the KCL does).
    #[arg(long)]
    strict: bool,
}

fn parse_range(text: &str) -> Result<(u128, u128), String> {
    let (start, end) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not START:END"))?;
    let parse = |s: &str| {
        s.parse::<u128>()
            .map_err(|_| format!("{s:?} is not a hash key (a decimal from 0 to 2^128-1)"))
    };
    let (start, end) = (parse(start)?, parse(end)?);
    if start > end {
        return Err(format!("range start {start} is above its end {end}"));
    }
    Ok((start, end))
}

/// A user record on `kpl agg`'s input.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct InputUserRecord {
    partition_key: String,
    data: String,
    explicit_hash_key: Option<String>,
}

/// A Kinesis record, as PutRecords entries and `kpl agg`'s output spell it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct OutputKinesisRecord<'a> {
    partition_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    explicit_hash_key: Option<&'a str>,
    data: String,
}

/// A Kinesis record on `kpl deagg`'s input (get-records shape).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InputKinesisRecord {
    partition_key: String,
    data: String,
    explicit_hash_key: Option<String>,
    sequence_number: Option<String>,
}

/// A user record on `kpl deagg`'s output.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct OutputUserRecord<'a> {
    partition_key: &'a str,
    explicit_hash_key: Option<&'a str>,
    data: String,
    sequence_number: Option<&'a str>,
    sub_sequence_number: u64,
}

/// Runs `kpl agg`: bad lines are reported and skipped; the exit status says
/// whether any were.
pub fn run_agg(args: AggArgs) -> Result<ExitCode, String> {
    let max_count = usize::try_from(args.max_count).unwrap_or(usize::MAX);
    let mut aggregator = Aggregator::new(args.max_size as usize, max_count);
    let mut out = BufWriter::new(io::stdout().lock());
    let mut failures = 0usize;
    for (number, line) in io::stdin().lock().lines().enumerate() {
        let line = line.map_err(|e| format!("reading stdin: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = match parse_user_record(&line, args.max_record_size as usize) {
            Ok(record) => record,
            Err(message) => {
                eprintln!("kpl agg: line {}: {message}", number + 1);
                failures += 1;
                continue;
            }
        };
        if let Err(record) = aggregator.add(record) {
            write_kinesis_record(&mut out, aggregator.finish())?;
            aggregator
                .add(record)
                .map_err(|_| "an empty aggregator refused a record".to_owned())?;
        }
        if aggregator.is_full() {
            write_kinesis_record(&mut out, aggregator.finish())?;
        }
    }
    write_kinesis_record(&mut out, aggregator.finish())?;
    out.flush().map_err(|e| format!("writing stdout: {e}"))?;
    Ok(exit_code(failures))
}

fn parse_user_record(line: &str, max_record_size: usize) -> Result<UserRecord, String> {
    let input: InputUserRecord = serde_json::from_str(line).map_err(|e| {
        format!(
            "not a user record ({e}); expected {{\"PartitionKey\": \"...\", \"Data\": \"<base64>\", \
             \"ExplicitHashKey\": \"<decimal>\"}} with ExplicitHashKey optional"
        )
    })?;
    let data = BASE64
        .decode(input.data.as_bytes())
        .map_err(|e| format!("Data is not valid base64: {e}"))?;
    let mut record = UserRecord::new(input.partition_key, data);
    if let Some(ehk) = input.explicit_hash_key {
        record = record.with_explicit_hash_key(ehk);
    }
    record
        .validate(max_record_size)
        .map_err(|e| e.message().to_owned())?;
    Ok(record)
}

fn write_kinesis_record(out: &mut impl Write, record: Option<KinesisRecord>) -> Result<(), String> {
    let Some(record) = record else { return Ok(()) };
    let line = OutputKinesisRecord {
        partition_key: &record.partition_key,
        explicit_hash_key: record.explicit_hash_key.as_deref(),
        data: BASE64.encode(&record.data),
    };
    serde_json::to_writer(&mut *out, &line).map_err(|e| format!("writing stdout: {e}"))?;
    out.write_all(b"\n")
        .map_err(|e| format!("writing stdout: {e}"))
}

/// Runs `kpl deagg`: every good record is printed; each bad one is named on
/// stderr and makes the exit status non-zero.
pub fn run_deagg(args: DeaggArgs) -> Result<ExitCode, String> {
    let mut deaggregator = Deaggregator::new().strict(args.strict);
    if let Some((start, end)) = args.shard_range {
        deaggregator = deaggregator.shard_range(start, end);
    }
    let mut out = BufWriter::new(io::stdout().lock());
    let mut failures = 0usize;
    let mut index = 0usize;
    let values = serde_json::Deserializer::from_reader(io::stdin().lock()).into_iter::<Value>();
    for value in values {
        let value = match value {
            Ok(value) => value,
            Err(e) => {
                // The rest of the stream cannot be trusted to be aligned.
                eprintln!("kpl deagg: input is not JSON after record {index}: {e}");
                failures += 1;
                break;
            }
        };
        let records = match value {
            Value::Object(mut object) if object.contains_key("Records") => {
                match object.remove("Records") {
                    Some(Value::Array(records)) => records,
                    _ => {
                        eprintln!("kpl deagg: \"Records\" is not an array");
                        failures += 1;
                        continue;
                    }
                }
            }
            other => vec![other],
        };
        for record in records {
            index += 1;
            if let Err(message) = deaggregate_one(&deaggregator, record, &mut out) {
                eprintln!("kpl deagg: record {index}: {message}");
                failures += 1;
            }
        }
    }
    out.flush().map_err(|e| format!("writing stdout: {e}"))?;
    Ok(exit_code(failures))
}

fn deaggregate_one(
    deaggregator: &Deaggregator,
    value: Value,
    out: &mut impl Write,
) -> Result<(), String> {
    let input: InputKinesisRecord = serde_json::from_value(value).map_err(|e| {
        format!(
            "not a Kinesis record ({e}); expected {{\"PartitionKey\": \"...\", \"Data\": \
             \"<base64>\", \"SequenceNumber\": \"...\"}} with SequenceNumber optional"
        )
    })?;
    let name = match &input.sequence_number {
        Some(seq) => format!("sequence number {seq}"),
        None => format!("partition key {:?}", input.partition_key),
    };
    let data = BASE64
        .decode(input.data.as_bytes())
        .map_err(|e| format!("{name}: Data is not valid base64: {e}"))?;
    let records = deaggregator
        .deaggregate(
            &input.partition_key,
            input.explicit_hash_key.as_deref(),
            Bytes::from(data),
        )
        .map_err(|e| format!("{name}: {e}"))?;
    for record in &records {
        let line = OutputUserRecord {
            partition_key: &record.partition_key,
            explicit_hash_key: record.explicit_hash_key.as_deref(),
            data: BASE64.encode(&record.data),
            sequence_number: input.sequence_number.as_deref(),
            sub_sequence_number: record.sub_sequence_number,
        };
        serde_json::to_writer(&mut *out, &line).map_err(|e| format!("writing stdout: {e}"))?;
        out.write_all(b"\n")
            .map_err(|e| format!("writing stdout: {e}"))?;
    }
    Ok(())
}

fn exit_code(failures: usize) -> ExitCode {
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

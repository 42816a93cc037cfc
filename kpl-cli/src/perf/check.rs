//! `--verify`: reading the stream back and checking every acknowledged record.

use super::report::Results;
use super::{PAYLOAD_HEADER, PerfArgs, partition_key, payload};

/// Reads the stream back: every record of this run present once with its
/// content, at the shard, sequence number and sub-sequence number its
/// result named, and no aggregate outside its shard (the reader checks
/// that with the KCL's rule). Also counts the records out of put order.
pub(super) async fn check_stream(
    client: &aws_sdk_kinesis::Client,
    args: &PerfArgs,
    run_id: u32,
    results: &Results,
) -> Result<(bool, u64), String> {
    let read = kpl_readback::read_stream(client, &args.stream).await?;
    let prefix = format!("{run_id:08x}");
    let index_of = |r: &kpl_readback::ReadRecord| {
        std::str::from_utf8(&r.data[..r.data.len().min(PAYLOAD_HEADER)])
            .ok()
            .filter(|h| h.starts_with(&prefix))
            .and_then(|h| u64::from_str_radix(&h[8..], 16).ok())
    };
    let mut seen = vec![0u8; args.records as usize];
    let mut problems = Vec::new();
    for r in &read {
        let Some(index) = index_of(r) else {
            continue; // another run's record
        };
        let i = index as usize;
        if i >= seen.len() {
            problems.push(format!("record index {index} is out of range"));
            continue;
        }
        seen[i] = seen[i].saturating_add(1);
        if r.data != payload(run_id, index, args.record_size)
            || r.partition_key != partition_key(index, args.partition_keys)
        {
            problems.push(format!("record {index} came back altered"));
        }
        if let Some((shard, seq, sub)) = results.positions[i] {
            let here = (
                results.shard_ids.get(&r.shard_id),
                results.sequence_numbers.get(&r.sequence_number),
                r.sub_sequence_number as u32,
            );
            if seen[i] == 1 && here != (Some(shard), Some(seq), sub) {
                problems.push(format!("record {index} is not where its result says"));
            }
        }
    }
    let delivered = results.positions.iter().filter(|p| p.is_some()).count();
    let missing = seen
        .iter()
        .zip(&results.positions)
        .filter(|(n, p)| **n == 0 && p.is_some())
        .count();
    let duplicated = seen.iter().filter(|&&n| n > 1).count();
    let ok = missing == 0 && problems.is_empty();
    if !args.json {
        eprintln!(
            "verify: {} of {} acknowledged records found, {} missing, {} written more than once (at-least-once retries), {} other problems: {}",
            delivered - missing,
            delivered,
            missing,
            duplicated,
            problems.len(),
            if ok { "OK" } else { "FAILED" }
        );
        for p in problems.iter().take(10) {
            eprintln!("  {p}");
        }
    }
    Ok((ok, kpl_readback::out_of_order(&read, index_of)))
}

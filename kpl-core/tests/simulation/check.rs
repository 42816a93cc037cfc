//! The invariants every run must keep, checked after it.

use std::collections::HashMap;
use std::time::Duration;

use kpl_core::aggregation::{DeaggregatedRecord, Deaggregator};
use kpl_core::{ErrorKind, Producer};
use kpl_sim::Model;

use crate::client::ModelClient;
use crate::plan::Plan;
use crate::run::{Ledger, Settled, payload};

/// The pipeline's size, sampled while the run went on.
#[derive(Debug, Default)]
pub struct Samples {
    pub max_outstanding: u64,
    pub max_timers: u64,
    pub max_streams: u64,
    /// Timers pending once everything was resolved and every deadline,
    /// backoff and refresh interval of the run had passed.
    pub timers_at_rest: u64,
}

impl Samples {
    pub fn take(&mut self, producer: &Producer) {
        let stats = producer.pipeline_stats();
        self.max_outstanding = self.max_outstanding.max(producer.outstanding());
        self.max_timers = self.max_timers.max(stats.timers);
        self.max_streams = self.max_streams.max(stats.streams);
    }
}

pub struct Run<'a> {
    pub plan: &'a Plan,
    pub model: &'a Model,
    pub client: &'a ModelClient,
    pub ledger: &'a Ledger,
    pub samples: Samples,
    pub deleted: Vec<usize>,
    pub elapsed: Duration,
    pub flushed: Result<(), String>,
    pub shutdown: Result<(), String>,
    pub outstanding: u64,
}

/// What a run showed.
#[derive(Debug, Default)]
pub struct Report {
    pub records: u64,
    pub delivered: u64,
    pub duplicates: u64,
    /// First occurrences out of put order per key (`order`).
    pub inversions: u64,
    pub simulated: Duration,
    pub violations: Vec<String>,
}

pub fn check(run: Run<'_>) -> Report {
    let mut report = Report {
        simulated: run.elapsed,
        ..Report::default()
    };
    let v = &mut report.violations;
    if let Err(e) = &run.flushed {
        v.push(format!("flush failed: {e}"));
    }
    if let Err(e) = &run.shutdown {
        v.push(format!("shutdown failed: {e}"));
    }
    if run.outstanding != 0 {
        v.push(format!(
            "{} records outstanding after shutdown",
            run.outstanding
        ));
    }
    let late = *run.ledger.late.lock();
    if late > 0 {
        v.push(format!("{late} results came after shutdown returned"));
    }
    check_bounds(&run, v);
    check_list_shards(&run, v);
    check_results(&run, &mut report);
    report
}

fn check_bounds(run: &Run<'_>, v: &mut Vec<String>) {
    let s = &run.samples;
    if s.max_outstanding > run.plan.max_buffered_records as u64 {
        v.push(format!(
            "{} records outstanding, over MaxBufferedRecords {}",
            s.max_outstanding, run.plan.max_buffered_records
        ));
    }
    // Timers are never cancelled, only skipped when stale: while records
    // flow they grow with the traffic, but at rest only each stream's one
    // map timer may be left.
    let rest_bound = 2 * run.plan.streams.len() as u64 + 2;
    if s.timers_at_rest > rest_bound {
        v.push(format!(
            "{} timers pending at rest, over {rest_bound} (at most {} while records flowed)",
            s.timers_at_rest, s.max_timers
        ));
    }
    let stream_bound = run.plan.streams.len() as u64 + 1;
    if s.max_streams > stream_bound {
        v.push(format!(
            "{} streams in the table, over {stream_bound}",
            s.max_streams
        ));
    }
}

/// ListShards per stream: one per refresh interval, one per (re)entry into
/// the table, a few per reshard, one per failure.
fn check_list_shards(run: &Run<'_>, v: &mut Vec<String>) {
    let calls = run.client.calls.lock();
    let idle = Duration::from_secs(600);
    for (i, (name, _)) in run.plan.streams.iter().enumerate() {
        let made = calls.list_shards.get(name).copied().unwrap_or(0);
        let failed = calls.list_shards_failed.get(name).copied().unwrap_or(0);
        let refreshes = run.elapsed.as_secs() / run.plan.refresh.as_secs().max(1) + 1;
        let mut entries = 0;
        let mut last: Option<Duration> = None;
        for b in run.plan.bursts.iter().filter(|b| b.stream == Some(i)) {
            if last.is_none_or(|l| b.at.saturating_sub(l) >= idle) || run.deleted.contains(&i) {
                entries += 1;
            }
            last = Some(b.at);
        }
        let reshards = run.plan.events.len() as u64;
        let allowed = refreshes + 2 * entries + 4 * reshards + 2 * failed + 2;
        if made > allowed {
            v.push(format!(
                "stream {name}: {made} ListShards calls in {:?} (allowed {allowed}: refresh every {:?}, \
                 {entries} entries, {reshards} reshards, {failed} failures)",
                run.elapsed, run.plan.refresh
            ));
        }
    }
}

fn check_results(run: &Run<'_>, report: &mut Report) {
    let records = run.ledger.records.lock();
    report.records = records.len() as u64;
    let stored = stored_records(run);
    let mut seen: HashMap<u64, u32> = HashMap::new();
    for (stream, shards) in &stored {
        if run.deleted.contains(stream) {
            continue;
        }
        read_like_the_kcl(shards, &mut seen);
    }
    let v = &mut report.violations;
    let mut errors: HashMap<String, u64> = HashMap::new();
    for (id, (stream, results)) in records.iter().enumerate() {
        let id = id as u64;
        if results.len() != 1 {
            v.push(format!(
                "record {id} got {} results: {results:?}",
                results.len()
            ));
            continue;
        }
        match &results[0] {
            Settled::Delivered {
                shard_id,
                sequence_number,
                sub_sequence_number,
            } => {
                report.delivered += 1;
                let Some(s) = *stream else {
                    v.push(format!("record {id} to a missing stream was acked"));
                    continue;
                };
                if run.deleted.contains(&s) {
                    continue;
                }
                let at = (shard_id.to_string(), sequence_number.to_string());
                check_position(id, s, &stored, &at, *sub_sequence_number, run.plan, v);
                if !seen.contains_key(&id) {
                    v.push(format!(
                        "record {id} was acked but a KCL reader does not see it"
                    ));
                }
            }
            Settled::Failed(kind, code) => {
                let what = format!(
                    "{kind}{}",
                    code.as_deref().map(|c| format!("/{c}")).unwrap_or_default()
                );
                *errors.entry(what).or_default() += 1;
                let expected = matches!(kind, ErrorKind::Expired | ErrorKind::BufferFull)
                    || code.as_deref() == Some("ResourceNotFoundException");
                if !expected {
                    v.push(format!("record {id} failed unexpectedly: {kind} {code:?}"));
                }
            }
        }
    }
    for (stream, shards) in &stored {
        if !run.deleted.contains(stream) {
            report.inversions += crate::order::inversions(shards);
        }
    }
    if run.plan.strict_ordering && report.inversions > 0 {
        v.push(format!(
            "{} records out of put order for their key with StrictOrdering",
            report.inversions
        ));
    }
    report.duplicates = seen.values().map(|&n| u64::from(n.saturating_sub(1))).sum();
    if report.duplicates > 0 && run.plan.faults.timeout_after_store == 0.0 {
        v.push(format!(
            "{} duplicates without a fault that stores and loses the answer",
            report.duplicates
        ));
    }
    if !v.is_empty() {
        v.push(format!("errors by kind: {errors:?}"));
    }
}

/// Every stored record per stream: (shard ranges and records).
fn stored_records(run: &Run<'_>) -> HashMap<usize, Vec<kpl_sim::StoredShard>> {
    (0..run.plan.streams.len())
        .filter_map(|i| run.model.records(&run.plan.streams[i].0).map(|s| (i, s)))
        .collect()
}

/// The record ids a KCL reader sees, counted (aggregates outside their
/// shard's range dropped whole, as the KCL does).
fn read_like_the_kcl(shards: &[kpl_sim::StoredShard], seen: &mut HashMap<u64, u32>) {
    for shard in shards {
        for u in kcl_records(shard) {
            *seen.entry(id_of(&u.data)).or_default() += 1;
        }
    }
}

/// The user records a KCL reader gets from one shard, in stream order.
pub fn kcl_records(shard: &kpl_sim::StoredShard) -> Vec<DeaggregatedRecord> {
    let reader = Deaggregator::new().shard_range(shard.starting_hash_key, shard.ending_hash_key);
    shard
        .records
        .iter()
        .filter_map(|r| {
            reader
                .deaggregate(
                    &r.partition_key,
                    r.explicit_hash_key.as_deref(),
                    r.data.clone(),
                )
                .ok()
        })
        .flatten()
        .collect()
}

/// An acked record is where its result says, with its own bytes.
fn check_position(
    id: u64,
    stream: usize,
    stored: &HashMap<usize, Vec<kpl_sim::StoredShard>>,
    (shard_id, seq): &(String, String),
    sub: u64,
    plan: &Plan,
    v: &mut Vec<String>,
) {
    let found = stored.get(&stream).and_then(|shards| {
        let shard = shards.iter().find(|s| &s.shard_id == shard_id)?;
        shard.records.iter().find(|r| &r.sequence_number == seq)
    });
    let Some(r) = found else {
        v.push(format!("record {id}: nothing stored at {shard_id} {seq}"));
        return;
    };
    let users = Deaggregator::new()
        .deaggregate(
            &r.partition_key,
            r.explicit_hash_key.as_deref(),
            r.data.clone(),
        )
        .unwrap_or_default();
    let Some(u) = users.get(sub as usize) else {
        v.push(format!(
            "record {id}: {shard_id} {seq} has no sub-record {sub}"
        ));
        return;
    };
    let (lo, hi) = plan.record_size;
    let size = lo + (id as usize * 7919) % (hi - lo + 1);
    if u.data != payload(id, size) {
        v.push(format!(
            "record {id}: {shard_id} {seq}#{sub} holds other bytes"
        ));
    }
}

pub fn id_of(data: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = data.len().min(8);
    bytes[..n].copy_from_slice(&data[..n]);
    u64::from_be_bytes(bytes)
}

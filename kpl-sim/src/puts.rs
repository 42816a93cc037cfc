//! The write side: PutRecords and PutRecord, each entry checked, routed
//! by its hash key, and put to its shard under the shard's limits and the
//! injected faults.

use base64_simd::STANDARD as B64;
use bytes::Bytes;
use serde_json::json;

use crate::api::{Shared, add, to_json};
use crate::config::Limits;
use crate::entries::{check_entry, member};
use crate::protocol::{self, ApiError, PutRecord, PutRecords};
use crate::state::{PutEntry, PutOutcome, Shard, Stream, seq_string};

impl Shared {
    /// Validate one entry and turn it into a `PutEntry`. `Err` is a whole-request error.
    fn entry(
        &self,
        i: Option<usize>,
        data: Option<&str>,
        key: Option<&str>,
        ehk: Option<&str>,
        stream: &Stream,
        limits: &Limits,
    ) -> Result<PutEntry, ApiError> {
        let data = data.ok_or_else(|| ApiError::missing(&member(i, "data")))?;
        let key = key.ok_or_else(|| ApiError::missing(&member(i, "partitionKey")))?;
        // Strict, as the service: padding required, no stray bits.
        let decoded = B64.decode_to_vec(data).map_err(|_| {
            ApiError::serialization(format!("Invalid base64 in '{}'", member(i, "data")))
        })?;
        check_entry(i, key, ehk, Bytes::from(decoded), stream, limits)
    }

    fn count_outcomes(&self, outcomes: &[PutOutcome], sizes: &[usize]) {
        let (mut ok, mut bytes, mut thr, mut fail) = (0, 0, 0, 0);
        for (o, s) in outcomes.iter().zip(sizes) {
            match o {
                PutOutcome::Ok { .. } => {
                    ok += 1;
                    bytes += *s as u64;
                }
                PutOutcome::Throttled { .. } => thr += 1,
                PutOutcome::InternalFailure => fail += 1,
            }
        }
        add(&self.counters.records_accepted, ok);
        add(&self.counters.bytes_accepted, bytes);
        add(&self.counters.records_throttled, thr);
        add(&self.counters.records_internal_failure, fail);
    }

    pub(crate) fn throttle_message(&self, stream: &Stream, shard: &Shard) -> String {
        format!(
            "Rate exceeded for shard {} in stream {} under account {}.",
            shard.id, stream.name, self.registry.account
        )
    }

    pub(crate) fn put_records(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        add(&self.counters.put_records_calls, 1);
        let r: PutRecords = protocol::parse(body)?;
        let limits = self.limits();
        let records = r.records.ok_or_else(|| ApiError::missing("records"))?;
        if records.is_empty() || records.len() > limits.max_records_per_request {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '[...]' at 'records' failed to satisfy constraint: Member must have length {}",
                if records.is_empty() {
                    "greater than or equal to 1".to_string()
                } else {
                    format!("less than or equal to {}", limits.max_records_per_request)
                }
            )));
        }
        let stream = self
            .registry
            .resolve(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
        let mut entries = Vec::with_capacity(records.len());
        for (i, e) in records.iter().enumerate() {
            entries.push(self.entry(
                Some(i),
                e.data.as_deref(),
                e.partition_key.as_deref(),
                e.explicit_hash_key.as_deref(),
                &stream,
                &limits,
            )?);
        }
        drop(records);
        let sizes = entries.iter().map(PutEntry::size).collect();
        let outcomes = self.put_entries(&stream, entries, sizes, &limits)?;
        // Hand-written: the hot path's response, no escaping needed.
        let mut out = String::with_capacity(32 + outcomes.len() * 110);
        let failed = outcomes
            .iter()
            .filter(|o| !matches!(o, PutOutcome::Ok { .. }))
            .count();
        out.push_str(&format!("{{\"FailedRecordCount\":{failed},\"Records\":["));
        for (i, o) in outcomes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match o {
                PutOutcome::Ok { shard, seq } => {
                    out.push_str("{\"SequenceNumber\":\"");
                    out.push_str(&seq_string(*seq));
                    out.push_str("\",\"ShardId\":\"");
                    out.push_str(&shard.id);
                    out.push_str("\"}");
                }
                PutOutcome::Throttled { shard } => {
                    out.push_str("{\"ErrorCode\":\"ProvisionedThroughputExceededException\",\"ErrorMessage\":");
                    out.push_str(
                        &serde_json::to_string(&self.throttle_message(&stream, shard))
                            .unwrap_or_default(),
                    );
                    out.push('}');
                }
                PutOutcome::InternalFailure => {
                    out.push_str("{\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"Internal service failure.\"}");
                }
            }
        }
        out.push_str("],\"EncryptionType\":\"NONE\"}");
        Ok(out.into_bytes())
    }

    /// Stores validated entries of one PutRecords call (request size
    /// limit, fault draws, per-shard limits, counters): the one path the
    /// HTTP server and the in-process [`crate::Model`] share.
    pub(crate) fn put_entries(
        &self,
        stream: &Stream,
        mut entries: Vec<PutEntry>,
        sizes: Vec<usize>,
        limits: &Limits,
    ) -> Result<Vec<PutOutcome>, ApiError> {
        let total: usize = sizes.iter().sum();
        if total > limits.max_request_bytes {
            return Err(ApiError::invalid_argument(format!(
                "Records size exceeds {} MB limit",
                limits.max_request_bytes / crate::config::MIB
            )));
        }
        let rate = self.faults.record_failure_rate();
        if rate > 0.0 {
            let draws = self.faults.draw_record_failures(rate, entries.len());
            for (e, f) in entries.iter_mut().zip(draws) {
                e.fail = f;
            }
        }
        let outcomes = stream.put(entries, limits, &self.retention);
        self.count_outcomes(&outcomes, &sizes);
        Ok(outcomes)
    }

    pub(crate) fn put_record(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let r: PutRecord = protocol::parse(body)?;
        let limits = self.limits();
        let stream = self
            .registry
            .resolve(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
        let mut entry = self.entry(
            None,
            r.data.as_deref(),
            r.partition_key.as_deref(),
            r.explicit_hash_key.as_deref(),
            &stream,
            &limits,
        )?;
        let rate = self.faults.record_failure_rate();
        if rate > 0.0 {
            entry.fail = self.faults.draw_record_failures(rate, 1)[0];
        }
        let size = entry.data.len() + entry.partition_key.len();
        let outcomes = stream.put(vec![entry], &limits, &self.retention);
        self.count_outcomes(&outcomes, &[size]);
        match &outcomes[0] {
            PutOutcome::Ok { shard, seq } => Ok(to_json(&json!({
                "ShardId": shard.id,
                "SequenceNumber": seq_string(*seq),
                "EncryptionType": "NONE",
            }))),
            PutOutcome::Throttled { shard } => Err(ApiError::new(
                400,
                "ProvisionedThroughputExceededException",
                self.throttle_message(&stream, shard),
            )),
            PutOutcome::InternalFailure => Err(ApiError::internal()),
        }
    }
}

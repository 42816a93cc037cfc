//! A request came back: the retrier's verdicts carried out.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::retrier::{self, Pace, RequestVerdict, Rules, Verdict};
use super::router::{Outbound, Suspect};
use super::sender::Completion;
use super::streams::StreamId;
use super::{Engine, Failure, Pending};
use crate::error::Error;
use crate::kinesis::EntryOutcome;

const MIN_REQUEST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_REQUEST_BACKOFF: Duration = Duration::from_secs(5);

/// When an attempt started and ended.
type Span = (Instant, Instant);

/// Records of one answer to send again: at once, or after a backoff.
#[derive(Default)]
struct Retries {
    now: Vec<Pending>,
    later: Vec<Pending>,
}

impl Engine {
    fn rules(&self) -> Rules {
        Rules {
            fail_if_throttled: self.config.fail_if_throttled,
            aborting: self.aborting,
        }
    }

    pub(super) fn on_completion(&mut self, c: Completion, now: Instant) {
        self.sender.done();
        if let Some(stream) = self.streams.get_mut(c.stream) {
            stream.in_flight -= 1;
        }
        let span = (c.started, c.ended);
        if let Some(stream) = c.batch.first().and_then(|ob| ob.record.records.first()) {
            let stream = stream.stream().clone();
            self.resolution.metrics_hooks().request(
                &stream,
                c.ended.saturating_duration_since(c.started),
                c.batch.iter().map(|ob| (ob.shard.as_ref(), &ob.record)),
                c.result
                    .as_ref()
                    .map(Vec::as_slice)
                    .map_err(|e| e.code().unwrap_or(e.kind().as_str())),
            );
        }
        match c.result {
            Ok(outcomes) => self.on_answer(c.stream, c.batch, &outcomes, span, now),
            Err(err) => self.on_request_failed(c.stream, c.batch, err, span, now),
        }
    }

    /// Carries out the verdicts of one answer. Throttled shards are paused
    /// first, so the records sent again wait for the pause.
    fn on_answer(
        &mut self,
        id: StreamId,
        batch: Vec<Outbound>,
        outcomes: &[EntryOutcome],
        span: Span,
        now: Instant,
    ) {
        self.count_answer(&batch, outcomes, span);
        let judged = retrier::judge_entries(&batch, outcomes, self.rules());
        self.pause_throttled(id, &judged.throttled, span.0, now);
        if let Some(stream) = self.streams.get_mut(id) {
            stream.request_backoff = Duration::ZERO;
            if stream.map.reachable_again(now) {
                self.sender.load_map(id, stream.name.clone());
            }
        }
        let mut again = Retries::default();
        for ((ob, verdict), outcome) in batch.into_iter().zip(judged.verdicts).zip(outcomes) {
            let failure = match outcome {
                EntryOutcome::Failed { code, message } => {
                    Some(Arc::new((code.clone(), message.clone())))
                }
                EntryOutcome::Delivered { .. } => None,
            };
            self.carry_out(id, ob, verdict, failure.as_ref(), span, now, &mut again);
        }
        self.retry(again.now, Duration::ZERO, now);
        if let Some(most) = again.later.iter().map(|p| p.attempts().len()).max() {
            let delay = self.jitter(retrier::backoff_after(most));
            self.retry(again.later, delay, now);
        }
        if judged.stream_gone || judged.misrouted {
            self.load_map(id, now);
        }
    }

    /// One entry's verdict; records to send again go into `again`.
    #[allow(clippy::too_many_arguments)]
    fn carry_out(
        &mut self,
        id: StreamId,
        ob: Outbound,
        verdict: Verdict,
        failure: Option<&Failure>,
        span: Span,
        now: Instant,
        again: &mut Retries,
    ) {
        match verdict {
            Verdict::Deliver {
                shard_id,
                sequence_number,
            } => {
                self.note_delivered(id, &shard_id, ob.record.size(), span.1);
                self.resolution
                    .delivered(ob.record, &shard_id, &sequence_number, Some(span), now);
            }
            Verdict::Suspect {
                shard_id,
                sequence_number,
            } => self.suspect(id, ob, shard_id, sequence_number, span),
            Verdict::Retry(Pace::Limiter) => again.now.extend(attempted(ob, span, failure)),
            Verdict::Retry(Pace::Attempts) => {
                for p in attempted(ob, span, failure) {
                    if p.attempts().len() <= 1 {
                        again.now.push(p);
                    } else {
                        again.later.push(p);
                    }
                }
            }
            Verdict::Fail(err) => {
                for p in attempted(ob, span, failure) {
                    self.resolution.fail(p, err.for_another_record(), now);
                }
            }
        }
    }

    fn count_answer(&self, batch: &[Outbound], outcomes: &[EntryOutcome], (started, ended): Span) {
        let (ok_records, ok_bytes) = batch
            .iter()
            .zip(outcomes)
            .filter(|(_, o)| matches!(o, EntryOutcome::Delivered { .. }))
            .fold((0, 0), |(n, b), (ob, _)| {
                (n + 1, b + ob.record.size() as u64)
            });
        let metrics = &self.resolution.shared().metrics;
        // Counted before any result goes out: a flush waiting on these
        // records must see the request in the metrics.
        metrics.request(
            ended.saturating_duration_since(started),
            ok_records,
            ok_bytes,
            false,
        );
        for outcome in outcomes {
            if let EntryOutcome::Failed { code, .. } = outcome {
                metrics.error(code, 1);
            }
        }
    }

    /// One congestion signal per shard per response, however many of its
    /// records were throttled.
    fn pause_throttled(
        &mut self,
        id: StreamId,
        shards: &[Arc<str>],
        sent_at: Instant,
        now: Instant,
    ) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        for shard_id in shards {
            if let Some(&i) = stream.shard_index.get(shard_id) {
                stream.shards[i]
                    .limiter
                    .throttled(sent_at, now, &mut self.rng);
            }
        }
    }

    fn note_delivered(&mut self, id: StreamId, shard_id: &Arc<str>, bytes: usize, at: Instant) {
        if let Some(stream) = self.streams.get_mut(id)
            && let Some(&i) = stream.shard_index.get(shard_id)
        {
            stream.shards[i].limiter.delivered(bytes, at);
        }
    }

    /// An aggregate that landed on an unexpected shard waits for a map read
    /// after this answer; the stream's next requests wait with it.
    fn suspect(
        &mut self,
        id: StreamId,
        mut ob: Outbound,
        shard_id: Arc<str>,
        seq: Arc<str>,
        span: Span,
    ) {
        for p in &mut ob.record.records {
            p.record_attempt(span.0, span.1, None);
        }
        match self.streams.get_mut(id) {
            Some(stream) => {
                stream.held_since.get_or_insert(span.1);
                stream.suspects.push(Suspect {
                    outbound: ob,
                    shard_id,
                    sequence_number: seq,
                    seen_at: span.1,
                });
            }
            // No stream state to judge it by: send its records again.
            None => self.retry(ob.record.records, Duration::ZERO, span.1),
        }
    }

    fn on_request_failed(
        &mut self,
        id: StreamId,
        batch: Vec<Outbound>,
        err: Error,
        span: Span,
        now: Instant,
    ) {
        let metrics = &self.resolution.shared().metrics;
        metrics.request(span.1.saturating_duration_since(span.0), 0, 0, true);
        let code = err.code().unwrap_or(err.kind().as_str()).to_owned();
        metrics.error(&code, 1);
        let failure = Arc::new((code.clone(), err.message().to_owned()));
        let records: Vec<Pending> = batch
            .into_iter()
            .flat_map(|ob| attempted(ob, span, Some(&failure)))
            .collect();
        match retrier::judge_request(&err, self.rules()) {
            RequestVerdict::Retry => {
                let backoff = match self.streams.get_mut(id) {
                    Some(stream) => {
                        stream.request_backoff = (stream.request_backoff * 2)
                            .clamp(MIN_REQUEST_BACKOFF, MAX_REQUEST_BACKOFF);
                        stream.request_backoff
                    }
                    None => MIN_REQUEST_BACKOFF,
                };
                let delay = self.jitter(backoff);
                tracing::debug!(%err, ?delay, "PutRecords failed; retrying");
                self.retry(records, delay, now);
            }
            RequestVerdict::Fail(e) => {
                tracing::warn!(%err, "PutRecords failed; failing its records");
                for p in records {
                    self.resolution.fail(p, e.for_another_record(), now);
                }
            }
            RequestVerdict::StreamGone(e) => {
                for p in records {
                    self.resolution.fail(p, e.for_another_record(), now);
                }
                self.load_map(id, now);
            }
        }
    }
}

/// The user records of `ob`, with this attempt noted.
fn attempted(ob: Outbound, (started, ended): Span, failure: Option<&Failure>) -> Vec<Pending> {
    let mut records = ob.record.records;
    for p in &mut records {
        p.record_attempt(started, ended, failure);
    }
    records
}

//! Resolution: each record's one result, the counters and buffer room it
//! gives back, and the flush epochs that tell a `flush()` when everything
//! put before it is resolved.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Shared;
use super::pending::{Pending, Stamp};
use super::room::Room;
use crate::aggregation::KinesisRecord;
use crate::error::{Error, ErrorKind};
use crate::metrics::Hooks;
use crate::record::{Attempt, Attempts, PutResult};

pub(crate) struct Resolution {
    shared: Arc<Shared>,
    record_ttl: Duration,
    /// Unresolved records per flush epoch; `epochs[0]` is epoch `epoch_base`.
    epochs: VecDeque<u64>,
    epoch_base: u64,
    waiters: Vec<(u64, oneshot::Sender<()>)>,
    /// Records of epochs below this were put before a flush: send at once.
    flushed_epoch: u64,
    /// The CloudWatch metrics' per-window statistics (`metrics::hooks`).
    hooks: Hooks,
    /// Resolved records a stream's ordering gate counted out: their keys
    /// are given back at the end of the engine's turn.
    ungated: Vec<(Arc<str>, u128)>,
}

impl Resolution {
    pub fn new(shared: Arc<Shared>, record_ttl: Duration, hooks: Hooks) -> Resolution {
        Resolution {
            hooks,
            shared,
            record_ttl,
            epochs: VecDeque::from([0]),
            epoch_base: 0,
            waiters: Vec::new(),
            flushed_epoch: 0,
            ungated: Vec::new(),
        }
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    pub fn metrics_hooks(&mut self) -> &mut Hooks {
        &mut self.hooks
    }

    fn current_epoch(&self) -> u64 {
        self.epoch_base + self.epochs.len() as u64 - 1
    }

    /// Counts a record in the current epoch.
    pub fn admit(&mut self, p: &mut Pending) {
        self.hooks.received(p.stream());
        // Kept in 32 bits: fewer than 2^32 epochs are ever open at once.
        p.epoch = self.current_epoch() as u32;
        *self.epochs.back_mut().expect("one epoch always exists") += 1;
    }

    /// Starts a new epoch: every record admitted so far is due now, and
    /// `done` fires once they are all resolved.
    pub fn flush(&mut self, done: Option<oneshot::Sender<()>>) {
        let current = self.current_epoch();
        self.epochs.push_back(0);
        self.flushed_epoch = current + 1;
        if let Some(done) = done {
            self.waiters.push((current, done));
        }
        self.settle_epochs();
    }

    /// Whether the record was put before a flush (and so is due now).
    pub fn is_forced(&self, p: &Pending) -> bool {
        self.epoch_of(p) < self.flushed_epoch
    }

    /// No record is unresolved.
    pub fn is_idle(&self) -> bool {
        self.epochs.iter().all(|&n| n == 0)
    }

    /// Resolves the records of a delivered Kinesis record. `attempt` is the
    /// successful one when it is not yet in their lists.
    pub fn delivered(
        &mut self,
        kr: KinesisRecord<Pending>,
        shard_id: &Arc<str>,
        seq: &Arc<str>,
        attempt: Option<(Instant, Instant)>,
        now: Instant,
    ) {
        let aggregated = kr.is_aggregated();
        self.hooks
            .delivered(&kr, shard_id, attempt.map(|(started, _)| started));
        self.account_delivered(&kr.records, now);
        // The successful attempt's start as records measure it, converted once.
        let succeeded = attempt
            .map(|(started, ended)| (Stamp::of(started), ended.saturating_duration_since(started)));
        for (i, mut p) in kr.records.into_iter().enumerate() {
            let attempts = match succeeded {
                Some((started, duration)) => {
                    let last = Attempt {
                        delay: p.wait_before(started),
                        duration,
                        error_code: None,
                        error_message: None,
                    };
                    Attempts::from(p.take_attempts(), last)
                }
                None => Attempts::Many(p.take_attempts()),
            };
            let result = PutResult {
                shard_id: shard_id.clone(),
                sequence_number: seq.clone(),
                sub_sequence_number: if aggregated { i as u64 } else { 0 },
                aggregated,
                attempts,
            };
            self.settle_record(self.epoch_of(&p));
            self.ungate(&p);
            let room = self.held_room(&p);
            p.reply.send_with_room(Ok(result), room);
        }
        self.settle_epochs();
    }

    /// Counters and buffer room first, once per Kinesis record: whoever
    /// sees a result must also see it counted and its room given back
    /// (records whose result takes its room along give it back later).
    fn account_delivered(&self, records: &[Pending], now: Instant) {
        let (mut bytes, mut buffering_sum, mut buffering_max) = (0, Duration::ZERO, Duration::ZERO);
        let (mut freed, mut freed_bytes) = (0, 0);
        let now = Stamp::of(now);
        for p in records {
            let buffering = p.buffered_at(now);
            buffering_sum += buffering;
            buffering_max = buffering_max.max(buffering);
            bytes += p.record.size();
            if !p.reply.holds_room() {
                freed += 1;
                freed_bytes += p.record.size();
            }
        }
        if let Some(done) = &self.shared.spool_done {
            done.complete(records.iter().filter_map(|p| p.spool_seq()));
        }
        let count = records.len();
        let metrics = &self.shared.metrics;
        metrics.user_records_done(true, count as u64, buffering_sum, buffering_max);
        self.unbuffer(count, bytes);
        self.give_room(freed, freed_bytes);
    }

    /// Fails a record that was past its RecordTtl.
    pub fn expire(&mut self, p: Pending, now: Instant) {
        self.shared.metrics.expired();
        let ttl = self.record_ttl.as_millis();
        let message = match p.attempts().last().and_then(|a| a.code()) {
            Some(code) => format!(
                "not delivered within RecordTtl ({ttl} ms) after {} attempt(s); the last failed with {code}",
                p.attempts().len()
            ),
            None => format!("not sent within RecordTtl ({ttl} ms)"),
        };
        self.fail(p, Error::new(ErrorKind::Expired, message), now);
    }

    pub fn fail(&mut self, mut p: Pending, err: Error, now: Instant) {
        let buffering = p.buffered_at(Stamp::of(now));
        self.hooks.failed(&p, err.kind() == ErrorKind::Expired, now);
        self.shared
            .metrics
            .user_records_done(false, 1, buffering, buffering);
        // A record the producer gave up on because it stopped stays in the
        // spool for the next one; any other failure is final.
        if let (Some(done), Some(seq)) = (&self.shared.spool_done, p.spool_seq())
            && err.kind() != ErrorKind::ShutDown
        {
            done.complete([seq]);
        }
        let room = self.release_one(&p);
        self.settle_record(self.epoch_of(&p));
        self.ungate(&p);
        let attempts = p.take_attempts();
        let err = err.with_record(p.record).with_attempts(attempts);
        p.reply.send_with_room(Err(err), room);
        self.settle_epochs();
    }

    /// Refuses a record that never entered the epochs (put while aborting).
    pub fn refuse(&mut self, p: Pending, err: Error) {
        let room = self.release_one(&p);
        p.reply.send_with_room(Err(err.with_record(p.record)), room);
    }

    fn ungate(&mut self, p: &Pending) {
        if p.gated {
            self.ungated.push((p.stream().clone(), p.hash_key().0));
        }
    }

    /// The keys of resolved records that were out (`ordering`).
    pub fn take_ungated(&mut self) -> Vec<(Arc<str>, u128)> {
        std::mem::take(&mut self.ungated)
    }

    /// A record's epoch in full: open epochs are `epoch_base` and after.
    fn epoch_of(&self, p: &Pending) -> u64 {
        self.epoch_base + u64::from(p.epoch.wrapping_sub(self.epoch_base as u32))
    }

    fn settle_record(&mut self, epoch: u64) {
        self.epochs[(epoch - self.epoch_base) as usize] -= 1;
    }

    /// Stops counting resolved records as buffered.
    fn unbuffer(&self, records: usize, bytes: usize) {
        let shared = &self.shared;
        shared.outstanding.fetch_sub(records as u64, Relaxed);
        shared.buffered_bytes.fetch_sub(bytes as u64, Relaxed);
    }

    /// Gives resolved records' room back to waiting puts.
    fn give_room(&self, records: usize, bytes: usize) {
        self.shared.record_permits.add_permits(records);
        self.shared.byte_permits.add_permits(bytes);
    }

    /// The room a record's result takes along, if its reply holds it (the
    /// room of any other record was given back already).
    fn held_room(&self, p: &Pending) -> Room {
        if p.reply.holds_room() {
            Room::held(self.shared.clone(), p.record.size() as u32)
        } else {
            Room::none()
        }
    }

    /// Unbuffers one record and gives its room back, or hands it over.
    fn release_one(&self, p: &Pending) -> Room {
        let size = p.record.size();
        self.unbuffer(1, size);
        if p.reply.holds_room() {
            self.held_room(p)
        } else {
            self.give_room(1, size);
            Room::none()
        }
    }

    /// Drops finished epochs and wakes the flushes waiting on them.
    fn settle_epochs(&mut self) {
        while self.epochs.len() > 1 && self.epochs[0] == 0 {
            self.epochs.pop_front();
            self.epoch_base += 1;
        }
        let base = self.epoch_base;
        if self.waiters.iter().any(|(e, _)| *e < base) {
            let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiters)
                .into_iter()
                .partition(|(e, _)| *e < base);
            self.waiters = waiting;
            for (_, tx) in done {
                let _ = tx.send(());
            }
        }
    }
}

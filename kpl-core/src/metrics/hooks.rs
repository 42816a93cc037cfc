//! What the pipeline tells the metrics: a handful of calls at the points
//! where records arrive, requests complete and results go out. They record
//! into the task's [`Accumulator`] and, once per `MetricsUploadDelay`, hand
//! the window to the upload task over a channel.
//!
//! The samples follow the KPL's retrier: per Kinesis record on the
//! predicted shard (KinesisRecordsPut, KinesisRecordsDataPut, AllErrors,
//! ErrorsByCode, UserRecordsPerKinesisRecord), per request on the stream
//! (RequestTime, *PerPutRecordsRequest, and ErrorsByCode/AllErrors when the
//! whole request failed), per user record when it resolves (UserRecordsPut
//! 1 or 0, UserRecordsDataPut, BufferingTime per attempt, RetriesPerRecord,
//! UserRecordExpired) on the shard it landed on, or on the stream when it
//! failed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::accumulator::{Accumulator, Cell, StatSet};
use super::names::{MetricsLevel, Name};
use crate::aggregation::KinesisRecord;
use crate::config::Config;
use crate::kinesis::EntryOutcome;
use crate::pipeline::{Pending, Stamp};

/// How often UserRecordsPending is sampled (the KPL's period).
const PENDING_SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// One cut window, on its way to the upload task.
#[derive(Debug)]
pub(crate) struct Window {
    /// The window's end, the datums' timestamp.
    pub time: SystemTime,
    pub cells: Vec<Cell>,
}

/// The pipeline's side of the metrics.
pub(crate) struct Hooks {
    acc: Accumulator,
    /// `None` at `MetricsLevel = none`: every hook returns at once.
    windows: Option<mpsc::UnboundedSender<Window>>,
    upload_delay: Duration,
    window_end: Instant,
    sample_pending: bool,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Hooks {
    /// The hooks and, unless the level is `none`, the receiving end of
    /// the windows they cut.
    pub fn new(config: &Config) -> (Hooks, Option<mpsc::UnboundedReceiver<Window>>) {
        let level = config.metrics_level;
        let (windows, rx) = if level == MetricsLevel::None {
            (None, None)
        } else {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        };
        let hooks = Hooks {
            acc: Accumulator::new(level),
            windows,
            upload_delay: config.metrics_upload_delay,
            window_end: Instant::now() + config.metrics_upload_delay,
            sample_pending: level >= Name::UserRecordsPending.level(),
        };
        (hooks, rx)
    }

    /// When [`tick`](Self::tick) is first due, if ever.
    pub fn first_tick(&self) -> Option<Instant> {
        self.windows.as_ref()?;
        Some(self.next_tick(Instant::now()))
    }

    fn next_tick(&self, now: Instant) -> Instant {
        if self.sample_pending {
            (now + PENDING_SAMPLE_EVERY).min(self.window_end)
        } else {
            self.window_end
        }
    }

    /// Samples UserRecordsPending and, at the window's end, cuts it.
    /// Returns when to call again.
    pub fn tick(&mut self, now: Instant) -> Instant {
        if self.sample_pending {
            self.acc.sample_pending();
        }
        if now >= self.window_end {
            self.cut();
            // A late tick (a busy pipeline) starts the next window now
            // rather than cutting empty windows to catch up.
            self.window_end =
                (self.window_end + self.upload_delay).max(now + self.upload_delay / 2);
        }
        self.next_tick(now)
    }

    fn cut(&mut self) {
        if let Some(tx) = &self.windows {
            let window = Window {
                time: SystemTime::now(),
                cells: self.acc.take(),
            };
            // The upload task ends only after the pipeline: nobody to tell otherwise.
            let _ = tx.send(window);
        }
    }

    /// A user record was accepted.
    #[inline]
    pub fn received(&mut self, stream: &Arc<str>) {
        if self.windows.is_none() {
            return;
        }
        let s = self.acc.stream(stream);
        self.acc.add_pending(s, 1);
        let slot = self.acc.slot(s, None);
        self.acc.put(slot, Name::UserRecordsReceived, 1.0);
    }

    /// The user records of a Kinesis record were delivered to `shard`.
    /// `attempt_start` is the start of the successful attempt when it is
    /// not yet in their attempt lists.
    pub fn delivered(
        &mut self,
        kr: &KinesisRecord<Pending>,
        shard: &Arc<str>,
        attempt_start: Option<Instant>,
    ) {
        let Some(first) = kr.records.first() else {
            return;
        };
        if self.windows.is_none() {
            return;
        }
        let s = self.acc.stream(first.stream());
        let slot = self.acc.slot(s, Some(shard));
        let (mut data, mut buffering, mut retries) =
            (StatSet::EMPTY, StatSet::EMPTY, StatSet::EMPTY);
        let attempt_start = attempt_start.map(Stamp::of);
        for p in &kr.records {
            data.add(p.record.data().len() as f64);
            for a in p.attempts() {
                buffering.add(ms(a.delay));
            }
            let tries = match attempt_start {
                Some(start) => {
                    buffering.add(ms(p.wait_before(start)));
                    p.attempts().len()
                }
                None => p.attempts().len().saturating_sub(1),
            };
            retries.add(tries as f64);
        }
        let n = kr.records.len();
        let put = StatSet {
            sum: n as f64,
            min: 1.0,
            max: 1.0,
            count: n as f64,
        };
        self.acc.put_set(slot, Name::UserRecordsPut, &put);
        self.acc.put_set(slot, Name::UserRecordsDataPut, &data);
        self.acc.put_set(slot, Name::BufferingTime, &buffering);
        self.acc.put_set(slot, Name::RetriesPerRecord, &retries);
        self.acc.add_pending(s, -(n as i64));
    }

    /// A user record failed (`expired`: its RecordTtl ran out).
    pub fn failed(&mut self, p: &Pending, expired: bool, now: Instant) {
        if self.windows.is_none() {
            return;
        }
        let s = self.acc.stream(p.stream());
        let slot = self.acc.slot(s, None);
        self.acc.put(slot, Name::UserRecordsPut, 0.0);
        if expired {
            self.acc.put(slot, Name::UserRecordExpired, 1.0);
        }
        if p.attempts().is_empty() {
            self.acc
                .put(slot, Name::BufferingTime, ms(p.buffered_at(Stamp::of(now))));
        }
        for a in p.attempts() {
            self.acc.put(slot, Name::BufferingTime, ms(a.delay));
        }
        self.acc.put(
            slot,
            Name::RetriesPerRecord,
            p.attempts().len().saturating_sub(1) as f64,
        );
        self.acc.add_pending(s, -1);
    }

    /// A PutRecords completed: its Kinesis records with their predicted
    /// shards, and its outcome (one per record, or the whole request's
    /// error code).
    pub fn request<'a>(
        &mut self,
        stream: &Arc<str>,
        duration: Duration,
        batch: impl Iterator<Item = (Option<&'a Arc<str>>, &'a KinesisRecord<Pending>)>,
        result: Result<&[EntryOutcome], &str>,
    ) {
        if self.windows.is_none() {
            return;
        }
        let s = self.acc.stream(stream);
        let (mut kinesis_records, mut user_records) = (0usize, 0usize);
        for (i, (shard, kr)) in batch.enumerate() {
            kinesis_records += 1;
            user_records += kr.records.len();
            let slot = self.acc.slot(s, shard);
            self.acc.put(
                slot,
                Name::UserRecordsPerKinesisRecord,
                kr.records.len() as f64,
            );
            let Ok(outcomes) = result else { continue };
            match outcomes.get(i) {
                Some(EntryOutcome::Delivered { .. }) => {
                    self.acc.put(slot, Name::KinesisRecordsPut, 1.0);
                    self.acc
                        .put(slot, Name::KinesisRecordsDataPut, kr.size() as f64);
                    self.acc.put(slot, Name::AllErrors, 0.0);
                }
                Some(EntryOutcome::Failed { code, .. }) => {
                    self.acc.put(slot, Name::KinesisRecordsPut, 0.0);
                    self.acc.error(slot, code);
                    self.acc.put(slot, Name::AllErrors, 1.0);
                }
                None => {}
            }
        }
        let slot = self.acc.slot(s, None);
        self.acc.put(slot, Name::RequestTime, ms(duration));
        self.acc.put(
            slot,
            Name::KinesisRecordsPerPutRecordsRequest,
            kinesis_records as f64,
        );
        self.acc.put(
            slot,
            Name::UserRecordsPerPutRecordsRequest,
            user_records as f64,
        );
        if let Err(code) = result {
            self.acc.error(slot, code);
            self.acc.put(slot, Name::AllErrors, 1.0);
        }
    }
}

impl Drop for Hooks {
    /// The pipeline is done: what it recorded since the last cut goes up too.
    fn drop(&mut self) {
        // Every window holds a UserRecordsPending sample, the last one too,
        // however short the producer's life was.
        if self.sample_pending {
            self.acc.sample_pending();
        }
        self.cut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(delay_ms: u64, level: MetricsLevel) -> Config {
        Config::builder()
            .metrics_upload_delay(Duration::from_millis(delay_ms))
            .metrics_level(level)
            .build()
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_is_cut_every_upload_delay_and_pending_sampled_between() {
        let (mut hooks, rx) = Hooks::new(&config(1000, MetricsLevel::Detailed));
        let mut rx = rx.unwrap();
        let stream: Arc<str> = "s".into();
        let start = Instant::now();
        let mut at = hooks.first_tick().unwrap();
        assert_eq!(at - start, PENDING_SAMPLE_EVERY);
        let mut cuts = Vec::new();
        for _ in 0..3 {
            hooks.received(&stream);
        }
        // Drive the ticks as the pipeline's timer would, for 3.5 s.
        while at <= start + Duration::from_millis(3500) {
            tokio::time::sleep_until(at).await;
            at = hooks.tick(Instant::now());
            while let Ok(w) = rx.try_recv() {
                cuts.push((Instant::now() - start, w));
            }
        }
        let times: Vec<u128> = cuts.iter().map(|(t, _)| t.as_millis()).collect();
        assert_eq!(times, [1000, 2000, 3000]);
        // The first window holds the 3 received and 5 pending samples of 3.
        let first = &cuts[0].1.cells;
        let get =
            |cells: &[Cell], name: Name| cells.iter().find(|c| c.name == name).map(|c| c.stats);
        assert_eq!(get(first, Name::UserRecordsReceived).unwrap().sum, 3.0);
        let pending = get(first, Name::UserRecordsPending).unwrap();
        assert_eq!((pending.count, pending.max), (5.0, 3.0));
        // Later windows: no new records, pending still sampled.
        assert!(get(&cuts[1].1.cells, Name::UserRecordsReceived).is_none());
        assert_eq!(
            get(&cuts[2].1.cells, Name::UserRecordsPending)
                .unwrap()
                .count,
            5.0
        );
        // Dropping the hooks sends what is left.
        hooks.received(&stream);
        drop(hooks);
        let last = rx.recv().await.unwrap();
        assert_eq!(
            get(&last.cells, Name::UserRecordsReceived).unwrap().sum,
            1.0
        );
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn summary_ticks_only_at_window_ends_and_a_late_tick_does_not_catch_up() {
        let (mut hooks, rx) = Hooks::new(&config(500, MetricsLevel::Summary));
        let mut rx = rx.unwrap();
        let start = Instant::now();
        assert_eq!(
            hooks.first_tick().unwrap() - start,
            Duration::from_millis(500)
        );
        // The pipeline was busy for 5 windows: one cut, not five.
        tokio::time::advance(Duration::from_millis(2600)).await;
        let next = hooks.tick(Instant::now());
        assert_eq!(next - start, Duration::from_millis(2600 + 250));
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn level_none_makes_no_channel() {
        let (hooks, rx) = Hooks::new(&config(1000, MetricsLevel::None));
        assert!(rx.is_none());
        assert!(hooks.first_tick().is_none());
    }
}

//! Per-shard rate limiting: token buckets for records/s and bytes/s, and
//! the shard's backoff after the service throttled it.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// Kinesis' write limits for one shard.
pub(crate) const SHARD_RECORDS_PER_SEC: f64 = 1000.0;
pub(crate) const SHARD_BYTES_PER_SEC: f64 = 1024.0 * 1024.0;

const MIN_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A token bucket holding at most one second of tokens.
#[derive(Debug, Clone)]
struct TokenBucket {
    per_sec: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    fn new(per_sec: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            per_sec,
            tokens: per_sec,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.per_sec);
        self.updated = now;
    }

    /// Time until `n` tokens are there (zero if they are). A request larger
    /// than the bucket waits for a full bucket and then overdraws it.
    fn wait_for(&self, n: f64) -> Duration {
        let missing = n.min(self.per_sec) - self.tokens;
        if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing / self.per_sec)
        }
    }
}

/// The send budget of one shard, adapting to what the service accepts.
///
/// It starts at `RateLimit`% of the shard limits. A throttle lowers the
/// rate multiplicatively and pauses the shard briefly (exponential with
/// jitter, capped); delivered records raise it additively, back up to the
/// configured rate. So a producer that shares a shard with others, or a
/// service whose windows differ from ours, settles just under what the
/// shard takes instead of retrying half of its records.
#[derive(Debug, Clone)]
pub(crate) struct ShardLimiter {
    records: TokenBucket,
    bytes: TokenBucket,
    /// Current rate as a fraction of the shard limits.
    scale: f64,
    max_scale: f64,
    blocked_until: Option<Instant>,
    backoff: Duration,
    last_decrease: Option<Instant>,
}

/// Multiplicative decrease on a throttle.
const DECREASE: f64 = 0.9;
/// Additive increase: this fraction of the shard limit per second of
/// delivered traffic.
const INCREASE_PER_SEC: f64 = 0.1;
/// Never slower than this fraction of the shard limits.
const MIN_SCALE: f64 = 0.05;

impl ShardLimiter {
    /// A limiter at `rate_percent` of the shard limits.
    pub fn new(rate_percent: u64, now: Instant) -> ShardLimiter {
        let scale = rate_percent as f64 / 100.0;
        ShardLimiter {
            records: TokenBucket::new(SHARD_RECORDS_PER_SEC * scale, now),
            bytes: TokenBucket::new(SHARD_BYTES_PER_SEC * scale, now),
            scale,
            max_scale: scale,
            blocked_until: None,
            backoff: Duration::ZERO,
            last_decrease: None,
        }
    }

    /// Takes the budget for one Kinesis record of `bytes`, or says how
    /// long to wait until it is there.
    ///
    /// A record larger than the byte bucket (one second of the rate; large
    /// records go up to 10 MiB) goes as the service takes it: once the
    /// bucket is full, overdrawing it. The debt is at least the record at
    /// the shard's own rate (`bytes x max(1, RateLimit/100)`), so the shard
    /// sends nothing more until the service's bucket has refilled too
    /// rather than into certain throttling.
    pub fn try_take(&mut self, bytes: usize, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Err(until - now);
            }
            self.blocked_until = None;
        }
        self.records.refill(now);
        self.bytes.refill(now);
        let wait = self
            .records
            .wait_for(1.0)
            .max(self.bytes.wait_for(bytes as f64));
        if wait > Duration::ZERO {
            return Err(wait);
        }
        self.records.tokens -= 1.0;
        let bytes = bytes as f64;
        self.bytes.tokens -= if bytes > self.bytes.per_sec {
            bytes * self.scale.max(1.0)
        } else {
            bytes
        };
        Ok(())
    }

    /// The service throttled this shard, in a request sent at `sent_at`
    /// (count it once per response): slow down and pause. Requests sent
    /// before the last slow-down report the same congestion and are
    /// ignored, so one episode lowers the rate once, however many requests
    /// were in flight. Returns the pause, if any.
    pub fn throttled(
        &mut self,
        sent_at: Instant,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        if self.last_decrease.is_some_and(|t| sent_at < t) {
            return None;
        }
        self.last_decrease = Some(now);
        self.set_scale(self.scale * DECREASE, now);
        self.backoff = (self.backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
        let pause = jitter(self.backoff, rng);
        self.blocked_until = Some(now + pause);
        // What was granted before the throttle is not there to spend.
        self.records.tokens = self.records.tokens.min(0.0);
        self.bytes.tokens = self.bytes.tokens.min(0.0);
        Some(pause)
    }

    /// A Kinesis record of `bytes` went through: the backoff starts over
    /// and the rate creeps back up.
    pub fn delivered(&mut self, bytes: usize, now: Instant) {
        self.backoff = Duration::ZERO;
        if self.scale < self.max_scale {
            let share = (1.0 / self.records.per_sec).max(bytes as f64 / self.bytes.per_sec);
            self.set_scale(self.scale + INCREASE_PER_SEC * share, now);
        }
    }

    /// The current rate as a percentage of the shard limits.
    #[cfg(test)]
    pub fn rate_percent(&self) -> f64 {
        self.scale * 100.0
    }

    fn set_scale(&mut self, scale: f64, now: Instant) {
        self.records.refill(now);
        self.bytes.refill(now);
        self.scale = scale.clamp(MIN_SCALE.min(self.max_scale), self.max_scale);
        self.records.per_sec = SHARD_RECORDS_PER_SEC * self.scale;
        self.bytes.per_sec = SHARD_BYTES_PER_SEC * self.scale;
    }
}

/// A random duration between half of `d` and `d` ("equal jitter").
pub(crate) fn jitter(d: Duration, rng: &mut impl Rng) -> Duration {
    let half = d / 2;
    half + half.mul_f64(rng.random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_per_second_are_capped_at_the_rate() {
        let t0 = Instant::now();
        let mut l = ShardLimiter::new(100, t0);
        let granted = (0..2000).filter(|_| l.try_take(10, t0).is_ok()).count();
        assert_eq!(granted, 1000);
        let wait = l.try_take(10, t0).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(2),
            "{wait:?}"
        );
        // Half a second later, half a second of records.
        let t1 = t0 + Duration::from_millis(500);
        let granted = (0..2000).filter(|_| l.try_take(10, t1).is_ok()).count();
        assert_eq!(granted, 500);
    }

    #[test]
    fn bytes_per_second_are_capped_at_the_rate() {
        let t0 = Instant::now();
        let mut l = ShardLimiter::new(150, t0);
        let per_record = 51_200;
        let granted = (0..100)
            .filter(|_| l.try_take(per_record, t0).is_ok())
            .count();
        assert_eq!(
            granted,
            (SHARD_BYTES_PER_SEC * 1.5 / per_record as f64) as usize
        );
    }

    #[test]
    fn a_large_record_waits_for_a_full_bucket_then_the_shard_repays_it() {
        const MIB: usize = 1024 * 1024;
        let t0 = Instant::now();
        let mut l = ShardLimiter::new(150, t0);
        // Half a bucket spent: a 10 MiB record waits for the rest, not forever.
        l.try_take(MIB * 3 / 4, t0).unwrap();
        let wait = l.try_take(10 * MIB, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-3, "{wait:?}");
        let t1 = t0 + wait;
        l.try_take(10 * MIB, t1).unwrap();
        // Then nothing until the service has refilled: 10 s at 1 MiB/s
        // (not the 10 MiB / 1.5 MiB/s that RateLimit 150 alone would allow).
        let wait = l.try_take(100, t1).unwrap_err();
        let t2 = t1 + Duration::from_millis(8_900);
        assert!(l.try_take(100, t2).is_err());
        let t3 = t1 + Duration::from_millis(9_001);
        l.try_take(100, t3).unwrap();
        assert!((wait.as_secs_f64() - 9.0).abs() < 0.01, "{wait:?}");
        // At a lowered rate the debt drains at that rate: slower still.
        let mut slow = ShardLimiter::new(50, t0);
        slow.try_take(2 * MIB, t0).unwrap();
        let wait = slow.try_take(1, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 3.0).abs() < 0.01, "{wait:?}");
    }

    #[test]
    fn throttling_backs_off_exponentially_with_a_cap() {
        let t0 = Instant::now();
        let mut l = ShardLimiter::new(100, t0);
        let mut last = Duration::ZERO;
        for i in 0..10 {
            let t = t0 + Duration::from_millis(i);
            let pause = l.throttled(t, t, &mut rand::rng()).unwrap();
            assert!(pause <= MAX_BACKOFF);
            assert!(l.try_take(1, t).is_err());
            last = pause;
        }
        assert!(last >= MAX_BACKOFF / 2);
        l.delivered(10, t0);
        let t = t0 + Duration::from_millis(20);
        let pause = l.throttled(t, t, &mut rand::rng()).unwrap();
        assert!(pause <= MIN_BACKOFF, "{pause:?}");
    }

    #[test]
    fn the_rate_drops_on_throttles_and_recovers_with_deliveries() {
        let t0 = Instant::now();
        let mut l = ShardLimiter::new(150, t0);
        let (t1, t2) = (t0 + Duration::from_millis(1), t0 + Duration::from_millis(2));
        l.throttled(t0, t1, &mut rand::rng()).unwrap();
        // Also sent before that slow-down: the same congestion, ignored.
        assert!(l.throttled(t0, t2, &mut rand::rng()).is_none());
        l.throttled(t2, t2, &mut rand::rng()).unwrap();
        let lowered = l.rate_percent();
        assert!(
            (lowered - 150.0 * DECREASE * DECREASE).abs() < 1e-9,
            "{lowered}"
        );
        // One second of traffic at the lowered rate adds INCREASE_PER_SEC.
        for _ in 0..(lowered * 10.0) as usize {
            l.delivered(10, t0);
        }
        let raised = l.rate_percent();
        // (a little less: each step raises the rate, so later steps add less)
        let expected = INCREASE_PER_SEC * 100.0;
        assert!(
            (expected * 0.9..=expected).contains(&(raised - lowered)),
            "{lowered} -> {raised}"
        );
        for _ in 0..100_000 {
            l.delivered(10, t0);
        }
        assert_eq!(l.rate_percent(), 150.0);
    }
}

//! Per-shard write throughput: token buckets with one second of burst.

use tokio::time::Instant;

use crate::config::Limits;

/// Two token buckets (records and bytes) of one shard. Each holds at most one
/// second of its rate and refills continuously.
#[derive(Debug, Clone)]
pub struct ShardBuckets {
    records: f64,
    bytes: f64,
    last: Instant,
}

impl ShardBuckets {
    /// Full buckets.
    pub fn new(limits: &Limits, now: Instant) -> Self {
        ShardBuckets {
            records: limits.shard_records_per_sec as f64,
            bytes: limits.shard_bytes_per_sec as f64,
            last: now,
        }
    }

    fn refill(&mut self, limits: &Limits, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        if dt > 0.0 {
            let rcap = limits.shard_records_per_sec as f64;
            let bcap = limits.shard_bytes_per_sec as f64;
            self.records = (self.records + dt * rcap).min(rcap);
            self.bytes = (self.bytes + dt * bcap).min(bcap);
            self.last = now;
        }
    }

    /// Take one record of `size` bytes if both buckets have room; `false`
    /// means the record is throttled (nothing is taken).
    pub fn try_take(&mut self, limits: &Limits, size: usize, now: Instant) -> bool {
        if !limits.throughput_enabled {
            return true;
        }
        self.refill(limits, now);
        if self.records >= 1.0 && self.bytes >= size as f64 {
            self.records -= 1.0;
            self.bytes -= size as f64;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_rate() {
        let l = Limits::default();
        let t0 = Instant::now();
        let mut b = ShardBuckets::new(&l, t0);
        let ok = (0..1500).filter(|_| b.try_take(&l, 10, t0)).count();
        assert_eq!(ok, 1000);
        let t1 = t0 + Duration::from_millis(500);
        let ok = (0..1500).filter(|_| b.try_take(&l, 10, t1)).count();
        assert_eq!(ok, 500);
    }

    #[test]
    fn bytes_limit() {
        let l = Limits::default();
        let t0 = Instant::now();
        let mut b = ShardBuckets::new(&l, t0);
        assert!(b.try_take(&l, 1024 * 1024, t0));
        assert!(!b.try_take(&l, 1, t0));
    }
}

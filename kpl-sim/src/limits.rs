//! Per-shard write throughput: token buckets with one second of burst.
//!
//! Large records (over one second of the byte rate, up to 10 MiB) follow the
//! service's description: a shard "bursts beyond its sustained write
//! throughput, then returns to its baseline rate over time", averaging
//! 1 MiB/s. The model: a record no larger than the bucket needs that many
//! bytes in it; a larger record needs a full bucket and then overdraws it,
//! leaving a debt that the bucket repays at its rate before anything else
//! of that shard is accepted. So a 10 MiB record goes through a rested
//! shard at once, and the shard then takes nothing for about 9 s; over any
//! long stretch the shard still writes at most its rate plus one bucket.

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
    /// means the record is throttled (nothing is taken). A record larger
    /// than the byte bucket needs a full bucket and overdraws it.
    pub fn try_take(&mut self, limits: &Limits, size: usize, now: Instant) -> bool {
        if !limits.throughput_enabled {
            return true;
        }
        self.refill(limits, now);
        let needed = (size as f64).min(limits.shard_bytes_per_sec as f64);
        if self.records >= 1.0 && self.bytes >= needed {
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
    use crate::config::MIB;

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
    fn a_large_record_bursts_then_the_shard_repays_it() {
        let l = Limits::default();
        let t0 = Instant::now();
        let mut b = ShardBuckets::new(&l, t0);
        // A rested shard takes a 10 MiB record at once...
        assert!(b.try_take(&l, 10 * MIB, t0));
        // ...and then nothing until the 9 MiB overdraft is repaid.
        let t = t0 + Duration::from_millis(8_900);
        assert!(!b.try_take(&l, 1, t));
        let t = t0 + Duration::from_millis(9_100);
        assert!(b.try_take(&l, 50_000, t));
        // A second large record waits for a full bucket again.
        assert!(!b.try_take(&l, 2 * MIB, t));
        let t = t0 + Duration::from_millis(10_200);
        assert!(b.try_take(&l, 2 * MIB, t));
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

//! The simulator's one clock: tokio's, so a simulator (or a [`Model`]) on
//! a runtime with a paused clock runs in simulated time, with the epoch
//! timestamps it reports (arrival times, creation times) derived from it.
//!
//! [`Model`]: crate::Model

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// A monotonic clock with epoch timestamps that advance with it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
    origin_epoch_ms: u64,
}

impl Clock {
    /// A clock whose epoch time starts at the system's wall clock now.
    pub fn new() -> Clock {
        let origin_epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Clock {
            origin: Instant::now(),
            origin_epoch_ms,
        }
    }

    /// Now, on tokio's clock (simulated when the runtime's clock is paused).
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// Milliseconds since the Unix epoch, advancing with [`Clock::now`].
    pub fn epoch_millis(&self) -> u64 {
        let elapsed = Instant::now().saturating_duration_since(self.origin);
        self.origin_epoch_ms + elapsed.as_millis() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

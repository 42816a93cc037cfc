//! Seeded fault decisions.

use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::config::Faults;

/// What happens to one API request before it is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFault {
    /// Handle it normally.
    None,
    /// Answer 500 InternalFailure.
    Internal500,
    /// Answer 503 ServiceUnavailable.
    Unavailable503,
    /// Close the connection without a response.
    Drop,
    /// Hold the request, then close the connection.
    Timeout(Duration),
    /// Carry the request out, then hold it and close the connection
    /// without the response.
    TimeoutAfterStore(Duration),
}

/// The current faults and the RNG that draws from them.
#[derive(Debug)]
pub struct FaultState {
    faults: RwLock<Faults>,
    rng: Mutex<SmallRng>,
}

impl FaultState {
    /// Start with `faults`, RNG seeded from `faults.seed`.
    pub fn new(faults: Faults) -> Self {
        FaultState {
            rng: Mutex::new(SmallRng::seed_from_u64(faults.seed)),
            faults: RwLock::new(faults),
        }
    }

    /// Replace the faults and reseed the RNG.
    pub fn set(&self, faults: Faults) {
        let mut rng = self.rng.lock();
        *rng = SmallRng::seed_from_u64(faults.seed);
        *self.faults.write() = faults;
    }

    /// The current faults.
    pub fn get(&self) -> Faults {
        self.faults.read().clone()
    }

    /// Latency to add to a request (fixed + uniform jitter), if any.
    pub fn latency(&self) -> Duration {
        let f = self.faults.read();
        if f.latency_jitter.is_zero() {
            return f.latency;
        }
        let jitter_ns = f.latency_jitter.as_nanos() as u64;
        let extra = self.rng.lock().random_range(0..=jitter_ns);
        f.latency + Duration::from_nanos(extra)
    }

    /// Draw the fault for one request.
    pub fn request_fault(&self) -> RequestFault {
        let f = self.faults.read();
        if !f.any_request_fault() {
            return RequestFault::None;
        }
        let mut rng = self.rng.lock();
        if f.drop_connection > 0.0 && rng.random_bool(f.drop_connection.clamp(0.0, 1.0)) {
            return RequestFault::Drop;
        }
        if f.timeout > 0.0 && rng.random_bool(f.timeout.clamp(0.0, 1.0)) {
            return RequestFault::Timeout(f.timeout_hold);
        }
        if f.timeout_after_store > 0.0 && rng.random_bool(f.timeout_after_store.clamp(0.0, 1.0)) {
            return RequestFault::TimeoutAfterStore(f.timeout_hold);
        }
        if f.request_500 > 0.0 && rng.random_bool(f.request_500.clamp(0.0, 1.0)) {
            return RequestFault::Internal500;
        }
        if f.request_503 > 0.0 && rng.random_bool(f.request_503.clamp(0.0, 1.0)) {
            return RequestFault::Unavailable503;
        }
        RequestFault::None
    }

    /// The per-record InternalFailure fraction (0 when off).
    pub fn record_failure_rate(&self) -> f64 {
        self.faults.read().record_internal_failure.clamp(0.0, 1.0)
    }

    /// Draw `n` per-record failure decisions at `rate` (one RNG lock).
    pub fn draw_record_failures(&self, rate: f64, n: usize) -> Vec<bool> {
        let mut rng = self.rng.lock();
        (0..n).map(|_| rng.random_bool(rate)).collect()
    }
}

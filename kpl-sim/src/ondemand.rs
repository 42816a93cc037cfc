//! On-demand streams: add shards by themselves under sustained load.
//!
//! The rule is [`crate::OnDemand`]'s: every window, compare each on-demand
//! stream's offered writes with what its open shards take; after `sustain`
//! windows in a row at or above `utilization`, double the open shards.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::api::Shared;
use crate::config::OnDemand;
use crate::state::Stream;

/// Runs the scaler until shutdown.
pub async fn run(shared: Arc<Shared>, rule: OnDemand, mut shutdown: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(rule.window);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks.tick().await;
    let clock = shared.registry.clock;
    let mut last = clock.now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let now = clock.now();
        let secs = now.duration_since(last).as_secs_f64();
        last = now;
        for stream in shared.registry.all() {
            if stream.is_on_demand() {
                check(&shared, &stream, &rule, secs);
            }
        }
    }
}

/// One window of one stream: `secs` is the window's actual length.
/// Returns the new shard count when it scaled.
pub fn check(shared: &Shared, stream: &Stream, rule: &OnDemand, secs: f64) -> Option<u32> {
    let records = stream.demand_records.swap(0, Ordering::Relaxed) as f64;
    let bytes = stream.demand_bytes.swap(0, Ordering::Relaxed) as f64;
    let limits = shared.limits();
    let open = stream.shards.read().open.len() as u32;
    let capacity = open as f64 * secs.max(f64::EPSILON);
    let used = (records / (capacity * limits.shard_records_per_sec as f64))
        .max(bytes / (capacity * limits.shard_bytes_per_sec as f64));
    if used < rule.utilization {
        stream.hot_windows.store(0, Ordering::Relaxed);
        return None;
    }
    let hot = stream.hot_windows.fetch_add(1, Ordering::Relaxed) + 1;
    if hot < rule.sustain {
        return None;
    }
    stream.hot_windows.store(0, Ordering::Relaxed);
    let target = open.saturating_mul(2).min(rule.max_shards);
    if target <= open {
        return None;
    }
    match stream.update_shard_count(target, &limits) {
        Ok(_) => {
            tracing::info!(stream = %stream.name, from = open, to = target, utilization = used, "on-demand stream scaled out");
            Some(target)
        }
        Err(e) => {
            tracing::warn!(stream = %stream.name, error = %e.message, "on-demand stream could not scale out");
            None
        }
    }
}

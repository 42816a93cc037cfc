//! The shard-map lifecycle of one stream: loading, ready or unavailable;
//! at most one ListShards in flight; one refresh timer, whose generation
//! makes every older one stale; backoff after failures.

use std::time::Duration;

use tokio::time::Instant;

use crate::shard_map::ShardMap;

const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub(crate) enum MapState {
    Loading,
    Ready(ShardMap),
    /// ListShards failed: records go out plain (Kinesis routes them) and
    /// the map is retried.
    Unavailable,
}

pub(crate) struct MapLifecycle {
    pub state: MapState,
    /// When the ListShards in flight started, if one is.
    load_started: Option<Instant>,
    /// Read the map again once the load in flight is in: something it
    /// cannot know about happened after it started.
    reload: bool,
    failures: u32,
    /// After a failed load, no other starts before this (the map timer
    /// makes the next attempt): misrouted records must not hammer a
    /// ListShards that is failing.
    not_before: Option<Instant>,
    /// The last load failed to reach the endpoint: the next answer from
    /// the endpoint (it is back) loads at once instead of after the backoff.
    unreachable: bool,
    /// Bumped when the shard set is replaced; shard timers carry it.
    pub version: u64,
    /// The generation of the one live refresh timer.
    refresh_generation: u64,
}

impl MapLifecycle {
    pub fn new() -> MapLifecycle {
        MapLifecycle {
            state: MapState::Loading,
            load_started: None,
            reload: false,
            failures: 0,
            not_before: None,
            unreachable: false,
            version: 0,
            refresh_generation: 0,
        }
    }

    /// Asks for a load: `true` when one should start now, `false` when one
    /// is in flight (then another follows it) or the last one failed and
    /// its backoff has not passed (the map timer loads then).
    pub fn want_load(&mut self, now: Instant) -> bool {
        if self.load_started.is_some() {
            self.reload = true;
            return false;
        }
        if self.not_before.is_some_and(|t| now < t) {
            return false;
        }
        self.load_started = Some(now);
        self.reload = false;
        true
    }

    /// A load came back: when it started (`now` if none was recorded).
    pub fn load_ended(&mut self, now: Instant) -> Instant {
        self.load_started.take().unwrap_or(now)
    }

    pub fn loading(&self) -> bool {
        self.load_started.is_some()
    }

    /// Whether something asked for a fresher map while a load was in flight.
    pub fn reload_wanted(&self) -> bool {
        self.reload
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.unreachable = false;
        self.not_before = None;
    }

    /// A load failed: how long to wait before the next (before jitter).
    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        if matches!(self.state, MapState::Loading) {
            self.state = MapState::Unavailable;
        }
        (MIN_BACKOFF * 2u32.saturating_pow(self.failures.min(10) - 1)).min(MAX_BACKOFF)
    }

    /// The failing load did not reach the endpoint (connection refused,
    /// timeout): an outage, not a refusal.
    pub fn unreachable(&mut self) {
        self.unreachable = true;
    }

    /// The endpoint answered a request: after an outage that kept the map
    /// from loading, load it now (records go out plain until it is in)
    /// rather than at the end of a backoff of up to 30 s. Once per outage.
    pub fn reachable_again(&mut self, now: Instant) -> bool {
        if !std::mem::take(&mut self.unreachable) || !matches!(self.state, MapState::Unavailable) {
            return false;
        }
        self.want_load_now(now)
    }

    /// No load starts before `at` but the map timer's.
    pub fn back_off_until(&mut self, at: Instant) {
        self.not_before = Some(at);
    }

    /// The map timer's load: it may start even inside the backoff.
    pub fn want_load_now(&mut self, now: Instant) -> bool {
        self.not_before = None;
        self.want_load(now)
    }

    pub fn install(&mut self, map: ShardMap) {
        self.state = MapState::Ready(map);
        self.version += 1;
    }

    /// A new refresh timer's generation; every earlier one is stale now.
    pub fn next_refresh(&mut self) -> u64 {
        self.refresh_generation += 1;
        self.refresh_generation
    }

    pub fn is_current_refresh(&self, generation: u64) -> bool {
        generation == self.refresh_generation
    }

    pub fn map(&self) -> Option<&ShardMap> {
        match &self.state {
            MapState::Ready(map) => Some(map),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_load_at_a_time_and_a_reload_after_it() {
        let now = Instant::now();
        let mut m = MapLifecycle::new();
        assert!(m.want_load(now));
        assert!(!m.want_load(now), "a second load waits for the first");
        assert!(m.reload_wanted());
        assert_eq!(m.load_ended(now + Duration::from_secs(1)), now);
        assert!(m.want_load(now), "the wanted reload may start now");
        assert!(!m.reload_wanted());
    }

    #[test]
    fn after_a_failure_only_the_timer_loads_before_the_backoff_ends() {
        let now = Instant::now();
        let mut m = MapLifecycle::new();
        assert!(m.want_load(now));
        m.load_ended(now);
        let backoff = m.failed();
        m.back_off_until(now + backoff);
        assert!(
            !m.want_load(now),
            "a misrouted record does not load inside the backoff"
        );
        assert!(m.want_load(now + backoff));
        m.load_ended(now + backoff);
        m.back_off_until(now + backoff * 3);
        assert!(m.want_load_now(now + backoff), "the map timer does");
    }

    #[test]
    fn an_answer_after_an_outage_loads_the_map_once_without_waiting_out_the_backoff() {
        let now = Instant::now();
        let mut m = MapLifecycle::new();
        assert!(m.want_load(now));
        m.load_ended(now);
        m.unreachable();
        for _ in 0..8 {
            m.failed();
        }
        m.back_off_until(now + MAX_BACKOFF);
        let back = now + Duration::from_secs(1);
        assert!(m.reachable_again(back), "the endpoint answered: load now");
        m.load_ended(back);
        assert!(!m.reachable_again(back), "once per outage");

        // A refusal (not an outage) waits out its backoff.
        let mut refused = MapLifecycle::new();
        assert!(refused.want_load(now));
        refused.load_ended(now);
        refused.failed();
        refused.back_off_until(now + MAX_BACKOFF);
        assert!(!refused.reachable_again(back));
    }

    #[test]
    fn only_the_newest_refresh_timer_is_current() {
        let mut m = MapLifecycle::new();
        let first = m.next_refresh();
        let second = m.next_refresh();
        assert!(!m.is_current_refresh(first));
        assert!(m.is_current_refresh(second));
    }

    #[test]
    fn failures_back_off_exponentially_with_a_cap() {
        let mut m = MapLifecycle::new();
        let delays: Vec<Duration> = (0..12).map(|_| m.failed()).collect();
        assert_eq!(delays[0], MIN_BACKOFF);
        assert_eq!(delays[1], MIN_BACKOFF * 2);
        assert_eq!(*delays.last().unwrap(), MAX_BACKOFF);
        assert!(matches!(m.state, MapState::Unavailable));
        m.succeeded();
        assert_eq!(m.failed(), MIN_BACKOFF);
    }
}

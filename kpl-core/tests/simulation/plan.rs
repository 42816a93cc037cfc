//! A seeded run's plan: the stream, the load, the faults and the events,
//! all drawn from one seed, so a seed names a run exactly.

use std::time::Duration;

use kpl_sim::{Faults, Limits};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Simulated minutes of heavy, faulty traffic.
    Dense,
    /// Simulated days of sparse, bursty traffic: what shows over hours.
    Long,
}

#[derive(Debug, Clone, Copy)]
pub enum Api {
    PutMany,
    PutWith,
    TryPut,
}

#[derive(Debug, Clone)]
pub struct Burst {
    pub at: Duration,
    /// Index into `Plan::streams`, or `None` for a stream that does not exist.
    pub stream: Option<usize>,
    pub count: u32,
    pub api: Api,
}

#[derive(Debug, Clone)]
pub enum Event {
    Split { stream: usize },
    Merge { stream: usize },
    Delete { stream: usize },
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub kind: Kind,
    pub duration: Duration,
    pub streams: Vec<(String, u32)>,
    pub limits: Limits,
    pub faults: Faults,
    pub aggregation: bool,
    /// `StrictOrdering`: on in two runs in five.
    pub strict_ordering: bool,
    pub record_size: (usize, usize),
    pub keys: u32,
    /// One record in this many carries an explicit hash key.
    pub explicit_every: u32,
    pub bursts: Vec<Burst>,
    pub events: Vec<(Duration, Event)>,
    pub list_shards_outages: Vec<(Duration, Duration)>,
    pub credential_outages: Vec<(Duration, Duration)>,
    pub max_buffered_time: Duration,
    pub ttl: Duration,
    pub refresh: Duration,
    pub max_buffered_records: usize,
    pub max_connections: usize,
    pub rate_limit: u64,
    pub request_timeout: Duration,
}

/// One run in this many is a long one.
pub const LONG_EVERY: u64 = 20;

impl Plan {
    pub fn new(seed: u64) -> Plan {
        let mut rng = SmallRng::seed_from_u64(seed);
        let kind = if seed % LONG_EVERY == LONG_EVERY - 1 {
            Kind::Long
        } else {
            Kind::Dense
        };
        let mut plan = Plan::base(seed, kind, &mut rng);
        match kind {
            Kind::Dense => plan.dense(&mut rng),
            Kind::Long => plan.long(&mut rng),
        }
        plan.bursts.sort_by_key(|b| b.at);
        plan.events.sort_by_key(|(at, _)| *at);
        plan
    }

    fn base(seed: u64, kind: Kind, rng: &mut SmallRng) -> Plan {
        let streams = (0..rng.random_range(1..=3))
            .map(|i| (format!("s{i}"), rng.random_range(1..=6)))
            .collect();
        // Shards scaled down, so that a few thousand records overload them.
        let scale = [1.0, 0.2, 0.05][rng.random_range(0..3)];
        let limits = Limits {
            shard_records_per_sec: (1000.0 * scale) as u32,
            shard_bytes_per_sec: (1024.0 * 1024.0 * scale) as u64,
            ..Limits::default()
        };
        Plan {
            seed,
            kind,
            duration: Duration::ZERO,
            streams,
            limits,
            faults: Faults {
                seed,
                ..Faults::none()
            },
            aggregation: rng.random_bool(0.8),
            // From the seed, not the generator: the other draws stay as
            // they were for every seed.
            strict_ordering: seed % 5 < 2,
            record_size: [(8, 64), (50, 500), (1000, 5000)][rng.random_range(0..3)],
            keys: [1, 10, 1000][rng.random_range(0..3)],
            explicit_every: [0, 0, 20][rng.random_range(0..3)],
            bursts: Vec::new(),
            events: Vec::new(),
            list_shards_outages: Vec::new(),
            credential_outages: Vec::new(),
            max_buffered_time: Duration::from_millis([10, 100, 500][rng.random_range(0..3)]),
            ttl: Duration::from_secs([5, 30, 120][rng.random_range(0..3)]),
            refresh: Duration::from_secs([2, 10, 60][rng.random_range(0..3)]),
            max_buffered_records: [200, 2000, 500_000][rng.random_range(0..3)],
            max_connections: [1, 4, 24][rng.random_range(0..3)],
            rate_limit: [100, 150][rng.random_range(0..2)],
            request_timeout: Duration::from_secs([2, 6][rng.random_range(0..2)]),
        }
    }

    fn dense(&mut self, rng: &mut SmallRng) {
        self.duration = Duration::from_secs(rng.random_range(60..=240));
        let f = &mut self.faults;
        let maybe = |rng: &mut SmallRng, max: f64| {
            if rng.random_bool(0.4) {
                rng.random_range(0.0..max)
            } else {
                0.0
            }
        };
        f.record_internal_failure = maybe(rng, 0.1);
        f.request_500 = maybe(rng, 0.05);
        f.request_503 = maybe(rng, 0.05);
        f.drop_connection = maybe(rng, 0.02);
        f.timeout = maybe(rng, 0.02);
        f.timeout_after_store = maybe(rng, 0.02);
        f.timeout_hold = Duration::from_secs([1, 10][rng.random_range(0..2)]);
        if rng.random_bool(0.3) {
            f.latency = Duration::from_millis(rng.random_range(1..200));
            f.latency_jitter = Duration::from_millis(rng.random_range(0..100));
        }
        let total = rng.random_range(500..=4000);
        self.bursts_of(rng, total, 1..=400, self.duration.mul_f64(0.8));
        for _ in 0..rng.random_range(0..=3) {
            let stream = rng.random_range(0..self.streams.len());
            let at = self.random_time(rng, 0.7);
            let event = if rng.random_bool(0.6) {
                Event::Split { stream }
            } else {
                Event::Merge { stream }
            };
            self.events.push((at, event));
        }
        if self.streams.len() > 1 && rng.random_bool(0.15) {
            let at = self.random_time(rng, 0.9);
            self.events.push((at, Event::Delete { stream: 1 }));
        }
        if rng.random_bool(0.2) {
            let from = self.random_time(rng, 0.6);
            let length = Duration::from_secs(rng.random_range(5..60));
            self.list_shards_outages.push((from, from + length));
        }
    }

    fn long(&mut self, rng: &mut SmallRng) {
        self.duration = Duration::from_secs(rng.random_range(24..=48) * 3600);
        self.faults.record_internal_failure = rng.random_range(0.0..0.02);
        self.faults.request_500 = rng.random_range(0.0..0.01);
        self.faults.timeout_after_store = if rng.random_bool(0.3) { 0.01 } else { 0.0 };
        self.faults.timeout_hold = Duration::from_secs(10);
        self.refresh = Duration::from_secs([10, 60, 300][rng.random_range(0..3)]);
        // Sparse bursts: most gaps are long enough for a stream to go idle.
        let mut at = Duration::ZERO;
        while at < self.duration.mul_f64(0.95) {
            at += Duration::from_secs(rng.random_range(60..=5400));
            let stream = Some(rng.random_range(0..self.streams.len()));
            let api = random_api(rng);
            let count = rng.random_range(1..=60);
            self.bursts.push(Burst {
                at,
                stream,
                count,
                api,
            });
        }
        for _ in 0..rng.random_range(0..=4) {
            let stream = rng.random_range(0..self.streams.len());
            let at = self.random_time(rng, 0.9);
            self.events.push((at, Event::Split { stream }));
        }
        for _ in 0..rng.random_range(1..=3) {
            let from = self.random_time(rng, 0.9);
            let length = Duration::from_secs(rng.random_range(600..=7200));
            self.credential_outages.push((from, from + length));
        }
        for _ in 0..rng.random_range(0..=2) {
            let from = self.random_time(rng, 0.9);
            let length = Duration::from_secs(rng.random_range(30..=1800));
            self.list_shards_outages.push((from, from + length));
        }
    }

    /// `total` records in bursts of `sizes`, over `0..within`; one burst in
    /// ten goes to a stream that does not exist, in some runs.
    fn bursts_of(
        &mut self,
        rng: &mut SmallRng,
        total: u32,
        sizes: std::ops::RangeInclusive<u32>,
        within: Duration,
    ) {
        let missing = rng.random_bool(0.1);
        let mut left = total;
        while left > 0 {
            let count = rng.random_range(sizes.clone()).min(left);
            left -= count;
            let stream = if missing && rng.random_bool(0.1) {
                None
            } else {
                Some(rng.random_range(0..self.streams.len()))
            };
            let at = within.mul_f64(rng.random::<f64>());
            let api = random_api(rng);
            self.bursts.push(Burst {
                at,
                stream,
                count,
                api,
            });
        }
    }

    fn random_time(&self, rng: &mut SmallRng, within: f64) -> Duration {
        self.duration.mul_f64(within * rng.random::<f64>())
    }
}

fn random_api(rng: &mut SmallRng) -> Api {
    match rng.random_range(0..10) {
        0..=5 => Api::PutMany,
        6..=8 => Api::PutWith,
        _ => Api::TryPut,
    }
}

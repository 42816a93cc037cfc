//! The deterministic simulation suite: the producer over kpl-sim's state
//! model, on tokio's paused clock, for many seeded runs: dense ones
//! (simulated minutes of overload and faults) and long ones (simulated days
//! of sparse, bursty load). Each run checks the invariants in `check.rs`.
//!
//! ```text
//! cargo test -p kpl-core --test simulation                        # 1,000 runs
//! KPL_SIM_RUNS=20000 KPL_SIM_FIRST_SEED=1000 cargo test --release -p kpl-core --test simulation  # nightly
//! KPL_SIM_SEED=417 cargo test -p kpl-core --test simulation -- --nocapture   # replay one seed
//! ```

mod check;
mod client;
mod order;
mod ordering;
mod plan;
mod regressions;
mod run;
mod workloads;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use plan::Plan;

/// Wall time after which one run is taken to hang.
const WATCHDOG: Duration = Duration::from_secs(120);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[derive(Default)]
struct Totals {
    runs: AtomicU64,
    records: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    /// Inversions of first occurrences per key, in runs without and with
    /// StrictOrdering (the latter must be 0).
    inversions: [AtomicU64; 2],
    simulated_ms: AtomicU64,
    failures: Mutex<Vec<(u64, Vec<String>)>>,
}

impl Totals {
    fn add(&self, seed: u64, strict: bool, report: check::Report) {
        self.inversions[usize::from(strict)].fetch_add(report.inversions, Ordering::Relaxed);
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(report.records, Ordering::Relaxed);
        self.delivered
            .fetch_add(report.delivered, Ordering::Relaxed);
        self.duplicates
            .fetch_add(report.duplicates, Ordering::Relaxed);
        self.simulated_ms
            .fetch_add(report.simulated.as_millis() as u64, Ordering::Relaxed);
        if !report.violations.is_empty() {
            self.failures
                .lock()
                .unwrap()
                .push((seed, report.violations));
        }
    }
}

#[test]
fn seeded_runs_keep_every_invariant() {
    let seeds: Vec<u64> = match env_u64("KPL_SIM_SEED") {
        Some(seed) => {
            let mut plan = Plan::new(seed);
            let bursts = plan.bursts.len();
            plan.bursts.truncate(5);
            println!("seed {seed} ({bursts} bursts, the first 5 shown): {plan:#?}");
            vec![seed]
        }
        None => {
            let first = env_u64("KPL_SIM_FIRST_SEED").unwrap_or(0);
            let runs = env_u64("KPL_SIM_RUNS").unwrap_or(1000);
            (first..first + runs).collect()
        }
    };
    let started = Instant::now();
    let totals = Totals::default();
    let next = AtomicU64::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let running: Vec<Mutex<Option<(u64, Instant)>>> =
        (0..threads).map(|_| Mutex::new(None)).collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for slot in &running {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(&seed) = seeds.get(i) else { break };
                    *slot.lock().unwrap() = Some((seed, Instant::now()));
                    let plan = Plan::new(seed);
                    totals.add(seed, plan.strict_ordering, run::run(&plan));
                    *slot.lock().unwrap() = None;
                }
            });
        }
        // A run that never ends (time stands still while the pipeline
        // spins) is a failure too: name its seed instead of hanging CI.
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                for slot in &running {
                    if let Some((seed, since)) = *slot.lock().unwrap()
                        && since.elapsed() > WATCHDOG
                    {
                        eprintln!(
                            "seed {seed} has run for {:?} of wall time without ending; \
                             replay: KPL_SIM_SEED={seed} cargo test -p kpl-core --test simulation -- --nocapture",
                            since.elapsed()
                        );
                        std::process::exit(1);
                    }
                }
                if running.iter().all(|s| s.lock().unwrap().is_none()) && next.load(Ordering::Relaxed) as usize >= seeds.len() {
                    break;
                }
            }
        });
    });
    done.store(true, Ordering::Relaxed);
    let hours =
        Duration::from_millis(totals.simulated_ms.load(Ordering::Relaxed)).as_secs_f64() / 3600.0;
    let failures = totals.failures.into_inner().unwrap();
    println!(
        "first occurrences out of put order per key: {} without StrictOrdering, {} with",
        totals.inversions[0].load(Ordering::Relaxed),
        totals.inversions[1].load(Ordering::Relaxed)
    );
    println!(
        "{} runs, {:.0} simulated hours, {} records ({} delivered, {} duplicates read back) in {:.1} s: {}",
        totals.runs.load(Ordering::Relaxed),
        hours,
        totals.records.load(Ordering::Relaxed),
        totals.delivered.load(Ordering::Relaxed),
        totals.duplicates.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        if failures.is_empty() {
            "all invariants held".to_owned()
        } else {
            format!("{} runs broke an invariant", failures.len())
        }
    );
    for (seed, violations) in &failures {
        println!("\nseed {seed}: {:?}", Plan::new(*seed).kind);
        for v in violations.iter().take(12) {
            println!("  {v}");
        }
        println!(
            "  replay: KPL_SIM_SEED={seed} cargo test -p kpl-core --test simulation -- --nocapture"
        );
    }
    assert!(
        failures.is_empty(),
        "{} seeded runs broke an invariant (seeds above)",
        failures.len()
    );
}

//! Opening a spool directory: take its lock, read the checkpoint, scan the
//! segments (cut torn tails, skip damage), and queue every record without a
//! final result to be sent again, in order, before anything new.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use parking_lot::{Condvar, Mutex};
use tokio::sync::{Notify, watch};

use super::backlog::Backlog;
use super::completion::Completion;
use super::{AGE_SAMPLE_EVERY, Done, Segment, Spool, State, Stats, io_error, segment};
use crate::config::Config;
use crate::error::{Error, ErrorKind};

const LOCK_FILE: &str = "lock";

impl Spool {
    /// Opens (creating if needed) and locks `SpoolDirectory`, and recovers
    /// what an earlier producer left in it.
    pub(crate) fn open(config: &Config) -> Result<Arc<Spool>, Error> {
        let dir = config
            .spool_directory
            .clone()
            .ok_or_else(|| Error::new(ErrorKind::InvalidConfig, "SpoolDirectory is not set"))?;
        fs::create_dir_all(&dir).map_err(|e| io_error("cannot create SpoolDirectory", &dir, e))?;
        let lock = lock(&dir)?;
        let stats = Stats::default();
        let found = recover(&dir, &stats)?;
        let max_bytes = config.spool_max_bytes;
        let spool = Spool {
            max_bytes,
            // Small enough that drop_oldest and deletion free space in
            // steps, large enough that a segment holds many records.
            segment_bytes: (max_bytes / 16).clamp(64 * 1024, 64 * 1024 * 1024),
            sync: config.spool_sync,
            interval: config.spool_sync_interval,
            full_policy: config.spool_full_policy,
            state: Mutex::new(State {
                segments: found.segments,
                active: None,
                next_seq: found.next_seq,
                disk_bytes: found.disk_bytes,
                written: 0,
                synced: 0,
                backlog: found.backlog,
                failed: None,
                buf: Vec::new(),
            }),
            feed_wake: Condvar::new(),
            sync_wake: Condvar::new(),
            space: Notify::new(),
            closing: Notify::new(),
            synced: watch::Sender::new(0),
            fed: watch::Sender::new(u64::MAX),
            done: Arc::new(Done {
                completion: Mutex::new(found.completion),
                samples: Mutex::new(found.samples),
            }),
            stats: Arc::new(stats),
            handoff: std::sync::OnceLock::new(),
            closed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            dir,
            lock: Mutex::new(Some(lock)),
        };
        spool.publish_front(&spool.state.lock());
        let recovered = spool.stats.recovered.load(Relaxed);
        if recovered > 0 {
            tracing::info!(
                dir = %spool.dir.display(),
                records = recovered,
                damaged = spool.stats.damaged.load(Relaxed),
                "spool: records an earlier producer left are sent again first, in order"
            );
        }
        Ok(Arc::new(spool))
    }
}

/// Locks the directory for this process (flock on `lock`, released when
/// the file closes, so a killed process never leaves it locked).
fn lock(dir: &Path) -> Result<File, Error> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_error("cannot open the spool's lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(Error::new(
                ErrorKind::Spool,
                format!(
                    "SpoolDirectory {} is in use by another producer (process {}); \
                     each producer needs a directory of its own",
                    dir.display(),
                    holder.trim()
                ),
            ));
        }
        Err(fs::TryLockError::Error(e)) => return Err(io_error("cannot lock", &path, e)),
    }
    file.set_len(0)
        .and_then(|()| write!(file, "{}", std::process::id()))
        .map_err(|e| io_error("cannot write the spool's lock file", &path, e))?;
    Ok(file)
}

struct Found {
    segments: VecDeque<Segment>,
    next_seq: u64,
    disk_bytes: u64,
    backlog: Backlog,
    completion: Completion,
    samples: VecDeque<(u64, u64)>,
}

fn recover(dir: &Path, stats: &Stats) -> Result<Found, Error> {
    let firsts = segment::list(dir).map_err(|e| io_error("cannot read", dir, e))?;
    let checkpoint = Completion::load(dir).unwrap_or_else(|e| {
        // Without it, records that completed are sent again: duplicates,
        // never loss.
        tracing::warn!(dir = %dir.display(), error = %e, "spool: ignoring the checkpoint");
        None
    });
    let mut completion =
        checkpoint.unwrap_or_else(|| Completion::new(firsts.first().copied().unwrap_or(0)));
    let mut found = Found {
        segments: VecDeque::new(),
        next_seq: completion.watermark(),
        disk_bytes: 0,
        backlog: Backlog::default(),
        completion: Completion::default(),
        samples: VecDeque::new(),
    };
    let mut expected = None::<u64>;
    for (i, &first) in firsts.iter().enumerate() {
        let path = segment::path(dir, first);
        let end = firsts.get(i + 1).copied();
        if end.is_some_and(|end| end <= completion.watermark()) {
            // Every record in it is final: it outlived its checkpoint.
            let _ = fs::remove_file(&path);
            continue;
        }
        let scan = segment::scan(&path).map_err(|e| io_error("cannot read", &path, e))?;
        if scan.bad_header {
            tracing::error!(path = %path.display(), "spool: not a segment file (bad header); deleting it");
            let _ = fs::remove_file(&path);
            continue;
        }
        if scan.torn_tail {
            tracing::warn!(path = %path.display(), at = scan.valid_len, "spool: cutting a torn write at the end of a segment");
            segment::truncate(&path, scan.valid_len)
                .map_err(|e| io_error("cannot cut", &path, e))?;
        }
        // Records missing between whole frames (damage) are lost: count
        // them and mark them final, so they hold nothing up.
        let lost = |from: u64, to: u64, completion: &mut Completion| {
            if to > from {
                stats.damaged.fetch_add(to - from, Relaxed);
                completion.complete_range(from, to);
            }
        };
        let mut next = expected.unwrap_or(first).max(first);
        if let Some(e) = expected {
            lost(e, first, &mut completion);
        }
        for &(seq, written_ms, _) in &scan.records {
            if seq < next {
                continue; // a duplicate frame after damage: keep the first
            }
            lost(next, seq, &mut completion);
            next = seq + 1;
            if seq.is_multiple_of(AGE_SAMPLE_EVERY) || found.samples.is_empty() {
                found.samples.push_back((seq, written_ms));
            }
            if !completion.is_complete(seq) {
                found.backlog.push_recovered(seq);
                stats.recovered.fetch_add(1, Relaxed);
            }
        }
        if let Some(end) = end {
            lost(next, end, &mut completion);
            next = next.max(end);
        }
        if scan.damaged > 0 {
            tracing::warn!(path = %path.display(), stretches = scan.damaged, "spool: skipped damaged records");
        }
        expected = Some(next);
        found.next_seq = found.next_seq.max(next);
        found.disk_bytes += scan.valid_len;
        found.segments.push_back(Segment {
            first_seq: first,
            bytes: scan.valid_len,
        });
    }
    if let Some(first) = found.segments.front().map(|s| s.first_seq) {
        // Records before the oldest segment left with their segments.
        completion.complete_range(completion.watermark().min(first), first);
    }
    found.completion = completion;
    Ok(found)
}

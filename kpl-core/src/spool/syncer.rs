//! The syncer thread: fsyncs the active segment (`SpoolSync`), writes the
//! checkpoint every `SpoolSyncInterval`, and deletes segments whose records
//! all have their final result.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use parking_lot::MutexGuard;

use super::{Spool, SpoolSync, State, segment};

pub(super) fn run(spool: &Spool) {
    let mut st = spool.state.lock();
    let mut next_tick = Instant::now() + spool.interval;
    let mut saved = None;
    loop {
        if spool.is_closed() {
            return;
        }
        let dirty = st.written > st.synced && st.failed.is_none();
        if spool.sync == SpoolSync::Always && dirty {
            sync_now(spool, &mut st);
            continue;
        }
        let now = Instant::now();
        if now >= next_tick {
            if spool.sync == SpoolSync::Interval && dirty {
                sync_now(spool, &mut st);
            }
            MutexGuard::unlocked(&mut st, || checkpoint(spool, &mut saved));
            next_tick = now + spool.interval;
            continue;
        }
        spool.sync_wake.wait_until(&mut st, next_tick);
    }
}

/// fsyncs the active segment, without holding the lock while the disk works.
fn sync_now(spool: &Spool, st: &mut MutexGuard<'_, State>) {
    let Some(file) = st.active.clone() else {
        return;
    };
    let pos = st.written;
    match MutexGuard::unlocked(st, || file.sync_data()) {
        Ok(()) if pos > st.synced => {
            st.synced = pos;
            spool.synced.send_replace(pos);
        }
        Ok(()) => {}
        Err(e) => {
            spool.sync_failed(st, e);
        }
    }
}

/// Saves the completion state (if it changed) and deletes finished segments.
fn checkpoint(spool: &Spool, saved: &mut Option<(u64, Vec<(u64, u64)>)>) {
    let completion = spool.done.completion.lock().clone();
    let now = (completion.watermark(), completion.runs());
    if saved.as_ref() != Some(&now) {
        match completion.save(&spool.dir, spool.sync != SpoolSync::Never) {
            Ok(bytes) => {
                spool.stats.written.fetch_add(bytes, Relaxed);
            }
            Err(e) => {
                tracing::warn!(dir = %spool.dir.display(), error = %e, "spool: cannot write the checkpoint");
                return;
            }
        }
        *saved = Some(now);
    }
    let watermark = completion.watermark();
    let mut freed = false;
    {
        let mut st = spool.state.lock();
        while st.segments.len() >= 2 && st.segments[1].first_seq <= watermark {
            let done = st.segments.pop_front().expect("two segments");
            let _ = std::fs::remove_file(segment::path(&spool.dir, done.first_seq));
            st.disk_bytes -= done.bytes;
            freed = true;
        }
    }
    if freed {
        spool.space.notify_waiters();
    }
    let mut samples = spool.done.samples.lock();
    while samples.len() >= 2 && samples[1].0 <= watermark {
        samples.pop_front();
    }
}

/// At close: the last fsync and checkpoint.
pub(super) fn final_sync(spool: &Spool) {
    let mut st = spool.state.lock();
    if spool.sync != SpoolSync::Never && st.failed.is_none() {
        sync_now(spool, &mut st);
    }
    drop(st);
    checkpoint(spool, &mut None);
    let figures = spool.figures();
    if figures.records > 0 {
        tracing::info!(
            dir = %spool.dir.display(),
            records = figures.records,
            "spool: records without a final result stay on disk for the next producer"
        );
    }
}

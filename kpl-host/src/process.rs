//! State a process makes once and a child after `fork` makes again: the
//! parent's threads do not exist in the child, so what they ran (a tokio
//! runtime, a delivery thread) is forgotten there, never dropped (dropping
//! would wait for threads that will never answer).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// A value per process: made on first use, made again in a child after
/// `fork`, and closed for good by [`PerProcess::close`] (interpreter or
/// process exit).
///
/// ```
/// use kpl_host::process::PerProcess;
///
/// static WORKERS: PerProcess<Vec<u32>> = PerProcess::new();
/// let n = WORKERS.get(|| Ok::<_, String>(vec![1, 2]), Vec::len, || "closed".to_owned());
/// assert_eq!(n, Ok(2));
/// assert!(WORKERS.close().is_some());
/// assert_eq!(WORKERS.get(|| Ok(vec![]), Vec::len, || "closed".to_owned()), Err("closed".to_owned()));
/// ```
pub struct PerProcess<T> {
    slot: Mutex<Option<(u32, T)>>,
    closed: AtomicBool,
}

impl<T> Default for PerProcess<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> PerProcess<T> {
    /// Empty; the value is made on first [`get`](Self::get).
    pub const fn new() -> Self {
        PerProcess {
            slot: Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    /// `view` of this process's value, made by `make` if this process has
    /// none yet (first use, or first use in a child after `fork`). After
    /// [`close`](Self::close), `closed()`'s error.
    pub fn get<V, E>(
        &self,
        make: impl FnOnce() -> Result<T, E>,
        view: impl FnOnce(&T) -> V,
        closed: impl FnOnce() -> E,
    ) -> Result<V, E> {
        let pid = std::process::id();
        let mut slot = self.slot.lock();
        if let Some((owner, value)) = slot.as_ref() {
            if *owner == pid {
                return Ok(view(value));
            }
            // Inherited through fork: the parent's threads are not here.
            std::mem::forget(slot.take());
        }
        if self.closed.load(Ordering::SeqCst) {
            return Err(closed());
        }
        let value = make()?;
        let out = view(&value);
        *slot = Some((pid, value));
        Ok(out)
    }

    /// Whether this process made its value already.
    pub fn is_made(&self) -> bool {
        let pid = std::process::id();
        self.slot
            .lock()
            .as_ref()
            .is_some_and(|(owner, _)| *owner == pid)
    }

    /// For a child right after `fork` (from an at-fork hook): forgets the
    /// parent's value, also when a parent thread held the lock at the fork.
    pub fn after_fork_child(&self) {
        if self.slot.is_locked() {
            // Held by a parent thread at the fork; no thread here will
            // ever release it.
            // SAFETY: the child runs only the forking thread, which is in
            // this function and does not hold the lock.
            unsafe { self.slot.force_unlock() }
        }
        let mut slot = self.slot.lock();
        if slot
            .as_ref()
            .is_some_and(|(owner, _)| *owner != std::process::id())
        {
            std::mem::forget(slot.take());
        }
    }

    /// Closes for good (no value is made after this) and hands back this
    /// process's value to be shut down; a value inherited through `fork`
    /// is forgotten instead.
    pub fn close(&self) -> Option<T> {
        self.closed.store(true, Ordering::SeqCst);
        let (owner, value) = self.slot.lock().take()?;
        if owner != std::process::id() {
            std::mem::forget(value);
            return None;
        }
        Some(value)
    }
}

/// Worker threads of a runtime when nothing else is said.
pub const DEFAULT_WORKER_THREADS: usize = 2;

/// The one tokio runtime of a process, which every producer the host makes
/// runs on (fork-aware, as [`PerProcess`]). Its worker threads: those set
/// with [`set_worker_threads`](Self::set_worker_threads) before it starts,
/// else the `KPL_WORKER_THREADS` environment variable, else 2.
pub struct ProcessRuntime {
    runtime: PerProcess<tokio::runtime::Runtime>,
    threads: AtomicUsize,
    thread_name: &'static str,
}

impl ProcessRuntime {
    /// A runtime whose threads are called `thread_name`; started on first use.
    pub const fn new(thread_name: &'static str) -> Self {
        ProcessRuntime {
            runtime: PerProcess::new(),
            threads: AtomicUsize::new(0),
            thread_name,
        }
    }

    /// A handle to this process's runtime, started if need be.
    pub fn handle(&self) -> io::Result<tokio::runtime::Handle> {
        self.runtime.get(
            || runtime(self.thread_name, self.worker_threads()),
            |r| r.handle().clone(),
            || io::Error::other("the runtime was shut down; no new producers"),
        )
    }

    /// Sets the worker threads; only before the runtime started.
    pub fn set_worker_threads(&self, threads: usize) -> Result<(), &'static str> {
        if threads == 0 {
            return Err("worker threads must be at least 1");
        }
        if self.runtime.is_made() {
            return Err(
                "the runtime is already running; set worker threads before the first producer",
            );
        }
        self.threads.store(threads, Ordering::SeqCst);
        Ok(())
    }

    fn worker_threads(&self) -> usize {
        match self.threads.load(Ordering::SeqCst) {
            0 => worker_threads_from_env(),
            n => n,
        }
    }

    /// Stops the runtime for good, waiting at most `timeout` for its tasks.
    pub fn shutdown(&self, timeout: Duration) {
        if let Some(r) = self.runtime.close() {
            r.shutdown_timeout(timeout);
        }
    }
}

/// `KPL_WORKER_THREADS` when it is a whole number of at least 1, else 2.
pub fn worker_threads_from_env() -> usize {
    std::env::var("KPL_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_WORKER_THREADS)
}

/// A multi-threaded tokio runtime with every driver, for producers.
pub fn runtime(thread_name: &str, worker_threads: usize) -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .thread_name(thread_name)
        .enable_all()
        .build()
}

/// Whether the calling thread may block: not on a thread that drives a
/// tokio runtime (a producer's result callback), where waiting would stall
/// or deadlock the pipeline it waits for.
pub fn may_block() -> bool {
    tokio::runtime::Handle::try_current().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_is_made_once_and_refuses_thread_changes_after() {
        let rt = ProcessRuntime::new("kpl-host-test");
        rt.set_worker_threads(1).unwrap();
        assert!(rt.set_worker_threads(0).is_err());
        let a = rt.handle().unwrap();
        let b = rt.handle().unwrap();
        assert_eq!(a.id(), b.id());
        assert!(rt.set_worker_threads(3).is_err());
        assert_eq!(a.block_on(async { 7 }), 7);
        rt.shutdown(Duration::from_secs(1));
        assert!(rt.handle().is_err());
    }

    #[test]
    fn a_value_made_by_another_process_is_forgotten_and_made_again() {
        let cell: PerProcess<u32> = PerProcess::new();
        // As a child after fork sees it: the value belongs to another pid.
        *cell.slot.lock() = Some((std::process::id().wrapping_add(1), 1));
        assert!(!cell.is_made());
        assert_eq!(cell.get(|| Ok::<_, ()>(2), |v| *v, || ()), Ok(2));
        *cell.slot.lock() = Some((std::process::id().wrapping_add(1), 3));
        cell.after_fork_child();
        assert!(!cell.is_made());
        assert_eq!(cell.close(), None);
    }
}

//! The library's one tokio runtime, created on first use and kept for the
//! life of the process (an intentional process-lifetime static).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{self, kpl_error};

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
static WORKER_THREADS: AtomicUsize = AtomicUsize::new(0);
const DEFAULT_WORKER_THREADS: usize = 2;

/// The runtime every producer lives on; created on first call.
pub(crate) fn get() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        let threads = match WORKER_THREADS.load(Ordering::SeqCst) {
            0 => std::env::var("KPL_WORKER_THREADS")
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or(DEFAULT_WORKER_THREADS),
            n => n,
        };
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("kpl-worker")
            .enable_all()
            .build()
            .expect("kpl: cannot start the tokio runtime")
    })
}

pub(crate) fn set_worker_threads(threads: usize) -> kpl_error {
    if threads == 0 {
        return error::fail(
            kpl_error::KPL_ERR_INVALID_ARGUMENT,
            "worker threads must be at least 1",
        );
    }
    if RUNTIME.get().is_some() {
        return error::fail(
            kpl_error::KPL_ERR_INVALID_ARGUMENT,
            "the runtime is already running; set worker threads before the first producer",
        );
    }
    WORKER_THREADS.store(threads, Ordering::SeqCst);
    kpl_error::KPL_OK
}

/// Fails when called on a runtime thread (e.g. from a delivery callback),
/// where blocking would panic or deadlock.
pub(crate) fn check_may_block(what: &str) -> Result<(), kpl_error> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(error::fail(
            kpl_error::KPL_ERR_INVALID_ARGUMENT,
            format!(
                "{what} blocks and cannot be called from a kpl library thread (a delivery callback)"
            ),
        ));
    }
    Ok(())
}

/// Milliseconds to a timeout; 0 means no limit.
pub(crate) fn timeout(ms: u64) -> Option<std::time::Duration> {
    (ms != 0).then(|| std::time::Duration::from_millis(ms))
}

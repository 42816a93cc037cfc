//! The per-process machinery: the tokio runtime and the delivery thread,
//! in kpl-host's `PerProcess` (made again in a child after `fork`), shut
//! down at interpreter exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use kpl_core::ErrorKind;
use kpl_host::mailbox::Mailbox;
use kpl_host::process::{PerProcess, runtime, worker_threads_from_env};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::delivery::{Delivery, Outbox, delivery_loop};
use crate::errors::native_error;

/// The per-process machinery: the runtime and the delivery thread.
pub(crate) struct Process {
    runtime: tokio::runtime::Runtime,
    deliver: Outbox,
    thread: Option<thread::JoinHandle<()>>,
}

static PROCESS: PerProcess<Process> = PerProcess::new();

/// What a producer needs of the process: the runtime and the delivery mailbox.
#[derive(Clone)]
pub(crate) struct Env {
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) deliver: Outbox,
}

pub(crate) fn env() -> PyResult<Env> {
    PROCESS.get(
        || {
            let runtime = runtime("kpl-runtime", worker_threads_from_env()).map_err(|e| {
                PyRuntimeError::new_err(format!("cannot start the tokio runtime: {e}"))
            })?;
            let deliver: Outbox = Arc::new(Mailbox::<Delivery>::new());
            let from = deliver.clone();
            let thread = thread::Builder::new()
                .name("kpl-delivery".into())
                .spawn(move || delivery_loop(&from))
                .map_err(|e| {
                    PyRuntimeError::new_err(format!("cannot start the delivery thread: {e}"))
                })?;
            Ok(Process {
                runtime,
                deliver,
                thread: Some(thread),
            })
        },
        |p| Env {
            runtime: p.runtime.handle().clone(),
            deliver: p.deliver.clone(),
        },
        || {
            native_error(
                ErrorKind::ShutDown,
                "the interpreter is exiting; no new producers",
            )
        },
    )
}

/// This process's id, remembered: `getpid` is a system call, and every
/// put checks it (a producer made before a fork refuses in the child).
/// 0: not read yet, or forgotten in a forked child.
static PID: AtomicU32 = AtomicU32::new(0);

pub(crate) fn pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => {
            static FORGET_IN_CHILD: std::sync::Once = std::sync::Once::new();
            // Any fork, os.fork() or one from C: the child reads its own id.
            FORGET_IN_CHILD.call_once(|| {
                extern "C" fn forget() {
                    PID.store(0, Ordering::Relaxed);
                }
                // SAFETY: registers a handler that only stores to an atomic.
                unsafe { libc::pthread_atfork(None, None, Some(forget)) };
            });
            let pid = std::process::id();
            PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

/// Called in the child after `os.fork()`: forgets the parent's runtime.
#[pyfunction]
pub(crate) fn _after_fork_child() {
    PROCESS.after_fork_child();
}

/// Called by the exit hook after the open producers were closed: stops the
/// delivery thread (after it delivered what it has) and the runtime, so no
/// thread of ours touches the interpreter while it finalizes.
#[pyfunction]
pub(crate) fn _shutdown_runtime(py: Python<'_>) {
    let Some(mut process) = PROCESS.close() else {
        return;
    };
    py.allow_threads(move || {
        process.deliver.close();
        if let Some(t) = process.thread.take() {
            let _ = t.join();
        }
        process.runtime.shutdown_timeout(Duration::from_secs(1));
    });
}

//! The per-process machinery: the tokio runtime and the delivery thread,
//! made again in a child after `fork`, shut down at interpreter exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use kpl_core::ErrorKind;
use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::delivery::{Delivery, delivery_loop};
use crate::errors::native_error;

/// The per-process machinery: the runtime and the delivery thread.
pub(crate) struct Process {
    pub(crate) pid: u32,
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) deliver: mpsc::Sender<Delivery>,
    pub(crate) thread: Option<thread::JoinHandle<()>>,
}

pub(crate) static PROCESS: Mutex<Option<Process>> = Mutex::new(None);
/// Set by the exit hook: no runtime is started after it.
pub(crate) static EXITING: AtomicBool = AtomicBool::new(false);

/// What a producer needs of the process: the runtime and the delivery channel.
#[derive(Clone)]
pub(crate) struct Env {
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) deliver: mpsc::Sender<Delivery>,
}

pub(crate) fn env() -> PyResult<Env> {
    let pid = std::process::id();
    let mut guard = PROCESS.lock();
    if let Some(p) = guard.as_ref() {
        if p.pid == pid {
            return Ok(Env {
                runtime: p.runtime.handle().clone(),
                deliver: p.deliver.clone(),
            });
        }
        // Inherited through fork: the parent's threads do not exist here.
        // Dropping the runtime would wait for them; forget it instead.
        std::mem::forget(guard.take());
    }
    if EXITING.load(Ordering::SeqCst) {
        return Err(native_error(
            ErrorKind::ShutDown,
            "the interpreter is exiting; no new producers",
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("kpl-runtime")
        .enable_all()
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the tokio runtime: {e}")))?;
    let (tx, rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name("kpl-delivery".into())
        .spawn(move || delivery_loop(rx))
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the delivery thread: {e}")))?;
    let env = Env {
        runtime: runtime.handle().clone(),
        deliver: tx.clone(),
    };
    *guard = Some(Process {
        pid,
        runtime,
        deliver: tx,
        thread: Some(thread),
    });
    Ok(env)
}

/// Called in the child after `os.fork()`: forgets the parent's runtime.
#[pyfunction]
pub(crate) fn _after_fork_child() {
    if PROCESS.is_locked() {
        // Held by a parent thread at the fork; no thread here will ever
        // release it.
        // SAFETY: the child runs only the forking thread, which does not
        // hold the lock (it is in this function, not in env()).
        unsafe { PROCESS.force_unlock() }
    }
    let mut guard = PROCESS.lock();
    if guard.as_ref().is_some_and(|p| p.pid != std::process::id()) {
        std::mem::forget(guard.take());
    }
}

/// Called by the exit hook after the open producers were closed: stops the
/// delivery thread (after it delivered what it has) and the runtime, so no
/// thread of ours touches the interpreter while it finalizes.
#[pyfunction]
pub(crate) fn _shutdown_runtime(py: Python<'_>) {
    EXITING.store(true, Ordering::SeqCst);
    let process = PROCESS.lock().take();
    let Some(mut process) = process else { return };
    if process.pid != std::process::id() {
        std::mem::forget(process);
        return;
    }
    py.allow_threads(move || {
        let _ = process.deliver.send(Delivery::Stop);
        if let Some(t) = process.thread.take() {
            let _ = t.join();
        }
        process.runtime.shutdown_timeout(Duration::from_secs(1));
    });
}

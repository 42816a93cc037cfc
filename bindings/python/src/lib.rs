//! `kpl._kpl`: the native half of the Python binding.
//!
//! The hand-written `kpl` package (python/kpl) wraps these classes; users
//! never see this module directly.
//!
//! Threads:
//! - one tokio runtime per process (`env()`) runs every producer's
//!   pipeline; it is made again in a child after `fork`, and shut down by
//!   the `atexit` hook before the interpreter finalizes.
//! - kpl-core's result callbacks run on the pipeline task and never take the
//!   GIL: they complete a Rust-side `RecordFuture` in place, or send the
//!   result over a channel to one delivery thread, which takes the GIL once
//!   per batch to resolve `concurrent.futures.Future`s and (through
//!   `loop.call_soon_threadsafe`, once per loop and batch) asyncio futures.
//!
//! Modules: `process` (runtime, fork, exit), `delivery` (the delivery
//! thread), `producer` (`NativeProducer`), `future` (`RecordFuture`),
//! `records` (records from Python values), `results` (`PutResult`,
//! `Attempt`), `errors` (exceptions), `deaggregate`.

mod deaggregate;
mod delivery;
mod errors;
mod future;
mod process;
mod producer;
mod records;
mod results;

use std::time::Duration;

use pyo3::prelude::*;

use future::RecordFuture;
use producer::NativeProducer;
use results::{Attempt, PyPutResult};

/// Most results the delivery thread resolves under one hold of the GIL.
pub(crate) const DELIVERY_BATCH: usize = 4096;
/// How often a thread waiting in Rust comes back to check for Ctrl-C.
pub(crate) const SIGNAL_CHECK: Duration = Duration::from_millis(100);

#[pymodule]
fn _kpl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeProducer>()?;
    m.add_class::<RecordFuture>()?;
    m.add_class::<PyPutResult>()?;
    m.add_class::<Attempt>()?;
    m.add_function(wrap_pyfunction!(deaggregate::deaggregate, m)?)?;
    m.add_function(wrap_pyfunction!(producer::config_entries, m)?)?;
    m.add_function(wrap_pyfunction!(process::_after_fork_child, m)?)?;
    m.add_function(wrap_pyfunction!(process::_shutdown_runtime, m)?)?;
    Ok(())
}

//! `RecordFuture`: the result of one record of `put` or `put_many`, completed in
//! place from the pipeline without the GIL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kpl_core::{Error, PutResult, Room};
use parking_lot::{Condvar, Mutex};
use pyo3::exceptions::PyTimeoutError;
use pyo3::prelude::*;

use crate::SIGNAL_CHECK;
use crate::delivery::{Delivery, Outbox, run_callback, send};
use crate::errors::{exception, to_py_err};
use crate::results::put_result;

#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) result: Option<Result<PutResult, Error>>,
    pub(crate) waiters: usize,
    pub(crate) callbacks: Vec<(PyObject, PyObject)>,
}

#[derive(Default)]
pub(crate) struct FutureState {
    pub(crate) slot: Mutex<Slot>,
    pub(crate) done: Condvar,
}

impl FutureState {
    /// Completes the future; runs on the pipeline task, without the GIL.
    /// `room`, the record's buffer room, goes back once the result is
    /// where Python sees it (in the slot, or after the done-callbacks).
    pub(crate) fn complete(
        &self,
        result: Result<PutResult, Error>,
        room: Option<Room>,
        deliver: &Outbox,
    ) {
        let (waiters, callbacks) = {
            let mut slot = self.slot.lock();
            if slot.result.is_some() {
                return;
            }
            slot.result = Some(result);
            (slot.waiters, std::mem::take(&mut slot.callbacks))
        };
        if waiters > 0 {
            self.done.notify_all();
        }
        if !callbacks.is_empty() {
            // Once the interpreter exits, the callbacks cannot run.
            send(deliver, Delivery::Callbacks(callbacks, room));
        }
    }
}

/// The result of one record put with `Producer.put` or `put_many`: a lightweight
/// future with the `concurrent.futures.Future` interface (no cancellation).
#[pyclass(frozen, module = "kpl._kpl")]
pub(crate) struct RecordFuture {
    pub(crate) state: Arc<FutureState>,
}

#[pymethods]
impl RecordFuture {
    fn done(&self) -> bool {
        self.state.slot.lock().result.is_some()
    }

    fn running(&self) -> bool {
        !self.done()
    }

    fn cancelled(&self) -> bool {
        false
    }

    /// Records cannot be taken back once put: always False.
    fn cancel(&self) -> bool {
        false
    }

    /// The record's PutResult; raises its KplError if it failed, and
    /// TimeoutError if it is not resolved within `timeout` seconds.
    #[pyo3(signature = (timeout=None))]
    fn result(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<PyObject> {
        self.wait(py, timeout)?;
        let slot = self.state.slot.lock();
        match slot.result.as_ref() {
            Some(Ok(r)) => Ok(put_result(py, r.clone())),
            Some(Err(e)) => Err(to_py_err(py, e)),
            None => unreachable!("waited for the result"),
        }
    }

    /// The record's KplError, or None if it was delivered.
    #[pyo3(signature = (timeout=None))]
    fn exception(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<PyObject> {
        self.wait(py, timeout)?;
        let slot = self.state.slot.lock();
        match slot.result.as_ref() {
            Some(Err(e)) => Ok(exception(py, e)),
            _ => Ok(py.None()),
        }
    }

    /// Calls `fn(future)` once the future is resolved (at once if it is),
    /// on the binding's delivery thread.
    fn add_done_callback(slf: &Bound<'_, Self>, callback: PyObject) {
        let py = slf.py();
        {
            let mut slot = slf.get().state.slot.lock();
            if slot.result.is_none() {
                slot.callbacks
                    .push((callback, slf.clone().into_any().unbind()));
                return;
            }
        }
        run_callback(py, &callback, slf.clone().into_any().unbind());
    }

    fn __repr__(&self) -> String {
        match self.state.slot.lock().result.as_ref() {
            None => "<RecordFuture pending>".to_owned(),
            Some(Ok(_)) => "<RecordFuture finished>".to_owned(),
            Some(Err(e)) => format!("<RecordFuture failed: {e}>"),
        }
    }
}

impl RecordFuture {
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        if self.state.slot.lock().result.is_some() {
            // Resolved already: no need to give up the GIL.
            return Ok(());
        }
        let deadline = deadline(timeout)?;
        loop {
            let state = &self.state;
            let done = py.allow_threads(|| {
                let mut slot = state.slot.lock();
                if slot.result.is_some() {
                    return true;
                }
                let step = step_until(deadline);
                slot.waiters += 1;
                state.done.wait_for(&mut slot, step);
                slot.waiters -= 1;
                slot.result.is_some()
            });
            if done {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PyTimeoutError::new_err("the record is not resolved yet"));
            }
            py.check_signals()?;
        }
    }
}

pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    timeout
        .map(|t| kpl_host::timeout::from_secs_f64(t).map(|t| Instant::now() + t))
        .transpose()
        .map_err(pyo3::exceptions::PyValueError::new_err)
}

pub(crate) fn step_until(deadline: Option<Instant>) -> Duration {
    match deadline {
        None => SIGNAL_CHECK,
        Some(d) => d
            .saturating_duration_since(Instant::now())
            .min(SIGNAL_CHECK),
    }
}

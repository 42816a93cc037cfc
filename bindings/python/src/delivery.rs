//! The delivery thread: results reach Python here, under one hold of the
//! GIL per batch, with their buffer room given back once handed over.

use std::sync::Arc;

use kpl_core::{Error, PutResult, Room};
use kpl_host::mailbox::Mailbox;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyList;

use crate::DELIVERY_BATCH;
use crate::errors::exception;
use crate::results::put_result;

pub(crate) enum Delivery {
    /// A record's result for an asyncio future, and the record's buffer
    /// room (given back once the result is handed over; none for a refusal).
    Result(Target, Result<PutResult, Error>, Option<Room>),
    /// Done-callbacks of a [`RecordFuture`] that was completed in place,
    /// and the record's buffer room, given back once they ran.
    Callbacks(Vec<(PyObject, PyObject)>, Option<Room>),
    /// An asyncio put that waited for buffer room was admitted (or failed).
    Admitted {
        event_loop: Arc<PyObject>,
        future: PyObject,
        error: Option<Error>,
    },
}

/// Where results wait for the delivery thread (kpl-host's mailbox).
pub(crate) type Outbox = Arc<Mailbox<Delivery>>;

/// An asyncio future and its loop.
pub(crate) struct Target {
    pub(crate) event_loop: Arc<PyObject>,
    pub(crate) future: Arc<PyObject>,
}

/// The delivery thread: takes batches (at most `DELIVERY_BATCH`) until the
/// mailbox is closed and emptied.
pub(crate) fn delivery_loop(mailbox: &Mailbox<Delivery>) {
    while let Some(mut batch) = mailbox.wait_take(DELIVERY_BATCH) {
        // SAFETY: a plain query of the interpreter's state.
        if unsafe { pyo3::ffi::Py_IsInitialized() } == 0 {
            // Too late to deliver; leak rather than touch a dead interpreter.
            std::mem::forget(batch);
            return;
        }
        Python::with_gil(|py| deliver(py, &mut batch));
    }
}

/// Queues `d` for the delivery thread; once it stopped (interpreter
/// exit), `d` is leaked: its Python objects must not be dropped here.
pub(crate) fn send(outbox: &Outbox, d: Delivery) {
    if let Err(d) = outbox.post(d) {
        std::mem::forget(d);
    }
}

pub(crate) fn deliver(py: Python<'_>, batch: &mut Vec<Delivery>) {
    // Asyncio results grouped per loop: one call_soon_threadsafe each.
    let mut per_loop: Vec<(Arc<PyObject>, Vec<PyObject>)> = Vec::new();
    let mut push = |event_loop: Arc<PyObject>, item: PyObject| match per_loop
        .iter_mut()
        .find(|(l, _)| l.as_ptr() == event_loop.as_ptr())
    {
        Some((_, items)) => items.push(item),
        None => per_loop.push((event_loop, vec![item])),
    };
    // Buffer room comes back once the batch is handed over: a host that
    // falls behind makes puts wait instead of queueing results unbounded.
    let mut rooms = Vec::with_capacity(batch.len());
    for d in batch.drain(..) {
        match d {
            Delivery::Result(Target { event_loop, future }, result, room) => {
                rooms.push(room);
                let future = future.clone_ref(py);
                let item = match result {
                    Ok(r) => (future, true, put_result(py, r)),
                    Err(e) => (future, false, exception(py, &e)),
                };
                if let Ok(t) = item.into_pyobject(py) {
                    push(event_loop, t.into_any().unbind());
                }
            }
            Delivery::Admitted {
                event_loop,
                future,
                error,
            } => {
                let item = match error {
                    None => (future, true, py.None()),
                    Some(e) => (future, false, exception(py, &e)),
                };
                if let Ok(t) = item.into_pyobject(py) {
                    push(event_loop, t.into_any().unbind());
                }
            }
            Delivery::Callbacks(callbacks, room) => {
                for (callback, future) in callbacks {
                    run_callback(py, &callback, future);
                }
                rooms.push(room);
            }
        }
    }
    for (event_loop, items) in per_loop {
        let Ok(resolve) = helper(py, "_resolve_batch") else {
            continue;
        };
        let list = PyList::new(py, items);
        if let Ok(list) = list {
            // Fails when the loop is closed: the futures can no longer be awaited.
            let _ = event_loop
                .bind(py)
                .call_method1("call_soon_threadsafe", (resolve, list));
        }
    }
    drop(rooms);
}

pub(crate) fn run_callback(py: Python<'_>, callback: &PyObject, future: PyObject) {
    if let Err(e) = callback.bind(py).call1((future,)) {
        // As concurrent.futures does: log and go on.
        e.print(py);
    }
}

/// A helper function of the pure-Python part (kpl._native_support).
pub(crate) fn helper<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    static MODULE: GILOnceCell<PyObject> = GILOnceCell::new();
    let module = MODULE.get_or_try_init(py, || {
        py.import("kpl._errors").map(|m| m.into_any().unbind())
    })?;
    module.bind(py).getattr(name)
}

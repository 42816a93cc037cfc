//! The delivery thread: results reach Python here, under one hold of the
//! GIL per batch, with their buffer room given back once handed over.

use std::sync::Arc;

use kpl_core::{Error, PutResult, Room};
use kpl_host::mailbox::Mailbox;
use parking_lot::Mutex;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;

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
    // Each record's room travels inside its `Delivery`, so a bounded take
    // gives back exactly the room of what it took.
    while let Some(batch) = mailbox.wait_take(DELIVERY_BATCH) {
        let mut batch = batch.items;
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
    let mut per_loop: Vec<(Arc<PyObject>, Vec<Settle>)> = Vec::new();
    let mut push = |event_loop: Arc<PyObject>, item: Settle| match per_loop
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
                let future = Arc::try_unwrap(future).unwrap_or_else(|f| f.clone_ref(py));
                let item = match result {
                    Ok(r) => Settle::Result(future, put_result(py, r)),
                    Err(e) => Settle::Exception(future, exception(py, &e)),
                };
                push(event_loop, item);
            }
            Delivery::Admitted {
                event_loop,
                future,
                error,
            } => {
                let item = match error {
                    None => Settle::Result(future, py.None()),
                    Some(e) => Settle::Exception(future, exception(py, &e)),
                };
                push(event_loop, item);
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
        let Ok(resolve) = Py::new(py, Resolve(Mutex::new(items))) else {
            continue;
        };
        // Fails when the loop is closed: the futures can no longer be awaited.
        let _ = event_loop
            .bind(py)
            .call_method1(intern!(py, "call_soon_threadsafe"), (resolve,));
    }
    drop(rooms);
}

/// An asyncio future and what to settle it with.
enum Settle {
    Result(PyObject, PyObject),
    Exception(PyObject, PyObject),
}

/// The results of one batch for one event loop, settled there in one
/// callback (`call_soon_threadsafe(resolve)`): no Python object per result
/// but the result itself.
#[pyclass(frozen, module = "kpl._kpl")]
pub(crate) struct Resolve(Mutex<Vec<Settle>>);

#[pymethods]
impl Resolve {
    fn __call__(&self, py: Python<'_>) {
        let items = std::mem::take(&mut *self.0.lock());
        for item in items {
            let (future, method, value) = match &item {
                Settle::Result(f, v) => (f.bind(py), intern!(py, "set_result"), v),
                Settle::Exception(f, v) => (f.bind(py), intern!(py, "set_exception"), v),
            };
            // A future the caller cancelled is done already: skip it.
            let done = future
                .call_method0(intern!(py, "done"))
                .and_then(|d| d.is_truthy());
            if let Ok(false) = done
                && let Err(e) = future.call_method1(method, (value,))
            {
                e.print(py);
            }
        }
    }
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

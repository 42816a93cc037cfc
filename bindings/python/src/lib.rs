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

use std::future::Future;
use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kpl_core::{Config, Error, ErrorKind, Producer, PutResult, Room, UserRecord};
use parking_lot::{Condvar, Mutex};
use pyo3::exceptions::{PyRuntimeError, PyTimeoutError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyInt, PyList, PyString, PyTuple};

/// Most results the delivery thread resolves under one hold of the GIL.
const DELIVERY_BATCH: usize = 4096;
/// How often a thread waiting in Rust comes back to check for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------- process --

/// The per-process machinery: the runtime and the delivery thread.
struct Process {
    pid: u32,
    runtime: tokio::runtime::Runtime,
    deliver: mpsc::Sender<Delivery>,
    thread: Option<thread::JoinHandle<()>>,
}

static PROCESS: Mutex<Option<Process>> = Mutex::new(None);
/// Set by the exit hook: no runtime is started after it.
static EXITING: AtomicBool = AtomicBool::new(false);

/// What a producer needs of the process: the runtime and the delivery channel.
#[derive(Clone)]
struct Env {
    runtime: tokio::runtime::Handle,
    deliver: mpsc::Sender<Delivery>,
}

fn env() -> PyResult<Env> {
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
fn _after_fork_child() {
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
fn _shutdown_runtime(py: Python<'_>) {
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

// --------------------------------------------------------------- delivery --

enum Delivery {
    /// A record's result for a Python future, and the record's buffer room
    /// (given back once the result is handed over; none for a refusal).
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
    /// Deliver what came before, then stop.
    Stop,
}

enum Target {
    /// A `concurrent.futures.Future`.
    Concurrent(Arc<PyObject>),
    /// An asyncio future and its loop.
    Asyncio {
        event_loop: Arc<PyObject>,
        future: Arc<PyObject>,
    },
}

fn delivery_loop(rx: mpsc::Receiver<Delivery>) {
    let mut batch = Vec::with_capacity(DELIVERY_BATCH);
    loop {
        match rx.recv() {
            Ok(d) => batch.push(d),
            Err(_) => return,
        }
        while batch.len() < DELIVERY_BATCH {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        let stop = batch.iter().any(|d| matches!(d, Delivery::Stop));
        // SAFETY: a plain query of the interpreter's state.
        if unsafe { pyo3::ffi::Py_IsInitialized() } == 0 {
            // Too late to deliver; leak rather than touch a dead interpreter.
            std::mem::forget(std::mem::take(&mut batch));
            return;
        }
        Python::with_gil(|py| deliver(py, &mut batch));
        if stop {
            return;
        }
    }
}

fn deliver(py: Python<'_>, batch: &mut Vec<Delivery>) {
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
            Delivery::Result(Target::Concurrent(future), result, room) => {
                rooms.push(room);
                let outcome = match result {
                    Ok(r) => future
                        .bind(py)
                        .call_method1("set_result", (put_result(py, r),)),
                    Err(e) => future
                        .bind(py)
                        .call_method1("set_exception", (exception(py, &e),)),
                };
                // Fails only if the caller cancelled the future: nothing to do.
                drop(outcome);
            }
            Delivery::Result(Target::Asyncio { event_loop, future }, result, room) => {
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
            Delivery::Stop => {}
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

fn run_callback(py: Python<'_>, callback: &PyObject, future: PyObject) {
    if let Err(e) = callback.bind(py).call1((future,)) {
        // As concurrent.futures does: log and go on.
        e.print(py);
    }
}

/// A helper function of the pure-Python part (kpl._native_support).
fn helper<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    static MODULE: GILOnceCell<PyObject> = GILOnceCell::new();
    let module = MODULE.get_or_try_init(py, || {
        py.import("kpl._errors").map(|m| m.into_any().unbind())
    })?;
    module.bind(py).getattr(name)
}

// ----------------------------------------------------------------- errors --

/// The one place where a kpl-core error becomes a Python exception object:
/// `kpl._errors._from_native` maps the kind to the class.
fn exception(py: Python<'_>, e: &Error) -> PyObject {
    let make = || -> PyResult<PyObject> {
        let record = e.record();
        let attempts = e
            .attempts()
            .iter()
            .map(|a| Attempt::from(a.clone()))
            .collect::<Vec<_>>();
        let args = (
            e.kind().as_str(),
            e.message(),
            e.code(),
            record.map(|r| r.partition_key()),
            record.map(|r| PyBytes::new(py, r.data())),
            record.and_then(|r| r.stream()),
            record.and_then(|r| r.explicit_hash_key()),
            attempts,
        );
        Ok(helper(py, "_from_native")?.call1(args)?.unbind())
    };
    make().unwrap_or_else(|err| err.into_value(py).into_any())
}

fn to_py_err(py: Python<'_>, e: &Error) -> PyErr {
    PyErr::from_value(exception(py, e).into_bound(py))
}

fn native_error(kind: ErrorKind, message: &str) -> PyErr {
    Python::with_gil(|py| to_py_err(py, &Error::new(kind, message)))
}

// ---------------------------------------------------------------- results --

/// One try at delivering a record.
#[pyclass(frozen, module = "kpl._kpl")]
struct Attempt {
    #[pyo3(get)]
    delay_ms: f64,
    #[pyo3(get)]
    duration_ms: f64,
    #[pyo3(get)]
    error_code: Option<String>,
    #[pyo3(get)]
    error_message: Option<String>,
}

impl From<kpl_core::Attempt> for Attempt {
    fn from(a: kpl_core::Attempt) -> Attempt {
        Attempt {
            delay_ms: a.delay.as_secs_f64() * 1000.0,
            duration_ms: a.duration.as_secs_f64() * 1000.0,
            error_code: a.error_code,
            error_message: a.error_message,
        }
    }
}

#[pymethods]
impl Attempt {
    /// Whether this attempt delivered the record.
    #[getter]
    fn success(&self) -> bool {
        self.error_code.is_none()
    }

    fn __repr__(&self) -> String {
        match &self.error_code {
            None => format!(
                "Attempt(success, delay_ms={:.3}, duration_ms={:.3})",
                self.delay_ms, self.duration_ms
            ),
            Some(code) => format!(
                "Attempt(error_code={code:?}, error_message={:?}, delay_ms={:.3}, duration_ms={:.3})",
                self.error_message.as_deref().unwrap_or(""),
                self.delay_ms,
                self.duration_ms
            ),
        }
    }
}

/// Where a delivered record is in the stream.
#[pyclass(frozen, name = "PutResult", module = "kpl._kpl")]
struct PyPutResult {
    inner: PutResult,
}

fn put_result(py: Python<'_>, r: PutResult) -> PyObject {
    match Py::new(py, PyPutResult { inner: r }) {
        Ok(p) => p.into_any(),
        Err(e) => e.into_value(py).into_any(),
    }
}

#[pymethods]
impl PyPutResult {
    #[getter]
    fn shard_id(&self) -> &str {
        self.inner.shard_id()
    }
    #[getter]
    fn sequence_number(&self) -> &str {
        self.inner.sequence_number()
    }
    #[getter]
    fn sub_sequence_number(&self) -> u64 {
        self.inner.sub_sequence_number()
    }
    #[getter]
    fn aggregated(&self) -> bool {
        self.inner.is_aggregated()
    }
    #[getter]
    fn attempts(&self) -> Vec<Attempt> {
        self.inner
            .attempts()
            .iter()
            .map(|a| Attempt::from(a.clone()))
            .collect()
    }
    fn __repr__(&self) -> String {
        format!(
            "PutResult(shard_id={:?}, sequence_number={:?}, sub_sequence_number={}, aggregated={}, attempts={})",
            self.inner.shard_id(),
            self.inner.sequence_number(),
            self.inner.sub_sequence_number(),
            if self.inner.is_aggregated() {
                "True"
            } else {
                "False"
            },
            self.inner.attempts().len()
        )
    }
}

// ----------------------------------------------------------- RecordFuture --

#[derive(Default)]
struct Slot {
    result: Option<Result<PutResult, Error>>,
    waiters: usize,
    callbacks: Vec<(PyObject, PyObject)>,
}

#[derive(Default)]
struct FutureState {
    slot: Mutex<Slot>,
    done: Condvar,
}

impl FutureState {
    /// Completes the future; runs on the pipeline task, without the GIL.
    /// `room`, the record's buffer room, goes back once the result is
    /// where Python sees it (in the slot, or after the done-callbacks).
    fn complete(
        &self,
        result: Result<PutResult, Error>,
        room: Option<Room>,
        deliver: &mpsc::Sender<Delivery>,
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
        if !callbacks.is_empty()
            && let Err(mpsc::SendError(d)) = deliver.send(Delivery::Callbacks(callbacks, room))
        {
            // The interpreter is exiting; the callbacks cannot run.
            std::mem::forget(d);
        }
    }
}

/// The result of one record put with `Producer.put_many`: a lightweight
/// future with the `concurrent.futures.Future` interface (no cancellation).
#[pyclass(frozen, module = "kpl._kpl")]
struct RecordFuture {
    state: Arc<FutureState>,
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

fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_finite() && t >= 0.0 => {
            Ok(Some(Instant::now() + Duration::from_secs_f64(t.min(1e9))))
        }
        Some(t) => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "timeout must be a number of seconds >= 0, got {t}"
        ))),
    }
}

fn step_until(deadline: Option<Instant>) -> Duration {
    match deadline {
        None => SIGNAL_CHECK,
        Some(d) => d
            .saturating_duration_since(Instant::now())
            .min(SIGNAL_CHECK),
    }
}

// ---------------------------------------------------------------- records --

fn record_data(data: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(b) = data.downcast::<PyBytes>() {
        return Ok(Bytes::copy_from_slice(b.as_bytes()));
    }
    if let Ok(s) = data.downcast::<PyString>() {
        return Ok(Bytes::from(s.extract::<String>()?));
    }
    if let Ok(b) = data.downcast::<PyByteArray>() {
        return Ok(Bytes::from(b.to_vec()));
    }
    if data.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(
            "data must be bytes, bytearray, memoryview or str, not int",
        ));
    }
    // memoryview and other buffers.
    let bytes = data
        .py()
        .get_type::<PyBytes>()
        .call1((data,))
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "data must be bytes, bytearray, memoryview or str, not {}",
                data.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
    Ok(Bytes::copy_from_slice(
        bytes.downcast::<PyBytes>()?.as_bytes(),
    ))
}

fn make_record(
    partition_key: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    stream: Option<&Bound<'_, PyAny>>,
    explicit_hash_key: Option<&Bound<'_, PyAny>>,
) -> PyResult<UserRecord> {
    let key: String = partition_key
        .extract()
        .map_err(|_| PyTypeError::new_err("partition_key must be a str"))?;
    let mut record = UserRecord::new(key, record_data(data)?);
    if let Some(s) = stream.filter(|s| !s.is_none()) {
        record = record.with_stream(s.extract::<String>()?);
    }
    if let Some(k) = explicit_hash_key.filter(|k| !k.is_none()) {
        let k = match k.downcast::<PyInt>() {
            Ok(i) => i.str()?.to_string(),
            Err(_) => k.extract::<String>()?,
        };
        record = record.with_explicit_hash_key(k);
    }
    Ok(record)
}

/// One item of `put_many`: a `(key, data)` tuple or a dict with
/// `partition_key`, `data` and optional `stream`, `explicit_hash_key`.
fn record_from_item(item: &Bound<'_, PyAny>) -> PyResult<UserRecord> {
    if let Ok(t) = item.downcast::<PyTuple>() {
        if t.len() == 2 {
            return make_record(&t.get_item(0)?, &t.get_item(1)?, None, None);
        }
    } else if let Ok(d) = item.downcast::<PyDict>() {
        let key = d.get_item("partition_key")?;
        let data = d.get_item("data")?;
        if let (Some(key), Some(data)) = (key, data) {
            let stream = d.get_item("stream")?;
            let ehk = d.get_item("explicit_hash_key")?;
            return make_record(&key, &data, stream.as_ref(), ehk.as_ref());
        }
    }
    Err(PyTypeError::new_err(
        "put_many takes (partition_key, data) tuples or dicts with 'partition_key' and 'data'",
    ))
}

fn records_from(records: &Bound<'_, PyAny>) -> PyResult<Vec<UserRecord>> {
    let mut out = Vec::with_capacity(records.len().unwrap_or(0));
    for item in records.try_iter()? {
        out.push(record_from_item(&item?)?);
    }
    Ok(out)
}

// --------------------------------------------------------------- producer --

/// A kpl-core producer owned by one process.
#[pyclass(frozen, module = "kpl._kpl")]
struct NativeProducer {
    producer: ManuallyDrop<Producer>,
    pid: u32,
    env: Env,
    put_timeout: Option<Duration>,
}

impl Drop for NativeProducer {
    fn drop(&mut self) {
        if self.pid == std::process::id() {
            // SAFETY: dropped once, here.
            unsafe { ManuallyDrop::drop(&mut self.producer) }
        }
        // In a forked child the producer belongs to the parent's (gone)
        // runtime: leak it.
    }
}

/// A result callback that takes the record's buffer room along to the
/// delivery thread.
type Callback = Box<dyn FnOnce(Result<PutResult, Error>, Room) + Send + 'static>;

/// Why a put did not go in.
enum PutFailed {
    /// kpl-core refused the record (it is handed back in the error).
    Record(Error),
    /// A signal handler raised (Ctrl-C) while the put waited for room.
    Interrupted(PyErr),
}

impl PutFailed {
    fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            PutFailed::Record(e) => to_py_err(py, &e),
            PutFailed::Interrupted(e) => e,
        }
    }
}

impl NativeProducer {
    fn check_process(&self) -> PyResult<()> {
        if self.pid != std::process::id() {
            return Err(native_error(
                ErrorKind::ShutDown,
                "this producer was created in the parent process before os.fork(); create a new one in the child",
            ));
        }
        Ok(())
    }

    /// Puts a record from a synchronous caller: at once if there is room,
    /// else waiting without the GIL (Ctrl-C is checked every 100 ms).
    fn put_sync(
        &self,
        py: Python<'_>,
        record: UserRecord,
        timeout: Option<Duration>,
        make_callback: &(dyn Fn() -> Callback + Sync),
    ) -> Result<(), PutFailed> {
        let record = match self.producer.try_put_with_room(record, make_callback()) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::BufferFull => {
                e.into_record().expect("BufferFull hands the record back")
            }
            Err(e) => return Err(PutFailed::Record(e)),
        };
        let deadline = timeout.or(self.put_timeout).map(|t| Instant::now() + t);
        let mut record = Some(record);
        loop {
            let producer = &*self.producer;
            let step = step_until(deadline);
            let rec = record.take().expect("a record to put");
            let outcome = py.allow_threads(|| {
                producer.put_blocking_with_room(rec, Some(step), make_callback())
            });
            match outcome {
                Ok(()) => return Ok(()),
                Err(e)
                    if e.kind() == ErrorKind::BufferFull
                        && deadline.is_none_or(|d| Instant::now() < d) =>
                {
                    record = e.into_record();
                    py.check_signals().map_err(PutFailed::Interrupted)?;
                }
                Err(e) => return Err(PutFailed::Record(e)),
            }
        }
    }

    /// Puts records that found no room on a task that waits for it (the
    /// event loop never blocks); the returned asyncio future resolves once
    /// the last is in, or raises the error that kept one out.
    fn put_later(
        &self,
        py: Python<'_>,
        event_loop: Arc<PyObject>,
        waiting: Vec<(UserRecord, Arc<PyObject>)>,
    ) -> PyResult<PyObject> {
        let admitted = event_loop.bind(py).call_method0("create_future")?.unbind();
        let signal = admitted.clone_ref(py);
        let producer = (*self.producer).clone();
        let deliver = self.env.deliver.clone();
        self.env.runtime.spawn(async move {
            let mut error = None;
            for (record, future) in waiting {
                let callback = async_callback(&deliver, event_loop.clone(), future.clone());
                if let Err(e) = producer.put_with_room(record, callback).await {
                    // This record's own future fails too; the first error
                    // also goes to the awaited one.
                    if error.is_none() {
                        error = Some(Error::new(e.kind(), e.message().to_owned()));
                    }
                    let target = Target::Asyncio {
                        event_loop: event_loop.clone(),
                        future,
                    };
                    let _ = deliver.send(Delivery::Result(target, Err(e), None));
                }
            }
            let _ = deliver.send(Delivery::Admitted {
                event_loop,
                future: signal,
                error,
            });
        });
        Ok(admitted)
    }

    /// Runs `fut` on the runtime without the GIL, coming back for Ctrl-C;
    /// `None` when `timeout` passed first.
    fn block_on<F: Future + Send>(
        &self,
        py: Python<'_>,
        fut: F,
        timeout: Option<f64>,
    ) -> PyResult<Option<F::Output>>
    where
        F::Output: Send,
    {
        let deadline = deadline(timeout)?;
        let mut fut = Box::pin(fut);
        loop {
            let step = step_until(deadline);
            let runtime = &self.env.runtime;
            let fut = &mut fut;
            let out = py.allow_threads(move || {
                runtime.block_on(async move { tokio::time::timeout(step, fut).await.ok() })
            });
            if out.is_some() {
                return Ok(out);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            py.check_signals()?;
        }
    }
}

fn seconds(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    Ok(deadline(timeout)?.map(|d| d.saturating_duration_since(Instant::now())))
}

#[pymethods]
impl NativeProducer {
    /// `settings`: (name, value) pairs, names in any case style of the
    /// KPL's; `properties`: a KPL properties file read first.
    #[new]
    #[pyo3(signature = (settings, properties=None))]
    fn new(
        py: Python<'_>,
        settings: Vec<(String, String)>,
        properties: Option<std::path::PathBuf>,
    ) -> PyResult<NativeProducer> {
        let mut builder = match &properties {
            Some(path) => Config::from_properties(path).map_err(|e| to_py_err(py, &e))?,
            None => Config::builder(),
        };
        for (name, value) in &settings {
            builder = builder.set(name, value).map_err(|e| to_py_err(py, &e))?;
        }
        let config = builder.build().map_err(|e| to_py_err(py, &e))?;
        let put_timeout = Some(config.user_record_timeout).filter(|t| !t.is_zero());
        let env = env()?;
        let runtime = env.runtime.clone();
        let producer = py
            .allow_threads(move || runtime.block_on(Producer::new(config)))
            .map_err(|e| to_py_err(py, &e))?;
        Ok(NativeProducer {
            producer: ManuallyDrop::new(producer),
            pid: std::process::id(),
            env,
            put_timeout,
        })
    }

    /// The default stream (StreamName), if any.
    #[getter]
    fn stream(&self) -> Option<String> {
        self.producer.config().stream.clone()
    }

    /// Records put and not yet resolved.
    #[getter]
    fn outstanding(&self) -> u64 {
        self.producer.outstanding()
    }

    /// The metrics as JSON with the KPL's names.
    fn metrics_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.producer.metrics())
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// Puts one record; its result resolves `future` (a
    /// concurrent.futures.Future) from the delivery thread.
    #[pyo3(signature = (partition_key, data, stream, explicit_hash_key, timeout, future))]
    #[allow(clippy::too_many_arguments)]
    fn put(
        &self,
        py: Python<'_>,
        partition_key: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        stream: Option<&Bound<'_, PyAny>>,
        explicit_hash_key: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        future: PyObject,
    ) -> PyResult<()> {
        self.check_process()?;
        let record = make_record(partition_key, data, stream, explicit_hash_key)?;
        let future = Arc::new(future);
        let deliver = self.env.deliver.clone();
        let make = move || -> Callback {
            let future = future.clone();
            let deliver = deliver.clone();
            Box::new(move |result, room| {
                let _ = deliver.send(Delivery::Result(
                    Target::Concurrent(future),
                    result,
                    Some(room),
                ));
            })
        };
        self.put_sync(py, record, seconds(timeout)?, &make)
            .map_err(|e| e.into_py(py))
    }

    /// Puts many records; one RecordFuture per record, in order. Records
    /// that fail validation fail their future; the others go in, waiting
    /// for room as needed (at most `timeout` per record).
    #[pyo3(signature = (records, timeout=None))]
    fn put_many(
        &self,
        py: Python<'_>,
        records: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Vec<Py<RecordFuture>>> {
        self.check_process()?;
        let records = records_from(records)?;
        let timeout = seconds(timeout)?;
        let states: Arc<Vec<Arc<FutureState>>> = Arc::new(
            (0..records.len())
                .map(|_| Arc::new(FutureState::default()))
                .collect(),
        );
        let futures = states
            .iter()
            .map(|state| {
                Py::new(
                    py,
                    RecordFuture {
                        state: state.clone(),
                    },
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        // The whole batch in one call that never waits; what finds the
        // buffer full comes back here and goes through the waiting path
        // below, which stays responsive to Ctrl-C.
        let no_room: Arc<Mutex<Vec<(usize, Error)>>> = Arc::default();
        let callback = {
            let (states, no_room, deliver) =
                (states.clone(), no_room.clone(), self.env.deliver.clone());
            move |i: usize, result: Result<PutResult, Error>, room: Room| match result {
                Err(e) if e.kind() == ErrorKind::BufferFull => no_room.lock().push((i, e)),
                result => states[i].complete(result, Some(room), &deliver),
            }
        };
        let producer = &*self.producer;
        py.allow_threads(|| producer.try_put_many_with_room(records, callback));
        let no_room = std::mem::take(&mut *no_room.lock());
        for (i, e) in no_room {
            let record = e.into_record().expect("BufferFull hands the record back");
            let state = states[i].clone();
            let deliver = self.env.deliver.clone();
            let make = move || -> Callback {
                let state = state.clone();
                let deliver = deliver.clone();
                Box::new(move |result, room| state.complete(result, Some(room), &deliver))
            };
            match self.put_sync(py, record, timeout, &make) {
                Ok(()) => {}
                // Fail this record's future, keep going with the others.
                Err(PutFailed::Record(e)) => states[i].slot.lock().result = Some(Err(e)),
                Err(PutFailed::Interrupted(e)) => return Err(e),
            }
        }
        Ok(futures)
    }

    /// Puts one record for an asyncio caller: the result resolves `future`
    /// on `event_loop`. Returns None when the record went in at once, else
    /// an asyncio future that resolves once it found room (or raises the
    /// error that kept it out).
    #[pyo3(signature = (partition_key, data, stream, explicit_hash_key, event_loop, future))]
    #[allow(clippy::too_many_arguments)]
    fn put_async(
        &self,
        py: Python<'_>,
        partition_key: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        stream: Option<&Bound<'_, PyAny>>,
        explicit_hash_key: Option<&Bound<'_, PyAny>>,
        event_loop: PyObject,
        future: PyObject,
    ) -> PyResult<Option<PyObject>> {
        self.check_process()?;
        let record = make_record(partition_key, data, stream, explicit_hash_key)?;
        let event_loop = Arc::new(event_loop);
        let future = Arc::new(future);
        let callback = async_callback(&self.env.deliver, event_loop.clone(), future.clone());
        match self.producer.try_put_with_room(record, callback) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == ErrorKind::BufferFull => {
                let record = e.into_record().expect("BufferFull hands the record back");
                self.put_later(py, event_loop, vec![(record, future)])
                    .map(Some)
            }
            Err(e) => Err(to_py_err(py, &e)),
        }
    }

    /// Puts many records for an asyncio caller: returns one asyncio future
    /// per record, in order, and None, or an asyncio future to await
    /// before the last records found room.
    #[pyo3(signature = (records, event_loop))]
    fn put_many_async(
        &self,
        py: Python<'_>,
        records: &Bound<'_, PyAny>,
        event_loop: PyObject,
    ) -> PyResult<(Vec<PyObject>, Option<PyObject>)> {
        self.check_process()?;
        let records = records_from(records)?;
        let create = event_loop.bind(py).getattr("create_future")?;
        let event_loop = Arc::new(event_loop);
        let mut futures = Vec::with_capacity(records.len());
        let mut waiting = Vec::new();
        for record in records {
            let future = Arc::new(create.call0()?.unbind());
            futures.push(future.clone_ref(py));
            if !waiting.is_empty() {
                waiting.push((record, future));
                continue;
            }
            let callback = async_callback(&self.env.deliver, event_loop.clone(), future.clone());
            match self.producer.try_put_with_room(record, callback) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::BufferFull => {
                    let record = e.into_record().expect("BufferFull hands the record back");
                    waiting.push((record, future));
                }
                Err(e) => {
                    future
                        .bind(py)
                        .call_method1("set_exception", (exception(py, &e),))?;
                }
            }
        }
        let admitted = if waiting.is_empty() {
            None
        } else {
            Some(self.put_later(py, event_loop, waiting)?)
        };
        Ok((futures, admitted))
    }

    /// Sends everything buffered and waits for the results; False if
    /// `timeout` seconds passed first.
    #[pyo3(signature = (timeout=None))]
    fn flush(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        self.check_process()?;
        let producer = (*self.producer).clone();
        match self.block_on(py, async move { producer.flush().await }, timeout)? {
            None => Ok(false),
            Some(Ok(())) => Ok(true),
            Some(Err(e)) if e.kind() == ErrorKind::ShutDown => Ok(true),
            Some(Err(e)) => Err(to_py_err(py, &e)),
        }
    }

    /// Flushes for at most `timeout` seconds, then stops; records not
    /// resolved by then fail with ShutDownError. True if none had to fail.
    #[pyo3(signature = (timeout=30.0))]
    fn close(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        if self.pid != std::process::id() {
            return Ok(false);
        }
        let t = seconds(Some(timeout))?.unwrap_or_default();
        let producer = (*self.producer).clone();
        let runtime = self.env.runtime.clone();
        let out = py.allow_threads(move || runtime.block_on(producer.shutdown(t)));
        Ok(out.is_ok())
    }
}

fn async_callback(
    deliver: &mpsc::Sender<Delivery>,
    event_loop: Arc<PyObject>,
    future: Arc<PyObject>,
) -> Callback {
    let deliver = deliver.clone();
    Box::new(move |result, room| {
        let _ = deliver.send(Delivery::Result(
            Target::Asyncio { event_loop, future },
            result,
            Some(room),
        ));
    })
}

// ----------------------------------------------------------- deaggregate --

/// The user records in one Kinesis record: (partition_key,
/// explicit_hash_key, data, sub_sequence_number, aggregated) tuples.
#[pyfunction]
#[pyo3(signature = (partition_key, explicit_hash_key, data))]
#[allow(clippy::type_complexity)]
fn deaggregate(
    py: Python<'_>,
    partition_key: &str,
    explicit_hash_key: Option<&str>,
    data: &Bound<'_, PyAny>,
) -> PyResult<Vec<(String, Option<String>, Py<PyBytes>, u64, bool)>> {
    let data = record_data(data)?;
    let records = kpl_core::aggregation::deaggregate(partition_key, explicit_hash_key, data)
        .map_err(|e| to_py_err(py, &e))?;
    Ok(records
        .into_iter()
        .map(|r| {
            (
                r.partition_key,
                r.explicit_hash_key,
                PyBytes::new(py, &r.data).unbind(),
                r.sub_sequence_number,
                r.aggregated,
            )
        })
        .collect())
}

#[pymodule]
fn _kpl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeProducer>()?;
    m.add_class::<RecordFuture>()?;
    m.add_class::<PyPutResult>()?;
    m.add_class::<Attempt>()?;
    m.add_function(wrap_pyfunction!(deaggregate, m)?)?;
    m.add_function(wrap_pyfunction!(_after_fork_child, m)?)?;
    m.add_function(wrap_pyfunction!(_shutdown_runtime, m)?)?;
    Ok(())
}

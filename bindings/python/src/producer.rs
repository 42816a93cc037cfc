//! `NativeProducer`: the producer behind `kpl.Producer` and
//! `kpl.AsyncProducer`.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kpl_core::{Config, Error, ErrorKind, Producer, PutResult, Room, UserRecord};
use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::delivery::{Delivery, Outbox, Target, send};
use crate::errors::{exception, native_error, to_py_err};
use crate::future::{FutureState, RecordFuture, deadline, step_until};
use crate::process::{Env, env, pid};
use crate::records::{make_record, records_from};

/// A kpl-core producer owned by one process.
#[pyclass(frozen, module = "kpl._kpl")]
pub(crate) struct NativeProducer {
    pub(crate) producer: ManuallyDrop<Producer>,
    pub(crate) pid: u32,
    pub(crate) env: Env,
    pub(crate) put_timeout: Option<Duration>,
}

impl Drop for NativeProducer {
    fn drop(&mut self) {
        if self.pid == pid() {
            // SAFETY: dropped once, here.
            unsafe { ManuallyDrop::drop(&mut self.producer) }
        }
        // In a forked child the producer belongs to the parent's (gone)
        // runtime: leak it.
    }
}

/// A result callback that takes the record's buffer room along to the
/// delivery thread.
pub(crate) type Callback = Box<dyn FnOnce(Result<PutResult, Error>, Room) + Send + 'static>;

/// Why a put did not go in.
pub(crate) enum PutFailed {
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
        if self.pid != pid() {
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
                    let target = Target {
                        event_loop: event_loop.clone(),
                        future,
                    };
                    send(&deliver, Delivery::Result(target, Err(e), None));
                }
            }
            send(
                &deliver,
                Delivery::Admitted {
                    event_loop,
                    future: signal,
                    error,
                },
            );
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

pub(crate) fn seconds(timeout: Option<f64>) -> PyResult<Option<Duration>> {
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
        let pairs = settings.iter().map(|(n, v)| (n, v));
        let config = Config::from_parts(properties.as_deref(), pairs)
            .and_then(|b| b.build())
            .map_err(|e| to_py_err(py, &e))?;
        let put_timeout = Some(config.user_record_timeout).filter(|t| !t.is_zero());
        let env = env()?;
        let runtime = env.runtime.clone();
        let producer = py
            .allow_threads(move || runtime.block_on(Producer::new(config)))
            .map_err(|e| to_py_err(py, &e))?;
        Ok(NativeProducer {
            producer: ManuallyDrop::new(producer),
            pid: pid(),
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

    /// Puts one record; returns its RecordFuture, completed in place by
    /// the pipeline (no GIL, no Python object per result until read).
    #[pyo3(signature = (partition_key, data, stream=None, explicit_hash_key=None, timeout=None))]
    fn put(
        &self,
        py: Python<'_>,
        partition_key: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        stream: Option<&Bound<'_, PyAny>>,
        explicit_hash_key: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<Py<RecordFuture>> {
        self.check_process()?;
        let record = make_record(partition_key, data, stream, explicit_hash_key)?;
        let state = Arc::new(FutureState::default());
        let future = Py::new(
            py,
            RecordFuture {
                state: state.clone(),
            },
        )?;
        let deliver = &self.env.deliver;
        let make = || -> Callback {
            let state = state.clone();
            let deliver = deliver.clone();
            Box::new(move |result, room| state.complete(result, Some(room), &deliver))
        };
        self.put_sync(py, record, seconds(timeout)?, &make)
            .map_err(|e| e.into_py(py))?;
        Ok(future)
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
        if self.pid != pid() {
            return Ok(false);
        }
        let t = seconds(Some(timeout))?.unwrap_or_default();
        let producer = (*self.producer).clone();
        let runtime = self.env.runtime.clone();
        let out = py.allow_threads(move || runtime.block_on(producer.shutdown(t)));
        Ok(out.is_ok())
    }
}

/// The configuration `settings` (over a properties file) make, as KPL
/// names and text values, without a producer: what `kpl.check_config`
/// returns. Raises what the producer's constructor would.
#[pyfunction]
#[pyo3(signature = (settings, properties=None))]
pub(crate) fn config_entries(
    py: Python<'_>,
    settings: Vec<(String, String)>,
    properties: Option<std::path::PathBuf>,
) -> PyResult<Vec<(&'static str, String)>> {
    let config = Config::from_parts(properties.as_deref(), settings)
        .and_then(|b| b.build())
        .map_err(|e| to_py_err(py, &e))?;
    Ok(config.entries())
}

pub(crate) fn async_callback(
    deliver: &Outbox,
    event_loop: Arc<PyObject>,
    future: Arc<PyObject>,
) -> Callback {
    let deliver = deliver.clone();
    Box::new(move |result, room| {
        send(
            &deliver,
            Delivery::Result(Target { event_loop, future }, result, Some(room)),
        );
    })
}

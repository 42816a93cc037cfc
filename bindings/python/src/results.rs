//! `PutResult` and `Attempt` as Python objects.

use kpl_core::PutResult;
use kpl_host::timeout::millis_f64;
use pyo3::prelude::*;

/// One try at delivering a record.
#[pyclass(frozen, module = "kpl._kpl")]
pub(crate) struct Attempt {
    #[pyo3(get)]
    pub(crate) delay_ms: f64,
    #[pyo3(get)]
    pub(crate) duration_ms: f64,
    #[pyo3(get)]
    pub(crate) error_code: Option<String>,
    #[pyo3(get)]
    pub(crate) error_message: Option<String>,
}

impl From<kpl_core::Attempt> for Attempt {
    fn from(a: kpl_core::Attempt) -> Attempt {
        Attempt {
            delay_ms: millis_f64(a.delay),
            duration_ms: millis_f64(a.duration),
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
pub(crate) struct PyPutResult {
    pub(crate) inner: PutResult,
}

pub(crate) fn put_result(py: Python<'_>, r: PutResult) -> PyObject {
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

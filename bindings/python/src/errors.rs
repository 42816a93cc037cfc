//! kpl-core errors as the `kpl` package's exceptions.

use kpl_core::{Error, ErrorKind};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::delivery::helper;
use crate::results::Attempt;

/// The one place where a kpl-core error becomes a Python exception object:
/// `kpl._errors._from_native` maps the kind to the class.
pub(crate) fn exception(py: Python<'_>, e: &Error) -> PyObject {
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
            e.setting(),
            e.suggestions().to_vec(),
        );
        Ok(helper(py, "_from_native")?.call1(args)?.unbind())
    };
    make().unwrap_or_else(|err| err.into_value(py).into_any())
}

pub(crate) fn to_py_err(py: Python<'_>, e: &Error) -> PyErr {
    PyErr::from_value(exception(py, e).into_bound(py))
}

pub(crate) fn native_error(kind: ErrorKind, message: &str) -> PyErr {
    Python::with_gil(|py| to_py_err(py, &Error::new(kind, message)))
}

//! User records from Python values.

use bytes::Bytes;
use kpl_core::UserRecord;
use kpl_host::record::from_parts;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyInt, PyString, PyTuple};

pub(crate) fn record_data(data: &Bound<'_, PyAny>) -> PyResult<Bytes> {
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

pub(crate) fn make_record(
    partition_key: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    stream: Option<&Bound<'_, PyAny>>,
    explicit_hash_key: Option<&Bound<'_, PyAny>>,
) -> PyResult<UserRecord> {
    // Borrowed from the str object (its UTF-8 form): the record copies it.
    let key = partition_key
        .downcast::<PyString>()
        .map_err(|_| PyTypeError::new_err("partition_key must be a str"))?
        .to_str()?;
    let stream = match stream.filter(|s| !s.is_none()) {
        Some(s) => Some(s.extract::<String>()?.into()),
        None => None,
    };
    let explicit_hash_key = match explicit_hash_key.filter(|k| !k.is_none()) {
        Some(k) => Some(match k.downcast::<PyInt>() {
            Ok(i) => i.str()?.to_string(),
            Err(_) => k.extract::<String>()?,
        }),
        None => None,
    };
    Ok(from_parts(
        stream,
        key,
        explicit_hash_key.as_deref(),
        record_data(data)?,
    ))
}

/// One item of `put_many`: a `(key, data)` tuple or a dict with
/// `partition_key`, `data` and optional `stream`, `explicit_hash_key`.
pub(crate) fn record_from_item(item: &Bound<'_, PyAny>) -> PyResult<UserRecord> {
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

pub(crate) fn records_from(records: &Bound<'_, PyAny>) -> PyResult<Vec<UserRecord>> {
    let mut out = Vec::with_capacity(records.len().unwrap_or(0));
    for item in records.try_iter()? {
        out.push(record_from_item(&item?)?);
    }
    Ok(out)
}

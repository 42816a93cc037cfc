//! `kpl.deaggregate`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::to_py_err;
use crate::records::record_data;

/// The user records in one Kinesis record: (partition_key,
/// explicit_hash_key, data, sub_sequence_number, aggregated) tuples.
#[pyfunction]
#[pyo3(signature = (partition_key, explicit_hash_key, data))]
#[allow(clippy::type_complexity)]
pub(crate) fn deaggregate(
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

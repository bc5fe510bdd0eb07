//! `SyncStatus`: a copy of a poller's state at one moment, as plain Python values.

use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::float_repr;
use crate::bindings::errors::py_repr;
use crate::sync::SyncStatus;

#[pyclass(name = "SyncStatus", module = "ferroflag._ferroflag", frozen, eq)]
#[derive(PartialEq)]
pub struct PySyncStatus {
    inner: SyncStatus,
}

impl From<SyncStatus> for PySyncStatus {
    fn from(inner: SyncStatus) -> Self {
        Self { inner }
    }
}

fn timestamp(at: Option<SystemTime>) -> Option<f64> {
    at.map(|at| match at.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    })
}

fn opt_repr(py: Python<'_>, value: Option<&str>) -> PyResult<String> {
    value.map_or_else(|| Ok("None".to_owned()), |v| py_repr(py, v))
}

fn bool_repr(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

#[pymethods]
impl PySyncStatus {
    /// A snapshot has been applied (from the service, the cache file or the flag file).
    #[getter]
    fn ready(&self) -> bool {
        self.inner.ready
    }

    /// The background thread is running.
    #[getter]
    fn running(&self) -> bool {
        self.inner.running
    }

    /// Ready, but the last poll(s) failed: the flags served may be out of date.
    #[getter]
    fn stale(&self) -> bool {
        self.inner.is_stale()
    }

    /// Where the last applied snapshot came from: `none`, `network`, `cache` or `file`.
    #[getter]
    fn source(&self) -> &'static str {
        self.inner.source.as_str()
    }

    #[getter]
    fn etag(&self) -> Option<&str> {
        self.inner.etag.as_deref()
    }

    #[getter]
    fn snapshot_version(&self) -> u64 {
        self.inner.snapshot_version
    }

    /// The content hash of the document applied: the same in every process.
    #[getter]
    fn document_id(&self) -> Option<&str> {
        self.inner.document_id.as_deref()
    }

    #[getter]
    fn last_success(&self) -> Option<f64> {
        timestamp(self.inner.last_success)
    }

    #[getter]
    fn last_error(&self) -> Option<&str> {
        self.inner.last_error.as_deref()
    }

    #[getter]
    fn last_error_at(&self) -> Option<f64> {
        timestamp(self.inner.last_error_at)
    }

    #[getter]
    fn successes(&self) -> u64 {
        self.inner.successes
    }

    #[getter]
    fn not_modified(&self) -> u64 {
        self.inner.not_modified
    }

    #[getter]
    fn failures(&self) -> u64 {
        self.inner.failures
    }

    #[getter]
    fn consecutive_failures(&self) -> u64 {
        self.inner.consecutive_failures
    }

    #[getter]
    fn next_attempt_in(&self) -> Option<f64> {
        self.inner.next_attempt_in.map(|d| d.as_secs_f64())
    }

    #[getter]
    fn url(&self) -> &str {
        &self.inner.url
    }

    /// Every field as a plain dict, e.g. for a health endpoint.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.inner;
        let out = PyDict::new(py);
        out.set_item("ready", s.ready)?;
        out.set_item("running", s.running)?;
        out.set_item("stale", s.is_stale())?;
        out.set_item("source", s.source.as_str())?;
        out.set_item("etag", s.etag.as_deref())?;
        out.set_item("snapshot_version", s.snapshot_version)?;
        out.set_item("document_id", s.document_id.as_deref())?;
        out.set_item("last_success", timestamp(s.last_success))?;
        out.set_item("last_error", s.last_error.as_deref())?;
        out.set_item("last_error_at", timestamp(s.last_error_at))?;
        out.set_item("successes", s.successes)?;
        out.set_item("not_modified", s.not_modified)?;
        out.set_item("failures", s.failures)?;
        out.set_item("consecutive_failures", s.consecutive_failures)?;
        out.set_item("next_attempt_in", s.next_attempt_in.map(|d| d.as_secs_f64()))?;
        out.set_item("url", &s.url)?;
        Ok(out)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let s = &self.inner;
        Ok(format!(
            "SyncStatus(ready={}, running={}, source={}, etag={}, snapshot_version={}, document_id={}, \
             successes={}, not_modified={}, failures={}, consecutive_failures={}, last_error={}, next_attempt_in={}, url={})",
            bool_repr(s.ready),
            bool_repr(s.running),
            py_repr(py, s.source.as_str())?,
            opt_repr(py, s.etag.as_deref())?,
            s.snapshot_version,
            opt_repr(py, s.document_id.as_deref())?,
            s.successes,
            s.not_modified,
            s.failures,
            s.consecutive_failures,
            opt_repr(py, s.last_error.as_deref())?,
            s.next_attempt_in.map_or_else(
                || "None".to_owned(),
                |d| float_repr((d.as_secs_f64() * 1000.0).round() / 1000.0)
            ),
            py_repr(py, &s.url)?,
        ))
    }
}

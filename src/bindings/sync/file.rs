//! `FlagFileWatcher`: a local flag file as the source, with the same lifecycle as `FlagSyncClient`.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyType;

use super::logging::{LogObserver, logger};
use super::{PySyncStatus, Slot, evaluator_store, float_repr, positive_bytes, positive_seconds};
use crate::bindings::errors::{py_repr, sync_error};
use crate::sync::{FileSource, FileSourceConfig, FileWatch};

#[pyclass(name = "FlagFileWatcher", module = "ferroflag._ferroflag", frozen)]
pub struct PyFlagFileWatcher {
    slot: Arc<Slot<FileWatch>>,
    path: String,
    interval: f64,
}

#[pymethods]
impl PyFlagFileWatcher {
    #[new]
    #[pyo3(signature = (evaluator, path, *, interval = 1.0, max_bytes = 16_777_216))]
    fn py_new(
        py: Python<'_>,
        evaluator: &Bound<'_, PyAny>,
        path: PathBuf,
        interval: f64,
        max_bytes: i64,
    ) -> PyResult<Self> {
        let store = evaluator_store(evaluator)?;
        let mut config = FileSourceConfig::new(path);
        config.interval = positive_seconds("interval", interval)?;
        config.max_bytes = positive_bytes("max_bytes", max_bytes)?;
        let shown = config.path.display().to_string();
        logger(py)?;
        let observer = Arc::new(LogObserver::new(shown.clone()));
        let source = FileSource::new(store, config, observer).map_err(sync_error)?;
        Ok(Self {
            slot: Slot::new(py, source.into_runner())?,
            path: shown,
            interval,
        })
    }

    /// Starts watching and waits up to `wait` seconds (GIL released) for the file to load.
    #[pyo3(signature = (wait = 5.0))]
    fn start(&self, py: Python<'_>, wait: f64) -> PyResult<bool> {
        super::start(py, &self.slot, wait)
    }

    #[pyo3(signature = (wait = 5.0))]
    fn start_async<'py>(slf: &Bound<'py, Self>, wait: f64) -> PyResult<Bound<'py, PyAny>> {
        super::start_async(slf.as_any(), &slf.get().slot, wait)
    }

    fn wait_ready(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        super::wait_ready(py, &self.slot, timeout)
    }

    fn stop(&self, py: Python<'_>) -> bool {
        super::stop(py, &self.slot)
    }

    fn status(&self) -> PySyncStatus {
        super::status(&self.slot)
    }

    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        super::start(slf.py(), &slf.get().slot, 5.0)?;
        Ok(slf.clone())
    }

    #[pyo3(signature = (exc_type, exc_value, traceback))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyType>>,
        exc_value: Option<&Bound<'_, PyAny>>,
        traceback: Option<&Bound<'_, PyAny>>,
    ) {
        let _ = (exc_type, exc_value, traceback);
        super::stop(py, &self.slot);
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "FlagFileWatcher({}, interval={}, running={})",
            py_repr(py, &self.path)?,
            float_repr(self.interval),
            if self.slot.client().status().running {
                "True"
            } else {
                "False"
            },
        ))
    }
}

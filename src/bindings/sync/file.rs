//! `FlagFileWatcher`: a local flag file as the source, with the same lifecycle as `FlagSyncClient`.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;

use super::logging::{LogObserver, logger};
use super::{PySyncStatus, Slot, evaluator_store, float_repr, positive_bytes, positive_seconds, source_pymethods};
use crate::bindings::errors::{py_repr, sync_error};
use crate::sync::{FileSource, FileSourceConfig, FileWatch};

#[pyclass(name = "FlagFileWatcher", module = "ferroflag._ferroflag", frozen)]
pub struct PyFlagFileWatcher {
    slot: Arc<Slot<FileWatch>>,
    path: String,
    interval: f64,
}

source_pymethods!(PyFlagFileWatcher {
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

    #[getter]
    fn path(&self) -> &str {
        &self.path
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
});

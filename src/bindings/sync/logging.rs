//! Sync events as records of the `ferroflag` logger.
//!
//! This is the one place where the sync thread touches Python (STYLE R6 otherwise keeps it off):
//! a record is written once per failure streak, per recovery and per new document, so attaching
//! briefly for it is cheap, and it blocks only the sync thread, never an evaluation. It uses
//! `Python::try_attach`, which gives up while the interpreter finalizes, where `attach` would
//! panic; the exit hook also stops the pollers and sets [`EXITING`] before finalization starts.

use std::sync::atomic::Ordering;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

use super::slot::EXITING;
use crate::sync::{Severity, SyncEvent, SyncObserver};

static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `logging.getLogger("ferroflag")`, looked up once. Call it first from a Python thread (the
/// constructors do), so that the sync thread never runs the import.
pub(crate) fn logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    LOGGER
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(
                py.import("logging")?
                    .call_method1("getLogger", ("ferroflag",))?
                    .unbind(),
            )
        })
        .map(|logger| logger.bind(py))
}

/// Writes each event to the `ferroflag` logger at its severity. Every text in an event is already
/// redacted by the core, so no header value can reach a record. Holds no Python object.
pub(crate) struct LogObserver {
    /// The redacted URL or the file path, put on each record as `ferroflag_source`.
    source: String,
}

impl LogObserver {
    pub(crate) fn new(source: String) -> Self {
        Self { source }
    }
}

impl SyncObserver for LogObserver {
    fn event(&self, event: SyncEvent) {
        if EXITING.load(Ordering::Acquire) {
            return;
        }
        let _ = Python::try_attach(|py| {
            if let Err(error) = self.log(py, &event) {
                error.write_unraisable(py, None);
            }
        });
    }
}

impl LogObserver {
    fn log(&self, py: Python<'_>, event: &SyncEvent) -> PyResult<()> {
        let level = match event.severity() {
            Severity::Debug => 10,
            Severity::Info => 20,
            Severity::Warning => 30,
            Severity::Error => 40,
        };
        let logger = logger(py)?;
        if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
            return Ok(());
        }
        let extra = PyDict::new(py);
        extra.set_item("ferroflag_event", event.kind())?;
        extra.set_item("ferroflag_source", &self.source)?;
        // Built by hand so that the record names the sync thread as where it came from, not a line
        // of the logging module (no Python frame calls it). "%s" keeps a `%` in the text (in a URL,
        // say) from being taken as a format.
        let origin = std::thread::current().name().unwrap_or("ferroflag").to_owned();
        let record = logger.call_method1(
            "makeRecord",
            (
                logger.getattr("name")?,
                level,
                origin,
                0,
                "%s",
                (event.to_string(),),
                py.None(),
                event.kind(),
                extra,
            ),
        )?;
        logger.call_method1("handle", (record,))?;
        Ok(())
    }
}

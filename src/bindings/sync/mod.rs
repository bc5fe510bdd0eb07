//! `FlagSyncClient`, `FlagFileWatcher` and `SyncStatus`: the Python face of [`crate::sync`].
//!
//! Both classes are thin: they check their arguments, build the core poller, and hand every
//! lifecycle call to a [`Slot`](slot::Slot), which makes them restartable and fork-aware. The
//! background thread is pure Rust; it only attaches to Python to write a log record (see
//! [`logging`]). Waiting (`start(wait=...)`, `wait_ready`, `stop`) releases the GIL.

mod client;
mod file;
mod logging;
mod slot;
mod status;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use super::convert::type_name;
use super::errors::sync_error;
use super::evaluator::PyFlagEvaluator;
use crate::store::SnapshotStore;
use crate::sync::{PollSource, Runner};
pub use client::PyFlagSyncClient;
pub use file::PyFlagFileWatcher;
use slot::Slot;
pub use status::PySyncStatus;

/// The `#[pymethods]` of a Python source class: its own (`#[new]`, getters, `__repr__`) and the
/// lifecycle every source shares, each call handed to the class's `slot` and from there to the
/// core's one `Runner`.
macro_rules! source_pymethods {
    ($class:ty { $($own:tt)* }) => {
        #[pymethods]
        impl $class {
            $($own)*

            /// Starts the source and waits up to `wait` seconds (GIL released) for the first
            /// snapshot; true once one is applied.
            #[pyo3(signature = (wait = 5.0))]
            fn start(&self, py: Python<'_>, wait: f64) -> PyResult<bool> {
                super::start(py, &self.slot, wait)
            }

            /// Starts the source now; the returned future resolves to whether a snapshot arrived
            /// in `wait`.
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

            fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
                super::start(slf.py(), &slf.get().slot, 5.0)?;
                Ok(slf.clone())
            }

            #[pyo3(signature = (exc_type, exc_value, traceback))]
            fn __exit__(
                &self,
                py: Python<'_>,
                exc_type: Option<&Bound<'_, pyo3::types::PyType>>,
                exc_value: Option<&Bound<'_, PyAny>>,
                traceback: Option<&Bound<'_, PyAny>>,
            ) {
                let _ = (exc_type, exc_value, traceback);
                super::stop(py, &self.slot);
            }
        }
    };
}
pub(crate) use source_pymethods;

// The signatures spell the default size out as a literal, so that Python's `inspect` shows it.
const _: () = assert!(crate::sync::DEFAULT_MAX_BODY_BYTES == 16_777_216);

/// The store behind a `FlagEvaluator` argument, or a `TypeError` naming what was passed instead.
fn evaluator_store(evaluator: &Bound<'_, PyAny>) -> PyResult<Arc<SnapshotStore>> {
    let evaluator = evaluator.cast::<PyFlagEvaluator>().map_err(|_| {
        PyTypeError::new_err(format!(
            "evaluator must be a FlagEvaluator, got {}",
            type_name(evaluator)
        ))
    })?;
    Ok(Arc::clone(&evaluator.get().store))
}

/// A setting in seconds that must be a positive, finite number.
fn positive_seconds(name: &str, seconds: f64) -> PyResult<Duration> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(PyValueError::new_err(format!(
            "{name} must be a positive number of seconds, got {}",
            float_repr(seconds)
        )));
    }
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| PyValueError::new_err(format!("{name} is too large: {seconds} seconds")))
}

/// A wait in seconds: zero or more; `inf` waits for ever.
fn wait_seconds(name: &str, seconds: f64) -> PyResult<Duration> {
    if seconds.is_nan() || seconds < 0.0 {
        return Err(PyValueError::new_err(format!(
            "{name} must be zero or a positive number of seconds, got {}",
            float_repr(seconds)
        )));
    }
    Ok(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}

/// A size that must be a positive number of bytes.
fn positive_bytes(name: &str, bytes: i64) -> PyResult<u64> {
    u64::try_from(bytes)
        .ok()
        .filter(|&b| b > 0)
        .ok_or_else(|| PyValueError::new_err(format!("{name} must be a positive number of bytes, got {bytes}")))
}

/// `start(wait)`: starts the poller (restarting it if stopped, rebuilding it in a forked child)
/// and waits with the GIL released until it has applied a snapshot.
fn start<S: PollSource>(py: Python<'_>, slot: &Arc<Slot<S>>, wait: f64) -> PyResult<bool> {
    let wait = wait_seconds("wait", wait)?;
    let client = slot.start().map_err(sync_error)?;
    wait_for_snapshot(py, slot, &client, wait)
}

/// Waits with the GIL released, in slices, checking for signals between them so that Ctrl-C (or
/// a test timeout) can cut a long wait short. Returns at once, with the readiness as it is, when
/// the poller is not running: nothing would come.
fn wait_for_snapshot<S: PollSource>(
    py: Python<'_>,
    slot: &Slot<S>,
    client: &Runner<S>,
    wait: Duration,
) -> PyResult<bool> {
    const SLICE: Duration = Duration::from_millis(100);
    let deadline = Instant::now().checked_add(wait);
    loop {
        if client.wait_ready(Duration::ZERO) {
            return Ok(true);
        }
        let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() || !slot.is_wanted() || !client.status().running {
            return Ok(false);
        }
        if py.detach(|| client.wait_ready(left.min(SLICE))) {
            return Ok(true);
        }
        py.check_signals()?;
    }
}

/// `start_async(wait)`: starts the poller now, then waits for the first snapshot on the running
/// loop's default executor, so the event loop is never blocked. Returns an `asyncio.Future`.
fn start_async<'py>(
    slf: &Bound<'py, PyAny>,
    slot: &Arc<Slot<impl PollSource>>,
    wait: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let py = slf.py();
    let wait_duration = wait_seconds("wait", wait)?;
    // First, so that calling it outside a coroutine raises before anything starts.
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let client = slot.start().map_err(sync_error)?;
    let ready = client.wait_ready(Duration::ZERO);
    if ready || wait_duration.is_zero() {
        let future = event_loop.call_method0("create_future")?;
        future.call_method1("set_result", (ready,))?;
        return Ok(future);
    }
    event_loop.call_method1("run_in_executor", (py.None(), slf.getattr("wait_ready")?, wait))
}

/// `wait_ready(timeout)`, with the GIL released.
fn wait_ready<S: PollSource>(py: Python<'_>, slot: &Slot<S>, timeout: f64) -> PyResult<bool> {
    let timeout = wait_seconds("timeout", timeout)?;
    wait_for_snapshot(py, slot, &slot.client(), timeout)
}

/// `stop()`, with the GIL released while the thread is joined (at most half a second).
fn stop<S: PollSource>(py: Python<'_>, slot: &Arc<Slot<S>>) -> bool {
    py.detach(|| slot.stop())
}

fn status<S: PollSource>(slot: &Slot<S>) -> PySyncStatus {
    PySyncStatus::from(slot.client().status())
}

/// Python's `repr()` of a float, so that reprs show `10.0`, not Rust's `10`.
fn float_repr(value: f64) -> String {
    let text = value.to_string();
    if text.contains(['.', 'e', 'i', 'N']) {
        text
    } else {
        format!("{text}.0")
    }
}

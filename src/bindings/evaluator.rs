//! `FlagEvaluator`: a handle on a snapshot store. Evaluation reads the current snapshot without a
//! lock and keeps the GIL (it is cheaper than releasing it) unless the flag could be slow
//! ([`crate::compile::SLOW_EVALUATION_NANOS`]); loading and batch work release it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyString, PyTuple};
use sha2::{Digest, Sha256};

use super::context::{PyEvalContext, context_arg, context_from_dict};
use super::convert::{self, type_name};
use super::errors::PyConfigWarning;
use super::model::{PyFlagConfig, PySegment, flag_from, metadata_from, segment_from};
use super::result::PyEvalResult;
use crate::compile::FlagSet;
use crate::context::EvalContext;
use crate::document::{Document, FORMAT, Parsed};
use crate::error::FerroflagError;
use crate::eval::decide::{EvalResult, FlagRef};
use crate::events::{Counters, ExposureLog};
use crate::store::{Snapshot, SnapshotStore};

/// The most contexts `is_enabled_many` reserves room for up front; the batch grows past it as needed.
const MAX_PREALLOCATED: usize = 1 << 16;

/// Runs `evaluate` for `flag`, with the GIL released when the flag could be slow (docs/spec.md
/// §5, "Limits"). Almost every flag is far from that and evaluates with the GIL held: releasing it
/// costs more than most evaluations.
#[inline]
fn run<T: Send>(py: Python<'_>, flag: FlagRef<'_>, evaluate: impl FnOnce(FlagRef<'_>) -> T + Send) -> T {
    if flag.is_slow() {
        py.detach(|| evaluate(flag))
    } else {
        evaluate(flag)
    }
}

#[pyclass(name = "FlagEvaluator", module = "ferroflag._ferroflag", frozen)]
pub struct PyFlagEvaluator {
    pub(crate) store: Arc<SnapshotStore>,
    /// What evaluations record, once asked for (docs/spec.md §8).
    events: Events,
}

/// An answer to record: as an exposure too when the log is given.
#[derive(Clone, Copy)]
struct Wanted<'a>(Option<&'a ExposureLog>);

/// What evaluations record besides answering: exposures of tracked flags (once `on_exposure()`
/// is called) and counters of every evaluation (once `enable_counters()` is called).
#[derive(Default)]
struct Events {
    exposures: OnceLock<Arc<ExposureLog>>,
    counters: OnceLock<Arc<Counters>>,
    /// The snapshot change listeners last saw (`on_change`): the next change is reported against it.
    seen: Mutex<Option<Arc<Snapshot>>>,
}

impl Events {
    /// Records one answer of `flag`.
    #[inline]
    fn record(&self, wanted: Wanted<'_>, flag: FlagRef<'_>, result: &EvalResult, ctx: &EvalContext, version: u64) {
        if let Some(log) = wanted.0 {
            log.record(flag.key(), result, &flag.subject(ctx), version);
        }
        if let Some(counters) = self.counters.get() {
            counters.record(flag.key(), result);
        }
    }

    /// Whether an answer of `flag` is to be recorded, and the exposure log when it is tracked.
    #[inline]
    fn wanted(&self, flag: FlagRef<'_>) -> Option<Wanted<'_>> {
        let log = if flag.is_tracked() {
            self.exposures.get().map(|l| &**l)
        } else {
            None
        };
        (log.is_some() || self.counters.get().is_some()).then_some(Wanted(log))
    }
}

/// An answer for `flag`, recorded (docs/spec.md §8) when the flag is tracked and exposures are on,
/// or counters are on. Otherwise the cost is two tests of fields already in cache.
#[inline]
fn answer<T: Send>(
    py: Python<'_>,
    events: &Events,
    snapshot: &Snapshot,
    flag: FlagRef<'_>,
    ctx: &EvalContext,
    unrecorded: impl FnOnce(FlagRef<'_>) -> T + Send,
    recorded: impl FnOnce(EvalResult) -> T,
) -> T {
    if let Some(log) = events.wanted(flag) {
        let result = run(py, flag, |flag| flag.evaluate(ctx));
        events.record(log, flag, &result, ctx, snapshot.version);
        return recorded(result);
    }
    run(py, flag, unrecorded)
}

/// Items of an iterable argument; a `str`, `bytes` or dict is refused with a hint.
fn items<'py>(name: &str, what: &str, obj: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an iterable of {what}, got {} (use update_json() for a document)",
            type_name(obj)
        )));
    }
    obj.try_iter()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be an iterable of {what}, got {}", type_name(obj))))?
        .collect()
}

impl PyFlagEvaluator {
    /// One flag's answer from the current snapshot (`not_found` for an unknown key).
    fn evaluate_one(&self, py: Python<'_>, key: &str, ctx: &EvalContext) -> EvalResult {
        let snapshot = self.store.load();
        snapshot.flag(key).map_or_else(EvalResult::not_found, |flag| {
            answer(
                py,
                &self.events,
                &snapshot,
                flag,
                ctx,
                |flag| flag.evaluate(ctx),
                |result| result,
            )
        })
    }

    /// Reads flags (and segments and metadata) given from Python into one document.
    fn document_from(
        flags: &Bound<'_, PyAny>,
        segments: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Parsed> {
        let mut warnings = Vec::new();
        let segments = match segments.filter(|s| !s.is_none()) {
            None => Vec::new(),
            Some(segments) => items("segments", "Segment or dict", segments)?
                .iter()
                .enumerate()
                .map(|(i, s)| segment_from(s, i, &mut warnings))
                .collect::<PyResult<_>>()?,
        };
        let flags = items("flags", "FlagConfig or dict", flags)?
            .iter()
            .enumerate()
            .map(|(i, f)| flag_from(f, i, &mut warnings))
            .collect::<PyResult<_>>()?;
        let metadata = match metadata.filter(|m| !m.is_none()) {
            None => serde_json::Map::new(),
            Some(metadata) => metadata_from(metadata)?,
        };
        Ok(Parsed {
            document: Document {
                format: FORMAT,
                flags,
                segments,
                metadata,
            },
            warnings,
        })
    }

    fn update_from(
        &self,
        py: Python<'_>,
        flags: &Bound<'_, PyAny>,
        segments: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let parsed = Self::document_from(flags, segments, metadata)?;
        let store = &self.store;
        Ok(py.detach(|| store.publish_parsed(parsed)))
    }
}

#[pymethods]
impl PyFlagEvaluator {
    #[new]
    #[pyo3(signature = (flags = None, *, segments = None, metadata = None))]
    fn py_new(
        py: Python<'_>,
        flags: Option<&Bound<'_, PyAny>>,
        segments: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let evaluator = Self {
            store: Arc::new(SnapshotStore::new()),
            events: Events::default(),
        };
        if let Some(flags) = flags {
            evaluator.update_from(py, flags, segments, metadata)?;
        } else if segments.is_some_and(|s| !s.is_none()) || metadata.is_some_and(|m| !m.is_none()) {
            evaluator.update_from(py, &pyo3::types::PyList::empty(py), segments, metadata)?;
        }
        Ok(evaluator)
    }

    /// Replaces every flag with `flags` (`FlagConfig` objects or wire-format dicts), and the
    /// segments and document metadata with the ones given (none when left out).
    #[pyo3(signature = (flags, *, segments = None, metadata = None))]
    fn update(
        &self,
        py: Python<'_>,
        flags: &Bound<'_, PyAny>,
        segments: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.update_from(py, flags, segments, metadata).map(drop)
    }

    /// Replaces every flag with a wire-format document (`str`, `bytes` or `bytearray`).
    fn update_json(&self, py: Python<'_>, document: &Bound<'_, PyAny>) -> PyResult<()> {
        let store = &self.store;
        let result = if let Ok(text) = document.cast::<PyString>() {
            let text = text.to_str()?;
            py.detach(|| store.publish_json(text.as_bytes()))
        } else if let Ok(bytes) = document.cast::<PyBytes>() {
            let bytes = bytes.as_bytes();
            py.detach(|| store.publish_json(bytes))
        } else if let Ok(bytes) = document.cast::<PyByteArray>() {
            let bytes = bytes.to_vec();
            py.detach(|| store.publish_json(&bytes))
        } else {
            return Err(PyTypeError::new_err(format!(
                "document must be str, bytes or bytearray, got {}",
                type_name(document)
            )));
        };
        result.map(drop).map_err(Into::into)
    }

    /// Replaces every flag with the document in a file.
    fn load_file(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let store = &self.store;
        py.detach(|| {
            let bytes = std::fs::read(&path).map_err(|source| FerroflagError::Io {
                path: path.display().to_string(),
                source,
            })?;
            store.publish_json(&bytes)
        })
        .map(drop)
        .map_err(Into::into)
    }

    fn evaluate(&self, py: Python<'_>, key: &str, ctx: &Bound<'_, PyAny>) -> PyResult<PyEvalResult> {
        let ctx = context_arg(ctx)?;
        Ok(self.evaluate_one(py, key, ctx.get()).into())
    }

    #[pyo3(signature = (key, ctx, default = false))]
    fn is_enabled(&self, py: Python<'_>, key: &str, ctx: &Bound<'_, PyAny>, default: bool) -> PyResult<bool> {
        let ctx = context_arg(ctx)?;
        let ctx = ctx.get();
        let snapshot = self.store.load();
        Ok(snapshot.flag(key).map_or(default, |flag| {
            answer(
                py,
                &self.events,
                &snapshot,
                flag,
                ctx,
                |flag| flag.is_enabled(ctx),
                |result| result.enabled,
            )
        }))
    }

    /// The value of the answer's variant, or `default` when it has none (docs/spec.md §2.2).
    #[pyo3(signature = (key, ctx, default = None))]
    fn get_value<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        ctx: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ctx = context_arg(ctx)?;
        let result = self.evaluate_one(py, key, ctx.get());
        match result.value() {
            Some(value) => convert::from_json(py, value),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    fn get_variant(&self, py: Python<'_>, key: &str, ctx: &Bound<'_, PyAny>) -> PyResult<String> {
        let ctx = context_arg(ctx)?;
        Ok(self.evaluate_one(py, key, ctx.get()).variant().to_owned())
    }

    /// Every flag for one context, in document order, all from one snapshot.
    fn evaluate_all<'py>(&self, py: Python<'py>, ctx: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let ctx = context_arg(ctx)?;
        let snapshot = self.store.load_full();
        let out = PyDict::new(py);
        let ctx = ctx.get();
        let results: Vec<(&str, EvalResult)> = if snapshot.has_slow_flags() {
            py.detach(|| snapshot.evaluate_all(ctx).collect())
        } else {
            snapshot.evaluate_all(ctx).collect()
        };
        for (key, result) in &results {
            if let Some(flag) = snapshot.flag(key)
                && let Some(log) = self.events.wanted(flag)
            {
                self.events.record(log, flag, result, ctx, snapshot.version);
            }
        }
        for (key, result) in results {
            out.set_item(key, PyEvalResult::from(result))?;
        }
        Ok(out)
    }

    /// `is_enabled` for many contexts at once, from one snapshot, with the GIL released while evaluating.
    #[pyo3(signature = (key, contexts, default = false))]
    fn is_enabled_many(
        &self,
        py: Python<'_>,
        key: &str,
        contexts: &Bound<'_, PyAny>,
        default: bool,
    ) -> PyResult<Vec<bool>> {
        enum Ctx {
            Native(Py<PyEvalContext>),
            Owned(EvalContext),
        }
        let iter = contexts.try_iter().map_err(|_| {
            PyTypeError::new_err(format!(
                "contexts must be an iterable of EvalContext or dict, got {}",
                type_name(contexts)
            ))
        })?;
        // `len()` is only a hint, and user code gives it: a lying `__len__` must not reserve
        // gigabytes (an allocation failure aborts the process).
        let mut batch = Vec::with_capacity(contexts.len().unwrap_or(0).min(MAX_PREALLOCATED));
        for item in iter {
            let item = item?;
            if let Ok(ctx) = item.cast::<PyEvalContext>() {
                batch.push(Ctx::Native(ctx.clone().unbind()));
            } else if let Ok(dict) = item.cast::<PyDict>() {
                batch.push(Ctx::Owned(context_from_dict(dict)?));
            } else {
                return Err(PyTypeError::new_err(format!(
                    "contexts must hold EvalContext or dict items, got {}",
                    type_name(&item)
                )));
            }
        }
        let snapshot = self.store.load_full();
        let events = &self.events;
        let results = py.detach(|| {
            let Some(flag) = snapshot.flag(key) else {
                return vec![default; batch.len()];
            };
            let wanted = events.wanted(flag);
            batch
                .iter()
                .map(|ctx| {
                    let ctx = match ctx {
                        Ctx::Native(ctx) => &ctx.get().inner,
                        Ctx::Owned(ctx) => ctx,
                    };
                    match wanted {
                        Some(log) => {
                            let result = flag.evaluate(ctx);
                            events.record(log, flag, &result, ctx, snapshot.version);
                            result.enabled
                        }
                        None => flag.is_enabled(ctx),
                    }
                })
                .collect()
        });
        Ok(results)
    }

    /// Why `key` answers as it does for `ctx`: rules tried, bucket and threshold, variant pick.
    /// `None` when there is no such flag.
    fn explain<'py>(&self, py: Python<'py>, key: &str, ctx: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let ctx = context_arg(ctx)?;
        let ctx = ctx.get();
        let snapshot = self.store.load();
        let set: &FlagSet = &snapshot;
        // A diagnostic, not a hot path: recording every step (thousands, for a flag with thousands
        // of prerequisites) costs far more than releasing the GIL, so it always runs without it.
        // Only turning the record into Python objects needs the GIL.
        let explanation = py.detach(|| set.explain(key, ctx).map(|e| e.to_value()));
        explanation.map(|value| convert::from_json(py, &value)).transpose()
    }

    /// Calls `callback(keys)` after each change of the flags, with the keys of the flags whose answers may
    /// differ (docs/spec.md §8, "Change listeners"); see `ferroflag.changes`.
    fn on_change<'py>(slf: &Bound<'py, Self>, callback: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        slf.py()
            .import("ferroflag.changes")?
            .getattr("_listen")?
            .call1((slf, callback))
    }

    /// Makes the current snapshot the one the next change is reported against (start, and after a fork).
    fn _changes_reset(&self) {
        let current = self.store.load_full();
        *self
            .events
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(current);
    }

    /// Waits up to `timeout` seconds (GIL released) for a change; then `(version, changed keys)`, or None.
    fn _changes_next(&self, py: Python<'_>, timeout: f64) -> Option<(u64, Vec<String>)> {
        let timeout = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::from_secs(3600));
        let seen = || {
            self.events
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        py.detach(|| {
            // Not held while waiting: a fork while this thread waits must not leave the child locked out.
            let before = Arc::clone(seen().get_or_insert_with(|| self.store.load_full()));
            let version = self.store.wait_for_change(before.version, timeout);
            if version <= before.version {
                return None;
            }
            let now = self.store.load_full();
            let keys = before
                .flags
                .changed_keys(&now.flags)
                .iter()
                .map(ToString::to_string)
                .collect();
            *seen() = Some(Arc::clone(&now));
            Some((now.version, keys))
        })
    }

    /// Starts counting every evaluation by flag, variant and reason (docs/spec.md §8); idempotent.
    /// A forked child starts from zero (`ferroflag.exposures` resets it after a fork).
    fn enable_counters(slf: &Bound<'_, Self>) -> PyResult<()> {
        let mut created = false;
        slf.get().events.counters.get_or_init(|| {
            created = true;
            Arc::default()
        });
        if created {
            slf.py()
                .import("ferroflag.exposures")?
                .getattr("_reset_after_fork")?
                .call1((slf,))?;
        }
        Ok(())
    }

    /// The counts so far: `{(flag, variant, reason): evaluations}`; empty before `enable_counters()`.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        if let Some(counters) = self.events.counters.get() {
            let counts = py.detach(|| counters.snapshot());
            for ((flag, variant, reason), n) in counts {
                out.set_item((&*flag, variant.as_deref().unwrap_or(""), reason.as_str()), n)?;
            }
        }
        Ok(out)
    }

    /// Sends the exposures of tracked flags to `sink` in batches (docs/spec.md §8); see
    /// `ferroflag.exposures`. The first call sets the sizes; later calls add sinks.
    // `ferroflag.exposures._stream_for` checks the values (and says which one is wrong).
    #[pyo3(signature = (sink, *, batch_size = 1000, interval = 1.0, capacity = 100_000, window = 65_536))]
    fn on_exposure<'py>(
        slf: &Bound<'py, Self>,
        sink: &Bound<'py, PyAny>,
        batch_size: i64,
        interval: f64,
        capacity: i64,
        window: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let kwargs = PyDict::new(py);
        kwargs.set_item("batch_size", batch_size)?;
        kwargs.set_item("interval", interval)?;
        kwargs.set_item("capacity", capacity)?;
        kwargs.set_item("window", window)?;
        py.import("ferroflag.exposures")?
            .getattr("_stream_for")?
            .call((slf, sink), Some(&kwargs))
    }

    /// Starts recording the exposures of tracked flags into a native queue (idempotent: the first
    /// call's sizes stay). The Python side (`ferroflag.exposures`) drains it.
    fn _exposures_enable(&self, capacity: usize, batch: usize, window: usize) -> bool {
        let mut created = false;
        self.events.exposures.get_or_init(|| {
            created = true;
            Arc::new(ExposureLog::new(capacity, batch, window))
        });
        created
    }

    /// Waits up to `wait` seconds (with the GIL released) for a full batch, then takes every
    /// waiting exposure as `(flag, variant, reason, subject, snapshot, timestamp)` tuples.
    fn _exposures_take<'py>(&self, py: Python<'py>, wait: f64) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let Some(log) = self.events.exposures.get() else {
            return Ok(Vec::new());
        };
        let wait = Duration::try_from_secs_f64(wait.max(0.0)).unwrap_or(Duration::from_secs(3600));
        let taken = py.detach(|| log.take(wait));
        taken
            .into_iter()
            .map(|e| {
                (
                    &*e.flag,
                    e.variant.as_deref().unwrap_or(""),
                    e.reason.as_str(),
                    &*e.subject,
                    e.snapshot,
                    e.timestamp,
                )
                    .into_pyobject(py)
            })
            .collect()
    }

    /// Wakes a thread waiting in `_exposures_take`.
    fn _exposures_wake(&self) {
        if let Some(log) = self.events.exposures.get() {
            log.wake();
        }
    }

    /// Forgets queued exposures, the window, their counts and the counters (a forked child's first step).
    fn _events_reset(&self) {
        if let Some(log) = self.events.exposures.get() {
            log.reset();
        }
        if let Some(counters) = self.events.counters.get() {
            counters.reset();
        }
    }

    /// `{"recorded", "deduplicated", "dropped", "queued"}` since exposures were enabled (or since a
    /// fork); `None` before.
    fn _exposures_stats(&self) -> Option<(u64, u64, u64, u64)> {
        self.events.exposures.get().map(|log| {
            let s = log.stats();
            (s.recorded, s.deduplicated, s.dropped, s.queued)
        })
    }

    /// Problems found in the current flags when they were loaded.
    #[getter]
    fn warnings(&self) -> Vec<PyConfigWarning> {
        self.store.load().warnings().iter().map(PyConfigWarning::from).collect()
    }

    /// How many snapshots have been published; 0 before the first load.
    #[getter]
    fn version(&self) -> u64 {
        self.store.version()
    }

    /// Flag keys in document order.
    fn keys(&self) -> Vec<String> {
        self.store.load().keys().map(str::to_owned).collect()
    }

    /// The definition of one flag as loaded, or None.
    fn get_config(&self, key: &str) -> Option<PyFlagConfig> {
        self.store
            .load()
            .definition(key)
            .map(|def| PyFlagConfig::new(def.clone()))
    }

    /// Every flag definition as loaded, in document order.
    fn configs(&self) -> Vec<PyFlagConfig> {
        self.store
            .load()
            .definitions()
            .map(|def| PyFlagConfig::new(def.clone()))
            .collect()
    }

    /// The segments of the current document, in document order.
    fn segments(&self) -> Vec<PySegment> {
        self.store
            .load()
            .segments()
            .iter()
            .map(|def| PySegment {
                def: def.clone(),
                warnings: Vec::new(),
            })
            .collect()
    }

    /// The current document's own metadata (a new dict on each access).
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_json(py, &serde_json::Value::Object(self.store.load().metadata().clone()))
    }

    /// The current document in wire form (format 2), duplicates resolved: `update_json` of its
    /// JSON gives back the same flags.
    fn document<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut document = self.store.load().document();
        document.format = FORMAT;
        convert::from_json(py, &document.to_value())
    }

    fn __len__(&self) -> usize {
        self.store.load().len()
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> bool {
        key.cast::<PyString>()
            .ok()
            .and_then(|k| k.to_str().ok())
            .is_some_and(|k| self.store.load().contains(k))
    }

    fn __repr__(&self) -> String {
        let snapshot = self.store.load();
        format!("FlagEvaluator(flags={}, version={})", snapshot.len(), snapshot.version)
    }
}

/// Benchmark floor: a method-shaped call that takes the same arguments as `is_enabled` and does nothing.
#[pyfunction]
#[pyo3(signature = (key, ctx, default = false))]
pub fn _bench_empty_call(key: &str, ctx: &Bound<'_, PyAny>, default: bool) -> bool {
    let _ = (key, ctx);
    default
}

/// Benchmark floor: runs `iterations` SHA-256 hashes of `data` (keeping the first four bytes, as
/// bucketing does) and returns the nanoseconds they took.
#[pyfunction]
pub fn _bench_sha256(py: Python<'_>, data: &[u8], iterations: u64) -> u128 {
    py.detach(|| {
        let start = std::time::Instant::now();
        let mut acc = 0u32;
        for _ in 0..iterations {
            let digest = Sha256::digest(std::hint::black_box(data));
            acc ^= u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        }
        std::hint::black_box(acc);
        start.elapsed().as_nanos()
    })
}

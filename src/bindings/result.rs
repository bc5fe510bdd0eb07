//! `EvalResult`: the answer for one flag and one context.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyType;

use super::errors::py_repr;
use crate::eval::decide::{EvalResult, Reason};

use super::convert;

#[pyclass(name = "EvalResult", module = "ferroflag._ferroflag", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash)]
pub struct PyEvalResult {
    pub(crate) inner: EvalResult,
}

impl From<EvalResult> for PyEvalResult {
    fn from(inner: EvalResult) -> Self {
        Self { inner }
    }
}

#[pymethods]
impl PyEvalResult {
    #[new]
    #[pyo3(signature = (enabled, variant = "", reason = "default", value = None))]
    fn py_new(enabled: bool, variant: &str, reason: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let reason = Reason::parse(reason).ok_or_else(|| {
            let known: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
            PyValueError::new_err(format!(
                "unknown reason {reason:?} (expected one of {})",
                known.join(", ")
            ))
        })?;
        let variant = (!variant.is_empty()).then(|| Arc::from(variant));
        let value = match value.filter(|v| !v.is_none()) {
            None => None,
            Some(value) => Some(Arc::new(convert::value_to_json(value, "value")?)),
        };
        Ok(Self {
            inner: EvalResult {
                enabled,
                variant,
                reason,
                value,
            },
        })
    }

    #[getter]
    fn enabled(&self) -> bool {
        self.inner.enabled
    }

    #[getter]
    fn variant(&self) -> &str {
        self.inner.variant()
    }

    /// One of `not_found`, `disabled`, `prerequisite_failed`, `rule_match`, `percentage`,
    /// `percentage_excluded`, `no_match`, `default`.
    #[getter]
    fn reason(&self) -> &'static str {
        self.inner.reason.as_str()
    }

    /// The variant's value (docs/spec.md §2.2), a new object on each access: the caller's own.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.inner.value() {
            None => Ok(py.None().into_bound(py)),
            Some(value) => convert::from_json(py, value),
        }
    }

    #[classattr]
    fn __match_args__() -> (&'static str, &'static str, &'static str, &'static str) {
        ("enabled", "variant", "reason", "value")
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let value = match self.inner.value() {
            None => String::new(),
            Some(_) => format!(", value={}", self.value(py)?.repr()?),
        };
        Ok(format!(
            "EvalResult(enabled={}, variant={}, reason={}{value})",
            if self.inner.enabled { "True" } else { "False" },
            py_repr(py, self.inner.variant())?,
            py_repr(py, self.inner.reason.as_str())?
        ))
    }

    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, (bool, String, &'static str, Bound<'py, PyAny>))> {
        let r = &slf.get().inner;
        Ok((
            slf.get_type(),
            (
                r.enabled,
                r.variant().to_owned(),
                r.reason.as_str(),
                slf.get().value(slf.py())?,
            ),
        ))
    }
}

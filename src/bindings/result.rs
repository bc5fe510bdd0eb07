//! `EvalResult`: the answer for one flag and one context.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyType;

use super::errors::py_repr;
use crate::evaluate::{EvalResult, Reason};

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
    #[pyo3(signature = (enabled, variant = "", reason = "default"))]
    fn py_new(enabled: bool, variant: &str, reason: &str) -> PyResult<Self> {
        let reason = Reason::parse(reason).ok_or_else(|| {
            let known: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
            PyValueError::new_err(format!(
                "unknown reason {reason:?} (expected one of {})",
                known.join(", ")
            ))
        })?;
        let variant = (!variant.is_empty()).then(|| Arc::from(variant));
        Ok(Self {
            inner: EvalResult {
                enabled,
                variant,
                reason,
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

    /// One of `not_found`, `disabled`, `rule_match`, `percentage`, `percentage_excluded`, `default`.
    #[getter]
    fn reason(&self) -> &'static str {
        self.inner.reason.as_str()
    }

    #[classattr]
    fn __match_args__() -> (&'static str, &'static str, &'static str) {
        ("enabled", "variant", "reason")
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "EvalResult(enabled={}, variant={}, reason={})",
            if self.inner.enabled { "True" } else { "False" },
            py_repr(py, self.inner.variant())?,
            py_repr(py, self.inner.reason.as_str())?
        ))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, PyType>, (bool, String, &'static str)) {
        let r = &slf.get().inner;
        (slf.get_type(), (r.enabled, r.variant().to_owned(), r.reason.as_str()))
    }
}

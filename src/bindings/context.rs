//! `EvalContext`: who a flag is evaluated for, converted to Rust once and reused (SPEC §3).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyType};

use super::convert::{self, type_name};
use super::errors::py_repr;
use crate::context::EvalContext;

#[pyclass(name = "EvalContext", module = "ferroflag._ferroflag", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash)]
pub struct PyEvalContext {
    pub(crate) inner: EvalContext,
}

#[pymethods]
impl PyEvalContext {
    #[new]
    #[pyo3(signature = (user_id, email = String::new(), plan = String::new(), country = String::new(), properties = None))]
    fn py_new(
        user_id: &Bound<'_, PyAny>,
        email: String,
        plan: String,
        country: String,
        properties: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let user_id = convert::user_id_text(user_id)?;
        let properties = convert::properties(properties)?;
        Ok(Self {
            inner: EvalContext::with_fields(user_id, email, plan, country, properties),
        })
    }

    #[getter]
    fn user_id(&self) -> &str {
        &self.inner.user_id
    }

    #[getter]
    fn email(&self) -> &str {
        &self.inner.email
    }

    #[getter]
    fn plan(&self) -> &str {
        &self.inner.plan
    }

    #[getter]
    fn country(&self) -> &str {
        &self.inner.country
    }

    /// A new dict on each access: the context itself never changes.
    #[getter]
    fn properties<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (name, value) in self.inner.properties() {
            dict.set_item(name, value)?;
        }
        Ok(dict)
    }

    /// The value a condition on `attribute` would see (`""` when missing).
    fn get(&self, attribute: &str) -> &str {
        self.inner.get(attribute)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut parts = vec![format!("user_id={}", py_repr(py, &self.inner.user_id)?)];
        for (name, value) in [
            ("email", &self.inner.email),
            ("plan", &self.inner.plan),
            ("country", &self.inner.country),
        ] {
            if !value.is_empty() {
                parts.push(format!("{name}={}", py_repr(py, value)?));
            }
        }
        if !self.inner.properties().is_empty() {
            parts.push(format!("properties={}", self.properties(py)?.repr()?));
        }
        Ok(format!("EvalContext({})", parts.join(", ")))
    }

    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, (String, String, String, String, Bound<'py, PyDict>))> {
        let ctx = &slf.get().inner;
        let properties = slf.get().properties(slf.py())?;
        Ok((
            slf.get_type(),
            (
                ctx.user_id.clone(),
                ctx.email.clone(),
                ctx.plan.clone(),
                ctx.country.clone(),
                properties,
            ),
        ))
    }
}

/// A context argument: an `EvalContext`, or a dict with the same fields.
pub enum ContextArg<'a, 'py> {
    Native(&'a Bound<'py, PyEvalContext>),
    Owned(EvalContext),
}

impl ContextArg<'_, '_> {
    pub fn get(&self) -> &EvalContext {
        match self {
            Self::Native(ctx) => &ctx.get().inner,
            Self::Owned(ctx) => ctx,
        }
    }
}

pub fn context_arg<'a, 'py>(obj: &'a Bound<'py, PyAny>) -> PyResult<ContextArg<'a, 'py>> {
    if let Ok(ctx) = obj.cast::<PyEvalContext>() {
        return Ok(ContextArg::Native(ctx));
    }
    match obj.cast::<PyDict>() {
        Ok(dict) => context_from_dict(dict).map(ContextArg::Owned),
        Err(_) => Err(PyTypeError::new_err(format!(
            "ctx must be an EvalContext or a dict, got {}",
            type_name(obj)
        ))),
    }
}

pub fn context_from_dict(dict: &Bound<'_, PyDict>) -> PyResult<EvalContext> {
    let mut ctx = EvalContext::default();
    let mut properties = Vec::new();
    for (name, value) in dict.iter() {
        let name = name
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err(format!("context dict keys must be str, got {}", type_name(&name))))?;
        match name.to_str()? {
            "user_id" => ctx.user_id = convert::user_id_text(&value)?,
            "email" => ctx.email = convert::string_arg("email", &value)?,
            "plan" => ctx.plan = convert::string_arg("plan", &value)?,
            "country" => ctx.country = convert::string_arg("country", &value)?,
            "properties" => properties = convert::properties(Some(&value))?,
            other => {
                return Err(PyTypeError::new_err(format!(
                    "unexpected context field {other:?} (expected user_id, email, plan, country, properties)"
                )));
            }
        }
    }
    Ok(EvalContext::with_fields(
        ctx.user_id,
        ctx.email,
        ctx.plan,
        ctx.country,
        properties,
    ))
}

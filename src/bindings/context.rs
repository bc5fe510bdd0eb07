//! `EvalContext`: who a flag is evaluated for, converted to Rust once and reused (SPEC §3).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyType};

use super::convert::{self, type_name};
use super::errors::py_repr;
use crate::context::{AttributeValue, EvalContext, PropertyValue};

#[pyclass(name = "EvalContext", module = "ferroflag._ferroflag", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash)]
pub struct PyEvalContext {
    pub(crate) inner: EvalContext,
}

#[pymethods]
impl PyEvalContext {
    #[new]
    // `""` literals (not `String::new()`) so the text signature shows the defaults.
    #[pyo3(signature = (user_id, email = "", plan = "", country = "", properties = None))]
    fn py_new(
        user_id: &Bound<'_, PyAny>,
        email: &str,
        plan: &str,
        country: &str,
        properties: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let user_id = convert::user_id_text(user_id)?;
        let properties = convert::properties(properties)?;
        Ok(Self {
            inner: EvalContext::with_fields(
                user_id,
                email.to_owned(),
                plan.to_owned(),
                country.to_owned(),
                properties,
            ),
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
            match value {
                PropertyValue::One(text) => dict.set_item(name, text)?,
                PropertyValue::Many(items) => dict.set_item(name, PyList::new(py, items.iter())?)?,
            }
        }
        Ok(dict)
    }

    /// The value a condition on `attribute` would see: a str (`""` when missing) or, for a list
    /// property, a new list.
    fn get<'py>(&self, py: Python<'py>, attribute: &str) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self.inner.get(attribute) {
            AttributeValue::One(text) => PyString::new(py, text).into_any(),
            AttributeValue::Many(items) => PyList::new(py, items.iter())?.into_any(),
        })
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
    /// Boxed, so the common `Native` case stays two words wide.
    Owned(Box<EvalContext>),
}

impl ContextArg<'_, '_> {
    #[inline]
    pub fn get(&self) -> &EvalContext {
        match self {
            Self::Native(ctx) => &ctx.get().inner,
            Self::Owned(ctx) => ctx,
        }
    }
}

/// Inlined into every evaluation method: the `EvalContext` case is one type check, and the rest (a
/// dict to convert, or a `TypeError`) stays out of line. Measured with `benches/bench_python.py`: taking
/// the dict path inline cost every call about 5 ns, a fifth of a rule hit.
#[inline]
pub fn context_arg<'a, 'py>(obj: &'a Bound<'py, PyAny>) -> PyResult<ContextArg<'a, 'py>> {
    match obj.cast::<PyEvalContext>() {
        Ok(ctx) => Ok(ContextArg::Native(ctx)),
        Err(_) => context_arg_other(obj),
    }
}

#[inline(never)]
fn context_arg_other<'a, 'py>(obj: &'a Bound<'py, PyAny>) -> PyResult<ContextArg<'a, 'py>> {
    match obj.cast::<PyDict>() {
        Ok(dict) => context_from_dict(dict).map(|ctx| ContextArg::Owned(Box::new(ctx))),
        Err(_) => Err(PyTypeError::new_err(format!(
            "ctx must be an EvalContext or a dict, got {}",
            type_name(obj)
        ))),
    }
}

pub fn context_from_dict(dict: &Bound<'_, PyDict>) -> PyResult<EvalContext> {
    let mut ctx = EvalContext::default();
    let mut properties = Vec::new();
    for (name, value) in convert::dict_snapshot(dict)?.iter() {
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

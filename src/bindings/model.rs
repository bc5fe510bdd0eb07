//! `FlagConfig`, `Rule` and `Condition`: the seed's constructor shapes over the core's definitions.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};
use serde_json::Value;

use super::convert::{self, type_name};
use super::errors::{py_repr, to_py_err};
use crate::config::{ConditionDef, FlagDef, RuleDef};
use crate::error::Location;

/// Items of a list argument; a bare `str` is refused because iterating it gives characters.
fn list_items<'py>(name: &str, obj: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a list, got {}",
            type_name(obj)
        )));
    }
    obj.try_iter()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be a list, got {}", type_name(obj))))?
        .collect()
}

/// `index` and `base` place the definition as the core's parser does in its errors.
fn from_dict<T>(
    obj: &Bound<'_, PyAny>,
    what: &str,
    (index, base): (Option<usize>, &str),
    parse: impl FnOnce(&Value) -> crate::error::Result<T>,
) -> PyResult<T> {
    if !obj.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!(
            "{what}.from_dict() takes a dict, got {}",
            type_name(obj)
        )));
    }
    let location = Location {
        index,
        flag: flag_key(obj),
        path: base.to_owned(),
    };
    parse(&convert::definition_to_json(obj, location)?).map_err(to_py_err)
}

/// The `key` of a flag given as a dict, when it is a string: errors name the flag with it.
fn flag_key(obj: &Bound<'_, PyAny>) -> Option<String> {
    obj.get_item("key").ok().and_then(|k| k.extract::<String>().ok())
}

#[pyclass(name = "Condition", module = "ferroflag._ferroflag", frozen, eq)]
#[derive(PartialEq)]
pub struct PyCondition {
    pub(crate) def: ConditionDef,
}

#[pymethods]
impl PyCondition {
    #[new]
    #[pyo3(signature = (attribute, operator, values = None))]
    fn py_new(attribute: String, operator: String, values: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let values = match values {
            None => Vec::new(),
            Some(values) => list_items("values", values)?
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    if let Ok(s) = v.cast::<PyString>() {
                        return Ok(s.to_str()?.to_owned());
                    }
                    if (v.is_instance_of::<PyInt>() && !v.is_instance_of::<PyBool>()) || v.is_instance_of::<PyFloat>() {
                        return Ok(v.str()?.to_str()?.to_owned());
                    }
                    Err(PyTypeError::new_err(format!(
                        "values[{i}] must be a str, int or float, got {}",
                        type_name(v)
                    )))
                })
                .collect::<PyResult<_>>()?,
        };
        Ok(Self {
            def: ConditionDef {
                attribute,
                operator,
                values,
            },
        })
    }

    #[getter]
    fn attribute(&self) -> &str {
        &self.def.attribute
    }

    #[getter]
    fn operator(&self) -> &str {
        &self.def.operator
    }

    #[getter]
    fn values(&self) -> Vec<String> {
        self.def.values.clone()
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_json(py, &self.def.to_value())
    }

    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        from_dict(data, "Condition", (None, "condition"), ConditionDef::from_value).map(|def| Self { def })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let values = PyList::new(py, &self.def.values)?.repr()?;
        Ok(format!(
            "Condition({}, {}, {values})",
            py_repr(py, &self.def.attribute)?,
            py_repr(py, &self.def.operator)?
        ))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyAny>,))> {
        Ok((slf.get_type().getattr("from_dict")?, (slf.get().to_dict(slf.py())?,)))
    }
}

#[pyclass(name = "Rule", module = "ferroflag._ferroflag", frozen, eq)]
#[derive(PartialEq)]
pub struct PyRule {
    pub(crate) def: RuleDef,
}

#[pymethods]
impl PyRule {
    #[new]
    #[pyo3(signature = (conditions = None, variant = "", priority = 0))]
    fn py_new(conditions: Option<&Bound<'_, PyAny>>, variant: &str, priority: i64) -> PyResult<Self> {
        let conditions = match conditions {
            None => Vec::new(),
            Some(items) => list_items("conditions", items)?
                .iter()
                .enumerate()
                .map(|(i, c)| condition_from(c, &format!("conditions[{i}]")))
                .collect::<PyResult<_>>()?,
        };
        Ok(Self {
            def: RuleDef {
                conditions,
                variant: variant.to_owned(),
                priority,
            },
        })
    }

    #[getter]
    fn conditions(&self) -> Vec<PyCondition> {
        self.def
            .conditions
            .iter()
            .map(|c| PyCondition { def: c.clone() })
            .collect()
    }

    #[getter]
    fn variant(&self) -> &str {
        &self.def.variant
    }

    #[getter]
    fn priority(&self) -> i64 {
        self.def.priority
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_json(py, &self.def.to_value())
    }

    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        from_dict(data, "Rule", (None, "rule"), RuleDef::from_value).map(|def| Self { def })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let conditions: Vec<String> = self
            .conditions()
            .iter()
            .map(|c| c.__repr__(py))
            .collect::<PyResult<_>>()?;
        Ok(format!(
            "Rule(conditions=[{}], variant={}, priority={})",
            conditions.join(", "),
            py_repr(py, &self.def.variant)?,
            self.def.priority
        ))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyAny>,))> {
        Ok((slf.get_type().getattr("from_dict")?, (slf.get().to_dict(slf.py())?,)))
    }
}

fn condition_from(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<ConditionDef> {
    if let Ok(c) = obj.cast::<PyCondition>() {
        return Ok(c.get().def.clone());
    }
    if obj.is_instance_of::<PyDict>() {
        return from_dict(obj, "Condition", (None, "condition"), ConditionDef::from_value);
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be a Condition or a dict, got {}",
        type_name(obj)
    )))
}

fn rule_from(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<RuleDef> {
    if let Ok(r) = obj.cast::<PyRule>() {
        return Ok(r.get().def.clone());
    }
    if obj.is_instance_of::<PyDict>() {
        return from_dict(obj, "Rule", (None, "rule"), RuleDef::from_value);
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be a Rule or a dict, got {}",
        type_name(obj)
    )))
}

#[pyclass(name = "FlagConfig", module = "ferroflag._ferroflag", frozen, eq)]
#[derive(PartialEq)]
pub struct PyFlagConfig {
    pub(crate) def: FlagDef,
}

#[pymethods]
impl PyFlagConfig {
    #[new]
    #[pyo3(signature = (key, enabled = true, percentage = 0.0, rules = None, variants = None, default_variant = ""))]
    fn py_new(
        key: String,
        enabled: bool,
        percentage: f64,
        rules: Option<&Bound<'_, PyAny>>,
        variants: Option<&Bound<'_, PyAny>>,
        default_variant: &str,
    ) -> PyResult<Self> {
        if key.is_empty() {
            return Err(PyValueError::new_err("key must not be empty"));
        }
        if !percentage.is_finite() {
            return Err(PyValueError::new_err(format!(
                "percentage must be a finite number, got {percentage}"
            )));
        }
        let rules = match rules {
            None => Vec::new(),
            Some(items) => list_items("rules", items)?
                .iter()
                .enumerate()
                .map(|(i, r)| rule_from(r, &format!("rules[{i}]")))
                .collect::<PyResult<_>>()?,
        };
        let mut variants: Vec<(String, f64)> = match variants {
            None => Vec::new(),
            Some(obj) => {
                let dict = obj
                    .cast::<PyDict>()
                    .map_err(|_| PyTypeError::new_err(format!("variants must be a dict, got {}", type_name(obj))))?;
                convert::dict_snapshot(dict)?
                    .iter()
                    .map(|(name, weight)| {
                        let name = convert::string_arg("variant names", &name)?;
                        if weight.is_instance_of::<PyBool>() {
                            return Err(PyTypeError::new_err(format!(
                                "variants[{name:?}] must be a number, got bool"
                            )));
                        }
                        let w: f64 = weight.extract().map_err(|_| {
                            PyTypeError::new_err(format!(
                                "variants[{name:?}] must be a number, got {}",
                                type_name(&weight)
                            ))
                        })?;
                        if !w.is_finite() || w < 0.0 {
                            return Err(PyValueError::new_err(format!(
                                "variants[{name:?}] must be a finite number >= 0, got {w}"
                            )));
                        }
                        Ok((name, w))
                    })
                    .collect::<PyResult<_>>()?
            }
        };
        // Sorted by name, as `FlagDef` keeps them (a dict's order does not make another flag).
        variants.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self {
            def: FlagDef {
                key,
                enabled,
                percentage,
                rules,
                variants,
                default_variant: default_variant.to_owned(),
            },
        })
    }

    #[getter]
    fn key(&self) -> &str {
        &self.def.key
    }

    #[getter]
    fn enabled(&self) -> bool {
        self.def.enabled
    }

    #[getter]
    fn percentage(&self) -> f64 {
        self.def.percentage
    }

    #[getter]
    fn rules(&self) -> Vec<PyRule> {
        self.def.rules.iter().map(|r| PyRule { def: r.clone() }).collect()
    }

    #[getter]
    fn variants<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (name, weight) in &self.def.variants {
            dict.set_item(name, weight)?;
        }
        Ok(dict)
    }

    #[getter]
    fn default_variant(&self) -> &str {
        &self.def.default_variant
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_json(py, &self.def.to_value())
    }

    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        from_dict(data, "FlagConfig", (Some(0), ""), |v| FlagDef::from_value(v, 0)).map(|def| Self { def })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let rules: Vec<String> = self.rules().iter().map(|r| r.__repr__(py)).collect::<PyResult<_>>()?;
        Ok(format!(
            "FlagConfig(key={}, enabled={}, percentage={}, rules=[{}], variants={}, default_variant={})",
            py_repr(py, &self.def.key)?,
            if self.def.enabled { "True" } else { "False" },
            self.def.percentage.into_pyobject(py)?.repr()?,
            rules.join(", "),
            self.variants(py)?.repr()?,
            py_repr(py, &self.def.default_variant)?
        ))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyAny>,))> {
        Ok((slf.get_type().getattr("from_dict")?, (slf.get().to_dict(slf.py())?,)))
    }
}

/// One entry of `FlagEvaluator.update()`: a `FlagConfig` or a dict in wire format.
pub fn flag_from(obj: &Bound<'_, PyAny>, index: usize) -> PyResult<FlagDef> {
    if let Ok(f) = obj.cast::<PyFlagConfig>() {
        return Ok(f.get().def.clone());
    }
    if obj.is_instance_of::<PyDict>() {
        let location = Location {
            index: Some(index),
            flag: flag_key(obj),
            path: String::new(),
        };
        let value = convert::definition_to_json(obj, location)?;
        return FlagDef::from_value(&value, index).map_err(to_py_err);
    }
    Err(PyTypeError::new_err(format!(
        "flags[{index}] must be a FlagConfig or a dict, got {}",
        type_name(obj)
    )))
}

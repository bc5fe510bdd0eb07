//! Reading Python objects into core types. Every failure names what was wrong and where.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use super::model::{PyCondition, PyFlagConfig, PyRule};

/// Deeper nesting than any flag document needs; stops recursive structures early.
const MAX_DEPTH: usize = 32;

pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "<unknown>".to_owned(), |n| n.to_string())
}

/// A `str`, or the decimal text of an `int` (SPEC §3 stores numbers as text).
pub fn user_id_text(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_str()?.to_owned());
    }
    if obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyBool>() {
        return Ok(obj.str()?.to_str()?.to_owned());
    }
    Err(PyTypeError::new_err(format!(
        "user_id must be a str or an int, got {}",
        type_name(obj)
    )))
}

/// A property value as text: `str` as is, `True`/`False` as `"true"`/`"false"`, numbers as `str()` gives them.
pub fn property_text(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_str()?.to_owned());
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(if b.is_true() { "true" } else { "false" }.to_owned());
    }
    if obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>() {
        return Ok(obj.str()?.to_str()?.to_owned());
    }
    Err(PyTypeError::new_err(format!(
        "properties[{name:?}] must be a str, int, float or bool, got {}",
        type_name(obj)
    )))
}

/// Reads a `properties` dict into sorted `(name, text)` pairs.
pub fn properties(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    let dict = obj
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err(format!("properties must be a dict, got {}", type_name(obj))))?;
    let mut out = Vec::with_capacity(dict.len());
    for (name, value) in dict.iter() {
        let name = name
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err(format!("property names must be str, got {}", type_name(&name))))?
            .to_str()?
            .to_owned();
        let value = property_text(&name, &value)?;
        out.push((name, value));
    }
    Ok(out)
}

/// A string argument, with a `TypeError` naming the argument.
pub fn string_arg(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<String> {
    obj.cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be a str, got {}", type_name(obj))))?
        .to_str()
        .map(str::to_owned)
}

/// Converts plain Python data (dicts, lists, str, int, float, bool, None, and ferroflag's own
/// config classes) into JSON, so dicts go through the same validation as documents.
///
/// Floats keep the text Python's `repr` gives them, numbers in condition values are kept as text.
pub fn to_json(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err("structure nested too deeply (recursive?)"));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>() {
        let text = obj.repr()?;
        let text = text.to_str()?;
        return text
            .parse::<Number>()
            .map(Value::Number)
            .map_err(|_| PyValueError::new_err(format!("{text} is not a finite number")));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in dict.iter() {
            let k = k
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err(format!("dict keys must be str, got {}", type_name(&k))))?;
            map.insert(k.to_str()?.to_owned(), to_json(&v, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        return obj
            .try_iter()?
            .map(|item| to_json(&item?, depth + 1))
            .collect::<PyResult<_>>()
            .map(Value::Array);
    }
    if let Ok(c) = obj.cast::<PyCondition>() {
        return Ok(c.get().def.to_value());
    }
    if let Ok(r) = obj.cast::<PyRule>() {
        return Ok(r.get().def.to_value());
    }
    if let Ok(f) = obj.cast::<PyFlagConfig>() {
        return Ok(f.get().def.to_value());
    }
    Err(PyTypeError::new_err(format!(
        "cannot use a {} in a flag definition (expected dict, list, str, int, float, bool or None)",
        type_name(obj)
    )))
}

/// JSON into plain Python data (dict, list, str, int, float, bool, None).
pub fn from_json<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => PyList::new(
            py,
            items.iter().map(|v| from_json(py, v)).collect::<PyResult<Vec<_>>>()?,
        )?
        .into_any(),
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, from_json(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

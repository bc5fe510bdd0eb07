//! Reading Python objects into core types. Every failure names what was wrong and where.

use std::fmt::Write as _;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use super::errors::config_error;
use crate::context::PropertyValue;
use crate::error::Location;

/// As deep as a document may nest (127 arrays and objects, counting the top-level array and the flag
/// object itself), so a flag given as dicts loads exactly when its JSON would; it also stops
/// recursive structures early.
const MAX_DEPTH: usize = 126;

pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "<unknown>".to_owned(), |n| n.to_string())
}

/// A private copy of a dict, to iterate while converting its values.
///
/// The dict iterator of `pyo3` panics when the dict changes size under it, and converting a value can run
/// user code (an `int` subclass's `__str__`, a `__float__`, a `__repr__`) that changes the dict;
/// on free-threaded Python another thread can too. Nothing else holds the copy.
pub fn dict_snapshot<'py>(dict: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyDict>> {
    dict.copy()
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

/// A scalar property value as text: `str` as is, `True`/`False` as `"true"`/`"false"`, numbers
/// as `str()` gives them.
fn scalar_text(obj: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Some(s.to_str()?.to_owned()));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Some(if b.is_true() { "true" } else { "false" }.to_owned()));
    }
    if obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>() {
        return Ok(Some(obj.str()?.to_str()?.to_owned()));
    }
    Ok(None)
}

/// A property value: a scalar as text, or a list or tuple of scalars (docs/spec.md §4).
pub fn property_value(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<PropertyValue> {
    if let Some(text) = scalar_text(obj)? {
        return Ok(PropertyValue::One(text));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items = if let Ok(list) = obj.cast::<PyList>() {
            // A copy: converting an element can run user code that changes the list.
            list.to_tuple()
        } else {
            obj.cast::<PyTuple>()?.clone()
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match scalar_text(&item)? {
                Some(text) => out.push(text),
                None => {
                    return Err(PyTypeError::new_err(format!(
                        "properties[{name:?}][{i}] must be a str, int, float or bool, got {}",
                        type_name(&item)
                    )));
                }
            }
        }
        return Ok(PropertyValue::Many(out.into_boxed_slice()));
    }
    Err(PyTypeError::new_err(format!(
        "properties[{name:?}] must be a str, int, float, bool, or a list of them, got {}",
        type_name(obj)
    )))
}

/// Reads a `properties` dict into sorted `(name, text)` pairs.
pub fn properties(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, PropertyValue)>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    let dict = obj
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err(format!("properties must be a dict, got {}", type_name(obj))))?;
    let mut out = Vec::with_capacity(dict.len());
    for (name, value) in dict_snapshot(dict)?.iter() {
        let name = name
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err(format!("property names must be str, got {}", type_name(&name))))?
            .to_str()?
            .to_owned();
        let value = property_value(&name, &value)?;
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
/// `location` says which definition this is; on failure its path is extended to the offending
/// value. A value that cannot be JSON (NaN, nesting too deep) becomes a `ConfigError` there; a
/// Python type that has no JSON form stays a `TypeError`, with the path in its message.
pub fn definition_to_json(obj: &Bound<'_, PyAny>, mut location: Location, own: OwnTypes<'_>) -> PyResult<Value> {
    let mut path = std::mem::take(&mut location.path);
    to_json(obj, 0, &mut path, own).map_err(|e| {
        let py = obj.py();
        location.path = path;
        if e.is_instance_of::<PyTypeError>(py) && !location.path.is_empty() {
            PyTypeError::new_err(format!("{}: {}", location.json_path(), e.value(py)))
        } else if e.is_instance_of::<PyValueError>(py) {
            config_error(location, e.value(py).to_string())
        } else {
            e
        }
    })
}

/// The wire form of ferroflag's own classes (`FlagConfig`, `Rule`, ...) inside plain data; the
/// model module supplies it, so this module needs none of its types.
pub type OwnTypes<'a> = &'a dyn Fn(&Bound<'_, PyAny>) -> Option<Value>;

/// Plain data as JSON (any value, e.g. a flag's `values`), with a `TypeError` naming the path.
pub fn value_to_json(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    let mut path = String::new();
    to_json(obj, 0, &mut path, &|_| None).map_err(|e| {
        let py = obj.py();
        let place = if path.is_empty() {
            what.to_owned()
        } else {
            format!("{what}.{path}")
        };
        if e.is_instance_of::<PyTypeError>(py) {
            PyTypeError::new_err(format!("{place}: {}", e.value(py)))
        } else {
            PyValueError::new_err(format!("{place}: {}", e.value(py)))
        }
    })
}

/// Floats keep the text Python's `repr` gives them, numbers in condition values are kept as text.
/// `path` is extended while descending and left pointing at the value that failed.
fn to_json(obj: &Bound<'_, PyAny>, depth: usize, path: &mut String, own: OwnTypes<'_>) -> PyResult<Value> {
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
    if obj.is_exact_instance_of::<PyInt>() {
        // Most numbers in flag definitions are small ints (percentages, weights, priorities):
        // read them without going through their text.
        if let Ok(n) = obj.extract::<i64>() {
            return Ok(Value::from(n));
        }
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
        for (k, v) in dict_snapshot(dict)?.iter() {
            let k = k
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err(format!("dict keys must be str, got {}", type_name(&k))))?;
            let k = k.to_str()?;
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(k);
            map.insert(k.to_owned(), to_json(&v, depth + 1, path, own)?);
            path.truncate(len);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in obj.try_iter()?.enumerate() {
            let len = path.len();
            let _ = write!(path, "[{i}]");
            items.push(to_json(&item?, depth + 1, path, own)?);
            path.truncate(len);
        }
        return Ok(Value::Array(items));
    }
    if let Some(value) = own(obj) {
        return Ok(value);
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

//! Python exceptions, and the single conversion from the core's error type (STYLE R4).

use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyIsADirectoryError, PyOSError, PyPermissionError, PyRuntimeError, PyTypeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

use crate::error::{FerroflagError as CoreError, Location, Warning};

pyo3::create_exception!(
    ferroflag,
    FerroflagError,
    PyException,
    "Base class of every error ferroflag raises."
);

static CONFIG_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `ConfigError(FerroflagError, ValueError)`: two bases, which `create_exception!` cannot express,
/// so the class is made once by calling `type()`.
pub fn config_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    CONFIG_ERROR
        .get_or_try_init(py, || {
            let bases = PyTuple::new(py, [py.get_type::<FerroflagError>(), py.get_type::<PyValueError>()])?;
            let namespace = PyDict::new(py);
            namespace.set_item("__module__", "ferroflag")?;
            // Class-level defaults, so a ConfigError raised by user code (or unpickled) has them too.
            namespace.set_item("flag", py.None())?;
            namespace.set_item("path", "")?;
            namespace.set_item("message", "")?;
            namespace.set_item(
                "__doc__",
                "A flag document or flag definition was rejected. `flag` names the flag (or None), \
                 `path` the JSON path of the offending field, `message` what is wrong without the location.",
            )?;
            let class = py.get_type::<PyType>().call1(("ConfigError", bases, namespace))?;
            Ok(class.cast_into::<PyType>()?.unbind())
        })
        .map(|t| t.bind(py))
}

static CONFIG_TYPE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `ConfigTypeError(ConfigError, TypeError)`: a field of the wrong type. One class for documents
/// and Python arguments alike, so `except TypeError` and `except ConfigError` both catch it.
pub fn config_type_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    CONFIG_TYPE_ERROR
        .get_or_try_init(py, || {
            let bases = PyTuple::new(py, [config_error_type(py)?.clone(), py.get_type::<PyTypeError>()])?;
            let namespace = PyDict::new(py);
            namespace.set_item("__module__", "ferroflag")?;
            namespace.set_item(
                "__doc__",
                "A field of a flag document or definition has the wrong type (a ConfigError and a TypeError).",
            )?;
            let class = py.get_type::<PyType>().call1(("ConfigTypeError", bases, namespace))?;
            Ok(class.cast_into::<PyType>()?.unbind())
        })
        .map(|t| t.bind(py))
}

/// Raises a `ConfigError` for a problem found while reading Python objects.
pub fn config_error(location: Location, message: impl Into<String>) -> PyErr {
    to_py_err(CoreError::Config {
        location,
        message: message.into(),
        wrong_type: false,
    })
}

/// The one place a core error becomes a Python exception.
pub fn to_py_err(error: CoreError) -> PyErr {
    Python::attach(|py| match error {
        CoreError::Config {
            ref location,
            ref message,
            wrong_type,
        } => {
            let raise = || -> PyResult<PyErr> {
                let class = if wrong_type {
                    config_type_error_type(py)?
                } else {
                    config_error_type(py)?
                };
                let exc = class.call1((error.to_string(),))?;
                exc.setattr("flag", location.flag())?;
                exc.setattr("path", location.json_path())?;
                exc.setattr("message", message.as_str())?;
                Ok(PyErr::from_value(exc))
            };
            raise().unwrap_or_else(|e| e)
        }
        CoreError::Io { path, source } => {
            // Python puts the errno in front itself; drop Rust's " (os error N)" suffix.
            let code = source.raw_os_error().unwrap_or(0);
            let text = source.to_string();
            let text = text
                .strip_suffix(&format!(" (os error {code})"))
                .unwrap_or(&text)
                .to_owned();
            let args = (code, text, path);
            match source.kind() {
                std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(args),
                std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(args),
                std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(args),
                _ => PyOSError::new_err(args),
            }
        }
    })
}

impl From<CoreError> for PyErr {
    fn from(error: CoreError) -> Self {
        to_py_err(error)
    }
}

/// A problem inside a document that still loaded: an unknown operator, a bad pattern, a duplicate key...
#[pyclass(name = "ConfigWarning", module = "ferroflag._ferroflag", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash)]
pub struct PyConfigWarning {
    flag: Option<String>,
    path: String,
    message: String,
    text: String,
}

impl From<&Warning> for PyConfigWarning {
    fn from(w: &Warning) -> Self {
        Self {
            flag: w.location.flag().map(str::to_owned),
            path: w.location.json_path(),
            message: w.message.clone(),
            text: w.to_string(),
        }
    }
}

#[pymethods]
impl PyConfigWarning {
    /// The key of the flag the warning is about.
    #[getter]
    fn flag(&self) -> Option<&str> {
        self.flag.as_deref()
    }

    /// JSON path of the field, e.g. `flags[2].rules[0].conditions[1].operator`.
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    #[getter]
    fn message(&self) -> &str {
        &self.message
    }

    fn __str__(&self) -> &str {
        &self.text
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "ConfigWarning(flag={}, path={}, message={})",
            self.flag.as_deref().map_or(Ok("None".to_owned()), |f| py_repr(py, f))?,
            py_repr(py, &self.path)?,
            py_repr(py, &self.message)?
        ))
    }
}

/// Python's `repr()` of a string, so reprs read like Python literals.
pub fn py_repr(py: Python<'_>, s: &str) -> PyResult<String> {
    Ok(PyString::new(py, s).repr()?.to_str()?.to_owned())
}

/// The one place a sync error becomes a Python exception: a bad setting is a `ValueError`, a
/// thread that cannot start a `RuntimeError` (as `threading.Thread.start` raises). No text here
/// holds a header value: the core redacts them.
pub fn sync_error(error: crate::sync::SyncError) -> PyErr {
    use crate::sync::SyncError;
    match error {
        SyncError::InvalidUrl { .. }
        | SyncError::InvalidHeader { .. }
        | SyncError::InvalidConfig(_)
        | SyncError::CaBundle { .. } => PyValueError::new_err(error.to_string()),
        SyncError::Spawn(_) | SyncError::Stopped | SyncError::Forked => PyRuntimeError::new_err(error.to_string()),
    }
}

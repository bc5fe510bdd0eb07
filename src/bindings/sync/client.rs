//! `FlagSyncClient`: polls a flag service (or any URL serving a flag document) into an evaluator.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::logging::{LogObserver, logger};
use super::{PySyncStatus, Slot, evaluator_store, float_repr, positive_bytes, positive_seconds, source_pymethods};
use crate::bindings::convert::type_name;
use crate::bindings::errors::{py_repr, sync_error};
use crate::error::quote;
use crate::sync::{Http, SyncClient, SyncConfig};

#[pyclass(name = "FlagSyncClient", module = "ferroflag._ferroflag", frozen)]
pub struct PyFlagSyncClient {
    slot: Arc<Slot<Http>>,
    /// For `url` and `repr`: credentials in the URL are already replaced by `<redacted>`.
    redacted_url: String,
    interval: f64,
    header_names: Vec<String>,
}

/// A `str` argument as UTF-8, or a `ValueError` that holds nothing of it: the `UnicodeEncodeError`
/// of a lone surrogate carries the whole string (a URL with its credentials, a header value).
fn secret_text(value: &Bound<'_, PyString>, what: &str) -> PyResult<String> {
    value
        .to_str()
        .map(str::to_owned)
        .map_err(|_| PyValueError::new_err(format!("{what} is not valid text (it holds a lone surrogate)")))
}

/// Header names and values from a `dict[str, str]`; a value is never echoed in an error.
fn headers_arg(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let dict = headers.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!(
            "headers must be a dict of str to str, got {}",
            type_name(headers)
        ))
    })?;
    let mut out = Vec::with_capacity(dict.len());
    for (name, value) in dict.iter() {
        let name = name.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "headers must be a dict of str to str; a header name is {}",
                type_name(&name)
            ))
        })?;
        let name = secret_text(name, "a header name")?;
        let shown = quote(&name);
        let value = value.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "headers must be a dict of str to str; the value of {shown} is {}",
                type_name(&value)
            ))
        })?;
        out.push((
            name.clone(),
            secret_text(value, &format!("the value of header {shown}"))?,
        ));
    }
    Ok(out)
}

source_pymethods!(PyFlagSyncClient {
    #[new]
    #[pyo3(signature = (
        evaluator, api_url, *, interval = 10.0, timeout = 5.0, path = "/api/flags", headers = None,
        cache_path = None, connect_timeout = None, max_body_bytes = 16_777_216, backoff_cap = 300.0,
        ca_bundle = None, cold_start_cap = 5.0,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        evaluator: &Bound<'_, PyAny>,
        api_url: &Bound<'_, PyAny>,
        interval: f64,
        timeout: f64,
        path: &str,
        headers: Option<&Bound<'_, PyAny>>,
        cache_path: Option<PathBuf>,
        connect_timeout: Option<f64>,
        max_body_bytes: i64,
        backoff_cap: f64,
        ca_bundle: Option<PathBuf>,
        cold_start_cap: f64,
    ) -> PyResult<Self> {
        let store = evaluator_store(evaluator)?;
        let api_url = api_url
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err(format!("api_url must be a str, got {}", type_name(api_url))))?;
        let api_url = secret_text(api_url, "api_url")?;
        let mut config = SyncConfig::new(&api_url, path).map_err(sync_error)?;
        config.interval = positive_seconds("interval", interval)?;
        config.timeout = positive_seconds("timeout", timeout)?;
        if let Some(connect_timeout) = connect_timeout {
            config.connect_timeout = positive_seconds("connect_timeout", connect_timeout)?;
        }
        config.backoff_cap = positive_seconds("backoff_cap", backoff_cap)?;
        config.cold_start_cap = positive_seconds("cold_start_cap", cold_start_cap)?;
        config.max_body_bytes = positive_bytes("max_body_bytes", max_body_bytes)?;
        config.cache_path = cache_path;
        config.ca_bundle = ca_bundle;
        if let Some(headers) = headers {
            for (name, value) in headers_arg(headers)? {
                config.add_header(&name, &value).map_err(sync_error)?;
            }
        }
        let redacted_url = config.redacted_url();
        let header_names = config.header_names().map(str::to_owned).collect();
        logger(py)?;
        let observer = Arc::new(LogObserver::new(redacted_url.clone()));
        let client = SyncClient::new(store, config, observer).map_err(sync_error)?;
        Ok(Self {
            slot: Slot::new(py, client.into_runner())?,
            redacted_url,
            interval,
            header_names,
        })
    }

    /// The URL polled, with credentials (userinfo, query string) replaced by `<redacted>`.
    #[getter]
    fn url(&self) -> &str {
        &self.redacted_url
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let headers = self
            .header_names
            .iter()
            .map(|name| Ok(format!("{}: '<redacted>'", py_repr(py, name)?)))
            .collect::<PyResult<Vec<_>>>()?;
        let headers = if headers.is_empty() {
            String::new()
        } else {
            format!(", headers={{{}}}", headers.join(", "))
        };
        Ok(format!(
            "FlagSyncClient({}, interval={}{headers}, running={})",
            py_repr(py, &self.redacted_url)?,
            float_repr(self.interval),
            if self.slot.client().status().running {
                "True"
            } else {
                "False"
            },
        ))
    }
});

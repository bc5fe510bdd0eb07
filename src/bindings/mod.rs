//! The Python face of the core: the only place that uses pyo3 (STYLE R1).
// PyO3 hands arguments over by value; taking them by reference is not an option there.
#![allow(clippy::needless_pass_by_value)]

mod context;
mod convert;
mod errors;
mod evaluator;
mod model;
mod result;
mod sync;

use pyo3::prelude::*;

#[pymodule(gil_used = false)]
pub mod _ferroflag {
    #[pymodule_export]
    use super::context::PyEvalContext;
    #[pymodule_export]
    use super::errors::{FerroflagError, PyConfigWarning};
    #[pymodule_export]
    use super::evaluator::{_bench_empty_call, _bench_sha256, PyFlagEvaluator};
    #[pymodule_export]
    use super::model::{PyCondition, PyFlagConfig, PyPrerequisite, PyRule, PySegment};
    #[pymodule_export]
    use super::result::PyEvalResult;
    #[pymodule_export]
    use super::sync::{PyFlagFileWatcher, PyFlagSyncClient, PySyncStatus};

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("ConfigError", super::errors::config_error_type(m.py())?)?;
        m.add("ConfigTypeError", super::errors::config_type_error_type(m.py())?)?;
        Ok(())
    }
}

//! `sockloop._sockloop`: the Rust half of the Python package `sockloop`.
//!
//! The Python modules `sockloop.asyncore` and `sockloop.asynchat` hold the classes users
//! subclass; this extension holds the per-iteration work: asking the map's channels what
//! they want, the wait on the core crate's backends (through [`sockloop::Poller`], with
//! the GIL released) and the routing of events to `handle_*_event`, `handle_close` and
//! `handle_error`, with CPython 3.11's semantics. No Rust panic reaches Python: each
//! entry point turns one into a `RuntimeError`.

#![deny(unsafe_code)]

mod epoll;
mod fd;
mod map;
mod route;
mod run;

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// Runs an entry point, turning a Rust panic into a Python `RuntimeError`.
pub(crate) fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(PyRuntimeError::new_err(format!(
            "internal error in sockloop (please report): {msg}"
        )))
    })
}

#[pymodule]
fn _sockloop(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(route::init, m)?)?;
    m.add_function(wrap_pyfunction!(route::read, m)?)?;
    m.add_function(wrap_pyfunction!(route::write, m)?)?;
    m.add_function(wrap_pyfunction!(route::exception, m)?)?;
    m.add_function(wrap_pyfunction!(route::readwrite, m)?)?;
    m.add_function(wrap_pyfunction!(run::run, m)?)?;
    m.add_class::<epoll::EpollState>()?;
    Ok(())
}

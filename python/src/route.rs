//! Event routing, exactly as CPython 3.11's `asyncore.read`, `write`, `_exception` and
//! `readwrite` do it, for real dispatchers and for any object with the same methods.

use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyFrozenSet, PyTuple};

/// What the Python side hands over once, at import (`_init`).
pub(crate) struct Ctx {
    /// `(ExitNow, KeyboardInterrupt, SystemExit)`: propagate, never `handle_error`.
    reraised: Py<PyTuple>,
    /// `_with_exception(obj, exc, method)`: calls `obj.<method>()` while `exc` is being
    /// handled, so `sys.exc_info()` and `compact_traceback()` see it.
    with_exception: Py<PyAny>,
    /// `_DISCONNECTED`: errnos that go to `handle_close` instead of `handle_error`.
    disconnected: Py<PyFrozenSet>,
    /// `select.POLLIN` and friends, as this platform numbers them.
    pub(crate) flags: PollFlags,
}

/// The platform's poll(2) flag values, read from Python's `select` module.
#[derive(Clone, Copy)]
pub(crate) struct PollFlags {
    pub(crate) pollin: i64,
    pub(crate) pollpri: i64,
    pub(crate) pollout: i64,
    pub(crate) pollerr: i64,
    pub(crate) pollhup: i64,
    pub(crate) pollnval: i64,
}

static CTX: GILOnceCell<Ctx> = GILOnceCell::new();

/// Called once by `sockloop.asyncore` at import.
#[pyfunction]
#[pyo3(name = "_init")]
pub(crate) fn init(
    py: Python<'_>,
    reraised: Bound<'_, PyTuple>,
    with_exception: Bound<'_, PyAny>,
    disconnected: Bound<'_, PyFrozenSet>,
) -> PyResult<()> {
    crate::guard(|| {
        let select = py.import("select")?;
        let get = |name: &str| -> PyResult<i64> { select.getattr(name)?.extract() };
        let flags = PollFlags {
            pollin: get("POLLIN")?,
            pollpri: get("POLLPRI")?,
            pollout: get("POLLOUT")?,
            pollerr: get("POLLERR")?,
            pollhup: get("POLLHUP")?,
            pollnval: get("POLLNVAL")?,
        };
        let ctx = Ctx {
            reraised: reraised.unbind(),
            with_exception: with_exception.unbind(),
            disconnected: disconnected.unbind(),
            flags,
        };
        // A second import (importlib.reload) keeps the first context: the same classes.
        let _ = CTX.set(py, ctx);
        Ok(())
    })
}

pub(crate) fn ctx(py: Python<'_>) -> PyResult<&Ctx> {
    CTX.get(py).ok_or_else(|| {
        PyRuntimeError::new_err("sockloop._sockloop is used before sockloop.asyncore was imported")
    })
}

impl Ctx {
    fn is_reraised(&self, py: Python<'_>, err: &PyErr) -> PyResult<bool> {
        err.value(py).is_instance(self.reraised.bind(py))
    }

    /// `obj.<method>()` inside an `except` clause for `err`.
    fn call_with(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        err: PyErr,
        method: &str,
    ) -> PyResult<()> {
        self.with_exception
            .bind(py)
            .call1((obj, err.into_value(py), method))?;
        Ok(())
    }

    /// Calls `obj.<method>()` for an exception raised where CPython's bare `except:`
    /// would catch it: `handle_error` (or, with `fixes`, `handle_close` for a disconnect
    /// error); `ExitNow`, `KeyboardInterrupt` and `SystemExit` propagate.
    pub(crate) fn handle_exception(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        err: PyErr,
        fixes: bool,
    ) -> PyResult<()> {
        if self.is_reraised(py, &err)? {
            return Err(err);
        }
        let method = if fixes && self.is_disconnect(py, &err)? {
            "handle_close"
        } else {
            "handle_error"
        };
        self.call_with(py, obj, err, method)
    }

    fn is_disconnect(&self, py: Python<'_>, err: &PyErr) -> PyResult<bool> {
        if !err.is_instance_of::<PyOSError>(py) {
            return Ok(false);
        }
        let errno = err.value(py).getattr(intern!(py, "errno"))?;
        self.disconnected.bind(py).contains(errno)
    }

    /// `read`, `write` and `_exception`: one hook, CPython's `except` clauses.
    fn one_event(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        hook: &Bound<'_, pyo3::types::PyString>,
        fixes: bool,
    ) -> PyResult<()> {
        match obj.call_method0(hook) {
            Ok(_) => Ok(()),
            Err(e) => self.handle_exception(py, obj, e, fixes),
        }
    }

    /// CPython's `readwrite(obj, flags)`. `alive()` is asked after each hook; once it
    /// says no (the loop's check that `obj` is still the map's entry for its descriptor),
    /// the rest of the event is not delivered: no `handle_close` after a close. With
    /// `fixes`, a hang-up that comes with input is not closed yet: reading goes on (the
    /// event repeats) until the handler reads end of file, so no data is lost.
    pub(crate) fn readwrite(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        flags: i64,
        alive: &dyn Fn() -> PyResult<bool>,
        fixes: bool,
    ) -> PyResult<()> {
        let f = self.flags;
        let close = if fixes && flags & f.pollin != 0 {
            f.pollerr | f.pollnval
        } else {
            f.pollhup | f.pollerr | f.pollnval
        };
        let steps = || -> PyResult<()> {
            if flags & f.pollin != 0 {
                obj.call_method0(intern!(py, "handle_read_event"))?;
                if !alive()? {
                    return Ok(());
                }
            }
            if flags & f.pollout != 0 {
                obj.call_method0(intern!(py, "handle_write_event"))?;
                if !alive()? {
                    return Ok(());
                }
            }
            if flags & f.pollpri != 0 {
                obj.call_method0(intern!(py, "handle_expt_event"))?;
                if !alive()? {
                    return Ok(());
                }
            }
            if flags & close != 0 {
                obj.call_method0(intern!(py, "handle_close"))?;
            }
            Ok(())
        };
        match steps() {
            Ok(()) => Ok(()),
            // readwrite's own `except OSError` clause: disconnects close, on every call.
            Err(e) if e.is_instance_of::<PyOSError>(py) => {
                let method = if self.is_disconnect(py, &e)? {
                    "handle_close"
                } else {
                    "handle_error"
                };
                self.call_with(py, obj, e, method)
            }
            Err(e) => self.handle_exception(py, obj, e, false),
        }
    }

    pub(crate) fn read(&self, py: Python<'_>, obj: &Bound<'_, PyAny>, fixes: bool) -> PyResult<()> {
        self.one_event(py, obj, intern!(py, "handle_read_event"), fixes)
    }

    pub(crate) fn write(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        fixes: bool,
    ) -> PyResult<()> {
        self.one_event(py, obj, intern!(py, "handle_write_event"), fixes)
    }

    pub(crate) fn exception(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        fixes: bool,
    ) -> PyResult<()> {
        self.one_event(py, obj, intern!(py, "handle_expt_event"), fixes)
    }
}

/// `asyncore.read(obj)`.
#[pyfunction]
pub(crate) fn read(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
    crate::guard(|| ctx(py)?.read(py, obj, false))
}

/// `asyncore.write(obj)`.
#[pyfunction]
pub(crate) fn write(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
    crate::guard(|| ctx(py)?.write(py, obj, false))
}

/// `asyncore._exception(obj)`.
#[pyfunction]
#[pyo3(name = "_exception")]
pub(crate) fn exception(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
    crate::guard(|| ctx(py)?.exception(py, obj, false))
}

/// `asyncore.readwrite(obj, flags)`: every flag is delivered, as in CPython.
#[pyfunction]
pub(crate) fn readwrite(py: Python<'_>, obj: &Bound<'_, PyAny>, flags: i64) -> PyResult<()> {
    crate::guard(|| ctx(py)?.readwrite(py, obj, flags, &|| Ok(true), false))
}

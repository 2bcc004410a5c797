//! Python file descriptors as the core's borrowed descriptors: the package's only `unsafe`.

#![allow(unsafe_code)]

use std::os::fd::{BorrowedFd, RawFd};

use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::prelude::*;

/// The descriptor a map key names, as `select.select` reads it: an int, or an object
/// with a `fileno()` method.
///
/// # Errors
///
/// `ValueError` for a negative number, `OverflowError` past `int`, `TypeError` (from
/// Python) for anything else.
pub(crate) fn fd_of(key: &Bound<'_, PyAny>) -> PyResult<RawFd> {
    let n: i64 = match key.extract() {
        Ok(n) => n,
        Err(_) => key
            .call_method0(pyo3::intern!(key.py(), "fileno"))?
            .extract()?,
    };
    if n < 0 {
        return Err(PyValueError::new_err(format!(
            "file descriptor cannot be a negative integer ({n})"
        )));
    }
    RawFd::try_from(n)
        .map_err(|_| PyOverflowError::new_err(format!("file descriptor {n} is out of range")))
}

/// Runs `f` with `fd` (non-negative, from [`fd_of`]) borrowed for the call.
pub(crate) fn with_fd<R>(fd: RawFd, f: impl FnOnce(BorrowedFd<'_>) -> R) -> R {
    // SAFETY: `fd` is non-negative (checked by `fd_of`), so it is a valid `BorrowedFd`
    // value. The borrow lasts for this call only, and the callee (the core's `Poller`)
    // only hands the number to the kernel (select, poll, epoll_ctl), which checks it: a
    // descriptor that the Python program closed without leaving the map makes the call
    // fail with EBADF or be reported as POLLNVAL, exactly as Python's own select module
    // does with the same number; no memory is reached through it.
    f(unsafe { BorrowedFd::borrow_raw(fd) })
}

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

/// A [`sockloop::Poller`] that may cross into `Python::allow_threads`.
///
/// `allow_threads` wants its closure `Send` (PyO3's stand-in for "holds no Python
/// object"). The core's epoll backend keeps a buffer of `rustix::event::epoll::Event`,
/// whose `epoll_data` union has a pointer variant, so `Poller` is not `Send` by the auto
/// trait, though nothing in it is tied to a thread.
pub(crate) struct SendPoller(pub(crate) sockloop::Poller);

// SAFETY: the only non-`Send` part of a `Poller` is the epoll event buffer's `epoll_data`
// union, which the core fills and reads as a plain `u64` key and never as a pointer; the
// rest is descriptors, integers and vectors of them. Moving it to another thread (which
// `allow_threads` does not even do: it runs the closure on this thread) is sound.
unsafe impl Send for SendPoller {}

impl SendPoller {
    /// [`sockloop::Poller::wait`], callable from a closure that must be `Send`.
    pub(crate) fn wait(
        &mut self,
        events: &mut Vec<sockloop::PollEvent>,
        timeout: Option<std::time::Duration>,
    ) -> std::io::Result<()> {
        self.0.wait(events, timeout)
    }
}

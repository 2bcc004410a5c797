//! The loop: `poll`, `poll2` and `loop` on the core's backends, with the GIL released
//! while waiting.
//!
//! * select and poll ([`Exact`]) do what CPython 3.11's `poll()` and `poll2()` do, every
//!   iteration: ask every channel `readable()` / `writable()` (and `accepting`), wait,
//!   route. The one change: an event goes only to the object that was asked (no stale
//!   event to another object that took over the descriptor in the same iteration), and
//!   `readwrite` stops routing an event once its object has left the map.
//! * epoll ([`Cached`](crate::epoll::Cached)) keeps registrations between iterations:
//!   see [`crate::epoll`].

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use sockloop::{Backend, Interest, PollEvent, Poller};

use crate::epoll::{Cached, EpollState};
use crate::fd::{fd_of, with_fd};
use crate::map::Map;
use crate::route::{ctx, Ctx};

/// On the main thread the wait is cut into slices of this length so that Python signal
/// handlers (and `KeyboardInterrupt`) run promptly: the core retries `EINTR` itself.
const SIGNAL_SLICE: Duration = Duration::from_millis(50);

/// `loop()`'s work, `count` iterations (`None`: while the map is not empty).
#[pyfunction]
#[pyo3(signature = (timeout, map, count, backend, fixes=false, state=None))]
pub(crate) fn run(
    py: Python<'_>,
    timeout: Option<f64>,
    map: &Bound<'_, PyAny>,
    count: Option<i64>,
    backend: &str,
    fixes: bool,
    state: Option<Bound<'_, EpollState>>,
) -> PyResult<()> {
    crate::guard(|| {
        let ctx = ctx(py)?;
        let backend: Backend = backend
            .parse()
            .map_err(|e: std::io::Error| PyValueError::new_err(e.to_string()))?;
        let timeout = timeout_of(timeout, backend)?;
        let map = Map::new(map);
        let waiter = Waiter::new(py)?;
        let mut left = count;
        let mut exact = Exact::default();
        // epoll: the map's kept state, unless a loop on the same map already holds it
        // (a loop inside a handler, or in another thread): then a fresh one.
        let touched = state.as_ref().map(|s| s.get().touched.bind(py).clone());
        let mut kept = state.as_ref().and_then(|s| s.get().cached.try_lock().ok());
        let mut fresh = None;
        let mut cached: Option<&mut Cached> = match (backend, kept.as_deref_mut()) {
            (Backend::Epoll, Some(c)) => Some(c),
            (Backend::Epoll, None) => Some(fresh.insert(Cached::new()?)),
            _ => None,
        };
        let pass = Pass {
            ctx,
            waiter: &waiter,
            timeout,
            fixes,
        };
        while map.is_truthy()? && left.is_none_or(|n| n > 0) {
            match &mut cached {
                Some(c) => c.once(py, &pass, &map, touched.as_ref())?,
                None => exact.once(py, &pass, &map, backend)?,
            }
            left = left.map(|n| n - 1);
        }
        Ok(())
    })
}

/// What every iteration of one `loop()` call shares.
#[derive(Clone, Copy)]
pub(crate) struct Pass<'a> {
    pub(crate) ctx: &'a Ctx,
    pub(crate) waiter: &'a Waiter,
    pub(crate) timeout: Option<Duration>,
    /// `loop(..., fixes=True)`: the opt-in fixes.
    pub(crate) fixes: bool,
}

/// The Python timeout as the core's: `None` waits forever. Negative: select refuses it
/// (`ValueError`, as `select.select` does), poll and epoll wait forever (as `poll()` does).
fn timeout_of(timeout: Option<f64>, backend: Backend) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() => Err(PyValueError::new_err("Invalid value NaN (not a number)")),
        Some(t) if t < 0.0 => match backend {
            Backend::Select => Err(PyValueError::new_err("timeout must be non-negative")),
            _ => Ok(None),
        },
        Some(t) => Ok(Duration::try_from_secs_f64(t).ok()),
    }
}

/// Waits with the GIL released; on the main thread in slices, running signal handlers
/// between them (an exception they raise ends the loop, as in CPython).
pub(crate) struct Waiter {
    is_main_thread: bool,
}

impl Waiter {
    fn new(py: Python<'_>) -> PyResult<Waiter> {
        let threading = py.import(intern!(py, "threading"))?;
        let current = threading.call_method0(intern!(py, "current_thread"))?;
        let main = threading.call_method0(intern!(py, "main_thread"))?;
        Ok(Waiter {
            is_main_thread: current.is(&main),
        })
    }

    pub(crate) fn wait(
        &self,
        py: Python<'_>,
        poller: &mut Poller,
        events: &mut Vec<PollEvent>,
        timeout: Option<Duration>,
    ) -> PyResult<()> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut remaining = deadline.map(|_| timeout.unwrap_or_default());
        loop {
            let step = if self.is_main_thread {
                Some(remaining.map_or(SIGNAL_SLICE, |r| r.min(SIGNAL_SLICE)))
            } else {
                remaining
            };
            py.allow_threads(|| poller.wait(events, step))?;
            if !events.is_empty() {
                return Ok(());
            }
            if self.is_main_thread {
                py.check_signals()?;
            }
            if let Some(d) = deadline {
                let r = d.saturating_duration_since(Instant::now());
                if r.is_zero() {
                    return Ok(());
                }
                remaining = Some(r);
            }
        }
    }
}

/// The flags CPython's `readwrite` receives for this event.
pub(crate) fn poll_flags(ctx: &Ctx, ev: &PollEvent) -> i64 {
    let f = ctx.flags;
    let mut flags = 0;
    for (on, bit) in [
        (ev.is_readable(), f.pollin),
        (ev.is_writable(), f.pollout),
        (ev.is_priority(), f.pollpri),
        (ev.is_hangup(), f.pollhup),
        (ev.is_error(), f.pollerr),
        (ev.is_invalid(), f.pollnval),
    ] {
        if on {
            flags |= bit;
        }
    }
    flags
}

/// A channel's interest, asked exactly as CPython asks: `readable()`, then `writable()`,
/// then `accepting` only if writable.
fn interest_of(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Interest> {
    let r = obj.call_method0(intern!(py, "readable"))?.is_truthy()?;
    let w = obj.call_method0(intern!(py, "writable"))?.is_truthy()?
        && !obj.getattr(intern!(py, "accepting"))?.is_truthy()?;
    Ok(Interest::from_flags(r, w))
}

/// [`interest_of`]; with `fixes`, an exception from a predicate goes to the channel's
/// `handle_error` (which closes it) instead of ending the loop, and the channel is not
/// watched this iteration.
pub(crate) fn ask(
    py: Python<'_>,
    ctx: &Ctx,
    obj: &Bound<'_, PyAny>,
    fixes: bool,
) -> PyResult<Interest> {
    match interest_of(py, obj) {
        Err(e) if fixes => {
            ctx.handle_exception(py, obj, e, false)?;
            Ok(Interest::NONE)
        }
        other => other,
    }
}

type Item<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>);

/// select and poll: CPython's `poll()` / `poll2()`, every channel registered afresh each
/// iteration under its position among the channels asked. The poller itself is kept for
/// the whole `loop()` call (registering on select and poll is bookkeeping, no system
/// call): no per-iteration allocation.
#[derive(Default)]
struct Exact<'py> {
    items: Vec<Item<'py>>,
    asked: Vec<Item<'py>>,
    events: Vec<PollEvent>,
    poller: Option<Poller>,
    /// `fds[k]`: the descriptor registered under key `k` (keys are `0..fds.len()`).
    fds: Vec<RawFd>,
}

impl<'py> Exact<'py> {
    fn once(
        &mut self,
        py: Python<'py>,
        pass: &Pass<'_>,
        map: &Map<'py>,
        backend: Backend,
    ) -> PyResult<()> {
        let Pass {
            ctx,
            waiter,
            timeout,
            fixes,
        } = *pass;
        if !map.is_truthy()? {
            return Ok(());
        }
        map.items(&mut self.items)?;
        let poller = match &mut self.poller {
            Some(p) => p,
            None => self.poller.insert(Poller::new(backend)?),
        };
        self.asked.clear();
        for (key, obj) in self.items.drain(..) {
            let interest = ask(py, ctx, &obj, fixes)?;
            if !interest.is_empty() {
                let fd = fd_of(&key)?;
                let k = self.asked.len();
                match self.fds.get(k).copied() {
                    Some(old) if old == fd => with_fd(fd, |b| poller.modify(b, k, interest))?,
                    Some(old) => {
                        // Bookkeeping only on select and poll: `old` may be closed by now.
                        with_fd(old, |b| poller.deregister(b, k))?;
                        with_fd(fd, |b| poller.register(b, k, interest))?;
                        self.fds[k] = fd;
                    }
                    None => {
                        with_fd(fd, |b| poller.register(b, k, interest))?;
                        self.fds.push(fd);
                    }
                }
                self.asked.push((key, obj));
            }
        }
        while self.fds.len() > self.asked.len() {
            let k = self.fds.len() - 1;
            let old = self.fds[k];
            with_fd(old, |b| poller.deregister(b, k))?;
            self.fds.pop();
        }
        if self.asked.is_empty() && timeout.is_none() && backend == Backend::Select {
            // CPython calls time.sleep(None) here.
            return Err(PyTypeError::new_err(
                "'NoneType' object cannot be interpreted as an integer",
            ));
        }
        waiter.wait(py, poller, &mut self.events, timeout)?;
        if backend == Backend::Select {
            if self.events.iter().any(|e| e.is_invalid()) {
                // select(2) failed with EBADF: CPython's select.select raises.
                let ebadf: i32 = py.import("errno")?.getattr("EBADF")?.extract()?;
                return Err(std::io::Error::from_raw_os_error(ebadf).into());
            }
            // Each phase in the map's order, as select.select returns its lists.
            self.events.sort_by_key(|e| {
                let phase = if e.is_readable() {
                    0
                } else if e.is_writable() {
                    1
                } else {
                    2
                };
                (phase, e.key())
            });
        } else {
            // In registration order, as CPython's poll object reports them (a key whose
            // descriptor changed was re-registered at the end).
            self.events.sort_by_key(|e| e.key());
        }
        for ev in &self.events {
            let (key, obj) = &self.asked[ev.key()];
            if !map.holds(key, obj)? {
                continue;
            }
            if backend == Backend::Select {
                if ev.is_readable() {
                    ctx.read(py, obj, fixes)?;
                } else if ev.is_writable() {
                    ctx.write(py, obj, fixes)?;
                } else {
                    ctx.exception(py, obj, fixes)?;
                }
            } else {
                ctx.readwrite(py, obj, poll_flags(ctx, ev), &|| map.holds(key, obj), fixes)?;
            }
        }
        Ok(())
    }
}

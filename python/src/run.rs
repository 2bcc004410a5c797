//! The loop: `poll`, `poll2` and `loop` on the core's backends, with the GIL released
//! while waiting.
//!
//! * select and poll ([`Exact`]) do what CPython 3.11's `poll()` and `poll2()` do, every
//!   iteration: ask every channel `readable()` / `writable()` (and `accepting`), wait,
//!   route. The one change: an event goes only to the object that was asked (no stale
//!   event to another object that took over the descriptor in the same iteration), and
//!   `readwrite` stops routing an event once its object has left the map.
//! * epoll ([`Cached`]) keeps registrations between iterations and asks the predicates
//!   again only for channels whose handlers ran, that were added, removed or touched
//!   (`_touch` from Python), plus everyone when the map's size changes unexpectedly and
//!   at least once a second: idle channels cost nothing per iteration.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyList;
use sockloop::{Backend, Interest, PollEvent, Poller};

use crate::fd::{fd_of, with_fd, SendPoller};
use crate::map::Map;
use crate::route::{ctx, Ctx};

/// On the main thread the wait is cut into slices of this length so that Python signal
/// handlers (and `KeyboardInterrupt`) run promptly: the core retries `EINTR` itself.
const SIGNAL_SLICE: Duration = Duration::from_millis(50);

/// Epoll mode asks every channel's predicates at least this often.
const FULL_SCAN: Duration = Duration::from_secs(1);

/// `loop()`'s work, `count` iterations (`None`: while the map is not empty).
#[pyfunction]
#[pyo3(signature = (timeout, map, count, backend, touched=None, fixes=false))]
pub(crate) fn run(
    py: Python<'_>,
    timeout: Option<f64>,
    map: &Bound<'_, PyAny>,
    count: Option<i64>,
    backend: &str,
    touched: Option<Bound<'_, PyList>>,
    fixes: bool,
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
        let mut cached = match backend {
            Backend::Epoll => Some(Cached::new()?),
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
struct Pass<'a> {
    ctx: &'a Ctx,
    waiter: &'a Waiter,
    timeout: Option<Duration>,
    /// `loop(..., fixes=True)`: the opt-in fixes.
    fixes: bool,
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
struct Waiter {
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

    fn wait(
        &self,
        py: Python<'_>,
        poller: &mut SendPoller,
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
fn poll_flags(ctx: &Ctx, ev: &PollEvent) -> i64 {
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
fn ask(py: Python<'_>, ctx: &Ctx, obj: &Bound<'_, PyAny>, fixes: bool) -> PyResult<Interest> {
    match interest_of(py, obj) {
        Err(e) if fixes => {
            ctx.handle_exception(py, obj, e, false)?;
            Ok(Interest::NONE)
        }
        other => other,
    }
}

type Item<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>);

/// select and poll: CPython's `poll()` / `poll2()`, one fresh registration per iteration.
#[derive(Default)]
struct Exact<'py> {
    items: Vec<Item<'py>>,
    asked: Vec<Item<'py>>,
    events: Vec<PollEvent>,
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
        let mut poller = SendPoller(Poller::new(backend)?);
        self.asked.clear();
        for (key, obj) in self.items.drain(..) {
            let interest = ask(py, ctx, &obj, fixes)?;
            if !interest.is_empty() {
                let fd = fd_of(&key)?;
                let k = self.asked.len();
                with_fd(fd, |b| poller.0.register(b, k, interest))?;
                self.asked.push((key, obj));
            }
        }
        if self.asked.is_empty() && timeout.is_none() && backend == Backend::Select {
            // CPython calls time.sleep(None) here.
            return Err(PyTypeError::new_err(
                "'NoneType' object cannot be interpreted as an integer",
            ));
        }
        waiter.wait(py, &mut poller, &mut self.events, timeout)?;
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

struct Slot<'py> {
    key: Bound<'py, PyAny>,
    obj: Bound<'py, PyAny>,
    fd: RawFd,
    /// The last full scan that saw it in the map.
    scan: u64,
    /// The kernel refused it (closed descriptor): it gets `POLLNVAL`, as poll would say.
    broken: bool,
}

/// epoll: registrations kept between iterations.
struct Cached<'py> {
    poller: SendPoller,
    slots: Vec<Option<Slot<'py>>>,
    free: Vec<usize>,
    by_fd: HashMap<RawFd, usize>,
    /// Map keys whose predicates are asked again before the next wait.
    dirty: Vec<Bound<'py, PyAny>>,
    events: Vec<PollEvent>,
    items: Vec<Item<'py>>,
    scan: u64,
    last_scan: Option<Instant>,
    fixes: bool,
}

impl<'py> Cached<'py> {
    fn new() -> PyResult<Cached<'py>> {
        Ok(Cached {
            poller: SendPoller(Poller::new(Backend::Epoll)?),
            slots: Vec::new(),
            free: Vec::new(),
            by_fd: HashMap::new(),
            dirty: Vec::new(),
            events: Vec::new(),
            items: Vec::new(),
            scan: 0,
            last_scan: None,
            fixes: false,
        })
    }

    fn once(
        &mut self,
        py: Python<'py>,
        pass: &Pass<'_>,
        map: &Map<'py>,
        touched: Option<&Bound<'py, PyList>>,
    ) -> PyResult<()> {
        let ctx = pass.ctx;
        self.fixes = pass.fixes;
        let mut keys = std::mem::take(&mut self.dirty);
        if let Some(t) = touched.filter(|t| !t.is_empty()) {
            keys.extend(t.iter());
            t.del_slice(0, t.len())?;
        }
        for key in keys.drain(..) {
            if !key.is_none() {
                self.sync(py, ctx, map, &key)?;
            }
        }
        self.dirty = keys;
        let now = Instant::now();
        if self
            .last_scan
            .is_none_or(|t| now.duration_since(t) >= FULL_SCAN)
            || map.len()? != self.by_fd.len()
        {
            self.full_scan(py, ctx, map)?;
            self.last_scan = Some(now);
        }
        let any_broken = self.slots.iter().flatten().any(|s| s.broken);
        let timeout = if any_broken {
            Some(Duration::ZERO)
        } else {
            pass.timeout
        };
        let mut events = std::mem::take(&mut self.events);
        let result = self.route(py, ctx, map, pass.waiter, timeout, &mut events, any_broken);
        self.events = events;
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn route(
        &mut self,
        py: Python<'py>,
        ctx: &Ctx,
        map: &Map<'py>,
        waiter: &Waiter,
        timeout: Option<Duration>,
        events: &mut Vec<PollEvent>,
        any_broken: bool,
    ) -> PyResult<()> {
        waiter.wait(py, &mut self.poller, events, timeout)?;
        let mut todo: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>, i64)> = events
            .iter()
            .filter_map(|ev| {
                let s = self.slots.get(ev.key())?.as_ref()?;
                Some((s.key.clone(), s.obj.clone(), poll_flags(ctx, ev)))
            })
            .collect();
        if any_broken {
            let nval = ctx.flags.pollnval;
            todo.extend(
                self.slots
                    .iter()
                    .flatten()
                    .filter(|s| s.broken)
                    .map(|s| (s.key.clone(), s.obj.clone(), nval)),
            );
        }
        for (key, obj, flags) in todo {
            self.dirty.push(key.clone());
            if map.holds(&key, &obj)? {
                ctx.readwrite(py, &obj, flags, &|| map.holds(&key, &obj), self.fixes)?;
            }
        }
        Ok(())
    }

    /// Brings the registration of one map key up to date with the map and the predicates.
    fn sync(
        &mut self,
        py: Python<'py>,
        ctx: &Ctx,
        map: &Map<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<()> {
        let fd = fd_of(key)?;
        let cur = map.get(key)?;
        let slot = self.by_fd.get(&fd).copied();
        match (cur, slot) {
            (None, None) => {}
            (None, Some(i)) => self.remove(i),
            (Some(obj), Some(i)) => {
                let same = self.slots[i].as_ref().is_some_and(|s| s.obj.is(&obj));
                if same {
                    self.refresh(py, ctx, i)?;
                } else {
                    self.remove(i);
                    self.add(py, ctx, key, obj, fd)?;
                }
            }
            (Some(obj), None) => self.add(py, ctx, key, obj, fd)?,
        }
        Ok(())
    }

    fn full_scan(&mut self, py: Python<'py>, ctx: &Ctx, map: &Map<'py>) -> PyResult<()> {
        self.scan += 1;
        let mut items = std::mem::take(&mut self.items);
        map.items(&mut items)?;
        let result = items.iter().try_for_each(|(key, _)| -> PyResult<()> {
            self.sync(py, ctx, map, key)?;
            if let Some(&i) = self.by_fd.get(&fd_of(key)?) {
                if let Some(s) = self.slots[i].as_mut() {
                    s.scan = self.scan;
                }
            }
            Ok(())
        });
        items.clear();
        self.items = items;
        result?;
        let gone: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].as_ref().is_some_and(|s| s.scan != self.scan))
            .collect();
        for i in gone {
            self.remove(i);
        }
        Ok(())
    }

    fn refresh(&mut self, py: Python<'py>, ctx: &Ctx, i: usize) -> PyResult<()> {
        let Some(slot) = self.slots[i].as_ref() else {
            return Ok(());
        };
        let interest = ask(py, ctx, &slot.obj.clone(), self.fixes)?;
        let Some(slot) = self.slots[i].as_mut() else {
            return Ok(());
        };
        let fd = slot.fd;
        let result = match self.poller.0.interest(i) {
            Some(_) => with_fd(fd, |b| self.poller.0.modify(b, i, interest)),
            None => with_fd(fd, |b| self.poller.0.register(b, i, interest)),
        };
        slot.broken = result.is_err();
        Ok(())
    }

    fn add(
        &mut self,
        py: Python<'py>,
        ctx: &Ctx,
        key: &Bound<'py, PyAny>,
        obj: Bound<'py, PyAny>,
        fd: RawFd,
    ) -> PyResult<()> {
        let interest = ask(py, ctx, &obj, self.fixes)?;
        // The predicates may have changed the map (a close, a new channel on this fd).
        if let Some(i) = self.by_fd.get(&fd).copied() {
            self.remove(i);
        }
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let broken = with_fd(fd, |b| self.poller.0.register(b, i, interest)).is_err();
        self.slots[i] = Some(Slot {
            key: key.clone(),
            obj,
            fd,
            scan: self.scan,
            broken,
        });
        self.by_fd.insert(fd, i);
        Ok(())
    }

    fn remove(&mut self, i: usize) {
        let Some(slot) = self.slots[i].take() else {
            return;
        };
        if self.by_fd.get(&slot.fd) == Some(&i) {
            self.by_fd.remove(&slot.fd);
        }
        if self.poller.0.interest(i).is_some() {
            // The descriptor is usually closed by now (the kernel dropped it already);
            // the poller forgets the key either way.
            let _ = with_fd(slot.fd, |b| self.poller.0.deregister(b, i));
        }
        self.free.push(i);
    }
}

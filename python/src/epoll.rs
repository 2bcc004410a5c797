//! The epoll mode: registrations and predicate answers kept between iterations and
//! between `loop()` calls on the same map (see `sockloop.asyncore`'s docs).
//!
//! `readable()` / `writable()` are asked again only for channels whose handlers ran, that
//! were added, removed or touched (`_touch` from Python), plus everyone when the map's
//! size changes behind the loop's back and at least once a second: idle channels cost
//! nothing per iteration.

use std::collections::{HashMap, HashSet};
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyList;
use sockloop::{Backend, PollEvent, Poller};

use crate::fd::{fd_of, with_fd};
use crate::map::Map;
use crate::route::Ctx;
use crate::run::{ask, poll_flags, Pass, Waiter};

/// Epoll mode asks every channel's predicates at least this often.
const FULL_SCAN: Duration = Duration::from_secs(1);

/// A map's epoll state, kept by `sockloop.asyncore` between `loop()` calls.
#[pyclass(frozen, module = "sockloop._sockloop")]
pub(crate) struct EpollState {
    /// Locked by the `loop()` running on the map; a nested or concurrent `loop()` on the
    /// same map finds it locked and works with a fresh state instead.
    pub(crate) cached: Mutex<Cached>,
    /// Map keys touched from Python (`_touch`) since the last iteration.
    pub(crate) touched: Py<PyList>,
}

#[pymethods]
impl EpollState {
    #[new]
    fn new(touched: Bound<'_, PyList>) -> PyResult<EpollState> {
        crate::guard(|| {
            Ok(EpollState {
                cached: Mutex::new(Cached::new()?),
                touched: touched.unbind(),
            })
        })
    }
}

struct Slot {
    key: Py<PyAny>,
    obj: Py<PyAny>,
    fd: RawFd,
    /// The last full scan that saw it in the map.
    scan: u64,
    /// The kernel refused it (closed descriptor): it gets `POLLNVAL`, as poll would say.
    broken: bool,
}

/// epoll: registrations kept between iterations (and between `loop()` calls).
pub(crate) struct Cached {
    poller: Poller,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    by_fd: HashMap<RawFd, usize>,
    /// Map keys whose predicates are asked again before the next wait.
    dirty: Vec<Py<PyAny>>,
    events: Vec<PollEvent>,
    scan: u64,
    last_scan: Option<Instant>,
    fixes: bool,
    /// Integer map keys already brought up to date in this iteration.
    synced: HashSet<RawFd>,
    /// Slots the kernel refused (a few at most): kept apart so that no per-iteration
    /// work grows with the number of channels.
    broken: Vec<usize>,
}

impl Cached {
    pub(crate) fn new() -> PyResult<Cached> {
        Ok(Cached {
            poller: Poller::new(Backend::Epoll)?,
            slots: Vec::new(),
            free: Vec::new(),
            by_fd: HashMap::new(),
            dirty: Vec::new(),
            events: Vec::new(),
            scan: 0,
            last_scan: None,
            fixes: false,
            broken: Vec::new(),
            synced: HashSet::new(),
        })
    }

    pub(crate) fn once<'py>(
        &mut self,
        py: Python<'py>,
        pass: &Pass<'_>,
        map: &Map<'py>,
        touched: Option<&Bound<'py, PyList>>,
    ) -> PyResult<()> {
        let ctx = pass.ctx;
        self.fixes = pass.fixes;
        let mut keys: Vec<Bound<'py, PyAny>> =
            self.dirty.drain(..).map(|k| k.into_bound(py)).collect();
        if let Some(t) = touched.filter(|t| !t.is_empty()) {
            keys.extend(t.iter());
            t.del_slice(0, t.len())?;
        }
        // A channel whose handler ran is usually touched by it too (`send()`, `push()`):
        // it is asked once per iteration, as select and poll ask it.
        self.synced.clear();
        let mut keys = keys.into_iter();
        while let Some(key) = keys.next() {
            if key.is_none() {
                continue;
            }
            if let Ok(fd) = key.extract::<RawFd>() {
                if !self.synced.insert(fd) {
                    continue;
                }
            }
            if let Err(e) = self.sync(py, ctx, map, &key) {
                // Keep what is left for the next iteration (or the next loop() call).
                self.dirty.push(key.unbind());
                self.dirty.extend(keys.map(Bound::unbind));
                return Err(e);
            }
        }
        let now = Instant::now();
        if self
            .last_scan
            .is_none_or(|t| now.duration_since(t) >= FULL_SCAN)
            || map.len()? != self.by_fd.len()
        {
            self.full_scan(py, ctx, map)?;
            self.last_scan = Some(now);
        }
        let slots = &self.slots;
        self.broken.retain(|&i| {
            slots
                .get(i)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.broken)
        });
        self.broken.sort_unstable();
        self.broken.dedup();
        let any_broken = !self.broken.is_empty();
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
    fn route<'py>(
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
                Some((
                    s.key.bind(py).clone(),
                    s.obj.bind(py).clone(),
                    poll_flags(ctx, ev),
                ))
            })
            .collect();
        if any_broken {
            let nval = ctx.flags.pollnval;
            todo.extend(
                self.broken
                    .iter()
                    .filter_map(|&i| self.slots[i].as_ref())
                    .map(|s| (s.key.bind(py).clone(), s.obj.bind(py).clone(), nval)),
            );
        }
        for (key, obj, flags) in todo {
            self.dirty.push(key.clone().unbind());
            if map.holds(&key, &obj)? {
                ctx.readwrite(py, &obj, flags, &|| map.holds(&key, &obj), self.fixes)?;
            }
        }
        Ok(())
    }

    /// Brings the registration of one map key up to date with the map and the predicates.
    fn sync<'py>(
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

    fn full_scan<'py>(&mut self, py: Python<'py>, ctx: &Ctx, map: &Map<'py>) -> PyResult<()> {
        self.scan += 1;
        let mut items = Vec::new();
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
        result?;
        let gone: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].as_ref().is_some_and(|s| s.scan != self.scan))
            .collect();
        for i in gone {
            self.remove(i);
        }
        Ok(())
    }

    fn refresh(&mut self, py: Python<'_>, ctx: &Ctx, i: usize) -> PyResult<()> {
        let Some(slot) = self.slots[i].as_ref() else {
            return Ok(());
        };
        let interest = ask(py, ctx, &slot.obj.bind(py).clone(), self.fixes)?;
        let Some(slot) = self.slots[i].as_mut() else {
            return Ok(());
        };
        let fd = slot.fd;
        let result = match self.poller.interest(i) {
            Some(_) => with_fd(fd, |b| self.poller.modify(b, i, interest)),
            None => with_fd(fd, |b| self.poller.register(b, i, interest)),
        };
        slot.broken = result.is_err();
        if slot.broken {
            self.broken.push(i);
        }
        Ok(())
    }

    fn add<'py>(
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
        let broken = with_fd(fd, |b| self.poller.register(b, i, interest)).is_err();
        if broken {
            self.broken.push(i);
        }
        self.slots[i] = Some(Slot {
            key: key.clone().unbind(),
            obj: obj.unbind(),
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
        if self.poller.interest(i).is_some() {
            // The descriptor is usually closed by now (the kernel dropped it already);
            // the poller forgets the key either way.
            let _ = with_fd(slot.fd, |b| self.poller.deregister(b, i));
        }
        self.free.push(i);
    }
}

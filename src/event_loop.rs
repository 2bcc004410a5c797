//! `EventLoop`: the map, the iteration, and the public entry points.

use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use std::ops::{Deref, DerefMut};

use crate::channel::Pending;
use crate::deadline;
use crate::handle::{LoopHandle, Stop};
use crate::route::ask;

use crate::sys::{Backend, Event, Selector, FIRST_CHANNEL_KEY, SIGNAL_KEY, WAKER_KEY};

/// When the loop asks a channel's `readable()` / `writable()`.
///
/// # Examples
///
/// ```
/// use sockloop::{EventLoop, Mode};
///
/// let mut event_loop = EventLoop::new()?;
/// event_loop.set_mode(Mode::Exact);
/// assert_eq!(event_loop.mode(), Mode::Exact);
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Re-ask a channel only when something may have changed its answer: after any of its
    /// hooks ran, when it was added, when it was reached through
    /// [`LoopHandle::channel_mut`] / [`Context::channel_mut`](crate::Context::channel_mut),
    /// or when [`touch`](crate::LoopHandle::touch)ed. An iteration then costs O(ready + touched
    /// channels), not O(all channels): 10,000 idle connections cost nothing.
    #[default]
    Scalable,
    /// asyncore's behaviour: ask every channel on every iteration. For predicates that
    /// depend on outside state (time, globals) without a `touch`.
    Exact,
}

/// A readiness loop over a map of channels: asyncore's `loop()` and `socket_map`, owned.
///
/// # Iteration order
///
/// One iteration ([`poll_once`](EventLoop::poll_once)):
/// 1. Ask channels `readable()` and `writable()` (all of them in [`Mode::Exact`], the
///    touched ones in [`Mode::Scalable`]); a listening channel is never watched for
///    writing; a channel that wants neither is not registered at all (with epoll it is
///    deregistered: an fd registered with no interest still reports hang-ups forever).
///    The backend is called only for channels whose interest changed.
/// 2. Wait up to the timeout (`None` = until something is ready), cut short by the next
///    timer deadline.
/// 3. Dispatch. Select: all read events, then all write events, then all exceptional
///    ones, as `asyncore.poll`. Poll and epoll, per channel: read, write, priority, then
///    close on hang-up/error, as `asyncore.poll2` — except that a hang-up with input still
///    queued keeps delivering read events until end of file, then closes once.
/// 4. Run the timers that are due (channel timeouts included), then signal handlers, then
///    [`Remote`](crate::Remote) calls.
///
/// # Closing during dispatch
///
/// A hook may close any channel, its own included, and add new ones. An event for a
/// channel closed earlier in the same iteration is dropped; a slot freed during an
/// iteration is not reused before the next one, and [`Token`](crate::Token)s carry a generation, so a
/// new channel that got the same fd number never receives the old one's event. Channels
/// added during dispatch are polled from the next iteration. `handle_close` runs at most
/// once per channel, and no hook runs after a channel is closed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sockloop::{Channel, Dispatcher, EventLoop};
///
/// struct Idle;
/// impl Dispatcher for Idle {}
///
/// let mut event_loop = EventLoop::new()?;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// event_loop.add(Channel::from_socket(listener)?, Idle)?;
/// // Nothing connects: two iterations that each wait 1 ms.
/// event_loop.run(Some(Duration::from_millis(1)), Some(2))?;
/// assert_eq!(event_loop.len(), 1);
/// event_loop.close_all();
/// assert!(event_loop.is_empty());
/// # std::io::Result::Ok(())
/// ```
pub struct EventLoop<S = ()> {
    core: LoopHandle<S>,
    events: Vec<Event>,
    mode: Mode,
    woken: bool,
    signalled: bool,
    /// Debug builds: when the cached predicates were last checked against fresh answers.
    #[cfg(debug_assertions)]
    audited: Instant,
}

impl EventLoop {
    /// Creates a loop on the default backend, [`Backend::Epoll`], with no state.
    ///
    /// # Errors
    ///
    /// What epoll_create1(2) reports (e.g. out of descriptors).
    pub fn new() -> io::Result<EventLoop> {
        EventLoop::with_backend(Backend::default())
    }

    /// Creates a loop on `backend`.
    ///
    /// # Errors
    ///
    /// What the backend's setup reports.
    ///
    /// # Examples
    ///
    /// ```
    /// let event_loop = sockloop::EventLoop::with_backend(sockloop::Backend::Select)?;
    /// assert!(event_loop.is_empty());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn with_backend(backend: Backend) -> io::Result<EventLoop> {
        EventLoop::with_backend_and_state(backend, ())
    }
}

impl<S: 'static> EventLoop<S> {
    /// Creates a loop on the default backend that owns `state`: every hook, timer,
    /// signal handler and [`Remote`](crate::Remote) call reaches it as `&mut S` (see
    /// [`LoopHandle`]), with no `Rc<RefCell<_>>`.
    ///
    /// # Errors
    ///
    /// As [`new`](EventLoop::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sockloop::EventLoop;
    ///
    /// struct Stats { ticks: u32 }
    ///
    /// let mut event_loop = EventLoop::with_state(Stats { ticks: 0 })?;
    /// event_loop.call_later(Duration::ZERO, |lp, _| lp.state_mut().ticks += 1);
    /// event_loop.run(None, None)?;
    /// assert_eq!(event_loop.into_state().ticks, 1);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn with_state(state: S) -> io::Result<EventLoop<S>> {
        EventLoop::with_backend_and_state(Backend::default(), state)
    }

    /// Creates a loop on `backend` that owns `state`.
    ///
    /// # Errors
    ///
    /// What the backend's setup reports.
    pub fn with_backend_and_state(backend: Backend, state: S) -> io::Result<EventLoop<S>> {
        Ok(EventLoop {
            core: LoopHandle::new(Selector::new(backend)?, state),
            events: Vec::with_capacity(256),
            mode: Mode::default(),
            woken: false,
            signalled: false,
            #[cfg(debug_assertions)]
            audited: Instant::now(),
        })
    }

    /// Drops the loop (closing its channels, cancelling its timers) and returns its
    /// state.
    pub fn into_state(mut self) -> S {
        self.core.close_all();
        let EventLoop { core, .. } = self;
        core.into_state()
    }

    /// The loop's handle, as callbacks get it (the loop also dereferences to it).
    pub fn handle(&mut self) -> &mut LoopHandle<S> {
        &mut self.core
    }

    /// The backend this loop waits with.
    pub fn backend(&self) -> Backend {
        self.core.selector.backend()
    }

    /// When predicates are asked; see [`Mode`].
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Sets when predicates are asked; see [`Mode`].
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// Whether a panic in a hook or predicate closes only that channel (the default, like
    /// asyncore's bare `except:`) or propagates out of [`run`](EventLoop::run). A
    /// propagating panic still closes the channel it came from first, so the loop stays
    /// usable if the caller catches it. The same holds for timer, signal and [`Remote`](crate::Remote)
    /// callbacks: a panic is logged and the loop goes on (a periodic timer that panicked
    /// is not re-armed), or it propagates.
    pub fn set_catch_panics(&mut self, catch: bool) {
        self.core.catch_panics = catch;
    }

    /// Whether the default hooks' "unhandled ... event" warnings are logged. Off by
    /// default, like asyncore's `ignore_log_types = {'warning'}`. Logging goes through
    /// the `log` crate.
    pub fn set_log_warnings(&mut self, on: bool) {
        self.core.log_warnings = on;
    }

    /// True while there is work that [`run`](EventLoop::run) waits for: a channel or a
    /// pending timer.
    fn is_alive(&self) -> bool {
        !self.is_empty() || self.core.timers.len() > 0
    }

    /// Runs iterations, at most `count` of them (`None` = no bound), each waiting at most
    /// `max_wait` for readiness (asyncore's `loop(timeout, use_poll, map, count)`: the
    /// timeout bounds **each wait**, not the whole run; for a deadline on the run, see
    /// [`run_until`](EventLoop::run_until)). Returns when no channels (asyncore's
    /// condition) and no pending timers are left; signal handlers and
    /// [`Remote`](crate::Remote)s do not keep it going (see
    /// [`run_forever`](EventLoop::run_forever)). `count == Some(0)` runs none. Returns
    /// early after [`stop`](LoopHandle::stop) (at the end of that iteration) or
    /// [`stop_now`](LoopHandle::stop_now) (right after that hook or callback), from any
    /// callback, or [`Remote::stop`](crate::Remote::stop).
    ///
    /// # Errors
    ///
    /// Only a failure of the wait itself, never a channel's error: those go to its hooks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sockloop::EventLoop;
    ///
    /// let mut event_loop = EventLoop::new()?;
    /// event_loop.call_later(Duration::from_millis(5), |lp, _| lp.stop());
    /// // Each wait is cut to 1 s at most; the timer ends the run after ~5 ms.
    /// event_loop.run(Some(Duration::from_secs(1)), None)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn run(&mut self, max_wait: Option<Duration>, count: Option<usize>) -> io::Result<()> {
        let mut done = 0;
        while self.is_alive() && count.is_none_or(|c| done < c) {
            self.iterate(max_wait, true)?;
            done += 1;
            if self.core.stop.take().is_some() {
                break;
            }
        }
        Ok(())
    }

    /// Runs iterations as [`run`](EventLoop::run) does, but returns at `deadline` at the
    /// latest (never later than the wait that crosses it). Returns true if it stopped
    /// because the deadline passed, false if the loop ran out of work or was stopped.
    ///
    /// # Errors
    ///
    /// As [`run`](EventLoop::run).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use sockloop::{Channel, Dispatcher, EventLoop};
    ///
    /// struct Idle;
    /// impl Dispatcher for Idle {}
    ///
    /// let mut event_loop = EventLoop::new()?;
    /// let (a, _b) = Channel::pair()?;
    /// event_loop.add(a, Idle)?; // never ready: run would wait forever
    /// let start = Instant::now();
    /// let timed_out = event_loop.run_until(start + Duration::from_millis(20))?;
    /// assert!(timed_out && start.elapsed() >= Duration::from_millis(20));
    /// # std::io::Result::Ok(())
    /// ```
    pub fn run_until(&mut self, deadline: Instant) -> io::Result<bool> {
        while self.is_alive() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Ok(true);
            };
            self.iterate(Some(left), true)?;
            if self.core.stop.take().is_some() {
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// Runs iterations until a stop is asked ([`LoopHandle::stop`] or
    /// [`stop_now`](LoopHandle::stop_now) from any callback,
    /// [`Remote::stop`](crate::Remote::stop)), even with no channels or timers: asyncio's
    /// `run_forever`, for a loop that waits for signals or [`Remote`](crate::Remote) calls.
    ///
    /// # Errors
    ///
    /// As [`run`](EventLoop::run).
    pub fn run_forever(&mut self) -> io::Result<()> {
        loop {
            self.poll_once(None)?;
            if self.core.stop.take().is_some() {
                return Ok(());
            }
        }
    }

    /// Runs one iteration: ask predicates, wait at most `max_wait` (or until the next
    /// timer is due, if sooner), dispatch channel events, then run due timers, signal
    /// handlers and [`Remote`](crate::Remote) calls (asyncore's `poll` / `poll2`, plus
    /// timers). Sub-millisecond waits are rounded up, never down to a busy zero; `EINTR`
    /// is retried with the time that remains. Returns the number of channel readiness
    /// reports dispatched.
    ///
    /// # Errors
    ///
    /// Only a failure of the wait itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use std::time::Duration;
    /// use sockloop::{Channel, Context, Dispatcher, EventLoop};
    ///
    /// struct Sink;
    /// impl Dispatcher for Sink {
    ///     fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
    ///         ctx.recv(&mut [0u8; 64]).map(drop)
    ///     }
    /// }
    ///
    /// let mut event_loop = EventLoop::new()?;
    /// let (a, mut b) = Channel::pair()?;
    /// event_loop.add(a, Sink)?;
    /// b.send(b"ping")?;
    /// assert_eq!(event_loop.poll_once(Some(Duration::from_secs(5)))?, 1);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn poll_once(&mut self, max_wait: Option<Duration>) -> io::Result<usize> {
        self.iterate(max_wait, false)
    }

    /// One iteration; `until_idle` (for [`run`](EventLoop::run)): if the refresh closed
    /// the last channel and no timer is left, return instead of waiting for nothing.
    fn iterate(&mut self, timeout: Option<Duration>, until_idle: bool) -> io::Result<usize> {
        self.core.stop = None;
        self.core.iteration = self.core.iteration.wrapping_add(1);
        self.core.map.release_freed();
        self.refresh();
        // The refresh runs the closes asked for outside any hook (`close_when_done` or
        // `request_close` from a timer, a signal handler, a `Remote` call or another
        // channel's hook): if that emptied the loop, `run` is done.
        if until_idle && !self.is_alive() {
            return Ok(0);
        }
        // A `handle_close` run by the refresh (a close decided outside any hook) may have
        // asked to stop: then do not block in the wait.
        let mut timeout = match self.core.stop {
            Some(Stop::Now) => return Ok(0),
            Some(Stop::AfterIteration) => Some(Duration::ZERO),
            None => timeout,
        };
        if let Some(next) = self.core.timers.next_deadline() {
            let until = next.saturating_duration_since(Instant::now());
            timeout = Some(timeout.map_or(until, |t| t.min(until)));
        }
        let mut events = std::mem::take(&mut self.events);
        let waited = self.core.selector.wait(&mut events, timeout);
        self.core.now = Instant::now();
        let mut dispatched = 0;
        if waited.is_ok() {
            for ev in &events {
                if self.core.stop == Some(Stop::Now) {
                    break;
                }
                match ev.key {
                    WAKER_KEY => self.woken = true,
                    SIGNAL_KEY => self.signalled = true,
                    key => {
                        let index = key - FIRST_CHANNEL_KEY;
                        if self.core.route(index, |router| router.dispatch(ev.ready)) {
                            dispatched += 1;
                        }
                    }
                }
            }
        }
        self.events = events;
        waited?;
        self.core.run_timers(self.core.now);
        self.run_signal_handlers();
        self.run_remote_calls();
        Ok(dispatched)
    }

    fn run_signal_handlers(&mut self) {
        if !std::mem::take(&mut self.signalled) {
            return;
        }
        let Some(signals) = self.core.signals.as_mut() else {
            return;
        };
        for (signal, mut handler) in signals.take_arrived() {
            let outcome = self.core.callback(|lp| handler(lp, signal));
            if let Some(signals) = self.core.signals.as_mut() {
                signals.restore(signal, handler);
            }
            self.core.survive("signal handler", outcome);
        }
    }

    fn run_remote_calls(&mut self) {
        if !std::mem::take(&mut self.woken) {
            return;
        }
        let Some(inbox) = self.core.inbox.as_ref() else {
            return;
        };
        let (calls, stop) = inbox.take();
        if stop {
            self.core.stop();
        }
        for f in calls {
            let outcome = self.core.callback(f);
            self.core.survive("remote call", outcome);
        }
    }

    /// Step 1 of an iteration: bring each channel's registration up to date with its
    /// predicates (and run `handle_close` for channels that hit end of file, a disconnect
    /// or a drained close mark outside a hook).
    fn refresh(&mut self) {
        match self.mode {
            Mode::Exact => {
                self.core.map.clear_dirty();
                for index in 0..self.core.map.slot_count() {
                    self.refresh_one(index);
                }
            }
            Mode::Scalable => {
                #[cfg(debug_assertions)]
                self.audit_predicates();
                let dirty = self.core.map.take_dirty();
                let mut done = 0;
                let refreshed = catch_unwind(AssertUnwindSafe(|| {
                    for &index in &dirty {
                        self.refresh_one(index as usize);
                        done += 1;
                    }
                }));
                if let Err(payload) = refreshed {
                    // A propagating panic: the channels not asked yet stay queued.
                    for &index in &dirty[done + 1..] {
                        self.core.map.mark_dirty(index);
                    }
                    resume_unwind(payload);
                }
                // Keep the allocation; anything marked during this refresh stays queued.
                self.core.map.restore_dirty(dirty);
            }
        }
    }

    /// Debug builds, [`Mode::Scalable`]: once a second, asks every settled channel its
    /// predicates again; an answer that changed although nothing touched the channel is
    /// a predicate that depends on state the loop cannot see (a peer's queue, time, a
    /// global): warn, and apply it. Release builds trust the cache.
    #[cfg(debug_assertions)]
    fn audit_predicates(&mut self) {
        if self.audited.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.audited = Instant::now();
        let mut changed = Vec::new();
        for (index, entry) in self.core.map.settled() {
            if matches!(ask(&*entry.dispatcher, &entry.channel), Ok(want) if want != entry.reg.registered)
            {
                crate::report::warning!(
                    "readable()/writable() of {} changed although nothing touched the \
                     channel: in Mode::Scalable answers are cached; use \
                     Channel::pause_reading/resume_reading or LoopHandle::touch (or \
                     Mode::Exact). Applied now; release builds would not notice",
                    entry.channel
                );
                changed.push(index as u32);
            }
        }
        for index in changed {
            self.core.map.mark_dirty(index);
        }
    }

    fn refresh_one(&mut self, index: usize) {
        let pending = self
            .core
            .map
            .at_mut(index)
            .is_some_and(|e| e.channel.pending.any());
        if pending {
            self.core.route(index, |router| router.settle());
        }
        let Some(entry) = self.core.map.at_mut(index) else {
            return;
        };
        // Pushes from other callbacks in the iteration gathered after a first send: the
        // next iteration's first push may go at once again.
        entry.channel.gathering = false;
        if entry.channel.pending.has(Pending::OUTPUT) {
            // Output sent since the last look (from any hook) is activity.
            entry.channel.pending.clear(Pending::OUTPUT);
            deadline::stamp_activity(&mut entry.channel.deadlines, self.core.now);
        }
        let want = match ask(&*entry.dispatcher, &entry.channel) {
            Ok(want) => want,
            Err(payload) => {
                // The channel gets its one cleanup call either way; a propagating panic
                // (`set_catch_panics(false)`) goes on after it.
                if self.core.catch_panics {
                    crate::route::report_panic("readable()/writable()", &entry.channel, payload);
                    self.core.route(index, |router| router.close_event());
                } else {
                    self.core.route(index, |router| router.close_event());
                    resume_unwind(payload);
                }
                return;
            }
        };
        if let Some(token) = entry.channel.token() {
            deadline::arm(
                &mut self.core.timers,
                token,
                entry.channel.deadlines.as_deref(),
                entry.channel.is_connecting(),
                &mut entry.reg.armed,
            );
        }
        let have = entry.reg.registered;
        if want == have {
            return;
        }
        let result = match entry.channel.own_fd() {
            Some(fd) => self
                .core
                .selector
                .update(fd, FIRST_CHANNEL_KEY + index, have, want),
            None => Ok(()),
        };
        match result {
            Ok(()) => entry.reg.registered = want,
            Err(e) => {
                self.core.route(index, |router| router.error(e));
            }
        }
    }
}

impl<S> Deref for EventLoop<S> {
    type Target = LoopHandle<S>;
    fn deref(&self) -> &LoopHandle<S> {
        &self.core
    }
}

impl<S> DerefMut for EventLoop<S> {
    fn deref_mut(&mut self) -> &mut LoopHandle<S> {
        &mut self.core
    }
}

impl<S> std::fmt::Debug for EventLoop<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("backend", &self.core.selector.backend())
            .field("mode", &self.mode)
            .field("channels", &self.core.map.len())
            .finish()
    }
}

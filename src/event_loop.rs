//! `EventLoop`: the map, the iteration, and the public entry points.

use std::any::Any;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::channel::{Channel, Pending};
use crate::context::{arm_deadline, Core, Entry, SlotState, Stop};
use crate::dispatcher::Dispatcher;
use crate::interest::Interest;
use crate::remote::{Inbox, Remote};
use crate::report::{self, panic_message};
use crate::route::Router;
use crate::signal::Signals;
use crate::sys::{Backend, Event, Selector, FIRST_CHANNEL_KEY, SIGNAL_KEY, WAKER_KEY};
use crate::timer::{Action, TimerId};
use crate::token::Token;

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
    /// [`EventLoop::channel_mut`] / [`Context::channel_mut`](crate::Context::channel_mut),
    /// or when [`touch`](crate::Context::touch)ed. An iteration then costs O(ready + touched
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
///    [`Remote`] calls.
///
/// # Closing during dispatch
///
/// A hook may close any channel, its own included, and add new ones. An event for a
/// channel closed earlier in the same iteration is dropped; a slot freed during an
/// iteration is not reused before the next one, and [`Token`]s carry a generation, so a
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
pub struct EventLoop {
    core: Core,
    events: Vec<Event>,
    mode: Mode,
    /// Set while `poll_once` runs: a callback that calls `run` again gets an error.
    running: bool,
    /// The cross-thread wake-up, created by the first [`remote`](EventLoop::remote).
    inbox: Option<Inbox>,
    woken: bool,
    signals: Option<Signals>,
    signalled: bool,
    /// Debug builds: when the cached predicates were last checked against fresh answers.
    #[cfg(debug_assertions)]
    audited: Instant,
}

impl EventLoop {
    /// Creates a loop on the default backend, [`Backend::Epoll`].
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
        Ok(EventLoop {
            core: Core::new(Selector::new(backend)?),
            events: Vec::with_capacity(256),
            mode: Mode::default(),
            running: false,
            inbox: None,
            woken: false,
            signals: None,
            signalled: false,
            #[cfg(debug_assertions)]
            audited: Instant::now(),
        })
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
    /// usable if the caller catches it. The same holds for timer, signal and [`Remote`]
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

    /// Adds a channel with its dispatcher; it is polled from the next iteration.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the channel is closed or already belongs to a loop.
    pub fn add<D: Dispatcher>(&mut self, channel: Channel, dispatcher: D) -> io::Result<Token> {
        self.core.insert(channel, dispatcher)
    }

    /// Adds a channel whose dispatcher is made from the token it will get (a vacant-entry
    /// add), for a dispatcher that must know its own token, e.g. to register it elsewhere.
    ///
    /// # Errors
    ///
    /// As [`add`](EventLoop::add); `make` is not called then.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Channel, Dispatcher, EventLoop, Token};
    ///
    /// struct Knows(Token);
    /// impl Dispatcher for Knows {}
    ///
    /// let mut event_loop = EventLoop::new()?;
    /// let (a, _b) = Channel::pair()?;
    /// let token = event_loop.add_with(a, Knows)?;
    /// assert_eq!(event_loop.dispatcher::<Knows>(token).unwrap().0, token);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn add_with<D: Dispatcher>(
        &mut self,
        channel: Channel,
        make: impl FnOnce(Token) -> D,
    ) -> io::Result<Token> {
        self.core.insert_with(channel, make)
    }

    /// Adds two channels whose dispatchers need each other's token, such as the two sides
    /// of a proxy: `make` gets both tokens before either channel is added.
    ///
    /// # Errors
    ///
    /// As [`add`](EventLoop::add), for either channel; then neither is added and `make` is
    /// not called.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Channel, Dispatcher, EventLoop, Token};
    ///
    /// struct Side { peer: Token }
    /// impl Dispatcher for Side {}
    ///
    /// let mut event_loop = EventLoop::new()?;
    /// let (a, b) = Channel::pair()?;
    /// let (ta, tb) = event_loop.add_pair((a, b), |ta, tb| (Side { peer: tb }, Side { peer: ta }))?;
    /// assert_eq!(event_loop.dispatcher::<Side>(ta).unwrap().peer, tb);
    /// assert_eq!(event_loop.dispatcher::<Side>(tb).unwrap().peer, ta);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn add_pair<A: Dispatcher, B: Dispatcher>(
        &mut self,
        channels: (Channel, Channel),
        make: impl FnOnce(Token, Token) -> (A, B),
    ) -> io::Result<(Token, Token)> {
        self.core.insert_pair(channels, make)
    }

    /// The number of channels in the map.
    pub fn len(&self) -> usize {
        self.core.len
    }

    /// True if the map is empty ([`run`](EventLoop::run) returns at once).
    pub fn is_empty(&self) -> bool {
        self.core.len == 0
    }

    /// True if `token` names a channel still in the map.
    pub fn contains(&self, token: Token) -> bool {
        self.core.contains(token)
    }

    /// Every channel in the map with its token, in slot order (channels running a hook
    /// are not listed: outside callbacks, that is none).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Channel, Dispatcher, EventLoop};
    ///
    /// struct Idle;
    /// impl Dispatcher for Idle {}
    ///
    /// let mut event_loop = EventLoop::new()?;
    /// let (a, b) = Channel::pair()?;
    /// let ta = event_loop.add(a, Idle)?;
    /// let tb = event_loop.add(b, Idle)?;
    /// let tokens: Vec<_> = event_loop.channels().map(|(t, _)| t).collect();
    /// assert_eq!(tokens, [ta, tb]);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn channels(&self) -> impl Iterator<Item = (Token, &Channel)> + '_ {
        self.core.channels()
    }

    /// A channel, for reading its state.
    pub fn channel(&self, token: Token) -> Option<&Channel> {
        self.core.entry(token).map(|e| &e.channel)
    }

    /// A channel, for pushing output or changing it; its predicates are re-asked before the
    /// next wait.
    pub fn channel_mut(&mut self, token: Token) -> Option<&mut Channel> {
        self.core.entry_mut(token).map(|e| &mut e.channel)
    }

    /// A channel's dispatcher, if it is a `D`.
    pub fn dispatcher<D: Dispatcher>(&self, token: Token) -> Option<&D> {
        let entry = self.core.entry(token)?;
        (&*entry.dispatcher as &dyn Any).downcast_ref::<D>()
    }

    /// A channel's dispatcher, mutably, if it is a `D`; the channel is re-asked before the
    /// next wait.
    pub fn dispatcher_mut<D: Dispatcher>(&mut self, token: Token) -> Option<&mut D> {
        let entry = self.core.entry_mut(token)?;
        (&mut *entry.dispatcher as &mut dyn Any).downcast_mut::<D>()
    }

    /// Closes one channel (without its `handle_close`, as asyncore's `close()`). Returns
    /// false if `token` names no live channel.
    pub fn close(&mut self, token: Token) -> bool {
        self.core.close(token)
    }

    /// Closes every channel; the map is empty afterwards, even if closing one failed or
    /// its dispatcher panicked while being dropped (asyncore's `close_all`).
    pub fn close_all(&mut self) {
        self.core.close_all();
    }

    /// Runs `f` on the loop thread once `delay` has passed (asyncio's `call_later`). The
    /// callback gets the whole loop: it may add and close channels, set timers and stop.
    ///
    /// Timers never fire early: a timer runs in the first iteration that starts its
    /// dispatch at or after its deadline, after that iteration's channel events. Timers
    /// due at the same instant run in the order they were set. A timer set by a timer
    /// callback runs in a later iteration, never in the same pass.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use sockloop::EventLoop;
    ///
    /// let mut event_loop = EventLoop::new()?;
    /// let start = Instant::now();
    /// event_loop.call_later(Duration::from_millis(20), move |lp: &mut EventLoop| {
    ///     assert!(start.elapsed() >= Duration::from_millis(20));
    ///     lp.stop();
    /// });
    /// // No channels: `run` keeps going while a timer is pending.
    /// event_loop.run(None, None)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn call_later(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut EventLoop) + 'static,
    ) -> TimerId {
        self.core.call_later(delay, f)
    }

    /// Runs `f` at `deadline` (never earlier); see [`call_later`](EventLoop::call_later).
    pub fn call_at(
        &mut self,
        deadline: Instant,
        f: impl FnOnce(&mut EventLoop) + 'static,
    ) -> TimerId {
        self.core.call_at(deadline, f)
    }

    /// Runs `f` every `period`, first one period from now, until cancelled (from anywhere,
    /// the callback itself included). A tick that comes late does not shift the schedule;
    /// ticks missed entirely (the loop was busy for more than a period) are skipped, not
    /// run in a burst. A zero period runs once per iteration and makes the loop's wait
    /// zero.
    pub fn call_every(
        &mut self,
        period: Duration,
        f: impl FnMut(&mut EventLoop) + 'static,
    ) -> TimerId {
        self.core.call_every(period, f)
    }

    /// Cancels a timer. Returns false if it already fired (a one-shot timer) or was
    /// cancelled; a stale id never cancels another timer.
    pub fn cancel(&mut self, timer: TimerId) -> bool {
        self.core.timers.cancel(timer)
    }

    /// The number of pending timers (channel timeouts included).
    pub fn timers(&self) -> usize {
        self.core.timers.len()
    }

    /// Stops [`run`](EventLoop::run) after the current iteration: for timer, signal and
    /// [`Remote`] callbacks ([`Context::stop`](crate::Context::stop) in hooks).
    pub fn stop(&mut self) {
        if self.core.stop.is_none() {
            self.core.stop = Some(Stop::AfterIteration);
        }
    }

    /// A handle for other threads: wake the loop, run closures on it, stop it. All handles
    /// share one eventfd, registered with the backend on the first call.
    ///
    /// # Errors
    ///
    /// What eventfd(2) or the backend's registration reports.
    pub fn remote(&mut self) -> io::Result<Remote> {
        if self.inbox.is_none() {
            let inbox = Inbox::new()?;
            self.core
                .selector
                .update(inbox.fd(), WAKER_KEY, Interest::NONE, Interest::READABLE)?;
            self.inbox = Some(inbox);
        }
        Ok(self
            .inbox
            .as_ref()
            .map(Inbox::remote)
            .expect("just created"))
    }

    /// Runs `f` on the loop thread whenever `signal` arrives (asyncio's
    /// `add_signal_handler`); replaces an earlier handler for the same signal. The OS-level
    /// handler only sets a flag and wakes the loop; `f` runs in the next iteration, after
    /// channel events and timers, once however many times the signal arrived meanwhile.
    /// Signal numbers are in [`signal`](crate::signal) (`SIGINT`, `SIGTERM`, ...).
    ///
    /// A handler does not keep [`run`](EventLoop::run) going by itself (a client's loop
    /// should end when its channels are done); to wait for nothing but signals, use
    /// [`run_forever`](EventLoop::run_forever). Once a handler for a signal is
    /// installed, that signal no longer has its default action (terminate, for `SIGINT`)
    /// in this process, even after [`remove_signal_handler`](EventLoop::remove_signal_handler)
    /// or dropping the loop: the signal is then ignored.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for signals that cannot be handled (`SIGKILL`, `SIGSTOP`, and
    /// `SIGSEGV`, `SIGILL`, `SIGFPE`, whose handlers must not return).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{signal, EventLoop};
    ///
    /// let mut event_loop = EventLoop::new()?;
    /// event_loop.add_signal_handler(signal::SIGUSR1, |lp: &mut EventLoop, sig| {
    ///     assert_eq!(sig, signal::SIGUSR1);
    ///     lp.close_all();
    ///     lp.stop();
    /// })?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn add_signal_handler(
        &mut self,
        signal: i32,
        f: impl FnMut(&mut EventLoop, i32) + 'static,
    ) -> io::Result<()> {
        if self.signals.is_none() {
            let signals = Signals::new()?;
            self.core.selector.update(
                signals.fd(),
                SIGNAL_KEY,
                Interest::NONE,
                Interest::READABLE,
            )?;
            self.signals = Some(signals);
        }
        let signals = self.signals.as_mut().expect("just created");
        signals.add(signal, Box::new(f)).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot handle signal {signal}: {e}"),
            )
        })
    }

    /// Closes every channel and stops [`run`](EventLoop::run) when any of `signals`
    /// arrives: the graceful exit a server wants on `SIGINT` and `SIGTERM`.
    ///
    /// # Errors
    ///
    /// As [`add_signal_handler`](EventLoop::add_signal_handler).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{signal, EventLoop};
    ///
    /// let mut event_loop = EventLoop::new()?;
    /// event_loop.stop_on_signals(&[signal::SIGINT, signal::SIGTERM])?;
    /// # event_loop.remove_signal_handler(signal::SIGINT);
    /// # event_loop.remove_signal_handler(signal::SIGTERM);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn stop_on_signals(&mut self, signals: &[i32]) -> io::Result<()> {
        for &signal in signals {
            self.add_signal_handler(signal, |lp, _| {
                lp.close_all();
                lp.stop();
            })?;
        }
        Ok(())
    }

    /// Removes the handler for `signal`; false if there was none.
    pub fn remove_signal_handler(&mut self, signal: i32) -> bool {
        self.signals.as_mut().is_some_and(|s| s.remove(signal))
    }

    /// True while there is work that [`run`](EventLoop::run) waits for: a channel or a
    /// pending timer.
    fn is_alive(&self) -> bool {
        !self.is_empty() || self.core.timers.len() > 0
    }

    /// Runs iterations, at most `count` of them (`None` = no bound), each waiting up to
    /// `timeout` (asyncore's `loop(timeout, use_poll, map, count)`). Returns when no
    /// channels (asyncore's condition) and no pending timers are left; signal handlers and
    /// [`Remote`]s do not keep it going (see [`run_forever`](EventLoop::run_forever)).
    /// `count == Some(0)` runs none. Returns early after a hook calls
    /// [`stop`](crate::Context::stop) (at the end of that iteration) or
    /// [`stop_now`](crate::Context::stop_now) (right after that hook), after
    /// [`EventLoop::stop`] from a callback, or [`Remote::stop`].
    ///
    /// # Errors
    ///
    /// Only a failure of the wait itself (never a channel's error: those go to its hooks),
    /// or `WouldBlock`-free misuse: calling `run` or `poll_once` from a callback of the
    /// same loop is an error of kind `Other`.
    pub fn run(&mut self, timeout: Option<Duration>, count: Option<usize>) -> io::Result<()> {
        let mut done = 0;
        while self.is_alive() && count.is_none_or(|c| done < c) {
            self.poll(timeout, true)?;
            done += 1;
            if self.core.stop.take().is_some() {
                break;
            }
        }
        Ok(())
    }

    /// Runs iterations until a stop is asked ([`EventLoop::stop`] from a callback,
    /// [`Context::stop`](crate::Context::stop) / [`stop_now`](crate::Context::stop_now)
    /// from a hook, [`Remote::stop`]), even with no channels or timers: asyncio's
    /// `run_forever`, for a loop that waits for signals or [`Remote`] calls.
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

    /// Runs one iteration: ask predicates, wait up to `timeout` (or until the next timer
    /// is due, if sooner), dispatch channel events, then run due timers, signal handlers
    /// and [`Remote`] calls (asyncore's `poll` / `poll2`, plus timers). Sub-millisecond
    /// timeouts are rounded up, never down to a busy zero; `EINTR` is retried with the
    /// time that remains. Returns the number of channel readiness reports dispatched.
    ///
    /// # Errors
    ///
    /// Only a failure of the wait itself, or a call from inside a callback of this loop.
    pub fn poll_once(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        self.poll(timeout, false)
    }

    /// One iteration; `until_idle` (for [`run`](EventLoop::run)): if the refresh closed
    /// the last channel and no timer is left, return instead of waiting for nothing.
    fn poll(&mut self, timeout: Option<Duration>, until_idle: bool) -> io::Result<usize> {
        if self.running {
            return Err(io::Error::other(
                "the event loop is already running (poll_once or run called from a callback)",
            ));
        }
        self.running = true;
        let result = catch_unwind(AssertUnwindSafe(|| self.iterate(timeout, until_idle)));
        self.running = false;
        result.unwrap_or_else(|payload| resume_unwind(payload))
    }

    fn iterate(&mut self, timeout: Option<Duration>, until_idle: bool) -> io::Result<usize> {
        self.core.stop = None;
        self.core.free.append(&mut self.core.pending_free);
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
                        if self.dispatch(index, |router| router.dispatch(ev.ready)) {
                            dispatched += 1;
                        }
                    }
                }
            }
        }
        self.events = events;
        waited?;
        self.run_timers();
        self.run_signal_handlers();
        self.run_remote_calls();
        Ok(dispatched)
    }

    /// Runs the timers due now. Timers set meanwhile wait for a later iteration, so a
    /// zero-delay timer that re-arms itself cannot hold the loop in one pass.
    fn run_timers(&mut self) {
        if self.core.timers.len() == 0 {
            return;
        }
        // The time read right after the wait: never later than now, so never early.
        let now = self.core.now;
        let set_before = self.core.timers.mark();
        while self.core.stop != Some(Stop::Now) {
            let Some(due) = self.core.timers.pop_due(now, set_before) else {
                break;
            };
            match due.action {
                Action::Once(f) => {
                    let outcome = self.callback(f);
                    self.survive("timer", outcome);
                }
                Action::Every(period, mut f) => {
                    let outcome = self.callback(|lp| f(lp));
                    if outcome.is_err() {
                        // A periodic timer that panicked is not re-armed.
                        self.core.timers.cancel(due.id);
                    }
                    let now = Instant::now();
                    self.core
                        .timers
                        .finish(due.id, due.deadline, now, period, f);
                    self.survive("periodic timer", outcome);
                }
                Action::Channel(token) => {
                    if self.core.contains(token) {
                        self.dispatch(token.index as usize, |router| router.deadline(now));
                    }
                }
            }
        }
    }

    fn run_signal_handlers(&mut self) {
        if !std::mem::take(&mut self.signalled) {
            return;
        }
        let Some(signals) = self.signals.as_mut() else {
            return;
        };
        for (signal, mut handler) in signals.take_arrived() {
            let outcome = self.callback(|lp| handler(lp, signal));
            if let Some(signals) = self.signals.as_mut() {
                signals.restore(signal, handler);
            }
            self.survive("signal handler", outcome);
        }
    }

    fn run_remote_calls(&mut self) {
        if !std::mem::take(&mut self.woken) {
            return;
        }
        let Some(inbox) = self.inbox.as_ref() else {
            return;
        };
        let (calls, stop) = inbox.take();
        if stop {
            self.stop();
        }
        for f in calls {
            let outcome = self.callback(f);
            self.survive("remote call", outcome);
        }
    }

    /// Runs a timer, signal or remote callback, catching a panic.
    fn callback(&mut self, f: impl FnOnce(&mut EventLoop)) -> Result<(), Box<dyn Any + Send>> {
        catch_unwind(AssertUnwindSafe(|| f(self)))
    }

    /// After a callback's bookkeeping: a panic is logged and the loop goes on (as for
    /// hooks), or it propagates if [`set_catch_panics`](EventLoop::set_catch_panics) is off.
    fn survive(&self, what: &str, outcome: Result<(), Box<dyn Any + Send>>) {
        if let Err(payload) = outcome {
            if !self.core.catch_panics {
                resume_unwind(payload);
            }
            report::error!(
                "panic in a {what} callback: {}; the loop goes on",
                panic_message(&*payload)
            );
        }
    }

    /// Takes the channel in slot `index` out of the map, runs `f` on it, and puts it back
    /// (or frees the slot if it closed). Returns false if the slot holds no channel.
    fn dispatch(&mut self, index: usize, f: impl FnOnce(&mut Router<'_>)) -> bool {
        let Some(slot) = self.core.slots.get_mut(index) else {
            return false;
        };
        let generation = slot.generation;
        let mut entry = match std::mem::replace(&mut slot.state, SlotState::Busy) {
            SlotState::Occupied(entry) => entry,
            other => {
                slot.state = other;
                return false;
            }
        };
        let Entry {
            channel,
            dispatcher,
        } = &mut *entry;
        let mut router = Router {
            token: Token {
                index: index as u32,
                generation,
            },
            core: &mut self.core,
            channel,
            dispatcher: &mut **dispatcher,
            close_called: false,
        };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(&mut router))) {
            // Panics propagate (`set_catch_panics(false)`): close the channel as a caught
            // panic would, with its one `handle_close` (unless that is what panicked), so
            // no slot stays busy and no registration outlives its fd.
            if catch_unwind(AssertUnwindSafe(|| router.close_event())).is_err() {
                report::error!("handle_close panicked after a propagating panic");
            }
            self.core.release(&mut entry.channel);
            self.core.free_slot(index as u32, Some(entry));
            resume_unwind(payload);
        }
        if entry.channel.is_closed() {
            self.core.free_slot(index as u32, Some(entry));
        } else {
            // Re-ask the predicates now, while the entry is at hand and hot in cache: if
            // the interest is unchanged, nothing is pending and no deadline needs arming,
            // the refresh pass can skip this channel. Anything that changes it later in
            // this iteration marks it dirty (channel_mut, touch, ...), as for any channel.
            let settled = !entry.channel.pending.any()
                && entry.channel.deadlines.is_none()
                && matches!(ask(&*entry.dispatcher, &entry.channel),
                            Ok(want) if want == entry.channel.registered);
            self.core.slots[index].state = SlotState::Occupied(entry);
            if !settled {
                self.core.mark_dirty(index as u32);
            }
        }
        true
    }

    /// Step 1 of an iteration: bring each channel's registration up to date with its
    /// predicates (and run `handle_close` for channels that hit end of file, a disconnect
    /// or a drained close mark outside a hook).
    fn refresh(&mut self) {
        match self.mode {
            Mode::Exact => {
                for slot in &mut self.core.slots {
                    slot.dirty = false;
                }
                self.core.dirty.clear();
                for index in 0..self.core.slots.len() {
                    self.refresh_one(index);
                }
            }
            Mode::Scalable => {
                #[cfg(debug_assertions)]
                self.audit_predicates();
                let mut dirty = std::mem::take(&mut self.core.dirty);
                for &index in &dirty {
                    self.core.slots[index as usize].dirty = false;
                }
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
                        self.core.mark_dirty(index);
                    }
                    resume_unwind(payload);
                }
                dirty.clear();
                // Keep the allocation; anything marked during this refresh stays queued.
                dirty.append(&mut self.core.dirty);
                self.core.dirty = dirty;
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
        for index in 0..self.core.slots.len() {
            let slot = &self.core.slots[index];
            let SlotState::Occupied(entry) = &slot.state else {
                continue;
            };
            if slot.dirty {
                continue;
            }
            if matches!(ask(&*entry.dispatcher, &entry.channel), Ok(want) if want != entry.channel.registered)
            {
                report::warning!(
                    "readable()/writable() of {} changed although nothing touched the \
                     channel: in Mode::Scalable answers are cached; use \
                     Channel::pause_reading/resume_reading or Context::touch (or \
                     Mode::Exact). Applied now; release builds would not notice",
                    entry.channel
                );
                self.core.mark_dirty(index as u32);
            }
        }
    }

    fn refresh_one(&mut self, index: usize) {
        let pending = matches!(&self.core.slots[index].state,
            SlotState::Occupied(e) if e.channel.pending.any());
        if pending {
            self.dispatch(index, |router| router.settle());
        }
        let SlotState::Occupied(entry) = &mut self.core.slots[index].state else {
            return;
        };
        if entry.channel.pending.has(Pending::OUTPUT) {
            // Output sent since the last look (from any hook) is activity.
            entry.channel.pending.clear(Pending::OUTPUT);
            if let Some(d) = entry
                .channel
                .deadlines
                .as_mut()
                .filter(|d| d.idle.is_some())
            {
                d.last_active = Some(self.core.now);
            }
        }
        let want = match ask(&*entry.dispatcher, &entry.channel) {
            Ok(want) => want,
            Err(payload) => {
                // The channel gets its one cleanup call either way; a propagating panic
                // (`set_catch_panics(false)`) goes on after it.
                if self.core.catch_panics {
                    crate::route::report_panic("readable()/writable()", &entry.channel, payload);
                    self.dispatch(index, |router| router.close_event());
                } else {
                    self.dispatch(index, |router| router.close_event());
                    resume_unwind(payload);
                }
                return;
            }
        };
        if let Some(token) = entry.channel.token {
            arm_deadline(&mut self.core.timers, token, &mut entry.channel);
        }
        let have = entry.channel.registered;
        if want == have {
            return;
        }
        let result = match entry.channel.fd() {
            Some(fd) => self
                .core
                .selector
                .update(fd, FIRST_CHANNEL_KEY + index, have, want),
            None => Ok(()),
        };
        match result {
            Ok(()) => entry.channel.registered = want,
            Err(e) => {
                self.dispatch(index, |router| router.error(e));
            }
        }
    }
}

/// Asks a channel's predicates; the panic's payload if one panicked.
fn ask(dispatcher: &dyn Dispatcher, channel: &Channel) -> Result<Interest, Box<dyn Any + Send>> {
    catch_unwind(AssertUnwindSafe(|| {
        // After end of file input is always "ready": watching it would spin. A listener
        // paused by the accept back-off waits for its timer.
        let r = !channel.is_eof()
            && !channel.is_accept_paused()
            && !channel.is_reading_paused()
            && dispatcher.readable(channel);
        let w = !channel.is_accepting() && dispatcher.writable(channel);
        Interest::from_flags(r, w)
    }))
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("backend", &self.backend())
            .field("mode", &self.mode)
            .field("channels", &self.core.len)
            .finish()
    }
}

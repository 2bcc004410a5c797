//! [`LoopHandle`]: the channel map (asyncore's `socket_map`), the timers and the loop's
//! state — what every callback can reach.

use std::any::Any;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::channel::Channel;
use crate::deadline;
use crate::dispatcher::Dispatcher;
use crate::interest::Interest;
use crate::map::{Entry, Map, Registration};
use crate::remote::{Inbox, Remote};
use crate::report::{self, panic_message};
use crate::signal::Signals;
use crate::sys::{Selector, FIRST_CHANNEL_KEY, SIGNAL_KEY, WAKER_KEY};
use crate::timer::{deadline_after, Action, TimerId, Timers};
use crate::token::Token;

/// How [`run`](crate::EventLoop::run) should stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Return after the current iteration.
    AfterIteration,
    /// Return right after the current hook (asyncore's `ExitNow`).
    Now,
}

/// The loop as every callback sees it: the channel map, the timers, the loop's shared
/// state `S`, and stopping. Hooks reach it through [`Context::handle`](crate::Context::handle);
/// timer, signal and [`Remote`] callbacks receive it; an [`EventLoop`](crate::EventLoop)
/// dereferences to it for setup. It has no `run`: a callback cannot re-enter the loop.
///
/// The state is whatever the program shares between channels (a chat room's members,
/// counters, a shutdown flag); it is created with
/// [`EventLoop::with_state`](crate::EventLoop::with_state) and handed out as
/// [`state`](LoopHandle::state) / [`state_mut`](LoopHandle::state_mut), with no
/// `Rc<RefCell<_>>` and no `Send` bound.
///
/// A callback cannot run the loop again (asyncore allowed a nested `loop()` that
/// re-dispatched the channel whose hook was running):
///
/// ```compile_fail
/// use std::time::Duration;
/// use sockloop::EventLoop;
///
/// let mut event_loop = EventLoop::new().unwrap();
/// event_loop.call_later(Duration::ZERO, |lp, _| {
///     lp.run(None, None).unwrap(); // no `run` on a LoopHandle
/// });
/// ```
///
/// # Examples
///
/// One helper for a hook, a timer and a [`Remote`] call:
///
/// ```
/// use std::io;
/// use std::time::Duration;
/// use sockloop::{Channel, Context, Dispatcher, EventLoop, LoopHandle, Token};
///
/// #[derive(Default)]
/// struct Room { members: Vec<Token>, said: usize }
///
/// /// Sends `line` to every member (from any callback).
/// fn broadcast(lp: &mut LoopHandle<Room>, line: &[u8]) -> io::Result<()> {
///     lp.state_mut().said += 1;
///     for token in lp.state().members.clone() {
///         if let Some(member) = lp.channel_mut(token) {
///             member.push(line)?;
///         }
///     }
///     Ok(())
/// }
///
/// struct Member;
/// impl Dispatcher<Room> for Member {
///     fn handle_read(&mut self, ctx: &mut Context<'_, Room>) -> io::Result<()> {
///         let mut buf = [0u8; 512];
///         let n = ctx.recv(&mut buf)?;
///         broadcast(ctx.handle(), &buf[..n])
///     }
/// }
///
/// let mut event_loop = EventLoop::with_state(Room::default())?;
/// let (a, _peer) = Channel::pair()?;
/// let token = event_loop.add(a, Member)?;
/// event_loop.state_mut().members.push(token);
/// event_loop.call_later(Duration::ZERO, |lp, _| {
///     broadcast(lp, b"from a timer\n").unwrap();
///     lp.close_all();
/// });
/// event_loop.run(Some(Duration::from_secs(5)), Some(100))?;
/// assert_eq!(event_loop.state().said, 1);
/// # std::io::Result::Ok(())
/// ```
pub struct LoopHandle<S = ()> {
    pub(crate) map: Map<S>,
    pub(crate) selector: Selector,
    pub(crate) timers: Timers<S>,
    /// The time read right after the last wait (libuv's `uv_now`): the base for idle and
    /// back-off deadlines, read once per iteration instead of once per event.
    pub(crate) now: Instant,
    /// Counts the loop's iterations (wrapping): the accept pace tells a listener
    /// reported in consecutive iterations.
    pub(crate) iteration: u32,
    pub(crate) stop: Option<Stop>,
    pub(crate) log_warnings: bool,
    pub(crate) catch_panics: bool,
    /// The cross-thread wake-up, created by the first [`remote`](LoopHandle::remote).
    pub(crate) inbox: Option<Inbox<S>>,
    /// Signal handlers, created by the first [`add_signal_handler`](LoopHandle::add_signal_handler).
    pub(crate) signals: Option<Signals<S>>,
    state: S,
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

impl<S: 'static> LoopHandle<S> {
    pub(crate) fn new(selector: Selector, state: S) -> LoopHandle<S> {
        LoopHandle {
            map: Map::new(),
            selector,
            timers: Timers::default(),
            now: Instant::now(),
            iteration: 0,
            stop: None,
            log_warnings: false,
            catch_panics: true,
            inbox: None,
            signals: None,
            state,
        }
    }

    /// The loop's shared state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The loop's shared state, to change it.
    pub fn state_mut(&mut self) -> &mut S {
        &mut self.state
    }

    pub(crate) fn into_state(self) -> S {
        self.state
    }

    /// Adds a channel with its dispatcher; it is polled from the next iteration.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the channel is closed or already belongs to a loop.
    pub fn add<D: Dispatcher<S>>(&mut self, channel: Channel, dispatcher: D) -> io::Result<Token> {
        self.check_addable(&channel)?;
        self.insert(channel, Box::new(dispatcher), std::any::type_name::<D>())
    }

    /// Adds a channel whose dispatcher is made from the token it will get (a vacant-entry
    /// add), for a dispatcher that must know its own token, e.g. to register it elsewhere.
    ///
    /// # Errors
    ///
    /// As [`add`](LoopHandle::add); `make` is not called then.
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
    pub fn add_with<D: Dispatcher<S>>(
        &mut self,
        channel: Channel,
        make: impl FnOnce(Token) -> D,
    ) -> io::Result<Token> {
        self.check_addable(&channel)?;
        let dispatcher = make(self.map.upcoming(0));
        self.insert(channel, Box::new(dispatcher), std::any::type_name::<D>())
    }

    /// Adds two channels whose dispatchers need each other's token, such as the two sides
    /// of a proxy: `make` gets both tokens before either channel is added.
    ///
    /// # Errors
    ///
    /// As [`add`](LoopHandle::add), for either channel; then neither is added and `make`
    /// is not called.
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
    pub fn add_pair<A: Dispatcher<S>, B: Dispatcher<S>>(
        &mut self,
        (a, b): (Channel, Channel),
        make: impl FnOnce(Token, Token) -> (A, B),
    ) -> io::Result<(Token, Token)> {
        self.check_addable(&a)?;
        self.check_addable(&b)?;
        let (da, db) = make(self.map.upcoming(0), self.map.upcoming(1));
        let ta = self.insert(a, Box::new(da), std::any::type_name::<A>())?;
        let tb = self.insert(b, Box::new(db), std::any::type_name::<B>())?;
        Ok((ta, tb))
    }

    /// The number of channels in the map.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if the map is empty ([`run`](crate::EventLoop::run) returns at once if no
    /// timer is pending either).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// True if `token` names a channel still in the map (a channel running a hook
    /// included).
    pub fn contains(&self, token: Token) -> bool {
        self.map.contains(token)
    }

    /// Every channel in the map with its token, in slot order. A channel whose hook is
    /// running is not listed (outside callbacks that is none; in a hook it is
    /// the hook's own, which it has at hand).
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
        self.map.iter().map(|(token, e)| (token, &e.channel))
    }

    /// A channel, for reading its state. `None` for a stale token, or for the channel
    /// whose hook is running (the hook has it as its `Context`).
    pub fn channel(&self, token: Token) -> Option<&Channel> {
        self.map.entry(token).map(|e| &e.channel)
    }

    /// A channel, for pushing output or changing it; its predicates are re-asked before
    /// the next wait. `None` as for [`channel`](LoopHandle::channel).
    pub fn channel_mut(&mut self, token: Token) -> Option<&mut Channel> {
        self.map.entry_mut(token).map(|e| &mut e.channel)
    }

    /// A channel's dispatcher, if it is a `D`.
    pub fn dispatcher<D: Dispatcher<S>>(&self, token: Token) -> Option<&D> {
        let entry = self.map.entry(token)?;
        (&*entry.dispatcher as &dyn Any).downcast_ref::<D>()
    }

    /// A channel's dispatcher, mutably, if it is a `D`; the channel is re-asked before the
    /// next wait.
    pub fn dispatcher_mut<D: Dispatcher<S>>(&mut self, token: Token) -> Option<&mut D> {
        let entry = self.map.entry_mut(token)?;
        (&mut *entry.dispatcher as &mut dyn Any).downcast_mut::<D>()
    }

    /// Both at once: a channel and its dispatcher (if it is a `D`).
    pub fn get_mut<D: Dispatcher<S>>(&mut self, token: Token) -> Option<(&mut Channel, &mut D)> {
        let entry = self.map.entry_mut(token)?;
        let d = (&mut *entry.dispatcher as &mut dyn Any).downcast_mut::<D>()?;
        Some((&mut entry.channel, d))
    }

    /// Asks the loop to re-ask `token`'s `readable()`/`writable()` before the next wait
    /// (needed in [`Mode::Scalable`](crate::Mode::Scalable) when a predicate depends on
    /// state the loop cannot see change).
    pub fn touch(&mut self, token: Token) {
        if self.contains(token) {
            self.map.mark_dirty(token.index);
        }
    }

    /// Closes one channel (without its `handle_close`, as asyncore's `close()`). Returns
    /// false if `token` names no live channel, or the channel whose hook is running (use
    /// [`Context::close`](crate::Context::close) there).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::io;
    /// use std::rc::Rc;
    /// use sockloop::{Channel, Context, Dispatcher, EventLoop};
    ///
    /// struct Noisy(Rc<Cell<bool>>);
    /// impl Dispatcher for Noisy {
    ///     fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
    ///         self.0.set(true);
    ///         ctx.close();
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut event_loop = EventLoop::new()?;
    /// let called = Rc::new(Cell::new(false));
    /// let (a, _b) = Channel::pair()?;
    /// let token = event_loop.add(a, Noisy(called.clone()))?;
    /// assert!(event_loop.close(token));
    /// assert!(!event_loop.close(token), "a stale token closes nothing");
    /// assert!(!called.get(), "close is asyncore's close(): no handle_close");
    /// assert!(event_loop.is_empty());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn close(&mut self, token: Token) -> bool {
        let Some(mut entry) = self.map.remove(token) else {
            return false;
        };
        let Entry { channel, reg, .. } = &mut *entry;
        self.deregister_and_close(channel, reg);
        self.drop_entry(entry);
        true
    }

    /// Closes every channel (asyncore's `close_all`): the map is empty afterwards, even if
    /// a dispatcher panicked while being dropped. From a hook, the hook's own channel is
    /// closed too once it returns ([`Context::close_all`](crate::Context::close_all)
    /// closes it at once).
    pub fn close_all(&mut self) {
        for index in 0..self.map.slot_count() {
            if let Some(token) = self.map.occupied_token(index) {
                self.close(token);
            }
        }
    }

    /// Runs `f` on the loop thread once `delay` has passed (asyncio's `call_later`). The
    /// callback gets this handle (channels, timers, state, stop) and its own id.
    ///
    /// Timers never fire early: a timer runs in the first iteration that starts its
    /// dispatch at or after its deadline, after that iteration's channel events. Timers
    /// due at the same instant run in the order they were set. A timer set by a timer
    /// callback runs in a later iteration, never in the same pass. A delay too large for
    /// the clock means "never".
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use sockloop::EventLoop;
    ///
    /// let mut event_loop = EventLoop::new()?;
    /// let start = Instant::now();
    /// event_loop.call_later(Duration::from_millis(20), move |lp, _id| {
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
        f: impl FnOnce(&mut LoopHandle<S>, TimerId) + 'static,
    ) -> TimerId {
        self.call_at(deadline_after(Instant::now(), delay), f)
    }

    /// Runs `f` at `deadline` (never earlier); see [`call_later`](LoopHandle::call_later).
    pub fn call_at(
        &mut self,
        deadline: Instant,
        f: impl FnOnce(&mut LoopHandle<S>, TimerId) + 'static,
    ) -> TimerId {
        self.timers.insert(deadline, Action::Once(Box::new(f)))
    }

    /// Runs `f` every `period`, first one period from now, until cancelled (from anywhere,
    /// the callback itself included, with the id it receives). A tick that comes late does
    /// not shift the schedule; ticks missed entirely (the loop was busy for more than a
    /// period) are skipped, not run in a burst. A zero period runs once per iteration and
    /// makes the loop's wait zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sockloop::EventLoop;
    ///
    /// let mut event_loop = EventLoop::with_state(0u32)?;
    /// event_loop.call_every(Duration::from_millis(1), |lp, me| {
    ///     *lp.state_mut() += 1;
    ///     if *lp.state() == 3 {
    ///         lp.cancel(me);
    ///     }
    /// });
    /// event_loop.run(None, None)?; // returns once the timer is cancelled
    /// assert_eq!(*event_loop.state(), 3);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn call_every(
        &mut self,
        period: Duration,
        f: impl FnMut(&mut LoopHandle<S>, TimerId) + 'static,
    ) -> TimerId {
        let first = deadline_after(Instant::now(), period);
        self.timers
            .insert(first, Action::Every(period, Box::new(f)))
    }

    /// Cancels a timer. Returns false if it already fired (a one-shot timer) or was
    /// cancelled; a stale id never cancels another timer.
    pub fn cancel(&mut self, timer: TimerId) -> bool {
        self.timers.cancel(timer)
    }

    /// The number of pending timers (channel timeouts included).
    pub fn timers(&self) -> usize {
        self.timers.len()
    }

    /// Stops [`run`](crate::EventLoop::run) after the current iteration (graceful stop).
    pub fn stop(&mut self) {
        if self.stop.is_none() {
            self.stop = Some(Stop::AfterIteration);
        }
    }

    /// Stops [`run`](crate::EventLoop::run) right after the running hook or callback
    /// returns (asyncore's `ExitNow`). Events not yet dispatched in this iteration are
    /// reported again by the next wait (readiness is level-triggered).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use std::time::Duration;
    /// use sockloop::{Channel, Context, Dispatcher, EventLoop};
    ///
    /// struct Quit;
    /// impl Dispatcher for Quit {
    ///     fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
    ///         ctx.handle().stop_now();
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut event_loop = EventLoop::new()?;
    /// let (a, mut b) = Channel::pair()?;
    /// b.send(b"q")?;
    /// event_loop.add(a, Quit)?;
    /// event_loop.run(Some(Duration::from_secs(5)), None)?; // returns after the hook
    /// assert_eq!(event_loop.len(), 1);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn stop_now(&mut self) {
        self.stop = Some(Stop::Now);
    }

    /// A handle for other threads: wake the loop, run closures on it (with this handle and
    /// the state), stop it. All remotes share one eventfd, registered with the backend on
    /// the first call.
    ///
    /// # Errors
    ///
    /// What eventfd(2) or the backend's registration reports.
    pub fn remote(&mut self) -> io::Result<Remote<S>> {
        if self.inbox.is_none() {
            let inbox = Inbox::new()?;
            self.selector
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
    /// A handler does not keep [`run`](crate::EventLoop::run) going by itself (a client's loop
    /// should end when its channels are done); to wait for nothing but signals, use
    /// [`run_forever`](crate::EventLoop::run_forever).
    ///
    /// While a handler for a signal is installed, the signal does not have its previous
    /// disposition (for `SIGINT`, the default action: terminate). The disposition it had
    /// before the process's first handler for it (in any loop) is recorded, and restored
    /// when the last one is removed ([`remove_signal_handler`](LoopHandle::remove_signal_handler),
    /// or dropping its loop): `SIGINT` terminates again, a signal the program ignored is
    /// ignored again. A handler added after that is installed afresh.
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
    /// event_loop.add_signal_handler(signal::SIGUSR1, |lp, sig| {
    ///     assert_eq!(sig, signal::SIGUSR1);
    ///     lp.close_all();
    ///     lp.stop();
    /// })?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn add_signal_handler(
        &mut self,
        signal: i32,
        f: impl FnMut(&mut LoopHandle<S>, i32) + 'static,
    ) -> io::Result<()> {
        if self.signals.is_none() {
            let signals = Signals::new()?;
            self.selector
                .update(signals.fd(), SIGNAL_KEY, Interest::NONE, Interest::READABLE)?;
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

    /// Closes every channel and stops [`run`](crate::EventLoop::run) when any of `signals`
    /// arrives: the graceful exit a server wants on `SIGINT` and `SIGTERM`.
    ///
    /// # Errors
    ///
    /// As [`add_signal_handler`](LoopHandle::add_signal_handler).
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
    ///
    /// If no other loop of the process handles `signal`, its disposition from before the
    /// first handler is restored (see [`add_signal_handler`](LoopHandle::add_signal_handler)):
    /// after removing a `SIGINT` handler, `SIGINT` terminates the process again.
    pub fn remove_signal_handler(&mut self, signal: i32) -> bool {
        self.signals.as_mut().is_some_and(|s| s.remove(signal))
    }

    fn check_addable(&self, channel: &Channel) -> io::Result<()> {
        if channel.is_closed() {
            return Err(invalid("cannot add a closed channel"));
        }
        if channel.token().is_some() {
            return Err(invalid("the channel already belongs to a loop"));
        }
        if self.map.slot_count() + 2 > u32::MAX as usize {
            return Err(invalid("too many channels (the limit is 2^32)"));
        }
        Ok(())
    }

    /// Puts a checked channel in a slot.
    fn insert(
        &mut self,
        mut channel: Channel,
        dispatcher: Box<dyn Dispatcher<S>>,
        label: &'static str,
    ) -> io::Result<Token> {
        self.check_addable(&channel)?;
        if let Some(d) = channel.deadlines.as_mut() {
            d.stamp_activity(Instant::now());
        }
        Ok(self.map.insert(|token| {
            channel.join_loop(token, label);
            Entry {
                channel,
                dispatcher,
                reg: Registration::default(),
            }
        }))
    }

    /// Deregisters and closes a channel's handle (the channel stays where it is), and
    /// cancels its timer.
    pub(crate) fn deregister_and_close(&mut self, channel: &mut Channel, reg: &mut Registration) {
        if let (Some(fd), Some(token)) = (channel.own_fd(), channel.token()) {
            if !reg.registered.is_empty() {
                // A failure here means the fd is already gone from the backend (closed
                // behind our back); closing proceeds either way.
                let _ = self.selector.deregister_before_close(
                    fd,
                    FIRST_CHANNEL_KEY + token.index as usize,
                    reg.registered,
                    channel.is_sole_reference(),
                );
            }
        }
        deadline::disarm(&mut self.timers, &mut reg.armed);
        reg.registered = Interest::NONE;
        channel.close_fd();
    }

    /// Frees the busy slot `index` whose channel closed during a dispatch and drops its
    /// entry.
    pub(crate) fn free_slot(&mut self, index: u32, entry: Box<Entry<S>>) {
        self.map.free(index);
        self.drop_entry(entry);
    }

    /// Drops a removed entry (a panic in the dispatcher's `Drop` is caught and logged).
    fn drop_entry(&self, entry: Box<Entry<S>>) {
        if self.catch_panics {
            let label = entry.channel.label();
            if catch_unwind(AssertUnwindSafe(move || drop(entry))).is_err() {
                crate::report::error!(
                    "panic while dropping the dispatcher of a closed {} channel",
                    crate::channel::short_type_name(label)
                );
            }
        } else {
            drop(entry);
        }
    }
}

/// Running callbacks (timers, signals, remote calls) with their panics caught.
impl<S: 'static> LoopHandle<S> {
    /// Runs a timer, signal or remote callback, catching a panic.
    pub(crate) fn callback(
        &mut self,
        f: impl FnOnce(&mut LoopHandle<S>),
    ) -> Result<(), Box<dyn Any + Send>> {
        catch_unwind(AssertUnwindSafe(|| f(self)))
    }

    /// After a callback's bookkeeping: a panic is logged and the loop goes on (as for
    /// hooks), or it propagates if [`set_catch_panics`](EventLoop::set_catch_panics) is off.
    pub(crate) fn survive(&self, what: &str, outcome: Result<(), Box<dyn Any + Send>>) {
        if let Err(payload) = outcome {
            if !self.catch_panics {
                resume_unwind(payload);
            }
            report::error!(
                "panic in a {what} callback: {}; the loop goes on",
                panic_message(&*payload)
            );
        }
    }
}

impl<S> std::fmt::Debug for LoopHandle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopHandle")
            .field("backend", &self.selector.backend())
            .field("channels", &self.map.len())
            .field("timers", &self.timers.len())
            .finish_non_exhaustive()
    }
}

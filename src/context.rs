//! The channel map (`Core`) and what a hook receives (`Context`).

use std::any::Any;
use std::io;
use std::ops::{Deref, DerefMut};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::channel::Channel;
use crate::dispatcher::Dispatcher;
use crate::event_loop::EventLoop;
use crate::interest::Interest;
use crate::sys::{Selector, FIRST_CHANNEL_KEY};
use crate::timer::{deadline_after, Action, TimerId, Timers};
use crate::token::Token;

/// A channel in the map with its dispatcher.
pub(crate) struct Entry {
    pub(crate) channel: Channel,
    pub(crate) dispatcher: Box<dyn Dispatcher>,
}

pub(crate) enum SlotState {
    Vacant,
    /// Taken out of the map while one of its hooks runs.
    Busy,
    /// Boxed: a dispatch moves the entry out and back, 8 bytes instead of ~120, and a
    /// slot stays small enough that 1,000 of them fit in L1.
    Occupied(Box<Entry>),
}

pub(crate) struct Slot {
    pub(crate) generation: u32,
    /// Queued in `Core::dirty` (re-ask the predicates before the next wait).
    pub(crate) dirty: bool,
    pub(crate) state: SlotState,
}

/// How [`run`](crate::EventLoop::run) should stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Return after the current iteration.
    AfterIteration,
    /// Return right after the current hook (asyncore's `ExitNow`).
    Now,
}

/// The channel map and everything a hook may change: asyncore's `socket_map`, owned.
pub(crate) struct Core {
    pub(crate) slots: Vec<Slot>,
    /// Slots free for reuse now.
    pub(crate) free: Vec<u32>,
    /// Slots freed during this iteration: reusable from the next one, so no event already
    /// read from the OS can reach a new channel in a reused slot.
    pub(crate) pending_free: Vec<u32>,
    pub(crate) dirty: Vec<u32>,
    pub(crate) selector: Selector,
    pub(crate) timers: Timers,
    /// The time read right after the last wait (libuv's `uv_now`): the base for idle and
    /// back-off deadlines, read once per iteration instead of once per event.
    pub(crate) now: Instant,
    pub(crate) len: usize,
    pub(crate) stop: Option<Stop>,
    pub(crate) log_warnings: bool,
    pub(crate) catch_panics: bool,
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

impl Core {
    pub(crate) fn new(selector: Selector) -> Core {
        Core {
            slots: Vec::new(),
            free: Vec::new(),
            pending_free: Vec::new(),
            dirty: Vec::new(),
            selector,
            timers: Timers::default(),
            now: Instant::now(),
            len: 0,
            stop: None,
            log_warnings: false,
            catch_panics: true,
        }
    }

    fn check_addable(&self, channel: &Channel) -> io::Result<()> {
        if channel.is_closed() {
            return Err(invalid("cannot add a closed channel"));
        }
        if channel.token.is_some() {
            return Err(invalid("the channel already belongs to a loop"));
        }
        if self.slots.len() + 2 > u32::MAX as usize {
            return Err(invalid("too many channels (the limit is 2^32)"));
        }
        Ok(())
    }

    /// The token the `k`-th next insert will get (k = 0: the next one).
    fn upcoming(&self, k: usize) -> Token {
        let index = match self.free.len().checked_sub(k + 1) {
            Some(i) => self.free[i],
            None => (self.slots.len() + k - self.free.len()) as u32,
        };
        let generation = self.slots.get(index as usize).map_or(0, |s| s.generation);
        Token { index, generation }
    }

    /// Adds two channels whose dispatchers need each other's token.
    pub(crate) fn insert_pair<A: Dispatcher, B: Dispatcher>(
        &mut self,
        (a, b): (Channel, Channel),
        make: impl FnOnce(Token, Token) -> (A, B),
    ) -> io::Result<(Token, Token)> {
        self.check_addable(&a)?;
        self.check_addable(&b)?;
        let (da, db) = make(self.upcoming(0), self.upcoming(1));
        let ta = self.insert(a, da)?;
        let tb = self.insert(b, db)?;
        Ok((ta, tb))
    }

    /// Adds a channel whose dispatcher needs its own token.
    pub(crate) fn insert_with<D: Dispatcher>(
        &mut self,
        channel: Channel,
        make: impl FnOnce(Token) -> D,
    ) -> io::Result<Token> {
        self.check_addable(&channel)?;
        let dispatcher = make(self.upcoming(0));
        self.insert(channel, dispatcher)
    }

    pub(crate) fn insert<D: Dispatcher>(
        &mut self,
        mut channel: Channel,
        dispatcher: D,
    ) -> io::Result<Token> {
        self.check_addable(&channel)?;
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = self.slots.len() as u32; // checked above
                self.slots.push(Slot {
                    generation: 0,
                    dirty: false,
                    state: SlotState::Vacant,
                });
                i
            }
        };
        let slot = &mut self.slots[index as usize];
        let token = Token {
            index,
            generation: slot.generation,
        };
        channel.token = Some(token);
        channel.label = short_type_name::<D>();
        channel.registered = Interest::NONE;
        if let Some(d) = channel.deadlines.as_mut().filter(|d| d.idle.is_some()) {
            d.last_active = Some(Instant::now());
        }
        slot.state = SlotState::Occupied(Box::new(Entry {
            channel,
            dispatcher: Box::new(dispatcher),
        }));
        self.len += 1;
        self.mark_dirty(index);
        Ok(token)
    }

    pub(crate) fn mark_dirty(&mut self, index: u32) {
        if let Some(slot) = self.slots.get_mut(index as usize) {
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(index);
            }
        }
    }

    /// The slot of a live token (occupied or busy, same generation).
    fn live_slot(&mut self, token: Token) -> Option<&mut Slot> {
        self.slots
            .get_mut(token.index as usize)
            .filter(|s| s.generation == token.generation && !matches!(s.state, SlotState::Vacant))
    }

    pub(crate) fn contains(&self, token: Token) -> bool {
        self.slots.get(token.index as usize).is_some_and(|s| {
            s.generation == token.generation && !matches!(s.state, SlotState::Vacant)
        })
    }

    pub(crate) fn channels(&self) -> impl Iterator<Item = (Token, &Channel)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| match &slot.state {
                SlotState::Occupied(e) => Some((
                    Token {
                        index: index as u32,
                        generation: slot.generation,
                    },
                    &e.channel,
                )),
                _ => None,
            })
    }

    pub(crate) fn entry(&self, token: Token) -> Option<&Entry> {
        let slot = self.slots.get(token.index as usize)?;
        match &slot.state {
            SlotState::Occupied(e) if slot.generation == token.generation => Some(&**e),
            _ => None,
        }
    }

    /// Mutable access to a channel that is not running a hook; marks it for re-asking.
    pub(crate) fn entry_mut(&mut self, token: Token) -> Option<&mut Entry> {
        self.live_slot(token)?;
        self.mark_dirty(token.index);
        match &mut self.slots[token.index as usize].state {
            SlotState::Occupied(e) => Some(&mut **e),
            _ => None,
        }
    }

    /// Deregisters and closes a channel's handle (the channel stays where it is), and
    /// cancels its timer.
    pub(crate) fn release(&mut self, channel: &mut Channel) {
        if let (Some(fd), Some(token)) = (channel.fd(), channel.token) {
            if !channel.registered.is_empty() {
                // A failure here means the fd is already gone from the backend (closed
                // behind our back); closing proceeds either way.
                let _ = self.selector.update(
                    fd,
                    FIRST_CHANNEL_KEY + token.index as usize,
                    channel.registered,
                    Interest::NONE,
                );
            }
        }
        if let Some((_, id)) = channel.deadlines.as_mut().and_then(|d| d.armed.take()) {
            self.timers.cancel(id);
        }
        channel.registered = Interest::NONE;
        channel.release();
    }

    pub(crate) fn call_at(
        &mut self,
        deadline: Instant,
        f: impl FnOnce(&mut EventLoop) + 'static,
    ) -> TimerId {
        self.timers.insert(deadline, Action::Once(Box::new(f)))
    }

    pub(crate) fn call_later(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut EventLoop) + 'static,
    ) -> TimerId {
        self.call_at(deadline_after(Instant::now(), delay), f)
    }

    pub(crate) fn call_every(
        &mut self,
        period: Duration,
        f: impl FnMut(&mut EventLoop) + 'static,
    ) -> TimerId {
        let first = deadline_after(Instant::now(), period);
        self.timers
            .insert(first, Action::Every(period, Box::new(f)))
    }

    /// Frees a slot whose channel is closed: the entry is dropped (a panic in the
    /// dispatcher's `Drop` is caught and logged) and the slot is reusable next iteration.
    pub(crate) fn free_slot(&mut self, index: u32, entry: Option<Box<Entry>>) {
        let slot = &mut self.slots[index as usize];
        slot.state = SlotState::Vacant;
        slot.generation = slot.generation.wrapping_add(1);
        self.pending_free.push(index);
        self.len -= 1;
        if let Some(entry) = entry {
            self.drop_entry(entry);
        }
    }

    fn drop_entry(&self, entry: Box<Entry>) {
        if self.catch_panics {
            let label = entry.channel.label;
            if catch_unwind(AssertUnwindSafe(move || drop(entry))).is_err() {
                crate::report::error!(
                    "panic while dropping the dispatcher of a closed {label} channel"
                );
            }
        } else {
            drop(entry);
        }
    }

    /// Closes a channel that is not running a hook. Returns false for a stale token.
    pub(crate) fn close(&mut self, token: Token) -> bool {
        let Some(slot) = self.live_slot(token) else {
            return false;
        };
        match std::mem::replace(&mut slot.state, SlotState::Vacant) {
            SlotState::Occupied(mut entry) => {
                self.release(&mut entry.channel);
                self.free_slot(token.index, Some(entry));
                true
            }
            other => {
                slot.state = other;
                false
            }
        }
    }

    /// Closes every channel not running a hook.
    pub(crate) fn close_all(&mut self) {
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            if matches!(slot.state, SlotState::Occupied(_)) {
                let token = Token {
                    index: index as u32,
                    generation: slot.generation,
                };
                self.close(token);
            }
        }
    }
}

/// Arms a loop timer for a channel's earliest deadline (idle, connect, back-off) if
/// none is armed for that time or earlier. A later deadline is left to the armed timer,
/// which re-arms when it fires early for what is then due: activity on a channel with
/// an idle timeout costs no timer operation.
pub(crate) fn arm_deadline(timers: &mut Timers, token: Token, channel: &mut Channel) {
    let state = channel.state();
    let Some(d) = channel.deadlines.as_mut() else {
        return;
    };
    let Some(at) = d.next(state) else {
        return;
    };
    if let Some((armed_at, id)) = d.armed {
        if armed_at <= at {
            return;
        }
        timers.cancel(id);
    }
    let id = timers.insert(at, Action::Channel(token));
    d.armed = Some((at, id));
}

/// "crate::module::Type<Args>" → "Type<Args>", for messages.
fn short_type_name<D>() -> &'static str {
    let full = std::any::type_name::<D>();
    let base = full.split('<').next().unwrap_or(full);
    match base.rfind("::") {
        Some(i) => &full[i + 2..],
        None => full,
    }
}

/// What a hook receives: its own channel (through `Deref`), the other channels, and the
/// loop.
///
/// `Context` dereferences to the hook's [`Channel`], so asyncore's `self.recv(..)`,
/// `self.send(..)` become `ctx.recv(..)`, `ctx.push(..)`.
///
/// # Examples
///
/// A listener that adds every accepted connection as a new channel:
///
/// ```
/// use std::io;
/// use sockloop::{Channel, Context, Dispatcher, SockAddr};
///
/// struct Server;
/// struct Client;
/// impl Dispatcher for Client {}
///
/// impl Dispatcher for Server {
///     fn handle_accepted(&mut self, ctx: &mut Context<'_>, channel: Channel, _: SockAddr) -> io::Result<()> {
///         ctx.add(channel, Client)?;
///         Ok(())
///     }
/// }
/// ```
pub struct Context<'a> {
    pub(crate) token: Token,
    pub(crate) channel: &'a mut Channel,
    pub(crate) core: &'a mut Core,
}

impl Context<'_> {
    /// This channel's token.
    pub fn token(&self) -> Token {
        self.token
    }

    /// Closes this channel now (asyncore's `close`): it is deregistered, its handle is
    /// closed and no further hook runs on it. Idempotent. `handle_close` is not called.
    pub fn close(&mut self) {
        if !self.channel.is_closed() {
            self.core.release(self.channel);
        }
    }

    /// Closes another channel (or this one) without calling its `handle_close`, as
    /// asyncore's `other.close()`. Returns false if `token` names no live channel.
    pub fn close_channel(&mut self, token: Token) -> bool {
        if token == self.token() {
            let was_open = !self.channel.is_closed();
            self.close();
            was_open
        } else {
            self.core.close(token)
        }
    }

    /// Closes every channel, this one included.
    pub fn close_all(&mut self) {
        self.core.close_all();
        self.close();
    }

    /// Adds a channel to the loop; it is polled from the next iteration.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the channel is closed or already in a loop.
    pub fn add<D: Dispatcher>(&mut self, channel: Channel, dispatcher: D) -> io::Result<Token> {
        self.core.insert(channel, dispatcher)
    }

    /// Adds a channel whose dispatcher is made from the token it will get; see
    /// [`EventLoop::add_with`](crate::EventLoop::add_with).
    ///
    /// # Errors
    ///
    /// As [`add`](Context::add); `make` is not called then.
    pub fn add_with<D: Dispatcher>(
        &mut self,
        channel: Channel,
        make: impl FnOnce(Token) -> D,
    ) -> io::Result<Token> {
        self.core.insert_with(channel, make)
    }

    /// Adds two channels whose dispatchers need each other's token (a proxy's two sides);
    /// see [`EventLoop::add_pair`](crate::EventLoop::add_pair).
    ///
    /// # Errors
    ///
    /// As [`add`](Context::add), for either channel; then neither is added and `make` is
    /// not called.
    pub fn add_pair<A: Dispatcher, B: Dispatcher>(
        &mut self,
        channels: (Channel, Channel),
        make: impl FnOnce(Token, Token) -> (A, B),
    ) -> io::Result<(Token, Token)> {
        self.core.insert_pair(channels, make)
    }

    /// Another channel of the loop (or this one), to push output to it, read its state or
    /// close it. Returns `None` for a stale token. The channel's predicates are re-asked
    /// before the next wait.
    pub fn channel_mut(&mut self, token: Token) -> Option<&mut Channel> {
        if token == self.token() {
            return Some(self.channel);
        }
        self.core.entry_mut(token).map(|e| &mut e.channel)
    }

    /// Another channel's dispatcher, if it is a `D`. `None` for this channel's own
    /// dispatcher (it is `self` in the hook), a stale token or another type.
    pub fn dispatcher_mut<D: Dispatcher>(&mut self, token: Token) -> Option<&mut D> {
        let entry = self.core.entry_mut(token)?;
        (&mut *entry.dispatcher as &mut dyn Any).downcast_mut::<D>()
    }

    /// Both at once: another channel and its dispatcher (if it is a `D`).
    pub fn get_mut<D: Dispatcher>(&mut self, token: Token) -> Option<(&mut Channel, &mut D)> {
        let entry = self.core.entry_mut(token)?;
        let d = (&mut *entry.dispatcher as &mut dyn Any).downcast_mut::<D>()?;
        Some((&mut entry.channel, d))
    }

    /// Asks the loop to re-ask `token`'s `readable()`/`writable()` before the next wait
    /// (needed in [`Mode::Scalable`](crate::Mode::Scalable) when a predicate depends on
    /// state the loop cannot see change).
    pub fn touch(&mut self, token: Token) {
        if token != self.token() && self.core.contains(token) {
            self.core.mark_dirty(token.index);
        }
    }

    /// The number of channels in the loop.
    pub fn len(&self) -> usize {
        self.core.len
    }

    /// True if the loop has no channels (never, while a hook runs: its own is there).
    pub fn is_empty(&self) -> bool {
        self.core.len == 0
    }

    /// Stops [`run`](crate::EventLoop::run) after the current iteration (graceful stop).
    pub fn stop(&mut self) {
        if self.core.stop.is_none() {
            self.core.stop = Some(Stop::AfterIteration);
        }
    }

    /// Stops [`run`](crate::EventLoop::run) right after this hook returns (asyncore's
    /// `ExitNow`). Events not yet dispatched in this iteration are reported again by the
    /// next wait (readiness is level-triggered).
    pub fn stop_now(&mut self) {
        self.core.stop = Some(Stop::Now);
    }

    /// Runs `f` on the loop thread after `delay` (never earlier); see
    /// [`EventLoop::call_later`].
    pub fn call_later(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut EventLoop) + 'static,
    ) -> TimerId {
        self.core.call_later(delay, f)
    }

    /// Runs `f` at `deadline` (never earlier); see [`EventLoop::call_at`].
    pub fn call_at(
        &mut self,
        deadline: Instant,
        f: impl FnOnce(&mut EventLoop) + 'static,
    ) -> TimerId {
        self.core.call_at(deadline, f)
    }

    /// Runs `f` every `period` until cancelled; see [`EventLoop::call_every`].
    pub fn call_every(
        &mut self,
        period: Duration,
        f: impl FnMut(&mut EventLoop) + 'static,
    ) -> TimerId {
        self.core.call_every(period, f)
    }

    /// Cancels a timer; see [`EventLoop::cancel`].
    pub fn cancel(&mut self, timer: TimerId) -> bool {
        self.core.timers.cancel(timer)
    }

    /// Logs `msg` about this channel at warning level if the loop logs warnings
    /// ([`EventLoop::set_log_warnings`](crate::EventLoop::set_log_warnings); off by
    /// default, like asyncore's `ignore_log_types`).
    pub fn log_warning(&self, msg: &str) {
        if self.core.log_warnings {
            crate::report::warning!("{msg} on {}", self.channel);
        }
    }
}

impl Deref for Context<'_> {
    type Target = Channel;
    fn deref(&self) -> &Channel {
        self.channel
    }
}

impl DerefMut for Context<'_> {
    fn deref_mut(&mut self) -> &mut Channel {
        self.channel
    }
}

//! Event routing: from what the OS reported to the channel's hooks (asyncore's
//! `handle_*_event`, `readwrite` and the error handling around them).

use std::any::Any;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::Instant;

use crate::channel::{Channel, Pending, State};
use crate::context::Context;
use crate::deadline;
use crate::dispatcher::{sealed::Internal, Dispatcher};
use crate::errors::{is_resource_exhaustion, ErrorRoute};
use crate::handle::{LoopHandle, Stop};
use crate::interest::{Interest, Ready};
use crate::map::Entry;
use crate::report::{self, panic_message};
use crate::timer::Action;

/// One channel taken out of the map while its hooks run.
pub(crate) struct Router<'a, S> {
    /// The channel, its registration and the loop, as the hooks get them: built once
    /// per dispatch, not once per hook.
    pub(crate) ctx: Context<'a, S>,
    pub(crate) dispatcher: &'a mut dyn Dispatcher<S>,
    /// `handle_close` was called: a panic from now on gets no second cleanup call.
    pub(crate) close_called: bool,
}

/// How one hook call ended (a panic is reported where it is caught).
enum Outcome {
    Done(io::Result<()>),
    Panicked,
}

/// Reports a caught panic with its message, the hook and the channel. Out of line: the
/// path taken per message never panics.
#[cold]
#[inline(never)]
pub(crate) fn report_panic(what: &str, channel: &Channel, payload: Box<dyn Any + Send>) {
    report::error!(
        "panic in {what} on {channel}: {}; closing the channel",
        panic_message(&*payload)
    );
}

impl<S: 'static> Router<'_, S> {
    fn is_open(&self) -> bool {
        !self.ctx.channel.is_closed()
    }

    fn stopping_now(&self) -> bool {
        self.ctx.handle.stop == Some(Stop::Now)
    }

    #[inline]
    fn call(
        &mut self,
        name: &str,
        hook: impl FnOnce(&mut dyn Dispatcher<S>, &mut Context<'_, S>) -> io::Result<()>,
    ) -> Outcome {
        let (dispatcher, ctx) = (&mut *self.dispatcher, &mut self.ctx);
        let result = if ctx.handle.catch_panics {
            catch_unwind(AssertUnwindSafe(|| hook(dispatcher, ctx)))
        } else {
            Ok(hook(dispatcher, ctx))
        };
        // The next hook's first push may go at once again (what this one gathered is
        // flagged `GATHERED` and sent by `settle`, through `handle_write`).
        self.ctx.channel.gathering = false;
        match result {
            Ok(r) => Outcome::Done(r),
            Err(payload) => {
                report_panic(name, self.ctx.channel, payload);
                Outcome::Panicked
            }
        }
    }

    fn close(&mut self) {
        self.ctx.close();
    }

    /// Runs a hook and routes its result: would-block is nothing, a disconnect is a close,
    /// anything else goes to `handle_error`.
    fn hook(
        &mut self,
        name: &str,
        hook: impl FnOnce(&mut dyn Dispatcher<S>, &mut Context<'_, S>) -> io::Result<()>,
    ) {
        if !self.is_open() {
            return;
        }
        let outcome = self.call(name, hook);
        self.finish(outcome);
    }

    /// After a hook: an error is routed; a panic (already reported) gets the channel its
    /// one cleanup call, `handle_close`, as asyncore's `handle_error` ends in it.
    #[inline(never)]
    fn finish(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Done(Ok(())) => {}
            Outcome::Done(Err(e)) => self.error(e),
            Outcome::Panicked => self.close_event(),
        }
    }

    /// Routes an error (asyncore's `except OSError` around every event).
    pub(crate) fn error(&mut self, err: io::Error) {
        if !self.is_open() {
            return;
        }
        match ErrorRoute::of(&err) {
            ErrorRoute::Ignore => {}
            ErrorRoute::Close => self.close_event(),
            ErrorRoute::HandleError => {
                match self.call("handle_error", |d, ctx| d.handle_error(ctx, err)) {
                    Outcome::Done(Ok(())) => {}
                    Outcome::Done(Err(_)) | Outcome::Panicked => self.close_event(),
                }
            }
        }
    }

    /// `handle_close`; the channel is closed right after it, so it runs at most once.
    pub(crate) fn close_event(&mut self) {
        if !self.is_open() || self.close_called {
            return self.close();
        }
        self.close_called = true;
        if let Outcome::Done(Err(e)) = self.call("handle_close", |d, ctx| d.handle_close(ctx)) {
            report::error!("handle_close failed on {} ({e})", self.ctx.channel);
        }
        self.close();
    }

    /// After hooks ran: end of file seen during them means `handle_eof` now; a
    /// disconnect, a drained `close_when_done` queue or `request_close` (from any hook,
    /// `handle_eof` included) means `handle_close`.
    #[inline]
    pub(crate) fn settle(&mut self) {
        if self.ctx.channel.pending.any() {
            self.settle_pending();
        }
    }

    fn settle_pending(&mut self) {
        if !self.is_open() || self.stopping_now() {
            return;
        }
        if self.ctx.channel.pending.has(Pending::GATHERED) {
            // Output gathered after a first send: out now, through `handle_write` as any
            // queued output (one send, or none if the OS would block: then the write
            // event), before the loop waits and without an `epoll_ctl` round trip.
            self.ctx.channel.pending.clear(Pending::GATHERED);
            if self.ctx.channel.has_pending_output() && !self.ctx.channel.pending.close() {
                self.write_event();
            }
        }
        if self.ctx.channel.pending.has(Pending::DRAINED) && !self.ctx.channel.pending.close() {
            self.ctx.channel.pending.clear(Pending::DRAINED);
            self.hook("handle_drained", |d, ctx| d.handle_drained(ctx));
        }
        let pending = self.ctx.channel.pending;
        if pending.has(Pending::EOF_UNREPORTED) && !pending.close() {
            self.ctx.channel.pending.clear(Pending::EOF_UNREPORTED);
            self.hook("handle_eof", |d, ctx| d.handle_eof(ctx));
        }
        if self.is_open() && self.ctx.channel.pending.close() && !self.stopping_now() {
            self.close_event();
        }
    }

    /// The channel's loop timer fired: resume accepting after a back-off, or report an
    /// expired connect or idle timeout.
    pub(crate) fn deadline(&mut self, now: Instant) {
        self.ctx.reg.armed = None;
        let connecting = self.ctx.channel.is_connecting();
        if let Some(timeout) = self.ctx.channel.deadlines_mut().expire(connecting, now) {
            self.hook("handle_timeout", |d, ctx| d.handle_timeout(ctx, timeout));
        }
        self.settle();
    }

    /// Dispatches one readiness report. Select reports read, write and except separately
    /// (three phases); poll and epoll report them together, with hang-up and error bits.
    #[inline(always)]
    pub(crate) fn dispatch(&mut self, ready: Ready) {
        if ready == Ready::READ
            && self.ctx.channel.state() == State::Connected
            && self.ctx.channel.deadlines.is_none()
        {
            // The common case, plain input on a connected channel without timeouts: what
            // the general path does for it, without its tests, inlined into the loop's
            // dispatch.
            // (Connected, so open: no `is_open` test as in `hook`.)
            match self.call("handle_read", |d, ctx| d.handle_read(ctx)) {
                Outcome::Done(Ok(())) => {}
                outcome => self.finish(outcome),
            }
            return self.settle();
        }
        self.dispatch_general(ready)
    }

    #[inline(never)]
    fn dispatch_general(&mut self, ready: Ready) {
        if ready.intersects(Ready::NVAL) {
            // The fd was closed behind the loop's back.
            return self.close_event();
        }
        deadline::stamp_activity(&mut self.ctx.channel.deadlines, self.ctx.handle.now);
        if ready == Ready::READ && self.ctx.channel.state() == State::Connected {
            // Plain input on a connected channel with a timeout set.
            self.hook("handle_read", |d, ctx| d.handle_read(ctx));
            return self.settle();
        }
        // Each event is settled before the next, as select's three phases are, so every
        // backend runs the same hooks in the same order.
        let hup = ready.intersects(Ready::HUP | Ready::ERR);
        let wants = self.ctx.reg.registered;
        if ready.intersects(Ready::READ) || (hup && wants.is_readable()) {
            self.ctx.channel.pending.clear(Pending::INPUT);
            self.read_event();
            let progressed = self.ctx.channel.pending.has(Pending::INPUT | Pending::EOF);
            self.settle();
            if hup && progressed {
                // Hang-up with input still queued, and the hook is reading it: keep
                // reading until end of file, so nothing is lost; the close follows the
                // data. A hook that reads nothing gets the write event and the close
                // below instead of the same read event forever.
                return;
            }
        }
        if self.is_open()
            && !self.stopping_now()
            && (ready.intersects(Ready::WRITE) || (hup && wants.is_writable()))
        {
            self.write_event();
            self.settle();
        }
        if self.is_open() && !self.stopping_now() && ready.intersects(Ready::PRI) {
            self.expt_event();
            self.settle();
        }
        if self.is_open() && !self.stopping_now() && hup {
            self.close_event();
        }
    }

    fn read_event(&mut self) {
        match self.ctx.channel.state() {
            State::Accepting => self.accept_event(),
            State::Connecting => {
                if self.connect_event() && !self.stopping_now() {
                    self.hook("handle_read", |d, ctx| d.handle_read(ctx));
                }
            }
            _ => self.hook("handle_read", |d, ctx| d.handle_read(ctx)),
        }
    }

    /// `handle_accept`, with the back-off on resource exhaustion.
    fn accept_event(&mut self) {
        match self.call("handle_accept", |d, ctx| d.handle_accept(ctx)) {
            Outcome::Done(Err(e)) if is_resource_exhaustion(&e) => self.pause_accepting(&e),
            outcome => {
                let backed_off = self
                    .ctx
                    .channel
                    .deadlines
                    .as_mut()
                    .is_some_and(|d| d.end_backoff());
                if backed_off {
                    log::info!("accepting again on {}", self.ctx.channel);
                }
                self.finish(outcome);
            }
        }
    }

    fn pause_accepting(&mut self, err: &io::Error) {
        if self
            .ctx
            .channel
            .deadlines_mut()
            .pause_accepting(self.ctx.handle.now)
        {
            report::warning!(
                "accept failed on {} ({err}); pausing accepts, retrying with back-off",
                self.ctx.channel
            );
        }
    }

    fn write_event(&mut self) {
        match self.ctx.channel.state() {
            State::Accepting => {}
            State::Connecting => {
                if self.connect_event() && !self.stopping_now() {
                    self.hook("handle_write", |d, ctx| d.handle_write(ctx));
                }
            }
            _ => self.hook("handle_write", |d, ctx| d.handle_write(ctx)),
        }
    }

    fn expt_event(&mut self) {
        match self.ctx.channel.take_error() {
            Ok(Some(_)) => self.close_event(),
            // Ok(None) on a socket; an error for a plain fd, which has no SO_ERROR.
            _ => self.hook("handle_expt", |d, ctx| d.handle_expt(ctx)),
        }
    }

    /// asyncore's `handle_connect_event`: check `SO_ERROR`, mark connected, then
    /// `handle_connect`, then send what was queued before the connect. Returns true if the
    /// channel is connected and open afterwards.
    fn connect_event(&mut self) -> bool {
        match self.ctx.channel.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => {
                self.error(e);
                return false;
            }
        }
        self.ctx.channel.set_connected();
        self.hook("handle_connect", |d, ctx| d.handle_connect(ctx));
        if self.is_open() {
            if let Err(e) = self.ctx.channel.flush() {
                self.error(e);
            }
        }
        self.is_open() && self.ctx.channel.is_connected()
    }
}

/// What the loop does with a channel taken out of the map, and with the timers, during
/// an iteration (here rather than in `handle.rs`, which does not know the router).
impl<S: 'static> LoopHandle<S> {
    /// Runs the timers due now. Timers set meanwhile wait for a later iteration, so a
    /// zero-delay timer that re-arms itself cannot hold the loop in one pass.
    /// `now` is the time read right after the wait: never later than the real time, so
    /// never early. Returns how many timers ran.
    pub(crate) fn run_timers(&mut self, now: Instant) -> usize {
        let mut ran = 0;
        if self.timers.len() == 0 {
            return ran;
        }
        let set_before = self.timers.mark();
        while self.stop != Some(Stop::Now) {
            let Some(due) = self.timers.pop_due(now, set_before) else {
                break;
            };
            ran += 1;
            match due.action {
                Action::Once(f) => {
                    let outcome = self.callback(|lp| f(lp, due.id));
                    self.survive("timer", outcome);
                }
                Action::Every(period, mut f) => {
                    let outcome = self.callback(|lp| f(lp, due.id));
                    if outcome.is_err() {
                        // A periodic timer that panicked is not re-armed.
                        self.timers.cancel(due.id);
                    }
                    let now = Instant::now();
                    self.timers.finish(due.id, due.deadline, now, period, f);
                    self.survive("periodic timer", outcome);
                }
                Action::Channel(token) => {
                    if self.contains(token) {
                        self.route(token.index as usize, |router| router.deadline(now));
                    }
                }
            }
        }
        ran
    }

    /// Takes the channel in slot `index` out of the map, runs `f` on it, and puts it back
    /// (or frees the slot if it closed). Returns false if the slot holds no channel.
    #[inline(always)]
    pub(crate) fn route(&mut self, index: usize, f: impl FnOnce(&mut Router<'_, S>)) -> bool {
        let Some((token, mut entry)) = self.map.check_out(index) else {
            return false;
        };
        let Entry {
            channel,
            dispatcher,
            reg,
        } = &mut *entry;
        let mut router = Router {
            ctx: Context {
                token,
                channel,
                reg,
                handle: &mut *self,
            },
            dispatcher: &mut **dispatcher,
            close_called: false,
        };
        // The hook, then (while the entry is at hand and hot in cache) its predicates, in
        // one unwind guard: a second `catch_unwind` per message cost ~10 instructions.
        // `asking` tells a panic in a predicate from one in a hook or the loop.
        let mut asking = false;
        let run = catch_unwind(AssertUnwindSafe(|| {
            f(&mut router);
            let ch = &*router.ctx.channel;
            // Re-ask the predicates now: if the interest is unchanged, nothing is pending
            // and no deadline needs arming, the refresh pass can skip this channel.
            // Anything that changes it later in this iteration marks it dirty
            // (channel_mut, touch, ...), as for any channel.
            if ch.is_closed() || ch.pending.any() || ch.deadlines.is_some() {
                return false;
            }
            asking = true;
            ask_unguarded(&*router.dispatcher, ch) == router.ctx.reg.registered
        }));
        let settled = match run {
            Ok(settled) => settled,
            // A predicate panicked: the refresh pass asks again and handles it there.
            Err(_) if asking => false,
            Err(payload) => {
                // Panics propagate (`set_catch_panics(false)`): close the channel as a
                // caught panic would, with its one `handle_close` (unless that is what
                // panicked), so no slot stays busy and no registration outlives its fd.
                if catch_unwind(AssertUnwindSafe(|| router.close_event())).is_err() {
                    report::error!("handle_close panicked after a propagating panic");
                }
                let Entry { channel, reg, .. } = &mut *entry;
                self.deregister_and_close(channel, reg);
                self.free_slot(index as u32, entry);
                resume_unwind(payload);
            }
        };
        if entry.channel.is_closed() {
            self.free_slot(index as u32, entry);
        } else {
            self.map.put_back(index, entry);
            if !settled {
                self.map.mark_dirty(index as u32);
            }
        }
        true
    }
}

/// Asks a channel's predicates; the panic's payload if one panicked.
pub(crate) fn ask<S: 'static>(
    dispatcher: &dyn Dispatcher<S>,
    channel: &Channel,
) -> Result<Interest, Box<dyn Any + Send>> {
    catch_unwind(AssertUnwindSafe(|| ask_unguarded(dispatcher, channel)))
}

/// [`ask`] without its unwind guard, for a caller that has one.
#[inline]
fn ask_unguarded<S: 'static>(dispatcher: &dyn Dispatcher<S>, channel: &Channel) -> Interest {
    dispatcher.interest(channel, Internal)
}

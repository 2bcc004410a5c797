//! The `Dispatcher` trait: asyncore's hooks, with asyncore's defaults.

use std::any::Any;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::channel::Channel;
use crate::context::Context;
use crate::interest::Interest;
use crate::timer::Timeout;

/// The most connections the default [`Dispatcher::handle_accept`] accepts per read event
/// during a burst: enough to keep up with connection churn, few enough that a flood of
/// connections cannot starve the loop's other channels.
pub const ACCEPT_BATCH: usize = 64;

static READ_REPORTED: AtomicBool = AtomicBool::new(false);
static ACCEPTED_REPORTED: AtomicBool = AtomicBool::new(false);

/// Reports, once per process and whatever the warning setting, that a default hook met
/// an event only a program missing that hook leaves to it.
#[cold]
fn unhandled_once<S: 'static>(flag: &AtomicBool, ctx: &Context<'_, S>, hook: &str, effect: &str) {
    if !flag.swap(true, Ordering::Relaxed) {
        crate::report::warning!(
            "{} has no {hook}: {effect} (reported once per process; \
             EventLoop::set_log_warnings(true) logs every event)",
            &**ctx
        );
    }
}

/// A channel's behaviour: asyncore's `dispatcher` hooks, with the same names and defaults.
///
/// Implement the hooks you need; the loop calls them with a [`Context`] that gives access
/// to the channel (it dereferences to [`Channel`]) and to the loop's
/// [`LoopHandle`](crate::LoopHandle): other channels, timers, stopping, and the loop's
/// shared state `S` (`()` unless the loop was made with
/// [`EventLoop::with_state`](crate::EventLoop::with_state)). A dispatcher that works in
/// any loop implements `Dispatcher<S>` for every `S`: `impl<S: 'static> Dispatcher<S> for
/// Echo`.
///
/// # Event routing
///
/// * read event: accepting → [`handle_accept`](Dispatcher::handle_accept); connecting →
///   complete the connect (see below), then [`handle_read`](Dispatcher::handle_read);
///   otherwise [`handle_read`](Dispatcher::handle_read).
/// * write event: accepting → ignored; connecting → complete the connect; then
///   [`handle_write`](Dispatcher::handle_write).
/// * exceptional event: a pending `SO_ERROR` → [`handle_close`](Dispatcher::handle_close);
///   otherwise [`handle_expt`](Dispatcher::handle_expt) (out-of-band data).
/// * completing a connect reads `SO_ERROR`: non-zero is routed as an error with that errno;
///   zero marks the channel connected, *then* runs
///   [`handle_connect`](Dispatcher::handle_connect), then sends any output queued before.
/// * a hook returning `Err`: would-block is ignored; disconnect errors (`ECONNRESET`,
///   `ENOTCONN`, `ESHUTDOWN`, `ECONNABORTED`, `EPIPE`, `EBADF`) go to
///   [`handle_close`](Dispatcher::handle_close); anything else to
///   [`handle_error`](Dispatcher::handle_error). End of file seen by `recv`, a disconnect
///   seen by `send`/`recv`, a drained [`close_when_done`](Channel::close_when_done)
///   queue and [`request_close`](Channel::request_close) lead to `handle_close` once the
///   hook returns; end of file first goes to [`handle_eof`](Dispatcher::handle_eof),
///   whose default sends what is still queued and then closes.
/// * on poll and epoll, a hang-up that comes with input keeps delivering read events
///   while the hook reads (so no input is lost); once a read event brings nothing (the
///   hook read nothing, or there was nothing to read), the write event and the close
///   follow, as they do on select.
/// * a listening channel whose accept fails for lack of descriptors or memory (`EMFILE`,
///   `ENFILE`, `ENOBUFS`, `ENOMEM`) is never closed and never spins: accepting pauses and
///   resumes after a back-off (10 ms, doubling up to 1 s), logged once per episode.
///
/// `handle_close` runs at most once per channel, and after it returns the channel is
/// closed (if the hook did not close it). No hook runs on a closed channel.
///
/// # Cleanup
///
/// Every way a channel can end in the loop gives the dispatcher exactly one
/// [`handle_close`](Dispatcher::handle_close): end of file, a disconnect, an error, a
/// timeout, a drained [`close_when_done`](Channel::close_when_done),
/// [`request_close`](Channel::request_close), and a panic in any hook or predicate (the
/// channel is closed after its `handle_close`, and the panic is reported with its message,
/// the hook and the channel; asyncore's bare `except:` ends in `handle_close` too). The
/// exceptions: a panic inside `handle_close` itself (it is not called again), and an
/// explicit close without the hook ([`Context::close`], [`LoopHandle::close`](crate::LoopHandle::close),
/// `close_all`), which is asyncore's `close()`. With
/// [`EventLoop::set_catch_panics`](crate::EventLoop::set_catch_panics)`(false)` the panic
/// propagates out of `run` after that same cleanup.
///
/// # Errors reach the user
///
/// Errors and panics the loop handles are logged through the `log` crate; when no logger
/// is installed they are written to stderr instead, one line each, so they are never
/// silent (see the crate docs, "Logging").
///
/// # Examples
///
/// An echo handler usable in a loop of any state type:
///
/// ```
/// use std::io;
/// use sockloop::{Context, Dispatcher};
///
/// struct Echo;
///
/// impl<S: 'static> Dispatcher<S> for Echo {
///     fn handle_read(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
///         let mut buf = [0u8; 4096];
///         let n = ctx.recv(&mut buf)?;
///         ctx.push(&buf[..n])
///     }
/// }
/// # let _ = Echo;
/// ```
pub trait Dispatcher<S: 'static = ()>: Any {
    /// Should the loop watch this channel for input? Default: `true`.
    ///
    /// Called with the channel's current state; it must not block.
    ///
    /// # Caching
    ///
    /// In the default [`Mode::Scalable`](crate::Mode::Scalable) the answers of
    /// `readable()` and [`writable()`](Dispatcher::writable) are cached: they are asked
    /// again only after one of this channel's hooks ran, when it was added, reached
    /// through `channel_mut` / `dispatcher_mut` / `get_mut`, or
    /// [touched](crate::LoopHandle::touch). A predicate that depends on anything else (a
    /// peer channel's queue, the time, a global) is not re-asked when that changes: for
    /// flow control use [`Channel::pause_reading`] / [`Channel::resume_reading`] (which
    /// need no touch) and [`handle_drained`](Dispatcher::handle_drained), or call `touch`,
    /// or use [`Mode::Exact`](crate::Mode::Exact), which asks every channel every
    /// iteration as asyncore did. Debug builds check the cache once a second and warn
    /// about an answer that changed without a touch.
    fn readable(&self, channel: &Channel) -> bool {
        let _ = channel;
        true
    }

    /// Should the loop watch this channel for room to write? Default (a **fix**): only
    /// while connecting or while output is queued. asyncore's default was always `true`,
    /// which spins the loop at 100% CPU on an idle connected socket. A listening channel is
    /// never watched for writing, whatever this returns.
    fn writable(&self, channel: &Channel) -> bool {
        channel.is_connecting() || channel.has_pending_output()
    }

    /// The loop's question, both predicates at once, gated by the channel's state (no
    /// input is watched after end of file, while the accept back-off or a
    /// [`pause_reading`](Channel::pause_reading) holds; a listener is never watched for
    /// writing). Not for implementing or calling: the loop asks it after every hook, and
    /// as a provided method it is compiled for each dispatcher type, so one virtual call
    /// reaches both predicates, inlined. `Internal` cannot be named outside sockloop.
    #[doc(hidden)]
    #[inline]
    fn interest(&self, channel: &Channel, _: sealed::Internal) -> Interest {
        // After end of file input is always "ready": watching it would spin. A listener
        // paused by the accept back-off waits for its timer.
        let r = !channel.is_eof()
            && !channel.is_accept_paused()
            && !channel.is_reading_paused()
            && self.readable(channel);
        let w = !channel.is_accepting() && self.writable(channel);
        Interest::from_flags(r, w)
    }

    /// A listening channel has connections waiting. Default: accept them, passing each
    /// to [`handle_accepted`](Dispatcher::handle_accepted), at a pace that follows the
    /// arrivals: while connections come one at a time, one per event, as asyncore did
    /// (no second `accept` that would find nothing: the listener is watched
    /// level-triggered, so one still waiting is reported again); once the listener is
    /// ready again in the very next loop iteration, a burst, up to [`ACCEPT_BATCH`] per
    /// event until none is left (`EWOULDBLOCK`, `ECONNABORTED`), back to one per event
    /// when a batch finds a single connection. Stops early if the channel closed.
    ///
    /// # Errors
    ///
    /// Accept errors such as `EMFILE` (the loop then backs off, see above), and errors
    /// from `handle_accepted`.
    fn handle_accept(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        let limit = ctx.accept_limit();
        let mut accepted = 0;
        while accepted < limit {
            let Some((channel, addr)) = ctx.accept()? else {
                ctx.accept_done(accepted, true);
                return Ok(());
            };
            accepted += 1;
            self.handle_accepted(ctx, channel, addr)?;
            if !ctx.is_accepting() {
                break;
            }
        }
        ctx.accept_done(accepted, false);
        Ok(())
    }

    /// A connection was accepted: `channel` is ready (connected, non-blocking), `addr` is
    /// the peer's. Default: close it and log the warning `unhandled accepted event`; the
    /// first time in a process this is also reported when warnings are off (a listener
    /// that closes every connection is a program missing this hook). Typical code adds it
    /// with [`LoopHandle::add`](crate::LoopHandle::add), after setting options on it if
    /// needed ([`Channel::set_nodelay`], [`Channel::socket`]).
    ///
    /// # Errors
    ///
    /// Whatever the implementation returns; routed like any hook error.
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_, S>,
        channel: Channel,
        addr: socket2::SockAddr,
    ) -> io::Result<()> {
        let _ = (channel, addr);
        ctx.log_warning("unhandled accepted event");
        unhandled_once(
            &ACCEPTED_REPORTED,
            ctx,
            "handle_accepted",
            "accepted connections are closed",
        );
        Ok(())
    }

    /// The connect completed; the channel is already connected. Default: log the warning
    /// `unhandled connect event`.
    ///
    /// # Errors
    ///
    /// Whatever the implementation returns.
    fn handle_connect(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        ctx.log_warning("unhandled connect event");
        Ok(())
    }

    /// Input is ready. Default: log the warning `unhandled read event`, and read the
    /// input and drop it (a **fix**: asyncore only logged, and the loop spun at full
    /// speed on input nobody read); end of file then closes the channel as usual. The
    /// first time in a process this is also reported when warnings are off.
    ///
    /// # Errors
    ///
    /// Whatever the implementation returns.
    fn handle_read(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        ctx.log_warning("unhandled read event");
        unhandled_once(
            &READ_REPORTED,
            ctx,
            "handle_read",
            "its input is read and dropped",
        );
        let mut sink = [0u8; 4096];
        ctx.recv(&mut sink).map(drop)
    }

    /// The channel can be written. Default: send queued output if there is any, else log
    /// the warning `unhandled write event`.
    ///
    /// # Errors
    ///
    /// Send errors other than would-block and disconnects.
    fn handle_write(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        if ctx.has_pending_output() {
            ctx.flush()
        } else {
            ctx.log_warning("unhandled write event");
            Ok(())
        }
    }

    /// The output queue fell to the channel's [low-water mark](Channel::set_low_water)
    /// (default 0: everything queued was sent, producers included). Runs once per fall,
    /// after the hook whose flush (or the write event) drained it; not for a queue that
    /// ends in [`close_when_done`](Channel::close_when_done) (the channel closes instead).
    /// Default: nothing.
    ///
    /// The place to resume reading from the channel that feeds this one (see
    /// [`Channel::pause_reading`]): a proxy pauses its client while the upstream queue is
    /// over a high-water mark, and resumes it here.
    ///
    /// # Errors
    ///
    /// Whatever the implementation returns; routed like any hook error.
    fn handle_drained(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Out-of-band data arrived. Default: log the warning
    /// `unhandled incoming priority event`.
    ///
    /// # Errors
    ///
    /// Whatever the implementation returns.
    fn handle_expt(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        ctx.log_warning("unhandled incoming priority event");
        Ok(())
    }

    /// End of input: [`recv`](Channel::recv) saw end of file (the peer shut down its
    /// writing side, or closed). Runs once; the loop stops watching the channel for input
    /// afterwards. Default (a **fix**): [`close_when_done`](Channel::close_when_done):
    /// everything already queued, producers included, is still sent, then
    /// [`handle_close`](Dispatcher::handle_close) follows. asyncore closed at once and
    /// dropped the queue, which truncated replies to clients that half-close after their
    /// request. (A peer that half-closes and then never reads keeps the channel open
    /// until it goes away or an idle timeout fires, as any unsent output does.)
    ///
    /// Override it for half-close protocols that still answer after end of input: the
    /// channel stays open for output; push the reply, then
    /// [`close_when_done`](Channel::close_when_done). Call
    /// [`request_close`](Channel::request_close) instead to drop what is queued.
    ///
    /// # Errors
    ///
    /// Whatever the implementation returns; routed like any hook error.
    fn handle_eof(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        ctx.close_when_done();
        Ok(())
    }

    /// A timeout set on the channel expired: [`Timeout::Idle`] (see
    /// [`Channel::set_idle_timeout`]) or [`Timeout::Connect`] (see
    /// [`Channel::set_connect_timeout`]). Default:
    /// [`request_close`](Channel::request_close), so
    /// [`handle_close`](Dispatcher::handle_close) follows. If the channel stays open, the
    /// same timeout runs again one period later unless there is activity (idle) or the
    /// connect completes.
    ///
    /// # Errors
    ///
    /// Whatever the implementation returns; routed like any hook error.
    fn handle_timeout(&mut self, ctx: &mut Context<'_, S>, which: Timeout) -> io::Result<()> {
        let _ = which;
        ctx.request_close();
        Ok(())
    }

    /// The peer is gone or the channel is done. Default: log the warning
    /// `unhandled close event`, then close. Runs at most once; the loop closes the channel
    /// after it returns in any case. [`Channel::pending_output`] still tells how many queued
    /// bytes were not sent.
    ///
    /// # Errors
    ///
    /// Errors are logged; the channel is closed anyway.
    fn handle_close(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        ctx.log_warning("unhandled close event");
        ctx.close();
        Ok(())
    }

    /// A hook returned `err` (not would-block, not a disconnect). Default: log
    /// `uncaptured error, closing channel <channel> (<err>)` at error level and return the
    /// error, which makes the loop run [`handle_close`](Dispatcher::handle_close) (once)
    /// and close the channel, as asyncore's `handle_error` does.
    ///
    /// Return `Ok(())` to keep the channel open.
    ///
    /// # Errors
    ///
    /// Any error (or a panic) closes the channel through `handle_close`; nothing escapes
    /// the loop.
    fn handle_error(&mut self, ctx: &mut Context<'_, S>, err: io::Error) -> io::Result<()> {
        crate::report::error!("uncaptured error, closing channel {} ({err})", **ctx);
        Err(err)
    }
}

/// Keeps [`Dispatcher::interest`] the loop's own: its argument type cannot be named
/// outside this crate, so no dispatcher overrides it and no user calls it.
pub(crate) mod sealed {
    /// The unnameable argument of [`Dispatcher::interest`](super::Dispatcher::interest).
    #[derive(Debug)]
    #[allow(unreachable_pub)] // reachable only through the trait, on purpose
    pub struct Internal;
}

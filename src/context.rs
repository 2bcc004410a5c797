//! What a hook receives: [`Context`], its own channel plus the loop's handle.

use std::ops::{Deref, DerefMut};

use crate::channel::Channel;
use crate::handle::LoopHandle;
use crate::map::Registration;
use crate::token::Token;

/// What a hook receives: its own channel (through `Deref`) and the loop's
/// [`LoopHandle`] (through [`handle`](Context::handle)), the same handle timer, signal
/// and [`Remote`](crate::Remote) callbacks get.
///
/// `Context` dereferences to the hook's [`Channel`], so asyncore's `self.recv(..)`,
/// `self.send(..)` become `ctx.recv(..)`, `ctx.push(..)`. While the hook runs its channel
/// is out of the map: the handle does not list it, and `channel_mut` / `close_channel`
/// on `Context` (not on the handle) also accept the hook's own token.
///
/// # Examples
///
/// A listener that adds every accepted connection as a new channel, and counts them in
/// the loop's state:
///
/// ```
/// use std::io;
/// use sockloop::{Channel, Context, Dispatcher, SockAddr};
///
/// struct Server;
/// struct Client;
/// impl Dispatcher<u64> for Client {}
///
/// impl Dispatcher<u64> for Server {
///     fn handle_accepted(&mut self, ctx: &mut Context<'_, u64>, channel: Channel, _: SockAddr) -> io::Result<()> {
///         *ctx.state_mut() += 1;
///         ctx.handle().add(channel, Client)?;
///         Ok(())
///     }
/// }
/// # let _ = Server;
/// ```
pub struct Context<'a, S = ()> {
    pub(crate) token: Token,
    pub(crate) channel: &'a mut Channel,
    /// The channel's registration (kept in the map's entry).
    pub(crate) reg: &'a mut Registration,
    pub(crate) handle: &'a mut LoopHandle<S>,
}

impl<S: 'static> Context<'_, S> {
    /// This channel's token.
    pub fn token(&self) -> Token {
        self.token
    }

    /// The loop: other channels, adding and closing, timers, the state, stopping.
    pub fn handle(&mut self) -> &mut LoopHandle<S> {
        self.handle
    }

    /// The loop's shared state ([`LoopHandle::state`]).
    pub fn state(&self) -> &S {
        self.handle.state()
    }

    /// The loop's shared state, to change it ([`LoopHandle::state_mut`]).
    pub fn state_mut(&mut self) -> &mut S {
        self.handle.state_mut()
    }

    /// The hook's channel and the loop's handle at once, to use both in one expression
    /// (push to this channel what the state says).
    pub fn split(&mut self) -> (&mut Channel, &mut LoopHandle<S>) {
        (self.channel, self.handle)
    }

    /// How many connections the default `handle_accept` takes at this event.
    pub(crate) fn accept_limit(&mut self) -> usize {
        self.reg.accept.limit(self.handle.iteration)
    }

    /// The default `handle_accept` took `accepted` connections; `drained`: none is left.
    pub(crate) fn accept_done(&mut self, accepted: usize, drained: bool) {
        self.reg.accept.done(accepted, drained);
    }

    /// Closes this channel now (asyncore's `close`): it is deregistered, its handle is
    /// closed and no further hook runs on it. Idempotent. `handle_close` is not called.
    pub fn close(&mut self) {
        if !self.channel.is_closed() {
            self.handle.deregister_and_close(self.channel, self.reg);
        }
    }

    /// Closes another channel or this one, without calling its `handle_close` (asyncore's
    /// `other.close()`). Returns false if `token` names no live channel.
    pub fn close_channel(&mut self, token: Token) -> bool {
        if token == self.token {
            let was_open = !self.channel.is_closed();
            self.close();
            was_open
        } else {
            self.handle.close(token)
        }
    }

    /// Closes every channel, this one included.
    pub fn close_all(&mut self) {
        self.handle.close_all();
        self.close();
    }

    /// Another channel of the loop or this one, to push output to it, read its state or
    /// close it. Returns `None` for a stale token. The channel's predicates are re-asked
    /// before the next wait.
    pub fn channel_mut(&mut self, token: Token) -> Option<&mut Channel> {
        if token == self.token {
            return Some(self.channel);
        }
        self.handle.channel_mut(token)
    }

    /// Logs `msg` about this channel at warning level if the loop logs warnings
    /// ([`EventLoop::set_log_warnings`](crate::EventLoop::set_log_warnings); off by
    /// default, like asyncore's `ignore_log_types`).
    pub fn log_warning(&self, msg: &str) {
        if self.handle.log_warnings {
            crate::report::warning!("{msg} on {}", self.channel);
        }
    }
}

impl<S> Deref for Context<'_, S> {
    type Target = Channel;
    fn deref(&self) -> &Channel {
        self.channel
    }
}

impl<S> DerefMut for Context<'_, S> {
    fn deref_mut(&mut self) -> &mut Channel {
        self.channel
    }
}

impl<S> std::fmt::Debug for Context<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("token", &self.token)
            .field("channel", &*self.channel)
            .finish_non_exhaustive()
    }
}

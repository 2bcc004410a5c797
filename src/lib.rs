//! sockloop: Python's asyncore + asynchat model, done properly in Rust.
//!
//! A readiness-based, single-threaded, callback-driven event loop over a map of channels.
//! Each channel is an OS handle (a socket or a pipe) plus a [`Dispatcher`]: the loop asks
//! every channel [`readable`](Dispatcher::readable) / [`writable`](Dispatcher::writable),
//! waits with select(2), poll(2) or epoll(7) ([`Backend`]), and routes readiness to the
//! channel's `handle_*` hooks. On top sits the chat layer ([`chat`]): terminator-delimited
//! input and an output FIFO of data and [`Producer`]s. New to it? Read the [`guide`].
//!
//! # Example: an echo server
//!
//! ```no_run
//! use std::io;
//! use std::time::Duration;
//! use sockloop::{Channel, Context, Dispatcher, EventLoop, SockAddr};
//!
//! struct Server;
//! struct Echo;
//!
//! impl Dispatcher for Server {
//!     fn handle_accepted(&mut self, ctx: &mut Context<'_>, channel: Channel, _: SockAddr) -> io::Result<()> {
//!         ctx.handle().add(channel, Echo)?;
//!         Ok(())
//!     }
//! }
//!
//! impl Dispatcher for Echo {
//!     fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
//!         let mut buf = [0u8; 4096];
//!         let n = ctx.recv(&mut buf)?; // 0: end of file (then handle_eof); would block: `?` returns
//!         ctx.push(&buf[..n])          // sends now; what the OS refuses is queued
//!     }
//! }
//!
//! let mut event_loop = EventLoop::new()?;
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! println!("listening on {}", listener.local_addr()?);
//! event_loop.add(Channel::from_socket(listener)?, Server)?;
//! event_loop.run(Some(Duration::from_secs(30)), None)?;
//! # std::io::Result::Ok(())
//! ```
//!
//! # asyncore → sockloop
//!
//! | asyncore / asynchat | sockloop |
//! |---|---|
//! | `socket_map` | the map owned by [`EventLoop`], reached by every callback as a [`LoopHandle`] |
//! | `loop(timeout, use_poll, map, count)` | [`EventLoop::run`]`(max_wait, count)` + [`Backend`]; [`EventLoop::run_until`] for a deadline |
//! | `poll()` / `poll2()` | [`EventLoop::poll_once`] on [`Backend::Select`] / [`Backend::Poll`] |
//! | `dispatcher` | the [`Dispatcher`] trait + the [`Channel`] it is registered with |
//! | `dispatcher_with_send` | the channel's output queue: [`Channel::push`] |
//! | `file_dispatcher` | [`Channel::from_fd`] over a pipe/fd |
//! | `ExitNow` | [`LoopHandle::stop_now`] |
//! | `close_all()` | [`LoopHandle::close_all`] |
//! | `async_chat`, `simple_producer` | the [`chat`] layer, [`SimpleProducer`] |
//! | `self.recv()`, `self.send()` in a hook | `ctx.recv()`, `ctx.send()` ([`Context`] derefs to [`Channel`]) |
//! | module globals shared by dispatchers | the loop's state: [`EventLoop::with_state`], [`Context::state_mut`] |
//! | `dispatcher.accepting` / `connecting` / `connected` | [`Channel::state`] |
//!
//! # Iteration order
//!
//! See [`EventLoop`]: predicates, then one wait, then dispatch (select: all reads, all
//! writes, all exceptional conditions; poll/epoll: per channel read, write, priority,
//! then close on hang-up).
//!
//! # Closing during dispatch
//!
//! Channels are named by generation-tagged [`Token`]s, never by fd number. An event for a
//! channel closed earlier in the same iteration is dropped; a new channel that reuses the
//! fd number never receives the old one's event; channels added during dispatch are
//! polled from the next iteration; `handle_close` runs at most once per channel and no
//! hook runs after close.
//!
//! # Differences from asyncore
//!
//! Where CPython's asyncore is known to be broken, sockloop deliberately behaves better:
//!
//! * **Same behaviour on every backend.** CPython sends the same disconnect to
//!   `handle_error` under select and to `handle_close` under poll; here disconnect errors
//!   (`ECONNRESET`, `ENOTCONN`, `ESHUTDOWN`, `ECONNABORTED`, `EPIPE`, `EBADF`) always go to
//!   `handle_close`.
//! * **Nothing lost on hang-up, in either direction.** With poll/epoll, a hang-up that
//!   arrives with input still queued keeps delivering read events while the hook reads,
//!   until end of file; the close follows the data (a hook that reads nothing gets the
//!   write event and the close, as on select: no busy loop). At end of file, the default
//!   [`Dispatcher::handle_eof`] sends what is still queued, producers included, then
//!   closes: asyncore dropped it, truncating replies to clients that half-close.
//! * **No stale events** (bpo-30931): channels are keyed by generation-tagged tokens, not
//!   fd numbers.
//! * **`handle_close` at most once** (CPython calls it twice on EOF + `POLLHUP`), and the
//!   channel is closed after it returns.
//! * **`writable()` defaults to "connecting or output queued"**, not `true`: an idle
//!   connected socket does not spin the loop at 100% CPU.
//! * **No empty registrations**: a channel that wants neither reading nor writing is not
//!   registered (epoll would report its hang-up forever).
//! * **Connected before `handle_connect`**, so a `push` inside it goes out; output queued
//!   before the connect completes is sent after it, never dropped on `ENOTCONN`.
//! * **`recv` that would block is `Err(WouldBlock)`** as in std, and a hook returning it
//!   is ignored (asyncore's `handle_error` closed the channel); `Ok(0)` is end of file
//!   only and leads to [`Dispatcher::handle_eof`] on every
//!   backend, pipes included, after which the channel is no longer watched for input.
//! * **Errors and panics in `readable()`, `writable()` and `handle_error` stay inside the
//!   loop**: that channel is closed through its one `handle_close` (see
//!   [`Dispatcher`]'s "Cleanup") and the event reported with the panic's message, the hook
//!   and the channel; other channels go on. Panics in hooks are caught by default
//!   ([`EventLoop::set_catch_panics`]).
//! * **Failures are never silent**: see "Logging" below.
//! * **[`EventLoop::run`] returns once no channel and no timer is left**, however the last
//!   channel closed (also a close asked from a timer, signal handler, [`Remote`] call or
//!   another channel's hook). Durations too large for the clock mean "never", not a
//!   panic.
//! * **Sub-millisecond timeouts round up**, never to a busy zero; `EINTR` is retried with
//!   the remaining time.
//! * **Real addresses**: [`Channel::local_addr`] asks the OS (after binding port 0, the
//!   real port).
//! * **Chat layer** ([`chat::AsyncChat`]): the default terminator is [`Terminator::None`]
//!   (CPython left it unset, so the first read raised); a maximum record size
//!   ([`Scanner::set_max_record`]) bounds memory; output high/low-water marks pause
//!   reading from a peer that does not read its replies; parsing stops once a callback
//!   closes the channel, and input after `close_when_done` is not delivered.
//! * **Output queue**: pushing after `close_when_done` is an error, not a silent drop;
//!   empty items never cause a zero-length send; output is written until the OS would
//!   block, not one send per event.
//! * **Producers can fail** ([`Producer::fill`] returns `io::Result`): a failed read goes
//!   to `handle_error` and the connection closes after what was already queued, instead
//!   of promising bytes that never come. They fill a buffer the queue lends them (no
//!   `Vec` per chunk), and [`FileProducer`] sends with `sendfile(2)` on sockets.
//! * **Scalable predicates**: by default ([`Mode::Scalable`]) `readable()`/`writable()` are
//!   re-asked only for channels whose hooks ran or that were touched, so 10,000 idle
//!   channels cost nothing per iteration; [`Mode::Exact`] asks every channel every
//!   iteration, as asyncore did.
//! * **Connect completion is reported on the next iteration**, also when connect(2)
//!   succeeds at once: a hook cannot run inside [`Channel::connect`].
//!
//! * **Accepting never closes the listener for lack of descriptors**: `EMFILE`, `ENFILE`,
//!   `ENOBUFS` and `ENOMEM` pause accepting with a back-off instead of going to
//!   `handle_error` (whose default would close the listener); the default `handle_accept`
//!   takes one connection per event while they come one at a time, as asyncore did, and
//!   up to [`ACCEPT_BATCH`] per event during a burst.
//!
//! # Beyond asyncore
//!
//! What asyncore's users (smtpd, Medusa, supervisor, pyftpdlib) built themselves:
//!
//! * **One loop handle with loop-owned state**: hooks (through [`Context::handle`]),
//!   timers, signal handlers and [`Remote`] calls all get the same [`LoopHandle`]: channels,
//!   timers, stopping, and the state `S` of an [`EventLoop<S>`](EventLoop::with_state), with
//!   no `Rc<RefCell<_>>` and no `Send` bound. A callback cannot run the loop again: the
//!   handle has no `run`.
//! * **Timers**: [`LoopHandle::call_later`], [`call_at`](LoopHandle::call_at),
//!   [`call_every`](LoopHandle::call_every), [`cancel`](LoopHandle::cancel); the callback
//!   gets the handle and its own [`TimerId`]. Never early; equal deadlines in the order set; the wait is cut to the
//!   next deadline; pending timers cost nothing per iteration. [`EventLoop::run`] keeps
//!   going while channels or timers remain.
//! * **Per-channel timeouts**: [`Channel::set_idle_timeout`] and
//!   [`Channel::set_connect_timeout`], reported to [`Dispatcher::handle_timeout`] (default:
//!   close).
//! * **Cross-thread wake-up**: [`Remote`] (`Send + Sync + Clone`) wakes the loop, runs
//!   closures on its thread (asyncio's `call_soon_threadsafe`) and stops it; an error, not
//!   a crash, once the loop is gone.
//! * **Signals**: [`LoopHandle::add_signal_handler`] runs a callback on the loop thread;
//!   [`LoopHandle::stop_on_signals`] is the graceful exit every example uses for `SIGINT`
//!   and `SIGTERM`; [`EventLoop::run_forever`] waits for nothing but signals and calls.
//! * **Half-close**: [`Channel::shutdown`] and [`Dispatcher::handle_eof`], distinct from
//!   `handle_close`; [`Channel::request_close`] asks for `handle_close` safely from any
//!   hook.
//! * **UDP**: [`Channel::recv_from`] / [`Channel::send_to`]; an empty datagram is data.
//! * **Multi-core**: [`LoopGroup`] runs N loops on N threads, each with its own listener on
//!   one port (`SO_REUSEPORT`), built by one dispatcher factory.
//!
//! # Logging
//!
//! Errors and panics the loop handles, the accept back-off and (if enabled with
//! [`EventLoop::set_log_warnings`]) asyncore's "unhandled ... event" warnings go through the
//! `log` crate when a logger is installed (its filters decide). When none is (the `log`
//! crate's maximum level is `Off`), warnings and errors are written to stderr instead, one
//! line each (`sockloop: error: ...`), so they are never silent; nothing is written twice,
//! and a failed write to stderr is ignored, never a panic.
//!
//! # Platform
//!
//! Linux is the supported platform (select and poll are POSIX; the native backend is
//! epoll, used through rustix). All OS-specific and `unsafe` code is in the private
//! `sys` module.

#![deny(unsafe_code)]
#![warn(missing_docs)]
// mio's lint set, plus `unreachable_pub`.
#![deny(
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub,
    unused_imports,
    dead_code
)]
// Disallow warnings when running tests.
#![cfg_attr(test, deny(warnings))]
// Disallow warnings in doc examples.
#![doc(test(attr(deny(warnings))))]

mod channel;
pub mod chat;
mod context;
mod deadline;
mod dispatcher;
mod errors;
mod event_loop;
mod group;
pub mod guide;
mod handle;
mod interest;
mod map;
mod poller;
pub mod producer;
mod remote;
mod report;
mod route;
mod send;
pub mod signal;
#[allow(unsafe_code)]
mod sys;
mod timer;
mod token;

pub use channel::{Channel, State};
pub use chat::{AsyncChat, ChatContext, ChatHandler, Piece, Scanner, Scripted, Terminator};
pub use context::Context;
pub use dispatcher::{Dispatcher, ACCEPT_BATCH};
pub use errors::is_disconnect;
pub use event_loop::{EventLoop, Mode};
pub use group::LoopGroup;
pub use handle::LoopHandle;
pub use interest::Interest;
pub use poller::{PollEvent, Poller};
pub use producer::{FileProducer, Producer, ReaderProducer, SimpleProducer};
pub use remote::Remote;
pub use socket2::{Domain, SockAddr, SockRef, Socket, Type};
pub use sys::Backend;
pub use timer::{Timeout, TimerId};
pub use token::Token;

/// The README's code blocks, compiled (and run, unless marked `no_run`) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

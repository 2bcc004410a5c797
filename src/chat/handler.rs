//! What a chat protocol implements ([`ChatHandler`]) and what its callbacks receive
//! ([`ChatContext`]).

use std::io;

use crate::channel::Channel;
use crate::chat::transport::Transport;
use crate::chat::Terminator;
use crate::handle::LoopHandle;
use crate::producer::Producer;
use crate::timer::Timeout;
use crate::token::Token;

/// A protocol on top of [`AsyncChat`](crate::chat::AsyncChat): asynchat's
/// `collect_incoming_data` / `found_terminator` pair, plus the channel hooks a protocol
/// usually needs, with the same names.
///
/// The glue calls [`collect_incoming_data`](ChatHandler::collect_incoming_data) with the
/// bytes of the current record (possibly in several pieces, never an empty one) and
/// [`found_terminator`](ChatHandler::found_terminator) when the current
/// [`Terminator`] is reached, exactly as asynchat does (see
/// [`Scanner`](crate::chat::Scanner) for the algorithm). Both receive a [`ChatContext`]:
/// change the terminator there, push replies, close.
///
/// The same handler runs on a real channel in an [`EventLoop`](crate::EventLoop) and on a
/// [`Scripted`](crate::chat::Scripted) transport in tests, with no socket at all.
///
/// # Examples
///
/// A line protocol that answers every line with its length:
///
/// ```
/// use std::io;
/// use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Scripted, Terminator};
///
/// #[derive(Default)]
/// struct Lengths {
///     line: Vec<u8>,
/// }
///
/// impl ChatHandler for Lengths {
///     fn collect_incoming_data(&mut self, _: &mut ChatContext<'_>, data: &[u8]) -> io::Result<()> {
///         self.line.extend_from_slice(data);
///         Ok(())
///     }
///     fn found_terminator(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
///         let n = std::mem::take(&mut self.line).len();
///         ctx.push(format!("{n}\n").as_bytes())
///     }
/// }
///
/// let mut chat = AsyncChat::new(Lengths::default());
/// chat.set_terminator(Terminator::Bytes(b"\n".to_vec()))?;
/// let mut script = Scripted::new(chat);
/// script.feed(b"hello\nwor")?;
/// script.feed(b"ld\n\n")?;
/// assert_eq!(script.take_output(), b"5\n5\n0\n");
/// # std::io::Result::Ok(())
/// ```
pub trait ChatHandler<S: 'static = ()>: 'static {
    /// Bytes of the current record arrived (asynchat's `collect_incoming_data`). Never
    /// called with an empty slice; a record may come in several calls.
    ///
    /// # Errors
    ///
    /// An error stops parsing and is routed like any hook error (to
    /// [`handle_error`](ChatHandler::handle_error), or to
    /// [`handle_close`](ChatHandler::handle_close) for a disconnect).
    fn collect_incoming_data(
        &mut self,
        ctx: &mut ChatContext<'_, S>,
        data: &[u8],
    ) -> io::Result<()>;

    /// The terminator was reached (asynchat's `found_terminator`). A terminator set here
    /// applies to the rest of the input already received.
    ///
    /// # Errors
    ///
    /// As [`collect_incoming_data`](ChatHandler::collect_incoming_data).
    fn found_terminator(&mut self, ctx: &mut ChatContext<'_, S>) -> io::Result<()>;

    /// An outgoing connect completed (asyncore's `handle_connect`). Default: nothing.
    /// Accepted channels get no such call: whoever accepts them can push a greeting
    /// with [`Channel::push`] before adding the channel.
    ///
    /// # Errors
    ///
    /// Routed like any hook error.
    fn handle_connect(&mut self, ctx: &mut ChatContext<'_, S>) -> io::Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// A record went over the limit set by
    /// [`AsyncChat::set_max_record`](crate::chat::AsyncChat::set_max_record). Its first
    /// `max` bytes were already delivered to
    /// [`collect_incoming_data`](ChatHandler::collect_incoming_data); `err` is an
    /// [`io::ErrorKind::InvalidData`] error saying so.
    ///
    /// Default: return `err`, which goes to [`handle_error`](ChatHandler::handle_error);
    /// its default logs it and returns it, so the loop runs
    /// [`handle_close`](ChatHandler::handle_close), which closes the channel. Only this
    /// channel is affected.
    ///
    /// Return `Ok(())` to keep the channel: the rest of the over-long record, up to and
    /// including its terminator, is then read and dropped (memory stays bounded), no
    /// `found_terminator` is called for it, and parsing resumes with the next record.
    /// Drop what you collected of the record here. Setting a terminator in this hook ends
    /// the skipping at once: parsing continues with the new terminator. (If the record it
    /// starts is over the limit before any input is consumed — a limit of 0 and data
    /// next — that record is skipped without calling this hook again, so a handler that
    /// always sets a terminator here cannot stall the loop.)
    ///
    /// # Errors
    ///
    /// Routed like any hook error.
    fn handle_record_too_long(
        &mut self,
        ctx: &mut ChatContext<'_, S>,
        err: io::Error,
    ) -> io::Result<()> {
        let _ = ctx;
        Err(err)
    }

    /// Should the loop read from this channel? Default: `true`. Combined with the output
    /// watermarks (reading pauses while the queue is over the high-water mark whatever
    /// this says). Cached like [`Dispatcher::readable`](crate::Dispatcher::readable): for
    /// flow control that does not come from this channel's own hooks, prefer
    /// [`Channel::pause_reading`].
    fn readable(&self, channel: &Channel) -> bool {
        let _ = channel;
        true
    }

    /// Should the loop watch this channel for room to write? Default: while connecting or
    /// while output is queued (asynchat's `producer_fifo or not connected`).
    fn writable(&self, channel: &Channel) -> bool {
        channel.is_connecting() || channel.has_pending_output()
    }

    /// Out-of-band data arrived (asyncore's `handle_expt`). Default: nothing.
    ///
    /// # Errors
    ///
    /// Routed like any hook error.
    fn handle_expt(&mut self, ctx: &mut ChatContext<'_, S>) -> io::Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// A timeout set on the channel expired (see
    /// [`Dispatcher::handle_timeout`](crate::Dispatcher::handle_timeout)). Default:
    /// [`request_close`](ChatContext::request_close), so
    /// [`handle_close`](ChatHandler::handle_close) follows.
    ///
    /// # Errors
    ///
    /// Routed like any hook error.
    fn handle_timeout(&mut self, ctx: &mut ChatContext<'_, S>, which: Timeout) -> io::Result<()> {
        let _ = which;
        ctx.request_close();
        Ok(())
    }

    /// The output queue fell to the channel's low-water mark (see
    /// [`Dispatcher::handle_drained`](crate::Dispatcher::handle_drained)). Default:
    /// nothing.
    ///
    /// # Errors
    ///
    /// Routed like any hook error.
    fn handle_drained(&mut self, ctx: &mut ChatContext<'_, S>) -> io::Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// End of input: the peer shut down its writing side or closed, after every record
    /// received before it was delivered. Default (a **fix**, as
    /// [`Dispatcher::handle_eof`](crate::Dispatcher::handle_eof)):
    /// [`close_when_done`](ChatContext::close_when_done), so the replies already queued
    /// are still sent, then [`handle_close`](ChatHandler::handle_close) runs. asynchat
    /// closed at once and dropped them.
    ///
    /// # Errors
    ///
    /// Routed like any hook error.
    fn handle_eof(&mut self, ctx: &mut ChatContext<'_, S>) -> io::Result<()> {
        ctx.close_when_done();
        Ok(())
    }

    /// The peer is gone or the channel is done (asyncore's `handle_close`). Default:
    /// close. Runs at most once per channel; the channel is closed afterwards in any case.
    ///
    /// # Errors
    ///
    /// Logged; the channel is closed anyway.
    fn handle_close(&mut self, ctx: &mut ChatContext<'_, S>) -> io::Result<()> {
        ctx.close();
        Ok(())
    }

    /// A callback returned `err` (not would-block, not a disconnect). Default: log
    /// `uncaptured error, closing channel <channel> (<err>)` at error level and return the
    /// error, which leads to [`handle_close`](ChatHandler::handle_close) and closes the
    /// channel. Return `Ok(())` to keep the channel open.
    ///
    /// # Errors
    ///
    /// Any error closes the channel.
    fn handle_error(&mut self, ctx: &mut ChatContext<'_, S>, err: io::Error) -> io::Result<()> {
        crate::report::error!(
            "uncaptured error, closing channel {} ({err})",
            ctx.describe()
        );
        Err(err)
    }
}

/// Changes a callback asked for, applied to the scanner when it returns (the input being
/// delivered is borrowed from the scanner while the callback runs).
#[derive(Default)]
pub(crate) struct Staged {
    pub(crate) terminator: Option<Terminator>,
    pub(crate) max_record: Option<Option<usize>>,
    pub(crate) discard_input: bool,
}

/// What a [`ChatHandler`] callback receives: asynchat's methods on `self`
/// (`set_terminator`, `push`, `close_when_done`, ...), and the loop around the channel.
///
/// [`handle`](ChatContext::handle) gives the loop's [`LoopHandle`] (other channels,
/// adding channels, timers, stopping) and [`state_mut`](ChatContext::state_mut) its
/// shared state. On a [`Scripted`](crate::chat::Scripted) transport they are the
/// script's own handle and state, and output is recorded instead of sent: the same
/// handler code runs in both.
///
/// # Examples
///
/// A protocol with a length line, then that many bytes of body:
///
/// ```
/// use std::io;
/// use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Scripted, Terminator};
///
/// #[derive(Default)]
/// struct Sized {
///     buf: Vec<u8>,
/// }
///
/// impl ChatHandler for Sized {
///     fn collect_incoming_data(&mut self, _: &mut ChatContext<'_>, data: &[u8]) -> io::Result<()> {
///         self.buf.extend_from_slice(data);
///         Ok(())
///     }
///     fn found_terminator(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
///         let record = std::mem::take(&mut self.buf);
///         if let Terminator::Count(_) = ctx.get_terminator() {
///             ctx.push(b"got ")?;
///             ctx.push_vec(record)?;
///             ctx.set_terminator(Terminator::Bytes(b"\n".to_vec()))
///         } else {
///             let n = String::from_utf8_lossy(&record).trim().parse().unwrap_or(0);
///             ctx.set_terminator(Terminator::Count(n))
///         }
///     }
/// }
///
/// let mut chat = AsyncChat::new(Sized::default());
/// chat.set_terminator(Terminator::Bytes(b"\n".to_vec()))?;
/// let mut script = Scripted::new(chat);
/// script.feed(b"3\nabc2\nxy")?; // the switch applies inside the same read
/// assert_eq!(script.take_output(), b"got abcgot xy");
/// # std::io::Result::Ok(())
/// ```
pub struct ChatContext<'c, S = ()> {
    pub(crate) io: &'c mut dyn Transport<S>,
    /// The scanner's terminator, as it is during this callback.
    pub(crate) terminator: &'c Terminator,
    pub(crate) max_record: Option<usize>,
    pub(crate) staged: &'c mut Staged,
}

impl<S: 'static> ChatContext<'_, S> {
    /// Sets the terminator (asynchat's `set_terminator`). It applies to the input after the
    /// current callback, including the rest of what was already received; the record
    /// length counted for the record limit restarts.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for an empty [`Terminator::Bytes`]; nothing changes.
    pub fn set_terminator(&mut self, terminator: Terminator) -> io::Result<()> {
        if matches!(&terminator, Terminator::Bytes(b) if b.is_empty()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "empty terminator: Terminator::Bytes needs at least one byte \
                 (use Terminator::None to collect everything)",
            ));
        }
        self.staged.terminator = Some(terminator);
        Ok(())
    }

    /// The terminator (asynchat's `get_terminator`): the one set in this callback, if any,
    /// else the current one. As in asynchat, a [`Terminator::Count`] counts down once
    /// [`collect_incoming_data`](ChatHandler::collect_incoming_data) returns: during it,
    /// the count still includes the data being delivered (`Count(5)` while receiving the
    /// first 2 bytes of 5, `Count(3)` while receiving the rest), and `found_terminator`
    /// sees `Count(0)`.
    pub fn get_terminator(&self) -> &Terminator {
        self.staged.terminator.as_ref().unwrap_or(self.terminator)
    }

    /// Sets the record limit for [`Terminator::Bytes`] records, as
    /// [`AsyncChat::set_max_record`](crate::chat::AsyncChat::set_max_record); applies after
    /// this callback. Typical use: lift it while receiving a body, restore it after.
    pub fn set_max_record(&mut self, max: Option<usize>) {
        self.staged.max_record = Some(max);
    }

    /// The record limit (the one set in this callback, if any).
    pub fn max_record(&self) -> Option<usize> {
        self.staged.max_record.unwrap_or(self.max_record)
    }

    /// Queues `data` for sending (asynchat's `push`); what the socket takes now is sent at
    /// once, the rest on write events, in order. Empty data queues nothing.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] after [`close_when_done`](ChatContext::close_when_done)
    /// (a **fix**: asynchat dropped such data silently); [`io::ErrorKind::NotConnected`]
    /// once closed; send errors other than would-block and disconnects.
    pub fn push(&mut self, data: &[u8]) -> io::Result<()> {
        self.io.push(data)
    }

    /// Like [`push`](ChatContext::push), taking ownership of the buffer (no copy).
    ///
    /// # Errors
    ///
    /// As [`push`](ChatContext::push).
    pub fn push_vec(&mut self, data: Vec<u8>) -> io::Result<()> {
        self.io.push_vec(data)
    }

    /// Queues a producer (asynchat's `push_with_producer`): what it produces is sent after
    /// what is already queued, until it is finished (see
    /// [`Channel::push_with_producer`], which says where a producer's error goes). Under
    /// [`Scripted`](crate::chat::Scripted) the producer is drained at once, and its error
    /// is returned here.
    ///
    /// # Errors
    ///
    /// As [`push`](ChatContext::push), and the producer's error if it fails at once.
    pub fn push_with_producer(&mut self, producer: impl Producer + 'static) -> io::Result<()> {
        self.io.push_producer(Box::new(producer))
    }

    /// Closes the channel once everything queued so far is sent (asynchat's
    /// `close_when_done`); [`ChatHandler::handle_close`] runs then. From now on, input is
    /// read and dropped (not delivered), and pushes are errors.
    pub fn close_when_done(&mut self) {
        self.io.close_when_done();
    }

    /// Asks for [`ChatHandler::handle_close`] (once) when this callback returns, then the
    /// close, dropping what is queued (see [`Channel::request_close`]).
    pub fn request_close(&mut self) {
        self.io.request_close();
    }

    /// True after [`close_when_done`](ChatContext::close_when_done).
    pub fn is_closing(&self) -> bool {
        self.io.is_closing()
    }

    /// Closes the channel now: nothing more is sent or delivered, and
    /// [`ChatHandler::handle_close`] is not called. Idempotent.
    pub fn close(&mut self) {
        self.io.close();
    }

    /// True once the channel is closed.
    pub fn is_closed(&self) -> bool {
        self.io.is_closed()
    }

    /// Drops buffered input (including a partial terminator) and all queued output
    /// (asynchat's `discard_buffers`). The input side applies when this callback returns,
    /// so the rest of what was received is dropped too. Returns the output bytes dropped.
    pub fn discard_buffers(&mut self) -> usize {
        self.staged.discard_input = true;
        self.io.discard_output()
    }

    /// Bytes queued and not yet sent (always 0 on a scripted transport, which takes
    /// everything at once).
    pub fn pending_output(&self) -> usize {
        self.io.pending_output()
    }

    /// The loop around the channel: other channels (this one is not in the map while its
    /// callback runs), adding and closing channels, timers, stopping. On a
    /// [`Scripted`](crate::chat::Scripted) transport, the script's own handle (no
    /// channels; its timers can be inspected and run from the test).
    pub fn handle(&mut self) -> &mut LoopHandle<S> {
        self.io.handle()
    }

    /// The loop's shared state (on a scripted transport, the script's).
    pub fn state(&self) -> &S {
        self.io.handle_ref().state()
    }

    /// The loop's shared state, to change it.
    pub fn state_mut(&mut self) -> &mut S {
        self.io.handle().state_mut()
    }

    /// The channel's token in its loop (on a scripted transport, a token that names no
    /// channel).
    pub fn token(&self) -> Token {
        self.io.token()
    }

    pub(crate) fn describe(&self) -> String {
        self.io.describe()
    }
}

impl<S> std::fmt::Debug for ChatContext<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatContext")
            .field("channel", &self.io.describe())
            .field(
                "terminator",
                self.staged.terminator.as_ref().unwrap_or(self.terminator),
            )
            .finish_non_exhaustive()
    }
}

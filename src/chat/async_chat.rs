//! `AsyncChat`: a [`ChatHandler`] on a channel (asynchat's `async_chat`).

use std::cell::Cell;
use std::fmt;
use std::io;

use crate::channel::Channel;
use crate::chat::handler::{ChatContext, ChatHandler, Staged};
use crate::chat::transport::Transport;
use crate::chat::{Piece, Scanner, Terminator};
use crate::context::Context;
use crate::dispatcher::Dispatcher;
use crate::timer::Timeout;

thread_local! {
    /// The receive buffer of every chat channel on this thread: one hook runs at a time
    /// and each read is copied into its channel's scanner at once, so 10,000 connections
    /// share one `in_buffer_size` buffer instead of holding one each.
    static RECV_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// asynchat's `async_chat`: a [`Dispatcher`] that splits input at a [`Terminator`] for a
/// [`ChatHandler`] and queues its output.
///
/// Add it to a loop like any dispatcher. On each read event it receives up to
/// [`in_buffer_size`](AsyncChat::in_buffer_size) bytes (one `recv` into a receive
/// buffer shared by all chat channels of the thread), feeds them to its [`Scanner`] and
/// makes the handler's callbacks until the input is used up. An idle channel holds no
/// read-sized buffer: only a partial record waiting for its terminator stays buffered. Output pushed by the handler goes to the channel's queue
/// ([`Channel::push`]): sent at once as far as the socket takes it, the rest on write
/// events until the socket would block, never as a zero-length send.
///
/// # Input
///
/// Exactly asynchat's algorithm (see [`Scanner`]): data before a bytes terminator goes to
/// [`collect_incoming_data`](ChatHandler::collect_incoming_data), then
/// [`found_terminator`](ChatHandler::found_terminator) runs; an empty record is a
/// `found_terminator` alone; a partial terminator at the end of a read is kept for the
/// next; a count terminator counts down across reads; `None` delivers everything. A
/// terminator set in a callback applies to the rest of the same read.
///
/// Parsing stops as soon as the channel is closed (a **fix**: asynchat went on calling
/// the handler of a closed channel), and also once the handler called
/// [`close_when_done`](ChatContext::close_when_done): input after that is read and dropped,
/// so the peer is not answered with a reset while the last reply is still being sent.
///
/// # Record limit
///
/// [`set_max_record`](AsyncChat::set_max_record) bounds a [`Terminator::Bytes`] record.
/// A record over the limit: its first `max` bytes are delivered, then
/// [`handle_record_too_long`](ChatHandler::handle_record_too_long) runs with an
/// [`io::ErrorKind::InvalidData`] error. By default that error goes to
/// [`handle_error`](ChatHandler::handle_error), which logs it and closes this channel
/// (through [`handle_close`](ChatHandler::handle_close)); other channels are not affected.
/// A handler that returns `Ok(())` from `handle_record_too_long` keeps the channel: the rest
/// of the record is skipped up to its terminator. Either way the memory held for the
/// record stays bounded by the limit plus one read. A terminator set in the hook starts a
/// new record at once; should that record be over the limit before any input is consumed
/// (a limit of 0 and data next), it is skipped without a second call, so parsing always
/// moves on.
///
/// # Back-pressure
///
/// While the channel's unsent output ([`Channel::pending_output`]) is over the high-water
/// mark, `readable()` is false: the loop stops reading from the peer, so a peer that sends
/// requests without reading the replies cannot make the queue grow without bound. Reading
/// resumes once the queue is at or below the low-water mark. Records already read wait
/// too: delivery stops as soon as the queue passes the high-water mark in the middle of a
/// read and resumes (on a write event) below the low one, so one read full of short
/// commands with long replies cannot grow the queue past the high mark by more than one
/// record's replies. Defaults:
/// [`DEFAULT_WATERMARKS`](AsyncChat::DEFAULT_WATERMARKS) (64 KiB low, 256 KiB high);
/// [`set_watermarks`](AsyncChat::set_watermarks) changes or disables them. Bytes a producer
/// has not produced yet are not counted.
///
/// # Fairness
///
/// One read event delivers at most [`record_budget`](AsyncChat::record_budget) records
/// (default [`DEFAULT_RECORD_BUDGET`](AsyncChat::DEFAULT_RECORD_BUDGET), 64). Records left
/// over wait in the scanner; meanwhile the channel reads nothing new and asks for a write
/// event, which a socket with room in its send buffer reports at once, so the next budget
/// is delivered in the next iteration, before the loop waits again, after every other
/// ready channel had its turn. One client's single write of 30,000 commands cannot hold
/// the loop for the whole batch (asynchat delivered a whole read in one go). End of input
/// is reported after the last of them.
///
/// # Differences from asynchat
///
/// Everywhere else the callbacks, their data and what
/// [`get_terminator`](ChatContext::get_terminator) returns in them are asynchat's, with
/// terminators set in either hook; `tests/loop/chat_differential.rs` checks this against
/// CPython 3.11's asynchat, and checks the last two differences below on both sides.
///
/// * The default terminator is [`Terminator::None`] (CPython leaves it unset).
/// * No input is delivered after the channel closed or after `close_when_done`.
/// * A terminator set in `collect_incoming_data` while a [`Terminator::Count`] is being
///   received applies as set: if this data ends the count, `found_terminator` still
///   runs and sees the new terminator, which then applies to the rest of the input; if
///   not, the count is abandoned for the new terminator. asynchat mishandles this call,
///   so it was never usable: when the data ends the count it overwrites the new
///   terminator with `0` (collect everything), otherwise it subtracts the data's length
///   from it (`TypeError` for bytes or `None`, a count shortened by the data already
///   delivered for a new count).
/// * A terminator set in `collect_incoming_data` also applies to a partial terminator
///   kept at the end of the read ("A terminator set in a callback applies to the rest of
///   the same read", above). asynchat rescans those kept bytes only after the next
///   `recv`, so a record they already complete under the new terminator waits for input
///   the peer may never send, a stall.
/// * Pushing after `close_when_done` is an error, not a silent drop.
/// * Record limit and watermarks, above, are additions.
/// * Output is written until the socket would block, not one send per write event.
///
/// # Examples
///
/// A line echo server's connections:
///
/// ```
/// use std::io;
/// use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
/// use sockloop::{Channel, Context, Dispatcher, EventLoop, SockAddr};
///
/// #[derive(Default)]
/// struct EchoLines(Vec<u8>);
///
/// impl ChatHandler for EchoLines {
///     fn collect_incoming_data(&mut self, _: &mut ChatContext<'_>, data: &[u8]) -> io::Result<()> {
///         self.0.extend_from_slice(data);
///         Ok(())
///     }
///     fn found_terminator(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
///         let mut line = std::mem::take(&mut self.0);
///         line.extend_from_slice(b"\r\n");
///         ctx.push_vec(line)
///     }
/// }
///
/// struct Server;
///
/// impl Dispatcher for Server {
///     fn handle_accepted(&mut self, ctx: &mut Context<'_>, channel: Channel, _: SockAddr) -> io::Result<()> {
///         let mut chat = AsyncChat::new(EchoLines::default());
///         chat.set_terminator(Terminator::Bytes(b"\r\n".to_vec()))?;
///         chat.set_max_record(Some(1024));
///         ctx.handle().add(channel, chat)?;
///         Ok(())
///     }
/// }
///
/// let mut event_loop = EventLoop::new()?;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// event_loop.add(Channel::from_socket(listener)?, Server)?;
/// # std::io::Result::Ok(())
/// ```
pub struct AsyncChat<H> {
    handler: H,
    pub(crate) scanner: Scanner,
    staged: Staged,
    in_buffer_size: usize,
    max_record: Option<usize>,
    /// Dropping the rest of an over-long record (the scanner's limit is lifted meanwhile).
    skipping: bool,
    /// `handle_record_too_long` ran and no input was consumed since: a record over the
    /// limit at this same position again is skipped without calling it again.
    stalled: bool,
    watermarks: Option<(usize, usize)>,
    paused: Cell<bool>,
    /// End of file came while records waited for the output to drain: the handler's
    /// `handle_eof` runs once they are delivered.
    eof_waiting: bool,
    /// The most records delivered per read (or write) event; see "Fairness".
    record_budget: usize,
    /// Delivery stopped (at the budget, or at the high-water mark) with input left: the
    /// channel asks for a write event (ready at once on a socket with room) to go on, and
    /// reads nothing new.
    backlog: bool,
}

impl<H> AsyncChat<H> {
    /// asynchat's `ac_in_buffer_size`: the most one read event receives.
    pub const DEFAULT_IN_BUFFER_SIZE: usize = 65536;

    /// The default [record budget](AsyncChat::set_record_budget): 64 records per event.
    pub const DEFAULT_RECORD_BUDGET: usize = 64;

    /// The default output watermarks, `(low, high)`: 64 KiB and 256 KiB.
    pub const DEFAULT_WATERMARKS: (usize, usize) = (64 * 1024, 256 * 1024);

    /// Wraps `handler` with terminator [`Terminator::None`], no record limit, a 64 KiB
    /// input buffer and the default watermarks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
    ///
    /// struct Sink;
    /// impl ChatHandler for Sink {
    ///     fn collect_incoming_data(&mut self, _: &mut ChatContext<'_>, _: &[u8]) -> io::Result<()> { Ok(()) }
    ///     fn found_terminator(&mut self, _: &mut ChatContext<'_>) -> io::Result<()> { Ok(()) }
    /// }
    ///
    /// let chat = AsyncChat::new(Sink);
    /// assert_eq!(chat.get_terminator(), &Terminator::None);
    /// assert_eq!(chat.in_buffer_size(), 65536);
    /// assert_eq!(chat.watermarks(), Some((65536, 262144)));
    /// ```
    pub fn new(handler: H) -> AsyncChat<H> {
        AsyncChat {
            handler,
            scanner: Scanner::new(),
            staged: Staged::default(),
            in_buffer_size: Self::DEFAULT_IN_BUFFER_SIZE,
            max_record: None,
            skipping: false,
            stalled: false,
            watermarks: Some(Self::DEFAULT_WATERMARKS),
            paused: Cell::new(false),
            eof_waiting: false,
            record_budget: Self::DEFAULT_RECORD_BUDGET,
            backlog: false,
        }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Unwraps the handler.
    pub fn into_handler(self) -> H {
        self.handler
    }

    /// Sets the terminator (asynchat's `set_terminator`); inside callbacks use
    /// [`ChatContext::set_terminator`].
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for an empty [`Terminator::Bytes`].
    pub fn set_terminator(&mut self, terminator: Terminator) -> io::Result<()> {
        self.scanner.set_terminator(terminator)?;
        self.skipping = false;
        self.stalled = false;
        self.scanner.set_max_record(self.max_record);
        Ok(())
    }

    /// The current terminator (asynchat's `get_terminator`).
    pub fn get_terminator(&self) -> &Terminator {
        self.scanner.terminator()
    }

    /// Sets the longest [`Terminator::Bytes`] record accepted, not counting the
    /// terminator; `None` (the default) means no limit. See "Record limit" above.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Scripted, Terminator};
    ///
    /// struct Lines(Vec<Vec<u8>>, Vec<u8>);
    /// impl ChatHandler for Lines {
    ///     fn collect_incoming_data(&mut self, _: &mut ChatContext<'_>, d: &[u8]) -> io::Result<()> {
    ///         self.1.extend_from_slice(d);
    ///         Ok(())
    ///     }
    ///     fn found_terminator(&mut self, _: &mut ChatContext<'_>) -> io::Result<()> {
    ///         self.0.push(std::mem::take(&mut self.1));
    ///         Ok(())
    ///     }
    ///     fn handle_record_too_long(&mut self, ctx: &mut ChatContext<'_>, _: io::Error) -> io::Result<()> {
    ///         self.1.clear();
    ///         ctx.push(b"too long\n") // and skip to the next line
    ///     }
    /// }
    ///
    /// let mut chat = AsyncChat::new(Lines(Vec::new(), Vec::new()));
    /// chat.set_terminator(Terminator::Bytes(b"\n".to_vec()))?;
    /// chat.set_max_record(Some(4));
    /// let mut script = Scripted::new(chat);
    /// script.feed(b"abcd\nabcdefgh\nok\n")?;
    /// assert_eq!(script.take_output(), b"too long\n");
    /// assert_eq!(script.handler().0, [&b"abcd"[..], b"ok"]);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn set_max_record(&mut self, max: Option<usize>) {
        self.max_record = max;
        if !self.skipping {
            self.scanner.set_max_record(max);
        }
    }

    /// The record limit.
    pub fn max_record(&self) -> Option<usize> {
        self.max_record
    }

    /// asynchat's `ac_in_buffer_size`: the most bytes one read event receives.
    pub fn in_buffer_size(&self) -> usize {
        self.in_buffer_size
    }

    /// Sets [`in_buffer_size`](AsyncChat::in_buffer_size). (The output side,
    /// `ac_out_buffer_size`, belongs to the channel: [`Channel::set_out_buffer_size`].)
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for 0.
    pub fn set_in_buffer_size(&mut self, size: usize) -> io::Result<()> {
        if size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "input buffer size must be at least 1 byte (asynchat's default is 65536)",
            ));
        }
        self.in_buffer_size = size;
        Ok(())
    }

    /// The output watermarks `(low, high)`, or `None` if reading never pauses.
    pub fn watermarks(&self) -> Option<(usize, usize)> {
        self.watermarks
    }

    /// Sets the record budget: the most records (`found_terminator` calls) delivered per
    /// read or write event, at least 1. See "Fairness".
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use sockloop::chat::{AsyncChat, ChatContext, ChatHandler};
    ///
    /// struct Sink;
    /// impl ChatHandler for Sink {
    ///     fn collect_incoming_data(&mut self, _: &mut ChatContext<'_>, _: &[u8]) -> io::Result<()> { Ok(()) }
    ///     fn found_terminator(&mut self, _: &mut ChatContext<'_>) -> io::Result<()> { Ok(()) }
    /// }
    ///
    /// let mut chat = AsyncChat::new(Sink);
    /// assert_eq!(chat.record_budget(), 64);
    /// chat.set_record_budget(0); // taken as 1
    /// assert_eq!(chat.record_budget(), 1);
    /// ```
    pub fn set_record_budget(&mut self, records: usize) {
        self.record_budget = records.max(1);
    }

    /// The record budget; see [`set_record_budget`](AsyncChat::set_record_budget).
    pub fn record_budget(&self) -> usize {
        self.record_budget
    }

    /// Sets the output watermarks `(low, high)` in bytes: reading from the peer pauses
    /// while more than `high` bytes are unsent, and resumes once at most `low` are.
    /// `None` disables the pause. See "Back-pressure" above.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if `low > high`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::io;
    /// # use sockloop::chat::{AsyncChat, ChatContext, ChatHandler};
    /// # struct Sink;
    /// # impl ChatHandler for Sink {
    /// #     fn collect_incoming_data(&mut self, _: &mut ChatContext<'_>, _: &[u8]) -> io::Result<()> { Ok(()) }
    /// #     fn found_terminator(&mut self, _: &mut ChatContext<'_>) -> io::Result<()> { Ok(()) }
    /// # }
    /// let mut chat = AsyncChat::new(Sink);
    /// chat.set_watermarks(Some((1024, 8192)))?;
    /// assert!(chat.set_watermarks(Some((2, 1))).is_err());
    /// chat.set_watermarks(None)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn set_watermarks(&mut self, watermarks: Option<(usize, usize)>) -> io::Result<()> {
        if let Some((low, high)) = watermarks {
            if low > high {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("low-water mark {low} is above the high-water mark {high}: need low <= high"),
                ));
            }
        }
        self.watermarks = watermarks;
        self.paused.set(false);
        Ok(())
    }

    /// True while reading is paused: too much output is unsent, or records already
    /// received wait for the peer to take the replies to earlier ones.
    pub fn is_reading_paused(&self) -> bool {
        self.paused.get() || self.backlog
    }

    /// Updates and returns the pause state for `pending` unsent bytes.
    fn pause_for(&self, pending: usize) -> bool {
        let paused = match self.watermarks {
            None => false,
            Some((low, _)) if self.paused.get() => pending > low,
            Some((_, high)) => pending > high,
        };
        self.paused.set(paused);
        paused
    }

    /// Runs one handler hook with a [`ChatContext`], then applies what it staged.
    pub(crate) fn call<S: 'static, R>(
        &mut self,
        io: &mut dyn Transport<S>,
        hook: impl FnOnce(&mut H, &mut ChatContext<'_, S>) -> io::Result<R>,
    ) -> io::Result<R>
    where
        H: ChatHandler<S>,
    {
        let mut ctx = ChatContext {
            io,
            terminator: self.scanner.terminator(),
            max_record: self.max_record,
            staged: &mut self.staged,
        };
        let result = hook(&mut self.handler, &mut ctx);
        self.apply_staged()?;
        result
    }

    fn apply_staged(&mut self) -> io::Result<()> {
        let staged = std::mem::take(&mut self.staged);
        if let Some(max) = staged.max_record {
            self.max_record = max;
        }
        if staged.discard_input {
            self.scanner.discard();
            self.stalled = false;
        }
        if let Some(t) = staged.terminator {
            self.scanner.set_terminator(t)?;
            self.skipping = false;
        }
        if !self.skipping {
            self.scanner.set_max_record(self.max_record);
        }
        Ok(())
    }

    /// Makes the callbacks for the input buffered in the scanner, until it is used up or
    /// the channel stops taking input.
    pub(crate) fn deliver<S: 'static>(
        &mut self,
        io: &mut dyn Transport<S>,
        budget: usize,
    ) -> io::Result<()>
    where
        H: ChatHandler<S>,
    {
        self.backlog = false;
        let mut records = 0;
        loop {
            if records == budget {
                // The rest waits for the next event (see "Fairness").
                self.backlog = self.scanner.buffered() > 0;
                return Ok(());
            }
            if io.stops_input() {
                self.scanner.discard();
                return Ok(());
            }
            if self.pause_for(io.pending_output()) {
                // Over the high-water mark: the rest of this read waits in the scanner
                // until the peer has taken enough output (`handle_write` resumes), so a
                // read full of commands cannot make the replies grow without bound. A
                // backlog: the write event comes back even if the queue drains outside
                // `handle_write` (the flush after a hook that gathered output).
                self.backlog = self.scanner.buffered() > 0;
                return Ok(());
            }
            let (piece, terminator) = match self.scanner.next_piece_with_terminator() {
                Ok(Some(next)) => {
                    self.stalled = false;
                    next
                }
                Ok(None) => return Ok(()),
                Err(err) => {
                    // Over the limit: from now on drop the record's rest (the scanner's
                    // error is sticky, so lift its limit), and let the handler decide.
                    self.skipping = true;
                    self.scanner.set_max_record(None);
                    if self.stalled {
                        // Over the limit again with nothing consumed since the hook: it set
                        // a terminator under a limit of 0 and data follows. Calling it again
                        // could loop forever (fuzz_mirror's
                        // `regression_limit_zero_switch_in_hook_livelock`): skip this record.
                        continue;
                    }
                    self.stalled = true;
                    self.call(&mut *io, |h, ctx| h.handle_record_too_long(ctx, err))?;
                    continue;
                }
            };
            if self.skipping {
                if piece == Piece::Terminator {
                    self.skipping = false;
                    self.scanner.set_max_record(self.max_record);
                }
                continue;
            }
            let mut ctx = ChatContext {
                io: &mut *io,
                terminator: &terminator,
                max_record: self.max_record,
                staged: &mut self.staged,
            };
            let result = match piece {
                Piece::Data(data) => self.handler.collect_incoming_data(&mut ctx, data),
                Piece::Terminator => {
                    records += 1;
                    self.handler.found_terminator(&mut ctx)
                }
            };
            self.apply_staged()?;
            result?;
        }
    }
}

impl<S: 'static, H: ChatHandler<S>> Dispatcher<S> for AsyncChat<H> {
    /// False while the output queue is over the high-water mark, until it drains to the
    /// low-water mark.
    fn readable(&self, channel: &Channel) -> bool {
        !self.pause_for(channel.pending_output()) && !self.backlog && self.handler.readable(channel)
    }

    /// The handler's answer, or true while records wait beyond the budget (the write
    /// event delivers them).
    fn writable(&self, channel: &Channel) -> bool {
        self.backlog || self.handler.writable(channel)
    }

    fn handle_expt(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        self.call(ctx, |h, ctx| h.handle_expt(ctx))
    }

    fn handle_timeout(&mut self, ctx: &mut Context<'_, S>, which: Timeout) -> io::Result<()> {
        self.call(ctx, |h, ctx| h.handle_timeout(ctx, which))
    }

    fn handle_drained(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        self.call(ctx, |h, ctx| h.handle_drained(ctx))
    }

    fn handle_connect(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        self.call(ctx, |h, ctx| h.handle_connect(ctx))
    }

    /// One `recv` of up to `in_buffer_size` bytes, then the callbacks for it.
    fn handle_read(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        let size = self.in_buffer_size;
        let n = RECV_BUF.with_borrow_mut(|buf| {
            if buf.len() < size {
                buf.resize(size, 0);
            }
            let n = match ctx.recv(&mut buf[..size]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0, // nothing yet
                r => r?,
            };
            // Copied into the scanner before any callback runs: the shared buffer is free
            // again when the handler (or another channel's hook) next needs it.
            self.scanner.feed(&buf[..n]);
            io::Result::Ok(n)
        })?;
        if n == 0 {
            return Ok(()); // would block, or end of file (then `handle_eof`)
        }
        let delivered = self.deliver(ctx, self.record_budget);
        self.scanner.release_idle_memory();
        delivered
    }

    /// Sends queued output until the socket would block; then, if delivery stopped (at
    /// the high-water mark or the record budget) with input still buffered and the
    /// output is below the low mark, delivers the next budget of it.
    fn handle_write(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        ctx.flush()?;
        if self.scanner.buffered() > 0 && !self.pause_for(ctx.pending_output()) {
            self.deliver(ctx, self.record_budget)?;
            self.scanner.release_idle_memory();
        }
        if self.eof_waiting && !self.paused.get() && !self.backlog {
            self.eof_waiting = false;
            return self.call(ctx, |h, ctx| h.handle_eof(ctx));
        }
        Ok(())
    }

    /// The handler's [`handle_eof`](ChatHandler::handle_eof), after the records already
    /// received: if delivery is paused at the high-water mark, it runs once they are
    /// delivered, so a request followed by end of file is still answered.
    fn handle_eof(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        if self.scanner.buffered() > 0 && (self.paused.get() || self.backlog) {
            self.eof_waiting = true;
            return Ok(());
        }
        self.call(ctx, |h, ctx| h.handle_eof(ctx))
    }

    fn handle_close(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        self.call(ctx, |h, ctx| h.handle_close(ctx))
    }

    fn handle_error(&mut self, ctx: &mut Context<'_, S>, err: io::Error) -> io::Result<()> {
        self.call(ctx, |h, ctx| h.handle_error(ctx, err))
    }
}

impl<H> fmt::Debug for AsyncChat<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncChat")
            .field("terminator", self.scanner.terminator())
            .field("buffered", &self.scanner.buffered())
            .field("max_record", &self.max_record)
            .field("in_buffer_size", &self.in_buffer_size)
            .field("watermarks", &self.watermarks)
            .field("reading_paused", &self.paused.get())
            .finish()
    }
}

//! `Scripted`: drive a chat handler from a script of reads, with no socket.

use std::fmt;
use std::io;

use crate::chat::async_chat::AsyncChat;
use crate::chat::handler::ChatHandler;
use crate::chat::transport::Transport;
use crate::errors::ErrorRoute;
use crate::handle::LoopHandle;
use crate::producer::Producer;
use crate::sys::{Backend, Selector};
use crate::token::Token;

/// The far end of a scripted transport: what the handler sent, whether it closed, and the
/// loop handle (with the state) its callbacks see.
struct ScriptPeer<S> {
    handle: LoopHandle<S>,
    out: Vec<u8>,
    pub(crate) closing: bool,
    /// `request_close` was called: `handle_close` after the callback.
    close_requested: bool,
    pub(crate) closed: bool,
    /// `handle_close` has run.
    reported: bool,
}

/// The token a scripted channel reports: it names no channel in the script's handle.
const SCRIPT_TOKEN: Token = Token {
    index: u32::MAX,
    generation: 0,
};

impl<S: 'static> ScriptPeer<S> {
    fn check_open(&self) -> io::Result<()> {
        if self.closed {
            Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the channel is closed",
            ))
        } else if self.closing {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "output pushed after close_when_done: the channel closes once its queue \
                 drains and accepts no more output",
            ))
        } else {
            Ok(())
        }
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.check_open()?;
        self.out.extend_from_slice(data);
        Ok(())
    }

    fn write_producer(&mut self, producer: &mut dyn Producer) -> io::Result<()> {
        self.check_open()?;
        let mut buf = [0u8; 4096];
        loop {
            match producer.fill(&mut buf)? {
                0 => return Ok(()),
                n if n > buf.len() => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("a producer reported {n} bytes filled into a 4096-byte buffer"),
                    ))
                }
                n => self.out.extend_from_slice(&buf[..n]),
            }
        }
    }
}

impl<S: 'static> Transport<S> for ScriptPeer<S> {
    fn push(&mut self, data: &[u8]) -> io::Result<()> {
        self.write(data)
    }
    fn push_vec(&mut self, data: Vec<u8>) -> io::Result<()> {
        self.write(&data)
    }
    fn push_producer(&mut self, mut producer: Box<dyn Producer>) -> io::Result<()> {
        self.write_producer(&mut *producer)
    }
    fn close_when_done(&mut self) {
        if !self.closed {
            self.closing = true;
        }
    }
    fn request_close(&mut self) {
        if !self.closed {
            self.close_requested = true;
        }
    }
    fn is_closing(&self) -> bool {
        self.closing
    }
    fn close(&mut self) {
        self.closed = true;
    }
    fn is_closed(&self) -> bool {
        self.closed
    }
    fn discard_output(&mut self) -> usize {
        0 // output is taken at once: nothing is ever queued
    }
    fn pending_output(&self) -> usize {
        0
    }
    fn stops_input(&self) -> bool {
        self.closed || self.closing
    }
    fn token(&self) -> Token {
        SCRIPT_TOKEN
    }
    fn handle(&mut self) -> &mut LoopHandle<S> {
        &mut self.handle
    }
    fn handle_ref(&self) -> &LoopHandle<S> {
        &self.handle
    }
    fn describe(&self) -> String {
        "<scripted chat>".to_string()
    }
}

/// A scripted transport: runs an [`AsyncChat`]'s handler on reads you give it, with no
/// socket and no loop, and records what it sends. For testing protocol handlers (the
/// pattern CPython's smtpd tests needed mock sockets for).
///
/// [`feed`](Scripted::feed) is one `recv` returning those bytes (split into pieces of at
/// most [`in_buffer_size`](AsyncChat::in_buffer_size), as a real read would be), followed
/// by the callbacks the loop would make. Output is taken at once, as by a peer that always
/// reads. Errors are routed as the loop routes them: a disconnect error to
/// [`handle_close`](ChatHandler::handle_close), anything else to
/// [`handle_error`](ChatHandler::handle_error), whose error closes the channel through
/// `handle_close`. A drained [`close_when_done`](crate::chat::ChatContext::close_when_done)
/// runs `handle_close` after the callback, as on a real channel.
///
/// The handler's [`ChatContext::handle`](crate::chat::ChatContext::handle) is the
/// script's own [`LoopHandle`], holding the state given to
/// [`with_state`](Scripted::with_state) (no channels; timers set there wait until the
/// test runs them with [`run_timers`](Scripted::run_timers)).
///
/// What it does not model: back-pressure (output is taken at once, so
/// [`pending_output`](crate::chat::ChatContext::pending_output) is 0 and
/// `handle_drained` never runs) and the channel's own idle and connect timeouts
/// (`handle_timeout` never runs); test those on a real channel (`Channel::pair`).
///
/// # Examples
///
/// ```
/// use std::io;
/// use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Scripted, Terminator};
///
/// /// Answers `PING` with `PONG`, `QUIT` with `BYE` and a close.
/// #[derive(Default)]
/// struct Ping(Vec<u8>);
///
/// impl ChatHandler for Ping {
///     fn collect_incoming_data(&mut self, _: &mut ChatContext<'_>, data: &[u8]) -> io::Result<()> {
///         self.0.extend_from_slice(data);
///         Ok(())
///     }
///     fn found_terminator(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
///         match std::mem::take(&mut self.0).as_slice() {
///             b"PING" => ctx.push(b"PONG\r\n"),
///             b"QUIT" => {
///                 ctx.push(b"BYE\r\n")?;
///                 ctx.close_when_done();
///                 Ok(())
///             }
///             _ => ctx.push(b"ERR\r\n"),
///         }
///     }
/// }
///
/// let mut chat = AsyncChat::new(Ping::default());
/// chat.set_terminator(Terminator::Bytes(b"\r\n".to_vec()))?;
/// let mut script = Scripted::new(chat);
/// script.feed(b"PI")?;
/// script.feed(b"NG\r\nQUIT\r\nPING\r\n")?; // input after QUIT is dropped
/// assert_eq!(script.take_output(), b"PONG\r\nBYE\r\n");
/// assert!(script.is_closed());
/// # std::io::Result::Ok(())
/// ```
pub struct Scripted<H, S = ()> {
    chat: AsyncChat<H>,
    peer: ScriptPeer<S>,
}

impl<H: ChatHandler> Scripted<H> {
    /// A scripted transport around `chat`, open and connected, with no state.
    pub fn new(chat: AsyncChat<H>) -> Scripted<H> {
        Scripted::with_state(chat, ())
    }
}

impl<S: 'static, H: ChatHandler<S>> Scripted<H, S> {
    /// A scripted transport around `chat` whose callbacks see `state` as the loop's
    /// state.
    pub fn with_state(chat: AsyncChat<H>, state: S) -> Scripted<H, S> {
        Scripted {
            chat,
            peer: ScriptPeer {
                // select(2) allocates nothing until it waits, and this handle never
                // waits: it only holds the state and the timers the handler sets.
                handle: LoopHandle::new(
                    Selector::new(Backend::Select).expect("select needs no setup"),
                    state,
                ),
                out: Vec::new(),
                closing: false,
                close_requested: false,
                closed: false,
                reported: false,
            },
        }
    }

    /// The handle the handler's callbacks see (its state, its timers).
    pub fn handle(&mut self) -> &mut LoopHandle<S> {
        &mut self.peer.handle
    }

    /// The state the handler's callbacks see.
    pub fn state(&self) -> &S {
        self.peer.handle.state()
    }

    /// The state, mutably.
    pub fn state_mut(&mut self) -> &mut S {
        self.peer.handle.state_mut()
    }

    /// Runs the timers the handler set that are due at `now` (pass a later instant to
    /// run them early: time in a script is the test's). Returns how many ran.
    pub fn run_timers(&mut self, now: std::time::Instant) -> usize {
        self.peer.handle.stop = None;
        self.peer.handle.run_timers(now)
    }

    /// Runs [`handle_connect`](ChatHandler::handle_connect), as after an outgoing connect.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotConnected`] if the channel is already closed.
    pub fn connect(&mut self) -> io::Result<()> {
        self.check_open()?;
        let result = self
            .chat
            .call(&mut self.peer, |h, ctx| h.handle_connect(ctx));
        self.route(result);
        Ok(())
    }

    /// Delivers `data` as received input: one read per
    /// [`in_buffer_size`](AsyncChat::in_buffer_size) bytes, each followed by the callbacks
    /// it leads to. Stops early if the channel closes. Empty `data` does nothing (an empty
    /// read would be end of file: use [`feed_eof`](Scripted::feed_eof)).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotConnected`] if the channel was already closed (a script that
    /// goes on talking to a closed channel is usually a mistake in the test). Errors from
    /// the handler are not returned: they are routed as described on [`Scripted`].
    pub fn feed(&mut self, data: &[u8]) -> io::Result<()> {
        self.check_open()?;
        for read in data.chunks(self.chat.in_buffer_size()) {
            if self.peer.closed {
                break;
            }
            self.chat.scanner.feed(read);
            // No loop to come back: everything is delivered at once.
            let result = self.chat.deliver(&mut self.peer, usize::MAX);
            self.route(result);
        }
        Ok(())
    }

    /// The peer shut down its end: [`handle_eof`](ChatHandler::handle_eof) runs, as after
    /// a read that returns end of file. Its default,
    /// [`close_when_done`](crate::chat::ChatContext::close_when_done), closes at once
    /// here (output is taken at once), so [`handle_close`](ChatHandler::handle_close)
    /// follows. Nothing happens if the channel is closed already.
    pub fn feed_eof(&mut self) {
        if self.peer.closed {
            return;
        }
        let result = self.chat.call(&mut self.peer, |h, ctx| h.handle_eof(ctx));
        self.route(result);
    }

    /// Everything sent so far and not yet taken.
    pub fn output(&self) -> &[u8] {
        &self.peer.out
    }

    /// Takes everything sent so far.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.peer.out)
    }

    /// True once the channel is closed (by the handler, or after `handle_close`).
    pub fn is_closed(&self) -> bool {
        self.peer.closed
    }

    /// True once the handler called `close_when_done`.
    pub fn is_closing(&self) -> bool {
        self.peer.closing
    }

    /// True once `handle_close` ran.
    pub fn is_close_reported(&self) -> bool {
        self.peer.reported
    }

    /// The wrapped [`AsyncChat`] (terminator, limits).
    pub fn chat(&self) -> &AsyncChat<H> {
        &self.chat
    }

    /// The wrapped [`AsyncChat`], mutably.
    pub fn chat_mut(&mut self) -> &mut AsyncChat<H> {
        &mut self.chat
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        self.chat.handler()
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        self.chat.handler_mut()
    }

    fn check_open(&self) -> io::Result<()> {
        if self.peer.closed {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the scripted channel is closed",
            ));
        }
        Ok(())
    }

    /// What the loop does with a hook's result, then after the hook.
    fn route(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => {}
            Err(_) if self.peer.closed => {}
            Err(e) => match ErrorRoute::of(&e) {
                ErrorRoute::Ignore => {}
                ErrorRoute::Close => self.close_event(),
                ErrorRoute::HandleError => {
                    let handled = self
                        .chat
                        .call(&mut self.peer, |h, ctx| h.handle_error(ctx, e));
                    if handled.is_err() {
                        self.close_event();
                    }
                }
            },
        }
        // Output is taken at once, so a close_when_done is reached as soon as it is made.
        if (self.peer.closing || self.peer.close_requested) && !self.peer.closed {
            self.close_event();
        }
    }

    fn close_event(&mut self) {
        if !self.peer.closed && !self.peer.reported {
            self.peer.reported = true;
            let result = self.chat.call(&mut self.peer, |h, ctx| h.handle_close(ctx));
            if let Err(e) = result {
                crate::report::error!("handle_close failed on a scripted chat ({e})");
            }
        }
        self.peer.closed = true;
    }
}

impl<H, S> fmt::Debug for Scripted<H, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scripted")
            .field("chat", &self.chat)
            .field("output", &self.peer.out.len())
            .field("closing", &self.peer.closing)
            .field("closed", &self.peer.closed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{ChatContext, Terminator};
    use crate::producer::SimpleProducer;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Data(Vec<u8>),
        Term,
        TooLong,
        Error(io::ErrorKind),
        Close,
        Connect,
    }

    type Action = Box<dyn FnMut(&mut ChatContext<'_>, &Ev, usize) -> io::Result<()>>;

    /// Records callbacks; `action` runs on each with the number of terminators so far.
    struct Rec {
        events: Vec<Ev>,
        terms: usize,
        action: Action,
        too_long_ok: bool,
    }

    impl Rec {
        fn on(&mut self, ctx: &mut ChatContext<'_>, ev: Ev) -> io::Result<()> {
            self.events.push(ev.clone());
            (self.action)(ctx, &ev, self.terms)
        }
    }

    impl ChatHandler for Rec {
        fn collect_incoming_data(
            &mut self,
            ctx: &mut ChatContext<'_>,
            data: &[u8],
        ) -> io::Result<()> {
            assert!(!data.is_empty());
            self.on(ctx, Ev::Data(data.to_vec()))
        }
        fn found_terminator(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
            let r = self.on(ctx, Ev::Term);
            self.terms += 1;
            r
        }
        fn handle_connect(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
            self.on(ctx, Ev::Connect)
        }
        fn handle_record_too_long(
            &mut self,
            ctx: &mut ChatContext<'_>,
            err: io::Error,
        ) -> io::Result<()> {
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            self.on(ctx, Ev::TooLong)?;
            if self.too_long_ok {
                Ok(())
            } else {
                Err(err)
            }
        }
        fn handle_close(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
            self.events.push(Ev::Close);
            ctx.close();
            Ok(())
        }
        fn handle_error(&mut self, _: &mut ChatContext<'_>, err: io::Error) -> io::Result<()> {
            self.events.push(Ev::Error(err.kind()));
            Err(err)
        }
    }

    /// Adjacent data pieces joined: what the handler sees, whatever the read sizes.
    fn merged(events: &[Ev]) -> Vec<Ev> {
        let mut out: Vec<Ev> = Vec::new();
        for ev in events {
            match (out.last_mut(), ev) {
                (Some(Ev::Data(a)), Ev::Data(b)) => a.extend_from_slice(b),
                _ => out.push(ev.clone()),
            }
        }
        out
    }

    fn d(b: &[u8]) -> Ev {
        Ev::Data(b.to_vec())
    }

    fn script(
        t: Terminator,
        action: impl FnMut(&mut ChatContext<'_>, &Ev, usize) -> io::Result<()> + 'static,
    ) -> Scripted<Rec> {
        let mut chat = AsyncChat::new(Rec {
            events: Vec::new(),
            terms: 0,
            action: Box::new(action),
            too_long_ok: false,
        });
        chat.set_terminator(t).unwrap();
        Scripted::new(chat)
    }

    fn bytes(t: &[u8]) -> Terminator {
        Terminator::Bytes(t.to_vec())
    }

    fn nothing(_: &mut ChatContext<'_>, _: &Ev, _: usize) -> io::Result<()> {
        Ok(())
    }

    #[test]
    fn bytes_terminator_split_anywhere_and_empty_records() {
        let mut s = script(bytes(b"\r\n"), nothing);
        for chunk in [&b"ab\r"[..], b"\n\r", b"\ncd", b"\r", b"\n"] {
            s.feed(chunk).unwrap();
        }
        assert_eq!(
            s.handler().events,
            [d(b"ab"), Ev::Term, Ev::Term, d(b"cd"), Ev::Term]
        );
    }

    #[test]
    fn switch_inside_found_terminator_applies_to_same_read() {
        let mut s = script(bytes(b"\n"), |ctx, ev, terms| {
            if *ev == Ev::Term {
                let next = if terms == 0 {
                    Terminator::Count(3)
                } else {
                    bytes(b"\n")
                };
                ctx.set_terminator(next)?;
                assert!(matches!(
                    ctx.get_terminator(),
                    Terminator::Count(3) | Terminator::Bytes(_)
                ));
            }
            Ok(())
        });
        s.feed(b"len\nab\ncd\n").unwrap();
        assert_eq!(
            s.handler().events,
            [
                d(b"len"),
                Ev::Term,
                d(b"ab\n"),
                Ev::Term,
                d(b"cd"),
                Ev::Term
            ]
        );
        assert_eq!(s.chat().get_terminator(), &bytes(b"\n"));
    }

    #[test]
    fn count_counts_down_across_reads() {
        let mut s = script(Terminator::Count(5), |ctx, ev, _| {
            // As asynchat's get_terminator: the count before this data.
            if *ev == d(b"ab") {
                assert_eq!(ctx.get_terminator(), &Terminator::Count(5));
            }
            if *ev == d(b"cde") {
                assert_eq!(ctx.get_terminator(), &Terminator::Count(3));
            }
            if *ev == Ev::Term || *ev == d(b"fg") {
                assert_eq!(ctx.get_terminator(), &Terminator::Count(0));
            }
            Ok(())
        });
        s.feed(b"ab").unwrap();
        s.feed(b"cdefg").unwrap();
        assert_eq!(
            s.handler().events,
            [d(b"ab"), d(b"cde"), Ev::Term, d(b"fg")]
        );
        assert_eq!(s.chat().get_terminator(), &Terminator::Count(0));
    }

    #[test]
    fn reads_are_cut_at_in_buffer_size() {
        let mut s = script(Terminator::None, nothing);
        s.chat_mut().set_in_buffer_size(3).unwrap();
        assert!(s.chat_mut().set_in_buffer_size(0).is_err());
        s.feed(b"abcdefg").unwrap();
        assert_eq!(s.handler().events, [d(b"abc"), d(b"def"), d(b"g")]);
    }

    #[test]
    fn close_in_found_terminator_stops_parsing() {
        let mut s = script(bytes(b";"), |ctx, ev, _| {
            if *ev == Ev::Term {
                ctx.close();
            }
            Ok(())
        });
        s.feed(b"a;b;c;").unwrap();
        assert_eq!(s.handler().events, [d(b"a"), Ev::Term]);
        assert!(s.is_closed() && !s.is_close_reported());
        assert_eq!(
            s.feed(b"x").unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );
    }

    #[test]
    fn close_when_done_drops_later_input_and_closes_once() {
        let mut s = script(bytes(b";"), |ctx, ev, _| {
            if *ev == Ev::Term {
                ctx.push(b"bye")?;
                ctx.close_when_done();
                assert!(ctx.is_closing());
            }
            Ok(())
        });
        s.feed(b"quit;more;").unwrap();
        assert_eq!(s.handler().events, [d(b"quit"), Ev::Term, Ev::Close]);
        assert_eq!(s.output(), b"bye");
        assert!(s.is_closed());
        s.feed_eof();
        assert_eq!(s.handler().events.len(), 3, "handle_close runs once");
    }

    #[test]
    fn push_after_close_when_done_is_an_error() {
        let mut s = script(bytes(b";"), |ctx, ev, _| {
            if *ev == Ev::Term {
                ctx.close_when_done();
                return ctx.push(b"late");
            }
            Ok(())
        });
        s.feed(b"x;").unwrap();
        assert_eq!(
            s.handler().events,
            [
                d(b"x"),
                Ev::Term,
                Ev::Error(io::ErrorKind::InvalidInput),
                Ev::Close
            ]
        );
        assert!(s.output().is_empty());
    }

    #[test]
    fn disconnect_errors_go_to_handle_close() {
        let mut s = script(bytes(b";"), |_, ev, _| match ev {
            Ev::Term => Err(io::Error::from_raw_os_error(
                rustix::io::Errno::PIPE.raw_os_error(),
            )),
            _ => Ok(()),
        });
        s.feed(b"x;y;").unwrap();
        assert_eq!(s.handler().events, [d(b"x"), Ev::Term, Ev::Close]);
    }

    #[test]
    fn record_too_long_closes_by_default() {
        let mut s = script(bytes(b"\n"), nothing);
        s.chat_mut().set_max_record(Some(3));
        s.feed(b"ab\nabcdef\nok\n").unwrap();
        assert_eq!(
            s.handler().events,
            [
                d(b"ab"),
                Ev::Term,
                d(b"abc"),
                Ev::TooLong,
                Ev::Error(io::ErrorKind::InvalidData),
                Ev::Close
            ]
        );
        assert!(s.is_closed());
    }

    #[test]
    fn record_too_long_handled_skips_to_next_record_whatever_the_reads() {
        let input = b"ab\nabcdefgh\r\nxyz\n\n";
        let expect = [
            d(b"ab"),
            Ev::Term,
            d(b"abc"),
            Ev::TooLong,
            d(b"xyz"),
            Ev::Term,
            Ev::Term,
        ];
        for size in 1..=input.len() {
            let mut s = script(bytes(b"\n"), nothing);
            s.handler_mut().too_long_ok = true;
            s.chat_mut().set_max_record(Some(3));
            for chunk in input.chunks(size) {
                s.feed(chunk).unwrap();
            }
            assert_eq!(merged(&s.handler().events), expect, "reads of {size}");
            assert!(!s.is_closed());
            assert_eq!(s.chat().max_record(), Some(3));
        }
    }

    #[test]
    fn set_terminator_in_too_long_hook_ends_skipping() {
        let mut s = script(bytes(b"\n"), |ctx, ev, _| {
            if *ev == Ev::TooLong {
                ctx.set_terminator(Terminator::Count(2))?;
            }
            Ok(())
        });
        s.handler_mut().too_long_ok = true;
        s.chat_mut().set_max_record(Some(2));
        s.feed(b"abcdef\n").unwrap();
        assert_eq!(
            s.handler().events,
            [d(b"ab"), Ev::TooLong, d(b"cd"), Ev::Term, d(b"ef\n")]
        );
    }

    #[test]
    fn set_terminator_in_too_long_hook_under_limit_zero_makes_progress() {
        // Found by fuzzing (tests/loop/fuzz_mirror.rs,
        // regression_limit_zero_switch_in_hook_livelock): the record the hook starts is
        // over a limit of 0 at once; it used to call the hook again, forever.
        let mut hooks = 0;
        let mut s = script(bytes(b"\n"), move |ctx, ev, _| {
            if *ev == Ev::TooLong {
                hooks += 1;
                assert!(hooks < 10, "handle_record_too_long called in a loop");
                ctx.set_terminator(bytes(b"\n"))?;
            }
            Ok(())
        });
        s.handler_mut().too_long_ok = true;
        s.chat_mut().set_max_record(Some(0));
        s.feed(b"x\n\nab\n").unwrap();
        s.feed(b"\n").unwrap();
        assert_eq!(
            s.handler().events,
            [Ev::TooLong, Ev::Term, Ev::TooLong, Ev::Term]
        );
        assert!(!s.is_closed());
    }

    #[test]
    fn max_record_can_be_lifted_and_restored_from_callbacks() {
        // A command line is limited, a body is not.
        let mut s = script(bytes(b"\n"), |ctx, ev, _| {
            match ev {
                Ev::Data(d) if d.as_slice() == b"BODY" => ctx.set_max_record(None),
                Ev::Data(d) if d.as_slice() == b"END" => ctx.set_max_record(Some(4)),
                _ => {}
            }
            Ok(())
        });
        s.chat_mut().set_max_record(Some(4));
        s.feed(b"BODY\n0123456789\nEND\nabcdef\n").unwrap();
        let ev = &s.handler().events;
        assert_eq!(
            ev[..6],
            [
                d(b"BODY"),
                Ev::Term,
                d(b"0123456789"),
                Ev::Term,
                d(b"END"),
                Ev::Term
            ]
        );
        assert_eq!(ev[6..8], [d(b"abcd"), Ev::TooLong]);
    }

    #[test]
    fn discard_buffers_drops_the_rest_of_the_input() {
        let mut s = script(bytes(b";"), |ctx, ev, _| {
            if *ev == d(b"b") {
                assert_eq!(ctx.discard_buffers(), 0);
            }
            Ok(())
        });
        s.feed(b"a;b;c;").unwrap();
        s.feed(b"d;").unwrap();
        assert_eq!(
            s.handler().events,
            [d(b"a"), Ev::Term, d(b"b"), d(b"d"), Ev::Term]
        );
    }

    #[test]
    fn empty_terminator_is_rejected_and_nothing_changes() {
        let mut s = script(bytes(b";"), |ctx, ev, _| {
            if *ev == Ev::Term {
                let err = ctx
                    .set_terminator(Terminator::Bytes(Vec::new()))
                    .unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
                assert_eq!(ctx.get_terminator(), &Terminator::Bytes(b";".to_vec()));
            }
            Ok(())
        });
        s.feed(b"a;b;").unwrap();
        assert_eq!(s.handler().events, [d(b"a"), Ev::Term, d(b"b"), Ev::Term]);
        assert!(s
            .chat_mut()
            .set_terminator(Terminator::Bytes(Vec::new()))
            .is_err());
    }

    #[test]
    fn producers_and_connect() {
        let mut s = script(Terminator::None, |ctx, ev, _| {
            if *ev == Ev::Connect {
                // The script's own handle: no channels, not even this one.
                let token = ctx.token();
                assert!(ctx.handle().is_empty() && ctx.handle().channel(token).is_none());
                ctx.push_with_producer(SimpleProducer::new("hello ", 2)?)?;
                ctx.push_vec(b"world".to_vec())?;
                assert_eq!(ctx.pending_output(), 0);
            }
            Ok(())
        });
        s.connect().unwrap();
        assert_eq!(s.take_output(), b"hello world");
        assert!(s.output().is_empty());
        s.feed(b"").unwrap();
        assert_eq!(s.handler().events, [Ev::Connect]);
        s.feed_eof();
        assert_eq!(s.handler().events, [Ev::Connect, Ev::Close]);
        assert!(s.connect().is_err());
    }

    #[test]
    fn handle_error_returning_ok_keeps_the_channel() {
        struct Forgiving(usize);
        impl ChatHandler for Forgiving {
            fn collect_incoming_data(
                &mut self,
                _: &mut ChatContext<'_>,
                _: &[u8],
            ) -> io::Result<()> {
                Err(io::Error::other("bad input"))
            }
            fn found_terminator(&mut self, _: &mut ChatContext<'_>) -> io::Result<()> {
                Ok(())
            }
            fn handle_error(&mut self, _: &mut ChatContext<'_>, _: io::Error) -> io::Result<()> {
                self.0 += 1;
                Ok(())
            }
        }
        let mut s = Scripted::new(AsyncChat::new(Forgiving(0)));
        s.feed(b"x").unwrap();
        s.feed(b"y").unwrap();
        assert_eq!(s.handler().0, 2);
        assert!(!s.is_closed());
        assert!(format!("{s:?}").contains("Scripted"));
    }
}

//! The SMTP sink's protocol session, its listener and its storage, without the
//! command-line program (`main.rs`): the tests and the fuzz target include this file (and,
//! through it, `maildir.rs`).
//!
//! RFC 5321, minus relaying: `220` greeting; `HELO`/`EHLO` (EHLO advertises `SIZE` and
//! `8BITMIME`); `MAIL FROM:<addr>` (with `SIZE=` and `BODY=` after EHLO); `RCPT TO:<addr>`
//! (several); `DATA` up to a line holding a single `.`, with dot-unstuffing; `RSET`, `NOOP`,
//! `VRFY` (`252`), `HELP`, `QUIT`. Errors: `500` unknown command, command line over 512
//! bytes (CRLF included) or holding a bare CR or LF; `501` syntax; `503` bad sequence;
//! `552` over `--max-size` (declared with `SIZE=`, or counted while receiving: the body is
//! dropped as soon as it is over, so memory stays bounded); `555` unknown parameters.
//!
//! **Bare CR and LF are refused** (RFC 5321 2.3.8; Postfix's `smtpd_forbid_bare_newline`):
//! a CR or LF that is not part of a CRLF inside DATA makes the whole message `550 5.5.2`
//! at its end (the body is dropped at once, nothing is stored); the session goes on. So
//! every stored line ends in CRLF and a stored file cannot carry `<LF>.<LF>` or
//! `<CR>.<CR>` to smuggle a second message past the next MTA that re-injects it.
//!
//! Each accepted message is delivered into a Maildir ([`maildir`]): `DIR/tmp/NAME`, fsync,
//! rename to `DIR/new/NAME`, fsync of `new/`; mode 0600. The file holds `X-Mail-From:
//! <addr>` and `X-Rcpt-To: <addr>, <addr>` (addresses without angle brackets; the null
//! sender is empty), then the message exactly as received after unstuffing. `250 OK:
//! queued as NAME` is sent only once the message is durable. A rejected or aborted message
//! (RSET, disconnect during DATA, too large, bare CR/LF, a storage error) leaves nothing.
//! Storage errors are answered `552` (the file size limit, `RLIMIT_FSIZE`: the program
//! ignores `SIGXFSZ`, so the write fails with `EFBIG`), `452` (disk or quota full) or `451`
//! (anything else), and logged with the path.
//!
//! **Storage runs off the loop thread** ([`Storage::Writer`]): a writer thread takes the
//! messages in order, writes a batch, syncs `new/` once for the batch (a group commit), and
//! sends the results back to the loop through a `Remote`. Meanwhile the session goes on
//! parsing (pipelining), but its replies keep their order: every reply after a message
//! waits for that message's `250`. While a session has more than [`MAX_IN_FLIGHT_BYTES`]
//! of messages or [`MAX_DEFERRED`] replies waiting, it is not read from. The scripted tests
//! and the fuzz target use [`Storage::Inline`] (same code, on the calling thread).
//!
//! The settings and the storage are the loop's state ([`Sink`]): every session reads them
//! through its context, and the writer's results come back to it through the `Remote`.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Terminator};

#[path = "maildir.rs"]
pub mod maildir;
#[path = "server.rs"]
mod server;
#[path = "writer.rs"]
pub mod writer;

pub use maildir::{Maildir, Message};
#[allow(unused_imports)] // the fuzz checks use only the session
pub use server::listen;
pub use writer::{Job, Storage, Writer};

/// The longest command line, CRLF included (RFC 5321 4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;

/// The most recipients per message (RFC 5321 4.5.3.1.8 asks for at least 100).
pub const MAX_RECIPIENTS: usize = 1000;

/// A session with more message bytes than this waiting for storage is not read from.
pub const MAX_IN_FLIGHT_BYTES: usize = 4 << 20;

/// A session with more replies than this waiting behind a message is not read from.
pub const MAX_DEFERRED: usize = 4096;

/// The sink's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The Maildir messages are delivered into.
    pub maildir: PathBuf,
    /// The largest message accepted, in bytes, after unstuffing, CRLFs included.
    pub max_size: usize,
    /// The name in the greeting and in HELO/EHLO replies.
    pub hostname: String,
    /// A client with no read or write event for this long is disconnected (so a client
    /// that stops in the middle of DATA does not hold its buffered message forever).
    pub idle_timeout: Option<Duration>,
}

/// The loop's state: what every session shares.
#[derive(Debug)]
pub struct Sink {
    /// The settings.
    pub config: Config,
    /// Where accepted messages go.
    pub storage: Storage,
}

impl Sink {
    /// Settings with storage on a writer thread, started by [`listen`]: opens the Maildir
    /// (creating it, checking that it is writable, removing stale `tmp/` entries).
    ///
    /// # Errors
    ///
    /// Maildir errors, naming the path.
    pub fn new(config: Config) -> io::Result<Sink> {
        let (maildir, removed) = Maildir::open(&config.maildir)?;
        if removed > 0 {
            log::warn!(
                "removed {removed} stale file(s) from {}",
                config.maildir.join("tmp").display()
            );
        }
        Ok(Sink {
            config,
            storage: Storage::Writer(Writer::new(maildir)),
        })
    }

    /// Settings with inline storage into `config.maildir` (opened, created if needed): for
    /// scripted use.
    ///
    /// # Errors
    ///
    /// If the Maildir cannot be opened (the error names the path).
    pub fn inline(config: Config) -> io::Result<Sink> {
        let (maildir, _) = Maildir::open(&config.maildir)?;
        Ok(Sink {
            config,
            storage: Storage::Inline(maildir),
        })
    }

    /// The `220` greeting sent when a client connects.
    pub fn greeting(&self) -> Vec<u8> {
        reply(&format!(
            "220 {} ESMTP sockloop smtp_sink",
            self.config.hostname
        ))
    }
}

impl Config {
    /// The defaults, storing into `maildir`.
    pub fn new(maildir: impl Into<PathBuf>) -> Config {
        Config {
            maildir: maildir.into(),
            max_size: 32 * 1024 * 1024,
            hostname: "localhost".to_string(),
            idle_timeout: Some(Duration::from_secs(300)),
        }
    }
}

/// A reply waiting for the messages before it to be stored.
#[derive(Debug)]
enum Deferred {
    Reply(Vec<u8>),
    /// A message with the writer: its sequence number and size.
    Message(u64, usize),
    /// `close_when_done` once everything before is sent.
    Close,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Command,
    Data,
}

/// One SMTP session: the protocol state machine, as a [`ChatHandler`].
#[derive(Default)]
pub struct Session {
    phase: Phase,
    /// The command line being received (at most 510 bytes: the limit is the scanner's).
    line: Vec<u8>,
    greeted: bool,
    extended: bool,
    from: Option<Vec<u8>>,
    rcpts: Vec<Vec<u8>>,
    body: Vec<u8>,
    too_big: bool,
    /// DATA: a bare CR or LF was seen; the message will be refused.
    bare: bool,
    /// DATA: nothing of the current line has arrived yet.
    line_start: bool,
    /// DATA: the current line is so far exactly ".".
    dot_only: bool,
    /// QUIT was received: later input is dropped.
    quit: bool,
    /// End of file from the client while replies were deferred: close after them.
    eof: bool,
    /// Replies in order, from the first message still with the writer.
    deferred: VecDeque<Deferred>,
    next_seq: u64,
    in_flight_bytes: usize,
}

type Reply = Vec<u8>;

fn reply(text: &str) -> Reply {
    format!("{text}\r\n").into_bytes()
}

const SYNTAX_MAIL: &str = "501 Syntax: MAIL FROM:<address>";
const SYNTAX_RCPT: &str = "501 Syntax: RCPT TO:<address>";

/// The reply to a delivery's result (errors are logged: they name the path).
fn stored_reply(result: io::Result<String>) -> Reply {
    match result {
        Ok(name) => reply(&format!("250 OK: queued as {name}")),
        Err(e) => {
            log::error!("could not store a message: {e}");
            match e.kind() {
                io::ErrorKind::FileTooLarge => {
                    reply("552 Error: message exceeds the file size limit")
                }
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                    reply("452 Error: insufficient system storage")
                }
                _ => reply("451 Error: local error in processing"),
            }
        }
    }
}

impl Session {
    /// A fresh session on a chat channel (CRLF terminator, command line limit).
    ///
    /// # Errors
    ///
    /// None in practice (the terminator is valid).
    pub fn chat() -> io::Result<AsyncChat<Session>> {
        let mut chat = AsyncChat::new(Session {
            line_start: true,
            ..Session::default()
        });
        chat.set_terminator(Terminator::Bytes(b"\r\n".to_vec()))?;
        chat.set_max_record(Some(MAX_COMMAND_LINE - 2));
        Ok(chat)
    }

    /// Bytes of message data held in memory now (bounded by `max_size`), not counting
    /// messages with the writer ([`in_flight`](Session::in_flight)).
    pub fn buffered(&self) -> usize {
        self.body.capacity()
    }

    /// Bytes of messages handed to the writer and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight_bytes
    }

    /// True while the session should not be read from: too much is waiting for storage.
    pub fn is_backlogged(&self) -> bool {
        self.in_flight_bytes > MAX_IN_FLIGHT_BYTES || self.deferred.len() > MAX_DEFERRED
    }

    fn reset(&mut self) {
        self.from = None;
        self.rcpts = Vec::new();
        self.body = Vec::new();
        self.too_big = false;
        self.bare = false;
    }

    /// Sends `answer` now, or after the messages still being stored.
    fn send(&mut self, ctx: &mut ChatContext<'_, Sink>, answer: Reply) -> io::Result<()> {
        if self.deferred.is_empty() {
            ctx.push_vec(answer)
        } else {
            self.deferred.push_back(Deferred::Reply(answer));
            Ok(())
        }
    }

    /// A message `seq` was stored (or not): returns the replies now in order to send, and
    /// whether to close after them.
    pub fn stored(&mut self, seq: u64, result: io::Result<String>) -> (Vec<u8>, bool) {
        let answer = stored_reply(result);
        for d in &mut self.deferred {
            if let Deferred::Message(s, size) = *d {
                if s == seq {
                    self.in_flight_bytes -= size;
                    *d = Deferred::Reply(answer);
                    break;
                }
            }
        }
        let mut out = Vec::new();
        while let Some(front) = self.deferred.front() {
            match front {
                Deferred::Message(..) => return (out, false),
                Deferred::Close => {
                    self.deferred.clear();
                    return (out, true);
                }
                Deferred::Reply(_) => {
                    if let Some(Deferred::Reply(r)) = self.deferred.pop_front() {
                        out.extend_from_slice(&r);
                    }
                }
            }
        }
        (out, self.eof)
    }

    fn command(&mut self, ctx: &mut ChatContext<'_, Sink>, line: &[u8]) -> io::Result<()> {
        if line.iter().any(|&b| b == b'\r' || b == b'\n') {
            return self.send(ctx, reply("500 Error: bare CR or LF in command"));
        }
        let (verb, arg) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], line[i + 1..].trim_ascii()),
            None => (line, &b""[..]),
        };
        let verb = verb.to_ascii_uppercase();
        let answer = match verb.as_slice() {
            b"" => reply("500 Error: bad syntax"),
            b"HELO" | b"EHLO" if arg.is_empty() => reply(&format!(
                "501 Syntax: {} hostname",
                String::from_utf8_lossy(&verb)
            )),
            b"HELO" => {
                self.reset();
                (self.greeted, self.extended) = (true, false);
                reply(&format!("250 {}", ctx.state().config.hostname))
            }
            b"EHLO" => {
                self.reset();
                (self.greeted, self.extended) = (true, true);
                format!(
                    "250-{}\r\n250-SIZE {}\r\n250-8BITMIME\r\n250 HELP\r\n",
                    ctx.state().config.hostname,
                    ctx.state().config.max_size
                )
                .into_bytes()
            }
            b"MAIL" => self.mail(arg, ctx.state().config.max_size),
            b"RCPT" => self.rcpt(arg),
            b"DATA" => {
                let answer = self.data(arg);
                if self.phase == Phase::Data {
                    ctx.set_max_record(None);
                }
                answer
            }
            b"RSET" if !arg.is_empty() => reply("501 Syntax: RSET"),
            b"RSET" => {
                self.reset();
                reply("250 OK")
            }
            b"NOOP" => reply("250 OK"),
            b"VRFY" if arg.is_empty() => reply("501 Syntax: VRFY <address>"),
            b"VRFY" => reply("252 Cannot VRFY user, but will accept message and attempt delivery"),
            b"HELP" => reply("214 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT"),
            b"QUIT" if !arg.is_empty() => reply("501 Syntax: QUIT"),
            b"QUIT" => {
                self.quit = true;
                let bye = reply(&format!("221 {} Bye", ctx.state().config.hostname));
                if self.deferred.is_empty() {
                    ctx.push_vec(bye)?;
                    ctx.close_when_done();
                } else {
                    self.deferred.push_back(Deferred::Reply(bye));
                    self.deferred.push_back(Deferred::Close);
                }
                return Ok(());
            }
            _ => reply(&format!(
                "500 Error: command \"{}\" not recognized",
                verb.escape_ascii() // replies are US-ASCII (RFC 5321 4.2)
            )),
        };
        self.send(ctx, answer)
    }

    fn mail(&mut self, arg: &[u8], max_size: usize) -> Reply {
        if !self.greeted {
            return reply("503 Error: send HELO first");
        }
        if self.from.is_some() {
            return reply("503 Error: nested MAIL command");
        }
        let Some((addr, params)) = parse_path(arg, b"FROM:") else {
            return reply(SYNTAX_MAIL);
        };
        if !params.is_empty() && !self.extended {
            return reply(SYNTAX_MAIL);
        }
        let mut declared = 0;
        for param in params {
            let (key, value) = match param.iter().position(|&b| b == b'=') {
                Some(i) => (param[..i].to_ascii_uppercase(), &param[i + 1..]),
                None => (param.to_ascii_uppercase(), &b""[..]),
            };
            match key.as_slice() {
                b"SIZE" => match std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    Some(n) => declared = n,
                    None => return reply(SYNTAX_MAIL),
                },
                b"BODY"
                    if value.eq_ignore_ascii_case(b"7BIT")
                        || value.eq_ignore_ascii_case(b"8BITMIME") => {}
                b"BODY" => return reply("501 Error: BODY can only be one of 7BIT, 8BITMIME"),
                _ => return reply("555 MAIL FROM parameters not recognized or not implemented"),
            }
        }
        if declared > max_size as u64 {
            return reply("552 Error: message size exceeds fixed maximum message size");
        }
        self.from = Some(addr.to_vec());
        reply("250 OK")
    }

    fn rcpt(&mut self, arg: &[u8]) -> Reply {
        if !self.greeted {
            return reply("503 Error: send HELO first");
        }
        if self.from.is_none() {
            return reply("503 Error: need MAIL command");
        }
        let Some((addr, params)) = parse_path(arg, b"TO:") else {
            return reply(SYNTAX_RCPT);
        };
        if addr.is_empty() {
            return reply(SYNTAX_RCPT);
        }
        if !params.is_empty() {
            return if self.extended {
                reply("555 RCPT TO parameters not recognized or not implemented")
            } else {
                reply(SYNTAX_RCPT)
            };
        }
        if self.rcpts.len() >= MAX_RECIPIENTS {
            return reply("452 Error: too many recipients");
        }
        self.rcpts.push(addr.to_vec());
        reply("250 OK")
    }

    fn data(&mut self, arg: &[u8]) -> Reply {
        if !self.greeted {
            return reply("503 Error: send HELO first");
        }
        if !arg.is_empty() {
            return reply("501 Syntax: DATA");
        }
        if self.from.is_none() {
            return reply("503 Error: need MAIL command");
        }
        if self.rcpts.is_empty() {
            return reply("503 Error: need RCPT command");
        }
        self.phase = Phase::Data;
        (self.line_start, self.dot_only, self.bare) = (true, false, false);
        reply("354 End data with <CR><LF>.<CR><LF>")
    }

    /// Appends message bytes, dropping the body as soon as it is over the limit.
    fn append(&mut self, data: &[u8], max_size: usize) {
        if self.too_big || self.bare {
            return;
        }
        if self.body.len() + data.len() > max_size {
            self.too_big = true;
            self.body = Vec::new();
        } else {
            self.body.extend_from_slice(data);
        }
    }

    fn end_of_data(&mut self, ctx: &mut ChatContext<'_, Sink>) -> io::Result<()> {
        self.phase = Phase::Command;
        ctx.set_max_record(Some(MAX_COMMAND_LINE - 2));
        // A bare CR or LF first: the verdict must not depend on where the reads split.
        let refused = if self.bare {
            Some(reply(
                "550 5.5.2 Error: bare CR or LF in message data (RFC 5321 2.3.8)",
            ))
        } else if self.too_big {
            Some(reply("552 Error: message too big for this system"))
        } else {
            None
        };
        let message = Message {
            from: self.from.take().unwrap_or_default(),
            rcpts: std::mem::take(&mut self.rcpts),
            body: std::mem::take(&mut self.body),
        };
        self.reset();
        if let Some(answer) = refused {
            return self.send(ctx, answer);
        }
        let token = ctx.token();
        let result = match &ctx.state().storage {
            Storage::Inline(maildir) => {
                let result = maildir.deliver(std::slice::from_ref(&message)).pop();
                result.unwrap_or_else(|| Err(io::Error::other("no result")))
            }
            Storage::Writer(writer) => {
                let (seq, size) = (self.next_seq, message.size());
                self.next_seq += 1;
                match writer.submit(Job {
                    token,
                    seq,
                    message,
                }) {
                    Ok(()) => {
                        self.in_flight_bytes += size;
                        self.deferred.push_back(Deferred::Message(seq, size));
                        return Ok(());
                    }
                    Err(e) => Err(e),
                }
            }
        };
        self.send(ctx, stored_reply(result))
    }
}

impl ChatHandler<Sink> for Session {
    fn collect_incoming_data(
        &mut self,
        ctx: &mut ChatContext<'_, Sink>,
        mut data: &[u8],
    ) -> io::Result<()> {
        if self.quit {
            return Ok(());
        }
        match self.phase {
            Phase::Command => self.line.extend_from_slice(data),
            Phase::Data => {
                if self.line_start {
                    self.line_start = false;
                    if data[0] == b'.' {
                        data = &data[1..]; // dot-unstuffing (RFC 5321 4.5.2)
                        self.dot_only = true;
                    }
                }
                if !data.is_empty() {
                    self.dot_only = false;
                    if data.iter().any(|&b| b == b'\r' || b == b'\n') {
                        // Not part of a CRLF (the scanner split those off): refuse the
                        // message, drop what it holds.
                        self.bare = true;
                        self.body = Vec::new();
                    }
                    self.append(data, ctx.state().config.max_size);
                }
            }
        }
        Ok(())
    }

    fn found_terminator(&mut self, ctx: &mut ChatContext<'_, Sink>) -> io::Result<()> {
        if self.quit {
            return Ok(());
        }
        match self.phase {
            Phase::Command => {
                let line = std::mem::take(&mut self.line);
                self.command(ctx, &line)
            }
            Phase::Data if self.dot_only => self.end_of_data(ctx),
            Phase::Data => {
                (self.line_start, self.dot_only) = (true, false);
                self.append(b"\r\n", ctx.state().config.max_size);
                Ok(())
            }
        }
    }

    /// A command line over 512 bytes: `500`, and the rest of the line is skipped.
    fn handle_record_too_long(
        &mut self,
        ctx: &mut ChatContext<'_, Sink>,
        _: io::Error,
    ) -> io::Result<()> {
        self.line = Vec::new();
        if self.quit {
            return Ok(());
        }
        self.send(ctx, reply("500 Error: line too long"))
    }
}

/// `<path> params...` after `keyword` (`FROM:` / `TO:`): the address inside the angle
/// brackets and the parameters. `None` if malformed.
fn parse_path<'a>(arg: &'a [u8], keyword: &[u8]) -> Option<(&'a [u8], Vec<&'a [u8]>)> {
    if arg.len() < keyword.len() || !arg[..keyword.len()].eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_ascii_start();
    let rest = rest.strip_prefix(b"<")?;
    let end = rest.iter().position(|&b| b == b'>')?;
    let addr = &rest[..end];
    if addr.iter().any(|&b| b <= b' ' || b == b'<' || b == 0x7f) {
        return None;
    }
    let params = &rest[end + 1..];
    if !params.is_empty() && !params.starts_with(b" ") {
        return None;
    }
    let params = params
        .split(|&b| b == b' ')
        .filter(|p| !p.is_empty())
        .collect();
    Some((addr, params))
}

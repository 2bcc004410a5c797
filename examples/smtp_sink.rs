//! An SMTP sink on sockloop's chat layer: the job CPython's `smtpd.SMTPServer` did.
//!
//! Run: `cargo run --release --example smtp_sink -- --addr 127.0.0.1:2525 --maildir DIR`
//! Options: `--addr HOST:PORT` (default 127.0.0.1:2525; port 0 picks a free one),
//! `--maildir DIR` (required; created if missing), `--max-size BYTES` (default 33554432,
//! 32 MiB), `--hostname NAME` (default `localhost`), `--idle-timeout SECS` (default 300,
//! RFC 5321's minimum server timeout; 0 = none), `--backend select|poll|epoll`
//! (default epoll). When ready it prints `listening on <addr>` with the real address.
//! Try it with `python3 -c 'import smtplib; smtplib.SMTP("127.0.0.1", 2525).sendmail("a@x", ["b@y"], b"Subject: hi\r\n\r\nhello\r\n")'`.
//!
//! RFC 5321, minus relaying: `220` greeting; `HELO`/`EHLO` (EHLO advertises `SIZE` and
//! `8BITMIME`); `MAIL FROM:<addr>` (with `SIZE=` and `BODY=` after EHLO); `RCPT TO:<addr>`
//! (several); `DATA` up to a line holding a single `.`, with dot-unstuffing; `RSET`, `NOOP`,
//! `VRFY` (`252`), `HELP`, `QUIT`. Errors: `500` unknown command or command line over 512
//! bytes (CRLF included), `501` syntax, `503` bad sequence, `552` over `--max-size`
//! (declared with `SIZE=`, or counted while receiving: the body is dropped as soon as it
//! is over, so memory stays bounded), `555` unknown parameters.
//!
//! Each accepted message is written atomically (a temporary `.<id>.tmp`, then a rename) as
//! `DIR/<id>.eml`, `<id>` = seconds.nanoseconds.pid.counter: first `X-Mail-From: <addr>`
//! and `X-Rcpt-To: <addr>, <addr>` (addresses without angle brackets; the null sender is
//! empty), then the message exactly as received after unstuffing, every line ending in
//! CRLF. A rejected or aborted message (RSET, disconnect during DATA, too large) writes
//! nothing.
//!
//! SIGINT or SIGTERM closes every connection and exits with status 0.

use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop, SockAddr, Socket};

/// The longest command line, CRLF included (RFC 5321 4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;

/// The most recipients per message (RFC 5321 4.5.3.1.8 asks for at least 100).
pub const MAX_RECIPIENTS: usize = 1000;

/// The sink's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where messages are stored.
    pub maildir: PathBuf,
    /// The largest message accepted, in bytes, after unstuffing, CRLFs included.
    pub max_size: usize,
    /// The name in the greeting and in HELO/EHLO replies.
    pub hostname: String,
    /// A client with no read or write event for this long is disconnected (so a client
    /// that stops in the middle of DATA does not hold its buffered message forever).
    pub idle_timeout: Option<Duration>,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Command,
    Data,
}

/// One SMTP session: the protocol state machine, as a [`ChatHandler`].
pub struct Session {
    config: Rc<Config>,
    phase: Phase,
    /// The command line being received (at most 510 bytes: the limit is the scanner's).
    line: Vec<u8>,
    greeted: bool,
    extended: bool,
    from: Option<Vec<u8>>,
    rcpts: Vec<Vec<u8>>,
    body: Vec<u8>,
    too_big: bool,
    /// DATA: nothing of the current line has arrived yet.
    line_start: bool,
    /// DATA: the current line is so far exactly ".".
    dot_only: bool,
}

type Reply = Vec<u8>;

fn reply(text: &str) -> Reply {
    format!("{text}\r\n").into_bytes()
}

const SYNTAX_MAIL: &str = "501 Syntax: MAIL FROM:<address>";
const SYNTAX_RCPT: &str = "501 Syntax: RCPT TO:<address>";

impl Session {
    /// A fresh session.
    pub fn new(config: Rc<Config>) -> Session {
        Session {
            config,
            phase: Phase::Command,
            line: Vec::new(),
            greeted: false,
            extended: false,
            from: None,
            rcpts: Vec::new(),
            body: Vec::new(),
            too_big: false,
            line_start: true,
            dot_only: false,
        }
    }

    /// The session on a chat channel: CRLF terminator, command line limit.
    pub fn chat(config: Rc<Config>) -> io::Result<AsyncChat<Session>> {
        let mut chat = AsyncChat::new(Session::new(config));
        chat.set_terminator(Terminator::Bytes(b"\r\n".to_vec()))?;
        chat.set_max_record(Some(MAX_COMMAND_LINE - 2));
        Ok(chat)
    }

    /// The `220` greeting sent when a client connects.
    pub fn greeting(&self) -> Vec<u8> {
        reply(&format!(
            "220 {} ESMTP sockloop smtp_sink",
            self.config.hostname
        ))
    }

    /// Bytes of message data held in memory now (bounded by `max_size`).
    pub fn buffered(&self) -> usize {
        self.body.capacity()
    }

    fn reset(&mut self) {
        self.from = None;
        self.rcpts = Vec::new();
        self.body = Vec::new();
        self.too_big = false;
    }

    fn command(&mut self, ctx: &mut ChatContext<'_, '_>, line: &[u8]) -> io::Result<()> {
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
                reply(&format!("250 {}", self.config.hostname))
            }
            b"EHLO" => {
                self.reset();
                (self.greeted, self.extended) = (true, true);
                format!(
                    "250-{}\r\n250-SIZE {}\r\n250-8BITMIME\r\n250 HELP\r\n",
                    self.config.hostname, self.config.max_size
                )
                .into_bytes()
            }
            b"MAIL" => self.mail(arg),
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
                ctx.push(&reply(&format!("221 {} Bye", self.config.hostname)))?;
                ctx.close_when_done();
                return Ok(());
            }
            _ => reply(&format!(
                "500 Error: command \"{}\" not recognized",
                verb.escape_ascii() // replies are US-ASCII (RFC 5321 4.2)
            )),
        };
        ctx.push_vec(answer)
    }

    fn mail(&mut self, arg: &[u8]) -> Reply {
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
        if declared > self.config.max_size as u64 {
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
        (self.line_start, self.dot_only) = (true, false);
        reply("354 End data with <CR><LF>.<CR><LF>")
    }

    /// Appends message bytes, dropping the body as soon as it is over the limit.
    fn append(&mut self, data: &[u8]) {
        if self.too_big {
            return;
        }
        if self.body.len() + data.len() > self.config.max_size {
            self.too_big = true;
            self.body = Vec::new();
        } else {
            self.body.extend_from_slice(data);
        }
    }

    fn end_of_data(&mut self, ctx: &mut ChatContext<'_, '_>) -> io::Result<()> {
        self.phase = Phase::Command;
        ctx.set_max_record(Some(MAX_COMMAND_LINE - 2));
        let answer = if self.too_big {
            reply("552 Error: message too big for this system")
        } else {
            match store(
                &self.config,
                self.from.as_deref().unwrap_or(b""),
                &self.rcpts,
                &self.body,
            ) {
                Ok(id) => reply(&format!("250 OK: queued as {id}")),
                Err(e) => {
                    eprintln!("smtp_sink: could not store a message: {e}");
                    reply("451 Error: local error in processing")
                }
            }
        };
        self.reset();
        ctx.push_vec(answer)
    }
}

impl ChatHandler for Session {
    fn collect_incoming_data(
        &mut self,
        _: &mut ChatContext<'_, '_>,
        mut data: &[u8],
    ) -> io::Result<()> {
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
                    self.append(data);
                }
            }
        }
        Ok(())
    }

    fn found_terminator(&mut self, ctx: &mut ChatContext<'_, '_>) -> io::Result<()> {
        match self.phase {
            Phase::Command => {
                let line = std::mem::take(&mut self.line);
                self.command(ctx, &line)
            }
            Phase::Data if self.dot_only => self.end_of_data(ctx),
            Phase::Data => {
                (self.line_start, self.dot_only) = (true, false);
                self.append(b"\r\n");
                Ok(())
            }
        }
    }

    /// A command line over 512 bytes: `500`, and the rest of the line is skipped.
    fn handle_record_too_long(
        &mut self,
        ctx: &mut ChatContext<'_, '_>,
        _: io::Error,
    ) -> io::Result<()> {
        self.line = Vec::new();
        ctx.push(&reply("500 Error: line too long"))
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

/// A name no other message of this or another process gets.
fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.{:09}.{}.{n}",
        now.as_secs(),
        now.subsec_nanos(),
        std::process::id()
    )
}

/// Writes one message as `<maildir>/<id>.eml`, atomically; returns the id.
fn store(config: &Config, from: &[u8], rcpts: &[Vec<u8>], body: &[u8]) -> io::Result<String> {
    let id = unique_id();
    let tmp = config.maildir.join(format!(".{id}.tmp"));
    let path = config.maildir.join(format!("{id}.eml"));
    let write = || -> io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let mut head = b"X-Mail-From: ".to_vec();
        head.extend_from_slice(from);
        head.extend_from_slice(b"\r\nX-Rcpt-To: ");
        head.extend_from_slice(&rcpts.join(&b", "[..]));
        head.extend_from_slice(b"\r\n");
        file.write_all(&head)?;
        file.write_all(body)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })?;
    Ok(id)
}

/// The listening channel: each connection gets a [`Session`] and the greeting.
pub struct Listener {
    config: Rc<Config>,
}

impl Dispatcher for Listener {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        _: SockAddr,
    ) -> io::Result<()> {
        let mut ch = Channel::from_socket(sock)?;
        ch.set_idle_timeout(self.config.idle_timeout);
        let chat = Session::chat(self.config.clone())?;
        ch.push(&chat.handler().greeting())?;
        ctx.add(ch, chat)?;
        Ok(())
    }
}

/// Opens the sink on `addr` in `event_loop` (creating the maildir); returns the address
/// it is listening on.
pub fn listen(
    event_loop: &mut EventLoop,
    addr: SocketAddr,
    config: Config,
) -> io::Result<SocketAddr> {
    fs::create_dir_all(&config.maildir)?;
    let listener = Channel::tcp_listener(addr, 1024)?;
    let bound = listener.local_inet_addr()?;
    event_loop.add(
        listener,
        Listener {
            config: Rc::new(config),
        },
    )?;
    Ok(bound)
}

struct Args {
    addr: SocketAddr,
    backend: Backend,
    config: Config,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

const USAGE: &str = "usage: smtp_sink --maildir DIR [--addr HOST:PORT] [--max-size BYTES] \
                     [--hostname NAME] [--idle-timeout SECS] [--backend select|poll|epoll]";

fn parse_args() -> io::Result<Args> {
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 2525));
    let mut backend = Backend::Epoll;
    let (mut maildir, mut max_size, mut hostname, mut idle) = (None, None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| invalid(format!("{flag} needs a value; {USAGE}")))?;
        match flag.as_str() {
            "--addr" => {
                addr = value
                    .parse()
                    .map_err(|e| invalid(format!("--addr {value}: {e}")))?
            }
            "--backend" => backend = value.parse()?,
            "--maildir" => maildir = Some(PathBuf::from(value)),
            "--max-size" => {
                max_size = Some(
                    value
                        .parse()
                        .map_err(|e| invalid(format!("--max-size {value}: {e}")))?,
                )
            }
            "--hostname" => hostname = Some(value),
            "--idle-timeout" => {
                let secs: u64 = value
                    .parse()
                    .map_err(|e| invalid(format!("--idle-timeout {value}: {e}")))?;
                idle = Some((secs > 0).then(|| Duration::from_secs(secs)));
            }
            _ => return Err(invalid(format!("unknown flag {flag}; {USAGE}"))),
        }
    }
    let mut config =
        Config::new(maildir.ok_or_else(|| invalid(format!("--maildir is required; {USAGE}")))?);
    if let Some(max) = max_size {
        config.max_size = max;
    }
    if let Some(name) = hostname {
        config.hostname = name;
    }
    if let Some(idle) = idle {
        config.idle_timeout = idle;
    }
    Ok(Args {
        addr,
        backend,
        config,
    })
}

fn serve(args: Args) -> io::Result<()> {
    let mut event_loop = EventLoop::with_backend(args.backend)?;
    let bound = listen(&mut event_loop, args.addr, args.config)?;
    event_loop.stop_on_signals(&[sockloop::signal::SIGINT, sockloop::signal::SIGTERM])?;
    println!("listening on {bound}");
    io::stdout().flush()?;
    event_loop.run(Some(Duration::from_secs(30)), None)
}

fn main() -> ExitCode {
    match parse_args().and_then(serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smtp_sink: {e}");
            ExitCode::FAILURE
        }
    }
}

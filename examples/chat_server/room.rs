//! The chat room: its members, the protocol and the flow control, without the
//! command-line program (`main.rs`); the tests include this file.
//!
//! Protocol: lines end with `\n` (a trailing `\r` is stripped). On connect the server sends
//! `welcome ...`. `/nick NAME` → `ok`, and everyone else gets `* OLD is now NEW`; `/who` →
//! `users: NAME NAME ...` (in joining order); `/quit` → `bye`, then the server closes once
//! it is sent. Any other line goes to every other client as `<NAME> text`, in order. Lines
//! that are empty or hold only white space or invisible characters are ignored. Names start
//! as `guest1`, `guest2`, ... A line longer than `max_line` → `error: line too long`, then
//! close.
//!
//! **Relayed text is neutralised**: invalid UTF-8 becomes U+FFFD, and so do control
//! characters (C0 such as CR, ESC, BEL, NUL; DEL; C1) and the bidirectional overrides and
//! isolates (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C); a tab becomes a space.
//! A receiving terminal gets no escape sequence and no reordering.
//!
//! **Nicks** are 1 to 32 ASCII letters, digits, `_` and `-`, starting with a letter: no
//! zero-width, bidi or look-alike Unicode letters. Two nicks that differ only in case, in
//! `0`/`o`, in `1`/`l`/`i` or in `-`/`_` are the same nick (`ALICE`, `a1ice` and `alice` are
//! one name), so one cannot pose as another.
//!
//! **Flow control** (the room never drops a line for a member that is reading): a talker's
//! lines are relayed in turns of at most [`TURN_BUDGET`] bytes of fan-out (line bytes ×
//! members), consecutive lines batched into one push per member; the rest waits in the
//! talker's backlog (at most one read, 64 KiB) for the next iteration, and the talker is
//! not read from meanwhile. While any member has more than `max_queue` bytes unsent, no
//! talker is served: the room goes at the pace of its slowest reader. A member whose
//! unsent output has not moved for `stall_timeout` has stopped reading and is
//! disconnected. So a member's queue stays under `max_queue` + one turn.
//!
//! **`/who` costs credit**: each client may take `who_rate` bytes per second of `/who`
//! replies (a burst of 4 seconds' worth). Beyond that its `/who` waits, and so does the
//! rest of what it sent (it is not read meanwhile), until the credit is there: a spammer
//! is slowed down, not answered with error lines that would cost as much.
//!
//! **Idle** means: nothing received from the member and nothing sent to it (no line, no
//! reply) for `idle_timeout`. A member that only listens in an active room is not idle; a
//! member of a silent room that says nothing is. Dead peers that are sent lines are found
//! by the stall rule instead.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::time::{Duration, Instant};

use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
use sockloop::{Channel, Context, Dispatcher, LoopHandle, SockAddr, Token};

#[path = "conn.rs"]
mod conn;
#[path = "text.rs"]
mod text;

pub use conn::{listen, Conn};
pub use text::{is_valid_nick, nick_key, sanitize};

/// The most fan-out bytes (line bytes × recipients) one talker's turn relays.
pub const TURN_BUDGET: usize = 4 << 20;

/// The most bytes of lines pushed to the members as one batch.
const MAX_BATCH: usize = 16 << 10;

/// A client's own unsent replies above which its commands wait.
const OWN_HIGH: usize = 256 << 10;

/// The room's limits.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The longest line accepted, in bytes, without the `\n` and a trailing `\r`.
    pub max_line: usize,
    /// While a member has more unsent output than this, no talker is served.
    pub max_queue: usize,
    /// A member with unsent output that took none of it for this long is disconnected.
    pub stall_timeout: Option<Duration>,
    /// A member that sent nothing and was sent nothing for this long is disconnected.
    pub idle_timeout: Option<Duration>,
    /// Bytes of `/who` replies per second a client may take.
    pub who_rate: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_line: 4096,
            max_queue: 1024 * 1024,
            stall_timeout: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(300)),
            who_rate: 32 * 1024,
        }
    }
}

struct Seat {
    token: Token,
    name: String,
    /// The name folded for comparison ([`nick_key`]).
    key: String,
    /// The last time it sent something or was sent something.
    active: Instant,
    /// The last time its queue was empty or moved.
    drained: Instant,
}

/// Who is in the room, in joining order, and the flow-control state: the loop's state
/// (`EventLoop<Room>`), reached by every channel and timer through `state()`.
pub struct Room {
    config: Config,
    members: Vec<Seat>,
    guests: u64,
    /// Members with more than `max_queue` unsent.
    congested: HashSet<Token>,
    /// Talkers with a backlog waiting for the congestion to clear.
    waiting: Vec<Token>,
}

impl Room {
    /// An empty room with these limits.
    pub fn new(config: Config) -> Room {
        Room {
            config,
            members: Vec::new(),
            guests: 0,
            congested: HashSet::new(),
            waiting: Vec::new(),
        }
    }

    /// The members' channels, in joining order.
    pub fn tokens(&self) -> Vec<Token> {
        self.members.iter().map(|m| m.token).collect()
    }

    /// True while a member has more than `max_queue` unsent (talkers wait).
    pub fn is_congested(&self) -> bool {
        !self.congested.is_empty()
    }

    fn member(&mut self, token: Token) -> Option<&mut Seat> {
        self.members.iter_mut().find(|m| m.token == token)
    }

    fn name_of(&self, token: Token) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.token == token)
            .map(|m| m.name.as_str())
    }

    fn holder_of(&self, key: &str) -> Option<Token> {
        self.members.iter().find(|m| m.key == key).map(|m| m.token)
    }

    fn next_guest(&mut self) -> String {
        loop {
            self.guests += 1;
            let name = format!("guest{}", self.guests);
            if self.holder_of(&nick_key(&name)).is_none() {
                return name;
            }
        }
    }

    fn active(&mut self, token: Token, now: Instant) {
        if let Some(m) = self.member(token) {
            m.active = now;
        }
    }

    /// `token`'s queue is at `pending` bytes after moving (or being pushed to from empty).
    fn drained(&mut self, token: Token, pending: usize, now: Instant) -> Vec<Token> {
        if let Some(m) = self.member(token) {
            m.drained = now;
        }
        self.uncongest_if(token, pending <= self.config.max_queue / 2)
    }

    /// Takes `token` out of the congested set if `cond`; returns the talkers to wake if
    /// the room is clear now.
    fn uncongest_if(&mut self, token: Token, cond: bool) -> Vec<Token> {
        if cond && self.congested.remove(&token) && self.congested.is_empty() {
            log::debug!("the room is clear: {} talker(s) resume", self.waiting.len());
            std::mem::take(&mut self.waiting)
        } else {
            Vec::new()
        }
    }

    fn leave(&mut self, token: Token) -> Vec<Token> {
        self.members.retain(|m| m.token != token);
        self.waiting.retain(|&t| t != token);
        self.uncongest_if(token, true)
    }

    /// Members to disconnect now: stalled readers and idle members.
    fn overdue(&self, now: Instant, pending: impl Fn(Token) -> usize) -> Vec<(Token, String)> {
        let late = |since: Instant, limit: Option<Duration>| {
            limit.is_some_and(|l| now.saturating_duration_since(since) > l)
        };
        let mut out = Vec::new();
        for m in &self.members {
            let queued = pending(m.token);
            if queued > 0 && late(m.drained, self.config.stall_timeout) {
                out.push((
                    m.token,
                    format!("{} stopped reading ({queued} bytes unsent)", m.name),
                ));
            } else if late(m.active, self.config.idle_timeout) {
                out.push((m.token, format!("{} was idle", m.name)));
            }
        }
        out
    }
}

/// The listening channel: every accepted connection joins the room.
pub struct Listener;

impl Dispatcher<Room> for Listener {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_, Room>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        let mut ch = channel;
        ch.set_nodelay(true)?;
        let config = ctx.state().config;
        let name = ctx.state_mut().next_guest();
        ch.push(
            format!("welcome to the sockloop chat, {name}; commands: /nick NAME, /who, /quit\n")
                .as_bytes(),
        )?;
        let mut chat = AsyncChat::new(Client {
            line: Vec::new(),
            backlog: VecDeque::new(),
            closing: false,
            who_credit: 4.0 * config.who_rate as f64,
            who_stamp: Instant::now(),
            who_wait: false,
            parked: false,
        });
        chat.set_terminator(Terminator::Bytes(b"\n".to_vec()))?;
        // One more byte for the `\r` that may end a line.
        chat.set_max_record(Some(config.max_line.saturating_add(1)));
        let token = ctx.handle().add(ch, Conn { chat })?;
        let now = Instant::now();
        ctx.state_mut().members.push(Seat {
            token,
            key: nick_key(&name),
            name,
            active: now,
            drained: now,
        });
        Ok(())
    }
}

/// What a client sent, waiting for its turn.
enum Item {
    Line(Vec<u8>),
    TooLong,
}

/// One client's protocol state, under the chat layer.
pub struct Client {
    line: Vec<u8>,
    backlog: VecDeque<Item>,
    closing: bool,
    who_credit: f64,
    who_stamp: Instant,
    /// Out of `/who` credit: nothing is served until a timer clears it.
    who_wait: bool,
    /// In the room's `waiting` list: nothing is served until the room clears ([`wake`]).
    parked: bool,
}

/// Lets talkers that waited for the room to clear be served again.
fn wake(lp: &mut LoopHandle<Room>, talkers: Vec<Token>) {
    for t in talkers {
        // dispatcher_mut re-asks its predicates
        if let Some(conn) = lp.dispatcher_mut::<Conn>(t) {
            conn.chat.handler_mut().parked = false;
        }
    }
}

impl ChatHandler<Room> for Client {
    fn collect_incoming_data(
        &mut self,
        ctx: &mut ChatContext<'_, Room>,
        data: &[u8],
    ) -> io::Result<()> {
        // Grow by doubling, but never past the longest line: a line at the limit holds
        // max_line + 1 bytes, not twice that.
        let max = ctx.state().config.max_line.saturating_add(1);
        let need = self.line.len() + data.len();
        if need > self.line.capacity() {
            let want = need.max(2 * self.line.capacity()).min(max.max(need));
            self.line.reserve_exact(want - self.line.len());
        }
        self.line.extend_from_slice(data);
        Ok(())
    }

    fn found_terminator(&mut self, _: &mut ChatContext<'_, Room>) -> io::Result<()> {
        let line = std::mem::take(&mut self.line);
        if !self.closing {
            self.backlog.push_back(Item::Line(line));
        }
        Ok(())
    }

    fn handle_record_too_long(
        &mut self,
        _: &mut ChatContext<'_, Room>,
        _: io::Error,
    ) -> io::Result<()> {
        self.line = Vec::new();
        if !self.closing {
            self.backlog.push_back(Item::TooLong);
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut ChatContext<'_, Room>) -> io::Result<()> {
        let me = ctx.token();
        let talkers = ctx.state_mut().leave(me);
        wake(ctx.handle(), talkers);
        ctx.close();
        Ok(())
    }
}

impl Client {
    /// Serves the backlog until it is empty, the turn's budget is spent, the room is
    /// congested or the client's own replies pile up.
    fn pump(&mut self, ctx: &mut Context<'_, Room>) -> io::Result<()> {
        let me = ctx.token();
        let mut budget = TURN_BUDGET;
        while !self.backlog.is_empty() {
            if self.closing || ctx.is_closing() {
                self.backlog.clear();
                break;
            }
            if ctx.pending_output() > OWN_HIGH {
                break; // handle_write pumps again once the replies drain
            }
            let room = ctx.state_mut();
            if !room.congested.is_empty() {
                if !room.waiting.contains(&me) {
                    room.waiting.push(me);
                }
                self.parked = true;
                break;
            }
            if budget == 0 || self.who_wait {
                break; // writable() asks for another turn next iteration
            }
            let line = match self.backlog.pop_front() {
                Some(Item::Line(line)) => line,
                Some(Item::TooLong) => {
                    self.closing = true;
                    ctx.push(b"error: line too long\n")?;
                    ctx.close_when_done();
                    continue;
                }
                None => break,
            };
            let mut line = line;
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.len() > ctx.state().config.max_line {
                self.backlog.push_front(Item::TooLong);
                continue;
            }
            let command = line.trim_ascii();
            if command == b"/who" {
                if !self.who(ctx)? {
                    self.backlog.push_front(Item::Line(line));
                    break;
                }
            } else if command == b"/quit" {
                self.closing = true;
                ctx.push(b"bye\n")?;
                ctx.close_when_done();
            } else if command == b"/nick" || command.starts_with(b"/nick ") {
                let name = command[5..].trim_ascii().to_vec();
                self.nick(ctx, &name, &mut budget)?;
            } else if let Some(text) = sanitize(&line) {
                self.say(ctx, text, &mut budget);
            }
        }
        Ok(())
    }

    /// Answers `/who`, or, without credit, puts it back and pauses this client until the
    /// credit is there (it is not read meanwhile): false then.
    fn who(&mut self, ctx: &mut Context<'_, Room>) -> io::Result<bool> {
        let rate = ctx.state().config.who_rate.max(1) as f64;
        let now = Instant::now();
        let refill = now.duration_since(self.who_stamp).as_secs_f64() * rate;
        self.who_credit = (self.who_credit + refill).min(4.0 * rate);
        self.who_stamp = now;
        if self.who_credit < 0.0 {
            self.who_wait = true;
            let me = ctx.token();
            let wait = Duration::from_secs_f64(-self.who_credit / rate);
            ctx.handle()
                .call_later(wait, move |lp: &mut LoopHandle<Room>, _| {
                    if let Some(conn) = lp.dispatcher_mut::<Conn>(me) {
                        conn.chat.handler_mut().who_wait = false; // re-asks its predicates
                    }
                });
            return Ok(false);
        }
        let names: Vec<&str> = ctx
            .state()
            .members
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        let reply = format!("users: {}\n", names.join(" "));
        self.who_credit -= reply.len() as f64;
        ctx.push_vec(reply.into_bytes())?;
        Ok(true)
    }

    fn nick(
        &mut self,
        ctx: &mut Context<'_, Room>,
        name: &[u8],
        budget: &mut usize,
    ) -> io::Result<()> {
        if !is_valid_nick(name) {
            return ctx.push(
                b"error: usage: /nick NAME (1 to 32 of A-Z a-z 0-9 _ -, starting with a letter)\n",
            );
        }
        let me = ctx.token();
        let name = String::from_utf8_lossy(name).into_owned();
        let key = nick_key(&name);
        if ctx.state().holder_of(&key).is_some_and(|t| t != me) {
            return ctx.push(format!("error: {name} is taken\n").as_bytes());
        }
        let Some(m) = ctx.state_mut().member(me) else {
            return Ok(());
        };
        let old = std::mem::replace(&mut m.name, name.clone());
        m.key = key;
        ctx.push(b"ok\n")?;
        if old != name {
            self.broadcast(ctx, format!("* {old} is now {name}\n").into_bytes(), budget);
        }
        Ok(())
    }

    /// Relays `text` and the text lines right behind it in the backlog, as one batch.
    fn say(&mut self, ctx: &mut Context<'_, Room>, text: String, budget: &mut usize) {
        let me = ctx.token();
        let room = ctx.state();
        let prefix = format!("<{}> ", room.name_of(me).unwrap_or("?"));
        let others = room.members.len().saturating_sub(1).max(1);
        let max_line = room.config.max_line;
        let limit = (*budget / others).clamp(1, MAX_BATCH);
        let mut batch = Vec::with_capacity(limit.min(4096));
        let mut next = Some(text);
        while let Some(text) = next.take() {
            batch.extend_from_slice(prefix.as_bytes());
            batch.extend_from_slice(text.as_bytes());
            batch.push(b'\n');
            if batch.len() >= limit {
                break;
            }
            // Batch the following plain lines (never a command: those keep their order).
            while let Some(Item::Line(line)) = self.backlog.front() {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.trim_ascii().starts_with(b"/") || line.len() > max_line {
                    break;
                }
                let plain = sanitize(line);
                self.backlog.pop_front();
                if plain.is_some() {
                    next = plain;
                    break;
                }
            }
        }
        self.broadcast(ctx, batch, budget);
    }

    /// Pushes `data` to every other member; notes who is congested now.
    fn broadcast(&mut self, ctx: &mut Context<'_, Room>, data: Vec<u8>, budget: &mut usize) {
        let me = ctx.token();
        let now = Instant::now();
        let targets: Vec<Token> = ctx
            .state()
            .members
            .iter()
            .map(|m| m.token)
            .filter(|&t| t != me)
            .collect();
        *budget = budget.saturating_sub(data.len().saturating_mul(targets.len().max(1)));
        let max_queue = ctx.state().config.max_queue;
        for target in targets {
            let Some(ch) = ctx.channel_mut(target) else {
                continue;
            };
            let was_empty = !ch.has_pending_output();
            // A push fails only if that client is already closing: skip it.
            if ch.push(&data).is_err() {
                continue;
            }
            let pending = ch.pending_output();
            let room = ctx.state_mut();
            if let Some(m) = room.member(target) {
                m.active = now;
                if was_empty {
                    m.drained = now;
                }
            }
            if pending > max_queue && room.congested.insert(target) {
                log::debug!("{target:?} has {pending} bytes unsent: talkers wait");
            }
        }
        ctx.state_mut().active(me, now);
    }
}

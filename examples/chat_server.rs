//! A line chat room on sockloop's chat layer (asynchat).
//!
//! Run: `cargo run --release --example chat_server -- --addr 127.0.0.1:7001`
//! Options: `--addr HOST:PORT` (default 127.0.0.1:7001; port 0 picks a free one),
//! `--backend select|poll|epoll` (default epoll), `--max-line BYTES` (default 4096),
//! `--max-queue BYTES` (default 1048576), `--idle-timeout SECS` (default 300; 0 = none).
//! When ready it prints `listening on <addr>` with the real address. Try it with a few
//! `nc 127.0.0.1 7001`. SIGINT or SIGTERM closes every connection and exits with status 0.
//!
//! Protocol: lines end with `\n` (a trailing `\r` is stripped). On connect the server sends
//! `welcome ...`. `/nick NAME` → `ok`; `/who` → `users: NAME NAME ...` (in joining order);
//! `/quit` → `bye`, then the server closes once it is sent. Any other non-empty line goes
//! to every other client as `<NAME> text`, in order (empty lines are ignored). Names start
//! as `guest1`, `guest2`, ... A line longer than `--max-line` → `error: line too long`,
//! then close. A client whose unsent output passes `--max-queue` (it stopped reading) is
//! disconnected; everyone else keeps working. A client with no traffic either way for the
//! idle timeout is disconnected.

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
use sockloop::{signal, Backend, Channel, Context, Dispatcher, EventLoop, SockAddr, Socket, Token};

/// The room's limits.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The longest line accepted, in bytes, without the `\n` and a trailing `\r`.
    pub max_line: usize,
    /// A client with more unsent output than this is disconnected.
    pub max_queue: usize,
    /// A client with no read or write event for this long is disconnected.
    pub idle_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_line: 4096,
            max_queue: 1024 * 1024,
            idle_timeout: Some(Duration::from_secs(300)),
        }
    }
}

/// Who is in the room, in joining order.
pub struct Room {
    config: Config,
    members: Vec<(Token, String)>,
    guests: u64,
}

type Shared = Rc<RefCell<Room>>;

impl Room {
    fn name_of(&self, token: Token) -> Option<&str> {
        self.members
            .iter()
            .find(|(t, _)| *t == token)
            .map(|(_, n)| n.as_str())
    }

    fn is_taken(&self, name: &str) -> bool {
        self.members.iter().any(|(_, n)| n == name)
    }

    fn next_guest(&mut self) -> String {
        loop {
            self.guests += 1;
            let name = format!("guest{}", self.guests);
            if !self.is_taken(&name) {
                return name;
            }
        }
    }

    fn leave(&mut self, token: Token) {
        self.members.retain(|(t, _)| *t != token);
    }
}

/// The listening channel: every accepted connection joins the room.
pub struct Listener {
    room: Shared,
}

impl Dispatcher for Listener {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        _: SockAddr,
    ) -> io::Result<()> {
        let mut ch = Channel::from_socket(sock)?;
        ch.set_nodelay(true)?;
        let config = self.room.borrow().config;
        ch.set_idle_timeout(config.idle_timeout);
        let name = self.room.borrow_mut().next_guest();
        ch.push(
            format!("welcome to the sockloop chat, {name}; commands: /nick NAME, /who, /quit\n")
                .as_bytes(),
        )?;
        let mut chat = AsyncChat::new(Client {
            room: self.room.clone(),
            line: Vec::new(),
        });
        chat.set_terminator(Terminator::Bytes(b"\n".to_vec()))?;
        // One more byte for the `\r` that may end a line.
        chat.set_max_record(Some(config.max_line.saturating_add(1)));
        let token = ctx.add(ch, chat)?;
        self.room.borrow_mut().members.push((token, name));
        Ok(())
    }
}

/// One client's connection.
pub struct Client {
    room: Shared,
    line: Vec<u8>,
}

impl Client {
    fn too_long(ctx: &mut ChatContext<'_, '_>) -> io::Result<()> {
        ctx.push(b"error: line too long\n")?;
        ctx.close_when_done();
        Ok(())
    }

    fn nick(&mut self, ctx: &mut ChatContext<'_, '_>, me: Token, name: &[u8]) -> io::Result<()> {
        let name = match std::str::from_utf8(name) {
            Ok(n)
                if (1..=32).contains(&n.chars().count())
                    && !n.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                n
            }
            _ => return ctx.push(b"error: usage: /nick NAME (1 to 32 characters, no spaces)\n"),
        };
        let mut room = self.room.borrow_mut();
        if room.name_of(me) == Some(name) {
            return ctx.push(b"ok\n");
        }
        if room.is_taken(name) {
            return ctx.push(format!("error: {name} is taken\n").as_bytes());
        }
        if let Some(entry) = room.members.iter_mut().find(|(t, _)| *t == me) {
            entry.1 = name.to_string();
        }
        ctx.push(b"ok\n")
    }

    /// Sends `<NAME> text` to everyone else; disconnects those whose queue overflows.
    fn say(&mut self, ctx: &mut ChatContext<'_, '_>, me: Token, text: &[u8]) -> io::Result<()> {
        let (message, targets, max_queue) = {
            let room = self.room.borrow();
            let mut message = format!("<{}> ", room.name_of(me).unwrap_or("?")).into_bytes();
            message.extend_from_slice(text);
            message.push(b'\n');
            let targets: Vec<Token> = room
                .members
                .iter()
                .map(|(t, _)| *t)
                .filter(|t| *t != me)
                .collect();
            (message, targets, room.config.max_queue)
        };
        let Some(lp) = ctx.context() else {
            return Ok(());
        };
        for target in targets {
            let overflow = match lp.channel_mut(target) {
                // A push fails only if that client is already closing: skip it.
                Some(ch) => ch.push(&message).is_ok() && ch.pending_output() > max_queue,
                None => false,
            };
            if overflow {
                let name = self
                    .room
                    .borrow()
                    .name_of(target)
                    .unwrap_or("?")
                    .to_string();
                eprintln!("chat_server: disconnecting {name}: more than {max_queue} bytes unsent");
                lp.close_channel(target);
                self.room.borrow_mut().leave(target);
            }
        }
        Ok(())
    }
}

impl ChatHandler for Client {
    fn collect_incoming_data(
        &mut self,
        _: &mut ChatContext<'_, '_>,
        data: &[u8],
    ) -> io::Result<()> {
        self.line.extend_from_slice(data);
        Ok(())
    }

    fn found_terminator(&mut self, ctx: &mut ChatContext<'_, '_>) -> io::Result<()> {
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let max_line = self.room.borrow().config.max_line;
        if line.len() > max_line {
            return Client::too_long(ctx);
        }
        let Some(me) = ctx.token() else {
            return Ok(());
        };
        let command = line.trim_ascii();
        if command == b"/who" {
            let room = self.room.borrow();
            let names: Vec<&str> = room.members.iter().map(|(_, n)| n.as_str()).collect();
            ctx.push(format!("users: {}\n", names.join(" ")).as_bytes())
        } else if command == b"/quit" {
            ctx.push(b"bye\n")?;
            ctx.close_when_done();
            Ok(())
        } else if command == b"/nick" || command.starts_with(b"/nick ") {
            self.nick(ctx, me, command[5..].trim_ascii())
        } else if line.is_empty() {
            Ok(())
        } else {
            self.say(ctx, me, &line)
        }
    }

    fn handle_record_too_long(
        &mut self,
        ctx: &mut ChatContext<'_, '_>,
        _: io::Error,
    ) -> io::Result<()> {
        self.line = Vec::new();
        Client::too_long(ctx)
    }

    fn handle_close(&mut self, ctx: &mut ChatContext<'_, '_>) -> io::Result<()> {
        if let Some(me) = ctx.token() {
            self.room.borrow_mut().leave(me);
        }
        ctx.close();
        Ok(())
    }
}

/// Opens the room on `addr` in `event_loop`; returns the address it is listening on.
pub fn listen(
    event_loop: &mut EventLoop,
    addr: SocketAddr,
    config: Config,
) -> io::Result<SocketAddr> {
    let listener = Channel::tcp_listener(addr, 1024)?;
    let bound = listener.local_inet_addr()?;
    let room = Rc::new(RefCell::new(Room {
        config,
        members: Vec::new(),
        guests: 0,
    }));
    event_loop.add(listener, Listener { room })?;
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

fn parse_args() -> io::Result<Args> {
    let mut args = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 7001)),
        backend: Backend::Epoll,
        config: Config::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| invalid(format!("{flag} needs a value")))?;
        let bytes = || {
            value
                .parse::<usize>()
                .map_err(|e| invalid(format!("{flag} {value}: {e}")))
        };
        match flag.as_str() {
            "--addr" => {
                args.addr = value
                    .parse()
                    .map_err(|e| invalid(format!("--addr {value}: {e}")))?
            }
            "--backend" => args.backend = value.parse()?,
            "--max-line" => args.config.max_line = bytes()?,
            "--max-queue" => args.config.max_queue = bytes()?,
            "--idle-timeout" => {
                let secs = bytes()? as u64;
                args.config.idle_timeout = (secs > 0).then(|| Duration::from_secs(secs));
            }
            _ => {
                return Err(invalid(format!(
                    "unknown flag {flag}; usage: chat_server [--addr HOST:PORT] \
                     [--backend select|poll|epoll] [--max-line BYTES] [--max-queue BYTES] \
                     [--idle-timeout SECS]"
                )))
            }
        }
    }
    Ok(args)
}

fn serve(args: Args) -> io::Result<()> {
    let mut event_loop = EventLoop::with_backend(args.backend)?;
    let bound = listen(&mut event_loop, args.addr, args.config)?;
    event_loop.stop_on_signals(&[signal::SIGINT, signal::SIGTERM])?;
    println!("listening on {bound}");
    io::stdout().flush()?;
    event_loop.run(Some(Duration::from_secs(30)), None)
}

fn main() -> ExitCode {
    match parse_args().and_then(serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat_server: {e}");
            ExitCode::FAILURE
        }
    }
}

//! A TCP relay (proxy) on sockloop, with back-pressure and half-close.
//!
//! Run: `cargo run --release --example relay -- --addr 127.0.0.1:0 --to 127.0.0.1:7000`
//! (start `echo_server` on 127.0.0.1:7000 first). It prints `listening on <addr>`; every
//! connection to it is relayed to `--to`, byte for byte, both ways. `--backend` is one of
//! select, poll, epoll. SIGINT or SIGTERM closes everything and exits with status 0.
//!
//! * Back-pressure: while the far side's unsent output is over `HIGH_WATER`, the relay
//!   stops reading from the near side (`pause_reading`); the far side's `handle_drained`
//!   (its queue fell to `LOW_WATER`) resumes it. A client that stops reading holds at most
//!   `HIGH_WATER` + one read in the relay, however much the server sends.
//! * Half-close: end of input from one side becomes a shutdown of the other side's
//!   writing, after what is queued for it (`shutdown_when_done`); once both sides ended
//!   their input, both close after their queues are sent.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use sockloop::{signal, Backend, Channel, Context, Dispatcher, EventLoop, SockAddr, Token};

/// Stop reading from one side while this much is unsent to the other.
pub const HIGH_WATER: usize = 256 * 1024;
/// Resume once the other side's queue has fallen to this.
pub const LOW_WATER: usize = 64 * 1024;
/// The most one read takes.
const READ_SIZE: usize = 64 * 1024;

/// The listening channel: each accepted client gets a connection to `to`.
pub struct Listener {
    pub to: SocketAddr,
}

impl Dispatcher for Listener {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        let mut client = channel;
        client.set_low_water(LOW_WATER);
        let mut upstream = Channel::tcp_connect(self.to)?;
        upstream.set_low_water(LOW_WATER);
        // Each side needs the other's token.
        ctx.handle()
            .add_pair((client, upstream), |c, u| (Side::new(u), Side::new(c)))?;
        Ok(())
    }
}

/// One side of a relayed connection; `peer` is the other side.
pub struct Side {
    peer: Token,
    /// This side's input has ended (and the peer's writing was shut down after it).
    eof: bool,
}

impl Side {
    fn new(peer: Token) -> Side {
        Side { peer, eof: false }
    }
}

impl Dispatcher for Side {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let peer = self.peer;
        let mut buf = [0u8; READ_SIZE];
        let n = ctx.recv(&mut buf)?;
        let Some(out) = ctx.channel_mut(peer) else {
            ctx.request_close();
            return Ok(());
        };
        out.push(&buf[..n])?;
        if out.pending_output() > HIGH_WATER {
            ctx.pause_reading(); // resumed by the peer's handle_drained
        }
        Ok(())
    }

    fn handle_drained(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        if let Some(feeder) = ctx.channel_mut(self.peer) {
            feeder.resume_reading();
        }
        Ok(())
    }

    fn handle_eof(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.eof = true;
        let peer = self.peer;
        let peer_done = ctx
            .handle()
            .dispatcher_mut::<Side>(peer)
            .is_some_and(|p| p.eof);
        match ctx.channel_mut(peer) {
            Some(out) if peer_done => out.close_when_done(),
            Some(out) => out.shutdown_when_done(),
            None => {}
        }
        if peer_done {
            ctx.close_when_done(); // both directions ended: close after the queue
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        // One side is gone (reset, refused connect, or both ends done): the other side
        // still sends what it has queued, then closes.
        if let Some(peer) = ctx.channel_mut(self.peer) {
            peer.close_when_done();
        }
        ctx.close();
        Ok(())
    }
}

struct Args {
    addr: SocketAddr,
    to: SocketAddr,
    backend: Backend,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn parse_args() -> io::Result<Args> {
    const USAGE: &str =
        "usage: relay --to HOST:PORT [--addr HOST:PORT] [--backend select|poll|epoll]";
    let mut addr = "127.0.0.1:0".parse().map_err(io::Error::other)?;
    let mut to = None;
    let mut backend = Backend::Epoll;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| invalid(format!("{flag} needs a value; {USAGE}")))?;
        let addr_of = |v: &str| {
            v.parse::<SocketAddr>()
                .map_err(|e| invalid(format!("{flag} {v}: {e}")))
        };
        match flag.as_str() {
            "--addr" => addr = addr_of(&value)?,
            "--to" => to = Some(addr_of(&value)?),
            "--backend" => backend = value.parse()?,
            _ => return Err(invalid(format!("unknown flag {flag}; {USAGE}"))),
        }
    }
    let to = to.ok_or_else(|| invalid(format!("--to is required; {USAGE}")))?;
    Ok(Args { addr, to, backend })
}

fn serve(args: Args) -> io::Result<()> {
    let listener = Channel::tcp_listener(args.addr, 1024)?;
    let bound = listener.local_inet_addr()?;
    let mut event_loop = EventLoop::with_backend(args.backend)?;
    event_loop.add(listener, Listener { to: args.to })?;
    event_loop.stop_on_signals(&[signal::SIGINT, signal::SIGTERM])?;
    let mut out = io::stdout();
    writeln!(out, "listening on {bound}")?;
    out.flush()?;
    event_loop.run(Some(Duration::from_secs(30)), None)
}

#[allow(dead_code)] // when included by tests/loop/relay.rs
fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match parse_args().and_then(serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "relay: {e}");
            ExitCode::FAILURE
        }
    }
}

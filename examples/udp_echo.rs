//! A UDP echo server on sockloop.
//!
//! Run: `cargo run --release --example udp_echo -- --addr 127.0.0.1:7001 --backend epoll`
//! (`--backend` is one of select, poll, epoll; defaults: 127.0.0.1:7001, epoll; an IPv6
//! address such as `[::1]:7001` works too). When ready it prints `listening on <addr>` with
//! the real address (use port 0 for any free port), then sends every datagram back to its
//! sender. Try it with `nc -u 127.0.0.1 7001`.
//!
//! * An empty datagram is data, not end of file: it is echoed as an empty datagram.
//! * Back-pressure: a datagram the kernel will not take now (`send_to` would block) is
//!   queued with its sender, and the queue is sent in order on write events. The queue is
//!   bounded; nothing in it is ever dropped: while it is full the server stops reading
//!   (`readable()` is false), so new datagrams wait in (or overflow) the kernel's receive
//!   buffer, as UDP does anyway, and reading resumes once the queue drains.
//! * Fairness: one read event receives at most [`MAX_BATCH`] datagrams, so a flooded
//!   socket cannot keep the loop from its other channels.
//! * One 64 KiB receive buffer is reused for every datagram; only queued datagrams are
//!   copied.
//! * A send error for one datagram (e.g. `EMSGSIZE`, `ENETUNREACH`) is routed by the loop
//!   to [`handle_error`](Dispatcher::handle_error), which counts it, drops that datagram
//!   and keeps serving.
//!
//! SIGINT or SIGTERM closes the socket and exits with status 0.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use sockloop::{
    signal, Backend, Channel, Context, Dispatcher, Domain, EventLoop, SockAddr, Token, Type,
};

/// The most datagrams one read event receives.
pub const MAX_BATCH: usize = 64;

/// Receive buffer size: more than any UDP payload (65,507 bytes over IPv4, 65,527 over
/// IPv6), so no datagram is truncated.
pub const RECV_BUF: usize = 65536;

/// How much unsent echo one channel may hold before it stops reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most datagrams queued.
    pub max_datagrams: usize,
    /// Most payload bytes queued (exceeded by at most one datagram: the check is made
    /// before each receive).
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_datagrams: 1024,
            max_bytes: 1 << 20,
        }
    }
}

/// Counters, for tests and curiosity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent back (at once or from the queue).
    pub echoed: u64,
    /// Datagrams that had to be queued because the send would block.
    pub queued: u64,
    /// Errors routed to `handle_error` (each drops at most one datagram).
    pub errors: u64,
    /// `handle_read` calls.
    pub reads: u64,
    /// The most datagrams received in one `handle_read`.
    pub max_batch: usize,
    /// The longest the queue has been, in datagrams.
    pub max_queued: usize,
}

/// The echo dispatcher for one datagram channel.
pub struct UdpEcho {
    buf: Vec<u8>,
    queue: VecDeque<(SockAddr, Vec<u8>)>,
    queued_bytes: usize,
    limits: Limits,
    stats: Stats,
}

impl Default for UdpEcho {
    fn default() -> UdpEcho {
        UdpEcho::new()
    }
}

impl UdpEcho {
    /// An echo dispatcher with the default [`Limits`].
    pub fn new() -> UdpEcho {
        UdpEcho::with_limits(Limits::default())
    }

    /// An echo dispatcher with the given queue limits (each at least 1).
    pub fn with_limits(limits: Limits) -> UdpEcho {
        UdpEcho {
            buf: vec![0u8; RECV_BUF],
            queue: VecDeque::new(),
            queued_bytes: 0,
            limits: Limits {
                max_datagrams: limits.max_datagrams.max(1),
                max_bytes: limits.max_bytes.max(1),
            },
            stats: Stats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Datagrams waiting to be sent.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// True while the queue is at its limit (and the channel is not read).
    pub fn is_full(&self) -> bool {
        self.queue.len() >= self.limits.max_datagrams || self.queued_bytes >= self.limits.max_bytes
    }

    fn enqueue(&mut self, addr: SockAddr, data: Vec<u8>) {
        self.queued_bytes += data.len();
        self.queue.push_back((addr, data));
        self.stats.queued += 1;
        self.stats.max_queued = self.stats.max_queued.max(self.queue.len());
    }

    /// Sends the queue in order until it is empty or the socket would block. A datagram
    /// the kernel refuses with an error is dropped and the error returned.
    fn drain(&mut self, ch: &mut Channel) -> io::Result<()> {
        while let Some((addr, data)) = self.queue.front() {
            let sent = ch.send_to(data, addr.clone());
            if matches!(&sent, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                return Ok(()); // would block: wait for the next write event
            }
            if let Some((_, data)) = self.queue.pop_front() {
                self.queued_bytes -= data.len();
            }
            sent?;
            self.stats.echoed += 1;
        }
        Ok(())
    }
}

impl Dispatcher for UdpEcho {
    fn readable(&self, _: &Channel) -> bool {
        !self.is_full()
    }

    fn writable(&self, _: &Channel) -> bool {
        !self.queue.is_empty()
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.stats.reads += 1;
        let mut batch = 0;
        while batch < MAX_BATCH && !self.is_full() {
            let (n, from) = match ctx.recv_from(&mut self.buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break, // all read
                Err(e) => return Err(e),
            };
            batch += 1;
            self.stats.received += 1;
            self.stats.max_batch = self.stats.max_batch.max(batch);
            if !self.queue.is_empty() {
                // Keep the order: earlier echoes are still waiting.
                self.enqueue(from, self.buf[..n].to_vec());
                continue;
            }
            match ctx.send_to(&self.buf[..n], from.clone()) {
                Ok(_) => self.stats.echoed += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.enqueue(from, self.buf[..n].to_vec())
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn handle_write(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.drain(ctx)
    }

    fn handle_error(&mut self, ctx: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        // One datagram failed (it is dropped); the socket itself is fine: keep serving.
        self.stats.errors += 1;
        log::warn!("dropped a datagram on {}: {err}", **ctx);
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        ctx.close();
        Ok(())
    }
}

/// A bound, non-blocking datagram channel on `addr` (IPv4 or IPv6).
///
/// # Errors
///
/// What socket(2) or bind(2) report.
pub fn udp_channel(addr: SocketAddr) -> io::Result<Channel> {
    let mut ch = Channel::create_socket(Domain::for_address(addr), Type::DGRAM)?;
    ch.bind(addr)?;
    Ok(ch)
}

/// Starts echoing on `addr` in `event_loop`; returns the channel's token and the real
/// address.
///
/// # Errors
///
/// As [`udp_channel`], and adding the channel to the loop.
pub fn listen(event_loop: &mut EventLoop, addr: SocketAddr) -> io::Result<(Token, SocketAddr)> {
    let ch = udp_channel(addr)?;
    let bound = ch.local_inet_addr()?;
    let token = event_loop.add(ch, UdpEcho::new())?;
    Ok((token, bound))
}

struct Args {
    addr: SocketAddr,
    backend: Backend,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn parse_args() -> io::Result<Args> {
    let mut args = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 7001)),
        backend: Backend::Epoll,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| invalid(format!("{flag} needs a value")))?;
        match flag.as_str() {
            "--addr" => {
                args.addr = value
                    .parse()
                    .map_err(|e| invalid(format!("--addr {value}: {e}")))?
            }
            "--backend" => args.backend = value.parse()?,
            _ => {
                return Err(invalid(format!(
                    "unknown flag {flag}; usage: udp_echo [--addr HOST:PORT] \
                     [--backend select|poll|epoll]"
                )))
            }
        }
    }
    Ok(args)
}

fn serve(args: Args) -> io::Result<()> {
    let mut event_loop = EventLoop::with_backend(args.backend)?;
    let (_, bound) = listen(&mut event_loop, args.addr)?;
    event_loop.stop_on_signals(&[signal::SIGINT, signal::SIGTERM])?;
    println!("listening on {bound}");
    io::stdout().flush()?;
    event_loop.run(Some(Duration::from_secs(30)), None)
}

fn main() -> ExitCode {
    // Logging: `RUST_LOG=debug`, `RUST_LOG=sockloop=warn`, ...; default: info and above.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match parse_args().and_then(serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Never a panic, even with stderr closed.
            let _ = writeln!(io::stderr(), "udp_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

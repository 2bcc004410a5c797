//! Echo clients on sockloop: N clients each send M messages and verify every echoed byte.
//!
//! Run (with `echo_server` running):
//! `cargo run --release --example echo_client -- --addr 127.0.0.1:7000 --clients 10 --messages 1000 --size 64`
//! (`--backend select|poll|epoll` too). Prints a one-line summary; exits non-zero if any
//! byte was wrong or missing, or a connection failed. SIGINT or SIGTERM stops the run,
//! closes every client and prints `interrupted` after the summary (status 0 unless a byte
//! was wrong).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sockloop::{Backend, Channel, Context, Dispatcher, Domain, EventLoop, LoopHandle, Type};

/// The byte at `offset` of message `msg` from client `client`: a pattern, so a lost,
/// duplicated or reordered byte shows up as a mismatch.
fn pattern(client: usize, msg: usize, offset: usize) -> u8 {
    (client.wrapping_mul(131) ^ msg.wrapping_mul(31) ^ offset.wrapping_mul(7)) as u8
}

/// The run's results: the loop's state, added to by each client as it ends.
#[derive(Default)]
struct Tally {
    done: usize,
    failed: usize,
    mismatched: usize,
    messages: usize,
    interrupted: bool,
}

impl Tally {
    /// Adds a client that ended: (messages echoed, mismatched bytes, finished).
    fn add(&mut self, (messages, mismatched, finished): (usize, usize, bool)) {
        self.messages += messages;
        self.mismatched += mismatched;
        if finished {
            self.done += 1;
        } else {
            self.failed += 1;
        }
    }
}

/// Counts the clients still running as failed, and closes them.
fn close_all(lp: &mut LoopHandle<Tally>) {
    let running: Vec<_> = lp
        .channels()
        .filter_map(|(t, _)| lp.dispatcher::<Client>(t).map(Client::outcome))
        .collect();
    for outcome in running {
        lp.state_mut().add(outcome);
    }
    lp.close_all();
}

struct Client {
    id: usize,
    size: usize,
    messages: usize,
    sent: usize,
    received: usize,
    mismatched: usize,
    finished: bool,
}

impl Client {
    fn outcome(&self) -> (usize, usize, bool) {
        (self.received / self.size, self.mismatched, self.finished)
    }

    fn send_next(&mut self, ctx: &mut Context<'_, Tally>) -> io::Result<()> {
        let msg: Vec<u8> = (0..self.size)
            .map(|o| pattern(self.id, self.sent, o))
            .collect();
        self.sent += 1;
        ctx.push_vec(msg)
    }
}

impl Dispatcher<Tally> for Client {
    fn handle_connect(&mut self, ctx: &mut Context<'_, Tally>) -> io::Result<()> {
        ctx.set_nodelay(true)?;
        self.send_next(ctx)
    }

    fn handle_read(&mut self, ctx: &mut Context<'_, Tally>) -> io::Result<()> {
        let mut buf = [0u8; 65536];
        let n = ctx.recv(&mut buf)?;
        for &b in &buf[..n] {
            let msg = self.received / self.size;
            if b != pattern(self.id, msg, self.received % self.size) {
                self.mismatched += 1;
            }
            self.received += 1;
        }
        let complete = self.received / self.size;
        if complete == self.messages {
            self.finished = true;
            ctx.state_mut().add(self.outcome());
            ctx.close();
        } else if complete == self.sent {
            self.send_next(ctx)?;
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_, Tally>) -> io::Result<()> {
        ctx.state_mut().add(self.outcome());
        ctx.close();
        Ok(())
    }
}

struct Args {
    addr: SocketAddr,
    backend: Backend,
    clients: usize,
    messages: usize,
    size: usize,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn parse_args() -> io::Result<Args> {
    let mut args = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 7000)),
        backend: Backend::Epoll,
        clients: 10,
        messages: 1000,
        size: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| invalid(format!("{flag} needs a value")))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|e| invalid(format!("{flag} {value}: {e}")))
        };
        match flag.as_str() {
            "--addr" => args.addr = value.parse().map_err(|e| invalid(format!("--addr {value}: {e}")))?,
            "--backend" => args.backend = value.parse()?,
            "--clients" => args.clients = number()?,
            "--messages" => args.messages = number()?,
            "--size" => args.size = number()?,
            _ => return Err(invalid(format!(
                "unknown flag {flag}; usage: echo_client [--addr HOST:PORT] [--backend B] [--clients N] [--messages M] [--size BYTES]"
            ))),
        }
    }
    if args.size == 0 || args.messages == 0 {
        return Err(invalid("--size and --messages must be at least 1".into()));
    }
    Ok(args)
}

fn run(args: Args) -> io::Result<bool> {
    let mut event_loop = EventLoop::with_backend_and_state(args.backend, Tally::default())?;
    for id in 0..args.clients {
        let mut ch = Channel::create_socket(Domain::for_address(args.addr), Type::STREAM)?;
        ch.connect(args.addr)?;
        event_loop.add(
            ch,
            Client {
                id,
                size: args.size,
                messages: args.messages,
                sent: 0,
                received: 0,
                mismatched: 0,
                finished: false,
            },
        )?;
    }
    // SIGINT / SIGTERM: close every client, report what was done, exit 0 (an interrupted
    // run is not a failed one).
    for sig in [sockloop::signal::SIGINT, sockloop::signal::SIGTERM] {
        event_loop.add_signal_handler(sig, |lp, _| {
            lp.state_mut().interrupted = true;
            close_all(lp);
            lp.stop();
        })?;
    }
    let start = Instant::now();
    // Bounded: a silent server fails the run after 10 s without progress per iteration.
    event_loop.run(Some(Duration::from_secs(10)), None)?;
    let elapsed = start.elapsed().as_secs_f64();
    close_all(&mut event_loop);
    let t = event_loop.into_state();
    println!(
        "{} clients x {} messages of {} bytes on {}: {} done, {} failed, {} messages, {} mismatched bytes, {:.0} msgs/s",
        args.clients,
        args.messages,
        args.size,
        args.backend,
        t.done,
        t.failed,
        t.messages,
        t.mismatched,
        t.messages as f64 / elapsed
    );
    if t.interrupted {
        println!("interrupted");
        return Ok(t.mismatched == 0);
    }
    Ok(t.failed == 0 && t.mismatched == 0 && t.done == args.clients)
}

fn main() -> ExitCode {
    // Logging: `RUST_LOG=debug`, `RUST_LOG=sockloop=warn`, ...; default: info and above.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match parse_args().and_then(run) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            // Never a panic, even with stderr closed.
            let _ = writeln!(io::stderr(), "echo_client: {e}");
            ExitCode::FAILURE
        }
    }
}

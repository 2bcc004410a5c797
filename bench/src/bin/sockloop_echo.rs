//! The echo server the benchmarks measure: `examples/echo_server.rs` tuned for throughput
//! (one shared read buffer, `TCP_NODELAY`, back-pressure, no warning on a client's reset).
//! `bench/run.sh`, `bench/callgrind/run.sh` and the BENCHMARKS.md recipes run this binary.
//!
//! Build: `cd bench && cargo build --release --features sockloop --bin sockloop_echo`
//! Run: `bench/target/release/sockloop_echo --addr 127.0.0.1:7000 --backend epoll`
//! (`--backend` is one of select, poll, epoll; defaults: 127.0.0.1:7000, epoll). When ready
//! it prints `listening on <addr>` with the real address (use port 0 for any free port).
//! `--threads N` runs N loops on N threads, each with its own listener on the same port
//! (`SO_REUSEPORT`, see `LoopGroup`). SIGINT or SIGTERM closes every connection and exits
//! with status 0.
//!
//! Back-pressure: while a client's unsent output is over `MAX_QUEUED`, the server stops
//! reading from that client (its `readable()` is false), so a client that sends without
//! reading cannot make the server buffer without bound, and no byte is ever dropped.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use sockloop::{signal, Backend, Channel, Context, Dispatcher, EventLoop, LoopGroup, SockAddr};

/// Stop reading from a client while this much of its echo is still unsent.
const MAX_QUEUED: usize = 256 * 1024;

/// The loop's state: one read buffer shared by every connection. The loop runs one hook
/// at a time, so a per-connection buffer would only cost memory, and a fresh zeroed array
/// per read would cost a 64 KiB memset per message.
pub struct ReadBuf(Vec<u8>);

impl Default for ReadBuf {
    fn default() -> ReadBuf {
        ReadBuf(vec![0u8; 65536])
    }
}

/// The listening channel's dispatcher: wraps each accepted socket in an [`Echo`].
pub struct Listener;

impl Dispatcher<ReadBuf> for Listener {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_, ReadBuf>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        let mut ch = channel;
        ch.set_nodelay(true)?;
        ctx.handle().add(ch, Echo)?;
        Ok(())
    }
}

struct Echo;

impl Dispatcher<ReadBuf> for Echo {
    fn readable(&self, ch: &Channel) -> bool {
        ch.pending_output() < MAX_QUEUED
    }

    fn handle_read(&mut self, ctx: &mut Context<'_, ReadBuf>) -> io::Result<()> {
        let (ch, lp) = ctx.split();
        let buf = &mut lp.state_mut().0;
        let n = ch.recv(buf)?;
        ch.push(&buf[..n])
    }

    fn handle_close(&mut self, ctx: &mut Context<'_, ReadBuf>) -> io::Result<()> {
        ctx.close();
        Ok(())
    }
}

struct Args {
    addr: std::net::SocketAddr,
    backend: Backend,
    threads: usize,
}

fn parse_args() -> io::Result<Args> {
    let mut args = Args {
        addr: "127.0.0.1:7000".parse().map_err(io::Error::other)?,
        backend: Backend::Epoll,
        threads: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{flag} needs a value"))
        })?;
        match flag.as_str() {
            "--addr" => {
                args.addr = value.parse().map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("--addr {value}: {e}"))
                })?
            }
            "--backend" => args.backend = value.parse()?,
            "--threads" => {
                args.threads = value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("--threads {value}: expected a positive number"),
                    )
                })?
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unknown flag {flag}; usage: sockloop_echo [--addr HOST:PORT] [--backend select|poll|epoll] [--threads N]"),
                ))
            }
        }
    }
    Ok(args)
}

fn serve(args: Args) -> io::Result<()> {
    let exit_signals = [signal::SIGINT, signal::SIGTERM];
    if args.threads == 1 {
        let listener = Channel::tcp_listener(args.addr, 1024)?;
        let bound = listener.local_inet_addr()?;
        let mut event_loop = EventLoop::with_backend_and_state(args.backend, ReadBuf::default())?;
        event_loop.add(listener, Listener)?;
        event_loop.stop_on_signals(&exit_signals)?;
        println!("listening on {bound}");
        io::stdout().flush()?;
        return event_loop.run(Some(Duration::from_secs(30)), None);
    }
    let group = LoopGroup::listen_with_state(
        args.addr,
        args.threads,
        args.backend,
        |_| ReadBuf::default(),
        |_, _| Ok(Listener),
    )?;
    // The main thread only waits for the exit signal; the group's loops serve.
    let mut main_loop = EventLoop::with_backend(args.backend)?;
    main_loop.stop_on_signals(&exit_signals)?;
    println!(
        "listening on {} ({} threads)",
        group.local_addr(),
        group.len()
    );
    io::stdout().flush()?;
    main_loop.run_forever()?;
    group.stop();
    group.join()
}

fn main() -> ExitCode {
    // Logging: `RUST_LOG=debug`, `RUST_LOG=sockloop=warn`, ...; default: info and above.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match parse_args().and_then(serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Never a panic, even with stderr closed.
            let _ = writeln!(io::stderr(), "sockloop_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

//! An echo server on sockloop: the README's example, with flags.
//!
//! Run: `cargo run --release --example echo_server -- --addr 127.0.0.1:7000 --backend epoll`
//! (`--backend` is one of select, poll, epoll; defaults: 127.0.0.1:7000, epoll). When ready
//! it prints `listening on <addr>` with the real address (use port 0 for any free port),
//! then echoes everything back to any number of clients. Try it with `nc 127.0.0.1 7000`.
//! `--threads N` runs N loops on N threads, each with its own listener on the same port
//! (`SO_REUSEPORT`, see `LoopGroup`). SIGINT or SIGTERM closes every connection and exits
//! with status 0.
//!
//! Half-close: a client that ends its input gets the rest of its echo, then the server
//! closes (the default `handle_eof`). The output queue is not bounded here: a client that
//! sends without reading makes the server buffer what it sent (`examples/relay.rs` shows
//! flow control; the benchmarks' tuned variant, `bench/src/bin/sockloop_echo.rs`, stops
//! reading above a mark).

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use sockloop::{signal, Backend, Channel, Context, Dispatcher, EventLoop, LoopGroup, SockAddr};

struct Server;
struct Echo;

impl Dispatcher for Server {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        ctx.handle().add(channel, Echo)?;
        Ok(())
    }
}

impl Dispatcher for Echo {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        let n = ctx.recv(&mut buf)?; // 0: nothing yet, or end of file (then handle_eof)
        ctx.push(&buf[..n]) // sends now; what the OS refuses is queued, in order
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
                    format!("unknown flag {flag}; usage: echo_server [--addr HOST:PORT] [--backend select|poll|epoll] [--threads N]"),
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
        let mut event_loop = EventLoop::with_backend(args.backend)?;
        event_loop.add(listener, Server)?;
        event_loop.stop_on_signals(&exit_signals)?;
        println!("listening on {bound}");
        io::stdout().flush()?;
        return event_loop.run(Some(Duration::from_secs(30)), None);
    }
    let group = LoopGroup::listen(args.addr, args.threads, args.backend, |_, _| Ok(Server))?;
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
            let _ = writeln!(io::stderr(), "echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}

//! CPython's asyncore documentation example "asyncore Example basic echo server", ported
//! to sockloop line by line (the Python original and the mapping are in the guide's
//! porting chapter, `sockloop::guide::porting`).
//!
//! Run: `cargo run --example asyncore_echo_server -- --addr 127.0.0.1:8080`
//! (default `localhost:8080`, as in the Python original; port 0 picks a free one;
//! `--backend select|poll|epoll`, default epoll, is asyncore's `use_poll`). When
//! ready it prints `listening on <addr>`, then `Incoming connection from <addr>` for every
//! client, and echoes what each client sends. Try `nc 127.0.0.1 8080`. SIGINT or SIGTERM
//! closes every connection and exits with status 0. Logging: `RUST_LOG` (default info).

use std::io::{self, Write};
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use sockloop::{signal, Backend, Channel, Context, Dispatcher, EventLoop, SockAddr};

// class EchoHandler(asyncore.dispatcher_with_send):
struct EchoHandler;

impl Dispatcher for EchoHandler {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut data = [0u8; 8192];
        let n = ctx.recv(&mut data)?;
        if n > 0 {
            ctx.push(&data[..n])?; // dispatcher_with_send's send: what the OS refuses is queued
        }
        Ok(())
    }
}

// class EchoServer(asyncore.dispatcher):
struct EchoServer;

impl Dispatcher for EchoServer {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Channel,
        addr: SockAddr,
    ) -> io::Result<()> {
        // print(): a closed stdout must not end the connection, so the result is ignored.
        if let Some(addr) = addr.as_socket() {
            let _ = writeln!(io::stdout(), "Incoming connection from {addr}");
        }
        ctx.handle().add(sock, EchoHandler)?;
        Ok(())
    }
}

fn run() -> io::Result<()> {
    let (mut addr, mut backend) = (String::from("localhost:8080"), Backend::Epoll);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            ("--backend", Some(value)) => backend = value.parse()?, // asyncore's use_poll
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unexpected {flag}; usage: asyncore_echo_server [--addr HOST:PORT] [--backend select|poll|epoll]"),
                ))
            }
        }
    }
    let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    })?;
    let mut event_loop = EventLoop::with_backend(backend)?;
    // create_socket(), set_reuse_addr(), bind((host, port)), listen(5)
    let server = Channel::tcp_listener(addr, 5)?;
    let bound = server.local_inet_addr()?;
    event_loop.add(server, EchoServer)?;
    event_loop.stop_on_signals(&[signal::SIGINT, signal::SIGTERM])?;
    let mut out = io::stdout();
    writeln!(out, "listening on {bound}")?;
    out.flush()?;
    // asyncore.loop(): asyncore's default timeout is 30 s, its loop runs while channels remain.
    event_loop.run(Some(Duration::from_secs(30)), None)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "asyncore_echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}

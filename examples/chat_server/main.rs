//! A line chat room on sockloop's chat layer (asynchat).
//!
//! Run: `cargo run --release --example chat_server -- --addr 127.0.0.1:7001`
//! Options: `--addr HOST:PORT` (default 127.0.0.1:7001; port 0 picks a free one),
//! `--backend select|poll|epoll` (default epoll), `--max-line BYTES` (default 4096),
//! `--max-queue BYTES` (default 1048576: while a member has more unsent, talkers wait),
//! `--stall-timeout SECS` (default 10: a member whose unsent output does not move for this
//! long is disconnected; 0 = never), `--idle-timeout SECS` (default 300: a member that
//! sends nothing and is sent nothing for this long is disconnected; 0 = never),
//! `--who-rate BYTES` (default 32768: `/who` reply bytes per second per client).
//! When ready it prints `listening on <addr>` with the real address. Try it with a few
//! `nc 127.0.0.1 7001`. SIGINT or SIGTERM closes every connection and exits with status 0.
//! Logging goes to stderr through `env_logger` (`RUST_LOG`, default `info`).
//!
//! The protocol and the room's rules (text neutralisation, nicks, flow control, what idle
//! means) are described in `room.rs`.

#[allow(dead_code)] // the tests use more of it
mod room;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use room::{Config, Room};
use sockloop::{signal, Backend, EventLoop};

struct Args {
    addr: SocketAddr,
    backend: Backend,
    config: Config,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

const USAGE: &str = "usage: chat_server [--addr HOST:PORT] [--backend select|poll|epoll] \
                     [--max-line BYTES] [--max-queue BYTES] [--stall-timeout SECS] \
                     [--idle-timeout SECS] [--who-rate BYTES]";

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
            .ok_or_else(|| invalid(format!("{flag} needs a value; {USAGE}")))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|e| invalid(format!("{flag} {value}: {e}")))
        };
        let secs = || number().map(|s| (s > 0).then(|| Duration::from_secs(s as u64)));
        match flag.as_str() {
            "--addr" => {
                args.addr = value
                    .parse()
                    .map_err(|e| invalid(format!("--addr {value}: {e}")))?
            }
            "--backend" => args.backend = value.parse()?,
            "--max-line" => args.config.max_line = number()?,
            "--max-queue" => args.config.max_queue = number()?,
            "--stall-timeout" => args.config.stall_timeout = secs()?,
            "--idle-timeout" => args.config.idle_timeout = secs()?,
            "--who-rate" => args.config.who_rate = number()?.max(1),
            _ => return Err(invalid(format!("unknown flag {flag}; {USAGE}"))),
        }
    }
    Ok(args)
}

fn serve(args: Args) -> io::Result<()> {
    let mut event_loop = EventLoop::with_backend_and_state(args.backend, Room::new(args.config))?;
    let bound = room::listen(&mut event_loop, args.addr)?;
    event_loop.stop_on_signals(&[signal::SIGINT, signal::SIGTERM])?;
    let mut out = io::stdout();
    writeln!(out, "listening on {bound}")?;
    out.flush()?;
    event_loop.run(Some(Duration::from_secs(30)), None)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match parse_args().and_then(serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "chat_server: {e}");
            ExitCode::FAILURE
        }
    }
}

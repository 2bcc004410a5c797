//! CPython's asyncore documentation example "asyncore Example basic HTTP client", ported
//! to sockloop line by line (the Python original and the mapping are in the guide's
//! porting chapter, `sockloop::guide::porting`).
//!
//! Run: `cargo run --example asyncore_http_client -- --addr www.python.org:80 --path /`
//! (those are the defaults, as in the Python original; `--backend select|poll|epoll`,
//! default epoll, is asyncore's `use_poll`). It sends `GET <path> HTTP/1.0`
//! (no `Host` header, as the original), writes the raw response to stdout (Python printed
//! each chunk's `repr`) and exits when the server closes the connection. SIGINT or SIGTERM
//! closes the connection and exits with status 0. Logging: `RUST_LOG` (default info); a
//! refused connect is logged as an error, and the program still exits 0, as the original.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use sockloop::{signal, Backend, Channel, Context, Dispatcher, EventLoop};

// class HTTPClient(asyncore.dispatcher):
struct HttpClient {
    buffer: Vec<u8>,
}

impl HttpClient {
    // def __init__(self, host, path): create_socket(), connect((host, 80)), self.buffer = ...
    fn connect(event_loop: &mut EventLoop, addr: &str, path: &str) -> io::Result<()> {
        let channel = Channel::tcp_connect(addr)?;
        let buffer = format!("GET {path} HTTP/1.0\r\n\r\n").into_bytes();
        event_loop.add(channel, HttpClient { buffer })?;
        Ok(())
    }
}

impl Dispatcher for HttpClient {
    fn handle_connect(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        ctx.close();
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut data = [0u8; 8192];
        let n = ctx.recv(&mut data)?;
        io::stdout().write_all(&data[..n])
    }

    fn writable(&self, _: &Channel) -> bool {
        !self.buffer.is_empty()
    }

    fn handle_write(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let sent = ctx.send(&self.buffer)?;
        self.buffer.drain(..sent);
        Ok(())
    }
}

fn run() -> io::Result<()> {
    let (mut addr, mut path) = (String::from("www.python.org:80"), String::from("/"));
    let mut backend = Backend::Epoll;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            ("--path", Some(value)) => path = value,
            ("--backend", Some(value)) => backend = value.parse()?, // asyncore's use_poll
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unexpected {flag}; usage: asyncore_http_client [--addr HOST:PORT] [--path PATH] [--backend select|poll|epoll]"),
                ))
            }
        }
    }
    let mut event_loop = EventLoop::with_backend(backend)?;
    event_loop.stop_on_signals(&[signal::SIGINT, signal::SIGTERM])?;
    HttpClient::connect(&mut event_loop, &addr, &path)?;
    // asyncore.loop(): returns once the connection is closed.
    event_loop.run(Some(Duration::from_secs(30)), None)?;
    io::stdout().flush()
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "asyncore_http_client: {e}");
            ExitCode::FAILURE
        }
    }
}

//! A line echo on sockloop's chat layer (asynchat): every line comes back as it was sent.
//!
//! Run: `cargo run --example line_echo -- --addr 127.0.0.1:7002`
//! Options: `--addr HOST:PORT` (default 127.0.0.1:7002; port 0 picks a free one),
//! `--backend select|poll|epoll` (default epoll), `--max-line BYTES` (default 1024).
//! When ready it prints `listening on <addr>`. Try `nc 127.0.0.1 7002` (LF lines) or
//! `nc -C 127.0.0.1 7002` (CRLF lines): each line is echoed with the ending it came with.
//! A line longer than `--max-line` gets `ERR line too long` and is skipped (the
//! connection stays); a final line without an ending is echoed at end of input. SIGINT or
//! SIGTERM closes every connection and exits with status 0. Logging: `RUST_LOG`.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use sockloop::chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
use sockloop::{signal, Backend, Channel, Context, Dispatcher, EventLoop, SockAddr};

/// One connection: collects a line, echoes it on `\n`.
struct Line {
    line: Vec<u8>,
}

impl ChatHandler for Line {
    fn collect_incoming_data(&mut self, _: &mut ChatContext<'_>, data: &[u8]) -> io::Result<()> {
        self.line.extend_from_slice(data);
        Ok(())
    }

    /// The terminator is `\n`, so a CRLF line keeps its `\r`: echoing the line plus `\n`
    /// gives each client back the ending it used.
    fn found_terminator(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
        self.line.push(b'\n');
        let line = std::mem::take(&mut self.line);
        ctx.push_vec(line)
    }

    /// Over the limit (called once per such line): say so, drop what was collected and
    /// keep the connection; the chat layer skips the rest of the line.
    fn handle_record_too_long(
        &mut self,
        ctx: &mut ChatContext<'_>,
        _: io::Error,
    ) -> io::Result<()> {
        self.line.clear();
        ctx.push(b"ERR line too long\r\n")
    }

    /// End of input: echo a last line that had no ending, then finish sending and close.
    fn handle_eof(&mut self, ctx: &mut ChatContext<'_>) -> io::Result<()> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            ctx.push_vec(line)?;
        }
        ctx.close_when_done();
        Ok(())
    }
}

/// The listening channel: one [`Line`] chat per accepted socket.
struct Listener {
    max_line: usize,
}

impl Dispatcher for Listener {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        let mut chat = AsyncChat::new(Line { line: Vec::new() });
        chat.set_terminator(Terminator::Bytes(b"\n".to_vec()))?;
        chat.set_max_record(Some(self.max_line));
        ctx.handle().add(channel, chat)?;
        Ok(())
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

const USAGE: &str =
    "usage: line_echo [--addr HOST:PORT] [--backend select|poll|epoll] [--max-line BYTES]";

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "line_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 7002));
    let mut backend = Backend::Epoll;
    let mut max_line = 1024;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| invalid(format!("{flag} needs a value; {USAGE}")))?;
        match flag.as_str() {
            "--addr" => {
                addr = value
                    .parse()
                    .map_err(|e| invalid(format!("--addr {value}: {e}")))?
            }
            "--backend" => backend = value.parse()?,
            "--max-line" => {
                max_line = value
                    .parse()
                    .map_err(|e| invalid(format!("--max-line {value}: {e}")))?
            }
            _ => return Err(invalid(format!("unknown flag {flag}; {USAGE}"))),
        }
    }
    let mut event_loop = EventLoop::with_backend(backend)?;
    let listener = Channel::tcp_listener(addr, 128)?;
    let bound = listener.local_inet_addr()?;
    event_loop.add(listener, Listener { max_line })?;
    event_loop.stop_on_signals(&[signal::SIGINT, signal::SIGTERM])?;
    let mut out = io::stdout();
    writeln!(out, "listening on {bound}")?;
    out.flush()?;
    event_loop.run(Some(Duration::from_secs(30)), None)
}

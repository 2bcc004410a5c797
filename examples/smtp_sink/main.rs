//! An SMTP sink on sockloop's chat layer: the job CPython's `smtpd.SMTPServer` did.
//!
//! Run: `cargo run --release --example smtp_sink -- --addr 127.0.0.1:2525 --maildir DIR`
//! Options: `--addr HOST:PORT` (default 127.0.0.1:2525; port 0 picks a free one),
//! `--maildir DIR` (required; a Maildir, created if missing), `--max-size BYTES` (default
//! 33554432, 32 MiB), `--hostname NAME` (default `localhost`), `--idle-timeout SECS`
//! (default 300, RFC 5321's minimum server timeout; 0 = none), `--backend
//! select|poll|epoll` (default epoll). When ready it prints `listening on <addr>` with the
//! real address. Try it with `python3 -c 'import smtplib; smtplib.SMTP("127.0.0.1",
//! 2525).sendmail("a@x", ["b@y"], b"Subject: hi\r\n\r\nhello\r\n")'`, then look in
//! `DIR/new/`.
//!
//! The protocol, the storage and the limits are described in `session.rs`. At start the
//! Maildir is created if needed and checked (a probe file is written and synced): a
//! directory that cannot be written is an error at once, naming the path. Logging goes
//! to stderr through `env_logger` (`RUST_LOG=debug|info|warn|error`, default `info`).
//! SIGINT or SIGTERM closes every connection and exits with status 0; `SIGXFSZ` is
//! ignored, so a message over the file size limit (`ulimit -f`) is refused with `552`
//! instead of killing the server.

#[allow(dead_code)] // the tests use more of it
mod session;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use session::{Config, Sink};
use sockloop::{signal, Backend, EventLoop};

struct Args {
    addr: SocketAddr,
    backend: Backend,
    config: Config,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

const USAGE: &str = "usage: smtp_sink --maildir DIR [--addr HOST:PORT] [--max-size BYTES] \
                     [--hostname NAME] [--idle-timeout SECS] [--backend select|poll|epoll]";

fn parse_args() -> io::Result<Args> {
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 2525));
    let mut backend = Backend::Epoll;
    let (mut maildir, mut max_size, mut hostname, mut idle) = (None, None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| invalid(format!("{flag} needs a value; {USAGE}")))?;
        match flag.as_str() {
            "--addr" => {
                addr = value
                    .parse()
                    .map_err(|e| invalid(format!("--addr {value}: {e}")))?
            }
            "--backend" => backend = value.parse()?,
            "--maildir" => maildir = Some(PathBuf::from(value)),
            "--max-size" => {
                max_size = Some(
                    value
                        .parse()
                        .map_err(|e| invalid(format!("--max-size {value}: {e}")))?,
                )
            }
            "--hostname" => hostname = Some(value),
            "--idle-timeout" => {
                let secs: u64 = value
                    .parse()
                    .map_err(|e| invalid(format!("--idle-timeout {value}: {e}")))?;
                idle = Some((secs > 0).then(|| Duration::from_secs(secs)));
            }
            _ => return Err(invalid(format!("unknown flag {flag}; {USAGE}"))),
        }
    }
    let mut config =
        Config::new(maildir.ok_or_else(|| invalid(format!("--maildir is required; {USAGE}")))?);
    if let Some(max) = max_size {
        config.max_size = max;
    }
    if let Some(name) = hostname {
        config.hostname = name;
    }
    if let Some(idle) = idle {
        config.idle_timeout = idle;
    }
    Ok(Args {
        addr,
        backend,
        config,
    })
}

fn serve(args: Args) -> io::Result<()> {
    let mut event_loop = EventLoop::with_backend_and_state(args.backend, Sink::new(args.config)?)?;
    // Caught, not fatal: a write past RLIMIT_FSIZE then fails with EFBIG (a 552 for that
    // message) instead of the signal's default action killing every session.
    event_loop.add_signal_handler(signal_hook::consts::SIGXFSZ, |_, _| {
        log::warn!("SIGXFSZ: a message reached the file size limit (RLIMIT_FSIZE)");
    })?;
    let bound = session::listen(&mut event_loop, args.addr)?;
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
            let _ = writeln!(io::stderr(), "smtp_sink: {e}");
            ExitCode::FAILURE
        }
    }
}
